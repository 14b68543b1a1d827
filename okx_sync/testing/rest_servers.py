"""Scripted HTTP servers on real sockets on 127.0.0.1, for REST core tests and benchmarks.

- :class:`EchoServer`: a threaded HTTP/1.1 keep-alive server; a ``responder``
  decides each answer, every request is recorded, accepted connections counted.
- :class:`HangServer`: accepts, reads the request, never answers.
- :class:`ResetServer`: accepts, reads the request, then resets the connection (RST).
- :class:`ScriptedServer`: reads each request (head and body) on its own
  thread and hands the raw socket to a ``script(conn, request, stop)`` that
  writes whatever hostile answer a test needs (trickles, bombs, endless bodies).
- :func:`refused_port`: a port on 127.0.0.1 where nothing listens.
- :class:`BurstHTTPServer`: the threaded server these (and ``LimitServer``) build on,
  with a listen() backlog for a burst of new connections.

Every server binds port 0 and stops (threads joined) on ``close()`` / ``with``.
Thread safety: each server handles connections on its own threads; what it
records is behind a lock.
"""

from __future__ import annotations

import http.server
import json
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

Answer = tuple[int, dict[str, str], bytes]
Responder = Callable[[str, str, dict[str, str], bytes], Answer]


def ok_json(data: list[Any] | None = None, *, code: str = "0", msg: str = "") -> bytes:
    """An OKX envelope as bytes."""
    return json.dumps({"code": code, "msg": msg, "data": data or []}).encode()


def default_responder(method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
    """Echo the target back as one data item (code 0)."""
    return 200, {"x-request-id": "loop-1"}, ok_json([{"target": target, "method": method}])


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        with self.server.lock:
            self.server.requests.append((self.command, self.path, headers, body))
        status, extra, payload = self.server.responder(self.command, self.path, headers, body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class BurstHTTPServer(http.server.ThreadingHTTPServer):
    """A threaded HTTP server (daemon threads) whose listen() backlog takes a burst of
    new connections: socketserver's default of 5 drops the SYNs of 8-16 clients
    connecting at once, and each dropped one is retried 1 s later. The base of the
    scripted HTTP servers here and of :class:`~okx_sync.testing.LimitServer`."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128


class _HTTPServer(BurstHTTPServer):
    def __init__(self, responder: Responder) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.responder = responder
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []


class EchoServer:
    """Threaded keep-alive HTTP server; ``url``, ``requests``, ``connections``."""

    def __init__(self, responder: Responder = default_responder) -> None:
        self._server = _HTTPServer(responder)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="okx-test-http"
        )
        self._thread.start()

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str], bytes]]:
        """A copy of every request so far: ``(method, target, headers, body)``."""
        with self._server.lock:
            return list(self._server.requests)

    @property
    def connections(self) -> int:
        """How many connections were accepted so far."""
        with self._server.lock:
            return self._server.connections

    def set_responder(self, responder: Responder) -> None:
        """Answer the next requests with ``responder(method, target, headers, body)``."""
        self._server.responder = responder

    def close(self) -> None:
        """Stop serving and join the thread (5 s deadline)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> EchoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RawServer:
    """Accept loop on a raw socket; ``handle(conn)`` decides what happens.

    With ``read_request`` the loop first reads up to the end of the request
    headers; otherwise it reads whatever the first packet holds.
    """

    read_request = True

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self.got_request = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="okx-test-raw")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            conn.settimeout(2.0)
            self._conns.append(conn)
            data = b""
            try:
                while True:
                    chunk = conn.recv(65536)
                    data += chunk
                    if not chunk or not self.read_request or b"\r\n\r\n" in data:
                        break
            except OSError:
                pass
            self.received.append(data)
            self.got_request.set()
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._conns:
            conn.close()
        self._sock.close()

    def __enter__(self) -> _RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HangServer(_RawServer):
    """Reads each request and never answers (the socket stays open until close)."""

    def handle(self, conn: socket.socket) -> None:
        """Leave the connection open and unanswered."""


class ResetServer(_RawServer):
    """Reads each request, then closes with SO_LINGER 0 so the client sees a reset."""

    def handle(self, conn: socket.socket) -> None:
        """Close ``conn`` with a reset (RST)."""
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


class GarbageServer(_RawServer):
    """Answers whatever arrives (a TLS ClientHello too) with junk and closes."""

    read_request = False

    def handle(self, conn: socket.socket) -> None:
        """Write junk to ``conn`` and close it."""
        try:
            conn.sendall(b"this is not TLS\r\n\r\n")
        finally:
            conn.close()


def refused_port() -> int:
    """A 127.0.0.1 port with no listener (bound, then released)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


Script = Callable[[socket.socket, bytes, threading.Event], None]


class ScriptedServer:
    """One thread per connection: read a request (head + ``Content-Length`` body),
    run ``script(conn, request, stop)``, repeat while the script leaves the
    connection open. ``requests`` counts requests read; ``wait_requests(n)``
    blocks (bounded) until ``n`` have arrived. ``close()`` sets ``stop`` (scripts
    pacing themselves with ``stop.wait`` end at once) and joins every thread."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.stop = threading.Event()
        self._cond = threading.Condition()
        self.requests = 0
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept = threading.Thread(target=self._loop, name="okx-test-scripted")
        self._accept.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), name="okx-test-conn")
            self._threads.append(thread)
            self._conns.append(conn)
            thread.start()

    def _read_request(self, conn: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            rest += chunk
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        buf = b""
        try:
            while not self.stop.is_set():
                got = self._read_request(conn, buf)
                if got is None:
                    return
                request, buf = got
                with self._cond:
                    self.requests += 1
                    self._cond.notify_all()
                self._script(conn, request, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def wait_requests(self, n: int, timeout_s: float = 10.0) -> bool:
        """True once ``n`` requests have been read (False after ``timeout_s`` s)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.requests >= n, timeout_s)

    def close(self) -> None:
        """Stop accepting, wake and join every connection thread (5 s deadlines)."""
        self.stop.set()
        self._accept.join(5)
        for conn in self._conns:  # wake threads waiting for a next request
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)
        self._sock.close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def http_head(status: int = 200, length: int | None = None, **headers: str) -> bytes:
    """A response head (``Content-Length`` when ``length`` is given; header names
    written with ``_`` as ``-``)."""
    lines = [f"HTTP/1.1 {status} X"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def trickle(conn: socket.socket, data: bytes, interval_s: float, stop: threading.Event) -> None:
    """Send ``data`` one byte per ``interval_s`` s until done, the peer leaves or ``stop``."""
    for i in range(len(data)):
        if stop.wait(interval_s):
            return
        conn.sendall(data[i : i + 1])
