"""Dead-man switch: keep OKX's ``cancel-all-after`` timer armed from a background thread.

OKX cancels every pending order of the account (or of one ``tag``) when the
timer set by ``POST /api/v5/trade/cancel-all-after {"timeOut": "60"}`` runs
out (facts §7: ``timeOut`` 10–120 s, ``0`` disarms; cancelled orders show
``cancelSource`` 20). A :class:`DeadManSwitch` re-sends it every
``refresh_s`` seconds, so the timer only fires when this process stops
refreshing — it hangs, dies, or loses its network.

- ``start()`` arms the timer on the calling thread (errors raise there), then
  starts the keeper thread ``okx-dead-man`` (``okx-dead-man-<tag>``).
- A failed refresh is logged at WARNING, counted, handed to the error
  handlers and retried sooner (every ``min(refresh_s, 2)`` s).
- When no refresh has succeeded within ``timeout_s`` of the last successful
  one, OKX may already have cancelled everything: logged at ERROR and a
  :class:`DeadManSwitchError` goes to the error handlers (once per expiry;
  a later successful refresh re-arms it and is logged at WARNING). The
  keeper wakes at the deadline; when it wakes later than both the deadline
  and the next refresh, the alarm comes first, then the attempt.
- ``stop()`` (also ``close()``, ``client.close()``) stops the thread, joins it
  and disarms the timer with ``timeOut=0``; ``stop(disarm=False)`` leaves it
  armed — the timer then fires, as when the process dies (drills use it).

The deadline is measured conservatively from when each successful refresh
was *sent*. A refresh blocked in a hanging request is judged when the request
returns (at most the client's HTTP ``timeout_s`` later).

Thread safety: every public method may be called from any thread; error
handlers run on the keeper thread (or the caller of ``start``), with no
okx_sync lock held; their exceptions are logged and counted.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import attrs

from ..clock import Clock
from ..errors import OkxError, ValidationError
from ..handler_errors import HandlerErrorSummary, report_handler_error
from ..lifecycle import Owned
from ..validators import seconds
from .ports import OrderClient

__all__ = [
    "DeadManSwitch",
    "DeadManStats",
    "DeadManSwitchError",
    "ErrorHandler",
    "MIN_TIMEOUT_S",
    "MAX_TIMEOUT_S",
]

log = logging.getLogger("okx_sync.ops.dead_man")

MIN_TIMEOUT_S = 10
MAX_TIMEOUT_S = 120
_RETRY_S = 2.0
_TAG = re.compile(r"^[A-Za-z0-9]{1,16}$")

ErrorHandler = Callable[[BaseException], Any]


@attrs.frozen(kw_only=True)
class DeadManStats:
    """A frozen snapshot of a :class:`DeadManSwitch` (``switch.stats()``).

    ``tag`` (None: account level), ``timeout_s``, ``refresh_s``, ``running``,
    ``armed``, ``refreshes`` (successful, arming included), ``failures``
    (total), ``consecutive_failures``, ``expired`` (the timeout passed without
    a refresh and no refresh succeeded since), ``expiries``, ``last_refresh``
    (Unix s), ``deadline`` (Unix s by which a refresh must succeed; None when
    not armed), ``trigger_time`` (OKX's ``triggerTime``, Unix s),
    ``last_error``, ``handler_errors``. ``to_dict()`` is the
    JSON-serialisable dict. Thread safety: immutable.
    """

    tag: str | None
    timeout_s: int
    refresh_s: float
    running: bool
    armed: bool
    refreshes: int
    failures: int
    consecutive_failures: int
    expired: bool
    expiries: int
    last_refresh: float | None
    deadline: float | None
    trigger_time: int | None
    last_error: str
    handler_errors: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return attrs.asdict(self)


class DeadManSwitchError(OkxError):
    """The dead-man switch could not refresh ``cancel-all-after`` before its timeout.

    OKX may have cancelled (or is about to cancel) every pending order in the
    switch's scope. ``tag`` (None = account level), ``timeout_s``,
    ``last_refresh`` (Unix s of the last successful refresh, None if never),
    ``failures`` (consecutive failed refreshes). The last refresh error is
    chained as ``__cause__``. Thread safety: immutable once raised.
    """

    def __init__(
        self,
        message: str,
        *,
        tag: str | None,
        timeout_s: int,
        last_refresh: float | None,
        failures: int,
    ) -> None:
        super().__init__(message)
        self.tag = tag
        self.timeout_s = timeout_s
        self.last_refresh = last_refresh
        self.failures = failures


def _check(timeout_s: Any, refresh_s: Any, tag: Any) -> None:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int):
        raise ValidationError(f"timeout_s must be an int of seconds, got {timeout_s!r}")
    if not MIN_TIMEOUT_S <= timeout_s <= MAX_TIMEOUT_S:
        raise ValidationError(
            f"timeout_s must be {MIN_TIMEOUT_S}..{MAX_TIMEOUT_S} s (OKX cancel-all-after), "
            f"got {timeout_s}"
        )
    seconds(refresh_s, name="refresh_s")
    if not 1 <= refresh_s < timeout_s:
        raise ValidationError(
            f"refresh_s must be >= 1 s (OKX allows 1 request/s) and < timeout_s={timeout_s}, "
            f"got {refresh_s}"
        )
    if tag is not None and (not isinstance(tag, str) or not _TAG.match(tag)):
        raise ValidationError(f"tag must be 1-16 ASCII letters/digits, got {tag!r}")


class DeadManSwitch(Owned):
    """Keeps ``cancel-all-after`` armed with ``timeout_s`` by refreshing every ``refresh_s``.

    Build it with ``client.dead_man_switch(timeout_s=60, refresh_s=10,
    tag=None)`` (armed and running on return; the client disarms it on
    ``close()``), or ``DeadManSwitch(client, ...).start()``. ``on_error``
    registers an error handler ``fn(exc)`` (also as a decorator); the
    constructor takes one as ``on_error=``. ``stats()`` gives the counters.
    Use it as a context manager to stop (and disarm) it.

    Raises ``ValidationError`` for ``timeout_s`` outside 10..120 (int),
    ``refresh_s`` not in [1, timeout_s), or a bad ``tag`` (1–16 letters/digits);
    ``start()`` raises what the first ``cancel_all_after`` call raises.
    Thread safety: see the module doc.
    """

    def __init__(
        self,
        client: OrderClient,
        *,
        timeout_s: int = 60,
        refresh_s: float = 10.0,
        tag: str | None = None,
        on_error: ErrorHandler | None = None,
        clock: Clock | None = None,
    ) -> None:
        _check(timeout_s, refresh_s, tag)
        self._client = client
        self.timeout_s = timeout_s
        self.refresh_s = float(refresh_s)
        self.tag = tag
        self._clock: Clock = clock or client.clock
        self._cond = threading.Condition(threading.Lock())
        self._handlers: tuple[ErrorHandler, ...] = (on_error,) if on_error else ()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._stopped = False
        self._armed = False
        self._refreshes = 0
        self._failures = 0
        self._consecutive = 0
        self._handler_errors = 0
        self._handler_log = HandlerErrorSummary(monotonic=self._clock.monotonic)
        self._expiries = 0
        self._expired = False
        self._last_ok_mono: float | None = None
        self._last_ok_wall: float | None = None
        self._trigger_time: int | None = None
        self._last_error = ""
        self._last_exc: BaseException | None = None

    @property
    def name(self) -> str:
        """The keeper thread's name: ``okx-dead-man`` or ``okx-dead-man-<tag>``."""
        return f"okx-dead-man-{self.tag}" if self.tag else "okx-dead-man"

    def __repr__(self) -> str:
        return (
            f"DeadManSwitch(timeout_s={self.timeout_s}, refresh_s={self.refresh_s:g}, "
            f"tag={self.tag!r}, armed={self._armed}, running={self.running})"
        )

    # ------------------------------------------------------------------ handlers
    def on_error(self, fn: ErrorHandler) -> ErrorHandler:
        """Register ``fn(exc)``: called with each refresh failure and with a
        :class:`DeadManSwitchError` when the timeout passed. Returns ``fn``."""
        with self._cond:
            self._handlers = (*self._handlers, fn)
        return fn

    def _emit(self, exc: BaseException) -> None:
        for fn in self._handlers:
            try:
                fn(exc)
            except Exception as handler_exc:  # noqa: BLE001 - a handler must never kill the keeper
                with self._cond:
                    self._handler_errors += 1
                report_handler_error(
                    log,
                    self._handler_log,
                    f"on_error {getattr(fn, '__name__', fn)!s}",
                    handler_exc,
                    f"dead-man switch {self.name}: ",
                    {"tag": self.tag},
                )

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        """True while the keeper thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def armed(self) -> bool:
        """True after a successful arm/refresh until ``stop()`` disarms it."""
        return self._armed

    def stats(self) -> DeadManStats:
        """The switch's counters as a frozen :class:`DeadManStats` (``to_dict()`` for JSON)."""
        with self._cond:
            deadline = None
            if self._last_ok_wall is not None and self._armed:
                deadline = self._last_ok_wall + self.timeout_s
            return DeadManStats(
                tag=self.tag,
                timeout_s=self.timeout_s,
                refresh_s=self.refresh_s,
                running=self.running,
                armed=self._armed,
                refreshes=self._refreshes,
                failures=self._failures,
                consecutive_failures=self._consecutive,
                expired=self._expired,
                expiries=self._expiries,
                last_refresh=self._last_ok_wall,
                deadline=deadline,
                trigger_time=self._trigger_time,
                last_error=self._last_error,
                handler_errors=self._handler_errors,
            )

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> DeadManSwitch:
        """Arm the timer now (raises what ``cancel_all_after`` raises: nothing then
        runs) and start the keeper thread. Returns self. Raises
        ``ValidationError`` when already started or stopped."""
        with self._cond:
            if self._thread is not None or self._stopped:
                raise ValidationError("a DeadManSwitch can be started once")
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._refresh(self.timeout_s)  # raises: caller learns at once
        log.info(
            "dead-man switch armed: cancel-all-after %d s, refreshed every %g s",
            self.timeout_s,
            self.refresh_s,
            extra={"tag": self.tag, "timeout_s": self.timeout_s},
        )
        self._thread.start()
        return self

    def stop(self, *, disarm: bool = True, timeout_s: float = 5.0) -> bool:
        """Stop and join the keeper; with ``disarm`` send ``timeOut=0``. Idempotent.

        Returns True when the timer is known to be disarmed (or ``disarm`` is
        False and the thread stopped). A failed disarm is logged at ERROR —
        OKX will then cancel the orders in scope when the timer runs out.
        """
        with self._cond:
            if self._stopped:
                return not self._armed or not disarm
            self._stopped = self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread() and thread.is_alive():
            thread.join(timeout_s)
        ok = True
        if disarm and self._armed:
            try:
                self._send(0)
                with self._cond:
                    self._armed = False
                log.info("dead-man switch disarmed (timeOut=0)", extra={"tag": self.tag})
            except Exception as exc:  # noqa: BLE001 - reported, never raised from stop/close
                ok = False
                with self._cond:
                    self._last_error = f"disarm: {type(exc).__name__}: {exc}"
                log.error(
                    "dead-man switch could not disarm cancel-all-after: OKX cancels the "
                    "pending orders in scope when the timer runs out: %s",
                    exc,
                    extra={"tag": self.tag},
                )
        self._owned_closed()  # the client no longer lists it
        return ok

    def close(self, timeout_s: float = 5.0) -> bool:
        """``stop(timeout=timeout)`` (disarming); what ``client.close()`` calls."""
        return self.stop(timeout_s=timeout_s)

    def __enter__(self) -> DeadManSwitch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the keeper
    def _send(self, time_out: int) -> list[Any]:
        result: list[Any] = self._client.trade.cancel_all_after(
            time_out=str(time_out), tag=self.tag
        )
        return result

    def _refresh(self, time_out: int) -> None:
        sent_mono = self._clock.monotonic()
        sent_wall = self._clock.time()
        data = self._send(time_out)
        trigger = None
        item = getattr(data[0], "raw", data[0]) if data else None  # a record keeps the item
        if isinstance(item, dict):
            try:
                trigger = int(item.get("triggerTime") or 0) or None
            except (TypeError, ValueError):
                trigger = None
        with self._cond:
            recovered = self._expired
            self._armed = True
            self._refreshes += 1
            self._consecutive = 0
            self._expired = False
            self._last_ok_mono = sent_mono
            self._last_ok_wall = sent_wall
            self._trigger_time = trigger
        if recovered:
            log.warning(
                "dead-man switch re-armed after its timeout had passed",
                extra={"tag": self.tag, "timeout_s": self.timeout_s},
            )

    def _deadline(self) -> float:
        last = self._last_ok_mono
        return (last if last is not None else self._clock.monotonic()) + self.timeout_s

    def _run(self) -> None:
        with self._cond:
            armed_at = self._last_ok_mono
        # the schedule counts from when start() sent the arming refresh, not from
        # whenever this thread first gets to run
        next_due = (armed_at if armed_at is not None else self._clock.monotonic()) + self.refresh_s
        while True:
            with self._cond:
                while not self._stopping:
                    now = self._clock.monotonic()
                    wake = next_due if self._expired else min(next_due, self._deadline())
                    if now >= wake:
                        break
                    self._clock.wait(self._cond, wake - now)
                if self._stopping:
                    return
            # One reading of the clock per round. A deadline that passed before
            # this wake-up is reported first: an attempt made after it cannot
            # save the orders and may hang, and the alarm must not wait for it.
            self._check_expiry(now)
            if now >= next_due:
                # the schedule counts from when each attempt started
                try:
                    self._refresh(self.timeout_s)
                    next_due = now + self.refresh_s
                except Exception as exc:  # noqa: BLE001 - every failure is reported
                    next_due = now + min(self.refresh_s, _RETRY_S)
                    self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        with self._cond:
            self._failures += 1
            self._consecutive += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._last_exc = exc
            left = self._deadline() - self._clock.monotonic()
        log.warning(
            "dead-man switch refresh failed (%d in a row, %.1f s left before OKX cancels): %s",
            self._consecutive,
            max(0.0, left),
            exc,
            extra={"tag": self.tag, "failures": self._consecutive},
        )
        self._emit(exc)

    def _check_expiry(self, now: float) -> None:
        """Report the expiry once when ``now`` (this round's clock reading) is past the deadline."""
        with self._cond:
            if self._expired or self._stopping or now < self._deadline():
                return
            self._expired = True
            self._expiries += 1
            failures = self._consecutive
            last = self._last_ok_wall
            cause = self._last_error
            cause_exc = self._last_exc
        scope = f"tag {self.tag!r}" if self.tag else "the account"
        err = DeadManSwitchError(
            f"dead-man switch: no successful cancel-all-after refresh for {self.timeout_s} s "
            f"({failures} failed); OKX may have cancelled every pending order of {scope}. "
            f"Last error: {cause or 'none'}",
            tag=self.tag,
            timeout_s=self.timeout_s,
            last_refresh=last,
            failures=failures,
        )
        err.__cause__ = cause_exc
        log.error(str(err), extra={"tag": self.tag, "failures": failures})
        self._emit(err)
