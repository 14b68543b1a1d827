"""Issue 24: the ``WSStats`` fields kept where their fact happens — waiters (subscriptions),
dial_attempts / backoff_s (supervisor), last_error_at (counters), need_login (session) —
and the ``max_message_bytes`` bound closing the link with a clear error."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from okx_sync import WSClient
from okx_sync.errors import WSTimeoutError
from okx_sync.sim import Simulator
from okx_sync.testing import wait_until
from okx_sync.testing.ws_servers import LoopbackServer, accept_handshake, ws_options, ws_threads
from okx_sync.ws import frames as wsf
from okx_sync.ws.frames import encode_frame
from okx_sync.ws.policies import BackoffPolicy, ConnectRateLimiter

TICKER = {"channel": "tickers", "instId": "BTC-USDT"}


@pytest.fixture
def sim():
    with Simulator(seed=7) as s:
        yield s
    assert not ws_threads(), ws_threads()


def test_waiters_count_callers_blocked_in_subscribe_and_wait(sim):
    with WSClient(sim.ws_public_url, **ws_options(ping_interval_s=25.0)) as ws:
        st = ws.stats()
        assert (st.waiters, st.need_login, st.dial_attempts, st.backoff_s) == (0, False, 1, 0.0)
        # the ack never comes. The client counts itself connected after its handshake, the
        # simulator's hub lists the connection a moment later: silence it once listed
        assert wait_until(lambda: sim.faults.silence_ws(kind="public") == 1)
        errors: list[BaseException] = []

        def wait_for_ack() -> None:
            try:
                # long enough for both to be seen waiting, even on a loaded machine
                ws.subscribe_and_wait(TICKER, timeout_s=1.0)
            except BaseException as exc:
                errors.append(exc)

        callers = [threading.Thread(target=wait_for_ack) for _ in range(2)]
        for t in callers:
            t.start()
        assert wait_until(lambda: ws.stats().waiters == 2)
        for t in callers:
            t.join(6)
        assert len(errors) == 2 and all(isinstance(e, WSTimeoutError) for e in errors)
        assert ws.stats().waiters == 0
        sim.faults.clear()
        ws.unsubscribe_and_wait(TICKER, timeout_s=3)  # acked once the socket speaks again
        st = ws.stats()
        assert st.unsubscribe_ok == 1 and st.unsubscribe_error == 0 and st.waiters == 0


def test_private_client_needs_login(sim):
    with WSClient(sim.ws_private_url, credentials=sim.credentials.live, **ws_options()) as ws:
        assert ws.stats().need_login is True


def test_backoff_and_dial_attempts_while_the_server_refuses_connections():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there: every dial is refused
    ws = WSClient(
        f"ws://127.0.0.1:{port}/ws/v5/public",
        connect_limiter=ConnectRateLimiter(rate=1000),
        **ws_options(backoff=BackoffPolicy(initial=0.05, maximum=0.05, jitter=0.0)),
    )
    before = time.time()
    outcome: list[BaseException] = []

    def start() -> None:
        try:
            ws.start(timeout_s=20)
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=start)
    t.start()
    try:
        assert wait_until(lambda: ws.stats().dial_attempts >= 3, timeout_s=10)
        st = ws.stats()
        assert st.backoff_s == pytest.approx(0.05) and not st.connected and st.connects == 0
        assert st.last_error and st.last_error_at is not None and st.last_error_at >= before
    finally:
        ws.close()
        t.join(5)
    assert outcome, "start() returned although nothing could be reached"


def test_a_message_over_max_message_bytes_closes_the_link_with_a_clear_error():
    live = threading.Event()

    def handler(sock: socket.socket, _index: int, stop: threading.Event) -> None:
        sock.sendall(accept_handshake(sock))
        # once start() returned: a message read while the connection is still being
        # prepared fails start() instead (and every retry the same way), seen under load
        while not live.is_set():
            if stop.wait(0.02):
                return
        sock.sendall(encode_frame(wsf.OP_TEXT, b"y" * 5000))
        stop.wait()

    with LoopbackServer(handler) as server:
        ws = WSClient(
            server.url,
            connect_limiter=ConnectRateLimiter(rate=1000),
            **ws_options(max_message_bytes=4096, ping_interval_s=25.0),
        )
        reasons: list[str] = []
        down = threading.Event()

        @ws.on_disconnect
        def _down(reason: str) -> None:
            reasons.append(reason)
            down.set()

        ws.start(timeout_s=5.0)
        live.set()
        try:
            assert down.wait(5), "a 5000-byte message passed a 4096-byte bound"
            assert "4096" in reasons[0]
            st = ws.stats()
            assert "4096" in st.last_error and st.last_error_at is not None
        finally:
            ws.close()
