"""One WebSocket connection: socket, handshake deadline, reader thread, locked writes.

``Connection`` is one WebSocket with its named reader thread and a send lock:
the connection opens the socket itself (TCP, an HTTP proxy's ``CONNECT`` tunnel
by ``ws.proxy``, TLS), websocket-client (``create_connection``) does the HTTP
upgrade on it and sends; the reader reads the socket itself in large chunks and cuts the
frames out with ``ws.frames.FrameParser`` (websocket-client's per-frame reads
cost more than a small push's decoding and handling together). The loop that
opens, prepares and replaces connections is ``ws.supervisor.ConnectionManager``.

Thread safety: ``Connection.send``/``ping``/``abort``/``close`` may be called
from any thread. No okx_sync lock is held while user code runs.
"""

from __future__ import annotations

import enum
import logging
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import websocket

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import WSClosedError, WSError
from .frames import (
    DEFAULT_MAX_SIZE,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FrameError,
    FrameParser,
)
from .policies import OpsBudget
from .protocol import PING, parse_close_frame
from .proxy import HttpProxy, open_tunnel

__all__ = ["PushMode", "Connection", "take_read_ahead", "UNSUPPORTED_WS_OPTIONS"]

log = logging.getLogger("okx_sync.ws")

_READ_SIZE = 256 * 1024  # one socket read; TLS gives at most a record (16 KB) per read
_UNSENDABLE_CLOSE = frozenset((1004, 1005, 1006, 1015))  # reserved: never sent on the wire
_MAX_CLOSE_REASON = 123  # a control frame carries 125 bytes: 2 for the code
# ws_options keys that would make websocket-client open its own socket (the handshake
# deadline and abort() work on the socket Connection.open makes itself; an HTTP proxy is
# WSConfig.proxy_url, tunnelled by ws.proxy).
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


def _handshake(conn: Connection, deadline: float) -> tuple[websocket.WebSocket, Any]:
    """TCP connect, proxy tunnel (``CONNECT``, when ``conn`` has a proxy), TLS and HTTP
    upgrade for ``conn`` by ``deadline`` (``time.monotonic``).

    Sets ``conn._sock`` as soon as there is a socket (so ``abort()`` can shut it).
    Returns (websocket, socket). Raises as ``Connection.open`` documents; the socket
    is closed then. Thread safety: the opening thread only.
    """
    options = dict(conn._options)
    unsupported = sorted(UNSUPPORTED_WS_OPTIONS.intersection(options))
    if unsupported:
        raise WSError(f"ws_options not supported: {', '.join(unsupported)}")
    sslopt = dict(options.pop("sslopt", None) or {})
    sockopt = options.pop("sockopt", None) or ()
    parts = urllib.parse.urlsplit(conn.url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    proxy = conn._proxy
    peer = host if proxy is None else f"{host} through proxy {proxy.address}"
    try:
        sock = socket.create_connection(
            (host, port) if proxy is None else (proxy.host, proxy.port),
            timeout=conn._connect_timeout_s,
        )
    except TimeoutError as exc:
        raise WSError(
            f"WS {conn.name}: TCP connect to {peer} not done within "
            f"{conn._connect_timeout_s:g} s (handshake)"
        ) from exc
    try:
        for opt in sockopt:
            sock.setsockopt(*opt)
        conn._sock = sock
        if proxy is not None:
            open_tunnel(_DeadlineSocket(sock, deadline), proxy, host, port)
        if secure:
            tls = _tls_context(sslopt).wrap_socket(
                sock,
                server_hostname=sslopt.get("server_hostname") or host,
                do_handshake_on_connect=False,
            )
            sock = conn._sock = tls  # the TCP socket was detached into the TLS one
            if conn._stopping:  # abort() ran before it could shut this socket
                raise WSClosedError(f"WS connection {conn.name} aborted while connecting")
            tls.settimeout(max(0.001, deadline - time.monotonic()))
            tls.do_handshake()  # one deadline for the whole TLS handshake
        if conn._stopping:
            raise WSClosedError(f"WS connection {conn.name} aborted while connecting")
        ws = websocket.create_connection(
            conn.url,
            socket=_DeadlineSocket(sock, deadline),
            skip_utf8_validation=True,
            enable_multithread=True,
            redirect_limit=0,
            **options,
        )
    except BaseException as exc:
        sock.close()
        if conn._stopping:
            raise WSClosedError(f"WS connection {conn.name} aborted while connecting") from exc
        if time.monotonic() >= deadline or isinstance(
            exc, (TimeoutError, websocket.WebSocketTimeoutException)
        ):
            raise WSError(
                f"WS {conn.name}: handshake with {peer} not complete within "
                f"{conn._connect_timeout_s:g} s"
            ) from exc
        raise
    return ws, sock


class Connection:
    """One WebSocket to OKX with its reader thread (``okx-ws-<name>-reader``).

    ``open()`` connects and starts the reader. The whole handshake (TCP
    connect, the ``CONNECT`` tunnel when ``proxy`` (a ``ws.proxy.HttpProxy``) is
    given, TLS, HTTP upgrade) must end within ``connect_timeout_s`` s, however
    slowly the server answers, and ``abort()``/``close()`` from another thread
    end it at once; then the reader starts,
    which calls ``on_message(conn, payload_bytes)`` for every text message
    (``pong`` included; valid UTF-8, fragments joined) and ``on_closed(conn)``
    once when it ends. The reader answers WebSocket pings with pongs, echoes a
    server's close frame (``close_code``/``close_reason`` keep it) and closes
    with 1002/1007/1009 when the server breaks the protocol, sends invalid
    UTF-8 or a message over ``max_message_bytes`` (``error`` is then a
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
        max_message_bytes: int = DEFAULT_MAX_SIZE,
        write_timeout_s: float = 8.0,
        proxy: HttpProxy | None = None,
    ) -> None:
        self.url = url
        self._proxy = proxy
        self._max_message_bytes = max_message_bytes
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
        """Connect within ``connect_timeout_s`` s (TCP, proxy, TLS, upgrade); start the reader.

        Raises ``WSError`` when the handshake is not complete in time (its
        last socket error chained) or the proxy refuses the tunnel (its HTTP
        status named), ``WSClosedError`` when aborted meanwhile,
        ``OSError``/``ssl.SSLError``/``websocket.WebSocketException`` when the
        connection cannot be made; the socket is closed then.
        """
        deadline = time.monotonic() + self._connect_timeout_s
        ws, sock = _handshake(self, deadline)
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
        # noted before the send: the pong may be read (clearing the outstanding ping)
        # before send() returns here, and a mark set after it would then stay until
        # pong_timeout_s declared a live connection dead
        self.last_ping = now
        if self.ping_outstanding_since is None:
            self.ping_outstanding_since = now
        try:
            self.send(PING)
        except WSClosedError as exc:
            self.abort(f"ping failed: {exc}")

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
        parser = FrameParser(self._max_message_bytes)
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
