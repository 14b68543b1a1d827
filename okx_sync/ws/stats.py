"""WebSocket client statistics: the frozen ``WSStats`` snapshot and the counters behind it.

``Counters`` holds what the client's parts count where it happens (subscribe and
unsubscribe acks and errors and the callers waiting for them: ``subscriptions``;
handler and parse errors: ``handlers``; order-op callers waiting for an answer:
``orders``; login re-syncs and the last error with its time: ``session``, ``handlers``;
and what finished connection loops counted: dials, connects, reconnects);
``snapshot`` reads them with the live connection loop (``supervisor``: dials, the
current backoff) and dispatch paths into a ``WSStats``.

Thread safety: ``Counters`` locks internally; ``WSStats`` is immutable.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ..clock import Clock

if TYPE_CHECKING:  # pragma: no cover
    from .dispatch import DispatchPath
    from .supervisor import ConnectionManager

__all__ = ["WSStats", "Counters", "snapshot"]

#: Distinct (channel, instId) of unexpected pushes logged per client (the rest only counted).
_UNEXPECTED_KEYS_LOGGED = 100


@attrs.frozen(kw_only=True)
class WSStats:
    """A frozen snapshot of a ``WSClient`` (``ws.stats()``).

    Times (``last_recv``, ``last_ping``, ``last_pong``, ``last_error_at``: when
    ``last_error`` was set) are Unix seconds or None. ``need_login``: this client logs
    in on each connection. ``dial_attempts``: connections tried (TCP + WS handshake),
    failed ones included; ``connects`` those that succeeded. ``backoff_s``: the delay
    the loop is waiting (or last waited) before its next dial, 0 while connected.
    ``waiters``: callers blocked now in ``subscribe_and_wait`` /
    ``unsubscribe_and_wait`` / ``resubscribe``; ``op_waiters``: callers blocked now
    waiting for the answer of a WS order op.
    Queue figures are per dispatch path (``typed_*``, ``raw_*``; capacity 0 in
    inline mode). ``typed_dropped``/``raw_dropped`` count messages not
    delivered because a pool was full (``drop`` or ``disconnect`` policy);
    ``*_overflow_disconnects`` the reconnects that the ``disconnect`` policy
    caused. ``desired_subscriptions`` is the number of subscriptions the client
    keeps alive; ``subscriptions_dropped`` those OKX rejected and the client gave up;
    ``subscribe_ok``/``subscribe_error`` and ``unsubscribe_ok``/``unsubscribe_error``
    count OKX's per-arg acks and error events.
    ``login_resyncs``: clock re-syncs after a login refused for its timestamp (60006).
    ``unexpected_pushes`` counts pushes for a channel/instrument the connection
    never subscribed (acknowledged): they are not handed to any handler.
    Thread safety: immutable.
    """

    name: str
    url: str
    running: bool
    connected: bool
    conn_id: str
    last_recv: float | None
    last_ping: float | None
    last_pong: float | None
    connects: int
    reconnects: int
    handoffs: int
    last_error: str
    subscribe_ok: int
    subscribe_error: int
    subscriptions_dropped: int
    desired_subscriptions: int
    typed_mode: str
    raw_mode: str
    typed_queue_len: int
    typed_queue_cap: int
    raw_queue_len: int
    raw_queue_cap: int
    typed_dropped: int
    raw_dropped: int
    typed_high_water: int
    raw_high_water: int
    typed_overflow_disconnects: int
    raw_overflow_disconnects: int
    handler_errors: int
    parse_errors: int
    unexpected_pushes: int
    messages: int
    bytes: int
    login_resyncs: int = 0
    need_login: bool = False
    dial_attempts: int = 0
    unsubscribe_ok: int = 0
    unsubscribe_error: int = 0
    waiters: int = 0
    op_waiters: int = 0
    backoff_s: float = 0.0
    last_error_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return attrs.asdict(self)


class Counters:
    """The client's counters (one lock). ``bump(name, n)`` adds to one of them (``n`` may
    be negative for the ``waiters`` gauges); ``note_error(text)`` sets ``last_error`` and
    ``last_error_at`` (``clock.time()``). Thread safety: any thread."""

    def __init__(self, clock: Clock) -> None:
        self.lock = threading.Lock()
        self._clock = clock
        self.last_error = ""
        self.last_error_at: float | None = None
        self.subscribe_ok = 0
        self.subscribe_error = 0
        self.unsubscribe_ok = 0
        self.unsubscribe_error = 0
        self.waiters = 0
        self.op_waiters = 0
        self.dial_attempts = 0
        self.subscriptions_dropped = 0
        self.handler_errors = 0
        self.parse_errors = 0
        self.unexpected_pushes = 0
        self.connects = 0
        self.reconnects = 0
        self.handoffs = 0
        self.login_resyncs = 0
        self.messages = 0
        self.bytes = 0
        self._unexpected_keys: set[tuple[str, str]] = set()

    def bump(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name``."""
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def note_error(self, text: str) -> None:
        """Record ``text`` as ``last_error``."""
        now = self._clock.time()
        with self.lock:
            self.last_error = text
            self.last_error_at = now

    def unexpected(self, key: tuple[str, str]) -> bool:
        """Count an unexpected push; True the first time ``key`` is seen (bounded: keys
        past the first 100 are only counted)."""
        with self.lock:
            self.unexpected_pushes += 1
            first = key not in self._unexpected_keys
            if first and len(self._unexpected_keys) < _UNEXPECTED_KEYS_LOGGED:
                self._unexpected_keys.add(key)
                return True
            return False

    def collect(self, manager: ConnectionManager) -> None:
        """Keep what a stopped connection loop counted."""
        with self.lock:
            self.connects += manager.connects
            self.dial_attempts += manager.dial_attempts
            self.reconnects += manager.reconnects
            self.handoffs += manager.handoffs
            self.messages += manager.retired_messages
            self.bytes += manager.retired_bytes


class DispatchPaths(Protocol):
    """The typed and raw dispatch paths of a client (``handlers.Handlers``)."""

    typed_path: DispatchPath
    raw_path: DispatchPath


def snapshot(
    name: str,
    url: str,
    manager: ConnectionManager | None,
    counters: Counters,
    desired: int,
    paths: DispatchPaths,
    clock: Clock,
    *,
    need_login: bool = False,
) -> WSStats:
    """A ``WSStats`` of the counters, the connection loop (None: not started) and the
    dispatch paths; monotonic times become Unix seconds. Thread safety: any thread."""
    typed, raw = paths.typed_path, paths.raw_path
    running = manager is not None and manager.running
    conn = manager.current if manager is not None else None
    seen = conn or (manager.last_conn if manager is not None else None)
    now_mono = clock.monotonic()
    now_wall = clock.time()

    def wall(t: float | None) -> float | None:
        return None if t is None or t <= 0 else now_wall - (now_mono - t)

    c = counters
    with c.lock:
        connects, reconnects, handoffs = c.connects, c.reconnects, c.handoffs
        messages, nbytes, dials = c.messages, c.bytes, c.dial_attempts
        fields: dict[str, Any] = {
            "last_error": c.last_error,
            "last_error_at": c.last_error_at,
            "unsubscribe_ok": c.unsubscribe_ok,
            "unsubscribe_error": c.unsubscribe_error,
            "waiters": c.waiters,
            "op_waiters": c.op_waiters,
            "login_resyncs": c.login_resyncs,
            "subscribe_ok": c.subscribe_ok,
            "subscribe_error": c.subscribe_error,
            "subscriptions_dropped": c.subscriptions_dropped,
            "handler_errors": c.handler_errors,
            "parse_errors": c.parse_errors,
            "unexpected_pushes": c.unexpected_pushes,
        }
    if manager is not None:
        connects += manager.connects
        dials += manager.dial_attempts
        reconnects += manager.reconnects
        handoffs += manager.handoffs
        messages += manager.retired_messages
        nbytes += manager.retired_bytes
        for live in manager.connections():
            messages += live.messages
            nbytes += live.bytes
    return WSStats(
        name=name,
        url=url,
        running=running,
        connected=conn is not None and not conn.stopping,
        conn_id=conn.conn_id if conn is not None else "",
        last_recv=wall(seen.last_recv) if seen is not None else None,
        last_ping=wall(seen.last_ping) if seen is not None else None,
        last_pong=wall(seen.last_pong) if seen is not None else None,
        connects=connects,
        reconnects=reconnects,
        handoffs=handoffs,
        desired_subscriptions=desired,
        typed_mode=typed.config.mode,
        raw_mode=raw.config.mode,
        typed_queue_len=typed.qsize,
        typed_queue_cap=typed.capacity,
        raw_queue_len=raw.qsize,
        raw_queue_cap=raw.capacity,
        typed_dropped=typed.dropped,
        raw_dropped=raw.dropped,
        typed_high_water=typed.high_water,
        raw_high_water=raw.high_water,
        typed_overflow_disconnects=typed.disconnects,
        raw_overflow_disconnects=raw.disconnects,
        messages=messages,
        bytes=nbytes,
        need_login=need_login,
        dial_attempts=dials,
        backoff_s=manager.backoff_s if manager is not None and running and conn is None else 0.0,
        **fields,
    )
