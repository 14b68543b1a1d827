"""StatsReporter against the simulator: real faults, health transitions, metrics scraped over HTTP."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable, Iterator
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
pytest.importorskip("websockets")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from okx_sync.ops.health import HealthMonitor, HealthThresholds  # noqa: E402
from okx_sync.ops.prometheus import PrometheusSink  # noqa: E402
from okx_sync.ops.reporter import StatsReporter, StatsSnapshot, collect_snapshot  # noqa: E402
from okx_sync.sim import Simulator  # noqa: E402
from okx_sync.testing import sim_client, wait_until  # noqa: E402
from okx_sync.testing.ws_servers import ws_options  # noqa: E402
from okx_sync.ws.client import WSClient  # noqa: E402
from okx_sync.ws.dispatch import DispatchConfig, Overflow  # noqa: E402

pytestmark = pytest.mark.timeout(60)

OUR_THREADS = ("okx-stats-reporter", "okx-metrics-http")


class Recorder:
    """A sink that keeps every snapshot and lets the test wait for one that matches."""

    def __init__(self) -> None:
        self.snapshots: list[StatsSnapshot] = []
        self.cond = threading.Condition()
        self.seen = 0  # snapshots before this index were already looked at

    def emit(self, snapshot: StatsSnapshot) -> None:
        with self.cond:
            self.snapshots.append(snapshot)
            self.cond.notify_all()

    def wait_for(
        self, pred: Callable[[StatsSnapshot], bool], timeout: float = 15.0
    ) -> StatsSnapshot:
        """The first snapshot after the previous match that satisfies ``pred``."""
        found: list[StatsSnapshot] = []

        def match() -> bool:
            while self.seen < len(self.snapshots):
                snap = self.snapshots[self.seen]
                self.seen += 1
                if pred(snap):
                    found.append(snap)
                    return True
            return False

        with self.cond:
            assert self.cond.wait_for(match, timeout), [str(s.health) for s in self.snapshots[-5:]]
        return found[0]


def ws_part(snap: StatsSnapshot, name: str = "ws public") -> Any:
    part = snap.health.find(name)
    assert part is not None, snap.health
    return part


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=11, instruments=["BTC-USDT", "ETH-USDT"]) as s:
        yield s


@pytest.fixture
def client(sim: Simulator) -> Iterator[Any]:
    c = sim_client(sim)
    try:
        yield c
    finally:
        c.close()


def public_ws(client: Any, sim: Simulator, **options: Any) -> WSClient:
    """A public WSClient that the client lists in ``ws_clients()``."""
    options = ws_options(**options)
    if hasattr(client, "ws_public"):
        return client.ws_public(**options)
    return client._ws_wiring.register(WSClient(sim.ws_public_url, clock=client.clock, **options))


def test_silent_ws_degrades_goes_down_and_recovers_with_a_reconnect(
    sim: Simulator, client: Any
) -> None:
    client.request("GET", "/api/v5/public/time")
    ws = public_ws(client, sim, ping_interval_s=1.0, pong_timeout_s=0.5)
    ws.on("tickers", lambda item: None)
    ws.start()
    ws.subscribe_and_wait({"channel": "tickers", "instId": "BTC-USDT"})
    thresholds = HealthThresholds(silence_degraded_s=0.3, silence_down_s=0.8, reconnects_degraded=1)
    rec = Recorder()
    prom = PrometheusSink(port=0, registry=prometheus_client.CollectorRegistry())
    reporter = StatsReporter(client, interval_s=0.05, sinks=[rec, prom], thresholds=thresholds)
    try:
        healthy = rec.wait_for(lambda s: s.health.ok and bool(s.ws) and s.ws[0]["messages"] > 0)
        assert healthy.rest is not None and healthy.rest["requests"] == 1
        assert [p.component for p in healthy.health.components] == ["rest", "gate", "ws public"]

        assert sim.faults.silence_ws(kind="public") == 1
        quiet = rec.wait_for(lambda s: ws_part(s).status == "degraded")
        assert ws_part(quiet).reason.startswith("no message for ")
        assert quiet.ws[0]["connected"] is True and quiet.ws[0]["last_recv_age_s"] >= 0.3
        down = rec.wait_for(lambda s: ws_part(s).status == "down")
        assert down.health.status == "down"
        assert ws_part(down).reason.startswith(("no message for ", "not connected"))

        # the heartbeat declares the silent connection dead and reconnects (new connections talk)
        back = rec.wait_for(
            lambda s: (
                s.ws[0]["connected"]
                and s.ws[0]["reconnects"] == 1
                and s.ws[0]["last_recv_age_s"] < 0.3
            )
        )
        assert (ws_part(back).status, ws_part(back).reason) == ("degraded", "1 reconnect in 60 s")
        samples = scrape(prom.url)  # stable for the 60 s window: scrape and parse
        assert metric(samples, "okx_sync_ws_reconnects_total", ws="public", kind="public") == 1
        assert metric(samples, "okx_sync_ws_connected", ws="public", kind="public") == 1
        assert metric(samples, "okx_sync_health", component="ws public") == 1
        assert metric(samples, "okx_sync_health", component="client") == 1
        assert metric(samples, "okx_sync_rest_requests_total") == 1
        assert metric(samples, "okx_sync_ws_desired_subscriptions", ws="public", kind="public") == 1
    finally:
        assert reporter.close()
        ws.close()
    assert not [t.name for t in threading.enumerate() if t.name in OUR_THREADS]


def test_slow_handler_fills_the_queue_then_drains(sim: Simulator, client: Any) -> None:
    release = threading.Event()
    ws = public_ws(
        client,
        sim,
        typed_dispatch=DispatchConfig(queue_size=8, workers=1, overflow=Overflow.BLOCK),
    )
    ws.on("books", lambda item: release.wait(20))
    ws.start()
    rec = Recorder()
    prom = PrometheusSink(port=0, registry=prometheus_client.CollectorRegistry())
    reporter = StatsReporter(client, interval_s=0.05, sinks=[rec, prom])
    try:
        ws.subscribe_and_wait([{"channel": "books", "instId": i} for i in ("BTC-USDT", "ETH-USDT")])
        full = rec.wait_for(lambda s: ws_part(s).status == "down")
        assert ws_part(full).reason == "typed queue at 100% of capacity (8/8)"
        samples = scrape(prom.url)  # the handler is still blocked: the queue stays full
        labels = {"ws": "public", "kind": "public"}
        assert metric(samples, "okx_sync_ws_typed_queue_len", **labels) == 8
        assert metric(samples, "okx_sync_ws_typed_queue_cap", **labels) == 8
        assert metric(samples, "okx_sync_ws_typed_high_water", **labels) == 8
        assert metric(samples, "okx_sync_health", component="ws public") == 2
        assert metric(samples, "okx_sync_health", component="client") == 2

        release.set()
        drained = rec.wait_for(lambda s: s.health.ok)
        assert drained.ws[0]["typed_queue_len"] < 8 and drained.ws[0]["typed_high_water"] == 8
        assert drained.ws[0]["connected"] is True
    finally:
        release.set()
        assert reporter.close()
        ws.close()
    assert not [t.name for t in threading.enumerate() if t.name in OUR_THREADS]


def test_client_health_sees_the_same_ws(sim: Simulator, client: Any) -> None:
    ws = public_ws(client, sim)
    # not started yet: not live, so not judged (and not "down")
    assert client.ws_clients() == [] and client.health().find("ws public") is None
    ws.start()
    try:
        health = client.health()
        assert health.ok and [p.component for p in health.components] == [
            "rest",
            "gate",
            "ws public",
        ]
    finally:
        ws.close()
    # closed by the user: no longer live, the client is healthy again
    assert client.ws_clients() == [] and client.health().ok
    del ws  # dropped clients leave the registry
    import gc

    gc.collect()
    assert client.ws_clients() == []


def test_client_health_thresholds_decide_client_health(sim: Simulator) -> None:
    thresholds = HealthThresholds(silence_degraded_s=0.3, silence_down_s=60.0)
    client = sim_client(sim, health_thresholds=thresholds)
    ws = public_ws(client, sim)
    try:
        assert client.health_monitor.thresholds is thresholds
        ws.start()
        assert client.health().ok
        # the simulator's hub lists the connection a moment after the client's handshake
        assert wait_until(lambda: sim.faults.silence_ws(kind="public") == 1)
        wait_until(lambda: (p := client.health().find("ws public")) is None or not p.ok, 15, 0.05)
        part = client.health().find("ws public")
        assert part is not None and part.status == "degraded", part
        assert part.reason.startswith("no message for ")
        # the same client judged with the default thresholds (25 s of silence) is fine
        default = collect_snapshot(client, monitor=HealthMonitor()).health.find("ws public")
        assert default is not None and default.ok
    finally:
        ws.close()
        client.close()


class StuckSink:
    """A sink whose ``emit`` blocks until the test releases it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.closed = threading.Event()

    def emit(self, snapshot: StatsSnapshot) -> None:
        self.entered.set()
        self.release.wait(30)

    def close(self) -> None:
        self.closed.set()


def test_a_stuck_sink_never_blocks_the_trading_path(sim: Simulator, client: Any) -> None:
    sink = StuckSink()
    reporter = StatsReporter(client, interval_s=0.05, sinks=[sink])
    try:
        assert sink.entered.wait(10)  # the reporter thread is inside emit, and stays there
        # REST calls (reads, place, cancel) and health all complete meanwhile
        ticker = client.market.get_ticker(inst_id="BTC-USDT")
        px = client.round_price("BTC-USDT", ticker.bid_px * Decimal("0.9"), rounding=ROUND_DOWN)
        for i in range(5):
            ack = client.trade.place_order(
                inst_id="BTC-USDT",
                td_mode="cash",
                side="buy",
                ord_type="post_only",
                px=px,
                sz="0.001",
                cl_ord_id=f"stuck{i}",
            )
            client.trade.cancel_order(inst_id="BTC-USDT", ord_id=ack.ord_id)
        assert client.account.get_balance() is not None
        assert client.stats().requests >= 12 and client.health() is not None
        assert not sink.release.is_set() and reporter.reports == 1  # still stuck in the first
        # close() gives up after its timeout (documented: False) instead of hanging
        assert reporter.close(timeout_s=0.2) is False
        assert sink.closed.is_set() and reporter.running
    finally:
        sink.release.set()
    # once the sink returns, the thread sees the stop and ends
    assert reporter.close(timeout_s=10) is True and not reporter.running
    assert not [t.name for t in threading.enumerate() if t.name in OUR_THREADS]


def test_book_gap_shows_in_health_and_metrics(sim: Simulator, client: Any) -> None:
    ws = public_ws(client, sim)
    ws.start()
    book = ws.order_book("BTC-USDT")
    rec = Recorder()
    prom = PrometheusSink(port=0, registry=prometheus_client.CollectorRegistry())
    reporter = StatsReporter(client, interval_s=0.05, sinks=[rec, prom])
    try:
        assert book.wait_ready(10)
        rec.wait_for(lambda s: s.health.ok and [b["name"] for b in s.books] == ["books:BTC-USDT"])
        sim.faults.seq_gap("BTC-USDT")
        after = rec.wait_for(
            lambda s: s.books[0]["errors"].get("sequence", 0) == 1 and s.books[0]["in_sync"] is True
        )
        part = after.health.find("book books:BTC-USDT")
        assert part is not None and (part.status, part.reason) == (
            "degraded",
            "1 book error in 60 s",
        )
        samples = scrape(prom.url)
        labels = {"book": "books:BTC-USDT", "channel": "books", "inst_id": "BTC-USDT"}
        assert metric(samples, "okx_sync_book_errors_sequence_total", **labels) == 1
        assert metric(samples, "okx_sync_book_in_sync", **labels) == 1
        assert metric(samples, "okx_sync_book_resyncs_total", **labels) >= 1
        assert metric(samples, "okx_sync_health", component="book books:BTC-USDT") == 1
    finally:
        assert reporter.close()
        book.close()
        ws.close()
    assert client.managed_books() == []
