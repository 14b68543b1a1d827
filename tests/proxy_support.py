"""A small HTTP CONNECT proxy on 127.0.0.1 for the WebSocket proxy tests (tests/integration/test_ws_proxy.py).

``ConnectProxy`` accepts connections (``okx_sync.testing.ws_servers.LoopbackServer``), reads and records
each CONNECT request (request line and headers), and answers as told: ``"tunnel"`` (check the
Basic credentials when it has some, answering 407 without them; then connect to the target,
which must be on 127.0.0.1, answer 200 and copy bytes both ways), ``"garbage"`` (a line that is
not HTTP), ``"close"`` (close without a word), ``"silent"`` (never answer), ``"dribble"``
(headers one byte per 0.1 s, without end) or ``"flood"`` (headers without end). Tunnels that carried bytes are counted in ``tunnelled``.
"""

from __future__ import annotations

import base64
import socket
import threading

from okx_sync.testing.ws_servers import LoopbackServer

__all__ = ["ConnectProxy"]

_MAX_REQUEST = 64 * 1024


class ConnectProxy(LoopbackServer):
    """An HTTP CONNECT proxy thread; ``url`` is ``http://127.0.0.1:<port>`` (with ``user`` and
    ``password`` it requires ``Proxy-Authorization: Basic``). ``requests`` holds one
    ``(request_line, {lower-case header: value})`` per CONNECT read; ``answered`` is set
    when the proxy has answered one (or, for ``"silent"``, read it). A context manager."""

    def __init__(
        self, answer: str = "tunnel", *, user: str | None = None, password: str | None = None
    ) -> None:
        self.answer = answer
        self.credentials = None if user is None else f"{user}:{password or ''}"
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.answered = threading.Event()
        self.tunnelled = 0
        self._upstreams: list[socket.socket] = []
        self._pumps: list[threading.Thread] = []
        super().__init__(self._serve, path="")
        self.url = self.url.replace("ws://", "http://", 1)

    def _read_request(self, sock: socket.socket) -> tuple[str, dict[str, str]]:
        data = b""
        while b"\r\n\r\n" not in data:
            part = sock.recv(4096)
            if not part:
                raise EOFError
            data += part
            assert len(data) < _MAX_REQUEST, "a CONNECT request without end"
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.requests.append((head[0], headers))
        return head[0], headers

    def _serve(self, sock: socket.socket, _index: int, stop: threading.Event) -> None:
        line, headers = self._read_request(sock)
        if self.answer == "silent":
            self.answered.set()
            stop.wait()
            return
        if self.answer == "close":
            self.answered.set()
            return
        if self.answer == "garbage":
            sock.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
            self.answered.set()
            stop.wait()
            return
        if self.answer == "dribble":  # paced by the stop event: this side is the slow peer
            sock.sendall(b"HTTP/1.1 200 OK\r\n")
            self.answered.set()
            while not stop.wait(0.1):
                sock.sendall(b"X")
            return
        if self.answer == "flood":
            sock.sendall(b"HTTP/1.1 200 OK\r\n")
            self.answered.set()
            while not stop.is_set():
                sock.sendall(b"X-Filler: " + b"f" * 1000 + b"\r\n")
            return
        if self.credentials is not None:
            want = "Basic " + base64.b64encode(self.credentials.encode()).decode()
            if headers.get("proxy-authorization") != want:
                sock.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
                )
                self.answered.set()
                return
        method, target, _version = line.split(" ")
        host, _, port = target.rpartition(":")
        assert method == "CONNECT" and host == "127.0.0.1", line
        upstream = socket.create_connection((host, int(port)), timeout=5)
        upstream.settimeout(None)
        self._upstreams.append(upstream)
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.answered.set()
        pump = threading.Thread(
            target=self._copy, args=(upstream, sock), name="test-proxy-pump", daemon=True
        )
        self._pumps.append(pump)
        pump.start()
        self.tunnelled += 1
        self._copy(sock, upstream)

    @staticmethod
    def _copy(src: socket.socket, dst: socket.socket) -> None:
        """Copy ``src`` to ``dst`` until either closes, then shut both."""
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        super().close()
        for s in self._upstreams:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._pumps:
            t.join(2)
        for s in self._upstreams:
            s.close()

    def __enter__(self) -> ConnectProxy:
        return self
