"""Reconciliation (runbook §6): REST is the authority; never a blind retry of order entry.

- :class:`Reconciler` — ``snapshot()`` pulls balances, positions, pending
  orders (all pages) and recent fills into one :class:`AccountSnapshot`;
  ``resolve_order(inst_id, cl_ord_id)`` tells the true state of an order sent
  in an uncertain window (:class:`OrderResolution`: found with its state, or
  not found).
- :func:`place_order_safely` (``client.trade.place_order_safely(...)``) —
  places with a ``clOrdId`` and an ``expTime``; when the outcome is unknown
  (:func:`is_outcome_unknown`: ``RequestStateError(dispatched=True)``,
  an ``OrderError`` whose reply lacks the order's ack, 50004 / 51149 /
  51054 / 50026, HTTP 5xx without an OKX body) it queries
  by clOrdId before deciding to re-send, and re-sends (same clOrdId) only
  once the order is proven absent.

Why the ``expTime``: a request whose answer was lost may still be inside
OKX and be processed later, so "not found" right away proves nothing. OKX
drops a request that arrives after its ``expTime`` (facts §7), so a query
made after ``expTime`` (by the client's OKX-offset clock) that finds nothing
proves the order will never exist; only then is it re-sent. If OKX did
accept it, the re-send with the same clOrdId meets 51016 ("clOrdId already
exists"), which is resolved by query too. Facts §3.4.

Thread safety: a ``Reconciler`` holds only the client; all functions and
methods may be called from any thread.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import APIError, OkxError, OrderError, RequestStateError, ValidationError
from ..ids import is_valid_cl_ord_id, new_cl_ord_id
from ..models import Balance, Fill, Order, OrderAck, Position
from ..rest.endpoints import ORDER_NOT_FOUND, registry
from ..rest.named import GROUP_CLASSES
from .ports import OrderClient, ReconcileClient

__all__ = [
    "Reconciler",
    "AccountSnapshot",
    "OrderResolution",
    "SafeOrderResult",
    "SafeTradeAPI",
    "TRADE_EXTRAS",
    "place_order_safely",
    "is_outcome_unknown",
    "list_pending_orders",
    "pending_drift",
    "UNKNOWN_OUTCOME_CODES",
    "ORDER_NOT_FOUND",
    "DUPLICATE_CL_ORD_ID",
]

log = logging.getLogger("okx_sync.ops.reconcile")

#: OKX codes after which an order's outcome is unknown (facts §3.4).
UNKNOWN_OUTCOME_CODES = frozenset({"50004", "51149", "51054", "50026"})
#: Placement: clOrdId already exists among pending orders (the original was accepted).
DUPLICATE_CL_ORD_ID = "51016"
#: Orders per ``orders-pending`` page (OKX maximum).
PENDING_PAGE = 100


def _codes(err: APIError) -> set[str]:
    codes = {err.code} if err.code else set()
    if isinstance(err, OrderError):
        codes |= {str(getattr(i, "s_code", "")) for i in err.failed}
    return codes


def is_outcome_unknown(err: BaseException) -> bool:
    """True when an order-entry failure leaves the order's existence unknown. Pure.

    ``RequestStateError`` with ``dispatched=True``; an ``OrderError`` whose
    reply has no item for some order sent (``err.outcome_unknown``: a missing
    ack, e.g. code "0" with no data, or a batch reply short of items); an
    ``APIError`` (or an ``OrderError`` item) with code 50004, 51149, 51054 or
    50026; an HTTP 5xx that carried no OKX code. Everything else either
    reached OKX and was refused, or never left (``dispatched=False``):
    nothing was placed.
    """
    if isinstance(err, RequestStateError):
        return err.dispatched
    if isinstance(err, OrderError) and err.outcome_unknown:
        return True
    if not isinstance(err, APIError):
        return False
    if _codes(err) & UNKNOWN_OUTCOME_CODES:
        return True
    return not err.code and err.http_status is not None and err.http_status >= 500


def list_pending_orders(client: OrderClient, *, inst_type: str | None = None) -> list[Order]:
    """Every pending order of the account (``orders-pending``, all pages, newest first).

    Raises what the query raises. Thread safety: safe from any thread.
    """
    out: list[Order] = []
    after: str | None = None
    while True:
        page = client.trade.get_order_list(inst_type=inst_type, after=after, limit=PENDING_PAGE)
        out.extend(page)
        if len(page) < PENDING_PAGE or not page[-1].ord_id:
            return out
        after = page[-1].ord_id


def _raw(model: Any) -> dict[str, Any]:
    return dict(getattr(model, "raw", {}) or {})


@attrs.frozen(kw_only=True)
class AccountSnapshot:
    """The account as OKX's REST API reports it (the authority after an incident).

    ``taken_at_ms`` (OKX time estimate when the first query went out),
    ``duration_s`` (seconds the queries took: the parts are not one atomic
    read), ``balance`` (``Balance``), ``positions`` (``Position``),
    ``pending_orders`` (``Order``, live/partially_filled), ``fills``
    (``Fill``, newest first, last 3 days, at most ``fills_limit``),
    ``drift`` (with ``expected_pending``: one text per difference between the
    orders the program believes pending and OKX's; empty when they agree).
    Thread safety: immutable.
    """

    taken_at_ms: int
    duration_s: float
    balance: Balance
    positions: tuple[Position, ...]
    pending_orders: tuple[Order, ...]
    fills: tuple[Fill, ...]
    drift: tuple[str, ...] = ()

    def order(self, *, cl_ord_id: str | None = None, ord_id: str | None = None) -> Order | None:
        """The pending order with this ``cl_ord_id`` or ``ord_id`` (None when not pending)."""
        for o in self.pending_orders:
            if (cl_ord_id and o.cl_ord_id == cl_ord_id) or (ord_id and o.ord_id == ord_id):
                return o
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the OKX dicts as received)."""
        return {
            "taken_at_ms": self.taken_at_ms,
            "duration_s": self.duration_s,
            "balance": _raw(self.balance),
            "positions": [_raw(p) for p in self.positions],
            "pending_orders": [_raw(o) for o in self.pending_orders],
            "fills": [_raw(f) for f in self.fills],
            "drift": list(self.drift),
        }


@attrs.frozen(kw_only=True)
class OrderResolution:
    """The true state of one order, learned by ``GET /api/v5/trade/order`` by clOrdId.

    ``found`` False means ``queries`` answered queries all said 51603 (order
    does not exist) — definitive only when made after the request's
    ``expTime`` (``not_before_ms``). ``state`` (``live``,
    ``partially_filled``, ``filled``, ``canceled``, ``mmp_canceled``) and
    ``order`` when found; ``checked_at_ms`` (OKX time estimate of the last
    query). Thread safety: immutable.
    """

    inst_id: str
    cl_ord_id: str
    found: bool
    state: str | None
    order: Order | None
    queries: int
    checked_at_ms: int

    @property
    def live(self) -> bool:
        """True when found and still able to fill (live / partially_filled)."""
        return self.order is not None and self.order.is_live

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "inst_id": self.inst_id,
            "cl_ord_id": self.cl_ord_id,
            "found": self.found,
            "state": self.state,
            "order": None if self.order is None else _raw(self.order),
            "queries": self.queries,
            "checked_at_ms": self.checked_at_ms,
        }


def _expected_ids(expected: Iterable[str] | None) -> frozenset[str] | None:
    if expected is None:
        return None
    if isinstance(expected, str):
        raise ValidationError("expected_pending must be an iterable of clOrdIds, not one str")
    ids = frozenset(expected)
    bad = [i for i in ids if not isinstance(i, str) or not is_valid_cl_ord_id(i)]
    if bad:
        raise ValidationError(f"expected_pending: not clOrdIds: {bad[:5]!r}")
    return ids


def pending_drift(expected: Collection[str], pending: Iterable[Order]) -> tuple[str, ...]:
    """The differences between the clOrdIds a program believes pending (``expected``)
    and the pending orders OKX lists, as sorted texts. Pure."""
    pending = list(pending)
    seen = {o.cl_ord_id for o in pending if o.cl_ord_id}
    out = [f"{c} not pending on OKX" for c in sorted(set(expected) - seen)]
    out += sorted(
        f"{o.cl_ord_id or 'ordId ' + str(o.ord_id)} pending on OKX, not expected"
        for o in pending
        if not o.cl_ord_id or o.cl_ord_id not in expected
    )
    return tuple(out)


class Reconciler:
    """Reads the authoritative account state over REST: ``Reconciler(client)``.

    ``snapshot()`` and ``resolve_order()`` go through the client's normal call
    path (request gate, signing, retries of reads). Typical use: after a WS
    reconnect (``ws.on_reconnect(...)``), after an incident, and before
    trading again (runbook §0.4, §6.2).

    Raises nothing at construction. Thread safety: safe from any thread; it
    keeps no state between calls.
    """

    def __init__(self, client: ReconcileClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"Reconciler({self._client!r})"

    def snapshot(
        self,
        *,
        inst_type: str | None = None,
        fills_limit: int = 100,
        expected_pending: Iterable[str] | None = None,
    ) -> AccountSnapshot:
        """Balances, positions, pending orders (all pages) and recent fills, in one object.

        ``inst_type`` (SPOT, MARGIN, SWAP, FUTURES, OPTION) narrows orders,
        positions (not for SPOT) and fills; ``fills_limit`` is 1..100.
        ``expected_pending``: the clOrdIds the program believes pending; the
        snapshot's ``drift`` then names each one OKX does not show pending and
        each pending order OKX shows that is not among them (by clOrdId, else
        ordId). The outcome (failed, drift, or clean) is noted on the client's
        ``health_monitor``: ``client.health()`` shows a ``reconcile`` part,
        degraded after a failed run or one with drift, until the next run.
        Raises ``ValidationError`` for a bad ``fills_limit`` or
        ``expected_pending`` (nothing noted), else what the queries raise
        (``APIError``/``RequestStateError``): a partial snapshot is never returned.
        """
        if isinstance(fills_limit, bool) or not isinstance(fills_limit, int):
            raise ValidationError(f"fills_limit must be an int 1..100, got {fills_limit!r}")
        if not 1 <= fills_limit <= 100:
            raise ValidationError(f"fills_limit must be 1..100, got {fills_limit}")
        expected = _expected_ids(expected_pending)
        client = self._client
        clock = client.clock
        started = clock.monotonic()
        try:
            taken_at = int(client.now_ms())
            balance = client.account.get_balance()
            pos_type = None if inst_type == "SPOT" else inst_type
            positions = client.account.get_positions(inst_type=pos_type)
            pending = list_pending_orders(client, inst_type=inst_type)
            fills = client.trade.get_fills(inst_type=inst_type, limit=fills_limit)
        except Exception as exc:
            client.health_monitor.note_reconcile(
                at=clock.monotonic(), error=f"{type(exc).__name__}: {exc}"
            )
            raise
        drift = () if expected is None else pending_drift(expected, pending)
        client.health_monitor.note_reconcile(at=clock.monotonic(), drift=drift)
        if drift:
            log.warning("reconciliation found drift: %s", "; ".join(drift))
        return AccountSnapshot(
            taken_at_ms=taken_at,
            duration_s=round(clock.monotonic() - started, 6),
            balance=balance,
            positions=tuple(positions),
            pending_orders=tuple(pending),
            fills=tuple(fills),
            drift=drift,
        )

    def resolve_order(
        self,
        inst_id: str,
        cl_ord_id: str,
        *,
        not_before_ms: int | None = None,
        attempts: int = 3,
        interval_s: float = 0.5,
    ) -> OrderResolution:
        """Find out whether the order ``cl_ord_id`` on ``inst_id`` exists, and its state.

        Waits (injected clock) until ``client.now_ms() >= not_before_ms`` —
        pass the request's ``expTime`` so that "not found" is final. Then
        queries ``GET /api/v5/trade/order?instId=&clOrdId=``: the first answer
        with the order returns ``found=True``; ``attempts`` answers of 51603,
        ``interval_s`` apart (OKX may show a new order a moment late), return
        ``found=False``. A query that gets no answer or another error is
        retried, at most ``2 * attempts`` queries in all; then its error is
        raised (``RequestStateError``/``APIError``: still unknown — do not
        re-send). Raises ``ValidationError`` for bad arguments.
        """
        if not inst_id or not isinstance(inst_id, str):
            raise ValidationError(f"inst_id must be a non-empty string, got {inst_id!r}")
        if not isinstance(cl_ord_id, str) or not is_valid_cl_ord_id(cl_ord_id):
            raise ValidationError(f"cl_ord_id must be 1-32 letters/digits, got {cl_ord_id!r}")
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValidationError(f"attempts must be an int >= 1, got {attempts!r}")
        if interval_s < 0:
            raise ValidationError(f"interval_s must be >= 0, got {interval_s!r}")
        client = self._client
        clock = client.clock
        if not_before_ms is not None:
            wait_ms = int(not_before_ms) - int(client.now_ms())
            if wait_ms > 0:
                clock.sleep(wait_ms / 1000.0)
        answered = 0
        last_error: OkxError | None = None
        for query in range(1, 2 * attempts + 1):
            if query > 1:
                clock.sleep(interval_s)
            try:
                order = client.trade.get_order(inst_id=inst_id, cl_ord_id=cl_ord_id)
            except APIError as exc:
                if exc.code != ORDER_NOT_FOUND:
                    last_error = exc
                    continue
                answered += 1
                if answered >= attempts:
                    return self._resolution(inst_id, cl_ord_id, None, query)
                continue
            except RequestStateError as exc:
                last_error = exc
                continue
            return self._resolution(inst_id, cl_ord_id, order, query)
        assert last_error is not None
        raise last_error

    def _resolution(
        self, inst_id: str, cl_ord_id: str, order: Order | None, queries: int
    ) -> OrderResolution:
        return OrderResolution(
            inst_id=inst_id,
            cl_ord_id=cl_ord_id,
            found=order is not None,
            state=None if order is None else order.state,
            order=order,
            queries=queries,
            checked_at_ms=int(self._client.now_ms()),
        )


# --------------------------------------------------------------------------- safe placement


@attrs.frozen(kw_only=True)
class SafeOrderResult:
    """What :func:`place_order_safely` established about the order.

    ``cl_ord_id``, ``inst_id``, ``ord_id``; ``ack`` (the ``OrderAck`` when a
    send was answered normally) or ``order`` (the ``Order`` found by query
    when an answer was lost — ``resolved`` is then True); ``state`` (the
    order's state when learned by query, None for a plain ack); ``sends``
    (how many times the order was sent: more than 1 only after each earlier
    send was proven absent); ``uncertain`` (the unknown-outcome failures met,
    as text). Thread safety: immutable.
    """

    cl_ord_id: str
    inst_id: str
    ord_id: str | None
    ack: OrderAck | None
    order: Order | None
    state: str | None
    sends: int
    resolved: bool
    uncertain: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "cl_ord_id": self.cl_ord_id,
            "inst_id": self.inst_id,
            "ord_id": self.ord_id,
            "ack": None if self.ack is None else _raw(self.ack),
            "order": None if self.order is None else _raw(self.order),
            "state": self.state,
            "sends": self.sends,
            "resolved": self.resolved,
            "uncertain": list(self.uncertain),
        }


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _is_duplicate(exc: BaseException) -> bool:
    return isinstance(exc, APIError) and DUPLICATE_CL_ORD_ID in _codes(exc)


PLACE_PATH = registry().by_name("place_order").path


def _state_error(
    text: str, source: BaseException, cl_ord_id: str, *, dispatched: bool
) -> RequestStateError:
    """A RequestStateError about the placement (stage taken from ``source`` when it has one)."""
    return RequestStateError(
        text,
        stage=getattr(source, "stage", "http"),
        dispatched=dispatched,
        method="POST",
        path=PLACE_PATH,
        cl_ord_ids=(cl_ord_id,),
    )


def place_order_safely(
    client: ReconcileClient,
    *,
    inst_id: str,
    cl_ord_id: str | None = None,
    exp_time: int | None = None,
    expire_after_s: float = 10.0,
    max_sends: int = 3,
    resolve_attempts: int = 3,
    resolve_interval_s: float = 0.5,
    **params: Any,
) -> SafeOrderResult:
    """Place one order so that it is never duplicated and never blindly retried.

    Takes the keywords of ``client.trade.place_order`` (``inst_id``,
    ``td_mode``, ``side``, ``ord_type``, ``sz``, ``px``, ...). ``cl_ord_id``
    defaults to :func:`okx_sync.new_cl_ord_id`; each send carries an
    ``expTime`` (``exp_time`` for the first send when given, else
    ``client.now_ms() + expire_after_s`` in ms). When a send's outcome is
    unknown (:func:`is_outcome_unknown`), the order is resolved with
    :meth:`Reconciler.resolve_order` after that ``expTime``: found → it is
    returned (``resolved=True``, any state, even ``canceled``/``filled``);
    proven absent → re-sent with the same clOrdId, up to ``max_sends`` sends
    in all. A re-send answered 51016 (clOrdId exists) means the earlier send
    was accepted: resolved by query as well.

    Raises: ``ValidationError``/``InstrumentRuleError``/``SafeModeError``
    before sending; ``APIError``/``OrderError`` when OKX refused the order
    (nothing placed); ``RequestStateError(dispatched=False)`` when nothing
    was placed (not sent, or every send proven absent after ``max_sends``);
    ``RequestStateError(dispatched=True)`` when the outcome is still unknown
    because the resolving queries got no answer — do not re-send then; call
    ``Reconciler(client).resolve_order`` later. Thread safety: any thread.

    ``expire_after_s`` (seconds, > 0; default 10) is how long each send stays
    valid at OKX (``expTime = now + expire_after_s``: OKX does not process it
    later) and so also how long the calling thread waits, on an unknown
    outcome, before the clOrdId query can prove anything. Shorter: the caller
    is freed sooner, but an order delayed on the way (slow network, busy
    exchange) reaches OKX after its expTime and is not processed (code 50036 /
    50037, nothing placed). Longer: a slow path still gets the order in, but
    a lost answer blocks the caller for up to that long.
    """
    if cl_ord_id is None:
        cl_ord_id = new_cl_ord_id()
    if not isinstance(cl_ord_id, str) or not is_valid_cl_ord_id(cl_ord_id):
        raise ValidationError(f"cl_ord_id must be 1-32 letters/digits, got {cl_ord_id!r}")
    if not isinstance(inst_id, str) or not inst_id:
        raise ValidationError(f"inst_id must be a non-empty string, got {inst_id!r}")
    if isinstance(max_sends, bool) or not isinstance(max_sends, int) or max_sends < 1:
        raise ValidationError(f"max_sends must be an int >= 1, got {max_sends!r}")
    if (
        isinstance(expire_after_s, bool)
        or not isinstance(expire_after_s, int | float)
        or not math.isfinite(expire_after_s)
        or expire_after_s < 0.001
    ):
        raise ValidationError(
            f"expire_after_s must be a number of seconds >= 0.001, got {expire_after_s!r}"
        )
    expire_after_ms = round(expire_after_s * 1000.0)
    reconciler = Reconciler(client)
    uncertain: list[str] = []
    extra = {"cl_ord_id": cl_ord_id, "inst_id": inst_id}

    def result(sends: int, ack: OrderAck | None, order: Order | None) -> SafeOrderResult:
        return SafeOrderResult(
            cl_ord_id=cl_ord_id,
            inst_id=inst_id,
            ord_id=ack.ord_id if ack is not None else (order.ord_id if order else None),
            ack=ack,
            order=order,
            state=None if order is None else order.state,
            sends=sends,
            resolved=order is not None,
            uncertain=tuple(uncertain),
        )

    for sends in range(1, max_sends + 1):
        if sends == 1 and exp_time is not None:
            exp = int(exp_time)
        else:
            exp = int(client.now_ms()) + expire_after_ms
        try:
            ack = client.trade.place_order(
                inst_id=inst_id, cl_ord_id=cl_ord_id, exp_time=exp, **params
            )
        except (APIError, RequestStateError) as exc:
            duplicate = sends > 1 and _is_duplicate(exc)
            if not duplicate and not is_outcome_unknown(exc):
                raise
            uncertain.append(_describe(exc))
            why = "clOrdId already exists" if duplicate else "outcome unknown"
            log.warning(
                "order clOrdId=%s on %s: %s after send %d (%s); resolving by clOrdId",
                cl_ord_id,
                inst_id,
                why,
                sends,
                uncertain[-1],
                extra={**extra, "cause": uncertain[-1]},
            )
            try:
                found = reconciler.resolve_order(
                    inst_id,
                    cl_ord_id,
                    not_before_ms=None if duplicate else exp,
                    attempts=resolve_attempts,
                    interval_s=resolve_interval_s,
                )
            except OkxError as query_exc:
                raise _state_error(
                    f"order outcome unknown after {sends} send(s) and the clOrdId query got "
                    f"no answer ({_describe(query_exc)}); do not re-send: resolve it later",
                    query_exc,
                    cl_ord_id,
                    dispatched=True,
                ) from query_exc
            if found.order is not None:
                log.warning(
                    "order clOrdId=%s on %s resolved by query: it exists (ordId %s, state %s); "
                    "not re-sent",
                    cl_ord_id,
                    inst_id,
                    found.order.ord_id,
                    found.state,
                    extra={**extra, "state": found.state},
                )
                return result(sends, None, found.order)
            if duplicate:
                raise  # 51016 for a clOrdId no query can find: not ours to guess
            if sends == max_sends:
                raise _state_error(
                    f"order not placed: {sends} send(s), each proven absent by a clOrdId "
                    "query after its expTime",
                    exc,
                    cl_ord_id,
                    dispatched=False,
                ) from exc
            log.warning(
                "order clOrdId=%s on %s proven absent (51603 by clOrdId after its expTime, "
                "%d queries); re-sending the same clOrdId (send %d of at most %d)",
                cl_ord_id,
                inst_id,
                found.queries,
                sends + 1,
                max_sends,
                extra=extra,
            )
        else:
            return result(sends, ack, None)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


#: What ops composes onto ``client.trade`` (``EndpointGroup(client, extras=...)``, bound to
#: the client at construction): ``client.trade.place_order_safely(**kwargs)`` is
#: :func:`place_order_safely` on that client.
TRADE_EXTRAS: Mapping[str, Callable[..., Any]] = {"place_order_safely": place_order_safely}

if TYPE_CHECKING:
    from ..rest.api import TradeAPI

    class SafeTradeAPI(TradeAPI):
        """The type of ``client.trade``: every OKX trade endpoint plus ``place_order_safely``
        (composed from :data:`TRADE_EXTRAS`; no runtime subclass)."""

        #: :func:`place_order_safely` bound to the client (its keywords, less ``client``).
        place_order_safely: Callable[..., SafeOrderResult]

else:
    #: ``client.trade``'s class: the registry's trade group itself (``place_order_safely``
    #: is composed onto the object, see :data:`TRADE_EXTRAS`).
    SafeTradeAPI = GROUP_CLASSES["trade"]
