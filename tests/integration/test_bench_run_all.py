"""benchmarks/run_all.py's own logic: how targets are reported, and the answer delay the
thread section runs its second measurement under (the simulator's ``slow_responses``
fault, set and cleared through the control endpoint)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

import okx_sync
from okx_sync.sim import Simulator

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import run_all  # noqa: E402

pytestmark = pytest.mark.timeout(60)

TICKER = "/api/v5/market/ticker"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    s = Simulator(seed=3, rate_limits=False, auto_tick=False)
    try:
        yield s
    finally:
        s.close()


def test_a_reported_figure_is_never_a_missed_target() -> None:
    reported = run_all.Target("threads (no delay): 64 vs 4", 0.5, None)
    missed = run_all.Target("threads (1 ms per answer): 64 vs 4", 0.9, 1)
    met = run_all.Target("threads (1 ms per answer): errors at 64 threads = 0", -0, 0)
    section = run_all.Section("t", ["a"], targets=[reported, missed, met])
    lines = run_all.summary([section]).splitlines()
    assert lines[2] == "| threads (no delay): 64 vs 4 | 0.50x | (not a target) | reported |"
    assert lines[3] == "| threads (1 ms per answer): 64 vs 4 | 0.90x | >= 1x | **MISSED** |"
    assert lines[4].endswith("| 0 | 0 | met |")
    assert reported.met and not missed.met and met.met


def test_answer_delay_holds_ticker_answers_inside_the_block_only(sim: Simulator) -> None:
    holder = SimpleNamespace(info={"control_url": sim.control_url})
    client = okx_sync.Client(base_url=sim.rest_url)
    try:
        client.request("GET", TICKER, {"instId": "BTC-USDT"})  # connection warm
        with run_all.answer_delay(holder, 0.05, TICKER):
            (armed,) = sim.faults.active()["slow_responses"]
            assert armed["delay_s"] == 0.05 and armed["path"] == TICKER
            t0 = time.monotonic()
            client.request("GET", TICKER, {"instId": "BTC-USDT"})
            assert time.monotonic() - t0 >= 0.05  # held at least the delay
            served = sim.stats()["rest_delayed"]
            assert served == 1
            client.request("GET", "/api/v5/public/time")  # another path: not held
            assert sim.stats()["rest_delayed"] == served
        assert sim.faults.active()["slow_responses"] == []
        client.request("GET", TICKER, {"instId": "BTC-USDT"})
        assert sim.stats()["rest_delayed"] == served
    finally:
        client.close()


def test_answer_delay_clears_the_fault_when_the_block_raises(sim: Simulator) -> None:
    holder = SimpleNamespace(info={"control_url": sim.control_url})
    with pytest.raises(RuntimeError, match="measurement failed"):
        with run_all.answer_delay(holder, 0.01, TICKER):
            raise RuntimeError("measurement failed")
    assert sim.faults.active()["slow_responses"] == []


@pytest.fixture(scope="module")
def stamp_server() -> Iterator[object]:
    """benchmarks/latency.py's stamp server process, one for the contenders (as in a full
    run: each ``plan`` sets the next streams)."""
    import latency

    server = latency.StampProcess(False)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize(
    "name", ["okx_sync inline", "okx_sync pool (1 worker)", "okx_sync pool (4)"]
)
def test_latency_okx_sync_contenders_receive_stamped_pushes(name: str, stamp_server) -> None:
    """benchmarks/latency.py's okx_sync WS contenders run against its stamp server (a
    contender the WS API no longer accepts is listed as skipped in a full run, easy to
    miss: this fails instead)."""
    import latency

    stamp_server.plan(0, 300)
    lat, rate = latency.WS_CLIENTS[name](stamp_server.url, 300, stamp_server.cert, "")
    assert len(lat) == 300 and all(x > 0 for x in lat) and rate > 0
