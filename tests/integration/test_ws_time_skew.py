"""WS login refused for its timestamp (60006) heals: one clock re-sync on the owning
Client, then a login again — at start and on a reconnect after the clock drifted."""

from __future__ import annotations

import pytest

from okx_sync import WSClient
from okx_sync.auth import Credentials
from okx_sync.errors import WSAuthError
from okx_sync.ops.drills.auth import SkewedClock
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client, wait_until
from okx_sync.testing.ws_servers import ScriptedOKX, ws_threads
from okx_sync.ws.config import WSConfig
from okx_sync.ws.policies import ConnectRateLimiter

SKEW_S = 120.0


@pytest.fixture
def sim():
    with Simulator(seed=3, auto_tick=False) as s:
        yield s
    assert not ws_threads(), ws_threads()


def test_private_login_refused_for_skew_resyncs_once_and_logs_in(sim):
    client = sim_client(sim, clock=SkewedClock(SKEW_S))
    try:
        assert client.time_offset_ms == 0  # nobody called sync_time()
        ws = client.ws_private()
        with ws:
            st = ws.stats()
            assert st.connected and st.connects == 1  # healed on the same connection
            assert st.login_resyncs == 1
        assert abs(client.time_offset_ms + SKEW_S * 1000) < 5000
        sync = client.stats().time_sync
        assert sync.syncs == 1 and sync.last_error == ""
        # the offset is shared: the next stream logs in without a re-sync
        with client.ws_business() as ws2:
            assert ws2.stats().login_resyncs == 0 and ws2.stats().connected
        assert client.stats().time_sync.syncs == 1
    finally:
        client.close()


def test_private_stream_heals_after_the_clock_drifts_during_a_reconnect(sim):
    clock = SkewedClock(0.0)
    client = sim_client(sim, clock=clock)
    errors: list[BaseException] = []
    reconnected: list[bool] = []
    try:
        ws = client.ws_private(config=WSConfig())
        ws.on_error(errors.append)
        ws.on_reconnect(lambda: reconnected.append(True))
        with ws:
            assert ws.stats().login_resyncs == 0
            clock.skew_s = SKEW_S  # the host clock jumps; the next login is refused (60006)
            assert sim.faults.drop_ws(kind="private") == 1
            assert wait_until(lambda: reconnected, timeout_s=15.0)
            st = ws.stats()
            assert ws.running and st.connected and st.reconnects == 1
            assert st.login_resyncs == 1
            assert not [e for e in errors if isinstance(e, WSAuthError)]
        assert abs(client.time_offset_ms + SKEW_S * 1000) < 5000
    finally:
        client.close()


def _refuse_logins(codes: list[str]):
    """A scripted private endpoint answering the n-th login with ``codes[n]`` ("0": ok)."""
    answers = iter(codes)

    def script(peer):
        while True:
            msg = peer.recv_json()
            if msg.get("op") == "login":
                code = next(answers)
                if code == "0":
                    peer.send_json({"event": "login", "code": "0", "msg": "", "connId": "c"})
                else:
                    peer.send_json(
                        {"event": "error", "code": code, "msg": "Timestamp request expired"}
                    )

    return script


def _private(url: str, resync) -> WSClient:
    return WSClient(
        url,
        credentials=Credentials(api_key="k", secret_key="s", passphrase="p"),
        resync_time=resync,
        connect_limiter=ConnectRateLimiter(rate=100),
        config=WSConfig(subscribe_timeout_s=2.0),
    )


def test_second_refusal_after_a_resync_is_fatal_and_resyncs_only_once():
    calls: list[float] = []
    codes = ["60006", "60006", "60006", "0"]
    with ScriptedOKX(_refuse_logins(codes), path="/ws/v5/private") as server:
        ws = _private(server.url, calls.append)
        with pytest.raises(WSAuthError) as info:
            ws.start(timeout_s=5.0)
        assert info.value.code == "60006"
        assert len(calls) == 1 and ws.stats().login_resyncs == 1
        assert server.accepted == 1 and not ws.running
        # started again (the clock fixed meanwhile): a refusal re-syncs once more, then logs in
        with ws.start(timeout_s=5.0):
            assert len(calls) == 2 and ws.stats().connected and server.accepted == 2


def test_failed_resync_is_fatal_with_its_cause():
    def failing(since: float) -> None:
        raise OSError("no route to host")

    with ScriptedOKX(_refuse_logins(["60006"]), path="/ws/v5/private") as server:
        ws = _private(server.url, failing)
        with pytest.raises(WSAuthError) as info:
            ws.start(timeout_s=5.0)
        assert info.value.code == "60006"
        assert isinstance(info.value.__cause__, OSError)
        assert "re-sync failed" in str(info.value)


def test_without_a_resync_port_60006_stays_fatal_at_once():
    with ScriptedOKX(_refuse_logins(["60006"]), path="/ws/v5/private") as server:
        ws = _private(server.url, None)
        with pytest.raises(WSAuthError):
            ws.start(timeout_s=5.0)
        assert ws.stats().login_resyncs == 0


def test_resync_time_must_be_callable():
    from okx_sync.errors import ValidationError

    with pytest.raises(ValidationError):
        WSClient("ws://127.0.0.1:1/ws/v5/private", resync_time=5)  # type: ignore[arg-type]
