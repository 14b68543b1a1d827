"""WebSocket client statistics: the frozen ``WSStats`` snapshot and the counters behind it.

``Counters`` holds what the client's parts count (subscribe acks and errors,
handler and parse errors, unexpected pushes, login re-syncs, the last error,
and what finished connection loops counted); ``snapshot`` reads them with the
live connection loop and dispatch paths into a ``WSStats``.

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

    Times (``last_recv``, ``last_ping``, ``last_pong``) are Unix seconds or None.
    Queue figures are per dispatch path (``typed_*``, ``raw_*``; capacity 0 in
    inline mode). ``typed_dropped``/``raw_dropped`` count messages not
    delivered because a pool was full (``drop`` or ``disconnect`` policy);
    ``*_overflow_disconnects`` the reconnects that the ``disconnect`` policy
    caused. ``desired_subscriptions`` is the number of subscriptions the client
    keeps alive; ``subscriptions_dropped`` those OKX rejected and the client gave up.
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return attrs.asdict(self)


class Counters:
    """The client's counters (one lock). ``bump(name, n)`` adds to one of them;
    ``note_error(text)`` sets ``last_error``. Thread safety: any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_error = ""
        self.subscribe_ok = 0
        self.subscribe_error = 0
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
        with self.lock:
            self.last_error = text

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
        messages, nbytes = c.messages, c.bytes
        fields: dict[str, Any] = {
            "last_error": c.last_error,
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
        **fields,
    )
