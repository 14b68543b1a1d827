"""The Client owns what it creates: ``client.close()`` closes every WS client, managed
book, stats reporter and dead-man switch built from it, newest first, and leaves no
okx thread and no open socket behind (okx_sync/lifecycle.py)."""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

import pytest

pytest.importorskip("websockets")

from okx_sync import Client  # noqa: E402
from okx_sync.errors import ValidationError  # noqa: E402
from okx_sync.ops.reporter import StatsReporter, StatsSnapshot  # noqa: E402
from okx_sync.sim import Simulator  # noqa: E402
from okx_sync.testing import sim_client, wait_until  # noqa: E402
from okx_sync.testing.ws_servers import ws_threads  # noqa: E402
from okx_sync.ws.policies import ConnectRateLimiter  # noqa: E402

pytestmark = pytest.mark.timeout(60)

INST = "BTC-USDT"


class Sink:
    """A reporter sink that counts snapshots and its own close() calls."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.snapshots = 0
        self.closes = 0

    def emit(self, snapshot: StatsSnapshot) -> None:
        with self.cond:
            self.snapshots += 1
            self.cond.notify_all()

    def close(self) -> None:
        self.closes += 1

    def wait_first(self, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.snapshots > 0, timeout)


@pytest.fixture
def sim() -> Any:
    with Simulator(seed=17, instruments=[INST], auto_tick=False) as s:
        yield s
    assert not ws_threads(), ws_threads()


def ws_options() -> dict[str, Any]:
    # the simulator does not limit new connections: skip the process-wide 3/s pacing
    return {"connect_limiter": ConnectRateLimiter(rate=100)}


def metrics_sinks() -> list[Any]:
    """A PrometheusSink serving on a free port (its thread okx-metrics-http belongs to the
    reporter), when the ``metrics`` extra is installed."""
    try:
        import prometheus_client
    except ImportError:
        return []
    from okx_sync.ops.prometheus import PrometheusSink

    return [PrometheusSink(port=0, registry=prometheus_client.CollectorRegistry())]


def test_with_block_closes_every_child_no_thread_or_socket_left(sim: Simulator) -> None:
    assert not ws_threads(), ws_threads()
    sink = Sink()
    with sim_client(sim) as client:
        public = client.ws_public(**ws_options()).start()
        book = public.order_book(INST)
        assert book.wait_ready(5)
        private = client.ws_private(**ws_options()).start()
        business = client.ws_business(**ws_options()).start()
        sinks: list[Any] = [sink, *metrics_sinks()]
        reporter = StatsReporter(client, interval_s=0.05, sinks=sinks)
        assert sink.wait_first()
        switch = client.dead_man_switch(timeout_s=60, refresh_s=30)
        assert switch.armed
        running = set(ws_threads())
        if len(sinks) > 1:
            assert "okx-metrics-http" in running, running
        for name in (
            "okx-ws-public-reader",
            "okx-ws-private-reader",
            "okx-ws-business-reader",
            f"okx-book-books-{INST}",
            "okx-stats-reporter",
            "okx-dead-man",
        ):
            assert name in running, running
        assert sorted(c["kind"] for c in sim.ws_connections()) == [
            "business",
            "private",
            "public",
        ]
        assert client.ws_clients() == [public, private, business]
        assert client.managed_books() == [book]
        assert client.dead_man_switches() == [switch]
    # close() joined every thread before returning: nothing to wait for here
    assert not ws_threads(), ws_threads()
    assert client.closed
    assert not public.started and not private.started and not business.started
    assert book.closed
    assert not reporter.running and sink.closes == 1
    assert not switch.running and not switch.armed  # disarmed with timeOut=0
    assert client.ws_clients() == [] and client.managed_books() == []
    assert client.dead_man_switches() == []
    # the simulator's side of the sockets closes on its own loop
    assert wait_until(lambda: sim.ws_connections() == []), sim.ws_connections()


def test_close_is_idempotent_and_skips_children_the_user_closed(sim: Simulator) -> None:
    client = sim_client(sim)
    sink = Sink()
    reporter = StatsReporter(client, interval_s=0.05, sinks=[sink])
    switch = client.dead_man_switch(timeout_s=60, refresh_s=30)
    ws = client.ws_public(**ws_options()).start()
    book = ws.order_book(INST)
    # the user closes some children first: they leave the client's list
    book.close()
    reporter.close()
    assert switch.stop()
    assert len(client._children) == 1  # only ws remains
    ws.close()
    assert len(client._children) == 0
    # closed and started again: owned again, and closed by the client
    ws.start()
    assert client.ws_clients() == [ws]
    client.close()
    assert not ws.started
    assert sink.closes == 1  # the reporter was not closed a second time
    client.close()
    client.close(timeout_s=0.5)
    assert client.closed
    assert not ws_threads(), ws_threads()


def test_creating_and_closing_many_ws_clients_does_not_grow_the_list(sim: Simulator) -> None:
    with sim_client(sim) as client:
        kept = []  # the user keeps references: closing alone must drop them from the list
        for _ in range(200):
            ws = client.ws_public()
            ws.close()
            kept.append(ws)
        assert len(client._children) == 0
        for _ in range(50):
            client.ws_public()  # never started, reference dropped: garbage, not listed
        gc.collect()  # a WSClient holds reference cycles: freed by the collector
        fresh = client.ws_public()
        assert client._children.live() == [fresh]


def test_factories_refuse_after_close(sim: Simulator) -> None:
    client = sim_client(sim)
    ws = client.ws_public()  # built before close, never started
    client.close()
    with pytest.raises(ValidationError, match="closed"):
        ws.order_book(INST)  # its books would outlive the client
    assert ws.managed_books() == [] and ws.desired_subscriptions() == []
    served = sim.stats()["rest_requests"]
    with pytest.raises(ValidationError, match="closed"):
        client.ws_public()
    with pytest.raises(ValidationError, match="closed"):
        client.ws_private()
    with pytest.raises(ValidationError, match="closed"):
        StatsReporter(client, interval_s=1.0, start=False)
    with pytest.raises(ValidationError, match="closed"):
        client.dead_man_switch()
    assert sim.stats()["rest_requests"] == served  # the switch sent nothing
    with pytest.raises(ValidationError, match="timeout_s"):
        client.close(timeout_s=0)


class Child:
    """A child that records its close and fails the way it is told to."""

    def __init__(self, log: list[str], name: str, outcome: object = True) -> None:
        self.log = log
        self.name = name
        self.outcome = outcome

    def close(self, timeout: float) -> bool:
        assert timeout > 0
        self.log.append(self.name)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return bool(self.outcome)


def test_children_close_newest_first_and_failures_name_the_child(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Client()
    order: list[str] = []
    children = [
        Child(order, "oldest"),
        Child(order, "stuck", outcome=False),
        Child(order, "broken", outcome=RuntimeError("socket wedged")),
        Child(order, "newest"),
    ]
    for child in children:
        client._adopt(child, kind="test", label=f"test child {child.name}")
    with caplog.at_level(logging.WARNING, logger="okx_sync.lifecycle"):
        client.close(timeout_s=1.0)
    assert order == ["newest", "broken", "stuck", "oldest"]
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "closing test child broken failed: RuntimeError: socket wedged" in m for m in messages
    ), messages
    assert any("test child stuck did not close cleanly" in m for m in messages), messages
    assert not any("oldest" in m or "newest" in m for m in messages), messages
    assert client.closed


def test_close_from_a_ws_handler_and_another_thread_at_once(sim: Simulator) -> None:
    client = sim_client(sim)
    ws = client.ws_public(**ws_options()).start()
    book = ws.order_book(INST)
    returned = threading.Event()
    errors: list[BaseException] = []

    def on_ticker(_item: Any) -> None:  # runs on the WS reader thread
        try:
            client.close(timeout_s=5.0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        returned.set()

    ws.on("tickers", on_ticker)
    ws.subscribe_and_wait({"channel": "tickers", "instId": INST})
    sim.tick()  # a ticker push: the handler closes the client from the reader thread
    assert returned.wait(10), "close() from a handler did not return"
    client.close()  # a second caller (this thread) waits for the first, bounded
    assert not errors, errors
    assert client.closed and book.closed and not ws.started
    # the reader could not join itself; it ends once the handler returned
    assert wait_until(lambda: not ws_threads()), ws_threads()


class BrokenCloseSink(Sink):
    def close(self) -> None:
        raise OSError("disk gone")


def test_a_reporter_sink_failing_at_client_close_is_logged_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Client()
    reporter = StatsReporter(client, interval_s=1.0, sinks=[BrokenCloseSink()], start=False)
    with caplog.at_level(logging.WARNING):
        client.close()
    assert reporter.sink_errors == {"BrokenCloseSink": 1}
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "stats reporter: handler sink BrokenCloseSink in close() raised OSError: disk gone"
        in messages
    ), messages
