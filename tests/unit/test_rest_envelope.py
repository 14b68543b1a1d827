"""rest.envelope: response -> data or APIError/OrderError (pure)."""

from __future__ import annotations

import json
import math

from requests.structures import CaseInsensitiveDict

from okx_sync.errors import APIError, OrderError
from okx_sync.models.order import OrderAck
from okx_sync.rest.envelope import interpret, parse_retry_after


def _body(code: str, msg: str = "", data: list | None = None) -> bytes:
    return json.dumps({"code": code, "msg": msg, "data": data or []}).encode()


def _h(**kw: str) -> CaseInsensitiveDict:
    return CaseInsensitiveDict({k.replace("_", "-"): v for k, v in kw.items()})


def test_success_returns_data_and_request_id() -> None:
    out = interpret(
        200, _h(X_Request_Id="abc"), _body("0", data=[{"ts": "1"}]), method="GET", path="/p"
    )
    assert out.ok and out.error is None
    assert out.data == [{"ts": "1"}]
    assert out.request_id == "abc" and out.code == "0"


def test_non_zero_code_is_api_error_with_every_field() -> None:
    out = interpret(
        200,
        _h(**{"x-request-id": "rid-9"}),
        _body("51000", "Parameter instId error"),
        method="POST",
        path="/api/v5/trade/order",
    )
    err = out.error
    assert isinstance(err, APIError) and not isinstance(err, OrderError)
    assert (err.code, err.msg, err.http_status) == ("51000", "Parameter instId error", 200)
    assert (err.request_id, err.method, err.path, err.data) == (
        "rid-9",
        "POST",
        "/api/v5/trade/order",
        [],
    )
    assert "51000" in str(err) and "rid-9" in str(err)


def test_non_2xx_body_parsed_whatever_the_status() -> None:
    out = interpret(
        429, _h(), b'{"msg":"Too Many Requests","code":"50011"}', method="GET", path="/x"
    )
    assert isinstance(out.error, APIError)
    assert out.error.code == "50011" and out.error.http_status == 429
    assert out.error.request_id is None


def test_non_2xx_with_code_zero_is_still_failure() -> None:
    out = interpret(500, _h(), _body("0"), method="GET", path="/x")
    assert isinstance(out.error, APIError) and out.error.http_status == 500
    assert "HTTP 500" in out.error.msg


def test_non_json_body_names_the_problem() -> None:
    out = interpret(502, _h(), b"<html>\n  <b>Bad   Gateway</b>\n</html>", method="GET", path="/x")
    err = out.error
    assert isinstance(err, APIError) and err.code == "" and err.http_status == 502
    assert "non-JSON" in err.msg and "<b>Bad Gateway</b>" in err.msg
    out = interpret(200, _h(), b"[1, 2]", method="GET", path="/x")
    assert isinstance(out.error, APIError) and "not an envelope" in out.error.msg
    out = interpret(200, _h(), b'{"data": []}', method="GET", path="/x")
    assert isinstance(out.error, APIError) and "no OKX code" in out.error.msg


def test_order_entry_code_1_and_2_carry_every_item() -> None:
    items = [
        {"clOrdId": "a1", "ordId": "11", "tag": "", "ts": "1", "sCode": "0", "sMsg": ""},
        {
            "clOrdId": "a2",
            "ordId": "",
            "tag": "t",
            "ts": "1",
            "sCode": "51008",
            "sMsg": "Insufficient USDT",
            "subCode": "1000",
        },
    ]
    out = interpret(
        200,
        _h(),
        _body("2", "Batch partially succeeded", items),
        method="POST",
        path="/api/v5/trade/batch-orders",
        order_entry=True,
    )
    err = out.error
    assert isinstance(err, OrderError)
    assert all(isinstance(i, OrderAck) for i in err.items)
    assert [i.cl_ord_id for i in err.items] == ["a1", "a2"]
    assert [i.cl_ord_id for i in err.succeeded] == ["a1"]
    assert [(i.s_code, i.sub_code, i.tag) for i in err.failed] == [("51008", "1000", "t")]
    assert err.cl_ord_ids == ("a1", "a2") and err.code == "2"
    assert "a2=51008" in str(err)

    out = interpret(
        200, _h(), _body("1", "", items[1:]), method="POST", path="/p", order_entry=True
    )
    assert isinstance(out.error, OrderError) and len(out.error.items) == 1


def test_code_1_outside_order_entry_is_plain_api_error() -> None:
    out = interpret(200, _h(), _body("1", "failed"), method="POST", path="/p")
    assert type(out.error) is APIError


def test_retry_after_parsing() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    # a delta naming no usable hold means "as long as allowed": the caller caps it
    for hostile in ("-3", "nan", "inf", "-inf", "Infinity", "1e400"):
        assert parse_retry_after(hostile) == math.inf, hostile
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after(date) is None  # a date needs "now"
    assert parse_retry_after(date, now=1445412470.0) == 10.0
    assert parse_retry_after(date, now=1445412490.0) == 0.0  # already past: no wait
    out = interpret(503, _h(Retry_After="3"), _body("50001"), method="GET", path="/x")
    assert out.retry_after_s == 3.0


# -- nautilus' recorded OKX error bodies (../shared/realdata/nautilus), read in place -----


def _recorded(name: str) -> bytes:
    from tests.conftest import realdata_path

    return realdata_path("nautilus", name).read_bytes()


def test_recorded_invalid_access_key_is_an_auth_api_error() -> None:
    from okx_sync.errors import is_auth_error, is_rate_limit_error

    # OKX answered HTTP 401 (INDEX.md §3); the body has no "data" field
    out = interpret(
        401, _h(), _recorded("http_error_invalid_access_key.json"), method="GET", path="/p"
    )
    err = out.error
    assert type(err) is APIError
    assert (err.code, err.msg, err.http_status, err.data) == (
        "50111", "Invalid OK-ACCESS-KEY", 401, [],
    )  # fmt: skip
    assert is_auth_error(err) and not is_rate_limit_error(err)


def test_recorded_not_found_has_a_numeric_code_read_as_text() -> None:
    from okx_sync.errors import is_auth_error, is_rate_limit_error

    body = _recorded("http_error_not_found.json")
    assert json.loads(body)["code"] == 404  # a number in this body, not OKX's usual string
    out = interpret(404, _h(), body, method="GET", path="/api/v5/no/such/path")
    err = out.error
    assert type(err) is APIError
    assert (err.code, err.msg, err.http_status) == ("404", "Not Found", 404)
    assert (err.method, err.path) == ("GET", "/api/v5/no/such/path")
    assert not is_auth_error(err) and not is_rate_limit_error(err)
    assert "OKX error 404: Not Found" in str(err) and "http=404" in str(err)


def test_recorded_rate_limit_is_a_rate_limit_api_error() -> None:
    from okx_sync.errors import is_rate_limit_error
    from okx_sync.retry import RetryPolicy

    body = _recorded("http_error_rate_limit.json")
    out = interpret(429, _h(Retry_After="1"), body, method="POST", path="/api/v5/trade/order")
    err = out.error
    assert type(err) is APIError
    assert (err.code, err.msg, err.http_status, out.retry_after_s) == (
        "50011", "Too Many Requests", 429, 1.0,
    )  # fmt: skip
    assert is_rate_limit_error(err)
    # nothing executed: even an order may be retried, after at least Retry-After
    decision = RetryPolicy().decide(err, idempotent=False, retry_index=0, retry_after_s=1.0)
    assert decision.retry and decision.delay_s >= 1.0
    # the code alone decides, whatever the status (OKX also sends 50011 with HTTP 200)
    assert is_rate_limit_error(interpret(200, _h(), body, method="GET", path="/p").error)


# -- an order-entry item without sCode is never a success --------------------------------


def test_order_ack_without_s_code_in_a_code_0_answer_is_not_ok() -> None:
    from rest_mock import Routes

    from okx_sync import Client, RequestGateConfig

    malformed = {"ordId": "77", "clOrdId": "c1", "tag": "", "ts": "1", "sMsg": ""}
    mock = Routes()
    mock.post(
        "https://www.okx.com/api/v5/trade/batch-orders",
        json={"code": "0", "msg": "", "data": [malformed, dict(malformed, clOrdId="c2",
                                                                sCode="0")]},
    )  # fmt: skip
    gate = RequestGateConfig(rate_limits=False)
    with Client("env-key-0001", "s", "p", gate=gate, transport=mock.transport) as client:
        order = {"inst_id": "BTC-USDT", "td_mode": "cash", "side": "buy",
                 "ord_type": "limit", "px": "1", "sz": "1"}  # fmt: skip
        acks = client.trade.place_batch_orders(
            orders=[dict(order, cl_ord_id="c1"), dict(order, cl_ord_id="c2")], validate=False
        )
    assert [(a.cl_ord_id, a.s_code, a.ok) for a in acks] == [("c1", None, False), ("c2", "0", True)]
    assert acks[0].ord_id == "77" and acks[0].raw == malformed
