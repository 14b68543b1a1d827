"""The REST call path through ``Client`` on ``MockTransport`` and a FakeClock (no sockets):
signing, time sync, envelope errors, retries, guards, account-limit refresh, gate budget,
stats, structured logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from rest_mock import Routes, envelope

from okx_sync import (
    APIError,
    Client,
    FakeClock,
    OrderError,
    RequestGateConfig,
    RequestStateError,
    RetryPolicy,
    SafeModeError,
    ValidationError,
    is_auth_error,
    is_rate_limit_error,
    is_time_skew_error,
)
from okx_sync.auth import iso_timestamp, prehash, sign
from okx_sync.rest.endpoints import registry
from okx_sync.rest.transport import RawResponse, Request
from okx_sync.testing.mock_transport import json_response

BASE = "https://www.okx.com"
KEY, SECRET, PASS = "key-0123456789abcdef", "mysecret", "pass-phrase-x"
NO_BUCKETS = RequestGateConfig(rate_limits=False)

# okx-v5-facts.md §1.2 vectors
GET_VECTOR = ("2020-12-08T09:08:57.715Z", "OkAjRTXqfIRKxx7SRjIowU96vZPkf4n9X2G+8yduCf4=")
POST_VECTOR = ("2020-03-28T12:21:41.274Z", "5JgIEfkRBluy4x31t6uitZqzoshK+kWWjq9f597WRqQ=")
POST_BODY = (
    '{"instId":"BTC-USDT","tdMode":"isolated","side":"buy","ordType":"limit","px":"1","sz":"1"}'
)


def make_client(routes: Routes, clock: FakeClock | None = None, **kw: Any) -> Client:
    kw.setdefault("gate", NO_BUCKETS)
    kw.setdefault("retry", RetryPolicy(base_delay_s=0.01, jitter=0.0))
    return Client(KEY, SECRET, PASS, clock=clock or FakeClock(), transport=routes.transport, **kw)


@pytest.fixture
def rsps() -> Routes:
    return Routes()


def test_get_is_signed_with_the_query_per_vector(rsps: Routes) -> None:
    rsps.get(BASE + "/api/v5/account/balance", json=envelope([{"totalEq": "1"}]))
    with make_client(rsps, FakeClock(wall_start=1607418537.715)) as client:
        assert client.request("GET", "/api/v5/account/balance", {"ccy": "BTC"}) == [
            {"totalEq": "1"}
        ]
    req = rsps.calls[0]
    assert req.target == "/api/v5/account/balance?ccy=BTC" and not req.body
    assert req.headers["OK-ACCESS-TIMESTAMP"] == GET_VECTOR[0]
    assert req.headers["OK-ACCESS-SIGN"] == GET_VECTOR[1]
    assert req.headers["OK-ACCESS-KEY"] == KEY
    assert req.headers["OK-ACCESS-PASSPHRASE"] == PASS
    assert req.headers["Content-Type"] == "application/json"
    assert "x-simulated-trading" not in req.headers


def test_post_body_is_the_signed_json_per_vector(rsps: Routes) -> None:
    rsps.post(BASE + "/api/v5/trade/order", json=envelope([{"ordId": "1", "sCode": "0"}]))
    params = json.loads(POST_BODY)
    with make_client(rsps, FakeClock(wall_start=1585398101.274)) as client:
        assert client.request("POST", "/api/v5/trade/order", params)[0]["ordId"] == "1"
    req = rsps.calls[0]
    assert req.body == POST_BODY.encode()
    assert req.headers["OK-ACCESS-TIMESTAMP"] == POST_VECTOR[0]
    assert req.headers["OK-ACCESS-SIGN"] == POST_VECTOR[1]


def test_query_encoding_and_signature_match_what_is_sent(rsps: Routes) -> None:
    rsps.get(BASE + "/api/v5/trade/orders-history", json=envelope())
    with make_client(rsps) as client:
        client.request(
            "GET",
            "/api/v5/trade/orders-history",
            {"instType": "SPOT", "instId": "BTC-USDT", "x": None, "y": "", "flag": True},
        )
    req = rsps.calls[0]
    assert req.target == "/api/v5/trade/orders-history?instType=SPOT&instId=BTC-USDT&flag=true"
    ts = req.headers["OK-ACCESS-TIMESTAMP"]
    assert req.headers["OK-ACCESS-SIGN"] == sign(SECRET, prehash(ts, "GET", req.target, ""))


def test_post_without_params_sends_and_signs_empty_object(rsps: Routes) -> None:
    rsps.post(BASE + "/api/v5/account/set-position-mode", json=envelope())
    with make_client(rsps) as client:
        client.request("POST", "/api/v5/account/set-position-mode")
    req = rsps.calls[0]
    assert req.body == b"{}"
    ts = req.headers["OK-ACCESS-TIMESTAMP"]
    expected = sign(SECRET, prehash(ts, "POST", "/api/v5/account/set-position-mode", "{}"))
    assert req.headers["OK-ACCESS-SIGN"] == expected


def test_demo_header_and_unsigned_public_calls(rsps: Routes) -> None:
    rsps.get(BASE + "/api/v5/public/time", json=envelope([{"ts": "1700000000000"}]))
    with Client(demo=True, clock=FakeClock(), gate=NO_BUCKETS, transport=rsps.transport) as client:
        client.request("GET", "/api/v5/public/time")
    req = rsps.calls[0]
    assert req.headers["x-simulated-trading"] == "1"
    assert not [h for h in req.headers if h.upper().startswith("OK-ACCESS")]


def test_unknown_path_reached_and_signed_when_credentials_exist(
    rsps: Routes,
) -> None:
    rsps.get(BASE + "/api/v5/brand/new-endpoint", json=envelope([{"x": "1"}]))
    with make_client(rsps) as client:
        assert client.request("get", "/api/v5/brand/new-endpoint", {"a": 1}) == [{"x": "1"}]
    assert "OK-ACCESS-SIGN" in rsps.calls[0].headers


def test_sync_time_uses_round_trip_midpoint_and_later_signatures_use_it(
    rsps: Routes,
) -> None:
    clock = FakeClock(wall_start=1_700_000_000.0)

    def server_time(request: Request) -> RawResponse:
        clock.advance(0.1)  # 100 ms on the way out ...
        server_ms = int(clock.time() * 1000) + 5000  # server is 5 s ahead
        clock.advance(0.1)  # ... and 100 ms back
        return json_response(envelope([{"ts": str(server_ms)}]))

    rsps.add_callback("GET", BASE + "/api/v5/public/time", server_time)
    rsps.get(BASE + "/api/v5/account/balance", json=envelope())
    with make_client(rsps, clock) as client:
        assert client.time_offset_ms == 0
        assert client.sync_time() == 5000
        assert client.time_offset_ms == 5000
        assert client.now_ms() == int(clock.time() * 1000) + 5000
        client.request("GET", "/api/v5/account/balance")
        expected_ts = iso_timestamp(int(clock.time() * 1000) + 5000)
    assert rsps.calls[1].headers["OK-ACCESS-TIMESTAMP"] == expected_ts


def _time_skew_then(rsps: Routes, clock: FakeClock, bodies: list[Any]) -> None:
    for status, body in bodies:
        rsps.get(BASE + "/api/v5/account/balance", status=status, json=body)
    rsps.add_callback(
        "GET",
        BASE + "/api/v5/public/time",
        lambda req: json_response(envelope([{"ts": str(int(clock.time() * 1000) + 40_000)}])),
    )


def test_50102_resyncs_and_resigns_once_automatically(rsps: Routes) -> None:
    clock = FakeClock()
    skew = (401, envelope(code="50102", msg="Timestamp request expired"))
    _time_skew_then(rsps, clock, [skew, (200, envelope([{"ok": "1"}]))])
    with make_client(rsps, clock) as client:
        assert client.request("GET", "/api/v5/account/balance") == [{"ok": "1"}]
        stats = client.stats()
    paths = [c.target for c in rsps.calls]
    assert paths == ["/api/v5/account/balance", "/api/v5/public/time", "/api/v5/account/balance"]
    first, second = rsps.calls[0].headers, rsps.calls[2].headers
    assert second["OK-ACCESS-TIMESTAMP"] == iso_timestamp(int(clock.time() * 1000) + 40_000)
    assert second["OK-ACCESS-SIGN"] != first["OK-ACCESS-SIGN"]
    # the clock sync is a call of its own: two successes, one retry
    assert stats.resyncs == 1 and stats.successes == 2 and stats.retries == 1


def test_time_skew_gives_up_after_one_resync(rsps: Routes) -> None:
    clock = FakeClock()
    skew = (401, envelope(code="50112", msg="Invalid OK-ACCESS-TIMESTAMP"))
    _time_skew_then(rsps, clock, [skew, skew])
    with make_client(rsps, clock) as client, pytest.raises(APIError) as info:
        client.request("GET", "/api/v5/account/balance")
    assert info.value.code == "50112" and is_time_skew_error(info.value)
    paths = [c.target for c in rsps.calls]
    assert paths.count("/api/v5/public/time") == 1 and len(paths) == 3


def test_api_error_fields_and_request_id(rsps: Routes) -> None:
    rsps.get(
        BASE + "/api/v5/account/positions",
        json=envelope(code="51001", msg="Instrument ID does not exist"),
        headers={"x-request-id": "req-77"},
    )
    rsps.post(BASE + "/api/v5/account/set-leverage", status=400, json=envelope(code="51000"))
    with make_client(rsps) as client:
        with pytest.raises(APIError) as info:
            client.request("GET", "/api/v5/account/positions", {"instId": "NOPE"})
        err = info.value
        assert (err.code, err.msg, err.http_status, err.request_id) == (
            "51001",
            "Instrument ID does not exist",
            200,
            "req-77",
        )
        assert (err.method, err.path, err.data) == ("GET", "/api/v5/account/positions", [])
        with pytest.raises(APIError) as info:
            client.request("POST", "/api/v5/account/set-leverage", {"lever": "5"})
        assert info.value.request_id is None and info.value.http_status == 400


def test_error_helpers_classify_real_responses(rsps: Routes) -> None:
    rsps.get(BASE + "/api/v5/account/config", status=401, json=envelope(code="50113"))
    rsps.get(BASE + "/api/v5/account/balance", status=429, json=envelope(code="50011"))
    with make_client(rsps, retry=RetryPolicy.none()) as client:
        with pytest.raises(APIError) as auth:
            client.request("GET", "/api/v5/account/config")
        with pytest.raises(APIError) as limited:
            client.request("GET", "/api/v5/account/balance")
    assert is_auth_error(auth.value) and not is_rate_limit_error(auth.value)
    assert is_rate_limit_error(limited.value) and not is_auth_error(limited.value)
    for code in ("50061", "50040", "50013", "51113", "58102", "60014", "60023"):
        assert is_rate_limit_error(APIError(code, ""))
    for code in ("50100", "50101", "50105", "60005", "60009"):
        assert is_auth_error(APIError(code, ""))
    assert is_auth_error(APIError("", "", http_status=401))
    for code in ("50102", "50112", "60004", "60006"):
        assert is_time_skew_error(APIError(code, ""))
    assert not is_time_skew_error(APIError("50113", ""))


ITEMS = [
    {"clOrdId": "b1", "ordId": "9001", "tag": "", "ts": "1", "sCode": "0", "sMsg": "", "subCode": ""},
    {"clOrdId": "b2", "ordId": "", "tag": "", "ts": "1", "sCode": "51008", "sMsg": "Insufficient",
     "subCode": "1000"},
]  # fmt: skip


@pytest.mark.parametrize("code,items", [("2", ITEMS), ("1", ITEMS[1:])])
def test_order_error_carries_every_item_and_is_not_retried(
    rsps: Routes, code: str, items: list[dict[str, str]]
) -> None:
    rsps.post(BASE + "/api/v5/trade/batch-orders", json=envelope(items, code=code, msg="failed"))
    orders = [{"instId": "BTC-USDT", "clOrdId": i["clOrdId"], "sz": "1"} for i in items]
    with make_client(rsps) as client, pytest.raises(OrderError) as info:
        client.request("POST", "/api/v5/trade/batch-orders", orders)
    err = info.value
    assert err.code == code and len(rsps.calls) == 1
    assert [i.cl_ord_id for i in err.items] == [i["clOrdId"] for i in items]
    assert [i.cl_ord_id for i in err.failed] == ["b2"]
    assert [i.ord_id for i in err.succeeded] == (["9001"] if code == "2" else [])


def test_get_503_is_retried_honouring_retry_after(
    rsps: Routes, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    rsps.get(
        BASE + "/api/v5/market/ticker",
        status=503,
        json=envelope(code="50001", msg="Service temporarily unavailable"),
        headers={"Retry-After": "2"},
    )
    rsps.get(BASE + "/api/v5/market/ticker", json=envelope([{"last": "1"}]))
    caplog.set_level(logging.DEBUG, logger="okx_sync.rest")
    with make_client(rsps, clock) as client:
        assert client.request("GET", "/api/v5/market/ticker", {"instId": "BTC-USDT"})
        stats = client.stats()
    assert clock.sleeps == [2.0]
    assert stats.retries == 1 and stats.attempts == 2 and stats.successes == 1
    records = [r for r in caplog.records if r.name == "okx_sync.rest"]
    assert [(r.levelno, r.retry_index) for r in records] == [  # type: ignore[attr-defined]
        (logging.WARNING, 0),
        (logging.DEBUG, 1),
    ]
    failed = records[0]
    assert failed.__dict__["code"] == "50001" and failed.__dict__["http_status"] == 503
    assert failed.__dict__["okx_msg"] == "Service temporarily unavailable"
    for name in ("method", "path", "request_id", "stage", "dispatched", "latency_s"):
        assert name in failed.__dict__


def test_order_entry_not_retried_on_uncertain_server_error(rsps: Routes) -> None:
    rsps.post(BASE + "/api/v5/trade/order", status=500, json=envelope(code="50026"))
    with make_client(rsps) as client, pytest.raises(APIError):
        client.request("POST", "/api/v5/trade/order", {"instId": "BTC-USDT", "clOrdId": "c1"})
    assert len(rsps.calls) == 1


def test_rate_limited_order_is_retried(rsps: Routes) -> None:
    clock = FakeClock()
    rsps.post(BASE + "/api/v5/trade/order", status=429, json=envelope(code="50011"))
    rsps.post(BASE + "/api/v5/trade/order", json=envelope([{"sCode": "0", "ordId": "5"}]))
    with make_client(rsps, clock) as client:
        data = client.request("POST", "/api/v5/trade/order", {"instId": "BTC-USDT"})
    assert data[0]["ordId"] == "5" and len(rsps.calls) == 2 and clock.sleeps == [0.01]


def test_stats_count_calls_codes_retries_and_keep_last_errors(
    rsps: Routes,
) -> None:
    rsps.get(BASE + "/api/v5/account/balance", json=envelope())
    rsps.get(BASE + "/api/v5/account/config", json=envelope(code="50120", msg="no permission"))
    with make_client(rsps, retry=RetryPolicy.none()) as client:
        for _ in range(3):
            client.request("GET", "/api/v5/account/balance")
        for _ in range(2):
            with pytest.raises(APIError):
                client.request("GET", "/api/v5/account/config")
        stats = client.stats()
        errors = client._rest.recent_errors()
    assert (stats.requests, stats.successes, stats.failures) == (5, 3, 2)
    assert stats.failures_by_code == {"50120": 2} and stats.retries == 0
    assert stats.latency_s.samples == 5
    assert set(stats.latency_s.to_dict()) >= {"p50", "p90", "p99", "max"}
    assert len(errors) == 2 and tuple(errors) == stats.last_errors
    assert errors[0]["class"] == "APIError" and errors[0]["msg"] == "no permission"
    assert {"code", "request_id", "stage", "dispatched", "method", "path", "latency_s",
            "retry_index"} <= set(errors[0])  # fmt: skip
    json.dumps(stats.to_dict())


def test_guards_run_before_the_gate_and_may_refuse(rsps: Routes) -> None:
    rsps.post(BASE + "/api/v5/trade/cancel-order", json=envelope([{"sCode": "0"}]))
    seen: list[tuple[Any, Any]] = []

    def safe_mode(endpoint: Any, params: Any) -> None:
        seen.append((endpoint, params))
        if endpoint is not None and endpoint.order_action in ("place", "amend"):
            raise SafeModeError("safe mode is on", reason="drill")

    with make_client(rsps) as client:
        client._rest.add_guard(safe_mode)
        with pytest.raises(SafeModeError):
            client.request("POST", "/api/v5/trade/order", {"instId": "BTC-USDT"})
        client.request("POST", "/api/v5/trade/cancel-order", {"instId": "BTC-USDT", "ordId": "1"})
        client._rest.remove_guard(safe_mode)
        assert client.gate_stats().admitted == 1
    assert [c.target for c in rsps.calls] == ["/api/v5/trade/cancel-order"]
    assert seen[0][0] is registry().get("POST", "/api/v5/trade/order")
    assert seen[0][1] == {"instId": "BTC-USDT"}


def test_named_method_path_is_the_same_call(rsps: Routes) -> None:
    rsps.get(BASE + "/api/v5/public/instruments", json=envelope([{"instId": "BTC-USDT"}]))
    endpoint = registry().get("GET", "/api/v5/public/instruments")
    assert endpoint is not None
    with make_client(rsps) as client:
        data = client._rest.call(endpoint, {"instType": "SPOT"}, headers={"expTime": "1"})
        with pytest.raises(ValidationError, match="cannot be set"):
            client._rest.call(endpoint, {}, headers={"OK-ACCESS-SIGN": "x"})
    assert data == [{"instId": "BTC-USDT"}]
    assert rsps.calls[0].headers["expTime"] == "1"


def test_account_limit_refreshed_before_orders(rsps: Routes) -> None:
    rsps.get(
        BASE + "/api/v5/trade/account-rate-limit",
        json=envelope([{"accRateLimit": "2000", "ts": "1"}]),
    )
    rsps.post(BASE + "/api/v5/trade/order", json=envelope([{"sCode": "0"}]))
    with make_client(rsps, gate=RequestGateConfig()) as client:
        client.request("POST", "/api/v5/trade/order", {"instId": "BTC-USDT", "sz": "1"})
        client.request("POST", "/api/v5/trade/order", {"instId": "BTC-USDT", "sz": "1"})
        assert client._gate.account_order_limit == 2000
    assert [c.target for c in rsps.calls] == [
        "/api/v5/trade/account-rate-limit",
        "/api/v5/trade/order",
        "/api/v5/trade/order",
    ]


def test_account_limit_refreshed_every_refresh_account_limit_s(
    rsps: Routes,
) -> None:
    acc_url = BASE + "/api/v5/trade/account-rate-limit"
    rsps.get(acc_url, json=envelope([{"accRateLimit": "2000", "ts": "1"}]))
    rsps.get(acc_url, json=envelope([{"accRateLimit": "2500", "ts": "2"}]))
    rsps.post(BASE + "/api/v5/trade/order", json=envelope([{"sCode": "0"}]))
    clock = FakeClock(start=1000.0)
    config = RequestGateConfig(refresh_account_limit_s=600.0)
    with make_client(rsps, clock, gate=config) as client:

        def place_and_count_loads() -> int:
            client.request("POST", "/api/v5/trade/order", {"instId": "BTC-USDT", "sz": "1"})
            return sum(c.target == "/api/v5/trade/account-rate-limit" for c in rsps.calls)

        assert place_and_count_loads() == 1  # never loaded: before the first order
        assert client.gate_stats().account_order_limit.limit == 2000
        clock.advance(599.0)
        assert place_and_count_loads() == 1  # not due yet
        clock.advance(1.0)
        assert place_and_count_loads() == 2  # refresh_account_limit_s after the last load
        acc = client.gate_stats().account_order_limit
        assert (acc.limit, acc.loaded_age_s, acc.load_failures) == (2500, 0.0, 0)
        assert place_and_count_loads() == 2
    loads_and_orders = [c.target.rsplit("/", 1)[1] for c in rsps.calls]
    assert loads_and_orders == ["account-rate-limit", "order", "order"] * 2


def test_failed_account_limit_refresh_warns_and_order_goes_ahead(
    rsps: Routes, caplog: pytest.LogCaptureFixture
) -> None:
    # 503/50001 would be retried for any other call: the refresh makes one attempt
    rsps.get(BASE + "/api/v5/trade/account-rate-limit", status=503, json=envelope(code="50001"))
    rsps.post(BASE + "/api/v5/trade/order", json=envelope([{"sCode": "0", "ordId": "7"}]))
    clock = FakeClock()
    with make_client(rsps, clock, gate=RequestGateConfig()) as client:
        data = client.request("POST", "/api/v5/trade/order", {"instId": "BTC-USDT", "sz": "1"})
        assert client._gate.account_order_limit == 1000  # OKX's default kept
    assert data[0]["ordId"] == "7" and clock.sleeps == []
    assert [c.target for c in rsps.calls] == [
        "/api/v5/trade/account-rate-limit",
        "/api/v5/trade/order",
    ]
    assert any("refresh failed" in r.getMessage() for r in caplog.records)
    assert all(r.levelno == logging.WARNING for r in caplog.records if "refresh" in r.getMessage())


# ----------------------------------------------------------------- per-call gate timeout

BALANCE_URL = BASE + "/api/v5/account/balance"
FULL_BUCKET = RequestGateConfig(burst_fraction=1.0)  # 9 balance calls fill its 2 s window


def test_gate_timeout_per_call_overrides_wait_timeout(rsps: Routes) -> None:
    rsps.get(BALANCE_URL, json=envelope([{"totalEq": "1"}]))
    clock = FakeClock(start=100.0)
    with make_client(rsps, clock, gate=FULL_BUCKET, retry=RetryPolicy.none()) as client:
        for _ in range(9):
            client.request("GET", "/api/v5/account/balance")
        with pytest.raises(RequestStateError) as info:
            client.request("GET", "/api/v5/account/balance", gate_timeout_s=0.5)
        assert (info.value.stage, info.value.dispatched) == ("gate", False)
        assert clock.monotonic() == pytest.approx(100.5)  # waited its 0.5 s, not 30
        assert len(rsps.calls) == 9  # nothing sent
        # the same call on the default wait_timeout_s waits for the window and goes out
        client.request("GET", "/api/v5/account/balance")
        assert clock.monotonic() == pytest.approx(102.0) and len(rsps.calls) == 10
        # RestCore.call takes it too
        balance = registry().get("GET", "/api/v5/account/balance")
        assert balance is not None
        for _ in range(8):
            client._rest.call(balance, None)
        with pytest.raises(RequestStateError, match="within 0.25 s"):
            client._rest.call(balance, None, gate_timeout_s=0.25)
        for bad in (-1, True, "1", float("nan")):
            with pytest.raises(ValidationError, match="gate_timeout_s"):
                client.request("GET", "/api/v5/account/balance", gate_timeout_s=bad)
    assert len(rsps.calls) == 18


def test_gate_timeout_bounds_the_total_gate_wait_of_a_retried_call(
    rsps: Routes,
) -> None:
    for _ in range(9):
        rsps.get(BALANCE_URL, json=envelope([{"totalEq": "1"}]))
    rsps.get(BALANCE_URL, status=429, json=envelope(code="50011", msg="Too Many Requests"))
    rsps.get(BALANCE_URL, json=envelope([{"totalEq": "2"}]))
    clock = FakeClock(start=100.0)
    with make_client(rsps, clock, gate=FULL_BUCKET) as client:
        for _ in range(9):
            client.request("GET", "/api/v5/account/balance")
        # 1st attempt waits 2 s for the window and gets a 429; the retry would wait
        # another 2 s (the bucket's hold): each under 3 s, together over it.
        with pytest.raises(RequestStateError) as info:
            client.request("GET", "/api/v5/account/balance", gate_timeout_s=3.0)
        assert (info.value.stage, info.value.dispatched) == ("gate", False)
        assert len(rsps.calls) == 10  # the retry was not sent
        errors = client._rest.recent_errors()
        assert [(e["stage"], e["retry_index"]) for e in errors[-2:]] == [
            ("response", 0),
            ("gate", 1),
        ]
        assert errors[-1]["msg"].startswith("not admitted by the request gate within 1 s")
        # without a per-call bound the retry waits out the hold and succeeds
        data = client.request("GET", "/api/v5/account/balance")
    assert data == [{"totalEq": "2"}]


def test_account_limit_load_waits_on_the_orders_gate_budget(
    rsps: Routes,
) -> None:
    rsps.get(BASE + "/api/v5/trade/account-rate-limit", json=envelope([{"ts": "1"}]))
    rsps.post(BASE + "/api/v5/trade/order", json=envelope([{"sCode": "0", "ordId": "9"}]))
    clock = FakeClock(start=100.0)
    with make_client(rsps, clock, gate=RequestGateConfig(account_limit_retry_s=0.1)) as client:
        # A user's own call without a usable accRateLimit: the load stays due (after a
        # 0.1 s backoff), and its 1/s bucket is busy for 1.11 s.
        client.request("GET", "/api/v5/trade/account-rate-limit")
        clock.advance(0.2)
        data = client.request(
            "POST", "/api/v5/trade/order", {"instId": "BTC-USDT", "sz": "1"}, gate_timeout_s=0.5
        )
        assert data[0]["ordId"] == "9"  # the order still went out ...
        assert clock.monotonic() == pytest.approx(100.7)  # ... after 0.5 s of gate wait in all
        acc = client.gate_stats().account_order_limit
        assert acc.last_error == "account-rate-limit call not admitted by the gate"
    assert [c.target for c in rsps.calls] == [
        "/api/v5/trade/account-rate-limit",
        "/api/v5/trade/order",
    ]
