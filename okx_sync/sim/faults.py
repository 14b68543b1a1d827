"""Failure injection: every failure in the runbook, switchable at run time.

``sim.faults`` (a :class:`Faults`) is the one switchboard; the loopback control
endpoint calls the same methods by name. REST faults are consumed by the REST
server per request; WS faults act on live connections through the WS hub; book
faults go to the exchange's feed.

REST
  ``rate_limit_storm(seconds)``          every REST request answers 429 + 50011
  ``slow_responses(delay_s, ...)``       responses are delayed
  ``server_errors(status, ...)``         5xx answers (503 + 50001, 500 + 50026, 502/504 bare)
  ``lose_order_response(mode, ...)``     the next order entry executes, then its answer is
                                         lost: ``"timeout"`` (held, then the connection is
                                         closed without a response) or ``"50004"``
WebSocket
  ``drop_ws(...)``                       abrupt TCP close of one/all connections
  ``silence_ws(...)``                    the connection stops sending and stops answering ping
  ``notice_then_close(delay_s, ...)``    ``notice`` 64008, then close after ``delay_s``
  ``reject_subscription(channel, ...)``  error event for matching subscribe args
  ``fail_logins(count, code, ...)``      the next logins fail: an error event ``code``,
                                         then a close with ``close_code`` (e.g. 4001)
Books
  ``seq_gap(inst_id)``, ``bad_checksum(inst_id)``, ``seq_reset(inst_id)``,
  ``malformed_book(inst_id, kind)``

``clear()`` removes every pending fault; ``active()`` describes them (JSON-safe).
Thread safety: every method may be called from any thread.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ..clock import Clock
from .marketdata import MALFORMED_KINDS
from .timers import Timers

if TYPE_CHECKING:  # pragma: no cover
    from .exchange import Exchange

__all__ = ["Faults", "RestFault", "LoginFault", "FAULT_NAMES", "WSFaultHub", "WSFaultConn"]

log = logging.getLogger("okx_sync.sim.faults")

# Methods the control endpoint may call.
FAULT_NAMES = (
    "rate_limit_storm",
    "slow_responses",
    "server_errors",
    "lose_order_response",
    "drop_ws",
    "silence_ws",
    "notice_then_close",
    "reject_subscription",
    "fail_logins",
    "seq_gap",
    "bad_checksum",
    "seq_reset",
    "malformed_book",
    "clear",
)

LOSE_MODES = ("timeout", "50004", "short")


@attrs.frozen
class RestFault:
    """What the REST server must do to one request.

    ``status``/``code``/``msg``: answer this instead (``code`` "" → bare body);
    ``delay_s``: sleep before answering; ``lose``: ``"timeout"`` or ``"50004"`` after executing;
    ``hold_s``: seconds to hold a lost response before closing the connection.
    """

    status: int = 0
    code: str = ""
    msg: str = ""
    delay_s: float = 0.0
    lose: str = ""
    hold_s: float = 0.0


@attrs.frozen
class LoginFault:
    """How the WS hub must refuse one login: an ``error`` event with ``code`` (when not
    ``""``), then a close with ``close_code`` (when not None)."""

    code: str = ""
    close_code: int | None = None


class WSFaultConn(Protocol):
    """One live simulated WS connection, as the WS faults act on it (``sim.ws`` implements it).

    ``drop()``: abrupt TCP close, no close frame; ``set_silent(flag)``: stop (or
    resume) sending anything, pong included; ``notice_then_close(delay_s)``: send the
    ``notice`` event 64008 now and close ``delay`` s later. Thread safety: any thread.
    """

    def drop(self) -> None: ...

    def set_silent(self, silent: bool) -> None: ...

    def notice_then_close(self, delay_s: float) -> None: ...


class WSFaultHub(Protocol):
    """The WS hub as the switchboard sees it (``sim.ws.WSHub`` implements it; given with
    :meth:`Faults.attach_ws`), so this module never imports the hub.

    ``select(kind=, conn_id=, which=)``: the open connections matching (``which``
    ``"all"`` or ``"one"``, the oldest; ``ValueError`` otherwise); ``timers``: the
    simulator's timer thread, for faults that end later. Thread safety: any thread.
    """

    @property
    def timers(self) -> Timers: ...

    def select(
        self, *, kind: str | None = None, conn_id: str | None = None, which: str = "all"
    ) -> Sequence[WSFaultConn]: ...


@attrs.define
class _Counted:
    """A fault active until ``until`` (monotonic) and/or for ``count`` more hits."""

    until: float | None
    count: int | None
    params: dict[str, Any]

    def live(self, now: float) -> bool:
        """True while the fault still applies (before ``until``, with hits left)."""
        if self.until is not None and now >= self.until:
            return False
        return self.count is None or self.count > 0

    def consume(self) -> None:
        """Use up one hit."""
        if self.count is not None:
            self.count -= 1


class Faults:
    """The fault switchboard (see the module docstring)."""

    def __init__(self, clock: Clock, exchange: Exchange) -> None:
        self._clock = clock
        self._exchange = exchange
        self._lock = threading.Lock()
        self._hub: WSFaultHub | None = None
        self._storm_until = 0.0
        self._slow: list[_Counted] = []
        self._errors: list[_Counted] = []
        self._lose: list[_Counted] = []
        self._reject: list[_Counted] = []
        self._logins: list[_Counted] = []

    def attach_ws(self, hub: WSFaultHub) -> None:
        """Give the switchboard the WS hub (done by the Simulator; see :class:`WSFaultHub`)."""
        self._hub = hub

    def _add(
        self,
        target: list[_Counted],
        seconds: float | None,
        count: int | None,
        params: dict[str, Any],
    ) -> None:
        """Arm a fault for ``seconds`` and/or ``count`` hits (default: the next one)."""
        until = self._clock.monotonic() + seconds if seconds is not None else None
        if count is None and until is None:
            count = 1
        with self._lock:
            target.append(_Counted(until=until, count=count, params=params))
        log.info("fault armed", extra={"fault": params, "count": count, "seconds": seconds})

    # ------------------------------------------------------------------ REST
    def rate_limit_storm(self, seconds: float) -> None:
        """Answer every REST request with HTTP 429 + 50011 for ``seconds``."""
        if seconds <= 0:
            raise ValueError("seconds must be > 0")
        with self._lock:
            self._storm_until = max(self._storm_until, self._clock.monotonic() + seconds)
        log.info("fault: 429 storm", extra={"seconds": seconds})

    def slow_responses(
        self,
        delay_s: float,
        *,
        count: int | None = None,
        seconds: float | None = None,
        path: str | None = None,
    ) -> None:
        """Delay REST answers by ``delay_s`` s (next ``count`` requests and/or for ``seconds``;
        default: the next one). ``path`` restricts it to one path."""
        if delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        self._add(self._slow, seconds, count, {"delay_s": float(delay_s), "path": path})

    def server_errors(
        self,
        status: int = 503,
        *,
        count: int | None = None,
        seconds: float | None = None,
        path: str | None = None,
    ) -> None:
        """Answer REST requests with a 5xx: 503 → 50001, 500 → 50026, others a bare body."""
        if not 500 <= status <= 599:
            raise ValueError("status must be 5xx")
        self._add(self._errors, seconds, count, {"status": int(status), "path": path})

    def lose_order_response(
        self,
        mode: str = "timeout",
        *,
        count: int = 1,
        hold_s: float = 5.0,
        transport: str = "rest",
        action: str = "place",
    ) -> None:
        """The next ``count`` order-entry requests execute but their answer is lost.

        ``mode="timeout"``: the REST server holds the response ``hold_s`` seconds, then
        closes the connection without answering (WS: no reply is sent).
        ``mode="50004"``: answered HTTP 400 + 50004 (outcome unknown) after executing.
        ``mode="short"``: answered as usual (code included) but with the reply's last
        ``data`` item left out (a single order: no item at all).
        ``transport``: ``"rest"``, ``"ws"`` or ``"any"``; ``action``: ``"place"``,
        ``"cancel"``, ``"amend"`` or ``"any"`` (place includes batch placement).
        """
        if mode not in LOSE_MODES:
            raise ValueError(f"mode must be one of {LOSE_MODES}")
        if transport not in ("rest", "ws", "any"):
            raise ValueError("transport must be rest, ws or any")
        if action not in ("place", "cancel", "amend", "any"):
            raise ValueError("action must be place, cancel, amend or any")
        entry = _Counted(
            until=None,
            count=count,
            params={"mode": mode, "hold_s": hold_s, "transport": transport, "action": action},
        )
        with self._lock:
            self._lose.append(entry)
        log.info("fault: lose order response", extra={"mode": mode, "count": count})

    def rest_fault(self, path: str, *, order_action: str = "") -> RestFault:
        """Consume the faults that apply to one REST request (called by the server)."""
        now = self._clock.monotonic()
        with self._lock:
            if now < self._storm_until:
                return RestFault(status=429, code="50011", msg="Too Many Requests")
            delay = 0.0
            for entry in self._slow:
                p = entry.params
                if entry.live(now) and (p["path"] is None or p["path"] == path):
                    entry.consume()
                    delay = max(delay, p["delay_s"])
            self._slow = [e for e in self._slow if e.live(now)]
            for entry in self._errors:
                p = entry.params
                if entry.live(now) and (p["path"] is None or p["path"] == path):
                    entry.consume()
                    self._errors = [e for e in self._errors if e.live(now)]
                    status = p["status"]
                    code, msg = {
                        503: ("50001", "Service temporarily unavailable. Please try again later."),
                        500: ("50026", "System error. Try again later"),
                    }.get(status, ("", ""))
                    return RestFault(status=status, code=code, msg=msg, delay_s=delay)
            lose = ""
            hold = 0.0
            if order_action:
                lose, hold = self._take_lose("rest", order_action)
            return RestFault(delay_s=delay, lose=lose, hold_s=hold)

    def _take_lose(self, transport: str, action: str) -> tuple[str, float]:
        for entry in self._lose:
            p = entry.params
            if (
                entry.live(0.0)
                and p["transport"] in (transport, "any")
                and p["action"] in (action, "any")
            ):
                entry.consume()
                self._lose = [e for e in self._lose if e.live(0.0)]
                return p["mode"], float(p["hold_s"])
        return "", 0.0

    def ws_lose_order_response(self, action: str) -> str:
        """Consume a lost-answer fault for a WS order op: ``"timeout"``/``"50004"``/``""``."""
        with self._lock:
            return self._take_lose("ws", action)[0]

    # ------------------------------------------------------------------ WS
    def _need_hub(self) -> WSFaultHub:
        if self._hub is None:
            raise RuntimeError("the WS server is not running")
        return self._hub

    def drop_ws(
        self, which: str = "all", *, kind: str | None = None, conn_id: str | None = None
    ) -> int:
        """Close WS connections abruptly (no close frame). ``which``: ``"all"`` or ``"one"``
        (the oldest); ``kind``: public/private/business; ``conn_id``: one connection.
        Returns how many were dropped."""
        conns = self._need_hub().select(kind=kind, conn_id=conn_id, which=which)
        for c in conns:
            c.drop()
        log.info("fault: drop ws", extra={"count": len(conns), "kind": kind})
        return len(conns)

    def silence_ws(
        self,
        which: str = "all",
        *,
        kind: str | None = None,
        conn_id: str | None = None,
        seconds: float | None = None,
    ) -> int:
        """Matching connections stop sending (pushes, acks, pong) for ``seconds`` (None:
        until closed). The idle close is suspended meanwhile. Returns the count."""
        hub = self._need_hub()
        conns = hub.select(kind=kind, conn_id=conn_id, which=which)
        for c in conns:
            c.set_silent(True)
            if seconds is not None:
                hub.timers.schedule(seconds, functools.partial(c.set_silent, False))
        log.info("fault: silent ws", extra={"count": len(conns), "kind": kind})
        return len(conns)

    def notice_then_close(
        self,
        delay_s: float = 1.0,
        *,
        which: str = "all",
        kind: str | None = None,
        conn_id: str | None = None,
    ) -> int:
        """Send the ``notice`` event (64008) and close the connection ``delay_s`` s later."""
        hub = self._need_hub()
        conns = hub.select(kind=kind, conn_id=conn_id, which=which)
        for c in conns:
            c.notice_then_close(delay_s)
        log.info("fault: notice then close", extra={"count": len(conns), "delay_s": delay_s})
        return len(conns)

    def reject_subscription(
        self,
        channel: str,
        inst_id: str | None = None,
        *,
        code: str = "60018",
        count: int | None = 1,
    ) -> None:
        """The next ``count`` (None: all) subscribe args for ``channel`` (and ``inst_id``)
        get an error event with ``code`` instead of an ack."""
        entry = _Counted(
            until=None, count=count, params={"channel": channel, "inst_id": inst_id, "code": code}
        )
        with self._lock:
            self._reject.append(entry)

    def subscription_fault(self, channel: str, inst_id: str) -> str:
        """Consume a rejection for this arg: the error code, or ``""``."""
        with self._lock:
            for entry in self._reject:
                p = entry.params
                if entry.live(0.0) and p["channel"] == channel and p["inst_id"] in (None, inst_id):
                    entry.consume()
                    self._reject = [e for e in self._reject if e.live(0.0)]
                    return str(p["code"])
        return ""

    def fail_logins(
        self, count: int = 1, code: str = "60009", *, close_code: int | None = None
    ) -> None:
        """The next ``count`` WS logins fail (even with valid credentials).

        ``code``: the ``error`` event's code (``""``: no event). ``close_code``: then close
        the connection with this close code (4000-4999; OKX uses 4001 "login failed" and
        4007 "API key updated or deleted", facts §3.5) once the event has been sent.
        Raises ``ValueError`` for a close code outside 4000-4999, or for no event and
        no close.
        """
        if close_code is not None and not 4000 <= int(close_code) <= 4999:
            raise ValueError("close_code must be an application close code (4000-4999)")
        if not code and close_code is None:
            raise ValueError("a login fault needs an error code, a close_code or both")
        params = {"code": code, "close_code": None if close_code is None else int(close_code)}
        entry = _Counted(until=None, count=count, params=params)
        with self._lock:
            self._logins.append(entry)

    def login_fault(self) -> LoginFault | None:
        """Consume a login failure: what to answer, or None (called by the WS hub)."""
        with self._lock:
            for entry in self._logins:
                if entry.live(0.0):
                    entry.consume()
                    self._logins = [e for e in self._logins if e.live(0.0)]
                    p = entry.params
                    return LoginFault(code=str(p["code"]), close_code=p["close_code"])
        return None

    # ------------------------------------------------------------------ books
    def seq_gap(self, inst_id: str, count: int = 1) -> None:
        """The next ``count`` ``books`` updates of ``inst_id`` are never sent (a gap)."""
        self._exchange.inject_seq_gap(inst_id, count)

    def bad_checksum(self, inst_id: str, count: int = 1) -> None:
        """The next ``count`` ``books`` updates of ``inst_id`` carry a wrong checksum."""
        self._exchange.inject_bad_checksum(inst_id, count)

    def seq_reset(self, inst_id: str) -> None:
        """The next ``books`` update of ``inst_id`` resets the sequence (maintenance)."""
        self._exchange.inject_seq_reset(inst_id)

    def malformed_book(self, inst_id: str, kind: str = "size", count: int = 1) -> None:
        """The next ``count`` ``books`` updates of ``inst_id`` carry one extra bid level no
        correct client may store: ``kind="size"`` (size ``"abc"``), ``"price"`` (price
        ``"NaN"``) or ``"crossed"`` (a bid at the best ask, checksum 0). The published
        book is unchanged. Raises ``ValueError`` for another kind or a count < 1."""
        if kind not in MALFORMED_KINDS:
            raise ValueError(f"kind must be one of {MALFORMED_KINDS}, not {kind!r}")
        if count < 1:
            raise ValueError("count must be >= 1")
        self._exchange.inject_malformed(inst_id, kind, count)

    # ------------------------------------------------------------------ all
    def clear(self) -> None:
        """Remove every pending REST/WS fault (silenced connections speak again)."""
        with self._lock:
            self._storm_until = 0.0
            self._slow.clear()
            self._errors.clear()
            self._lose.clear()
            self._reject.clear()
            self._logins.clear()
        if self._hub is not None:
            for c in self._hub.select(which="all"):
                c.set_silent(False)

    def active(self) -> dict[str, Any]:
        """A JSON-safe description of the pending faults."""
        now = self._clock.monotonic()
        with self._lock:

            def describe(entries: list[_Counted]) -> list[dict[str, Any]]:
                """Live entries with their parameters and what is left of them."""
                return [
                    {
                        **e.params,
                        "count": e.count,
                        "seconds_left": None if e.until is None else round(e.until - now, 3),
                    }
                    for e in entries
                    if e.live(now)
                ]

            return {
                "rate_limit_storm_seconds_left": round(max(0.0, self._storm_until - now), 3),
                "slow_responses": describe(self._slow),
                "server_errors": describe(self._errors),
                "lose_order_response": describe(self._lose),
                "reject_subscription": describe(self._reject),
                "fail_logins": describe(self._logins),
            }
