"""Scripted WebSocket servers on 127.0.0.1 for WSClient tests and benchmarks.

- :class:`LoopbackServer`: accepts connections, does the RFC 6455 handshake and
  hands each peer (:class:`ScriptedPeer`) to the test, which reads client
  frames and sends exactly the server frames it wants.
- :class:`ScriptedOKX`: a ``LoopbackServer`` answering OKX's login/subscribe
  the way the exchange does, so a ``WSClient`` reaches its steady state.
- :func:`unpaced_limiter`: a ``ConnectRateLimiter`` of its own for one test client
  (these servers and the simulator do not limit new connections).
- :func:`start_in_background`: ``ws.start()`` on a thread of its own, its exception kept.
- :func:`ws_threads`: names of the live ``okx-`` threads a client started
  (the simulator's ``okx-sim-`` threads excluded), to check threads stop.
- :func:`read_exact`, :func:`read_client_frame`, :func:`accept_handshake`:
  the raw socket steps, for tests that drive a socket themselves.

Every server binds port 0 and stops (threads joined) on ``close()`` / ``with``.
Thread safety: each server accepts on its own thread; a peer is driven by one
test thread at a time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from okx_sync.ws import frames as wsf
from okx_sync.ws.frames import encode_frame
from okx_sync.ws.policies import ConnectRateLimiter

__all__ = [
    "start_in_background",
    "unpaced_limiter",
    "ws_threads",
    "read_exact",
    "read_client_frame",
    "accept_handshake",
    "ScriptedPeer",
    "LoopbackServer",
    "ScriptedOKX",
]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def ws_threads() -> list[str]:
    """Names of the live threads okx_sync clients start: every ``okx-`` thread (WS
    connection, workers, managed books, ...) except the simulator's own (``okx-sim-``)."""
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("okx-") and not t.name.startswith("okx-sim-")
    ]


def read_exact(sock: socket.socket, n: int) -> bytes:
    """``n`` bytes from ``sock``; ``EOFError`` when it closes first."""
    out = b""
    while len(out) < n:
        part = sock.recv(n - len(out))
        if not part:
            raise EOFError
        out += part
    return out


def read_client_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One (masked) frame from the client: (opcode, payload)."""
    b0, b1 = read_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(read_exact(sock, 2), "big")
    elif n == 127:
        n = int.from_bytes(read_exact(sock, 8), "big")
    mask = read_exact(sock, 4) if b1 & 0x80 else b"\0\0\0\0"
    data = read_exact(sock, n)
    return b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def accept_handshake(sock: socket.socket) -> bytes:
    """Read the client's upgrade request from ``sock``; the 101 response to send."""
    request = b""
    while b"\r\n\r\n" not in request:
        part = sock.recv(4096)
        if not part:
            raise EOFError
        request += part
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


class ScriptedPeer:
    """One accepted connection of ``ScriptedOKX``, as the script sees it."""

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.index = index  # 0 for the first connection accepted

    def recv_json(self) -> dict[str, Any]:
        """The next JSON text frame; answers the text ``ping`` with ``pong`` on the way.
        ``EOFError`` when the client closes."""
        while True:
            op, payload = read_client_frame(self.sock)
            if op == wsf.OP_CLOSE:
                raise EOFError
            if op != wsf.OP_TEXT:
                continue
            if payload == b"ping":
                self.send_text("pong")
                continue
            return json.loads(payload)

    def send_text(self, text: str) -> None:
        """Send one text frame; raises ``OSError`` when the socket is gone."""
        self.sock.sendall(encode_frame(wsf.OP_TEXT, text.encode()))

    def send_json(self, msg: dict[str, Any]) -> None:
        """Send ``msg`` as one JSON text frame; raises ``OSError`` when the socket is gone."""
        self.send_text(json.dumps(msg))

    def drain(self) -> None:
        """Read (answering pings) until the client closes."""
        try:
            while True:
                self.recv_json()
        except (EOFError, OSError, ValueError):
            pass


class LoopbackServer:
    """A TCP server on 127.0.0.1 running ``handler(sock, index, stop)`` for every
    connection it accepts, each on its own thread (``index``: 0 for the first).

    ``accepted`` counts connections and ``first`` is set at the first one;
    ``rcvbuf`` (bytes), when given, is every accepted socket's receive buffer
    (small: a peer that stops reading fills it fast). ``close()`` sets ``stop``,
    stops listening, shuts every socket and joins the threads. A context manager.
    ``OSError``/``EOFError`` from a handler end its connection quietly.
    """

    def __init__(
        self,
        handler: Callable[[socket.socket, int, threading.Event], None],
        *,
        path: str = "/ws/v5/public",
        scheme: str = "ws",
        rcvbuf: int | None = None,
    ) -> None:
        self.handler = handler
        self.stop = threading.Event()
        self.first = threading.Event()
        self.accepted = 0
        self._listener = socket.socket()
        if rcvbuf is not None:  # inherited by the accepted sockets
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self.url = f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}{path}"
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept, name="test-okx-accept", daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            index = self.accepted
            self.accepted += 1
            self._socks.append(sock)
            t = threading.Thread(
                target=self._run, args=(sock, index), name=f"test-okx-{index}", daemon=True
            )
            self._threads.append(t)
            t.start()
            self.first.set()

    def _run(self, sock: socket.socket, index: int) -> None:
        with sock:
            try:
                self.handler(sock, index, self.stop)
            except (EOFError, OSError):
                pass

    def close(self) -> None:
        """Stop accepting and join the accept thread; closes every peer socket."""
        self.stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept()
        except OSError:
            pass
        self._listener.close()
        self._acceptor.join(2)
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(2)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScriptedOKX(LoopbackServer):
    """A WebSocket server on 127.0.0.1 that runs ``script(peer)`` for every connection
    it accepts (each on its own thread), then reads until the client closes.

    ``url`` ends in ``path``; ``accepted`` counts connections; an exception a script
    raises (other than the client going away) is kept in ``errors``. Use as a context
    manager: ``close()`` stops listening and joins the threads.
    """

    def __init__(self, script: Callable[[ScriptedPeer], None], path: str = "/ws/v5/public") -> None:
        self.script = script
        self.errors: list[BaseException] = []
        super().__init__(self._serve, path=path)

    def _serve(self, sock: socket.socket, index: int, _stop: threading.Event) -> None:
        try:
            sock.sendall(accept_handshake(sock))
            peer = ScriptedPeer(sock, index)
            self.script(peer)
            peer.drain()
        except (EOFError, OSError):
            pass
        except BaseException as exc:  # reported to the test
            self.errors.append(exc)


_HEARTBEAT_KEYS = ("ping_interval_s", "pong_timeout_s")


def start_in_background(
    ws: Any, timeout_s: float = 30.0
) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``ws.start(timeout_s=timeout_s)`` on a daemon thread named ``test-starter``
    (a start that keeps dialling until the client is closed); returns the thread and
    a list that holds the exception ``start`` ended with, if any. Never raises."""
    outcome: list[BaseException] = []

    def start() -> None:
        try:
            ws.start(timeout_s=timeout_s)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcome.append(exc)

    thread = threading.Thread(target=start, name="test-starter", daemon=True)
    thread.start()
    return thread, outcome


def unpaced_limiter() -> ConnectRateLimiter:
    """A ``ConnectRateLimiter`` (100 per second) for one test client. Neither these
    servers nor the simulator limit new connections, and a client without
    ``connect_limiter=`` shares the process-wide 3 per second with every client of
    the test run (tests would wait on slots earlier tests took). Never raises."""
    return ConnectRateLimiter(rate=100)


def ws_options(**kw: Any) -> dict[str, Any]:
    """WSClient keywords for a test helper: the WSConfig fields among ``kw`` (and
    ``ping_interval_s`` / ``pong_timeout_s``, for its ``HeartbeatPolicy``) become one
    ``config=WSConfig(...)``; None leaves a field at its default; the rest (clock,
    credentials, connect_limiter...) stay keywords."""
    import attrs

    from okx_sync.ws.config import WSConfig
    from okx_sync.ws.policies import HeartbeatPolicy

    fields = {a.name for a in attrs.fields(WSConfig)}
    cfg = {k: kw.pop(k) for k in list(kw) if k in fields}
    beat = {k: kw.pop(k) for k in _HEARTBEAT_KEYS if k in kw}
    if beat:
        cfg["heartbeat"] = HeartbeatPolicy(**beat)
    kw["config"] = WSConfig(**{k: v for k, v in cfg.items() if v is not None})
    return kw
