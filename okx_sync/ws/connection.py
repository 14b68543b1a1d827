"""WebSocket connections: policies (pure) and the loops that act on them.

Policies decide, loops act:

- ``BackoffPolicy`` — reconnect delays: exponential with jitter, reset once a
  connection has stayed up for ``stable_after_s`` seconds.
- ``HeartbeatPolicy`` — when to send the text ``ping`` and when a silent
  connection is dead (facts §4.4).
- ``ConnectRateLimiter`` — at most 3 new connections per second per process
  (facts §2.7; OKX counts per IP, so one limiter is shared by the process).
- ``OpsBudget`` — 480 subscribe/unsubscribe/login requests per hour per connection.

``Connection`` is one WebSocket with its named reader thread and a send lock:
websocket-client (``create_connection``) connects, does the handshake and TLS,
and sends; the reader reads the socket itself in large chunks and cuts the
frames out with ``ws.frames.FrameParser`` (websocket-client's per-frame reads
cost more than a small push's decoding and handling together).
``ConnectionManager`` runs the supervisor thread (connect → prepare (login,
resubscribe) → wait → reconnect with backoff; make-before-break on request)
and the heartbeat thread. What a message *means* is decided by the hooks the
WebSocket client gives it (``SessionHooks``).

Thread safety: policies are immutable; ``ConnectRateLimiter`` and
``OpsBudget`` lock internally; ``Connection.send``/``ping``/``abort``/``close``
may be called from any thread; ``ConnectionManager`` methods may be called
from any thread. No okx_sync lock is held while user code runs.
"""

from __future__ import annotations

import enum
import logging
import random
import select
import socket
import ssl
import threading
import time
import urllib.parse
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import websocket

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ValidationError, WSAuthError, WSClosedError, WSError
from ..validators import count, field, real, seconds
from .frames import (
    DEFAULT_MAX_SIZE,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FrameError,
    FrameParser,
)
from .protocol import CONNECTIONS_PER_SECOND, OPS_PER_HOUR, PING, parse_close_frame

__all__ = [
    "BackoffPolicy",
    "HeartbeatPolicy",
    "HeartbeatAction",
    "HeartbeatDecision",
    "ConnectRateLimiter",
    "OpsBudget",
    "PushMode",
    "Connection",
    "SessionHooks",
    "ConnectionManager",
    "take_read_ahead",
]

log = logging.getLogger("okx_sync.ws")

_READ_SIZE = 256 * 1024  # one socket read; TLS gives at most a record (16 KB) per read
_UNSENDABLE_CLOSE = frozenset((1004, 1005, 1006, 1015))  # reserved: never sent on the wire
_MAX_CLOSE_REASON = 123  # a control frame carries 125 bytes: 2 for the code
# ws_options keys that would make websocket-client open its own socket (the handshake
# deadline and abort() work on the socket Connection.open makes itself).
UNSUPPORTED_WS_OPTIONS = frozenset(
    (
        "socket",
        "http_proxy_host",
        "http_proxy_port",
        "http_proxy_auth",
        "http_proxy_timeout",
        "http_no_proxy",
        "proxy_type",
    )
)


# --------------------------------------------------------------------------- policies
_positive = field(seconds, positive=True)


@attrs.frozen(kw_only=True)
class BackoffPolicy:
    """Reconnect delays: ``initial * multiplier**attempt`` capped at ``maximum``, with jitter.

    ``jitter`` (0..1) is the fraction of the delay that is randomised:
    delay = base * (1 - jitter + jitter * r) for r in [0, 1). The attempt
    counter resets once a connection stayed up ``stable_after_s`` seconds.
    Frozen; ``ValidationError`` (a ``ValueError``) for a value that is not a finite
    number (bools and strings included) or out of range. Thread safety: immutable.
    """

    initial: float = attrs.field(default=0.25, validator=_positive)
    maximum: float = attrs.field(default=10.0, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=field(real, low=1.0))
    jitter: float = attrs.field(default=0.5, validator=field(real, low=0.0, high=1.0))
    stable_after_s: float = attrs.field(default=30.0, validator=_positive)

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait before reconnect ``attempt`` (0-based); ``rand`` in [0, 1)."""
        base = min(self.maximum, self.initial * self.multiplier ** max(0, min(attempt, 64)))
        return base * (1.0 - self.jitter + self.jitter * rand)

    def reset_if_stable(self, attempt: int, uptime_s: float) -> int:
        """0 when the connection that just ended stayed up ``stable_after_s`` s, else ``attempt``."""
        return 0 if uptime_s >= self.stable_after_s else attempt


class HeartbeatAction(enum.Enum):
    """What the heartbeat loop must do now."""

    NONE = "none"
    PING = "ping"
    DEAD = "dead"


@attrs.frozen
class HeartbeatDecision:
    """``action`` now, and the monotonic time at which to ask again (``wake_at``).

    ``reset_outstanding``: forget the outstanding ping (the reader is blocked on
    a full handler queue and cannot read the pong yet). Thread safety: immutable.
    """

    action: HeartbeatAction
    wake_at: float
    reset_outstanding: bool = False


@attrs.frozen(kw_only=True)
class HeartbeatPolicy:
    """OKX heartbeat (facts §4.4): text ``ping`` after ``ping_interval_s`` s with nothing received.

    A connection is dead when neither a ``pong`` nor any other message arrived
    within ``pong_timeout_s`` s of a ping; a silent connection is therefore
    detected within ``ping_interval_s + pong_timeout_s`` s (default 20 + 8 = 28 s,
    under OKX's 30 s idle close). ``pong_timeout_s`` is also every write's
    deadline (``Connection``): a server that stops reading fails the next
    write (a pong, a request, or the ping once nothing arrived for
    ``ping_interval_s`` s) and is dropped ``pong_timeout_s`` s after that write began.
    While the reader is busy — blocked on a full handler queue, or running an
    inline handler — it is not reading, so silence proves nothing: pings
    continue as keep-alives (their pongs wait in the socket) and the
    connection is never declared dead for that; once the reader is free the
    usual rule applies again.
    Frozen; ``ValidationError`` (a ``ValueError``) unless 0 < ping_interval_s < 30 and
    pong_timeout_s > 0, both finite numbers.
    Thread safety: immutable.
    """

    ping_interval_s: float = attrs.field(default=20.0, validator=_positive)
    pong_timeout_s: float = attrs.field(default=8.0, validator=_positive)

    @ping_interval_s.validator
    def _check_interval(self, _a: Any, value: float) -> None:
        if not 0 < value < 30:
            raise ValidationError(
                f"ping_interval_s must be > 0 and < 30 s (OKX closes at 30 s), got {value!r}"
            )

    @property
    def detection_bound(self) -> float:
        """Worst-case seconds from the last message to declaring the connection dead."""
        return self.ping_interval_s + self.pong_timeout_s

    def decide(
        self,
        now: float,
        *,
        last_recv: float,
        last_ping: float | None,
        outstanding_since: float | None,
        blocked: bool = False,
    ) -> HeartbeatDecision:
        """Decide for one connection at monotonic time ``now``.

        ``last_recv``: last message (or connect time); ``last_ping``: last ping
        sent; ``outstanding_since``: a ping sent with nothing received since;
        ``blocked``: the reader is busy (waiting for room in a handler queue,
        or running an inline handler), not reading.
        """
        if blocked:
            since = max(last_recv, last_ping or last_recv)
            if now - since >= self.ping_interval_s:
                return HeartbeatDecision(HeartbeatAction.PING, now + self.ping_interval_s, True)
            return HeartbeatDecision(HeartbeatAction.NONE, since + self.ping_interval_s, True)
        if outstanding_since is not None:
            deadline = outstanding_since + self.pong_timeout_s
            if now >= deadline:
                return HeartbeatDecision(HeartbeatAction.DEAD, now)
            return HeartbeatDecision(HeartbeatAction.NONE, deadline)
        due = last_recv + self.ping_interval_s
        if now >= due:
            return HeartbeatDecision(HeartbeatAction.PING, now + self.pong_timeout_s)
        return HeartbeatDecision(HeartbeatAction.NONE, due)


class ConnectRateLimiter:
    """Sliding-window limit on new connections: ``rate`` per ``per`` seconds.

    ``reserve(now)`` books the next free slot and returns how long the caller
    must wait before connecting (0 when it may connect at once). One instance
    is shared by every WSClient of the process (``process_default()``), since
    OKX counts new connections per IP; clients on another clock (a test's
    ``FakeClock``) share one per clock, as slot times from different clocks
    cannot be compared. Raises ``ValidationError`` unless ``rate`` is an int >= 1
    and ``per`` a positive finite number of seconds.

    Thread safety: all methods lock internally.
    """

    _process: weakref.WeakKeyDictionary[Any, ConnectRateLimiter] = weakref.WeakKeyDictionary()
    _process_lock = threading.Lock()

    def __init__(self, rate: int = CONNECTIONS_PER_SECOND, per: float = 1.0) -> None:
        count(rate, name="rate")
        seconds(per, name="per", positive=True)
        self.rate = rate
        self.per = per
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()

    @classmethod
    def process_default(cls, clock: Clock | None = None) -> ConnectRateLimiter:
        """The limiter shared by every WSClient in this process that runs on
        ``clock`` (default: the system clock); created on first use."""
        key = SYSTEM_CLOCK if clock is None else clock
        with cls._process_lock:
            limiter = cls._process.get(key)
            if limiter is None:
                limiter = cls._process[key] = cls()
            return limiter

    def reserve(self, now: float) -> float:
        """Book a connection slot; return the seconds to wait before using it."""
        with self._lock:
            while self._slots and self._slots[0] <= now - self.per:
                self._slots.popleft()
            if len(self._slots) < self.rate:
                self._slots.append(now)
                return 0.0
            slot = self._slots[-self.rate] + self.per
            slot = max(slot, now)
            self._slots.append(slot)
            while len(self._slots) > self.rate:
                self._slots.popleft()
            return slot - now


class OpsBudget:
    """``limit`` subscribe/unsubscribe/login requests per ``window_s`` s on one connection.

    Thread safety: locks internally.
    """

    def __init__(self, limit: int = OPS_PER_HOUR, window_s: float = 3600.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._lock = threading.Lock()
        self._stamps: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.window_s:
            self._stamps.popleft()

    def remaining(self, now: float) -> int:
        """Requests still allowed in the window ending at ``now``."""
        with self._lock:
            self._expire(now)
            return self.limit - len(self._stamps)

    def take(self, now: float, n: int = 1) -> bool:
        """Use ``n`` requests if all fit; False (and nothing used) otherwise."""
        with self._lock:
            self._expire(now)
            if len(self._stamps) + n > self.limit:
                return False
            self._stamps.extend([now] * n)
            return True


# --------------------------------------------------------------------------- connection
class PushMode(enum.Enum):
    """What the client does with pushes arriving on a connection."""

    DELIVER = "deliver"  # the live connection
    BUFFER = "buffer"  # warming up during make-before-break
    FLUSH = "flush"  # just took over: deliver the buffer first
    DROP = "drop"  # retired


def take_read_ahead(ws: websocket.WebSocket) -> bytes:
    """The stream bytes websocket-client has read but not parsed yet (emptied from ``ws``).

    websocket-client (1.9.x) reads the handshake response a byte at a time, so
    nothing is normally buffered; but its ``frame_buffer.recv_buffer`` holds
    whatever it did read ahead, and those bytes come before anything the socket
    returns. Raises ``WSError`` when websocket-client is part-way through a
    frame (its frame state cannot be handed over). Thread safety: call before
    anyone else reads ``ws`` (the reader, at its start).
    """
    fb = getattr(ws, "frame_buffer", None)
    if fb is None:
        return b""
    if getattr(fb, "header", None) is not None or getattr(fb, "length", None) is not None:
        raise WSError("websocket-client is part-way through a frame; cannot take over its stream")
    cont = getattr(ws, "cont_frame", None)
    if cont is not None and getattr(cont, "cont_data", None):
        raise WSError("websocket-client holds a partial fragmented message")
    parts = list(getattr(fb, "recv_buffer", None) or ())
    fb.recv_buffer = []
    return b"".join(parts)


def _tls_context(sslopt: dict[str, Any]) -> ssl.SSLContext:
    """The client TLS context for websocket-client style ``sslopt`` (``context``,
    ``cert_reqs``, ``check_hostname``, ``ca_certs``, ``ca_cert_path``, ``certfile``,
    ``keyfile``, ``password``, ``ciphers``). Raises ``ssl.SSLError``/``OSError``."""
    given: ssl.SSLContext | None = sslopt.get("context")
    if given is not None:
        return given
    context = ssl.create_default_context(
        cafile=sslopt.get("ca_certs"), capath=sslopt.get("ca_cert_path")
    )
    cert_reqs = sslopt.get("cert_reqs", ssl.CERT_REQUIRED)
    context.check_hostname = bool(sslopt.get("check_hostname", True) and cert_reqs != ssl.CERT_NONE)
    context.verify_mode = cert_reqs
    if sslopt.get("certfile"):
        context.load_cert_chain(sslopt["certfile"], sslopt.get("keyfile"), sslopt.get("password"))
    if sslopt.get("ciphers"):
        context.set_ciphers(sslopt["ciphers"])
    return context


class _DeadlineSocket:
    """The socket as websocket-client's HTTP upgrade sees it: every read and write
    waits at most until ``deadline`` (``time.monotonic``), so a response dribbled a
    byte at a time cannot stretch the handshake. Thread safety: one thread."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("handshake deadline passed")
        self._sock.settimeout(left)

    def recv(self, size: int) -> bytes:
        self._arm()
        return self._sock.recv(size)

    def send(self, data: bytes) -> int:
        self._arm()
        return self._sock.send(data)

    def gettimeout(self) -> float:
        return max(0.001, self._deadline - time.monotonic())

    def settimeout(self, _timeout: float | None) -> None:
        """Ignored: the deadline decides."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class Connection:
    """One WebSocket to OKX with its reader thread (``okx-ws-<name>-reader``).

    ``open()`` connects and starts the reader. The whole handshake (TCP
    connect, TLS, HTTP upgrade) must end within ``connect_timeout_s`` s, however
    slowly the server answers, and ``abort()``/``close()`` from another thread
    end it at once; then the reader starts,
    which calls ``on_message(conn, payload_bytes)`` for every text message
    (``pong`` included; valid UTF-8, fragments joined) and ``on_closed(conn)``
    once when it ends. The reader answers WebSocket pings with pongs, echoes a
    server's close frame (``close_code``/``close_reason`` keep it) and closes
    with 1002/1007/1009 when the server breaks the protocol, sends invalid
    UTF-8 or a message over ``max_message_size`` (``error`` is then a
    ``ws.frames.FrameError``).
    ``send`` is serialised by a lock. Every write (text, ping, pong, close) has
    a deadline of ``write_timeout_s`` s, the wait for the send lock included: a
    write that cannot finish in time (the server stopped reading) aborts the
    connection, since part of a frame may be on the wire. ``abort(reason)``
    shuts the socket so the reader ends; ``close(timeout)`` also sends a close
    frame when the socket can take it within half of ``timeout``, and joins
    the reader. I/O deadlines are real (``time.monotonic``), whatever the clock.

    Public attributes written by the reader and read by anyone: ``last_recv``,
    ``last_pong``, ``last_ping``, ``ping_outstanding_since``, ``messages``,
    ``bytes``, ``close_code``, ``close_reason``, ``error``, ``busy`` (the
    reader is inside ``on_message``, since ``last_recv``). ``stall`` is set by the heartbeat when a handler
    has held the reader past a ping: (handler label, since); the reader logs
    one WARNING for it when the handler returns. The client keeps its
    own per-connection state in ``push_mode``, ``pending``, ``subscribed``,
    ``push_keys``, ``buffer``, ``last_data``, ``track_last``, ``conn_id``.

    Thread safety: see the method docs; all public methods are thread-safe.
    """

    def __init__(
        self,
        url: str,
        *,
        seq: int,
        name: str,
        on_message: Callable[[Connection, bytes], None],
        on_closed: Callable[[Connection], None],
        clock: Clock = SYSTEM_CLOCK,
        connect_timeout_s: float = 10.0,
        options: dict[str, Any] | None = None,
        ops_budget: OpsBudget | None = None,
        max_message_size: int = DEFAULT_MAX_SIZE,
        write_timeout_s: float = 8.0,
    ) -> None:
        self.url = url
        self._max_message_size = max_message_size
        self._write_timeout_s = write_timeout_s
        self.seq = seq
        self.name = name
        self._on_message = on_message
        self._on_closed = on_closed
        self._clock = clock
        self._connect_timeout_s = connect_timeout_s
        self._options = dict(options or {})
        self._ws: websocket.WebSocket | None = None
        self._sock: Any = None  # the TCP or TLS socket, from the TCP connect on
        self._send_lock = threading.Lock()
        self._close_sent = False  # guarded by the send lock
        self._reader: threading.Thread | None = None
        self._stopping = False
        self.closed = threading.Event()
        self.opened_at: float | None = None
        self.ready_at: float | None = None
        self.last_recv = 0.0
        self.last_pong: float | None = None
        self.last_ping: float | None = None
        self.ping_outstanding_since: float | None = None
        self.busy = False
        self.stall: tuple[str, float] | None = None
        self.messages = 0
        self.bytes = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self.abort_reason = ""
        self.error: BaseException | None = None
        self.ops = ops_budget or OpsBudget()
        # client-owned state (see class doc)
        self.push_mode = PushMode.DELIVER
        self.pending: dict[str, Any] = {}
        self.subscribed: set[Any] = set()
        # (channel, instId or "") -> acknowledged subscriptions with that push key
        self.push_keys: dict[tuple[str, str], int] = {}
        self.buffer: list[Any] = []
        self.buffer_lock = threading.Lock()
        self.last_data: dict[Any, Any] = {}
        self.track_last = False
        self.conn_id = ""
        self.login_waiter: Any = None

    def __repr__(self) -> str:
        return f"Connection({self.name!r}, seq={self.seq}, conn_id={self.conn_id!r})"

    @property
    def stopping(self) -> bool:
        """True once ``abort``/``close`` was called or the reader ended."""
        return self._stopping

    def should_stop(self) -> bool:
        """Same as ``stopping``, as a callable (given to blocking queue waits)."""
        return self._stopping

    def open(self) -> None:
        """Connect within ``connect_timeout_s`` s (TCP, TLS, HTTP upgrade) and start the reader.

        Raises ``WSError`` when the handshake is not complete in time (its
        last socket error chained), ``WSClosedError`` when aborted meanwhile,
        ``OSError``/``ssl.SSLError``/``websocket.WebSocketException`` when the
        connection cannot be made; the socket is closed then.
        """
        deadline = time.monotonic() + self._connect_timeout_s
        options = dict(self._options)
        unsupported = sorted(UNSUPPORTED_WS_OPTIONS.intersection(options))
        if unsupported:
            raise WSError(f"ws_options not supported: {', '.join(unsupported)}")
        sslopt = dict(options.pop("sslopt", None) or {})
        sockopt = options.pop("sockopt", None) or ()
        parts = urllib.parse.urlsplit(self.url)
        secure = parts.scheme == "wss"
        host = parts.hostname or ""
        try:
            sock = socket.create_connection(
                (host, parts.port or (443 if secure else 80)), timeout=self._connect_timeout_s
            )
        except TimeoutError as exc:
            raise WSError(
                f"WS {self.name}: TCP connect to {host} not done within "
                f"{self._connect_timeout_s:g} s (handshake)"
            ) from exc
        try:
            for opt in sockopt:
                sock.setsockopt(*opt)
            self._sock = sock
            if secure:
                tls = _tls_context(sslopt).wrap_socket(
                    sock,
                    server_hostname=sslopt.get("server_hostname") or host,
                    do_handshake_on_connect=False,
                )
                sock = self._sock = tls  # the TCP socket was detached into the TLS one
                if self._stopping:  # abort() ran before it could shut this socket
                    raise WSClosedError(f"WS connection {self.name} aborted while connecting")
                tls.settimeout(max(0.001, deadline - time.monotonic()))
                tls.do_handshake()  # one deadline for the whole TLS handshake
            if self._stopping:
                raise WSClosedError(f"WS connection {self.name} aborted while connecting")
            ws = websocket.create_connection(
                self.url,
                socket=_DeadlineSocket(sock, deadline),
                skip_utf8_validation=True,
                enable_multithread=True,
                redirect_limit=0,
                **options,
            )
        except BaseException as exc:
            sock.close()
            if self._stopping:
                raise WSClosedError(f"WS connection {self.name} aborted while connecting") from exc
            if time.monotonic() >= deadline or isinstance(
                exc, (TimeoutError, websocket.WebSocketTimeoutException)
            ):
                raise WSError(
                    f"WS {self.name}: handshake with {host} not complete within "
                    f"{self._connect_timeout_s:g} s"
                ) from exc
            raise
        ws.sock = sock  # drop the handshake's deadline wrapper
        # Reads wait without end (a timeout only wakes the reader, which reads
        # again); a write that makes no progress for write_timeout_s s fails.
        sock.settimeout(self._write_timeout_s)
        self._ws = ws
        now = self._clock.monotonic()
        self.opened_at = now
        self.last_recv = now
        self._reader = threading.Thread(
            target=self._read_loop, name=f"okx-ws-{self.name}-reader", daemon=True
        )
        self._reader.start()

    def send(self, text: str) -> None:
        """Send one text frame within ``write_timeout_s`` s.

        Raises ``WSClosedError`` when the socket is gone or the write did not
        finish in time (the connection is then aborted).
        Thread safety: serialised by the send lock; any thread.
        """
        if self._ws is None or self._stopping:
            raise WSClosedError(f"WS connection {self.name} is not open")
        if not self._write(text.encode(), websocket.ABNF.OPCODE_TEXT, self._write_timeout_s):
            raise WSClosedError(f"WS connection {self.name} is closing")

    def _write(self, payload: bytes, opcode: int, budget: float) -> bool:
        """Write one frame within ``budget`` s (lock wait included); False after a close frame.

        A write that cannot finish in time aborts the connection and raises
        ``WSClosedError``, as does a socket error. A close frame that cannot
        be written in time is given up quietly (False): whoever sends it ends
        the connection next, with its own reason.
        """
        sock = self._sock
        frame = websocket.ABNF.create_frame(payload, opcode).format()
        closing = opcode == websocket.ABNF.OPCODE_CLOSE
        deadline = time.monotonic() + budget
        if not self._send_lock.acquire(timeout=budget):
            if closing:
                return False
            reason = f"write timed out: another write held the socket for {budget:g} s"
            self.abort(reason)
            raise WSClosedError(f"WS {self.name}: {reason}")
        try:
            if self._close_sent:
                return False
            if closing:
                self._close_sent = True
            left = deadline - time.monotonic()
            short = left < self._write_timeout_s - 0.05
            if short:  # less than a whole write timeout left: bound this write by it
                sock.settimeout(max(0.001, left))
            try:
                sock.sendall(frame)
            finally:
                if short:
                    sock.settimeout(self._write_timeout_s)
            return True
        except TimeoutError as exc:
            if closing:
                return False
            reason = f"write timed out: the server took no data for {budget:g} s"
            self.abort(reason)
            raise WSClosedError(f"WS {self.name}: {reason}") from exc
        except OSError as exc:
            raise WSClosedError(f"WS send failed on {self.name}: {exc}") from exc
        finally:
            self._send_lock.release()

    def ping(self) -> None:
        """Send the text ``ping`` and note it for the heartbeat; failures abort the connection."""
        now = self._clock.monotonic()
        try:
            self.send(PING)
        except WSClosedError as exc:
            self.abort(f"ping failed: {exc}")
            return
        self.last_ping = now
        if self.ping_outstanding_since is None:
            self.ping_outstanding_since = now

    def abort(self, reason: str) -> None:
        """Stop reading: shut the socket down so the reader ends. Idempotent, any thread."""
        if not self.abort_reason:
            self.abort_reason = reason
        self._stopping = True
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self, timeout_s: float = 2.0, reason: str = "closed") -> bool:
        """Send a close frame (best effort), abort, and join the reader within ``timeout_s``.

        The close frame is sent only if the socket takes it within half of
        ``timeout_s`` (a server that stopped reading gets none). Returns True
        when the reader has ended. Idempotent: one close frame at most,
        whichever thread closes first (the supervisor and ``stop()`` may both
        close); any thread, except that the reader does not join itself.
        """
        deadline = time.monotonic() + timeout_s
        if not self._stopping and self._ws is not None:
            budget = timeout_s / 2
            poller = select.poll()  # not select(): any fd number
            try:
                poller.register(self._sock, select.POLLOUT)
                writable = poller.poll(budget * 1000)
            except (OSError, ValueError):
                writable = []
            if writable:
                self._send_close(websocket.STATUS_NORMAL, "", budget)
        self.abort(reason)
        return self.join(max(0.0, deadline - time.monotonic()))

    def join(self, timeout_s: float) -> bool:
        """Wait for the reader to end; True when it has (or never started)."""
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout_s)
            return not reader.is_alive()
        return True

    def _read_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        try:
            self._read_frames(ws)
        except Exception as exc:
            if not self._stopping:
                self.error = exc
                if isinstance(exc, FrameError):
                    self._send_close(exc.close_code, str(exc))
        finally:
            self._stopping = True
            try:
                ws.shutdown()
            except Exception:  # pragma: no cover - best effort
                pass
            self.closed.set()
            self._on_closed(self)

    def _read_frames(self, ws: websocket.WebSocket) -> None:
        """The reader: large reads from the socket, frames cut by ``FrameParser``.

        websocket-client made the connection (handshake, TLS) and still sends;
        reading frames one by one through it costs ~10 us a frame (three
        ``recv`` calls and a frame object each), most of a small push's cost.
        The socket (plain or ``ssl.SSLSocket``: reads go through the TLS layer,
        so records it already decrypted are not skipped) is read into one
        buffer; whatever websocket-client read ahead is parsed first.
        Returns after a close frame or when stopping; raises on a lost socket
        or a ``FrameError``.
        """
        sock = self._sock
        if sock is None:
            raise WSClosedError(f"WS connection {self.name} has no socket")
        parser = FrameParser(self._max_message_size)
        feed = parser.feed
        recv_into = sock.recv_into
        buf = bytearray(_READ_SIZE)
        view = memoryview(buf)
        monotonic = self._clock.monotonic
        on_message = self._on_message
        chunk = take_read_ahead(ws)
        while not self._stopping:
            if not chunk:
                try:
                    n = recv_into(buf)
                except TimeoutError:  # the socket's write timeout: nothing to read yet
                    continue
                if not n:
                    if self._stopping:
                        return
                    raise WSClosedError(
                        "the server closed the TCP connection without a close frame"
                    )
                chunk = view[:n].tobytes()
            messages = feed(chunk)
            chunk = b""
            for opcode, data in messages:
                if self._stopping:
                    return
                self.last_recv = monotonic()
                self.ping_outstanding_since = None
                if opcode == OP_TEXT:
                    self.messages += 1
                    self.bytes += len(data)
                    self.busy = True
                    try:
                        on_message(self, data)
                    except Exception:  # a bug in routing must not kill the connection
                        log.exception(
                            "ws %s: handling a message from %s failed (%d bytes)",
                            self.name,
                            self.url,
                            len(data),
                            extra={"ws": self.name, "url": self.url},
                        )
                    self.busy = False
                    if self.stall is not None:
                        self._end_stall()
                elif opcode == OP_PING:
                    self._send_frame(data, websocket.ABNF.OPCODE_PONG)
                elif opcode == OP_CLOSE:
                    self.close_code, self.close_reason = parse_close_frame(data)
                    self._send_close(self.close_code, "")
                    return
                elif opcode == OP_BINARY:  # OKX sends text only
                    log.debug(
                        "ws %s: binary message ignored (%d bytes)",
                        self.name,
                        len(data),
                        extra={"ws": self.name, "size": len(data)},
                    )
            if parser.error is not None:
                raise parser.error

    def _end_stall(self) -> None:
        """The handler the heartbeat saw holding the reader returned: one WARNING (reader)."""
        stall, self.stall = self.stall, None
        if stall is None:
            return
        handler, since = stall
        held = self._clock.monotonic() - since
        log.warning(
            "ws %s: handler %s held the reader for %.3g s (inline dispatch): nothing was read "
            "from %s meanwhile; the heartbeat kept the connection. Use pool dispatch for a "
            "handler that blocks",
            self.name,
            handler,
            held,
            self.url,
            extra={"ws": self.name, "handler": handler, "held_s": round(held, 3)},
        )

    def _send_frame(self, payload: bytes, opcode: int, budget: float | None = None) -> None:
        """Send a control frame (pong, close) within ``budget`` s (default ``write_timeout_s``).

        Failures are left to the reader (a write that timed out has aborted
        the connection). A close frame is sent once: nothing is sent after it.
        """
        if self._ws is None:
            return
        try:
            self._write(payload, opcode, self._write_timeout_s if budget is None else budget)
        except WSClosedError:
            pass

    def _send_close(self, code: int | None, reason: str, budget: float | None = None) -> None:
        """Best-effort close frame: ``code`` (1000 when None or not sendable) and ``reason``."""
        if code is None or code in _UNSENDABLE_CLOSE or not 1000 <= code < 5000:
            code = websocket.STATUS_NORMAL
        text = reason.encode()[:_MAX_CLOSE_REASON].decode(errors="ignore").encode()
        self._send_frame(code.to_bytes(2, "big") + text, websocket.ABNF.OPCODE_CLOSE, budget)

    def describe_end(self) -> str:
        """Why the connection ended, for logs and ``last_error``."""
        if self.abort_reason:
            return self.abort_reason
        if self.close_code is not None:
            return f"closed by server: code {self.close_code} {self.close_reason}".rstrip()
        if self.error is not None:
            return f"connection lost: {type(self.error).__name__}: {self.error}"
        return "connection ended"


# --------------------------------------------------------------------------- manager
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

    ``start(timeout_s)`` returns once the first connection is ready or raises
    (``WSAuthError`` at once; ``WSError`` when no connection could be made in
    ``timeout_s``). ``stop()`` closes every connection and joins every thread it
    started. ``request_handoff(conn)`` asks for make-before-break (notice 64008);
    ``reconnect(reason)`` drops the live connection (the loop reconnects).

    Thread safety: every public method may be called from any thread;
    ``start`` after ``stop`` starts afresh.
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
        max_message_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.url = url
        self.name = name
        self._max_message_size = max_message_size
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
        self.connects = 0
        self.reconnects = 0
        self.handoffs = 0
        self.retired_messages = 0
        self.retired_bytes = 0

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
            max_message_size=self._max_message_size,
            write_timeout_s=self.heartbeat.pong_timeout_s,
        )
        with self._cond:
            if self._stopping:
                raise WSClosedError("client closed")
            self._connecting = conn
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
                    delay = self.backoff.delay(attempt, self._rng.random())
                    self._hooks.on_conn_error(exc, attempt, delay)
                    attempt += 1
                    self._sleep(delay)
                    continue
                conn.ready_at = self._clock.monotonic()
                with self._cond:
                    self._warming = None
                    self._current = conn
                    self.last_conn = conn
                    self._cond.notify_all()
                if not first:
                    self.reconnects += 1
                self._hooks.on_up(conn, first=first)
                first = False
                self._ready.set()
                conn = self._serve(conn)
                with self._cond:
                    self._current = None
                self._retire_counts(conn)
                if self._stopping:
                    break
                uptime = self._clock.monotonic() - (conn.ready_at or conn.opened_at or 0.0)
                self._hooks.on_down(conn)
                log.warning(
                    "ws %s: disconnected from %s after %.3g s: %s",
                    self.name,
                    self.url,
                    uptime,
                    conn.describe_end(),
                    extra={
                        "ws": self.name,
                        "url": self.url,
                        "reason": conn.describe_end(),
                        "uptime_s": round(uptime, 3),
                    },
                )
                attempt = self.backoff.reset_if_stable(attempt, uptime)
                delay = self.backoff.delay(attempt, self._rng.random())
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
            log.warning(
                "ws %s: handoff: new connection to %s failed: %s: %s",
                self.name,
                self.url,
                type(exc).__name__,
                exc,
                extra={"ws": self.name, "url": self.url, "error": str(exc)},
            )
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
            log.warning(
                "ws %s: handoff failed (%s): %s: %s",
                self.name,
                self.url,
                type(exc).__name__,
                exc,
                extra={"ws": self.name, "url": self.url, "error": str(exc)},
            )
            if isinstance(exc, WSAuthError):
                self._fatal = exc
                self._hooks.on_fatal(exc)
                old.close(1.0, "login refused")
            return old
        new.ready_at = self._clock.monotonic()
        with self._cond:
            self._current = new
            self.last_conn = new
            self._warming = None
            self._cond.notify_all()
        # Let replies to order requests still in flight on the old socket arrive.
        deadline = self._clock.monotonic() + self._handoff_grace_s
        while self._hooks.pending_orders(old) and self._clock.monotonic() < deadline:
            if not self._sleep(0.01):
                break
        old.abort("replaced by a new connection (notice 64008)")
        old.join(2.0)
        self._retire_counts(old)
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

    def _retire_counts(self, conn: Connection) -> None:
        self.retired_messages += conn.messages
        self.retired_bytes += conn.bytes

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
                if conn.stopping:
                    continue
                busy = conn.busy
                last_recv = conn.last_recv
                decision = policy.decide(
                    now,
                    last_recv=last_recv,
                    last_ping=conn.last_ping,
                    outstanding_since=conn.ping_outstanding_since,
                    blocked=busy or self._hooks.reader_blocked(conn),
                )
                if busy and conn.stall is None and now - last_recv >= policy.ping_interval_s:
                    handler = self._hooks.reader_handler(conn)
                    if handler is not None:  # a handler, not a full queue, holds the reader
                        conn.stall = (handler, last_recv)
                if decision.reset_outstanding:
                    conn.ping_outstanding_since = None
                if decision.action is HeartbeatAction.PING:
                    conn.ping()
                elif decision.action is HeartbeatAction.DEAD:
                    log.warning(
                        "ws %s: heartbeat timeout: no pong or message within %g s of a ping (%s)",
                        self.name,
                        policy.pong_timeout_s,
                        self.url,
                        extra={
                            "ws": self.name,
                            "seq": conn.seq,
                            "pong_timeout_s": policy.pong_timeout_s,
                        },
                    )
                    conn.abort(
                        f"heartbeat: no pong or message within {policy.pong_timeout_s:g} s of a ping"
                    )
                    self.wake()
                wake = min(wake, decision.wake_at)
            with self._cond:
                if self._stopping:
                    return
                left = wake - self._clock.monotonic()
                if left > 0:
                    self._clock.wait(self._cond, left)
