"""The connection loop: supervisor and heartbeat threads, and what they ask of a session.

``ConnectionManager`` runs the supervisor thread (connect -> prepare (login,
resubscribe) -> wait -> reconnect with backoff; make-before-break on request)
and the heartbeat thread; the policies in ``ws.policies`` decide, these loops
act. What a message *means* is decided by the hooks the session gives it
(``SessionHooks``, implemented by the WebSocket client's private session).

Thread safety: ``ConnectionManager`` methods may be called from any thread.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any, Protocol

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import WSAuthError, WSClosedError, WSError
from .connection import Connection, PushMode
from .frames import DEFAULT_MAX_SIZE
from .policies import BackoffPolicy, ConnectRateLimiter, HeartbeatAction, HeartbeatPolicy
from .proxy import HttpProxy

__all__ = ["SessionHooks", "ConnectionManager"]

log = logging.getLogger("okx_sync.ws")


class SessionHooks(Protocol):
    """What the connection loop asks of the WebSocket client."""

    def on_message(self, conn: Connection, data: bytes) -> None:
        """One text frame from ``conn`` (reader thread)."""

    def on_conn_closed(self, conn: Connection) -> None:
        """``conn``'s reader ended (reader thread): fail what waits on it."""

    def prepare(self, conn: Connection) -> None:
        """Log in and resubscribe on a fresh connection (supervisor thread).

        Raise ``WSAuthError`` to stop reconnecting; any other exception retries.
        """

    def on_up(self, conn: Connection, *, first: bool) -> None:
        """``conn`` is ready and is now the live connection (supervisor thread)."""

    def on_down(self, conn: Connection) -> None:
        """The live connection ended (supervisor thread)."""

    def on_handoff(self, old: Connection, new: Connection) -> None:
        """``new`` replaced ``old`` without a gap; ``old``'s reader has ended (supervisor)."""

    def on_fatal(self, err: BaseException) -> None:
        """The loop stopped for good (e.g. login refused) (supervisor thread)."""

    def on_conn_error(self, err: BaseException, attempt: int, delay_s: float) -> None:
        """A connect/prepare attempt failed; the loop retries after ``delay_s`` s."""

    def reader_blocked(self, conn: Connection) -> bool:
        """True while ``conn``'s reader waits for room in a handler queue."""

    def reader_handler(self, conn: Connection) -> str | None:
        """The user handler ``conn``'s reader is running now (inline dispatch), or None."""

    def pending_orders(self, conn: Connection) -> int:
        """Order requests on ``conn`` still waiting for their reply."""


class ConnectionManager:
    """Runs the supervisor (``okx-ws-<name>-conn``) and heartbeat (``okx-ws-<name>-heartbeat``) threads.

    ``start(timeout_s)`` returns once the first connection is ready or raises (``WSAuthError``
    at once; ``WSError`` when no connection could be made in ``timeout_s``). ``stop()`` closes
    every connection and joins every thread it started. ``request_handoff(conn)`` asks for
    make-before-break (notice 64008); ``reconnect(reason)`` drops the live connection (the
    loop reconnects). ``dial_attempts``: dials tried, failed ones included; ``backoff_s``: the
    delay before the next dial, 0 once live. Thread safety: every public method may be
    called from any thread; ``start`` after ``stop`` starts afresh.
    """

    def __init__(
        self,
        url: str,
        hooks: SessionHooks,
        *,
        name: str,
        clock: Clock = SYSTEM_CLOCK,
        backoff: BackoffPolicy | None = None,
        heartbeat: HeartbeatPolicy | None = None,
        limiter: ConnectRateLimiter | None = None,
        connect_timeout_s: float = 10.0,
        options: dict[str, Any] | None = None,
        rng: random.Random | None = None,
        handoff_grace_s: float = 2.0,
        max_message_bytes: int = DEFAULT_MAX_SIZE,
        proxy: HttpProxy | None = None,
    ) -> None:
        self.url = url
        self._proxy = proxy
        self.name = name
        self._max_message_bytes = max_message_bytes
        self._hooks = hooks
        self._clock = clock
        self.backoff = backoff or BackoffPolicy()
        self.heartbeat = heartbeat or HeartbeatPolicy()
        self._limiter = limiter or ConnectRateLimiter.process_default(clock)
        self._connect_timeout_s = connect_timeout_s
        self._options = options
        self._rng = rng or random.Random()
        self._handoff_grace_s = handoff_grace_s
        self._cond = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._current: Connection | None = None
        self.last_conn: Connection | None = None  # the latest live connection, kept after it ends
        self._warming: Connection | None = None
        self._connecting: Connection | None = None  # in its handshake: stop() aborts it
        self._handoff_requested: Connection | None = None
        self._reconnect_reason = ""
        self._seq = 0
        self._ready = threading.Event()
        self._fatal: BaseException | None = None
        self._last_attempt_error: BaseException | None = None
        self.connects = self.dial_attempts = 0
        self.backoff_s = 0.0
        self.reconnects = self.handoffs = 0
        self.retired_messages = self.retired_bytes = 0

    # -- public ----------------------------------------------------------------------
    @property
    def current(self) -> Connection | None:
        """The live, ready connection, or None while (re)connecting."""
        return self._current

    def connections(self) -> list[Connection]:
        """The live connection and the one warming up (make-before-break), if any."""
        return [c for c in (self._current, self._warming) if c is not None]

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop`` (and until a fatal error)."""
        return bool(self._threads) and not self._stopping and self._fatal is None

    def wait_ready(self, timeout_s: float | None) -> Connection | None:
        """Wait until a live connection is ready; None on timeout or when stopped."""
        deadline = None if timeout_s is None else self._clock.monotonic() + timeout_s
        with self._cond:
            while True:
                if self._stopping or self._fatal is not None:
                    return None
                conn = self._current
                if conn is not None and not conn.stopping:
                    return conn
                left = None if deadline is None else deadline - self._clock.monotonic()
                if left is not None and left <= 0:
                    return None
                self._clock.wait(self._cond, left if left is not None else 0.5)

    def start(self, timeout_s: float) -> None:
        """Start the threads and wait for the first ready connection.

        Raises ``WSAuthError`` (login refused), ``WSClosedError`` (``stop()``
        was called meanwhile) or ``WSError`` (nothing ready within
        ``timeout_s``; the last failure is chained); the threads are stopped
        before raising.
        """
        with self._cond:
            if self._threads:
                raise WSError(f"WS {self.name} already started")
            self._stopping = False
            self._fatal = None
            self._last_attempt_error = None
            self._ready.clear()
            self._threads = [
                threading.Thread(
                    target=self._supervise, name=f"okx-ws-{self.name}-conn", daemon=True
                ),
                threading.Thread(
                    target=self._heartbeat_loop, name=f"okx-ws-{self.name}-heartbeat", daemon=True
                ),
            ]
            for t in self._threads:
                t.start()
        ok = self._ready.wait(timeout_s)
        fatal = self._fatal
        if fatal is not None:
            self.stop()
            raise fatal
        if self._stopping:  # stop() from another thread while starting
            self.stop()
            raise WSClosedError(f"WS {self.name} was closed while starting")
        if not ok:
            cause = self._last_attempt_error
            self.stop()
            err = WSError(f"WS {self.name}: no connection ready within {timeout_s:g} s")
            if cause is not None:
                raise err from cause
            raise err

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Close every connection and join the threads within ``timeout_s``. Idempotent.

        Returns True when every thread ended.
        """
        with self._cond:
            self._stopping = True
            conns = [c for c in (self._current, self._warming, self._connecting) if c is not None]
            self._cond.notify_all()
            threads = list(self._threads)
        deadline = self._clock.monotonic() + timeout_s
        for conn in conns:
            conn.close(max(0.0, deadline - self._clock.monotonic()), "client closed")
        ok = True
        me = threading.current_thread()
        for t in threads:
            if t is not me:
                t.join(max(0.0, deadline - self._clock.monotonic()))
                ok = ok and not t.is_alive()
        with self._cond:
            self._threads = []
            self._current = None
            self._warming = None
            self._handoff_requested = None
        return ok

    def request_handoff(self, conn: Connection) -> None:
        """Ask the supervisor to replace ``conn`` by a new connection before dropping it."""
        with self._cond:
            if conn is self._current and self._handoff_requested is None:
                self._handoff_requested = conn
                self._cond.notify_all()

    def reconnect(self, reason: str) -> None:
        """Drop the live connection now; the supervisor reconnects and resubscribes."""
        conn = self._current
        if conn is not None:
            conn.abort(reason)

    def wake(self) -> None:
        """Wake the supervisor and heartbeat threads (state changed)."""
        with self._cond:
            self._cond.notify_all()

    # -- supervisor ------------------------------------------------------------------
    def _sleep(self, seconds: float) -> bool:
        """Interruptible wait; False when stopping."""
        deadline = self._clock.monotonic() + seconds
        with self._cond:
            while not self._stopping:
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    return True
                self._clock.wait(self._cond, left)
        return False

    def _open(self) -> Connection:
        delay = self._limiter.reserve(self._clock.monotonic())
        if delay > 0 and not self._sleep(delay):
            raise WSClosedError("client closed")
        with self._cond:
            self._seq += 1
            seq = self._seq
        conn = Connection(
            self.url,
            seq=seq,
            name=self.name,
            on_message=self._hooks.on_message,
            on_closed=self._on_conn_closed,
            clock=self._clock,
            connect_timeout_s=self._connect_timeout_s,
            options=self._options,
            max_message_bytes=self._max_message_bytes,
            write_timeout_s=self.heartbeat.pong_timeout_s,
            proxy=self._proxy,
        )
        with self._cond:
            if self._stopping:
                raise WSClosedError("client closed")
            self._connecting = conn
            self.dial_attempts += 1
        try:
            conn.open()
        finally:
            with self._cond:
                self._connecting = None
        self.connects += 1
        log.info(
            "ws %s connected to %s (connection %d, connects %d)",
            self.name,
            self.url,
            seq,
            self.connects,
            extra={"ws": self.name, "url": self.url, "seq": seq, "connects": self.connects},
        )
        return conn

    def _on_conn_closed(self, conn: Connection) -> None:
        self._hooks.on_conn_closed(conn)
        with self._cond:
            self._cond.notify_all()

    def _supervise(self) -> None:
        attempt = 0
        first = True
        try:
            while not self._stopping:
                conn: Connection | None = None
                try:
                    conn = self._open()
                    if self._stopping:
                        conn.close(1.0, "client closed")
                        break
                    with self._cond:
                        self._warming = conn
                    self._hooks.prepare(conn)
                    if conn.stopping:
                        raise WSError(f"connection lost while preparing: {conn.describe_end()}")
                except WSAuthError as exc:
                    if conn is not None:
                        conn.close(1.0, "login refused")
                    self._fatal = exc
                    self._hooks.on_fatal(exc)
                    break
                except Exception as exc:
                    if conn is not None:
                        conn.close(1.0, f"prepare failed: {exc}")
                    with self._cond:
                        self._warming = None
                    if self._stopping:
                        break
                    self._last_attempt_error = exc
                    self.backoff_s = delay = self.backoff.delay(attempt, self._rng.random())
                    self._hooks.on_conn_error(exc, attempt, delay)
                    attempt += 1
                    self._sleep(delay)
                    continue
                self._go_live(conn)
                if not first:
                    self.reconnects += 1
                self._hooks.on_up(conn, first=first)
                first = False
                self._ready.set()
                conn = self._serve(conn)
                with self._cond:
                    self._current = None
                _retire_counts(self, conn)
                if self._stopping:
                    break
                uptime = self._clock.monotonic() - (conn.ready_at or conn.opened_at or 0.0)
                self._hooks.on_down(conn)
                _log_down(self, conn, uptime)
                attempt = self.backoff.reset_if_stable(attempt, uptime)
                self.backoff_s = delay = self.backoff.delay(attempt, self._rng.random())
                attempt += 1
                self._sleep(delay)
        except BaseException as exc:  # pragma: no cover - a bug; keep the process informed
            log.exception(
                "ws %s: supervisor crashed (%s): %r",
                self.name,
                self.url,
                exc,
                extra={"ws": self.name},
            )
            self._fatal = (
                exc if isinstance(exc, WSError) else WSError(f"supervisor crashed: {exc!r}")
            )
            self._hooks.on_fatal(self._fatal)
        finally:
            with self._cond:
                self._cond.notify_all()
            self._ready.set()

    def _serve(self, conn: Connection) -> Connection:
        """Wait while ``conn`` is live; perform handoffs. Returns the connection that ended."""
        while True:
            with self._cond:
                while not conn.stopping and not self._stopping and self._handoff_requested is None:
                    self._clock.wait(self._cond, 1.0)
                handoff = self._handoff_requested
                self._handoff_requested = None
            if self._stopping:
                # stop() closes and joins it; joining here could wait on the very
                # thread that called stop() (a handler on the reader calling close()).
                # Closing (not just aborting) here: whichever of the two runs first
                # sends the close frame, the other finds it sent.
                conn.close(0.0, "client closed")
                return conn
            if conn.stopping:
                conn.join(2.0)
                return conn
            if handoff is conn:
                conn = self._handoff(conn)

    def _handoff(self, old: Connection) -> Connection:
        """Make-before-break: open, log in and resubscribe ``new``, then retire ``old``."""
        try:
            new = self._open()
        except Exception as exc:
            _handoff_failed(self, "new connection failed", exc)
            return old
        new.push_mode = PushMode.BUFFER
        with self._cond:
            self._warming = new
        try:
            self._hooks.prepare(new)
            if new.stopping:
                raise WSError(f"new connection lost while preparing: {new.describe_end()}")
        except Exception as exc:
            new.close(1.0, f"handoff prepare failed: {exc}")
            with self._cond:
                self._warming = None
            _handoff_failed(self, "prepare failed", exc)
            if isinstance(exc, WSAuthError):
                self._fatal = exc
                self._hooks.on_fatal(exc)
                old.close(1.0, "login refused")
            return old
        self._go_live(new)
        # Let replies to order requests still in flight on the old socket arrive.
        deadline = self._clock.monotonic() + self._handoff_grace_s
        while self._hooks.pending_orders(old) and self._clock.monotonic() < deadline:
            if not self._sleep(0.01):
                break
        old.abort("replaced by a new connection (notice 64008)")
        old.join(2.0)
        _retire_counts(self, old)
        self.handoffs += 1
        self._hooks.on_handoff(old, new)
        log.info(
            "ws %s: handoff complete (connection %d -> %d)",
            self.name,
            old.seq,
            new.seq,
            extra={"ws": self.name, "old": old.seq, "new": new.seq},
        )
        return new

    def _go_live(self, conn: Connection) -> None:
        """``conn`` is ready: it becomes the live connection (supervisor thread)."""
        conn.ready_at = self._clock.monotonic()
        with self._cond:
            self._warming = None
            self._current = conn
            self.last_conn = conn
            self.backoff_s = 0.0
            self._cond.notify_all()

    # -- heartbeat -------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        policy = self.heartbeat
        while True:
            with self._cond:
                if self._stopping or self._fatal is not None:
                    return
                conns = [c for c in (self._current, self._warming) if c is not None]
            now = self._clock.monotonic()
            wake = now + min(1.0, policy.pong_timeout_s, policy.ping_interval_s)
            for conn in conns:
                if not conn.stopping:
                    wake = min(wake, _heartbeat_step(self, conn, now))
            with self._cond:
                if self._stopping:
                    return
                left = wake - self._clock.monotonic()
                if left > 0:
                    self._clock.wait(self._cond, left)


def _retire_counts(mgr: ConnectionManager, conn: Connection) -> None:
    """Keep the messages and bytes of ``conn``, which ended, in ``mgr``'s totals."""
    mgr.retired_messages += conn.messages
    mgr.retired_bytes += conn.bytes


def _heartbeat_step(mgr: ConnectionManager, conn: Connection, now: float) -> float:
    """One heartbeat look at ``conn``: ping, note a stalled handler, or abort a dead
    connection, as ``mgr.heartbeat`` decides. Returns when to look again
    (heartbeat thread)."""
    policy = mgr.heartbeat
    busy = conn.busy
    last_recv = conn.last_recv
    decision = policy.decide(
        now,
        last_recv=last_recv,
        last_ping=conn.last_ping,
        outstanding_since=conn.ping_outstanding_since,
        blocked=busy or mgr._hooks.reader_blocked(conn),
    )
    if busy and conn.stall is None and now - last_recv >= policy.ping_interval_s:
        handler = mgr._hooks.reader_handler(conn)
        if handler is not None:  # a handler, not a full queue, holds the reader
            conn.stall = (handler, last_recv)
    if decision.reset_outstanding:
        conn.ping_outstanding_since = None
    if decision.action is HeartbeatAction.PING:
        conn.ping()
    elif decision.action is HeartbeatAction.DEAD:
        log.warning(
            "ws %s: heartbeat timeout: no pong or message within %g s of a ping (%s)",
            mgr.name,
            policy.pong_timeout_s,
            mgr.url,
            extra={
                "ws": mgr.name,
                "seq": conn.seq,
                "pong_timeout_s": policy.pong_timeout_s,
            },
        )
        conn.abort(f"heartbeat: no pong or message within {policy.pong_timeout_s:g} s of a ping")
        mgr.wake()
    return decision.wake_at


def _handoff_failed(mgr: ConnectionManager, what: str, exc: BaseException) -> None:
    """WARNING: a make-before-break handoff gave up; the old connection stays."""
    log.warning(
        "ws %s: handoff to a new connection to %s failed (%s): %s: %s",
        mgr.name,
        mgr.url,
        what,
        type(exc).__name__,
        exc,
        extra={"ws": mgr.name, "url": mgr.url, "error": str(exc)},
    )


def _log_down(mgr: ConnectionManager, conn: Connection, uptime: float) -> None:
    """WARNING: the live connection ended after ``uptime`` s, and why."""
    log.warning(
        "ws %s: disconnected from %s after %.3g s: %s",
        mgr.name,
        mgr.url,
        uptime,
        conn.describe_end(),
        extra={
            "ws": mgr.name,
            "url": mgr.url,
            "reason": conn.describe_end(),
            "uptime_s": round(uptime, 3),
        },
    )
