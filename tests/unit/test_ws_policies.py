"""Pure WS policies on a FakeClock: backoff, heartbeat deadlines, connection-rate limiter, ops budget."""

from __future__ import annotations

import random

import pytest

from okx_sync import WSClient
from okx_sync.clock import FakeClock
from okx_sync.ws.config import WSConfig
from okx_sync.ws.policies import (
    BackoffPolicy,
    ConnectRateLimiter,
    HeartbeatAction,
    HeartbeatPolicy,
    OpsBudget,
)


def test_backoff_grows_caps_and_jitters():
    policy = BackoffPolicy(initial=0.25, maximum=10.0, multiplier=2.0, jitter=0.5)
    no_jitter = [policy.delay(a, 1.0) for a in range(8)]
    assert no_jitter == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    rng = random.Random(7)
    for attempt in range(10):
        base = min(10.0, 0.25 * 2**attempt)
        d = policy.delay(attempt, rng.random())
        assert base * 0.5 <= d <= base
    assert policy.delay(10_000, 0.999) <= 10.0  # no overflow on huge attempts
    assert BackoffPolicy(jitter=0.0).delay(2, 0.3) == 1.0


def test_backoff_resets_only_after_a_stable_connection():
    policy = BackoffPolicy(stable_after_s=30.0)
    assert policy.reset_if_stable(5, uptime_s=29.9) == 5
    assert policy.reset_if_stable(5, uptime_s=30.0) == 0


@pytest.mark.parametrize(
    "kw",
    [
        {"initial": 0},
        {"maximum": -1},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"stable_after_s": 0},
    ],
)
def test_backoff_validation(kw):
    with pytest.raises(ValueError):
        BackoffPolicy(**kw)


def test_heartbeat_validation():
    assert HeartbeatPolicy().ping_interval_s == 20.0
    assert HeartbeatPolicy().detection_bound <= 30.0
    for bad in ({"ping_interval_s": 30}, {"ping_interval_s": 0}, {"pong_timeout_s": 0}):
        with pytest.raises(ValueError):
            HeartbeatPolicy(**bad)


def drive(policy: HeartbeatPolicy, clock: FakeClock, *, silent_from: float, responsive: bool):
    """Simulate the heartbeat loop: returns when the connection is declared dead (or None)."""
    last_recv = clock.monotonic()
    last_ping = None
    outstanding = None
    pings = 0
    while clock.monotonic() < silent_from + 120:
        now = clock.monotonic()
        if now < silent_from:
            last_recv = now  # messages keep arriving
            outstanding = None
        d = policy.decide(
            now, last_recv=last_recv, last_ping=last_ping, outstanding_since=outstanding
        )
        if d.action is HeartbeatAction.PING:
            pings += 1
            last_ping = now
            outstanding = outstanding or now
            if responsive:
                last_recv = now + 0.01  # the pong
                outstanding = None
        elif d.action is HeartbeatAction.DEAD:
            return now, pings
        clock.advance(max(0.05, min(1.0, d.wake_at - now)))
    return None, pings


def test_silent_connection_detected_within_the_bound():
    clock = FakeClock()
    policy = HeartbeatPolicy()
    start = clock.monotonic()
    dead_at, pings = drive(policy, clock, silent_from=start + 5, responsive=False)
    assert dead_at is not None
    assert pings == 1
    elapsed = dead_at - (start + 5)
    assert policy.detection_bound - 1.0 <= elapsed <= 30.0  # default: detected within 30 s


def test_responsive_connection_is_never_declared_dead():
    clock = FakeClock()
    policy = HeartbeatPolicy(ping_interval_s=5, pong_timeout_s=2)
    dead_at, pings = drive(policy, clock, silent_from=clock.monotonic(), responsive=True)
    assert dead_at is None
    assert pings >= 20  # one ping per quiet interval


def test_heartbeat_decisions_step_by_step():
    policy = HeartbeatPolicy(ping_interval_s=20, pong_timeout_s=8)
    d = policy.decide(10.0, last_recv=0.0, last_ping=None, outstanding_since=None)
    assert d.action is HeartbeatAction.NONE and d.wake_at == 20.0
    d = policy.decide(20.0, last_recv=0.0, last_ping=None, outstanding_since=None)
    assert d.action is HeartbeatAction.PING
    d = policy.decide(27.9, last_recv=0.0, last_ping=20.0, outstanding_since=20.0)
    assert d.action is HeartbeatAction.NONE and d.wake_at == 28.0
    d = policy.decide(28.0, last_recv=0.0, last_ping=20.0, outstanding_since=20.0)
    assert d.action is HeartbeatAction.DEAD


def test_blocked_reader_is_kept_alive_not_declared_dead():
    policy = HeartbeatPolicy(ping_interval_s=20, pong_timeout_s=8)
    d = policy.decide(100.0, last_recv=0.0, last_ping=20.0, outstanding_since=20.0, blocked=True)
    assert d.action is HeartbeatAction.PING and d.reset_outstanding
    d = policy.decide(105.0, last_recv=0.0, last_ping=100.0, outstanding_since=None, blocked=True)
    assert d.action is HeartbeatAction.NONE and d.wake_at == 120.0


def test_connect_rate_limiter_three_per_second():
    clock = FakeClock()
    lim = ConnectRateLimiter(rate=3, per=1.0)
    t0 = clock.monotonic()
    starts = []
    for _ in range(10):
        wait = lim.reserve(clock.monotonic())
        starts.append(clock.monotonic() + wait)
    for i in range(len(starts)):
        window = [s for s in starts if starts[i] <= s < starts[i] + 1.0]
        assert len(window) <= 3
    assert starts[:3] == [t0, t0, t0]
    assert starts[3] == pytest.approx(t0 + 1.0)
    assert starts[9] == pytest.approx(t0 + 3.0)
    # after a quiet second, connect at once again
    clock.advance(10)
    assert lim.reserve(clock.monotonic()) == 0.0


def test_connect_rate_limiter_is_shared_per_process():
    assert ConnectRateLimiter.process_default() is ConnectRateLimiter.process_default()
    with pytest.raises(ValueError):
        ConnectRateLimiter(rate=0)


def test_connect_rate_limiter_is_shared_per_clock():
    """Slot times of different clocks cannot be compared: a FakeClock client
    booked against real-clock slots would wait (fake) hours. One per clock."""
    from okx_sync.clock import SYSTEM_CLOCK

    real = ConnectRateLimiter.process_default()
    assert ConnectRateLimiter.process_default(SYSTEM_CLOCK) is real
    fake = FakeClock(start=0.0)
    mine = ConnectRateLimiter.process_default(fake)
    assert mine is not real and ConnectRateLimiter.process_default(fake) is mine
    ahead = FakeClock(start=1_000_000.0)  # (the real one is left alone: other tests use it)
    theirs = ConnectRateLimiter.process_default(ahead)
    for _ in range(3):  # slots far ahead of the first fake clock's time
        assert theirs.reserve(ahead.monotonic()) == 0.0
    assert theirs.reserve(ahead.monotonic()) == pytest.approx(1.0)
    assert mine.reserve(fake.monotonic()) == 0.0


def test_ops_budget_480_per_hour():
    clock = FakeClock()
    budget = OpsBudget()
    assert budget.remaining(clock.monotonic()) == 480
    assert budget.take(clock.monotonic(), 470)
    assert not budget.take(clock.monotonic(), 11)  # all-or-nothing
    assert budget.take(clock.monotonic(), 10)
    assert not budget.take(clock.monotonic(), 1)
    clock.advance(3599)
    assert budget.remaining(clock.monotonic()) == 0
    clock.advance(1)
    assert budget.remaining(clock.monotonic()) == 480


def test_documented_defaults_are_pinned():
    """The defaults the docs and issue 6 promise: backoff 0.25 s doubling to a 10 s cap
    with jitter, reset after 30 s up; ping after 20 s of silence, dead 8 s later."""
    policy = BackoffPolicy()
    assert (policy.initial, policy.maximum, policy.multiplier) == (0.25, 10.0, 2.0)
    assert (policy.jitter, policy.stable_after_s) == (0.5, 30.0)
    assert HeartbeatPolicy() == HeartbeatPolicy(ping_interval_s=20.0, pong_timeout_s=8.0)
    assert ConnectRateLimiter().rate == 3 and ConnectRateLimiter().per == 1.0
    cfg = WSConfig()
    assert (cfg.heartbeat.ping_interval_s, cfg.heartbeat.pong_timeout_s) == (20.0, 8.0)
    assert (cfg.connect_timeout_s, cfg.subscribe_timeout_s, cfg.order_timeout_s) == (10.0, 5.0, 5.0)
    assert cfg.start_timeout_s is None and cfg.start_deadline_s == 15.0
    assert cfg.max_message_bytes == 16 * 1024 * 1024
    ws = WSClient("ws://127.0.0.1:9/ws/v5/public")  # never started: no I/O
    assert ws._config == WSConfig()
    assert ws._config.heartbeat == HeartbeatPolicy() and ws._config.backoff == BackoffPolicy()
    st = ws.stats()
    # typed handlers on a pool of one worker by default, raw handlers inline
    assert (st.typed_mode, st.raw_mode, st.typed_queue_cap, st.raw_queue_cap) == (
        "pool",
        "inline",
        10_000,
        0,
    )
