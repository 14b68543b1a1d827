"""Log lines a person can read: the facts (code, OKX msg, arg, URL, cause) are in the message
text itself, and a user handler that raises on every message logs one traceback, then a
count summarised at most once per window (HandlerErrorSummary, on a FakeClock).

The gate's slow-wait line is tested in test_gate.py, 51603 at DEBUG and the reconcile
lines in test_reconcile.py."""

from __future__ import annotations

import logging
import threading

import pytest

from okx_sync import WSClient
from okx_sync.clock import FakeClock
from okx_sync.errors import WSError, WSSubscribeError
from okx_sync.handler_errors import (
    HandlerErrorSummary,
    flush_handler_errors,
    report_handler_error,
)
from okx_sync.sim import Simulator
from okx_sync.testing import wait_until
from okx_sync.testing.ws_servers import ws_options, ws_threads
from okx_sync.ws.config import WSConfig
from okx_sync.ws.dispatch import DispatchConfig, DispatchMode
from okx_sync.ws.policies import BackoffPolicy, ConnectRateLimiter

INST = "BTC-USDT"
BTC_TICKER = {"channel": "tickers", "instId": INST}


@pytest.fixture
def sim():
    with Simulator(seed=23, book_interval_s=0.02, tick_interval_s=0.01) as s:
        yield s
    assert not ws_threads(), ws_threads()


def public(sim: Simulator, **kw) -> WSClient:
    kw.setdefault("backoff", BackoffPolicy(initial=0.02, maximum=0.2))
    kw.setdefault("connect_limiter", ConnectRateLimiter(rate=100))
    return WSClient(sim.ws_public_url, **ws_options(**kw))


def messages(caplog: pytest.LogCaptureFixture, *needles: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if all(n in r.getMessage() for n in needles)]


# --------------------------------------------------------------------------- the policy


def test_summary_policy_one_traceback_then_one_line_per_window() -> None:
    clock = FakeClock(start=0.0)
    policy = HandlerErrorSummary(monotonic=clock.monotonic, window_s=10.0)
    first = policy.record("on('tickers')", ValueError("bad 0"))
    assert first.traceback and first.summary is None
    for i in range(1, 1234):  # the rest of the first 10 s: counted, nothing logged
        clock.advance(0.008)
        decision = policy.record("on('tickers')", ValueError(f"bad {i}"))
        assert not decision.traceback and decision.summary is None
    other = policy.record("on_raw", KeyError("k"))  # per handler: its own traceback
    assert other.traceback
    clock.advance(10.0 - clock.monotonic())
    due = policy.record("on('tickers')", ValueError("bad last"))
    assert not due.traceback
    assert due.summary == (
        "handler on('tickers') raised 1,234 times in 10 s: last ValueError: bad last"
    )
    clock.advance(1.0)  # a new window started with the summary: counted again
    assert policy.record("on('tickers')", ValueError("x")).summary is None
    assert policy.flush() == ["handler on('tickers') raised 1 times in 1 s: last ValueError: x"]
    assert policy.flush() == []  # flushed once
    clock.advance(30.0)  # quiet for a whole window with nothing pending: a new burst
    assert policy.record("on('tickers')", ValueError("again")).traceback
    with pytest.raises(ValueError):
        HandlerErrorSummary(monotonic=clock.monotonic, window_s=0)


def test_report_handler_error_logs_the_decision(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(start=0.0)
    policy = HandlerErrorSummary(monotonic=clock.monotonic)
    logger = logging.getLogger("okx_sync.test_logs")
    caplog.set_level(logging.DEBUG, logger="okx_sync.test_logs")
    for i in range(5):
        report_handler_error(logger, policy, "h", ValueError(f"v{i}"), "ws x: ", {"ws": "x"})
        clock.advance(3.0)  # the 5th failure comes at 12 s: the summary is due
    flush_handler_errors(logger, policy, "ws x: ", {"ws": "x"})  # nothing pending any more
    assert [(r.getMessage(), bool(r.exc_info)) for r in caplog.records] == [
        ("ws x: handler h raised ValueError: v0", True),
        ("ws x: handler h raised 4 times in 12 s: last ValueError: v4", False),
    ]
    assert caplog.records[0].__dict__["ws"] == "x" and caplog.records[1].__dict__["handler"] == "h"


# --------------------------------------------------------------------------- WS lines


def test_ws_subscribe_error_line_names_code_msg_arg_and_url(sim, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="okx_sync.ws")
    bad = {"channel": "tickers", "instId": "NOPE-USDT"}
    with public(sim) as ws, pytest.raises(WSSubscribeError) as info:
        ws.subscribe_and_wait([BTC_TICKER, bad])
    okx_msg = info.value.msg
    assert okx_msg
    (line,) = messages(caplog, "subscribe error")
    assert "60018" in line and repr(okx_msg) in line
    assert "{channel=tickers,instId=NOPE-USDT}" in line and sim.ws_public_url in line
    (dropped,) = messages(caplog, "rejected by OKX")
    assert "60018" in dropped and "instId=NOPE-USDT" in dropped


def test_ws_connect_failure_line_names_url_attempt_and_cause(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="okx_sync.ws")
    url = "ws://127.0.0.1:9/ws/v5/public"
    ws = WSClient(
        url, config=WSConfig(connect_timeout_s=0.5), connect_limiter=ConnectRateLimiter(rate=100)
    )
    with pytest.raises(WSError):
        ws.start(timeout_s=0.8)
    lines = messages(caplog, "connect to", "failed")
    assert lines, [r.getMessage() for r in caplog.records]
    assert url in lines[0] and "attempt 1" in lines[0]
    cause = caplog.records[[r.getMessage() for r in caplog.records].index(lines[0])]
    assert cause.__dict__["error"].split(":")[0] in lines[0]  # the exception class, in the text
    assert not ws_threads()


def test_book_resync_line_names_book_and_cause(caplog) -> None:
    caplog.set_level(logging.INFO, logger="okx_sync.ws")
    with Simulator(seed=21, auto_tick=False) as sim:
        ws = public(sim).start()
        try:
            book = ws.order_book(INST)
            assert book.wait_ready(5)
            sim.faults.seq_gap(INST)
            for _ in range(2):  # one update never sent, the next arrives with a gap
                before = sim.exchange.book(INST).seq_id
                while sim.exchange.book(INST).seq_id == before:
                    sim.tick()
            target = sim.exchange.book(INST).seq_id
            assert wait_until(lambda: book.resyncs == 1 and book.in_sync)
            assert wait_until(lambda: book.seq_id == target)
        finally:
            for b in ws.managed_books():
                b.close()
            ws.close()
    (lost,) = messages(caplog, "out of sync")
    assert lost.startswith(f"order book books {INST} out of sync (public); resubscribing: ")
    assert "OrderBookSequenceError" in lost and "prevSeqId" in lost
    assert messages(caplog, f"order book books {INST} in sync at seqId")


@pytest.mark.parametrize("mode", ["inline", "pool"])
def test_a_handler_raising_on_every_message_logs_one_traceback_then_a_count(
    sim, caplog, mode
) -> None:
    caplog.set_level(logging.WARNING, logger="okx_sync.ws")
    calls = threading.Semaphore(0)

    def broken(_ticker) -> None:
        calls.release()
        raise ValueError("broken handler")

    ws = public(sim, typed_dispatch=DispatchConfig(mode=DispatchMode(mode)))
    ws.on("tickers", broken)
    with ws:
        ws.subscribe_and_wait(BTC_TICKER)
        for _ in range(20):
            assert calls.acquire(timeout=5)
        assert wait_until(lambda: ws.stats().handler_errors >= 20)
    total = ws.stats().handler_errors
    raised = [r for r in caplog.records if "handler on('tickers') raised" in r.getMessage()]
    tracebacks = [r for r in raised if r.exc_info]
    assert len(tracebacks) == 1
    assert tracebacks[0].getMessage() == (
        "ws public: handler on('tickers') raised ValueError: broken handler"
    )
    summaries = [r.getMessage() for r in raised if not r.exc_info]
    assert summaries and all("last ValueError: broken handler" in s for s in summaries)
    counted = sum(
        int(s.split(" raised ")[1].split(" times")[0].replace(",", "")) for s in summaries
    )
    assert counted + 1 == total >= 20  # each failure counted once: a traceback or a summary
