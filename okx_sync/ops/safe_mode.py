"""Safe mode — "只撤不加" (cancel, never add): runbook §0.1 and §6.2 step 4.

While safe mode is on, every order **placement** and **amend** — REST and WS,
named methods and ``client.request`` alike — is refused before anything is
sent, with :class:`~okx_sync.errors.SafeModeError`. Cancels, queries and
reduce-only closes still go out:

- ``order_action`` ``"cancel"`` and ``"close"`` (``trade/close-position``, ...)
  endpoints, every GET, and every endpoint that does not enter orders: allowed;
- ``"place"`` endpoints: allowed only when every order in the request has
  ``reduceOnly`` true (a single order, or each item of a batch);
- ``"amend"`` endpoints: always refused (an amend can add risk either way).

The decision is :func:`~okx_sync.guards.allowed_in_safe_mode` (pure, on the
registry's ``Endpoint.order_action``; it lives in ``okx_sync.guards`` and is
re-exported here); :class:`SafeMode` is the state plus the pre-send guard the
``Client`` installs on its REST core and on every WS client it builds
(``add_guard``).

Race contract: the guard runs before every send — after the request gate
admitted the attempt, right before it goes out, and again before each retry
(plus once before the gate, so a refused call does not queue). A send that
passed it holds a ``release`` until it has been answered or failed.
:meth:`SafeMode.enter` turns the mode on under a lock, then waits until every
placement/amend send that passed the guard *before* that moment has finished.
So once ``client.enter_safe_mode()`` returns, an order racing with it has
either gone out already (and, with ``cancel_open_orders=True``, is in the
cancel sweep) or is refused — none is sent afterwards, including one that was
waiting in the gate, for the account-limit load, or between retries (after a
429 that OKX did not execute); ``enter`` does not wait for those, only for
sends on the wire. It is a read-write lock in effect: sends hold the shared
side until they finish, ``enter`` takes the exclusive side, and new sends are
refused (not queued) once it has.

:func:`cancel_pending_orders` lists every pending order (``orders-pending``,
paged) and cancels them in batches of 20 through the normal call path (the
request gate's cancel lane), reporting what was cancelled, what was already
final (``sCode`` 51400/51401/51402: filled, cancelled by someone else, gone —
benign, not a failure) and what failed. Concurrent
``enter_safe_mode(cancel_open_orders=True)`` calls share one sweep
(:meth:`SafeMode.shared_sweep`): a caller that arrives while a sweep of the
same safe-mode period runs waits for it and gets its report.

Thread safety: every public function and method is safe from any thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import APIError, OkxError, OrderError, RequestStateError, SafeModeError
from ..guards import allowed_in_safe_mode
from ..rest.endpoints import Endpoint
from .ports import OrderClient

__all__ = [
    "SafeMode",
    "SafeModeState",
    "SafeModeReport",
    "CancelReport",
    "CancelItem",
    "allowed_in_safe_mode",
    "cancel_pending_orders",
    "enter_safe_mode",
]

log = logging.getLogger("okx_sync.ops.safe_mode")

#: Orders per ``cancel-batch-orders`` request (OKX maximum).
CANCEL_BATCH = 20
#: ``sCode`` values of a cancel whose order was already final (filled/canceled/gone).
ALREADY_FINAL_CODES = frozenset({"51400", "51401", "51402"})
#: Longest a caller waits for a concurrent cancel sweep it joined (s).
SWEEP_JOIN_TIMEOUT_S = 300.0


def _cl_ord_ids(params: Any) -> list[str]:
    items = params if isinstance(params, list | tuple) else [params]
    return [str(i["clOrdId"]) for i in items if isinstance(i, Mapping) and i.get("clOrdId")]


@attrs.frozen(kw_only=True)
class SafeModeState:
    """A snapshot of safe mode (``client.safe_mode``). Truthy while safe mode is on.

    ``active``; ``reason`` (given to ``enter_safe_mode``); ``since`` (Unix s it
    was entered, None when off); ``entered`` (times entered since the client
    was built); ``refused`` (placements/amends refused so far); ``in_flight``
    (placements/amends admitted before safe mode and still running).
    Thread safety: immutable.
    """

    active: bool
    reason: str
    since: float | None
    entered: int
    refused: int
    in_flight: int

    def __bool__(self) -> bool:
        return self.active

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return attrs.asdict(self)


class _Release:
    """The one-shot ``release`` a guard returns for an admitted order send."""

    __slots__ = ("_owner", "_done")

    def __init__(self, owner: SafeMode) -> None:
        self._owner = owner
        self._done = False

    def __call__(self) -> None:
        if self._done:
            return
        self._done = True
        self._owner._finished()


class SafeMode:
    """Safe-mode state and the pre-send guard of one ``Client`` (and its WS clients).

    ``guard(endpoint, params)`` is the :data:`okx_sync.guards.Guard`
    installed with ``RestCore.add_guard`` / ``WSClient.add_guard``: it raises
    ``SafeModeError`` for a placement/amend while the mode is on, and tracks
    the placement/amend sends it lets through until their ``release`` (the
    REST core and WS order entry call it before every send).
    ``enter(reason)`` turns the mode on and waits for those (see the module
    doc); ``exit()`` turns it off. Use ``client.enter_safe_mode`` /
    ``client.exit_safe_mode`` / ``client.safe_mode`` rather than this class.

    Thread safety: all methods may be called from any thread; ``enter`` must
    not be called from inside an order call's own thread while it runs (it
    would wait for itself until ``drain_timeout_s``).
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._active = False
        self._reason = ""
        self._since: float | None = None
        self._entered = 0
        self._refused = 0
        self._in_flight = 0
        self._sweep: _Sweep | None = None  # the cancel sweep running now, if any

    def __repr__(self) -> str:
        state = self.state
        return f"SafeMode(active={state.active}, reason={state.reason!r}, refused={state.refused})"

    @property
    def active(self) -> bool:
        """True while safe mode is on."""
        return self._active

    @property
    def state(self) -> SafeModeState:
        """A consistent :class:`SafeModeState` snapshot."""
        with self._cond:
            return SafeModeState(
                active=self._active,
                reason=self._reason,
                since=self._since,
                entered=self._entered,
                refused=self._refused,
                in_flight=self._in_flight,
            )

    def guard(self, endpoint: Endpoint | None, params: Any) -> Callable[[], None] | None:
        """Refuse a placement/amend while safe mode is on; track admitted ones.

        Returns None for calls safe mode never refuses, a one-shot ``release``
        for admitted placements/amends. Raises ``SafeModeError`` (nothing sent).
        """
        if allowed_in_safe_mode(endpoint, params):
            return None
        assert endpoint is not None
        with self._cond:
            if not self._active:
                self._in_flight += 1
                return _Release(self)
            self._refused += 1
            reason = self._reason
        ids = _cl_ord_ids(params)
        log.info(
            "safe mode refused %s %s",
            endpoint.method,
            endpoint.path,
            extra={"path": endpoint.path, "reason": reason, "cl_ord_ids": ids},
        )
        text = f"safe mode is on{f' ({reason})' if reason else ''}: {endpoint.order_action} "
        text += f"refused before sending [{endpoint.method} {endpoint.path}"
        text += f" clOrdIds={','.join(ids)}]" if ids else "]"
        raise SafeModeError(
            text + "; cancels, queries and reduce-only closes still go out", reason=reason
        )

    def _finished(self) -> None:
        with self._cond:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._cond.notify_all()

    def enter(self, reason: str = "", *, drain_timeout_s: float = 30.0) -> int:
        """Turn safe mode on, then wait up to ``drain_timeout_s`` s for order sends on the wire.

        Returns the number still in flight after the wait (0 = drained: no
        placement/amend can be sent any more). Entering again while on keeps
        the first ``since`` and replaces the reason when one is given.
        """
        with self._cond:
            if not self._active:
                self._active = True
                self._since = self._clock.time()
                self._entered += 1
                self._reason = reason
            elif reason:
                self._reason = reason
            deadline = self._clock.monotonic() + max(0.0, drain_timeout_s)
            while self._in_flight:
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0:
                    break
                self._clock.wait(self._cond, remaining)
            return self._in_flight

    def shared_sweep(
        self, run: Callable[[], CancelReport], *, join_timeout_s: float = SWEEP_JOIN_TIMEOUT_S
    ) -> CancelReport:
        """Run the cancel sweep ``run()``, or join the one already running.

        A sweep started in the current safe-mode period (since the last
        ``enter`` that turned the mode on) is shared: a second caller waits for
        it (at most ``join_timeout_s`` s) and returns its report instead of
        listing and cancelling the same orders again. A sweep of an earlier
        period is not joined (it may have listed before newer orders). What
        ``run`` raises reaches every caller sharing it; a join that times out
        returns a report whose ``errors`` say so. Thread-safe.
        """
        with self._cond:
            sweep = self._sweep
            if sweep is not None and sweep.period == self._entered:
                sweep.joiners += 1
                leader = False
            else:
                sweep = self._sweep = _Sweep(self._entered)
                leader = True
        if not leader:
            if not sweep.done.wait(max(0.0, join_timeout_s)):
                text = f"a concurrent cancel sweep did not finish within {join_timeout_s:g} s"
                log.error("cancel sweep: %s", text)
                return CancelReport(
                    listed=0, cancelled=(), failed=(), errors=(text,), already_final=()
                )
            if sweep.error is not None:
                raise sweep.error
            assert sweep.report is not None
            return sweep.report
        try:
            sweep.report = run()
            return sweep.report
        except BaseException as exc:
            sweep.error = exc
            raise
        finally:
            with self._cond:
                if self._sweep is sweep:
                    self._sweep = None
            sweep.done.set()

    @property
    def sweep_joiners(self) -> int:
        """Callers waiting for the cancel sweep running now (0 when none runs)."""
        with self._cond:
            return 0 if self._sweep is None else self._sweep.joiners

    def exit(self) -> bool:
        """Turn safe mode off; returns True when it was on."""
        with self._cond:
            was = self._active
            self._active = False
            self._since = None
            self._reason = ""
        if was:
            log.warning("safe mode exited: placements and amends allowed again")
        return was


# --------------------------------------------------------------------------- cancelling


class _Sweep:
    """One running cancel sweep that concurrent callers share (``SafeMode.shared_sweep``)."""

    __slots__ = ("period", "joiners", "done", "report", "error")

    def __init__(self, period: int) -> None:
        self.period = period
        self.joiners = 0
        self.done = threading.Event()
        self.report: CancelReport | None = None
        self.error: BaseException | None = None


@attrs.frozen(kw_only=True)
class CancelItem:
    """One order of a cancel sweep: ``inst_id``, ``ord_id``, ``cl_ord_id``, and the
    outcome ``code`` (``"0"`` accepted; an OKX ``sCode``/code otherwise; ``""``
    when no response arrived) with ``msg``. Thread safety: immutable."""

    inst_id: str
    ord_id: str
    cl_ord_id: str
    code: str
    msg: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class CancelReport:
    """What :func:`cancel_pending_orders` did.

    ``listed``: pending orders found; ``cancelled``: cancels OKX accepted
    (sCode 0 — the final state arrives on the orders channel or a query);
    ``already_final``: orders whose cancel OKX answered 51400/51401/51402 —
    already filled, cancelled (by a concurrent sweep, a person, the
    dead-man switch) or gone: nothing left to cancel, not a failure;
    ``failed``: cancels refused or unanswered (``code`` from OKX; ``""`` = no
    response, outcome unknown); ``errors``: listing or request failures as
    text. ``ok`` is True when nothing failed. Thread safety: immutable.
    """

    listed: int
    cancelled: tuple[CancelItem, ...]
    failed: tuple[CancelItem, ...]
    errors: tuple[str, ...]
    already_final: tuple[CancelItem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every listed order's cancel was accepted and listing succeeded."""
        return not self.failed and not self.errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "listed": self.listed,
            "ok": self.ok,
            "cancelled": [c.to_dict() for c in self.cancelled],
            "already_final": [c.to_dict() for c in self.already_final],
            "failed": [c.to_dict() for c in self.failed],
            "errors": list(self.errors),
        }


@attrs.frozen(kw_only=True)
class SafeModeReport:
    """What ``client.enter_safe_mode`` did: the resulting ``state``, ``drained``
    (True when no placement/amend admitted before entering is still running)
    and ``cancel`` (the :class:`CancelReport`, None without
    ``cancel_open_orders``). Thread safety: immutable."""

    state: SafeModeState
    drained: bool
    cancel: CancelReport | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "state": self.state.to_dict(),
            "drained": self.drained,
            "cancel": None if self.cancel is None else self.cancel.to_dict(),
        }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def cancel_pending_orders(client: OrderClient, *, inst_type: str | None = None) -> CancelReport:
    """Cancel every pending order of the account (optionally one ``inst_type``).

    Lists ``GET /api/v5/trade/orders-pending`` (all pages), then sends
    ``POST /api/v5/trade/cancel-batch-orders`` with up to 20 orders each,
    through the client's normal call path (request gate, cancel lane). Never
    raises for OKX or transport failures: they are reported in the
    :class:`CancelReport` (and logged at ERROR). Algo orders are not touched
    (``client.algo.cancel_algo_orders``). Thread safety: safe from any thread.
    """
    try:
        from .reconcile import list_pending_orders  # only when sweeping (Client start-up)

        pending = list_pending_orders(client, inst_type=inst_type)
    except OkxError as exc:
        log.error("cancel sweep: listing pending orders failed: %s", exc)
        return CancelReport(listed=0, cancelled=(), failed=(), errors=(_describe(exc),))
    cancelled: list[CancelItem] = []
    final: list[CancelItem] = []
    failed: list[CancelItem] = []
    errors: list[str] = []
    for start in range(0, len(pending), CANCEL_BATCH):
        chunk = pending[start : start + CANCEL_BATCH]
        orders = [{"inst_id": o.inst_id, "ord_id": o.ord_id} for o in chunk]
        acks: Sequence[Any]
        try:
            acks = client.trade.cancel_batch_orders(orders=orders)
        except OrderError as exc:
            # per order sent when the reply was matched (None: no item for it), else every item
            acks = [o.ack for o in exc.outcomes] if exc.outcomes else exc.items
        except (APIError, RequestStateError) as exc:
            errors.append(_describe(exc))
            code = getattr(exc, "code", "")
            msg = getattr(exc, "msg", "") or str(exc)
            failed += [_item(o, code, msg) for o in chunk]
            continue
        by_id = {_text(getattr(a, "ord_id", "")): a for a in acks if a is not None}
        for order in chunk:
            ack = by_id.get(_text(order.ord_id))
            if ack is None:
                failed.append(
                    _item(order, "", "no item for this order in the reply (outcome unknown)")
                )
            elif ack.ok:
                cancelled.append(_item(order, "0", ""))
            elif ack.s_code in ALREADY_FINAL_CODES:
                final.append(_item(order, ack.s_code, ack.s_msg))
            else:
                failed.append(_item(order, ack.s_code, ack.s_msg))
    report = CancelReport(
        listed=len(pending),
        cancelled=tuple(cancelled),
        already_final=tuple(final),
        failed=tuple(failed),
        errors=tuple(errors),
    )
    level = logging.WARNING if report.ok else logging.ERROR
    log.log(
        level,
        "cancel sweep: %d pending, %d cancel(s) accepted, %d already final, %d failed",
        report.listed,
        len(report.cancelled),
        len(report.already_final),
        len(report.failed),
        extra={"listed": report.listed, "failed": [f.to_dict() for f in report.failed]},
    )
    return report


def _item(order: Any, code: str | None, msg: str | None) -> CancelItem:
    return CancelItem(
        inst_id=_text(order.inst_id),
        ord_id=_text(order.ord_id),
        cl_ord_id=_text(order.cl_ord_id),
        code=_text(code),
        msg=_text(msg),
    )


def enter_safe_mode(
    client: OrderClient,
    safe_mode: SafeMode,
    *,
    cancel_open_orders: bool = False,
    reason: str = "",
    drain_timeout_s: float = 30.0,
) -> SafeModeReport:
    """Turn ``safe_mode`` on for ``client``; optionally cancel every pending order.

    The body of ``client.enter_safe_mode`` (see :meth:`SafeMode.enter` for the
    race contract). Logs at WARNING (ERROR when admitted orders are still in
    flight after ``drain_timeout_s``). Never raises for OKX/transport failures
    of the cancel sweep (they are in the report). Concurrent calls share one
    sweep (:meth:`SafeMode.shared_sweep`). Thread safety: any thread.
    """
    left = safe_mode.enter(reason, drain_timeout_s=drain_timeout_s)
    state = safe_mode.state
    log.warning(
        "safe mode entered%s: placements and amends are refused before sending",
        f" ({state.reason})" if state.reason else "",
        extra={"reason": state.reason, "cancel_open_orders": cancel_open_orders},
    )
    if left:
        log.error(
            "safe mode: %d order request(s) admitted before it are still in flight after %g s",
            left,
            drain_timeout_s,
            extra={"in_flight": left},
        )
    sweep = (
        safe_mode.shared_sweep(lambda: cancel_pending_orders(client))
        if cancel_open_orders
        else None
    )
    return SafeModeReport(state=safe_mode.state, drained=left == 0, cancel=sweep)
