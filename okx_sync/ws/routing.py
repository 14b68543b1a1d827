"""The WebSocket reader's hot path: what each text frame from a connection becomes.

``Router.on_message`` runs on a connection's reader for every text frame:
``pong`` ends a heartbeat (and a handoff's pong barrier); a push goes to the
push listeners (inline, in order) and then to the typed and raw dispatch
paths — undecoded, to be decoded by the worker, when exactly one pool path
consumes it; a push on a connection warming up for make-before-break is
buffered; anything else (events, order replies) goes to the session's control
routing. A push for a channel/instrument the connection never subscribed is
counted and dropped; a full queue under ``overflow=disconnect`` aborts the
connection.

Thread safety: ``on_message`` is called by one reader thread per connection;
``flush`` by that reader too. No lock is held while a handler runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .connection import Connection, PushMode
from .dispatch import SubmitResult
from .handlers import Handlers
from .protocol import arg_key, fast_push_key
from .stats import Counters

__all__ = ["Router"]

log = logging.getLogger("okx_sync.ws")

_DELIVER = PushMode.DELIVER
_BUFFER = PushMode.BUFFER
_FLUSH = PushMode.FLUSH
_DISCONNECT = SubmitResult.DISCONNECT

# Most pushes a warming connection buffers during make-before-break before the
# handoff is abandoned (the old connection keeps serving until it drops).
_HANDOFF_BUFFER_MAX = 100_000


class Router:
    """Routes a client's incoming frames (module doc)."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        handlers: Handlers,
        counters: Counters,
        unexpected: Callable[[tuple[str, str]], None],
        control: Callable[[Connection, dict[str, Any]], None],
    ) -> None:
        self.name = name
        self.url = url
        self._h = handlers
        self._typed = handlers.typed_path
        self._raw = handlers.raw_path
        self._counters = counters
        self._unexpected = unexpected
        self._control = control
        # connection -> [pongs still awaited, event] (handoff barrier; supervisor + reader)
        self.pong_waiters: dict[Connection, list[Any]] = {}

    def on_message(self, conn: Connection, data: bytes) -> None:
        """One text frame from ``conn`` (reader thread; ``SessionHooks.on_message``)."""
        mode = conn.push_mode
        if mode is not _DELIVER and mode is _FLUSH:
            self.flush(conn)
        if data == b"pong":
            conn.last_pong = conn.last_recv
            if self.pong_waiters:
                self._pong_arrived(conn)
            return
        if (
            (self._typed.pooled or self._raw.pooled)
            and mode is _DELIVER
            and not conn.track_last
            and self._deferrable(conn, data)
        ):
            return
        msg = self._h.decode(data)
        if msg is None:
            return
        if "data" in msg and "arg" in msg:
            if conn.push_mode is _BUFFER and self._buffer(conn, msg):
                return
            self._push(conn, msg)
        else:
            self._control(conn, msg)

    def _deferrable(self, conn: Connection, data: bytes) -> bool:
        """Hand an undecoded push to the one pool that consumes it; True when done.

        Decoding in the worker instead of the reader keeps the message's
        objects in one thread (allocating them in the reader and freeing them
        in a worker costs more than the decoding itself). Only when exactly
        one path consumes the push, that path is a pool, and no push listener
        needs it inline.
        """
        if self._h.push_listeners:
            return False
        raw = bool(self._h.raw)
        if raw and not self._raw.pooled:
            return False
        if not raw and not self._typed.pooled:
            return False
        key = fast_push_key(data)
        if key is None:
            return False
        keys = conn.push_keys
        if key not in keys and (key[0], "") not in keys:
            self._unexpected(key)
            return True
        typed = key[0] in self._h.typed_table
        if typed and raw:
            return False
        path = self._raw if raw else self._typed
        if not typed and not raw:
            return True  # nobody listens to this channel
        if path.submit(key, data, conn.should_stop) is _DISCONNECT:
            self.overflow_disconnect(conn, path.name)
        return True

    def _push(self, conn: Connection, msg: dict[str, Any]) -> None:
        arg = msg["arg"]
        channel = arg.get("channel", "")
        key = (channel, arg.get("instId", ""))
        keys = conn.push_keys
        if key not in keys and (channel, "") not in keys:
            self._unexpected(key)
            return
        if conn.track_last:
            conn.last_data[arg_key(arg)] = msg["data"]
        if self._h.push_listeners:
            for fn in self._h.push_listeners:
                self._h.listener_running = fn
                self._h.call(fn, msg)
            self._h.listener_running = None
        entry = self._h.typed_table.get(channel)
        if entry is not None:
            if self._typed.direct:  # inline: skip the dispatch layer on the hot path
                self._h.typed_push(msg, arg, channel, entry)
            elif self._typed.submit(key, msg, conn.should_stop) is _DISCONNECT:
                self.overflow_disconnect(conn, "typed")
        if self._h.raw:
            if self._raw.submit(key, msg, conn.should_stop) is _DISCONNECT:
                self.overflow_disconnect(conn, "raw")

    def overflow_disconnect(self, conn: Connection, path: str) -> None:
        reason = f"{path} handler queue full (overflow=disconnect)"
        if not conn.stopping:
            log.warning(
                "ws %s: %s; disconnecting %s",
                self.name,
                reason,
                self.url,
                extra={"ws": self.name, "path": path, "url": self.url},
            )
            self._counters.note_error(reason)
            conn.abort(reason)

    def _buffer(self, conn: Connection, msg: dict[str, Any]) -> bool:
        """Buffer a push on a warming connection; False when it just took over."""
        with conn.buffer_lock:
            if conn.push_mode is _BUFFER:
                if len(conn.buffer) >= _HANDOFF_BUFFER_MAX:
                    conn.abort("make-before-break buffer full")
                    return True
                conn.buffer.append(msg)
                return True
        self.flush(conn)
        return False

    def flush(self, conn: Connection) -> None:
        with conn.buffer_lock:
            if conn.push_mode is not _FLUSH:
                return
            items = conn.buffer
            conn.buffer = []
            conn.push_mode = _DELIVER
        for msg in items:
            self._push(conn, msg)

    def _pong_arrived(self, conn: Connection) -> None:
        waiter = self.pong_waiters.get(conn)
        if waiter is not None:
            waiter[0] -= 1
            if waiter[0] <= 0:
                waiter[1].set()
