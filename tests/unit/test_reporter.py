"""StatsReporter, LogSink, JsonLinesSink and flattening, over a stand-in client (no sockets)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from okx_sync.book import BookErrorCounts
from okx_sync.clock import FakeClock
from okx_sync.errors import ValidationError
from okx_sync.gate.stats import GateStats
from okx_sync.ops.health import HealthMonitor, HealthThresholds
from okx_sync.ops.reporter import (
    JsonLinesSink,
    LogSink,
    StatsReporter,
    StatsSnapshot,
    collect_snapshot,
    flatten,
    flatten_snapshot,
)
from okx_sync.rest.stats import RestStats
from okx_sync.ws.book_stats import BookStats
from okx_sync.ws.stats import WSStats
from tests.stats_support import book_stats, bucket_stats, gate_stats, rest_stats, ws_stats


class StubWS:
    """Stands in for a WSClient: ``stats()`` returns what the test set."""

    def __init__(self, clock: FakeClock, name: str = "public", **fields: Any) -> None:
        self.name = name
        self.clock = clock
        self.fields = {
            "name": name,
            "url": f"ws://127.0.0.1:9/ws/v5/{name}",
            "running": True,
            "connected": True,
            "reconnects": 0,
            "typed_queue_len": 0,
            "typed_queue_cap": 10,
            "messages": 0,
        }
        self.fields.update(fields)
        self.fields.setdefault("last_recv", clock.time())

    def stats(self) -> WSStats:
        return ws_stats(**self.fields)


class StubBook:
    def __init__(self, **fields: Any) -> None:
        self.fields = {
            "channel": "books",
            "inst_id": "BTC-USDT",
            "ready": True,
            "errors": BookErrorCounts(),
        }
        self.fields.update(fields)

    def stats(self) -> BookStats:
        return book_stats(**self.fields)


class StubClient:
    """The parts of ``Client`` the reporter reads."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.ws: list[Any] = []
        self.books: list[Any] = []
        self.rest = rest_stats(requests=3)
        self.gate = gate_stats(
            buckets=(bucket_stats("account orders [UID]", "account", tokens=5, admitted=1),)
        )
        self.health_monitor = HealthMonitor()
        self.adopted: list[tuple[Any, str, str]] = []
        self.background: list[tuple[str, BaseException]] = []

    def _adopt(self, child: Any, *, kind: str, label: str) -> None:
        """The host owns the reporter (``Client`` closes it on ``close()``)."""
        self.adopted.append((child, kind, label))

    def _report_background_error(self, source: str, error: BaseException) -> None:
        self.background.append((source, error))

    def stats(self) -> RestStats:
        return self.rest

    def gate_stats(self) -> GateStats:
        return self.gate

    def ws_clients(self) -> list[Any]:
        return list(self.ws)

    def managed_books(self) -> list[Any]:
        return list(self.books)


class Recorder:
    def __init__(self) -> None:
        self.snapshots: list[StatsSnapshot] = []
        self.cond = threading.Condition()
        self.closed = 0

    def emit(self, snapshot: StatsSnapshot) -> None:
        with self.cond:
            self.snapshots.append(snapshot)
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[StatsSnapshot]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.snapshots) >= n, timeout), len(
                self.snapshots
            )
            return list(self.snapshots)

    def close(self) -> None:
        self.closed += 1


class Boom:
    def emit(self, snapshot: StatsSnapshot) -> None:
        raise RuntimeError("sink is broken")


def reporter_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "okx-stats-reporter"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(auto_advance=False)


@pytest.fixture
def client(clock: FakeClock) -> StubClient:
    c = StubClient(clock)
    c.ws = [StubWS(clock), StubWS(clock, "public"), StubWS(clock, "private")]
    c.books = [StubBook()]
    return c


def test_collect_snapshot_names_sources_and_survives_a_broken_one(
    client: StubClient, clock: FakeClock
) -> None:
    class Broken:
        name = "business"

        def stats(self) -> Any:
            raise OSError("gone")

    client.ws.append(Broken())
    clock.advance(3)
    snap = collect_snapshot(client, monitor=HealthMonitor())
    assert [w["name"] for w in snap.ws] == ["public", "public#2", "private"]
    assert [w["kind"] for w in snap.ws] == ["public", "public", "private"]
    assert snap.ws[0]["last_recv_age_s"] == 3.0
    assert [b["name"] for b in snap.books] == ["books:BTC-USDT"]
    assert snap.errors == ("ws business: OSError: gone",)
    assert [p.component for p in snap.health.components] == [
        "rest",
        "gate",
        "ws public",
        "ws public#2",
        "ws private",
        "book books:BTC-USDT",
    ]
    assert snap.health.ok and snap.time == clock.time() and snap.monotonic == clock.monotonic()
    json.dumps(snap.to_dict())  # serialisable


def test_flatten_and_flatten_snapshot(client: StubClient) -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1]}}, "e": None}) == {
        "a.b": 1,
        "a.c.d": [1],
        "e": None,
    }
    client.ws[1].fields["typed_queue_len"] = 10  # full: down
    snap = collect_snapshot(client, monitor=HealthMonitor())
    flat = flatten_snapshot(snap)
    assert flat["health"] == "down"
    assert flat["health_reason"] == "ws public#2: typed queue at 100% of capacity (10/10)"
    assert flat["health.ws public#2"] == "down" and flat["health.gate"] == "ok"
    assert flat["rest.requests"] == 3
    assert flat["gate.in_flight"] == 0
    assert flat["gate.buckets.account orders [UID].tokens"] == 5
    assert flat["ws.public#2.typed_queue_len"] == 10
    assert flat["ws.private.kind"] == "private"
    assert flat["book.books:BTC-USDT.errors.checksum"] == 0
    assert all(not isinstance(v, dict) for v in flat.values())


def test_log_sink_one_structured_record(
    client: StubClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="okx_sync.stats")
    sink = LogSink()
    sink.emit(collect_snapshot(client, monitor=HealthMonitor()))
    client.ws[0].fields["connected"] = False
    sink.emit(collect_snapshot(client, monitor=HealthMonitor()))
    records = [r for r in caplog.records if r.name == "okx_sync.stats"]
    assert len(records) == 2
    ok, bad = records
    assert ok.levelno == logging.INFO and ok.getMessage() == "stats: client: ok"
    assert ok.__dict__["ws.public.typed_queue_cap"] == 10
    assert ok.__dict__["gate.buckets.account orders [UID].admitted"] == 1
    assert bad.levelno == logging.WARNING
    assert bad.__dict__["health"] == "down"
    assert bad.__dict__["health_reason"] == "ws public: not connected"


def test_json_lines_sink_appends_and_rotates(tmp_path: Path, client: StubClient) -> None:
    path = tmp_path / "stats.jsonl"
    snap = collect_snapshot(client, monitor=HealthMonitor())
    line_len = len(json.dumps(snap.to_dict(), separators=(",", ":"))) + 1
    sink = JsonLinesSink(path, max_bytes=line_len * 2, backup_count=2)
    for _ in range(7):
        sink.emit(snap)
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["stats.jsonl", "stats.jsonl.1", "stats.jsonl.2"]
    counts = [len(path.with_name(n).read_text().splitlines()) for n in files]
    assert counts == [1, 2, 2]  # 7 lines, 2 per file, the oldest file dropped
    row = json.loads(path.read_text())
    assert row["health"]["status"] == "ok" and row["ws"][0]["name"] == "public"
    # backup_count=0: start afresh
    solo = JsonLinesSink(tmp_path / "solo.jsonl", max_bytes=line_len, backup_count=0)
    for _ in range(3):
        solo.emit(snap)
    assert len((tmp_path / "solo.jsonl").read_text().splitlines()) == 1
    assert not (tmp_path / "solo.jsonl.1").exists()
    with pytest.raises(ValidationError):
        JsonLinesSink(path, max_bytes=0)
    with pytest.raises(ValidationError):
        JsonLinesSink(path, backup_count=-1)


def test_reporter_reports_every_interval_on_the_injected_clock(
    client: StubClient, clock: FakeClock
) -> None:
    rec = Recorder()
    reporter = StatsReporter(client, interval_s=10.0, sinks=[rec])
    assert client.adopted == [(reporter, "reporter", "stats reporter okx-stats-reporter")]
    try:
        rec.wait_for(1)
        clock.advance(4)
        clock.advance(6)
        snaps = rec.wait_for(2)
        assert [s.monotonic - 1000.0 for s in snaps] == [0.0, 10.0]
        assert reporter.last_snapshot is snaps[-1] and reporter.reports == 2
        assert reporter.monitor is client.health_monitor
        assert reporter_threads() and reporter.running
    finally:
        assert reporter.close()
    assert not reporter_threads() and not reporter.running
    assert rec.closed == 1
    assert reporter.close()  # idempotent, sinks closed once
    assert rec.closed == 1


def test_a_failing_sink_does_not_stop_the_reporter(
    client: StubClient, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="okx_sync.stats")
    rec = Recorder()
    with StatsReporter(client, interval_s=1.0, sinks=[Boom(), rec]) as reporter:
        rec.wait_for(1)
        clock.advance(1)
        rec.wait_for(2)
        clock.advance(1)
        rec.wait_for(3)
        assert reporter.sink_errors == {"Boom": 3}
        assert reporter.last_sink_error == "Boom: RuntimeError: sink is broken"
    assert not reporter_threads()
    failures = [r for r in caplog.records if "handler sink Boom raised" in r.getMessage()]
    # one traceback, then the other two failures summarised (on close: within the 10 s window)
    assert [bool(r.exc_info) for r in failures] == [True, False]
    assert failures[0].getMessage() == (
        "stats reporter: handler sink Boom raised RuntimeError: sink is broken"
    )
    assert failures[1].getMessage() == (
        "stats reporter: handler sink Boom raised 2 times in 2 s: last RuntimeError: sink is broken"
    )
    assert failures[0].__dict__["sink"] == "Boom"


def test_report_now_and_health_transition(client: StubClient, clock: FakeClock) -> None:
    thresholds = HealthThresholds(silence_degraded_s=25, silence_down_s=45)
    reporter = StatsReporter(client, interval_s=60.0, thresholds=thresholds, start=False)
    assert reporter.monitor is not client.health_monitor
    assert reporter.report_now().health.ok
    for ws in client.ws[1:]:
        ws.fields["last_recv"] = clock.time() + 30  # the others keep talking
    clock.advance(30)
    snap = reporter.report_now()
    assert snap.health.status == "degraded"
    assert snap.health.find("ws public").reason == "no message for 30 s"  # type: ignore[union-attr]
    clock.advance(20)
    assert reporter.report_now().health.find("ws public").status == "down"  # type: ignore[union-attr]
    assert not reporter_threads()
    reporter.close()


def test_windowed_rules_fire_when_the_interval_is_longer_than_the_window(
    client: StubClient, clock: FakeClock
) -> None:
    # interval_s=61 > window_s=60: every sample is older than the window when the next
    # one is taken; the increase still counts from it
    client.health_monitor = HealthMonitor(HealthThresholds(window_s=60, reconnects_degraded=3))
    ws = client.ws[0]
    rec = Recorder()
    with StatsReporter(client, interval_s=61.0, sinks=[rec]):
        assert rec.wait_for(1)[0].health.ok
        for n in range(2, 5):
            ws.fields["reconnects"] += 5
            for other in client.ws:
                other.fields["last_recv"] = clock.time() + 61
            clock.advance(61)
            health = rec.wait_for(n)[-1].health
            assert health.status == "degraded", n
            assert health.find("ws public").reason == "5 reconnects in 60 s"  # type: ignore[union-attr]


def test_reporter_validates(client: StubClient) -> None:
    with pytest.raises(ValidationError, match="interval_s"):
        StatsReporter(client, interval_s=0, start=False)
    with pytest.raises(ValidationError, match="emit"):
        StatsReporter(client, sinks=[object()], start=False)
    assert not reporter_threads()


def test_public_names_resolve() -> None:
    import okx_sync

    assert okx_sync.StatsReporter is StatsReporter
    assert okx_sync.LogSink is LogSink and okx_sync.JsonLinesSink is JsonLinesSink
    assert okx_sync.HealthThresholds is HealthThresholds
