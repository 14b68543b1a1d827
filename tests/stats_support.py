"""Typed stats snapshots for the pure health/reporter tests: every field at a quiet default,
``over`` replacing some (nested records take their own keyword overrides)."""

from __future__ import annotations

from typing import Any

from okx_sync.book import BookErrorCounts
from okx_sync.gate.stats import AccountLimitStats, BucketStats, GateStats
from okx_sync.rest.stats import LatencyStats, RestStats, TimeSyncStats
from okx_sync.ws.book_stats import BookCheckStats, BookStats
from okx_sync.ws.stats import WSStats

WALL = 1_700_000_000.0


def ws_stats(**over: Any) -> WSStats:
    base: dict[str, Any] = {
        "name": "public",
        "url": "ws://127.0.0.1:1/ws/v5/public",
        "running": True,
        "connected": True,
        "conn_id": "c1",
        "last_recv": WALL - 1.0,
        "last_ping": None,
        "last_pong": None,
        "connects": 1,
        "reconnects": 0,
        "handoffs": 0,
        "last_error": "",
        "subscribe_ok": 0,
        "subscribe_error": 0,
        "subscriptions_dropped": 0,
        "desired_subscriptions": 0,
        "typed_mode": "pool",
        "raw_mode": "inline",
        "typed_queue_len": 0,
        "typed_queue_cap": 100,
        "raw_queue_len": 0,
        "raw_queue_cap": 0,
        "typed_dropped": 0,
        "raw_dropped": 0,
        "typed_high_water": 0,
        "raw_high_water": 0,
        "typed_overflow_disconnects": 0,
        "raw_overflow_disconnects": 0,
        "handler_errors": 0,
        "parse_errors": 0,
        "unexpected_pushes": 0,
        "messages": 0,
        "bytes": 0,
    }
    return WSStats(**{**base, **over})


def rest_stats(*, latency: dict[str, Any] | None = None, **over: Any) -> RestStats:
    lat = {"samples": 0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, **(latency or {})}
    sync = TimeSyncStats(
        offset_ms=0,
        source=None,
        age_s=None,
        syncs=0,
        failures=0,
        last_error="",
        last_error_age_s=None,
    )
    base: dict[str, Any] = {
        "requests": 0,
        "successes": 0,
        "failures": 0,
        "failures_by_code": {},
        "limits_hit": {},
        "attempts": 0,
        "retries": 0,
        "resyncs": 0,
        "latency_s": LatencyStats(**lat),
        "last_errors": (),
        "time_offset_ms": 0,
        "time_sync": sync,
        "fast_path": True,
    }
    return RestStats(**{**base, **over})


def bucket_stats(key: str, kind: str = "endpoint", **over: Any) -> BucketStats:
    base: dict[str, Any] = {
        "limit": 20,
        "window_s": 2.0,
        "capacity": 18,
        "span_s": 2.0,
        "published_rate": 10.0,
        "current_rate": 9.0,
        "rate_factor": 1.0,
        "held_for_s": 0.0,
        "tokens": 18,
        "used": 0,
        "in_flight": 0,
        "admitted": 0,
        "admitted_cost": 0,
        "total_wait_s": 0.0,
        "max_wait_s": 0.0,
        "penalties": 0,
        "throttled": 0,
        "timeouts": 0,
    }
    return BucketStats(key=key, kind=kind, **{**base, **over})


def gate_stats(buckets: tuple[BucketStats, ...] = (), **over: Any) -> GateStats:
    account = AccountLimitStats(
        limit=1000, source="default", loaded_age_s=None, load_failures=0, last_error=""
    )
    base: dict[str, Any] = {
        "in_flight": 0,
        "max_concurrent": 10,
        "waiting": 0,
        "admitted": 0,
        "timeouts": 0,
        "total_wait_s": 0.0,
        "max_wait_s": 0.0,
        "rate_limits": True,
        "headroom": 0.9,
        "account_order_limit": account,
        "buckets": buckets,
        "backend": {"backend": "local", "health": "local"},
        "enabled": True,
    }
    return GateStats(**{**base, **over})


def book_stats(*, check: dict[str, Any] | None = None, **over: Any) -> BookStats:
    rest_check = {
        "enabled": False,
        "checked": 0,
        "mismatches": 0,
        "errors": 0,
        "last_difference": None,
        "last_error": "",
        **(check or {}),
    }
    base: dict[str, Any] = {
        "channel": "books",
        "inst_id": "BTC-USDT",
        "ready": True,
        "seq_id": 1,
        "bids": 1,
        "asks": 1,
        "applied": 1,
        "snapshots": 1,
        "updates": 0,
        "verified": 1,
        "unverified": 0,
        "resets": 0,
        "sequence_resets": 0,
        "crossed_snapshots": 0,
        "errors": BookErrorCounts(),
        "ws": "public",
        "in_sync": True,
        "resyncs": 0,
        "resubscribes": 0,
        "skipped": 0,
        "last_error": "",
        "rejected": None,
        "last_resync_s": None,
        "callback_errors": 0,
        "closed": False,
        "rest_check": BookCheckStats(**rest_check),
    }
    return BookStats(**{**base, **over})
