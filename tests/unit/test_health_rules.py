"""health() rules for REST p99 latency and for the last reconciliation (failed / drift)."""

from __future__ import annotations

from typing import Any

import pytest

from okx_sync import Client, FakeClock, Reconciler, RetryPolicy
from okx_sync.errors import APIError, ValidationError
from okx_sync.ops.health import HealthThresholds, evaluate_rest
from okx_sync.rest.stats import RestStats
from okx_sync.rest.transport import Request
from okx_sync.testing import MockTransport
from okx_sync.testing.mock_transport import json_response
from tests.stats_support import rest_stats

T = HealthThresholds()


def rest(p99: float, samples: int) -> RestStats:
    return rest_stats(latency={"samples": samples, "p50": 0.01, "p99": p99, "max": p99})


def test_rest_p99_above_threshold_degrades_once_enough_samples() -> None:
    slow = evaluate_rest(rest(2.5, 20), thresholds=T)
    assert slow.status == "degraded" and "p99" in slow.reason and "2.5" in slow.reason
    assert evaluate_rest(rest(2.5, 19), thresholds=T).ok  # too few to judge
    assert evaluate_rest(rest(1.9, 500), thresholds=T).ok
    strict = HealthThresholds(rest_p99_degraded_s=0.5, rest_latency_min_samples=1)
    assert evaluate_rest(rest(0.6, 1), thresholds=strict).status == "degraded"
    with pytest.raises(ValidationError):
        HealthThresholds(rest_p99_degraded_s=0)


def test_client_health_sees_slow_rest_calls() -> None:
    clock = FakeClock()

    def slow(req: Request) -> Any:
        clock.advance(0.3)
        return json_response({"code": "0", "msg": "", "data": [{"ts": "1"}]})

    thresholds = HealthThresholds(rest_p99_degraded_s=0.25, rest_latency_min_samples=5)
    with Client(transport=MockTransport(slow), clock=clock, health_thresholds=thresholds) as c:
        for _ in range(4):
            c.request("GET", "/api/v5/public/time")
        assert c.health().ok
        c.request("GET", "/api/v5/public/time")
        health = c.health()
    assert health.status == "degraded" and health.find("rest").status == "degraded"


PENDING: list[dict[str, Any]] = [{"instId": "BTC-USDT", "ordId": "11", "clOrdId": "a1",
                                  "state": "live"}]  # fmt: skip


def account_client(fail_balance: list[bool]) -> Client:
    def answer(req: Request) -> Any:
        path = req.target.split("?")[0]
        if path == "/api/v5/account/balance" and fail_balance[0]:
            return json_response({"code": "50026", "msg": "system busy", "data": []})
        data: list[Any] = PENDING if path == "/api/v5/trade/orders-pending" else []
        if path == "/api/v5/account/balance":
            data = [{"totalEq": "1", "details": []}]
        return json_response({"code": "0", "msg": "", "data": data})

    return Client("k", "s", "p", transport=MockTransport(answer), clock=FakeClock(),
                  retry=RetryPolicy(max_retries=0))  # fmt: skip


def test_reconciliation_failure_and_drift_degrade_health_until_a_clean_run() -> None:
    fail = [True]
    with account_client(fail) as client:
        assert client.health().find("reconcile") is None  # none ran yet
        with pytest.raises(APIError):
            Reconciler(client).snapshot()
        part = client.health().find("reconcile")
        assert part is not None and part.status == "degraded"
        assert "failed" in part.reason and "50026" in part.reason

        fail[0] = False
        snap = Reconciler(client).snapshot(expected_pending={"a1", "b2"})
        assert snap.drift == ("b2 not pending on OKX",)
        part = client.health().find("reconcile")
        assert part.status == "degraded" and "b2 not pending on OKX" in part.reason
        snap = Reconciler(client).snapshot(expected_pending=[])
        assert snap.drift == ("a1 pending on OKX, not expected",)
        assert snap.to_dict()["drift"] == ["a1 pending on OKX, not expected"]

        snap = Reconciler(client).snapshot(expected_pending=["a1"])
        assert snap.drift == ()
        assert client.health().find("reconcile").ok and client.health().ok
        assert client.health_monitor.last_reconcile["drift"] == ()
        with pytest.raises(ValidationError):
            Reconciler(client).snapshot(expected_pending="a1")
