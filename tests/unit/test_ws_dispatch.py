"""okx_sync.ws.dispatch: overflow decisions, bounded pools, per-key order, live switching."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from okx_sync.clock import FakeClock
from okx_sync.testing import wait_until
from okx_sync.ws.dispatch import (
    Admission,
    DispatchConfig,
    DispatchMode,
    DispatchPath,
    DropEpisodes,
    DropReport,
    Overflow,
    SubmitResult,
    WorkerPool,
    overflow_decision,
)


def never() -> bool:
    return False


def test_overflow_decision_table():
    assert overflow_decision("block", 0, 1) is Admission.ACCEPT
    assert overflow_decision("drop", 4, 5) is Admission.ACCEPT
    assert overflow_decision("block", 5, 5) is Admission.WAIT
    assert overflow_decision("drop", 5, 5) is Admission.DROP
    assert overflow_decision("disconnect", 6, 5) is Admission.DISCONNECT


def test_config_defaults():
    cfg = DispatchConfig()
    assert (cfg.mode, cfg.queue_size, cfg.workers, cfg.overflow) == (
        DispatchMode.POOL,
        10_000,
        1,
        Overflow.BLOCK,
    )
    assert DispatchConfig(queue_size=8).overflow is Overflow.BLOCK  # block is the default policy


def test_config_validation_takes_the_enums_only():
    cfg = DispatchConfig(mode=DispatchMode.POOL, queue_size=8, workers=2, overflow=Overflow.DROP)
    assert (cfg.queue_size, cfg.workers, cfg.overflow) == (8, 2, Overflow.DROP)
    assert (
        cfg.overflow == "drop" and str(cfg.mode) == "pool"
    )  # StrEnum: logs and stats read as before
    bad_values: list[dict[str, Any]] = [
        {"mode": "pool"},  # a string, not DispatchMode: no coercion
        {"mode": "async"},
        {"overflow": "drop"},
        {"queue_size": 0},
        {"workers": -1},
    ]
    for bad in bad_values:
        with pytest.raises(ValueError):
            DispatchConfig(**bad)
    assert not hasattr(DispatchConfig, "coerce")


class Recorder:
    """A deliver function recording (key, n) per thread, optionally slow or gated."""

    def __init__(self, delay: float = 0.0) -> None:
        self.items: list[tuple[str, int]] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()
        self.delay_s = delay
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, item: tuple[str, int]) -> None:
        self.gate.wait(5)
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            self.items.append(item)
            self.threads.add(threading.current_thread().name)


def make_path(rec, cfg, errors=None):
    return DispatchPath(
        "typed",
        rec,
        cfg,
        thread_prefix="okx-ws-test-typed",
        on_error=(errors.append if errors is not None else lambda e: None),
        monotonic=time.monotonic,
    )


def make_pool(deliver, *, queue_size, workers):
    return WorkerPool(
        deliver,
        queue_size=queue_size,
        workers=workers,
        overflow=Overflow.BLOCK,
        thread_prefix="okx-ws-test-pool",
        on_error=lambda e: None,
        monotonic=time.monotonic,
    )


def wait_for(pred, timeout=5.0):
    return wait_until(pred, timeout)


def test_pool_keeps_per_key_order_across_workers():
    rec = Recorder()
    path = make_path(rec, DispatchConfig(mode=DispatchMode.POOL, queue_size=64, workers=4))
    path.start()
    keys = [f"K{i}" for i in range(8)]
    for n in range(300):
        for k in keys:
            assert path.submit((k, ""), (k, n), never) is SubmitResult.QUEUED
    assert wait_for(lambda: len(rec.items) == 300 * len(keys))
    for k in keys:
        assert [n for kk, n in rec.items if kk == k] == list(range(300))
    assert len(rec.threads) > 1  # really ran in parallel workers
    assert all(t.startswith("okx-ws-test-typed-") for t in rec.threads)
    assert path.high_water <= 64
    assert path.stop(2.0)
    assert not [t for t in threading.enumerate() if t.name.startswith("okx-ws-test-")]


def test_keys_take_the_workers_in_turn_in_every_process():
    """Four keys on four workers run on four workers, whatever the process's str hash
    seed (hash(key) % workers put every instrument on one worker in some runs)."""
    rec = Recorder()
    by_key: dict[str, set[str]] = {}
    lock = threading.Lock()

    def deliver(item):
        rec(item)
        with lock:
            by_key.setdefault(item[0], set()).add(threading.current_thread().name)

    path = make_path(deliver, DispatchConfig(mode=DispatchMode.POOL, queue_size=64, workers=4))
    path.start()
    keys = ["BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP", "ETH-USDT-SWAP"]
    for n in range(20):
        for k in keys:
            assert path.submit(("books", k), (k, n), never) is SubmitResult.QUEUED
    assert wait_for(lambda: len(rec.items) == 20 * len(keys))
    assert all(len(names) == 1 for names in by_key.values())  # a key keeps its worker
    assert len({next(iter(names)) for names in by_key.values()}) == 4
    assert path.stop(2.0)


def test_drop_policy_counts_and_stays_bounded():
    rec = Recorder()
    rec.gate.clear()  # the handler is stuck until released
    path = make_path(
        rec,
        DispatchConfig(mode=DispatchMode.POOL, queue_size=10, workers=1, overflow=Overflow.DROP),
    )
    path.start()
    results = [path.submit(("k", ""), ("k", n), never) for n in range(1000)]
    assert results.count(SubmitResult.QUEUED) == 10
    assert path.dropped == 990
    assert path.qsize == 10 and path.high_water == 10
    rec.gate.set()
    assert wait_for(lambda: len(rec.items) == 10)
    assert [n for _, n in rec.items] == list(range(10))
    path.stop(2.0)


def test_disconnect_policy_reports():
    rec = Recorder()
    rec.gate.clear()
    path = make_path(
        rec, DispatchConfig(mode=DispatchMode.POOL, queue_size=3, overflow=Overflow.DISCONNECT)
    )
    path.start()
    results = [path.submit(("k", ""), ("k", n), never) for n in range(4)]
    assert results[-1] is SubmitResult.DISCONNECT
    assert (path.dropped, path.disconnects) == (1, 1)
    rec.gate.set()
    path.stop(2.0)


def test_block_policy_waits_and_can_be_interrupted():
    rec = Recorder()
    rec.gate.clear()
    path = make_path(
        rec, DispatchConfig(mode=DispatchMode.POOL, queue_size=2, overflow=Overflow.BLOCK)
    )
    path.start()
    for n in range(2):
        path.submit(("k", ""), ("k", n), never)
    stop = threading.Event()
    out: list[SubmitResult] = []
    t = threading.Thread(target=lambda: out.append(path.submit(("k", ""), ("k", 2), stop.is_set)))
    t.start()
    assert wait_for(lambda: path.blocked_since is not None)
    assert t.is_alive()  # blocked: the queue is full
    stop.set()
    t.join(2)
    assert out == [SubmitResult.STOPPED] and path.blocked_since is None
    # blocked again, then room appears: the message goes in, nothing lost
    t = threading.Thread(target=lambda: out.append(path.submit(("k", ""), ("k", 3), never)))
    t.start()
    assert wait_for(lambda: path.blocked_since is not None)
    rec.gate.set()
    t.join(2)
    assert out[-1] is SubmitResult.QUEUED
    assert wait_for(lambda: [n for _, n in rec.items] == [0, 1, 3])
    path.stop(2.0)


def test_handler_exception_is_reported_and_worker_survives():
    errors: list[BaseException] = []

    def deliver(item):
        if item[1] % 2:
            raise RuntimeError(f"bad {item[1]}")
        seen.append(item)

    seen: list = []
    path = make_path(deliver, DispatchConfig(mode=DispatchMode.POOL, queue_size=16), errors)
    path.start()
    for n in range(10):
        path.submit(("k", ""), ("k", n), never)
    assert wait_for(lambda: len(seen) == 5 and len(errors) == 5)
    inline = make_path(deliver, DispatchConfig(mode=DispatchMode.INLINE), errors)
    inline.start()
    assert inline.submit(("k", ""), ("k", 1), never) is SubmitResult.DELIVERED
    assert len(errors) == 6
    path.stop(2.0)
    inline.stop(2.0)


def test_switching_under_load_loses_duplicates_and_reorders_nothing():
    rec = Recorder()
    path = make_path(rec, DispatchConfig(mode=DispatchMode.INLINE))
    path.start()
    configs = [
        DispatchConfig(mode=DispatchMode.POOL, queue_size=32, workers=3),
        DispatchConfig(mode=DispatchMode.INLINE),
        DispatchConfig(mode=DispatchMode.POOL, queue_size=8, workers=1),
        DispatchConfig(mode=DispatchMode.POOL, queue_size=64, workers=4),
        DispatchConfig(mode=DispatchMode.INLINE),
    ]
    keys = ["A", "B", "C"]
    total = 6000
    done = threading.Event()

    def switcher():
        i = 0
        while not done.is_set():
            path.configure(configs[i % len(configs)])
            i += 1
            done.wait(0.003)  # pace the switches; ends at once when the load is done

    t = threading.Thread(target=switcher)
    t.start()
    for n in range(total):
        k = keys[n % 3]
        assert path.submit((k, ""), (k, n), never) in (SubmitResult.QUEUED, SubmitResult.DELIVERED)
    done.set()
    t.join()
    path.configure(DispatchConfig(mode=DispatchMode.INLINE))
    path.submit(("A", ""), ("A", total), never)  # applies the last switch: drains the pool
    got = [n for _, n in rec.items]
    assert sorted(got) == list(range(total + 1))  # nothing lost or duplicated
    for k in keys:  # order per key kept across every switch
        seq = [n for kk, n in rec.items if kk == k]
        assert seq == sorted(seq)
    assert path.mode == "inline"
    assert path.stop(2.0)


def test_stop_discards_joins_and_restarts():
    rec = Recorder(delay=0.001)
    path = make_path(rec, DispatchConfig(mode=DispatchMode.POOL, queue_size=1000, workers=2))
    path.start()
    for n in range(1000):
        path.submit((str(n % 7), ""), ("k", n), never)
    assert path.stop(2.0)
    assert len(rec.items) < 1000
    assert path.submit(("k", ""), ("k", 0), never) is SubmitResult.STOPPED
    assert not [t for t in threading.enumerate() if t.name.startswith("okx-ws-test-")]
    # start again after stop
    path.start()
    path.submit(("k", ""), ("k", 1), never)
    assert wait_for(lambda: bool(rec.items) and rec.items[-1] == ("k", 1))
    path.stop(2.0)


def test_worker_pool_drain():
    rec = Recorder(delay=0.0005)
    pool = make_pool(rec, queue_size=100, workers=2)
    pool.start()
    for n in range(100):
        pool.put(str(n), ("k", n), never)
    assert pool.drain(never, timeout_s=5)
    assert len(rec.items) == 100 and pool.qsize == 0
    assert pool.stop(2.0)


def test_reconfigure_while_the_reader_is_switching_loses_nothing():
    rec = Recorder()
    path = make_path(rec, DispatchConfig(mode=DispatchMode.POOL, queue_size=8))
    path.start()
    rec.gate.clear()  # the first pool's handler is stuck: its drain will wait
    assert path.submit(("k", ""), ("k", 0), never) is SubmitResult.QUEUED
    path.configure(DispatchConfig(mode=DispatchMode.POOL, queue_size=8, workers=2))  # P2
    out: list[SubmitResult] = []
    reader = threading.Thread(target=lambda: out.append(path.submit(("k", ""), ("k", 1), never)))
    reader.start()  # applies the switch to P2: drains the stuck pool first
    assert wait_for(lambda: path._switching_to is not None)  # the reader is mid-switch
    path.configure(
        DispatchConfig(mode=DispatchMode.INLINE)
    )  # supersedes P2 while the reader moves to it
    rec.gate.set()
    reader.join(5)
    assert out == [SubmitResult.QUEUED]  # message 1 went into P2, which was not stopped
    for n in range(2, 50):
        path.submit(("k", ""), ("k", n), never)  # the first one drains P2, then inline
    assert wait_for(lambda: len(rec.items) == 50)
    assert [n for _, n in rec.items] == list(range(50))
    assert path.mode == "inline"
    assert path.stop(2.0)
    assert not [t for t in threading.enumerate() if t.name.startswith("okx-ws-test-")]


class RecordingCondition(threading.Condition):
    """A Condition that records each wait's timeout and says when a waiter arrives."""

    def __init__(self, lock) -> None:
        super().__init__(lock)
        self.timeouts: list[float | None] = []
        self.waiting = threading.Event()

    def wait(self, timeout=None):
        self.timeouts.append(timeout)
        self.waiting.set()
        return super().wait(timeout)


def test_an_idle_worker_sleeps_until_a_message_is_queued_with_no_polling():
    """Issue 18: an idle worker waits with no timeout and the reader's put wakes it (no 1 ms poll)."""
    handled = threading.Semaphore(0)
    pool = make_pool(lambda item: handled.release(), queue_size=8, workers=1)
    cond = RecordingCondition(pool._lock)
    pool._work[0] = cond  # before start: the worker waits on this one
    pool.start()
    try:
        for n in range(5):
            assert cond.waiting.wait(5)  # the worker is idle, waiting
            cond.waiting.clear()
            assert pool.put("k", n, never) is SubmitResult.QUEUED
            assert handled.acquire(timeout=5)  # woken by the put (an untimed wait needs it)
        assert cond.timeouts and all(t is None for t in cond.timeouts), cond.timeouts
    finally:
        assert pool.stop(2.0)


def test_drop_episodes_policy():
    d = DropEpisodes(report_every_s=10.0, log_every_s=10.0)
    assert not d.open and d.accepted(0, 10, 0.0) is None and d.flush(0.0) is None
    assert d.dropped(100.0) is None and d.dropped(100.5) is None and d.open
    assert d.accepted(6, 10, 101.0) is None  # more than half full: the episode goes on
    assert d.accepted(5, 10, 101.0) == DropReport(dropped=2, since=100.0, until=101.0, log=True)
    assert not d.open
    # the next episode within log_every_s is reported without a WARNING, counted into the next
    d.dropped(102.0)
    assert d.accepted(0, 10, 103.0) == DropReport(dropped=1, since=102.0, until=103.0, log=False)
    for _ in range(3):
        d.dropped(112.0)
    assert d.flush(113.0) == DropReport(
        dropped=3, since=112.0, until=113.0, log=True, unlogged_episodes=1, unlogged_dropped=1
    )
    # an overload that never ends is still reported every report_every_s
    assert d.dropped(200.0) is None
    report = d.dropped(210.0)
    assert report is not None and (report.dropped, report.since) == (2, 200.0) and report.log
    with pytest.raises(ValueError):
        DropEpisodes(report_every_s=0)


def test_drop_episode_reported_when_the_pool_catches_up_and_on_stop():
    """Issue 18: overflow=drop is never silent: each episode reaches on_drops, once."""
    clock = FakeClock()
    reports: list[tuple[str, DropReport]] = []
    rec = Recorder()
    rec.gate.clear()
    path = DispatchPath(
        "typed",
        rec,
        DispatchConfig(mode=DispatchMode.POOL, queue_size=4, overflow=Overflow.DROP),
        thread_prefix="okx-ws-test-typed",
        on_error=lambda e: None,
        monotonic=clock.monotonic,
        on_drops=lambda name, r: reports.append((name, r)),
    )
    path.start()
    t0 = clock.monotonic()
    assert [path.submit(("k", ""), ("k", n), never) for n in range(4)] == [SubmitResult.QUEUED] * 4
    for n in range(4, 10):
        assert path.submit(("k", ""), ("k", n), never) is SubmitResult.DROPPED
        clock.advance(0.1)
    assert reports == [] and path.dropped == 6  # the episode is still going on
    rec.gate.set()
    assert wait_for(lambda: len(rec.items) == 4 and path.qsize == 0)
    assert path.submit(("k", ""), ("k", 10), never) is SubmitResult.QUEUED
    assert reports == [
        ("typed", DropReport(dropped=6, since=t0, until=clock.monotonic(), log=True))
    ]
    assert wait_for(lambda: len(rec.items) == 5)
    # a second episode, still open when the path stops, is reported by stop()
    rec.gate.clear()
    for n in range(11, 20):
        path.submit(("k", ""), ("k", n), never)
    assert len(reports) == 1
    rec.gate.set()
    assert path.stop(2.0)
    assert len(reports) == 2 and reports[1][1].dropped == 5 and not reports[1][1].log
