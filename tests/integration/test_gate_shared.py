"""The shared request gate: the local backend's process-wide buckets, and the Redis backend
against a real ``redis-server`` (started per test on a free loopback port; the Redis tests
skip only when the binary cannot be found)."""

from __future__ import annotations

import logging
import multiprocessing
import time

import pytest

from okx_sync import Client, FakeClock, RequestGateConfig
from okx_sync.errors import RequestStateError, ValidationError
from okx_sync.gate import LocalGateBackend, RedisGateBackend, RequestGate
from okx_sync.gate.redis_lua import EPOCH_BASE
from okx_sync.gate.window import INFLIGHT_HOLD_S
from okx_sync.rest.endpoints import registry
from okx_sync.testing.limit_server import LimitServer, window_max

TICKER = registry().get("GET", "/api/v5/market/ticker")  # 20 / 2 s per IP
ORDER = registry().get("POST", "/api/v5/trade/order")  # 60 / 2 s per UID+instId
BALANCE = registry().get("GET", "/api/v5/account/balance")  # 10 / 2 s per UID
ACCOUNT_CONFIG = registry().get("GET", "/api/v5/account/config")
SPAWN = multiprocessing.get_context("spawn")


def _fill(gate: RequestGate, endpoint, params=None) -> int:
    """Admit calls until the bucket refuses one at once; returns how many went."""
    n = 0
    while True:
        try:
            gate.acquire(endpoint, params, timeout_s=0).release()
        except RequestStateError:
            return n
        n += 1


# ---------------------------------------------------------------------- local backend
def test_two_gates_of_one_process_share_ip_and_uid_buckets() -> None:
    clock = FakeClock()
    config = RequestGateConfig(burst_fraction=1.0)
    a = RequestGate(config, clock=clock, api_key="key-1")
    b = RequestGate(config, clock=clock, api_key="key-1")
    other = RequestGate(config, clock=clock, api_key="key-2")
    try:
        assert _fill(a, TICKER, {"instId": "BTC-USDT"}) == 18  # 0.9 x 20 per 2 s
        # the IP bucket is the process's: full for every gate, whatever its key
        for gate in (b, other):
            with pytest.raises(RequestStateError):
                gate.acquire(TICKER, {"instId": "BTC-USDT"}, timeout_s=0)
        assert _fill(a, BALANCE) == 9
        with pytest.raises(RequestStateError):  # same key: same UID bucket
            b.acquire(BALANCE, timeout_s=0)
        assert _fill(other, BALANCE) == 9  # another key: its own UID bucket
        clock.advance(2.0)
        b.acquire(TICKER, {"instId": "BTC-USDT"}, timeout_s=0).release()
    finally:
        for gate in (a, b, other):
            gate.close()


def test_a_penalty_seen_by_one_client_holds_the_other_and_closing_frees_the_scope() -> None:
    clock = FakeClock()
    one = Client("key-p", "secret", "pass", clock=clock)
    two = Client("key-p", "secret", "pass", clock=clock)
    try:
        one._gate.observe(ORDER, {"instId": "BTC-USDT"}, http_status=429, code="50011")
        with pytest.raises(RequestStateError):
            two._gate.acquire(ORDER, {"instId": "BTC-USDT"}, timeout_s=0)
        held = {b.key: b.held_for_s for b in two.gate_stats().buckets}
        assert held["POST /api/v5/trade/order [UID+instId=BTC-USDT]"] > 0
        assert two.gate_stats().backend == {"backend": "local", "health": "local"}
    finally:
        one.close()
        two.close()
    fresh = Client("key-p", "secret", "pass", clock=clock)  # nobody attached: state gone
    try:
        fresh._gate.acquire(ORDER, {"instId": "BTC-USDT"}, timeout_s=0).release()
    finally:
        fresh.close()


def test_gates_on_different_clocks_do_not_share() -> None:
    config = RequestGateConfig(burst_fraction=1.0)
    a = RequestGate(config, clock=FakeClock(), api_key="k")
    b = RequestGate(config, clock=FakeClock(), api_key="k")
    try:
        assert _fill(a, BALANCE) == 9
        assert _fill(b, BALANCE) == 9
    finally:
        a.close()
        b.close()


def test_backend_config_is_validated() -> None:
    with pytest.raises(ValidationError, match="backend"):
        RequestGateConfig(backend="redis://x")
    with pytest.raises(ValueError, match="on_error"):
        RedisGateBackend("redis://x", on_error="ignore")
    with pytest.raises(ValueError, match="fallback_share"):
        RedisGateBackend("redis://x", fallback_share=0)
    assert "secret" not in repr(RedisGateBackend("redis://:secret@host/0"))
    assert RequestGateConfig().backend == LocalGateBackend()


def test_from_env_reads_the_redis_gate_variables() -> None:
    env = {
        "OKX_GATE_REDIS_URL": "redis://127.0.0.1:1/0",
        "OKX_GATE_NAMESPACE": "desk",
        "OKX_GATE_IP_LABEL": "rack-7",
    }
    backend = RedisGateBackend("redis://127.0.0.1:1/0", namespace="desk", ip_label="rack-7")
    client = Client.from_env(env, gate=RequestGateConfig(headroom=0.5))
    try:
        config = client._settings["gate"]
        assert config.backend == backend and config.headroom == 0.5
        assert client.gate_stats().backend["ip_label"] == "rack-7"
    finally:
        client.close()
    with pytest.raises(ValidationError, match="OKX_GATE"):
        Client.from_env({"OKX_GATE_REDIS_URL": "redis://x", "OKX_GATE_NAMESPACE": "a:b"})


# ---------------------------------------------------------------------- Redis backend
def _redis_gate(server, *, api_key="k1", clock=None, **backend) -> RequestGate:
    options = {"namespace": "t", "timeout_s": 0.5, **backend}
    config = RequestGateConfig(backend=RedisGateBackend(server.url, **options), burst_fraction=1.0)
    return RequestGate(config, clock=clock or FakeClock(), api_key=api_key)


def _redis(server):
    import redis

    return redis.Redis.from_url(server.url)


def test_redis_buckets_are_shared_scoped_and_never_see_the_api_key(redis_server) -> None:
    a = _redis_gate(redis_server, api_key="secret-api-key-1")
    b = _redis_gate(redis_server, api_key="secret-api-key-1", ip_label="other-host")
    try:
        assert _fill(a, BALANCE) == 9
        with pytest.raises(RequestStateError):  # the same account from another host
            b.acquire(BALANCE, timeout_s=0)
        assert _fill(a, TICKER, {"instId": "BTC-USDT"}) == 18
        b.acquire(TICKER, {"instId": "BTC-USDT"}, timeout_s=0).release()  # its own IP
        a.observe(ACCOUNT_CONFIG, http_status=200, code="0", data=[{"uid": "44001"}])
        assert _fill(a, BALANCE) == 9  # scoped by the uid now: a fresh bucket
        b.acquire(ORDER, {"instId": "ETH-USDT"}, timeout_s=0).release()  # b learns the uid
        with pytest.raises(RequestStateError):
            b.acquire(BALANCE, timeout_s=0)
        client = _redis(redis_server)
        names = [k.decode() for k in client.keys("*")]
        assert any(":uid:u44001:GET /api/v5/account/balance" in k for k in names)
        for name in names:
            dumped = client.dump(name) or b""
            assert b"secret-api-key" not in dumped and "secret-api-key" not in name
        backend = a.stats().backend
        assert backend["uid_scope"] == "uid" and backend["health"] == "shared"
        assert backend["rtt_s"]["count"] > 0 and 0 < backend["rtt_s"]["p50"] < 1.0
    finally:
        a.close()
        b.close()


def test_admission_is_atomic_across_processes(redis_server) -> None:
    """4 processes x 3 threads place orders on two instruments: every order draws on its
    instrument's bucket and the account bucket (limit 20 -> 18 per 2 s) in one Lua call."""
    out = SPAWN.Queue()
    barrier = SPAWN.Barrier(4)
    procs = [
        SPAWN.Process(
            target=_worker("race"),
            args=(redis_server.url, "race", ["BTC-USDT", "ETH-USDT"], 3, 3.0, barrier, out),
        )
        for _ in range(4)
    ]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    admitted = [(t, inst) for _, events in results for t, inst in events]
    assert len({pid for pid, events in results if events}) == 4  # every process got some
    times = [(t, 1) for t, _ in admitted]
    # the account bucket: capacity 18 per span 2 s across all processes (client-side
    # timestamps trail the server's admission by a little: a margin of 20 ms)
    assert window_max(times, 2.0 - 0.02) <= 18
    assert len(admitted) >= 18  # the demand (12 threads for 3 s) met the limit
    # One Lua call recorded each admission on its instrument's bucket and on the account
    # bucket: what the last span holds is the same set of admissions in both places.
    client = _redis(redis_server)
    sec, usec = client.time()
    recent = (sec - EPOCH_BASE) + usec / 1e6 - 2.0 + 0.05
    assert all(client.zcard(k) == 0 for k in client.keys("{race}:*:f"))  # all released

    def members(pattern: str) -> set[bytes]:
        found: set[bytes] = set()
        for key in client.keys(pattern):
            found.update(client.zrangebyscore(key, recent, "+inf"))
        return found

    account = members("{race}:*account orders*:l")
    per_instrument = members("{race}:*trade/order*:l")
    assert account and account == per_instrument


def _worker(name: str):
    import redis_gate_worker

    return getattr(redis_gate_worker, name)


def test_a_penalty_in_one_process_holds_every_process(redis_server) -> None:
    gate = _redis_gate(redis_server, namespace="pen")
    try:
        gate.acquire(TICKER, {"instId": "BTC-USDT"}, timeout_s=0).release()
        out = SPAWN.Queue()
        proc = SPAWN.Process(
            target=_worker("penalise_once"),
            args=(redis_server.url, "pen", TICKER.path, out),
        )
        proc.start()
        held_there = out.get(timeout=60)
        proc.join(timeout=30)
        assert held_there and held_there[0] > 1.0
        with pytest.raises(RequestStateError):
            gate.acquire(TICKER, {"instId": "BTC-USDT"}, timeout_s=0)
        (bucket,) = gate.stats().buckets
        assert bucket.held_for_s > 1.0 and bucket.rate_factor == 0.0
        assert bucket.shared is True
    finally:
        gate.close()


def test_permits_of_a_crashed_process_lapse_after_the_hold(redis_server) -> None:
    gate = _redis_gate(redis_server, namespace="crash")
    try:
        out = SPAWN.Queue()
        proc = SPAWN.Process(
            target=_worker("crash_holding"),
            args=(redis_server.url, "crash", TICKER.path, 18, out),
        )
        proc.start()
        assert out.get(timeout=60) == 18
        proc.join(timeout=30)
        with pytest.raises(RequestStateError):  # the dead process holds the whole bucket
            gate.acquire(TICKER, {"instId": "ETH-USDT"}, timeout_s=0)
        (bucket,) = gate.stats().buckets
        assert bucket.in_flight == 18 and bucket.tokens == 0
        # Age the dead process's admissions in Redis by the hold plus a window (what the
        # clock would do): they count as released at admission + hold, then leave.
        client = _redis(redis_server)
        (fly,) = client.keys("{crash}:*ticker*:f")
        for member, score in client.zrange(fly, 0, -1, withscores=True):
            client.zadd(fly, {member: score - INFLIGHT_HOLD_S - 2.5})
        (bucket,) = gate.stats().buckets
        assert bucket.in_flight == 0 and bucket.used <= 1
        gate.acquire(TICKER, {"instId": "ETH-USDT"}, timeout_s=0).release()
    finally:
        gate.close()


def test_outage_with_on_error_fail_refuses_calls_and_recovers(redis_server) -> None:
    gate = _redis_gate(redis_server, namespace="out", timeout_s=0.05)
    try:
        gate.acquire(TICKER, {"instId": "BTC-USDT"}, timeout_s=0).release()
        redis_server.stop()
        started = time.monotonic()
        with pytest.raises(RequestStateError) as caught:
            gate.acquire(TICKER, {"instId": "BTC-USDT"}, timeout_s=0)
        assert time.monotonic() - started < 0.05 + 1.0
        assert caught.value.stage == "gate" and caught.value.dispatched is False
        assert "Redis" in str(caught.value)
        stats = gate.stats()
        assert stats.in_flight == 0 and stats.backend["errors"] >= 1
        redis_server.start()
        gate.acquire(TICKER, {"instId": "BTC-USDT"}, timeout_s=0).release()
        assert gate.stats().backend["health"] == "shared"
    finally:
        gate.close()


def test_a_queued_waiter_fails_when_redis_goes_away(redis_server) -> None:
    clock = FakeClock()
    gate = _redis_gate(redis_server, namespace="outq", clock=clock, timeout_s=0.05)
    try:
        assert _fill(gate, BALANCE) == 9
        redis_server.stop()
        with pytest.raises(RequestStateError) as caught:  # parks; its timed wake-up re-asks
            gate.acquire(BALANCE, timeout_s=5.0)
        assert caught.value.dispatched is False and "Redis" in str(caught.value)
    finally:
        gate.close()


def test_outage_with_on_error_local_falls_back_at_the_share_and_returns(
    redis_server, caplog
) -> None:
    clock = FakeClock()
    gate = _redis_gate(
        redis_server, namespace="fb", clock=clock, on_error="local", timeout_s=0.05, probe_s=1.0
    )
    caplog.set_level(logging.INFO, logger="okx_sync.gate")
    try:
        gate.acquire(TICKER, {"instId": "BTC-USDT"}, timeout_s=0).release()
        redis_server.stop()
        # 0.25 of 20 per 2 s = 5 per 2 s, run at headroom 0.9 -> 5 (ceil 4.5)
        assert _fill(gate, TICKER, {"instId": "BTC-USDT"}) == 5
        stats = gate.stats().backend
        assert stats["health"] == "fallback" and stats["fallbacks"] == 1
        warnings = [r for r in caplog.records if "falling back" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        redis_server.start()
        clock.advance(1.0)  # the next probe is due
        gate.acquire(TICKER, {"instId": "BTC-USDT"}, timeout_s=0).release()
        stats = gate.stats().backend
        assert stats["health"] == "shared" and stats["fallback_s"] == pytest.approx(1.0)
        assert any("shared mode resumed" in r.getMessage() for r in caplog.records)
        assert _fill(gate, TICKER, {"instId": "BTC-USDT"}) == 17  # the fresh server's 18
    finally:
        gate.close()


def test_account_limit_is_loaded_once_for_all_clients(redis_server) -> None:
    backend = RedisGateBackend(redis_server.url, namespace="acct", timeout_s=0.5)
    with LimitServer(account_limit=300) as server:
        clients = [
            Client(
                "acct-key", "s", "p", base_url=server.url, gate=RequestGateConfig(backend=backend)
            )
            for _ in range(3)
        ]
        try:
            order = {
                "instId": "BTC-USDT",
                "tdMode": "cash",
                "side": "buy",
                "ordType": "limit",
                "px": "1",
                "sz": "1",
            }
            for client in clients:
                client.request("POST", "/api/v5/trade/order", order)
            loads = [a for a in server.arrivals if a.path.endswith("account-rate-limit")]
            assert len(loads) == 1
            sources = [c.gate_stats().account_order_limit for c in clients]
            assert [s.limit for s in sources] == [300, 300, 300]
            assert sorted(s.source for s in sources) == [
                "account-rate-limit",
                "shared",
                "shared",
            ]
        finally:
            for client in clients:
                client.close()


def test_a_client_on_a_dead_redis_sends_nothing(redis_server) -> None:
    backend = RedisGateBackend(redis_server.url, namespace="dead", timeout_s=0.05)
    with LimitServer() as server:
        client = Client(base_url=server.url, gate=RequestGateConfig(backend=backend))
        try:
            client.request("GET", "/api/v5/market/ticker", {"instId": "BTC-USDT"})
            redis_server.stop()
            with pytest.raises(RequestStateError) as caught:
                client.request("GET", "/api/v5/market/ticker", {"instId": "BTC-USDT"})
            assert caught.value.stage == "gate" and caught.value.dispatched is False
            assert len(server.arrivals) == 1
        finally:
            client.close()


def test_the_package_imports_without_redis_py() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import okx_sync, okx_sync.gate.redis_backend as r\n"
        "from okx_sync.gate import RequestGate, RequestGateConfig\n"
        "cfg = RequestGateConfig(backend=r.RedisGateBackend('redis://127.0.0.1:1'))\n"
        "try:\n    RequestGate(cfg)\nexcept ImportError:\n    print('needs redis')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "needs redis"


def test_the_fallback_share_is_per_process_not_per_client(redis_server) -> None:
    clock = FakeClock()
    options = {"namespace": "fb2", "clock": clock, "on_error": "local", "timeout_s": 0.05}
    a = _redis_gate(redis_server, **options)
    b = _redis_gate(redis_server, **options)
    try:
        redis_server.stop()
        assert _fill(a, TICKER, {"instId": "BTC-USDT"}) == 5  # a quarter of 20 per 2 s
        with pytest.raises(RequestStateError):  # the other gate draws on the same quarter
            b.acquire(TICKER, {"instId": "BTC-USDT"}, timeout_s=0)
        assert b.stats().backend["health"] == "fallback"
    finally:
        a.close()
        b.close()
