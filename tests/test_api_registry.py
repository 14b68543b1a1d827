"""Every registry endpoint's named method sends the right request through the real
REST core: method, path, query or JSON body with OKX names, and the signing headers
exactly when the endpoint is private (HTTP mocked with ``responses``)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from okx_sync.auth import prehash, sign
from okx_sync.client import Client
from okx_sync.rest.endpoints import Endpoint, registry
from okx_sync.rest.named import RESULTS, group_attr
from okx_sync.rest.params import batch_keyword, params_for

BASE = "https://www.okx.com"
RATE_LIMIT = "/api/v5/trade/account-rate-limit"
KEY, SECRET, PASSPHRASE = "key-1", "secret-1", "pass-1"

# A minimal data item per typed single-object result, so the model can be built.
ONE_ITEM: dict[str, dict[str, Any]] = {
    "ServerTime": {"ts": "1700000000000"},
    "OrderAck": {"ordId": "1", "clOrdId": "", "sCode": "0", "sMsg": ""},
}
AUTH_HEADERS = ("OK-ACCESS-KEY", "OK-ACCESS-SIGN", "OK-ACCESS-TIMESTAMP", "OK-ACCESS-PASSPHRASE")


def _value(okx: str) -> Any:
    # distinct, recognisable values; numbers as Decimal to exercise the conversion
    return Decimal("1.5") if okx in ("px", "sz", "amt") else f"v-{okx}"


def _wire(okx: str) -> str:
    return "1.5" if okx in ("px", "sz", "amt") else f"v-{okx}"


def call_args(ep: Endpoint) -> tuple[dict[str, Any], Any]:
    """Keyword arguments with every required parameter (and one optional), and the
    OKX params the request must carry."""
    spec = params_for(ep)
    chosen = [p for p in spec.params if p.required == "yes"]
    optional = [p for p in spec.params if p.required != "yes"]
    if optional:
        chosen.append(optional[0])
    kwargs = {p.snake: _value(p.okx) for p in chosen}
    wire = {p.okx: _wire(p.okx) for p in chosen}
    if spec.kind == "items":
        return {batch_keyword(ep): [kwargs]}, [wire]
    return kwargs, wire


def response_data(ep: Endpoint) -> list[Any]:
    spec = RESULTS.get(ep.key)
    if spec is None or spec[1]:
        return []
    return [ONE_ITEM.get(spec[0].__name__, {})]


@pytest.fixture(scope="module")
def client() -> Any:
    c = Client(KEY, SECRET, PASSPHRASE)
    yield c
    c.close()


@responses.activate
@pytest.mark.parametrize("ep", list(registry()), ids=lambda e: f"{e.method} {e.path}")
def test_named_method_sends_the_right_request(client: Any, ep: Endpoint) -> None:
    if ep.path != RATE_LIMIT:
        # the REST core may refresh the account order limit before order entry
        responses.add(
            responses.GET,
            BASE + RATE_LIMIT,
            json={"code": "0", "msg": "", "data": [{"accRateLimit": "1000", "ts": "1"}]},
        )
    body = {"code": "0", "msg": "", "data": response_data(ep)}
    responses.add(
        responses.GET if ep.method == "GET" else responses.POST,
        BASE + ep.path,
        json=body,
        status=200,
    )
    kwargs, wire = call_args(ep)
    if ep.key in (
        ("POST", "/api/v5/trade/order"),
        ("POST", "/api/v5/trade/batch-orders"),
        ("POST", "/api/v5/trade/amend-order"),
        ("POST", "/api/v5/trade/amend-batch-orders"),
    ):
        kwargs["validate"] = False  # instrument rules are tested separately
    method = getattr(getattr(client, group_attr(ep.group)), ep.name)
    method(**kwargs)

    sent = [
        c.request
        for c in responses.calls
        if ep.path == RATE_LIMIT or RATE_LIMIT not in c.request.url
    ]
    assert len(sent) == 1, [r.url for r in sent]
    req = sent[0]
    url = urlsplit(req.url)
    assert req.method == ep.method and url.path == ep.path
    if ep.method == "GET":
        assert dict(parse_qsl(url.query, keep_blank_values=True)) == wire
        assert not req.body
        request_path = ep.path + (f"?{url.query}" if url.query else "")
        signed_body = ""
    else:
        assert json.loads(req.body) == wire
        request_path = ep.path
        signed_body = req.body.decode() if isinstance(req.body, bytes) else req.body
    if ep.private:
        for h in AUTH_HEADERS:
            assert req.headers.get(h), h
        assert req.headers["OK-ACCESS-KEY"] == KEY
        assert req.headers["OK-ACCESS-PASSPHRASE"] == PASSPHRASE
        ts = req.headers["OK-ACCESS-TIMESTAMP"]
        assert req.headers["OK-ACCESS-SIGN"] == sign(
            SECRET, prehash(ts, ep.method, request_path, signed_body)
        )
    else:
        for h in AUTH_HEADERS:
            assert h not in req.headers, h


@responses.activate
def test_exp_time_travels_as_a_request_header(client: Any) -> None:
    responses.add(
        responses.POST,
        BASE + "/api/v5/trade/cancel-order",
        json={"code": "0", "msg": "", "data": [ONE_ITEM["OrderAck"]]},
    )
    client.trade.cancel_order(inst_id="BTC-USDT", ord_id="1", exp_time=1_700_000_000_000)
    (req,) = [c.request for c in responses.calls if "cancel-order" in c.request.url]
    assert req.headers["expTime"] == "1700000000000"
