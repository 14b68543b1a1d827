"""``Client(time_sync_interval_s=...)``: periodic clock re-sync on thread okx-time-sync,
driven by a FakeClock (no real waiting); its state in stats() and evidence; close() joins it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from rest_mock import Routes

from okx_sync import Client, FakeClock, RequestGateConfig, ValidationError
from okx_sync.ops.time_sync import THREAD_NAME, TimeSyncTimer
from okx_sync.rest.transport import RawResponse
from okx_sync.testing.mock_transport import json_response
from okx_sync.timesync import SYNC_RETRY_S, TimeSync, next_sync_due

BASE = "https://www.okx.com"
TIME = BASE + "/api/v5/public/time"
SERVER_AHEAD_MS = 7_000


def _sync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.fixture
def rsps() -> Routes:
    return Routes()


def _serve_time(rsps: Routes, clock: FakeClock, fail: list[bool]) -> None:
    """/public/time answers the fake wall clock + SERVER_AHEAD_MS, or 503 while ``fail[0]``."""

    def answer(_req: Any) -> RawResponse:
        if fail[0]:
            return json_response(b"busy", status=503)
        ts = int(clock.time() * 1000) + SERVER_AHEAD_MS
        return json_response({"code": "0", "msg": "", "data": [{"ts": str(ts)}]})

    rsps.add_callback("GET", TIME, answer)


def _timed_client(rsps: Routes, fail: list[bool]) -> tuple[FakeClock, Client]:
    """A manual FakeClock and a Client re-syncing every 600 s against ``_serve_time``."""
    clock = FakeClock(auto_advance=False)
    _serve_time(rsps, clock, fail)
    client = Client(
        "key-0123456789abcdef",
        "secret",
        "pass",
        clock=clock,
        gate=RequestGateConfig(rate_limits=False),
        time_sync_interval_s=600,
        transport=rsps.transport,
    )
    return clock, client


def test_periodic_resync_follows_the_interval_and_close_joins_the_thread(rsps):
    fail = [False]
    clock, client = _timed_client(rsps, fail)
    try:
        timer = client.time_sync_timer
        assert timer is not None and len(_sync_threads()) == 1
        assert timer.wait_runs(1, 10.0)  # first sync at once, at construction
        assert client.time_offset_ms == SERVER_AHEAD_MS
        sync = client.stats().time_sync
        assert sync.syncs == 1 and sync.age_s == 0.0 and sync.interval_s == 600.0
        assert sync.timer_running and sync.last_error == ""
        assert timer.next_due() == clock.monotonic() + 600
        clock.advance(599.0)
        assert client.stats().time_sync.age_s == 599.0  # not re-synced before due
        assert client.stats().time_sync.syncs == 1
        clock.advance(1.0)
        assert timer.wait_runs(2, 10.0)
        assert client.stats().time_sync.syncs == 2
        assert [c.target for c in rsps.calls] == ["/api/v5/public/time"] * 2
        # a sync by hand restarts the interval: the timer waits 600 s from it
        clock.advance(300.0)
        client.sync_time()
        assert timer.next_due() == clock.monotonic() + 600
    finally:
        client.close()
    assert not _sync_threads() and not client.time_sync_timer.running
    assert client.stats().time_sync.timer_running is False


def test_failed_sync_is_reported_and_retried_after_a_minute(rsps):
    fail = [True]
    clock, client = _timed_client(rsps, fail)
    try:
        timer = client.time_sync_timer
        assert timer.wait_runs(1, 10.0)
        sync = client.stats().time_sync
        assert sync.syncs == 0 and sync.failures == 1
        assert "503" in sync.last_error and sync.age_s is None
        evidence = client.evidence()
        assert evidence["clock"]["last_error"] == sync.last_error
        assert evidence["clock"]["interval_s"] == 600.0 and evidence["clock"]["failures"] == 1
        assert evidence["config"]["time_sync_interval_s"] == 600.0
        assert timer.next_due() == clock.monotonic() + SYNC_RETRY_S
        fail[0] = False
        clock.advance(SYNC_RETRY_S)
        assert timer.wait_runs(2, 10.0)
        sync = client.stats().time_sync
        assert sync.syncs == 1 and sync.last_error == "" and sync.failures == 1
        assert client.time_offset_ms == SERVER_AHEAD_MS
        assert client.evidence()["clock"]["last_error"] == ""
    finally:
        client.close()
    assert not _sync_threads()


def test_off_by_default_and_with_zero():
    for client in (Client(), Client(time_sync_interval_s=0)):
        with client:
            assert client.time_sync_timer is None and not _sync_threads()
            assert client.stats().time_sync.interval_s == 0.0


@pytest.mark.parametrize("bad", [-1, 5, 9.99, True, "600", None, float("nan"), float("inf")])
def test_interval_is_validated(bad):
    with pytest.raises(ValidationError, match="time_sync_interval_s"):
        Client(time_sync_interval_s=bad)
    assert not _sync_threads()


def test_next_sync_due_policy():
    assert next_sync_due(None, None, 600) == float("-inf")
    assert next_sync_due(100.0, None, 600) == 700.0
    assert next_sync_due(100.0, 50.0, 600) == 700.0  # failure older than the success
    assert next_sync_due(100.0, 150.0, 600) == 150.0 + SYNC_RETRY_S
    assert next_sync_due(None, 10.0, 30) == 40.0  # retry never later than the interval


def test_timer_survives_a_non_okx_exception_and_stops():
    clock = FakeClock(auto_advance=False)
    ts = TimeSync(clock)
    calls: list[int] = []

    def sync() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        ts.set_offset(5)

    timer = TimeSyncTimer(sync, ts, interval_s=600, clock=clock)
    timer.start()
    try:
        assert timer.wait_runs(1, 10.0)
        assert ts.last_error == "RuntimeError: boom"
        clock.advance(SYNC_RETRY_S)
        assert timer.wait_runs(2, 10.0) and ts.offset_ms == 5 and ts.last_error == ""
        with pytest.raises(RuntimeError):
            timer.start()
    finally:
        timer.stop()
        assert timer.join(5.0)
    with pytest.raises(ValueError):
        TimeSyncTimer(sync, ts, interval_s=0, clock=clock)
