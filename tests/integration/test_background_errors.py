"""Client(on_background_error=fn): errors no caller sees reach one callback (besides the
log), from account-limit loads, reporter sinks, dead-man refreshes, periodic clock syncs and
the client's WS clients; the callback's own exceptions are logged, never propagated."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from okx_sync import Client, FakeClock, RequestGateConfig, StatsReporter
from okx_sync.errors import OkxError, ValidationError
from okx_sync.rest.transport import Request
from okx_sync.sim import Simulator
from okx_sync.testing import MockTransport, sim_client, wait_until
from okx_sync.testing.mock_transport import json_response


class Seen:
    """The callback: records (source, error) and wakes waiters."""

    def __init__(self, raise_with: BaseException | None = None) -> None:
        self.items: list[tuple[str, BaseException]] = []
        self.cond = threading.Condition()
        self.raise_with = raise_with

    def __call__(self, source: str, error: BaseException) -> None:
        with self.cond:
            self.items.append((source, error))
            self.cond.notify_all()
        if self.raise_with is not None:
            raise self.raise_with

    def wait_for(self, prefix: str, timeout: float = 10.0) -> tuple[str, BaseException]:
        with self.cond:
            assert self.cond.wait_for(
                lambda: any(s.startswith(prefix) for s, _ in self.items), timeout
            ), self.items
            return next(i for i in self.items if i[0].startswith(prefix))


def okx(path_codes: dict[str, str]) -> MockTransport:
    def answer(req: Request) -> Any:
        code = path_codes.get(req.target.split("?")[0], "0")
        data = [{"ordId": "1", "clOrdId": "", "sCode": "0", "sMsg": ""}] if code == "0" else []
        return json_response({"code": code, "msg": "" if code == "0" else "busy", "data": data})

    return MockTransport(answer)


ORDER = {"inst_id": "BTC-USDT", "td_mode": "cash", "side": "buy", "ord_type": "market",
         "sz": "1", "validate": False}  # fmt: skip


def test_account_limit_load_failure_reaches_the_callback_and_the_order_goes_ahead() -> None:
    seen = Seen()
    transport = okx({"/api/v5/trade/account-rate-limit": "50026"})
    with Client(
        "k", "s", "p", transport=transport, clock=FakeClock(), on_background_error=seen
    ) as c:
        c.trade.place_order(**ORDER)
    source, error = seen.wait_for("account_limit", timeout=0)
    assert isinstance(error, OkxError) and "50026" in str(error)


def test_callback_exceptions_are_logged_once_then_summarised_never_propagated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="okx_sync")
    seen = Seen(raise_with=RuntimeError("callback bug"))
    transport = okx({"/api/v5/trade/account-rate-limit": "50026"})
    clock = FakeClock()
    with Client("k", "s", "p", transport=transport, clock=clock, on_background_error=seen,
                gate=RequestGateConfig(account_limit_retry_s=1)) as c:  # fmt: skip
        for _ in range(3):
            c.trade.place_order(**ORDER)  # the callback raising does not reach the caller
            clock.advance(400)  # the next load is due again
        assert c._background.handler_errors == 3
    tracebacks = [r for r in caplog.records if "on_background_error" in r.getMessage()]
    assert tracebacks[0].exc_info and "callback bug" in tracebacks[0].getMessage()
    assert len(seen.items) == 3


def test_reporter_sink_failure_reaches_the_callback() -> None:
    class BadSink:
        def emit(self, snapshot: Any) -> None:
            raise OSError("disk full")

    seen = Seen()
    with Client(transport=okx({}), clock=FakeClock(), on_background_error=seen) as c:
        reporter = StatsReporter(c, sinks=[BadSink()], start=False)
        reporter.report_now()
        reporter.close()
    source, error = seen.wait_for("reporter", timeout=0)
    assert "BadSink" in source and isinstance(error, OSError)


def test_periodic_time_sync_failure_reaches_the_callback() -> None:
    seen = Seen()
    transport = okx({"/api/v5/public/time": "50001"})
    with Client(transport=transport, time_sync_interval_s=10, on_background_error=seen):
        source, error = seen.wait_for("time_sync")
    assert isinstance(error, OkxError)


def test_dead_man_refresh_failure_reaches_the_callback() -> None:
    seen = Seen()
    clock = FakeClock(wall_start=time.time(), auto_advance=False)
    with Simulator(seed=7, auto_tick=False, ws=False, clock=clock) as sim:
        with sim_client(sim, clock=clock, on_background_error=seen) as client:
            switch = client.dead_man_switch(timeout_s=10, refresh_s=2)
            sim.faults.server_errors(500, count=1, path="/api/v5/trade/cancel-all-after")
            clock.advance(2)
            source, error = seen.wait_for("okx-dead-man")
            assert isinstance(error, OkxError)
            clock.advance(2)
            assert wait_until(lambda: switch.stats().refreshes == 2)
            clock.advance(1.2)
            assert switch.stop() is True


def test_ws_errors_of_the_clients_it_built_reach_the_callback() -> None:
    seen = Seen()
    with Simulator(seed=3, auto_tick=False) as sim:
        with sim_client(sim, on_background_error=seen) as client:
            ws = client.ws_public()
            ws.start()
            ws.subscribe({"channel": "tickers", "instId": "NOPE-USDT"})
            source, error = seen.wait_for("ws public")
    assert source == "ws public" and "NOPE-USDT" in str(error)


def test_on_background_error_must_be_callable() -> None:
    with pytest.raises(ValidationError, match="on_background_error"):
        Client(on_background_error="log it")  # type: ignore[arg-type]
