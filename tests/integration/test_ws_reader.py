"""ws.connection.Connection's reader against a scripted server (ws:// and wss://).

The server does the RFC 6455 handshake by hand and then writes exact bytes, so the
tests control what arrives in the same TCP segment as the handshake, how frames are
split, and read back exactly what the client sends (pong, close frames).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import pytest
import websocket

from okx_sync.errors import WSClosedError
from okx_sync.testing.ws_servers import accept_handshake, read_client_frame
from okx_sync.ws import frames as wsf
from okx_sync.ws.connection import Connection, take_read_ahead
from okx_sync.ws.frames import FrameError, encode_frame


class ScriptedServer:
    """Accepts one WebSocket client; ``script(sock)`` runs after the handshake.

    ``first``: bytes written in the same ``sendall`` as the handshake response.
    Everything the client sends after the script is recorded in ``received``.
    """

    def __init__(
        self,
        first: bytes = b"",
        script: Callable[[socket.socket], None] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.first = first
        self.script = script
        self.tls = tls
        self.received: list[tuple[int, bytes]] = []
        self.done = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        port = self.listener.getsockname()[1]
        self.url = f"{'wss' if tls else 'ws'}://127.0.0.1:{port}/ws/v5/public"
        self.thread = threading.Thread(target=self._run, name="test-scripted-ws", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            raw, _ = self.listener.accept()
            sock = self.tls.wrap_socket(raw, server_side=True) if self.tls else raw
            with sock:
                response = accept_handshake(sock)
                sock.sendall(response + self.first)
                if self.script is not None:
                    self.script(sock)
                try:
                    while True:
                        self.received.append(read_client_frame(sock))
                except (EOFError, OSError):
                    pass
        finally:
            self.listener.close()
            self.done.set()

    def close_frames(self) -> list[bytes]:
        return [p for op, p in self.received if op == wsf.OP_CLOSE]


class Recorder:
    """on_message / on_closed of a Connection."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.ended = threading.Event()
        self.got: dict[int, threading.Event] = {}

    def on_message(self, _conn: Connection, data: bytes) -> None:
        self.messages.append(data)
        ev = self.got.get(len(self.messages))
        if ev is not None:
            ev.set()

    def on_closed(self, _conn: Connection) -> None:
        self.ended.set()

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        ev = self.got.setdefault(n, threading.Event())
        if len(self.messages) >= n:
            return True
        return ev.wait(timeout)


def connect(server: ScriptedServer, rec: Recorder, **options: Any) -> Connection:
    conn = Connection(
        server.url,
        seq=1,
        name="test",
        on_message=rec.on_message,
        on_closed=rec.on_closed,
        connect_timeout_s=5.0,
        options=options,
        max_message_bytes=options.pop("max_message_bytes", 1 << 20),
    )
    conn.open()
    return conn


@pytest.fixture(params=["ws", "wss"])
def tls(request):
    if request.param == "ws":
        return None, {}
    from okx_sync.sim.tls import make_server_context, tls_available

    if not tls_available():
        pytest.skip("no cryptography package and no openssl command: cannot make a certificate")
    context, cert_path = make_server_context()
    return context, {"sslopt": {"ca_certs": cert_path, "cert_reqs": ssl.CERT_REQUIRED}}


PUSHES = [
    b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"px":"%d"}]}' % i
    for i in range(2000)
]


def test_frames_sent_with_the_handshake_are_all_delivered(tls):
    context, options = tls
    first = b"".join(encode_frame(wsf.OP_TEXT, p) for p in PUSHES[:500])
    rest = b"".join(encode_frame(wsf.OP_TEXT, p) for p in PUSHES[500:])
    server = ScriptedServer(first, lambda s: s.sendall(rest), tls=context)
    rec = Recorder()
    conn = connect(server, rec, **options)
    try:
        assert rec.wait_for(len(PUSHES))
        assert rec.messages == PUSHES
        assert conn.messages == len(PUSHES) and conn.bytes == sum(map(len, PUSHES))
    finally:
        assert conn.close(2.0)
    assert server.done.wait(5)
    assert server.close_frames() == [(1000).to_bytes(2, "big")]


class ReadAheadWebSocket(websocket.WebSocket):
    """Reads the first bytes after the handshake into websocket-client's own buffer,
    as a websocket-client that reads ahead would: they must not be lost."""

    def connect(self, url: str, **options: Any) -> None:
        super().connect(url, **options)
        ahead = b""
        while len(ahead) < 7:  # the whole first frame's header and part of its payload
            ahead += self.sock.recv(7 - len(ahead))
        self.frame_buffer.recv_buffer.append(ahead)


def test_bytes_websocket_client_read_ahead_come_first(tls):
    context, options = tls
    first = b"".join(encode_frame(wsf.OP_TEXT, p) for p in PUSHES[:3])
    server = ScriptedServer(first, tls=context)
    rec = Recorder()
    conn = connect(server, rec, class_=ReadAheadWebSocket, **options)
    try:
        assert rec.wait_for(3)
        assert rec.messages == PUSHES[:3]
    finally:
        conn.close(2.0)


def test_take_read_ahead_refuses_a_half_read_frame():
    ws = websocket.WebSocket()
    ws.frame_buffer.recv_buffer = [b"ab", b"cd"]
    assert take_read_ahead(ws) == b"abcd" and ws.frame_buffer.recv_buffer == []
    ws.frame_buffer.header = (1, 0, 0, 0, 1, 0, 5)
    with pytest.raises(Exception, match="part-way through a frame"):
        take_read_ahead(ws)


def test_ping_answered_fragments_joined_split_writes(tls):
    context, options = tls
    euro = "\u20ac".encode()
    frames = (
        encode_frame(wsf.OP_TEXT, b'{"a":"' + euro[:1], fin=False)
        + encode_frame(wsf.OP_PING, b"are you there")
        + encode_frame(wsf.OP_CONT, euro[1:] + b'"}')
        + encode_frame(wsf.OP_TEXT, b"x" * 70_000)
    )
    pong_seen = threading.Event()

    def script(sock: socket.socket) -> None:
        for i in range(0, len(frames), 333):  # arbitrary cuts through headers and payloads
            sock.sendall(frames[i : i + 333])
        op, payload = read_client_frame(sock)
        server.received.append((op, payload))
        pong_seen.set()

    server = ScriptedServer(tls=context, script=script)
    rec = Recorder()
    conn = connect(server, rec, **options)
    try:
        assert rec.wait_for(2)
        assert rec.messages == ['{"a":"\u20ac"}'.encode(), b"x" * 70_000]
        assert pong_seen.wait(5)
        assert server.received[0] == (wsf.OP_PONG, b"are you there")
    finally:
        conn.close(2.0)


def test_a_pong_read_before_ping_returns_leaves_no_ping_outstanding():
    """The server answers the heartbeat's ``ping`` at once, and the reader handles the
    ``pong`` before ``ping()`` got back from its send: no ping stays outstanding (a mark
    set after the send outlived its pong, and the heartbeat then declared a live but quiet
    connection dead at pong_timeout_s)."""

    def script(sock: socket.socket) -> None:
        op, payload = read_client_frame(sock)
        server.received.append((op, payload))
        sock.sendall(encode_frame(wsf.OP_TEXT, b"pong"))

    server = ScriptedServer(script=script)
    rec = Recorder()
    conn = connect(server, rec)
    send = conn.send

    def send_then_let_the_reader_handle_the_pong(data: Any, *args: Any, **kwargs: Any) -> Any:
        sent = send(data, *args, **kwargs)
        assert rec.wait_for(1)  # the pong was read while ping() was still in send()
        return sent

    conn.send = send_then_let_the_reader_handle_the_pong  # type: ignore[method-assign]
    try:
        conn.ping()
        assert rec.messages == [b"pong"] and server.received[0] == (wsf.OP_TEXT, b"ping")
        assert conn.last_ping is not None and conn.ping_outstanding_since is None
    finally:
        conn.close(2.0)


def test_server_close_code_and_reason_kept_and_echoed(tls):
    context, options = tls
    close = encode_frame(wsf.OP_CLOSE, (4004).to_bytes(2, "big") + b"No data received in 30s.")
    server = ScriptedServer(encode_frame(wsf.OP_TEXT, b"last") + close, tls=context)
    rec = Recorder()
    conn = connect(server, rec, **options)
    assert rec.ended.wait(5)
    assert rec.messages == [b"last"]
    assert conn.close_code == 4004 and conn.close_reason == "No data received in 30s."
    assert conn.error is None and conn.stopping
    assert conn.describe_end() == "closed by server: code 4004 No data received in 30s."
    assert server.done.wait(5)
    assert server.close_frames() == [(4004).to_bytes(2, "big")]
    conn.close(1.0)


@pytest.mark.parametrize(
    "bad, code",
    [
        (encode_frame(wsf.OP_TEXT, b"masked", mask=b"\x01\x02\x03\x04"), 1002),
        (encode_frame(wsf.OP_TEXT, b"bad \xff utf8"), 1007),
        (encode_frame(wsf.OP_TEXT, b"y" * 5000), 1009),
    ],
)
def test_protocol_violation_closes_with_its_code(bad, code):
    server = ScriptedServer(
        encode_frame(wsf.OP_TEXT, b"good") + bad + encode_frame(wsf.OP_TEXT, b"no")
    )
    rec = Recorder()
    conn = connect(server, rec, max_message_bytes=4096)
    assert rec.ended.wait(5)
    assert rec.messages == [b"good"]
    assert isinstance(conn.error, FrameError) and conn.error.close_code == code
    assert server.done.wait(5)
    frames = server.close_frames()
    assert len(frames) == 1 and int.from_bytes(frames[0][:2], "big") == code
    assert "connection lost: FrameError" in conn.describe_end()


def test_eof_without_close_frame_is_an_error():
    server = ScriptedServer(
        encode_frame(wsf.OP_TEXT, b"one"), script=lambda s: s.shutdown(socket.SHUT_WR)
    )
    rec = Recorder()
    conn = connect(server, rec)
    assert rec.ended.wait(5)
    assert rec.messages == [b"one"]
    assert isinstance(conn.error, WSClosedError) and "without a close frame" in str(conn.error)
    conn.close(1.0)


def test_close_from_two_threads_sends_one_close_frame_and_ends_the_reader(tls):
    context, options = tls
    server = ScriptedServer(encode_frame(wsf.OP_TEXT, b"hello"), tls=context)
    rec = Recorder()
    conn = connect(server, rec, **options)
    assert rec.wait_for(1)
    results: list[bool] = []
    closers = [
        threading.Thread(target=lambda: results.append(conn.close(2.0, "client closed")))
        for _ in range(2)
    ]
    for t in closers:
        t.start()
    for t in closers:
        t.join(5)
    assert results == [True, True]
    assert rec.ended.is_set() and conn.error is None
    assert conn.describe_end() == "client closed"
    assert server.done.wait(5)
    assert server.close_frames() == [(1000).to_bytes(2, "big")]
    with pytest.raises(WSClosedError):
        conn.send("ping")
