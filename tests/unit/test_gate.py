"""Request gate (okx_sync.gate.RequestGate) as a whole: buckets through the gate, cancel
lane, penalties, timeouts, the account order limit through acquire/observe, FIFO and
parking with threads — all on a FakeClock (no real sleeps). The pure parts have their own
files: test_gate_charges.py, test_gate_window.py, test_gate_account_limit.py."""

from __future__ import annotations

import json
import logging
import random
import threading

import pytest

from okx_sync.clock import FakeClock
from okx_sync.errors import RequestStateError, ValidationError
from okx_sync.gate import (
    ACCOUNT_BUCKET_KEY,
    RequestGate,
    RequestGateConfig,
)
from okx_sync.gate.stats import BucketStats
from okx_sync.rest.endpoints import registry
from okx_sync.testing import wait_until as poll_until

R = registry()
PLACE = R.get("POST", "/api/v5/trade/order")
BATCH = R.get("POST", "/api/v5/trade/batch-orders")
AMEND = R.get("POST", "/api/v5/trade/amend-order")
CANCEL = R.get("POST", "/api/v5/trade/cancel-order")
CANCEL_ALGOS = R.get("POST", "/api/v5/trade/cancel-algos")
TICKER = R.get("GET", "/api/v5/market/ticker")
BALANCE = R.get("GET", "/api/v5/account/balance")
ACC_LIMIT = R.get("GET", "/api/v5/trade/account-rate-limit")
BTC = {"instId": "BTC-USDT"}
ETH = {"instId": "ETH-USDT"}
PLACE_BTC = "POST /api/v5/trade/order [UID+instId=BTC-USDT]"


def gate_with(clock: FakeClock, **config: object) -> RequestGate:
    return RequestGate(RequestGateConfig(**config), clock=clock)  # type: ignore[arg-type]


def bucket(gate: RequestGate, key: str) -> BucketStats:
    found = [b for b in gate.stats().buckets if b.key == key]
    assert found, f"no bucket {key}: {[b.key for b in gate.stats().buckets]}"
    return found[0]


def call(gate: RequestGate, endpoint, params=None, **kw) -> float:
    """Acquire + release at once (the response came back instantly); returns the admission time."""
    permit = gate.acquire(endpoint, params, **kw)
    permit.release()
    return permit.admitted_at


def wait_until(predicate, timeout_s: float = 5.0) -> None:
    assert poll_until(predicate, timeout_s), "condition not reached"


def max_in_window(events: list[tuple[float, int]], window: float) -> int:
    """Largest cost inside any half-open window (t - window, t], checked at every event."""
    best = 0
    for t, _ in events:
        best = max(best, sum(c for u, c in events if t - window < u <= t))
    return best


# ----------------------------------------------------------------- config


def test_config_validation() -> None:
    for bad in (
        {"max_concurrent": 0},
        {"headroom": 0},
        {"headroom": 1.5},
        {"wait_timeout_s": 0},
        {"account_order_limit": 0},
        {"penalty_factor": 0},
        {"burst_fraction": 2},
        {"refresh_account_limit_s": -1},
        {"slow_wait_log_s": 0},
    ):
        with pytest.raises(ValueError):
            RequestGateConfig(**bad)  # type: ignore[arg-type]
    config = RequestGateConfig()
    assert (config.max_concurrent, config.rate_limits, config.headroom) == (10, True, 0.9)
    assert (config.wait_timeout_s, config.account_order_limit) == (30.0, None)
    assert config.refresh_account_limit_s == 3600
    assert config.slow_wait_log_s == 1.0


# ----------------------------------------------------------------- bucket arithmetic


def test_a_slow_wait_names_bucket_rule_and_limit_once_per_window(caplog) -> None:
    """A polling loop slowed by the gate is explained: one INFO line per bucket per window."""
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, burst_fraction=1.0, slow_wait_log_s=0.2)
    caplog.set_level(logging.INFO, logger="okx_sync.gate")

    def slow_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "waited" in r.getMessage()]

    for _ in range(53):  # capacity 54 per 2 s: 53 counted from t=0 ...
        call(gate, PLACE, BTC)
    held = gate.acquire(PLACE, BTC)
    clock.advance(1.5)
    held.release()  # ... and one from its release at 1.5
    assert call(gate, PLACE, BTC) == pytest.approx(2.0)  # waited 0.5 s > 0.2 s
    assert slow_lines() == [
        f"request gate: a call waited 0.5 s for bucket {PLACE_BTC} (rule "
        "UID+instId;OPTION:UID+instFamily, published limit 60 per 2 s, run at 0.9 of it); "
        "more calls on this bucket wait the same way, logged again after a window"
    ]
    record = next(r for r in caplog.records if "waited" in r.getMessage())
    assert record.levelno == logging.INFO and record.__dict__["bucket"] == PLACE_BTC
    for _ in range(52):
        call(gate, PLACE, BTC)
    assert call(gate, PLACE, BTC) == pytest.approx(3.5)  # slow again, within the window
    assert len(slow_lines()) == 1
    # 53 counted from 2.0 and one from 3.5: full until 4.0, a window after the first line
    assert call(gate, PLACE, BTC) == pytest.approx(4.0)
    assert len(slow_lines()) == 2 and "waited 0.5 s" in slow_lines()[1]
    assert call(gate, PLACE, ETH) == pytest.approx(4.0)  # no wait, no line
    assert len(slow_lines()) == 2


def test_capacity_and_span_follow_headroom() -> None:
    gate = gate_with(FakeClock())
    call(gate, PLACE, BTC)
    call(gate, BALANCE, {})
    call(gate, R.get("POST", "/api/v5/asset/transfer"), {"ccy": "USDT"})
    call(gate, R.get("POST", "/api/v5/trade/cancel-all-after"), {"timeOut": "10"})
    place = bucket(gate, PLACE_BTC)
    assert (place.limit, place.capacity, place.span_s) == (60, 54, 2.0)
    balance = bucket(gate, "GET /api/v5/account/balance [UID]")
    assert (balance.capacity, balance.span_s) == (9, 2.0)
    # 2 per 1 s at 0.9: two per 1.111 s -> 1.8/s on average, never more than 2 in 1 s.
    transfer = bucket(gate, "POST /api/v5/asset/transfer [UID+ccy=USDT]")
    assert transfer.capacity == 2
    assert transfer.span_s == pytest.approx(2 / 1.8)
    assert transfer.current_rate == pytest.approx(1.8)
    tag = bucket(gate, "POST /api/v5/trade/cancel-all-after [UID+tag=]")
    assert (tag.capacity, tag.span_s) == (1, pytest.approx(1 / 0.9))
    account = bucket(gate, ACCOUNT_BUCKET_KEY)
    assert (account.limit, account.capacity) == (1000, 900)


def test_sliding_window_admits_capacity_then_waits_for_the_oldest_to_expire() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, burst_fraction=1.0)
    times = [call(gate, PLACE, BTC) for _ in range(54)]
    assert times == [0.0] * 54
    assert bucket(gate, PLACE_BTC).tokens == 0
    clock.advance(1.5)
    permit = gate.acquire(PLACE, BTC)
    assert permit.admitted_at == pytest.approx(2.0)  # first admissions expire at 0 + 2 s
    assert permit.wait_s == pytest.approx(0.5, abs=1e-6)
    permit.release()
    stats = bucket(gate, PLACE_BTC)
    assert stats.admitted == 55 and stats.max_wait_s == pytest.approx(0.5)


def test_release_time_starts_the_window_countdown() -> None:
    """A request counts until its response plus one window: arrival is never later."""
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, burst_fraction=1.0)
    held = gate.acquire(BALANCE, {})
    for _ in range(8):
        call(gate, BALANCE, {})
    clock.advance(1.0)
    held.release()  # the response to the first call arrived at t=1
    # 8 admissions expire at t=2, the held one only at t=3.
    assert [call(gate, BALANCE, {}) for _ in range(8)] == [pytest.approx(2.0)] * 8
    assert call(gate, BALANCE, {}) == pytest.approx(3.0)


def test_pacing_spreads_admissions_once_the_burst_allowance_is_used() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock)  # burst_fraction 0.5 -> 27 back to back, then every 2/54 s
    times = [call(gate, PLACE, BTC) for _ in range(60)]
    assert times[:27] == [0.0] * 27
    gaps = [b - a for a, b in zip(times[27:], times[28:], strict=False)]
    assert all(g == pytest.approx(2 / 54) for g in gaps)
    assert max_in_window([(t, 1) for t in times], 2.0) <= 54


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_window_holds_at_most_the_ceiling(seed: int) -> None:
    """Many threads, random batch sizes and response times: check every window.

    The concurrency cap is above the thread count: with the auto-advancing fake
    clock a thread parked on a free slot would jump time to its deadline and time
    out (the cap has tests of its own below and in test_rest_threads)."""
    rnd = random.Random(seed)
    clock = FakeClock(start=0.0)
    n_threads = rnd.randint(6, 10)
    gate = gate_with(clock, max_concurrent=n_threads + 1)
    events: dict[str, list[tuple[float, int]]] = {}
    lock = threading.Lock()
    done: list[int] = []

    def worker(n: int) -> None:
        local = random.Random(seed * 100 + n)
        for _ in range(40):
            size = local.choice([1, 1, 2, 5, 20])
            inst = local.choice(["BTC-USDT", "ETH-USDT"])
            orders = [{"instId": inst}] * size
            permit = gate.acquire(BATCH, orders, timeout_s=1e9)
            with lock:
                for key in permit.keys:
                    cost = size if key == ACCOUNT_BUCKET_KEY or size > 1 else 1
                    events.setdefault(key, []).append((permit.admitted_at, cost))
            clock.advance(local.uniform(0, 0.02))  # the response takes a while
            permit.release()
        with lock:
            done.append(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert sorted(done) == list(range(n_threads)), "a worker died: its acquire raised"
    snapshot = {b.key: b for b in gate.stats().buckets}
    checked = 0
    for key, evs in events.items():
        b = snapshot[key]
        assert max_in_window(evs, b.window_s) <= b.capacity <= b.limit, key
        # and on average no faster than headroom x limit
        assert max_in_window(evs, b.span_s) <= b.capacity, key
        checked += 1
    assert checked >= 3  # batch buckets for both instruments (+ single twins) + account


def test_a_token_bucket_would_fail_the_window_check() -> None:
    """The window check catches burst + refill (guards the test above against vacuity)."""
    capacity, rate = 54, 27.0
    events = [(0.0, 1)] * capacity + [(1.9, 1)] * int(1.9 * rate)  # full burst, then refill
    assert max_in_window(events, 2.0) > capacity


def test_key_scoping_separates_instruments_and_options_share_a_family() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, burst_fraction=1.0)
    for _ in range(54):
        call(gate, PLACE, BTC)
    assert call(gate, PLACE, ETH) == 0.0  # another instrument: its own budget
    call(gate, PLACE, {"instId": "BTC-USD-240628-60000-C"})
    call(gate, PLACE, {"instId": "BTC-USD-240628-70000-P"})
    fam = bucket(gate, "POST /api/v5/trade/order [UID+instFamily=BTC-USD]")
    assert fam.admitted == 2
    # IP-scoped public and UID-scoped private endpoints do not depend on params.
    call(gate, TICKER, BTC)
    call(gate, TICKER, ETH)
    assert bucket(gate, "GET /api/v5/market/ticker [IP]").admitted == 2


def test_batch_cost_is_counted_per_order_in_the_buckets() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, burst_fraction=1.0)
    call(gate, BATCH, [BTC] * 20)
    b = bucket(gate, "POST /api/v5/trade/batch-orders [UID+instId=BTC-USDT]")
    assert (b.admitted, b.admitted_cost, b.used, b.tokens) == (1, 20, 20, 250)
    assert bucket(gate, ACCOUNT_BUCKET_KEY).used == 20


def test_call_larger_than_ceiling_goes_alone_and_larger_than_limit_is_refused() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock)
    algos = [{"instId": "BTC-USDT", "algoId": str(i)} for i in range(20)]
    # cancel-algos: 20 orders / 2 s, ceiling 18: a batch of 20 goes when the bucket is empty.
    assert call(gate, CANCEL_ALGOS, algos) == 0.0
    assert call(gate, CANCEL_ALGOS, algos[:1]) == pytest.approx(2.0)
    with pytest.raises(ValidationError):
        gate.acquire(CANCEL_ALGOS, algos + algos[:1])
    assert gate.stats().in_flight == 0


# ----------------------------------------------------------------- timeouts, close, no rate limits


def test_gate_timeout_raises_request_state_error_without_charging() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, burst_fraction=1.0, wait_timeout_s=0.5)
    for _ in range(9):
        call(gate, BALANCE, {})
    with pytest.raises(RequestStateError) as info:
        gate.acquire(BALANCE, {})
    err = info.value
    assert (err.stage, err.dispatched, err.method, err.path) == (
        "gate",
        False,
        "GET",
        "/api/v5/account/balance",
    )
    assert "account/balance [UID]" in str(err)
    with pytest.raises(RequestStateError):
        gate.acquire(BALANCE, {}, timeout_s=0.2)  # per-call timeout
    b = bucket(gate, "GET /api/v5/account/balance [UID]")
    assert (b.admitted, b.timeouts, b.used) == (9, 2, 9)
    stats = gate.stats()
    assert (stats.timeouts, stats.waiting, stats.in_flight) == (2, 0, 0)
    # the refused calls charged nothing: once the window passed the bucket is full again
    clock.advance(5)
    assert bucket(gate, "GET /api/v5/account/balance [UID]").tokens == 9


def test_concurrency_cap_and_rate_limits_off() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, rate_limits=False, max_concurrent=2, wait_timeout_s=1)
    permits = [gate.acquire(PLACE, BTC) for _ in range(2)]
    assert gate.in_flight == 2
    with pytest.raises(RequestStateError, match="concurrency cap 2"):
        gate.acquire(PLACE, BTC)
    permits[0].release()
    permits[0].release()  # idempotent
    assert gate.in_flight == 1
    for _ in range(200):  # no buckets at all
        gate.acquire(PLACE, BTC).release()
    gate.observe(PLACE, BTC, http_status=429, code="50011")
    assert gate.stats().buckets == ()
    assert gate.account_limit_refresh_due() is False


def test_ws_order_entry_draws_on_buckets_not_on_slots() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, max_concurrent=1, burst_fraction=1.0)
    http = gate.acquire(PLACE, BTC)
    ws = gate.acquire(PLACE, BTC, concurrency=False)  # the HTTP slot is taken; WS still goes
    assert gate.in_flight == 1
    assert bucket(gate, PLACE_BTC).in_flight == 2
    ws.release()
    http.release()
    assert gate.in_flight == 0


def test_unreleased_permit_stops_counting_after_the_hold_limit() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, burst_fraction=1.0)
    for _ in range(9):
        gate.acquire(BALANCE, {}, concurrency=False)  # never released (a leak)
    clock.advance(30.0)
    assert bucket(gate, "GET /api/v5/account/balance [UID]").used == 9
    assert call(gate, BALANCE, {}) == pytest.approx(32.0)


def test_close_wakes_waiters() -> None:
    gate = RequestGate(RequestGateConfig(max_concurrent=1))
    held = gate.acquire(BALANCE, {})
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            gate.acquire(TICKER, {}, timeout_s=30)
        except RequestStateError as exc:
            errors.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    wait_until(lambda: gate.stats().waiting == 1)
    gate.close()
    t.join(timeout=5)
    assert errors and errors[0].stage == "gate" and not errors[0].dispatched
    held.release()
    with pytest.raises(RequestStateError, match="closed"):
        gate.acquire(TICKER, {})


# ----------------------------------------------------------------- penalties


def test_429_holds_the_bucket_for_a_window_then_recovers_gradually(caplog) -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock)
    call(gate, PLACE, BTC)
    with caplog.at_level(logging.WARNING, logger="okx_sync.gate"):
        gate.observe(PLACE, BTC, http_status=429, code="50011")
    assert [r.getMessage() for r in caplog.records] == [
        f"rate limit hit (http 429, code 50011): bucket {PLACE_BTC} held 2 s, "
        "then restarts at 0.5 of its rate"
    ]
    b = bucket(gate, PLACE_BTC)
    assert (b.penalties, b.tokens, b.held_for_s) == (1, 0, 2.0)
    # Another instrument is not penalised.
    assert call(gate, PLACE, ETH) == 0.0
    # After the hold: one at a time at half the rate (27 per 2 s), no burst.
    times = [call(gate, PLACE, BTC) for _ in range(5)]
    assert times[0] == pytest.approx(2.0)
    assert times[1] - times[0] == pytest.approx(2 / 27, rel=0.05)
    assert bucket(gate, PLACE_BTC).current_rate < 27
    # Recovery is linear over 5 windows: halfway there after 5 s, full after 10 s.
    clock.advance(5.0 - (clock.monotonic() - 2.0))
    assert bucket(gate, PLACE_BTC).current_rate == pytest.approx(20.25, abs=0.6)
    clock.advance(5.0)
    b = bucket(gate, PLACE_BTC)
    assert (b.current_rate, b.rate_factor) == (27.0, 1.0)


def test_penalty_applies_to_every_thread_and_echoes_do_not_compound() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock)
    for _ in range(3):  # three in-flight requests all come back 429
        gate.observe(BALANCE, {}, http_status=429, code="50011")
    b = bucket(gate, "GET /api/v5/account/balance [UID]")
    assert (b.penalties, b.throttled, b.rate_factor) == (1, 3, 0.0)
    results: list[float] = []
    threads = [
        threading.Thread(target=lambda: results.append(call(gate, BALANCE, {}))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(results) == 3 and min(results) >= 2.0
    # a new 429 after the hold halves the rate again (0.5 -> ~0.25 of the ceiling)
    gate.observe(BALANCE, {}, http_status=200, code="50011")
    assert bucket(gate, "GET /api/v5/account/balance [UID]").penalties == 2


def test_retry_after_sets_the_hold_and_50061_penalises_the_account_bucket() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock)
    gate.observe(PLACE, BTC, http_status=429, code="50011", retry_after_s=5.0)
    assert bucket(gate, PLACE_BTC).held_for_s == 5.0
    assert call(gate, PLACE, BTC) == pytest.approx(5.0)
    gate.observe(PLACE, ETH, http_status=200, code="50061")
    assert bucket(gate, ACCOUNT_BUCKET_KEY).penalties == 1
    assert "POST /api/v5/trade/order [UID+instId=ETH-USDT]" not in gate.buckets()
    # an item-level sCode in a batch answer counts too
    gate.observe(
        BATCH, [BTC, ETH], http_status=200, code="2", data=[{"sCode": "0"}, {"sCode": "50011"}]
    )
    assert bucket(gate, "POST /api/v5/trade/batch-orders [UID+instId=ETH-USDT]").penalties == 1
    # a normal answer changes nothing
    gate.observe(TICKER, BTC, http_status=200, code="0", data=[{}])
    assert "GET /api/v5/market/ticker [IP]" not in {b.key for b in gate.stats().buckets}


# ----------------------------------------------------------------- cancel lane


def test_cancels_never_wait_behind_placement_budgets() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, account_order_limit=10, burst_fraction=1.0, wait_timeout_s=0.1)
    for _ in range(9):
        call(gate, PLACE, BTC)  # the account bucket (ceiling 9) is full
    gate.observe(PLACE, BTC, http_status=429, code="50011")
    gate.observe(PLACE, BTC, http_status=200, code="50061")
    with pytest.raises(RequestStateError):
        gate.acquire(PLACE, ETH)
    # cancels and the dead-man switch go at once
    assert call(gate, CANCEL, BTC, timeout_s=0) == pytest.approx(0.1)
    assert call(gate, R.get("POST", "/api/v5/trade/cancel-all-after"), {}, timeout_s=0) > 0
    assert call(gate, R.get("POST", "/api/v5/trade/cancel-batch-orders"), [BTC, ETH]) > 0


def test_cancel_gets_the_next_free_slot_ahead_of_queued_placements() -> None:
    clock = FakeClock(start=0.0, auto_advance=False)
    gate = gate_with(clock, max_concurrent=1)
    held = gate.acquire(BALANCE, {})
    order: list[str] = []

    def run(name: str, endpoint, params) -> None:
        permit = gate.acquire(endpoint, params)
        order.append(name)
        permit.release()

    threads = []
    for n, (name, ep, params) in enumerate(
        [("place1", PLACE, BTC), ("place2", PLACE, ETH), ("cancel", CANCEL, BTC)]
    ):
        t = threading.Thread(target=run, args=(name, ep, params))
        t.start()
        threads.append(t)
        wait_until(lambda n=n: gate.stats().waiting == n + 1)
    held.release()
    for t in threads:
        t.join(timeout=10)
    assert order == ["cancel", "place1", "place2"]


# ----------------------------------------------------------------- fairness


def start_queued(gate: RequestGate, run, count: int) -> list[threading.Thread]:
    """Start ``run(n)`` on ``count`` threads, one at a time, each queued in the gate
    before the next starts (so their arrival order is 0, 1, 2...)."""
    threads = []
    for n in range(count):
        t = threading.Thread(target=run, args=(n,))
        t.start()
        threads.append(t)
        wait_until(lambda n=n: gate.stats().waiting == n + 1)
    return threads


def test_fifo_among_waiters_for_the_same_bucket() -> None:
    clock = FakeClock(start=0.0, auto_advance=False)
    gate = gate_with(clock)  # ceiling 9 per 2 s, 4 back to back, then one per 2/9 s
    for _ in range(4):
        call(gate, BALANCE, {})
    admitted: dict[int, float] = {}

    def run(n: int) -> None:
        permit = gate.acquire(BALANCE, {})
        admitted[n] = permit.admitted_at
        permit.release()

    threads = start_queued(gate, run, 6)

    def advanced() -> bool:  # fake time in steps shorter than the pacing interval
        if len(admitted) == 6:
            return True
        clock.advance(0.05)
        return False

    assert poll_until(advanced, 10.0)
    for t in threads:
        t.join(timeout=10)
    times = [admitted[n] for n in range(6)]
    assert times == sorted(times) and len(set(times)) == 6  # one by one, in arrival order


def test_full_cap_queue_admits_in_order_and_slotless_waiters_still_pass() -> None:
    # Waiters behind a full concurrency cap are not rescanned on every release
    # (O(waiters) under the lock): they must still go one per freed slot, in
    # arrival order, and a WS order (no slot) queued behind them is not held up.
    clock = FakeClock(start=0.0, auto_advance=False)
    gate = gate_with(clock, rate_limits=False, max_concurrent=1)
    first = gate.acquire(TICKER, BTC)
    order: list[int] = []
    releases: dict[int, threading.Event] = {n: threading.Event() for n in range(5)}

    def run(n: int) -> None:
        permit = gate.acquire(TICKER, BTC)
        order.append(n)
        releases[n].wait(10)
        permit.release()

    threads = start_queued(gate, run, 5)
    ws = gate.acquire(PLACE, BTC, concurrency=False, timeout_s=0)  # no slot needed: at once
    ws.release()
    assert order == [] and gate.in_flight == 1
    first.release()
    for n in range(5):
        wait_until(lambda n=n: len(order) == n + 1)
        assert order == list(range(n + 1)) and gate.in_flight == 1
        releases[n].set()
    for t in threads:
        t.join(timeout=10)
    assert gate.in_flight == 0 and gate.stats().waiting == 0


def test_a_full_bucket_does_not_block_other_buckets() -> None:
    clock = FakeClock(start=0.0, auto_advance=False)
    gate = gate_with(clock, burst_fraction=1.0)
    for _ in range(9):
        call(gate, BALANCE, {})
    blocked = threading.Thread(target=lambda: call(gate, BALANCE, {}))
    blocked.start()
    wait_until(lambda: gate.stats().waiting == 1)
    # A different bucket (and a different instrument's orders) go through at once.
    assert call(gate, TICKER, BTC, timeout_s=0) == 0.0
    assert call(gate, PLACE, ETH, timeout_s=0) == 0.0
    clock.advance(2.0)
    blocked.join(timeout=10)
    assert not blocked.is_alive()


def test_big_batch_is_not_starved_by_later_single_orders() -> None:
    clock = FakeClock(start=0.0, auto_advance=False)
    gate = gate_with(clock, burst_fraction=1.0)
    for _ in range(2):
        call(gate, BATCH, [BTC] * 20)
    call(gate, BATCH, [BTC] * 20)
    for _ in range(10):
        call(gate, BATCH, [BTC] * 20)  # 260 of 270 used
    admitted: dict[str, float] = {}  # admission times: the threads' own order after
    # admission is the scheduler's, not the gate's
    big = threading.Thread(target=lambda: admitted.update(big=call(gate, BATCH, [BTC] * 20)))
    big.start()
    wait_until(lambda: gate.stats().waiting == 1)
    small = threading.Thread(target=lambda: admitted.update(small=call(gate, BATCH, [BTC] * 2)))
    small.start()
    wait_until(lambda: gate.stats().waiting == 2)  # room for 2 but queued behind the big one
    assert admitted == {}
    clock.advance(2.0)
    big.join(timeout=10)
    small.join(timeout=10)
    assert admitted == {"big": 2.0, "small": 2.0}  # the small one only went with the big one


# ----------------------------------------------------------------- secondary limits (gate side)

LEAD = "lead-trader orders [UID+instId=BTC-USDT]"


def test_gate_runs_the_secondary_buckets_and_penalises_them_on_429() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, lead_trader=True, burst_fraction=1.0)
    times = [call(gate, PLACE, BTC) for _ in range(2)] + [call(gate, AMEND, BTC) for _ in range(2)]
    assert times == [0.0] * 4  # capacity ceil(0.9 * 4) = 4
    assert call(gate, PLACE, BTC) == pytest.approx(2 * 4 / 3.6)  # waits for the shared span
    lead = bucket(gate, LEAD)
    assert (lead.kind, lead.limit, lead.capacity, lead.admitted) == (
        "lead_trader",
        4,
        4,
        5,
    )
    assert call(gate, PLACE, ETH) == clock.monotonic()  # another instrument: its own bucket
    estimate = R.get("POST", "/api/v5/asset/convert/estimate-quote")
    quote = {"baseCcy": "BTC", "quoteCcy": "USDT", "side": "buy"}
    call(gate, estimate, quote)
    gate.observe(estimate, quote, http_status=429, code="50011")
    held = bucket(gate, "convert estimate-quote [instId=]")
    assert (held.penalties, held.held_for_s) == (1, 5.0)  # one 5 s window


# ----------------------------------------------------------------- account order limit


def load(gate: RequestGate, http_status: int | None, code: str, data=None) -> None:
    """What the REST core does for one account-rate-limit attempt."""
    gate.acquire(ACC_LIMIT, None).release()
    gate.observe(ACC_LIMIT, None, http_status=http_status, code=code, data=data or [])


def test_account_limit_from_the_endpoint_response(caplog) -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock)
    call(gate, PLACE, BTC)
    assert gate.account_limit_refresh_due() is True  # never loaded: load before orders
    assert gate.account_limit_refresh_due() is True  # a query: asking twice is harmless
    permit = gate.acquire(ACC_LIMIT, None)  # the load is on its way ...
    assert gate.account_limit_refresh_due() is False  # ... nobody else starts one
    permit.release()
    with caplog.at_level(logging.INFO, logger="okx_sync.gate"):
        gate.observe(
            ACC_LIMIT,
            None,
            http_status=200,
            code="0",
            data=[{"accRateLimit": "2000", "fillRatio": "", "ts": "1"}],
        )
    assert any("account order limit set" in r.getMessage() for r in caplog.records)
    assert gate.account_order_limit == 2000
    b = bucket(gate, ACCOUNT_BUCKET_KEY)
    assert (b.limit, b.capacity) == (2000, 1800)
    acc = gate.stats().account_order_limit
    assert (acc.limit, acc.source, acc.loaded_age_s) == (2000, "account-rate-limit", 0)
    assert gate.account_limit_refresh_due() is False
    clock.advance(3599)
    assert gate.account_limit_refresh_due() is False
    clock.advance(1)
    assert gate.account_limit_refresh_due() is True  # hourly refresh
    # Whoever calls the endpoint (a user's own call included) updates the bucket.
    load(gate, 200, "0", [{"accRateLimit": "1250"}])
    assert bucket(gate, ACCOUNT_BUCKET_KEY).capacity == 1125


def test_account_limit_config_start_value_and_direct_set() -> None:
    gate = gate_with(FakeClock(), account_order_limit=500)
    assert gate.account_order_limit == 500
    assert gate.stats().account_order_limit.source == "config"
    gate.set_account_order_limit(1500, source="test")
    assert gate.account_order_limit == 1500
    with pytest.raises(ValueError):
        gate.set_account_order_limit(0)


def test_failed_account_limit_load_keeps_the_default_and_backs_off(caplog) -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, account_limit_retry_s=5.0)
    assert gate.account_limit_refresh_due() is True
    with caplog.at_level(logging.WARNING, logger="okx_sync.gate"):
        load(gate, 500, "50001")
    assert any("account order limit load failed" in r.getMessage() for r in caplog.records)
    assert gate.account_order_limit == 1000
    # Orders keep flowing on the default; they do not re-try the load each time.
    for _ in range(20):
        assert gate.account_limit_refresh_due() is False
        call(gate, PLACE, BTC)
    clock.advance(5.0)
    assert gate.account_limit_refresh_due() is True  # after the backoff
    load(gate, 200, "0", [{"accRateLimit": ""}])  # an answer without a usable limit
    clock.advance(5.0)
    assert gate.account_limit_refresh_due() is False  # backoff doubled to 10 s
    clock.advance(5.0)
    assert gate.account_limit_refresh_due() is True
    load(gate, None, "")  # transport failure: the REST core observes it without a status
    clock.advance(19.0)
    assert gate.account_limit_refresh_due() is False  # 20 s now
    clock.advance(1.0)
    assert gate.account_limit_refresh_due() is True
    acc = gate.stats().account_order_limit
    assert (acc.limit, acc.source, acc.load_failures) == (1000, "default", 3)


def test_account_limit_load_that_never_reports_back_counts_as_failed(caplog) -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, account_limit_retry_s=5.0)
    gate.acquire(ACC_LIMIT, None).release()  # admitted, but no observe() ever follows
    clock.advance(4.0)
    assert gate.account_limit_refresh_due() is False
    clock.advance(1.0)
    with caplog.at_level(logging.WARNING, logger="okx_sync.gate"):
        assert gate.account_limit_refresh_due() is False  # counted as failed: back off
    assert any("no response" in r.getMessage() for r in caplog.records)
    clock.advance(5.0)
    assert gate.account_limit_refresh_due() is True
    assert gate.stats().account_order_limit.load_failures == 1


def test_account_limit_load_not_admitted_by_the_gate_backs_off() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, wait_timeout_s=0.5)
    gate.acquire(ACC_LIMIT, None).release()
    gate.observe(ACC_LIMIT, None, http_status=429, code="50011")  # its own 1/s bucket is held
    clock.advance(5.0)
    assert gate.account_limit_refresh_due() is True
    gate.observe(ACC_LIMIT, None, http_status=200, code="50011")
    with pytest.raises(RequestStateError):
        gate.acquire(ACC_LIMIT, None)
    assert gate.account_limit_refresh_due() is False
    assert gate.stats().account_order_limit.load_failures >= 2


def test_released_claim_without_an_answer_counts_one_failure(caplog) -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock, account_limit_retry_s=5.0)
    claim = gate.claim_account_limit_refresh()
    assert claim is not None and gate.claim_account_limit_refresh() is None
    with caplog.at_level(logging.WARNING, logger="okx_sync.gate"):
        gate.release_account_limit_claim(claim, "TransportError: connection refused")
        gate.release_account_limit_claim(claim, "again")  # released once only
    assert [r.getMessage() for r in caplog.records if "load failed" in r.getMessage()] == [
        "account order limit load failed (TransportError: connection refused); keeping the "
        "default limit 1000 per 2 s"
    ]
    acc = gate.stats().account_order_limit
    assert (acc.load_failures, acc.last_error) == (1, "TransportError: connection refused")
    assert gate.claim_account_limit_refresh() is None  # backing off
    clock.advance(5.0)
    claim = gate.claim_account_limit_refresh()
    assert claim is not None
    # The claimed load is not admitted by the gate (its 1/s bucket is busy): the gate
    # counts that failure, and the holder's release afterwards adds none.
    gate.acquire(ACC_LIMIT, None).release()  # someone else's load, answer never observed
    with pytest.raises(RequestStateError) as info:
        gate.acquire(ACC_LIMIT, None, timeout_s=0.5)
    assert info.value.stage == "gate"
    gate.release_account_limit_claim(claim, f"RequestStateError: {info.value}")
    acc = gate.stats().account_order_limit
    assert acc.load_failures == 2
    assert acc.last_error == "account-rate-limit call not admitted by the gate"
    assert acc.limit == 1000  # the default kept throughout


def test_rate_limits_off_ignores_account_limit_answers(caplog) -> None:
    gate = gate_with(FakeClock(), rate_limits=False)
    with caplog.at_level(logging.WARNING, logger="okx_sync.gate"):
        gate.observe(ACC_LIMIT, None, http_status=500, code="50001", data=[])
    assert not caplog.records
    assert gate.account_limit_refresh_due() is False


# ----------------------------------------------------------------- stats


def test_stats_are_json_serialisable_and_complete() -> None:
    clock = FakeClock(start=0.0)
    gate = gate_with(clock)
    permit = gate.acquire(PLACE, BTC)
    stats = gate.stats()
    json.dumps(stats.to_dict())
    assert stats.in_flight == 1
    b = bucket(gate, PLACE_BTC)
    for field in (
        "key",
        "limit",
        "current_rate",
        "admitted",
        "total_wait_s",
        "max_wait_s",
        "penalties",
        "timeouts",
        "tokens",
        "in_flight",
    ):
        assert field in b.to_dict()
    assert b.in_flight == 1
    permit.release()
    assert "BTC-USDT" in repr(permit)
