"""The frozen stats snapshots (RestStats, GateStats, BookStats, DeadManStats): typed fields,
immutability, and ``to_dict()`` giving the JSON-serialisable dict ``stats()`` used to return
(same keys in the same order; the simulator drives real counters). StoreStats, the
order-book store's, is pinned the same way in tests/unit/test_book.py."""

from __future__ import annotations

import json

import attrs
import pytest

from okx_sync import BookStats, BucketStats, DeadManStats, GateStats, RestStats
from okx_sync.book import BookErrorCounts, StoreStats
from okx_sync.errors import APIError
from okx_sync.gate.stats import AccountLimitStats
from okx_sync.rest.stats import LatencyStats, TimeSyncStats
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client
from okx_sync.ws.book_stats import BookCheckStats
from tests.stats_support import bucket_stats

# The keys (and their order) of the dicts these stats() returned before they were typed.
REST_KEYS = [
    "requests", "successes", "failures", "failures_by_code", "limits_hit", "attempts",
    "retries", "resyncs", "latency_s", "last_errors", "time_offset_ms", "time_sync", "fast_path",
]  # fmt: skip
TIME_SYNC_KEYS = [
    "offset_ms", "source", "age_s", "syncs", "failures", "last_error", "last_error_age_s",
    "interval_s", "timer_running",
]  # fmt: skip
GATE_KEYS = [
    "in_flight", "max_concurrent", "waiting", "admitted", "timeouts", "total_wait_s",
    "max_wait_s", "rate_limits", "headroom", "account_order_limit", "buckets", "backend",
    "enabled",
]  # fmt: skip
BUCKET_KEYS = [
    "key", "kind", "limit", "window_s", "capacity", "span_s", "published_rate", "current_rate",
    "rate_factor", "held_for_s", "tokens", "used", "in_flight", "admitted", "admitted_cost",
    "total_wait_s", "max_wait_s", "penalties", "throttled", "timeouts",
]  # fmt: skip
BOOK_KEYS = [
    "channel", "inst_id", "ready", "seq_id", "bids", "asks", "applied", "snapshots", "updates",
    "verified", "unverified", "resets", "sequence_resets", "crossed_snapshots", "errors", "ws",
    "in_sync", "resyncs", "resubscribes", "skipped", "last_error", "rejected", "last_resync_s",
    "callback_errors", "closed", "rest_check",
]  # fmt: skip
ERROR_KEYS = ["sequence", "checksum", "not_ready", "malformed", "crossed"]
DEAD_MAN_KEYS = [
    "tag", "timeout_s", "refresh_s", "running", "armed", "refreshes", "failures",
    "consecutive_failures", "expired", "expiries", "last_refresh", "deadline", "trigger_time",
    "last_error", "handler_errors",
]  # fmt: skip


def _frozen(snapshot: object, field: str) -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(snapshot, field, 0)
    assert not hasattr(snapshot, "__dict__")  # slots


def test_rest_and_gate_stats_are_frozen_typed_and_dict_compatible() -> None:
    with Simulator(seed=5, auto_tick=False, ws=False) as sim, sim_client(sim) as client:
        client.sync_time()
        client.market.get_ticker(inst_id="BTC-USDT")
        with pytest.raises(APIError):
            client.request("GET", "/api/v5/market/ticker", {"instId": "NOPE-USDT"})
        rest = client.stats()
        gate = client.gate_stats()
    assert isinstance(rest, RestStats) and isinstance(rest.latency_s, LatencyStats)
    assert isinstance(rest.time_sync, TimeSyncStats)
    assert (rest.requests, rest.successes, rest.failures) == (3, 2, 1)
    assert sum(rest.failures_by_code.values()) == 1 and len(rest.last_errors) == 1
    assert rest.latency_s.samples == 3 and rest.latency_s.p50 <= rest.latency_s.max
    assert rest.time_sync.source == "okx" and rest.time_sync.syncs == 1
    assert rest.time_offset_ms == rest.time_sync.offset_ms and rest.fast_path is True
    _frozen(rest, "requests")
    d = rest.to_dict()
    assert list(d) == REST_KEYS and list(d["time_sync"]) == TIME_SYNC_KEYS
    assert list(d["latency_s"]) == ["samples", "p50", "p90", "p99", "max"]
    assert isinstance(d["last_errors"], list) and d["last_errors"][0] == rest.last_errors[0]
    assert d["failures_by_code"] == dict(rest.failures_by_code)
    assert json.loads(json.dumps(d)) == d
    d["failures_by_code"]["x"] = 1  # a copy: the snapshot is untouched
    assert "x" not in rest.failures_by_code

    assert isinstance(gate, GateStats) and isinstance(gate.account_order_limit, AccountLimitStats)
    assert gate.admitted >= 3 and gate.enabled and gate.in_flight == 0
    assert all(isinstance(b, BucketStats) for b in gate.buckets)
    ticker = gate.bucket("GET /api/v5/market/ticker [IP]")
    assert ticker is not None and ticker.admitted == 2 and ticker.limit == 20
    assert gate.bucket("nope") is None
    _frozen(gate, "admitted")
    g = gate.to_dict()
    assert list(g) == GATE_KEYS and isinstance(g["buckets"], list)
    assert all(list(b) == BUCKET_KEYS for b in g["buckets"])  # local backend: no "shared"
    assert g["account_order_limit"] == attrs.asdict(gate.account_order_limit)
    assert g["backend"] == {"backend": "local", "health": "local"}
    assert json.loads(json.dumps(g)) == g


def test_bucket_stats_shows_shared_only_for_the_redis_backend() -> None:
    local = bucket_stats("k")
    assert "shared" not in local.to_dict()
    shared = attrs.evolve(local, shared=True)
    keys = list(shared.to_dict())
    assert keys[keys.index("in_flight") + 1] == "shared" and shared.to_dict()["shared"] is True


def test_latency_percentiles_by_nearest_rank() -> None:
    lat = LatencyStats.of([0.1, 0.2, 0.3, 0.4, 1.0])
    assert (lat.samples, lat.p50, lat.p90, lat.p99, lat.max) == (5, 0.3, 1.0, 1.0, 1.0)
    assert LatencyStats.of([]) == LatencyStats(samples=0, p50=0.0, p90=0.0, p99=0.0, max=0.0)


def test_book_stats_of_a_managed_book() -> None:
    with Simulator(seed=5) as sim, sim_client(sim) as client:
        ws = client.ws_public()
        with ws:
            book = ws.order_book("BTC-USDT")
            assert book.wait_ready(10.0)
            stats = book.stats()
    assert isinstance(stats, BookStats) and isinstance(stats.rest_check, BookCheckStats)
    assert isinstance(stats, StoreStats)  # the store's fields first, then the book's
    assert (stats.channel, stats.inst_id, stats.ws) == ("books", "BTC-USDT", "public")
    assert stats.ready and stats.in_sync and stats.snapshots == 1 and stats.bids > 0
    assert isinstance(stats.errors, BookErrorCounts)
    assert stats.error_total == stats.errors.total == 0
    _frozen(stats, "resyncs")
    d = stats.to_dict()
    assert list(d) == BOOK_KEYS
    assert list(d["rest_check"]) == [
        "enabled", "checked", "mismatches", "errors", "last_difference", "last_error",
    ]  # fmt: skip
    assert d["errors"] == stats.errors.to_dict() == dict.fromkeys(ERROR_KEYS, 0)
    assert list(d["errors"]) == ERROR_KEYS
    assert json.loads(json.dumps(d)) == d


def test_dead_man_stats_of_a_running_switch() -> None:
    with Simulator(seed=5, auto_tick=False, ws=False) as sim, sim_client(sim) as client:
        switch = client.dead_man_switch(timeout_s=60, refresh_s=10, tag="a1")
        stats = switch.stats()
        switch.stop()
        stopped = switch.stats()
    assert isinstance(stats, DeadManStats)
    assert (stats.tag, stats.timeout_s, stats.refresh_s) == ("a1", 60, 10.0)
    assert stats.armed and stats.running and stats.refreshes == 1 and stats.failures == 0
    assert stats.last_refresh is not None and stats.deadline == stats.last_refresh + 60
    assert stats.trigger_time is not None
    assert not stopped.armed and not stopped.running and stopped.deadline is None
    _frozen(stats, "armed")
    d = stats.to_dict()
    assert list(d) == DEAD_MAN_KEYS and d == attrs.asdict(stats)
    assert json.loads(json.dumps(d)) == d
