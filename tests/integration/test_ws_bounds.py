"""Bounded WebSocket transport against hostile loopback servers (issue 18).

Each server is a raw TCP server thread on 127.0.0.1 speaking just enough of the
WebSocket handshake and framing to misbehave: a handshake (TLS or HTTP upgrade)
dribbled a byte at a time, a peer that floods pings and never reads, a message
made of endless empty fragments, pushes nested too deeply to decode. The
servers pace their dribbling with ``Event.wait`` (they are the slow peer); the
tests wait on events and counters with deadlines, never on sleeps.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable

import pytest

from okx_sync.errors import ValidationError, WSClosedError, WSError
from okx_sync.testing import wait_until
from okx_sync.testing.ws_servers import (
    LoopbackServer,
    accept_handshake,
    start_in_background,
    ws_options,
    ws_threads,
)
from okx_sync.ws import frames as wsf
from okx_sync.ws.client import WSClient
from okx_sync.ws.config import WSConfig
from okx_sync.ws.dispatch import DispatchConfig, DispatchMode
from okx_sync.ws.frames import FrameError, FrameParser, encode_frame
from okx_sync.ws.policies import BackoffPolicy, ConnectRateLimiter

PUSH = b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[]}'


def client(url: str, **options: object) -> WSClient:
    options.setdefault("connect_limiter", ConnectRateLimiter(rate=1000))
    return WSClient(url, **ws_options(name="bounds", **options))


def dribble_upgrade(sock: socket.socket, _index: int, stop: threading.Event) -> None:
    """Read the upgrade request, then send the 101 response one byte per 0.2 s."""
    response = accept_handshake(sock)
    for i in range(len(response)):
        if stop.wait(0.2):
            return
        sock.sendall(response[i : i + 1])
    stop.wait()


def dribble_tls(sock: socket.socket, _index: int, stop: threading.Event) -> None:
    """Answer a TLS ClientHello with a record header announcing 16 KB, then one byte per 0.2 s."""
    sock.recv(4096)
    sock.sendall(b"\x16\x03\x03\x40\x00")
    while not stop.wait(0.2):
        sock.sendall(b"\x00")


# ----------------------------------------------------------------- 1. the handshake
@pytest.mark.parametrize("handler,scheme", [(dribble_upgrade, "ws"), (dribble_tls, "wss")])
def test_dribbled_handshake_fails_start_within_its_bound(handler, scheme):
    options: dict[str, object] = {}
    if scheme == "wss":
        options["ws_options"] = {"sslopt": {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}}
    with LoopbackServer(handler, scheme=scheme) as server:
        ws = client(server.url, connect_timeout_s=10.0, **options)
        began = time.monotonic()
        with pytest.raises(WSError, match="no connection ready within 0.6 s"):
            ws.start(timeout_s=0.6)
        elapsed = time.monotonic() - began
        # (slack for a loaded machine; the attempt alone would run 10 s)
        assert elapsed < 0.6 + 1.0, elapsed
        assert ws_threads() == []  # the connection thread did not outlive start()


def test_each_connect_attempt_is_bounded_by_connect_timeout():
    with LoopbackServer(dribble_upgrade) as server:
        # a short backoff between the attempts: the test counts attempts, not pauses
        ws = client(
            server.url,
            connect_timeout_s=0.3,
            backoff=BackoffPolicy(initial=0.05, maximum=0.05, jitter=0.0),
        )
        with pytest.raises(WSError) as info:
            ws.start(timeout_s=1.0)
        # attempts gave up at 0.3 s each (the response needs ~25 s) and were retried
        assert server.accepted >= 2
        assert "handshake" in str(info.value.__cause__)
        assert ws_threads() == []


def test_close_during_the_handshake_ends_every_thread():
    with LoopbackServer(dribble_upgrade) as server:
        ws = client(server.url, connect_timeout_s=30.0)
        starter, failed = start_in_background(ws, timeout_s=30.0)
        assert server.first.wait(5)
        began = time.monotonic()
        assert ws.close(timeout_s=2.0)
        assert time.monotonic() - began < 2.5
        starter.join(3)
        assert not starter.is_alive() and failed and isinstance(failed[0], WSClosedError)
        assert ws_threads() == []


# ----------------------------------------------------------------- 2. writes
def flood_pings(
    stalled: threading.Event, tls: ssl.SSLContext | None = None
) -> Callable[[socket.socket, int, threading.Event], None]:
    """Complete the handshake (in TLS when ``tls`` is given), then send 125-byte pings and
    never read; ``stalled`` is set once the client stopped reading (this server's own
    send waits 0.3 s)."""

    def handler(raw: socket.socket, _index: int, stop: threading.Event) -> None:
        sock = tls.wrap_socket(raw, server_side=True) if tls is not None else raw
        sock.sendall(accept_handshake(sock))
        frame = encode_frame(wsf.OP_PING, b"p" * 125) * 64
        sock.settimeout(0.3)
        while not stop.is_set():
            try:
                sock.sendall(frame)
            except TimeoutError:
                stalled.set()
                stop.wait()
                return

    return handler


@pytest.fixture(params=["ws", "wss"])
def scheme(request):
    """(scheme, server TLS context or None, client ws_options)."""
    if request.param == "ws":
        return "ws", None, {}
    from okx_sync.sim.tls import make_server_context, tls_available

    if not tls_available():
        pytest.skip("no cryptography package and no openssl command: cannot make a certificate")
    context, cert_path = make_server_context()
    return "wss", context, {"sslopt": {"ca_certs": cert_path, "cert_reqs": ssl.CERT_REQUIRED}}


def test_peer_that_stops_reading_is_detected_dead(scheme):
    name, tls, ws_options = scheme
    stalled = threading.Event()
    with LoopbackServer(flood_pings(stalled, tls), scheme=name, rcvbuf=4096) as server:
        ws = client(server.url, ping_interval_s=2.0, pong_timeout_s=1.0, ws_options=ws_options)
        lost: list[str] = []
        down = threading.Event()

        @ws.on_disconnect
        def _down(reason: str) -> None:
            lost.append(reason)
            down.set()

        ws.start(timeout_s=5.0)
        try:
            assert stalled.wait(20), "the client never stopped reading"
            began = time.monotonic()
            assert down.wait(2.0 + 1.0 + 1.0), "a peer that stopped reading stayed connected"
            assert time.monotonic() - began <= 2.0 + 1.0 + 1.0
            assert "write" in lost[0]
        finally:
            began = time.monotonic()
            assert ws.close(timeout_s=2.0)
            assert time.monotonic() - began < 2.5
        assert ws_threads() == []


def test_close_is_bounded_while_the_peer_does_not_read(scheme):
    name, tls, ws_options = scheme
    stalled = threading.Event()
    with LoopbackServer(flood_pings(stalled, tls), scheme=name, rcvbuf=4096) as server:
        # a long pong_timeout_s: the link is not declared dead during the test
        ws = client(server.url, ping_interval_s=25.0, pong_timeout_s=20.0, ws_options=ws_options)
        ws.start(timeout_s=5.0)
        assert stalled.wait(20), "the client never stopped reading"
        began = time.monotonic()
        ok = ws.close(timeout_s=2.0)
        elapsed = time.monotonic() - began
        assert ok and elapsed < 2.5, elapsed
        assert ws_threads() == []


def test_a_send_to_a_peer_that_does_not_read_returns_within_its_deadline():
    stalled = threading.Event()
    with LoopbackServer(flood_pings(stalled), rcvbuf=4096) as server:
        ws = client(server.url, ping_interval_s=25.0, pong_timeout_s=1.0)
        lost: list[str] = []
        ws.on_disconnect(lost.append)
        ws.start(timeout_s=5.0)
        try:
            assert stalled.wait(20), "the client never stopped reading"
            began = time.monotonic()
            # fire and forget: the write (or the wait for the send lock) gives up
            # after pong_timeout_s and drops the link; the reconnect resubscribes
            ws.subscribe({"channel": "trades", "instId": "BTC-USDT"})
            assert time.monotonic() - began < 1.0 + 0.5
            # (the drop is seen by the reader; a loaded machine may take a while to run it)
            assert wait_until(lambda: bool(lost), timeout_s=10.0)
            assert lost[0].startswith("write timed out"), lost
        finally:
            assert ws.close(timeout_s=2.0)


# ----------------------------------------------------------------- 3. message size
def test_empty_continuation_frames_count_against_the_message_size():
    parser = FrameParser(max_size=4096)
    stream = (
        encode_frame(wsf.OP_TEXT, b"[", fin=False)
        + encode_frame(wsf.OP_CONT, b"", fin=False) * 4096
    )
    assert parser.feed(stream) == []
    assert isinstance(parser.error, FrameError) and parser.error.close_code == 1009
    assert "4096" in str(parser.error)


def test_a_fragmented_message_at_the_limit_passes_with_its_headers_counted():
    # 10 frames: 2-byte headers, 100 bytes of payload each -> 1020 bytes on the wire
    frames = [encode_frame(wsf.OP_TEXT, b"a" * 100, fin=False)]
    frames += [encode_frame(wsf.OP_CONT, b"a" * 100, fin=False) for _ in range(8)]
    frames.append(encode_frame(wsf.OP_CONT, b"a" * 100))
    assert FrameParser(max_size=1020).feed(b"".join(frames)) == [(wsf.OP_TEXT, b"a" * 1000)]
    parser = FrameParser(max_size=1019)
    assert parser.feed(b"".join(frames)) == []
    assert parser.error is not None and parser.error.close_code == 1009


def test_endless_empty_fragments_close_the_link_with_1009():
    def handler(sock: socket.socket, _index: int, stop: threading.Event) -> None:
        sock.sendall(accept_handshake(sock) + encode_frame(wsf.OP_TEXT, b"[", fin=False))
        chunk = encode_frame(wsf.OP_CONT, b"", fin=False) * 65536
        while not stop.is_set():
            sock.sendall(chunk)

    with LoopbackServer(handler) as server:
        ws = client(server.url, max_message_bytes=64 * 1024, ping_interval_s=25.0)
        errors: list[str] = []
        down = threading.Event()

        @ws.on_disconnect
        def _down(reason: str) -> None:
            errors.append(reason)
            down.set()

        ws.start(timeout_s=5.0)
        try:
            assert down.wait(10), "40 MB of empty fragments did not hit the message size bound"
            assert "65536" in errors[0]
        finally:
            ws.close()


def test_proxy_ws_options_are_refused_before_connecting():
    with pytest.raises(ValidationError, match="http_proxy_host not supported"):
        WSClient(
            "ws://127.0.0.1:1/ws/v5/public",
            config=WSConfig(ws_options={"http_proxy_host": "proxy"}),
        )


def test_max_message_bytes_is_validated():
    for bad in (100, 2.0e6, "1000"):
        with pytest.raises(ValidationError, match="max_message_bytes must be an int >= 125"):
            WSClient("ws://127.0.0.1:1/ws/v5/public", config=WSConfig(max_message_bytes=bad))


# ----------------------------------------------------------------- 4. JSON limits
def push_server(frames: list[bytes]) -> Callable[[socket.socket, int, threading.Event], None]:
    def handler(sock: socket.socket, _index: int, stop: threading.Event) -> None:
        pushes = b"".join(encode_frame(wsf.OP_TEXT, f) for f in frames)
        sock.sendall(accept_handshake(sock) + pushes)
        stop.wait()

    return handler


DEEP = (
    b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":'
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}"
)
BIG_INT = b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[' + b"7" * 5000 + b"]}"
GOOD = b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"px":"1"}]}'
# acknowledged first: pushes for a channel the socket never subscribed are not delivered
ACK = b'{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"c1"}'


@pytest.mark.parametrize("dispatch", ["inline", "pool"])
def test_too_deep_or_too_large_pushes_are_reported_and_the_link_survives(dispatch):
    with LoopbackServer(push_server([ACK, DEEP, BIG_INT, GOOD])) as server:
        ws = client(
            server.url,
            raw_dispatch=DispatchConfig(mode=DispatchMode(dispatch)),
            ping_interval_s=25.0,
        )
        errors: list[BaseException] = []
        got: list[object] = []
        good = threading.Event()
        ws.on_error(errors.append)

        @ws.on_raw
        def _raw(msg: object) -> None:
            got.append(msg)
            if isinstance(msg, dict) and "data" in msg:  # the push, not the ack
                good.set()

        ws.start(timeout_s=5.0)
        try:
            assert good.wait(5), "the push after the bad ones did not arrive"
            assert wait_until(lambda: len(errors) >= 2)
            assert all(type(e) is WSError for e in errors[:2]), errors
            assert "nested" in str(errors[0]) and "decode" in str(errors[1])
            stats = ws.stats()
            assert stats.parse_errors == 2 and stats.connected and stats.reconnects == 0
        finally:
            ws.close()
