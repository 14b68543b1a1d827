"""The account order limit protocol (okx_sync.gate.account_limit.AccountLimit) on its own:
due / claim / release / backoff / answers / refresh(load), on a FakeClock, one thread
except where the claim's atomicity is the point."""

from __future__ import annotations

import logging
import threading

import pytest

from okx_sync.clock import FakeClock
from okx_sync.gate import RequestGateConfig
from okx_sync.gate.account_limit import AccountLimit
from okx_sync.rest.endpoints import registry


class Limit:
    """An AccountLimit with a FakeClock and a counter of on_change calls."""

    def __init__(self, **config: object) -> None:
        self.clock = FakeClock(start=0.0)
        self.changes = 0
        self.acc = AccountLimit(
            RequestGateConfig(**config),  # type: ignore[arg-type]
            self.clock,
            self._changed,
        )

    def _changed(self) -> None:
        self.changes += 1


def answer(value: object) -> list[dict[str, object]]:
    return [{"accRateLimit": value}]


def test_starts_from_config_or_the_default_and_is_due_at_once() -> None:
    assert Limit().acc.limit == 1000 and Limit().acc.snapshot()["source"] == "default"
    t = Limit(account_order_limit=300)
    assert t.acc.limit == 300 and t.acc.snapshot()["source"] == "config"
    assert t.acc.due() and t.acc.snapshot()["loaded_age_s"] is None


def test_a_good_answer_sets_the_limit_and_restarts_the_interval(caplog) -> None:
    t = Limit(refresh_account_limit_s=600)
    claim = t.acc.claim()
    assert claim is not None and not t.acc.due()
    with caplog.at_level(logging.INFO, logger="okx_sync.gate"):
        t.acc.observe_answer(200, "0", answer("2500"))
    assert t.acc.limit == 2500 and t.changes == 1
    assert any("set to 2500" in r.getMessage() for r in caplog.records)
    t.acc.release_claim(claim, "unused")  # the outcome is known: a no-op
    assert t.acc.snapshot()["load_failures"] == 0
    t.clock.advance(599.0)
    assert not t.acc.due()
    t.clock.advance(1.0)
    assert t.acc.due()
    assert t.acc.snapshot()["loaded_age_s"] == 600.0


@pytest.mark.parametrize(
    ("status", "code", "data"),
    [
        (503, "50001", None),
        (200, "0", []),
        (200, "0", answer("0")),
        (200, "0", answer("many")),
        (200, "0", [{"other": 1}]),
        (None, "1", answer("900")),
    ],
)
def test_a_bad_answer_keeps_the_limit_and_backs_off(status, code, data, caplog) -> None:
    t = Limit(account_limit_retry_s=5.0)
    assert t.acc.claim() is not None
    with caplog.at_level(logging.WARNING, logger="okx_sync.gate"):
        t.acc.observe_answer(status, code, data)
    assert t.acc.limit == 1000 and t.changes == 0
    snap = t.acc.snapshot()
    assert snap["load_failures"] == 1 and snap["last_error"]
    assert any("load failed" in r.getMessage() for r in caplog.records)
    t.clock.advance(4.999)
    assert not t.acc.due()
    t.clock.advance(0.001)
    assert t.acc.due()


def test_backoff_doubles_per_failure_up_to_the_cap() -> None:
    t = Limit(account_limit_retry_s=100.0)
    waits = []
    for _ in range(4):
        t.acc.load_failed("down")
        start = t.clock.monotonic()
        while not t.acc.due():
            t.clock.advance(1.0)
        waits.append(t.clock.monotonic() - start)
    assert waits == [100.0, 200.0, 300.0, 300.0]
    t.acc.set(700, source="test")  # success resets the backoff
    assert t.acc.snapshot()["last_error"] == ""
    t.clock.advance(3600.0)
    t.acc.load_failed("down again")
    t.clock.advance(100.0)
    assert t.acc.due()


def test_exactly_one_of_racing_threads_gets_the_claim() -> None:
    t = Limit()
    barrier = threading.Barrier(8)
    claims: list[int | None] = []
    lock = threading.Lock()

    def racer() -> None:
        barrier.wait(timeout=10)
        got = t.acc.claim()
        with lock:
            claims.append(got)

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=10)
    assert len(claims) == 8 and len([c for c in claims if c is not None]) == 1


def test_a_claim_never_reported_back_lapses_as_one_failure(caplog) -> None:
    t = Limit(wait_timeout_s=10.0, account_limit_retry_s=5.0)
    assert t.acc.claim() is not None
    t.clock.advance(14.9)  # wait_timeout_s + retry: not yet
    assert not t.acc.due()
    t.clock.advance(0.1)
    with caplog.at_level(logging.WARNING, logger="okx_sync.gate"):
        assert not t.acc.due()  # counted as failed now, backing off
    assert t.acc.snapshot()["load_failures"] == 1
    assert any("got no response" in r.getMessage() for r in caplog.records)


def test_released_claim_without_an_answer_counts_once() -> None:
    t = Limit()
    claim = t.acc.claim()
    assert claim is not None
    t.acc.release_claim(claim, "transport failed")
    t.acc.release_claim(claim, "transport failed")  # twice: still one failure
    assert t.acc.snapshot()["load_failures"] == 1
    assert t.acc.snapshot()["last_error"] == "transport failed"


def test_a_load_admitted_or_timed_out_by_the_gate() -> None:
    t = Limit(account_limit_retry_s=5.0)
    t.acc.load_admitted(0.0)  # a user's own GET: counts as a load on its way
    assert not t.acc.due() and t.acc.claim() is None
    notes: list = []
    t.acc.load_not_admitted(notes)
    assert len(notes) == 1 and notes[0][0] == logging.WARNING
    assert t.acc.snapshot()["load_failures"] == 1


def test_refresh_runs_the_load_once_and_reports_what_it_did_not(caplog) -> None:
    t = Limit()
    loads: list[str] = []

    def good() -> None:
        loads.append("good")
        t.acc.observe_answer(200, "0", answer("1500"))  # the gate's observe

    t.acc.refresh(good)
    t.acc.refresh(good)  # no longer due
    assert loads == ["good"] and t.acc.limit == 1500

    silent = Limit()
    silent.acc.refresh(lambda: None)  # sent nothing, reported nothing
    assert silent.acc.snapshot()["load_failures"] == 1
    assert silent.acc.snapshot()["last_error"] == "the load ended without an answer"

    failing = Limit()

    def boom() -> None:
        raise ConnectionError("refused")

    with caplog.at_level(logging.WARNING, logger="okx_sync.gate"):
        failing.acc.refresh(boom)  # never raises: the order goes ahead
    assert failing.acc.snapshot()["last_error"] == "ConnectionError: refused"
    assert any("refresh failed" in r.getMessage() for r in caplog.records)


def test_rate_limits_off_never_loads() -> None:
    t = Limit(rate_limits=False)
    assert not t.acc.due() and t.acc.claim() is None
    t.acc.refresh(lambda: pytest.fail("loaded with rate limits off"))


def test_set_refuses_a_non_positive_limit_and_is_load_names_the_endpoint() -> None:
    t = Limit()
    with pytest.raises(ValueError):
        t.acc.set(0)
    assert t.acc.limit == 1000 and t.changes == 0
    R = registry()
    assert AccountLimit.is_load(R.get("GET", "/api/v5/trade/account-rate-limit"))
    assert not AccountLimit.is_load(R.get("POST", "/api/v5/trade/order"))
    assert not AccountLimit.is_load(None)
