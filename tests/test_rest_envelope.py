"""rest.envelope: response -> data or APIError/OrderError (pure)."""

from __future__ import annotations

import json

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
    assert parse_retry_after("-3") is None
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after(date) is None  # a date needs "now"
    assert parse_retry_after(date, now=1445412470.0) == 10.0
    out = interpret(503, _h(Retry_After="3"), _body("50001"), method="GET", path="/x")
    assert out.retry_after == 3.0
