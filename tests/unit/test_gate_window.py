"""The rate window (okx_sync.gate.window) as single-threaded arithmetic: scripted times,
no gate, no clock object, no threads. Each test would fail if the counting broke."""

from __future__ import annotations

import math
import random

import pytest

from okx_sync.clock import FakeClock
from okx_sync.gate import RequestGateConfig
from okx_sync.gate.backend import GateScope, LocalBucketStore, scaled_limit
from okx_sync.gate.window import INFLIGHT_HOLD_S, Window


def window(limit: int = 60, window_s: float = 2.0, **config: object) -> Window:
    return Window(limit, window_s, RequestGateConfig(**config))  # type: ignore[arg-type]


def go(w: Window, now: float, eid: int, cost: int = 1, *, release: bool = True) -> None:
    """Admit at ``now`` (asserting it fits) and, by default, release at once."""
    assert w.fits(now, cost, 0), f"entry {eid} does not fit at {now}"
    w.admit(now, cost, eid)
    if release:
        w.release(eid, now)


def run_until_full(w: Window, now: float, first_eid: int = 1) -> int:
    """Admit (and release) one token at a time at ``now`` until the window is full."""
    eid = first_eid
    while w.fits(now, 1, 0):
        go(w, now, eid)
        eid += 1
    return eid - first_eid


def max_in_window(events: list[tuple[float, int]], span: float) -> int:
    return max(sum(c for u, c in events if t - span < u <= t) for t, _ in events)


def test_capacity_and_span_follow_headroom_and_limit() -> None:
    w = window(60, 2.0)
    assert (w.capacity, w.span_s) == (54, 2.0)
    small = window(2, 1.0)  # 2 per 1 s at 0.9: two per 1.111 s
    assert small.capacity == 2 and small.span_s == pytest.approx(2 / 1.8)
    one = window(1, 1.0)
    assert (one.capacity, one.span_s) == (1, pytest.approx(1 / 0.9))
    w.set_limit(1000)
    assert (w.limit, w.capacity, w.span_s) == (1000, 900, 2.0)


def test_a_full_window_opens_when_the_oldest_release_is_a_span_old() -> None:
    w = window(burst_fraction=1.0)
    assert run_until_full(w, 0.0) == 54
    assert w.used(1.999) == 54 and not w.fits(1.999, 1, 0)
    assert w.next_change(1.0, 1, 0) == pytest.approx(2.0)
    assert w.fits(2.0, 1, 0) and w.used(2.0) == 0


def test_an_admission_counts_from_admission_to_release_plus_a_span() -> None:
    w = window(10, 2.0, burst_fraction=1.0)  # capacity 9
    w.admit(0.0, 1, 1)  # held until its response at t=1
    for eid in range(2, 10):
        go(w, 0.0, eid)
    w.release(1, 1.0)
    assert w.used(2.0) == 1  # the eight expired at 2, the held one counts until 3
    assert w.used(3.0) == 0
    w.release(1, 1.0)  # a second release of the same entry changes nothing
    assert w.used(3.0) == 0


def test_an_unreleased_admission_lapses_after_the_inflight_hold() -> None:
    w = window(1, 2.0)
    w.admit(0.0, 1, 1)
    assert w.in_flight == 1 and not w.fits(10.0, 1, 0)
    assert w.next_change(10.0, 1, 0) == pytest.approx(INFLIGHT_HOLD_S)
    assert w.used(INFLIGHT_HOLD_S) == 1  # counted as released at the hold: one more span
    assert w.in_flight == 0
    assert w.fits(INFLIGHT_HOLD_S + w.span_s, 1, 0)


def test_the_pacer_spaces_admissions_beyond_the_burst_allowance() -> None:
    w = window()  # burst 0.5: 27 back to back, then one per span / capacity
    times: list[float] = []
    now, eid = 0.0, 1
    while len(times) < 60:
        if w.fits(now, 1, 0):
            go(w, now, eid)
            times.append(now)
            eid += 1
        else:
            now = w.next_change(now, 1, 0)
    assert times[:27] == [0.0] * 27
    gaps = [b - a for a, b in zip(times[27:], times[28:], strict=False)]
    assert all(g == pytest.approx(2 / 54) for g in gaps)
    assert max_in_window([(t, 1) for t in times], 2.0) <= 54


def test_reserved_tokens_keep_their_share_for_waiters_ahead() -> None:
    w = window(10, 2.0, burst_fraction=1.0)  # capacity 9
    for eid in range(1, 6):
        go(w, 0.0, eid)
    assert w.fits(0.0, 4, 0)
    assert not w.fits(0.0, 4, 1)  # one token kept for a waiter ahead
    assert 0.0 < w.next_change(0.0, 4, 1) <= 2.0  # may turn true then (here: the pacer)
    assert not w.fits(1.999, 4, 1) and w.fits(2.0, 4, 1)  # the five expire at 2


def test_a_call_larger_than_the_ceiling_goes_alone() -> None:
    w = window(20, 2.0)  # capacity 18
    assert w.fits(0.0, 20, 0)  # empty: the oversize call goes
    go(w, 0.0, 1, cost=20)
    assert not w.fits(0.0, 1, 0)
    assert not w.fits(1.9, 1, 0) and w.fits(2.0 + 2 * w.span_s / 18 * 20, 1, 0)


def test_a_penalty_holds_then_restarts_reduced_and_recovers_linearly() -> None:
    w = window(10, 2.0, penalty_factor=0.5, recovery_windows=5.0)  # capacity 9
    assert w.penalise(0.0, None)  # no Retry-After: one window
    assert w.hold_until_s == 2.0 and w.cap(1.999) == 0 and w.factor(1.0) == 0.0
    assert not w.fits(1.0, 1, 0) and w.next_change(1.0, 1, 0) == 2.0
    assert w.cap(2.0) == 4  # floor(9 * 0.5)
    assert w.factor(2.0 + 5.0) == pytest.approx(0.75)  # halfway through 10 s of recovery
    assert w.cap(2.0 + 10.0) == 9 and w.factor0 == 1.0  # recovered
    # The pacer starts right after the hold: one probe, then evenly spaced.
    assert w.next_paced == 2.0


def test_a_penalty_during_a_hold_is_an_echo_and_retry_after_is_capped() -> None:
    w = window(10, 2.0, max_hold_s=10.0)
    assert w.penalise(0.0, 3.0) and w.hold_until_s == 3.0
    factor = w.factor0
    assert not w.penalise(1.0, None)  # echo: neither compounded nor extended
    assert (w.hold_until_s, w.factor0) == (3.0, factor)
    assert not w.penalise(1.0, 5.0)  # a longer explicit hold extends it
    assert w.hold_until_s == 6.0 and w.factor0 == factor
    for hostile in (1e9, -1.0, math.nan, math.inf):
        fresh = window(10, 2.0, max_hold_s=10.0)
        assert fresh.penalise(0.0, hostile) and fresh.hold_until_s == 10.0, hostile
    second = window(10, 2.0, penalty_factor=0.5)
    second.penalise(0.0, None)
    second.penalise(2.0, None)  # right after the first hold: 0.5 * 0.5
    assert second.factor0 == pytest.approx(0.25)


def test_after_a_hold_the_rate_climbs_back_to_the_full_ceiling() -> None:
    w = window(10, 2.0, penalty_factor=0.5, recovery_windows=5.0)  # capacity 9
    w.penalise(0.0, None)  # held until 2, then 4 per 2 s, back to 9 per 2 s at t=12
    times: list[float] = []
    now, eid = 0.0, 1
    while now < 20.0:
        if w.fits(now, 1, 0):
            go(w, now, eid)
            times.append(now)
            eid += 1
        else:
            nxt = w.next_change(now, 1, 0)
            assert nxt > now
            now = nxt
    assert times[0] == 2.0  # nothing during the hold
    assert times[1] - times[0] == pytest.approx(2.0 / 4)  # evenly at the reduced rate
    assert len([t for t in times if 2.0 <= t < 4.0]) <= 5
    assert len([t for t in times if 16.0 <= t < 18.0]) == 9  # fully recovered
    assert max_in_window([(t, 1) for t in times], 2.0) <= 9


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_scripted_random_load_never_exceeds_the_ceiling_in_any_window(seed: int) -> None:
    """Random costs and response times on one timeline: check every window of the log."""
    rnd = random.Random(seed)
    w = window(20, 2.0)  # capacity 18
    now, eid = 0.0, 0
    events: list[tuple[float, int]] = []
    pending: list[tuple[float, int]] = []  # (response time, entry id)
    while now < 30.0:
        cost = rnd.choice([1, 1, 2, 5])
        pending.sort()
        while pending and pending[0][0] <= now:
            at, done = pending.pop(0)
            w.release(done, at)
        if w.fits(now, cost, 0):
            eid += 1
            w.admit(now, cost, eid)
            events.append((now, cost))
            pending.append((now + rnd.uniform(0.0, 0.05), eid))
            now += rnd.uniform(0.0, 0.01)
        else:
            nxt = w.next_change(now, cost, 0)
            now = min([nxt] + [at for at, _ in pending if at > now])
    assert len(events) > 100
    assert max_in_window(events, 2.0) <= 18
    assert max_in_window(events, w.span_s) <= w.capacity


def test_local_store_admits_all_or_nothing_and_reports_penalties() -> None:
    store = LocalBucketStore(
        RequestGateConfig(burst_fraction=1.0),
        FakeClock(),
        GateScope(uid="k1", ip_label="host"),
        private=True,
    )
    store.open("a [IP]", 2, 1.0)
    store.open("a [IP]", 999, 1.0)  # already open: unchanged
    store.open("b [UID]", 10, 2.0)
    first, _ = store.try_admit([("a [IP]", 1, 0)], 0.0)
    second, _ = store.try_admit([("a [IP]", 1, 0), ("b [UID]", 1, 0)], 0.0)
    assert first and second and first != second
    # "a" is full: a call on both buckets is charged on neither
    entry, blocked = store.try_admit([("a [IP]", 1, 0), ("b [UID]", 1, 0)], 0.0)
    assert entry is None and list(blocked) == ["a [IP]"] and blocked["a [IP]"] > 0.0
    assert store.snapshot("b [UID]", 0.0)["used"] == 1
    store.release(["a [IP]"], first, 0.5)
    assert store.snapshot("a [IP]", 0.5)["in_flight"] == 1
    hold, factor = store.penalise("b [UID]", 0.0, 3.0)
    assert (hold, factor) == (3.0, 0.5)
    assert store.penalise("b [UID]", 1.0, None) == (0.0, 0.0)  # an echo: nothing new held
    store.set_limit("b [UID]", 100)
    assert store.snapshot("b [UID]", 1.0)["capacity"] == 90
    store.set_limit("missing", 5)  # no-op


def test_scaled_limit_never_exceeds_the_share() -> None:
    assert scaled_limit(20, 2.0, 1.0) == (20, 2.0)
    assert scaled_limit(20, 2.0, 0.25) == (5, 2.0)
    assert scaled_limit(6, 2.0, 0.25) == (1, 2.0)
    limit, window = scaled_limit(1, 2.0, 0.25)  # one per 8 s: a quarter of one per 2 s
    assert limit == 1 and window == 8.0
