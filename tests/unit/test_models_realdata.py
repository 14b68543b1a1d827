"""Models parse the recorded OKX responses in ../shared/realdata without loss.

"Without loss": the original item is kept as ``raw``; every field a model types
is the exact value of the OKX string (Decimal with the same digits and exponent,
int, bool), "" becomes None; nothing is read through float. One test per file.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import attrs
import pytest

from okx_sync.models import (
    Balance,
    BalanceDetail,
    Candle,
    Instrument,
    Order,
    OrderAck,
    Position,
    Ticker,
    Trade,
)
from okx_sync.models.base import mapped_keys, okx_name
from tests.conftest import realdata_path


def load(*parts: str) -> Any:
    return json.loads(realdata_path(*parts).read_text("utf-8"))


def assert_lossless(model: Any, item: dict[str, Any]) -> None:
    assert model.raw == item
    cls = type(model)
    keys = mapped_keys(cls)
    assert keys, cls
    for f in attrs.fields(cls):
        conv = f.metadata.get("conv")
        if conv is None:
            continue
        key = f.metadata.get("okx") or okx_name(f.name)
        value = getattr(model, f.name)
        orig = item.get(key)
        if orig is None or orig == "":
            assert value is None, (f.name, orig)
        elif isinstance(value, Decimal):
            want = Decimal(str(orig))
            assert value == want and value.as_tuple() == want.as_tuple(), (f.name, orig)
        elif isinstance(value, bool):
            assert value == (str(orig).lower() == "true"), (f.name, orig)
        elif isinstance(value, int):
            assert value == int(orig), (f.name, orig)
        else:
            assert value == str(orig), (f.name, orig)
    # every typed key exists in at least the documented shape; unknown keys stay in raw
    assert set(item) <= set(model.raw)


@pytest.mark.parametrize("kind", ["spot", "swap", "futures", "option", "margin"])
def test_nautilus_instruments(kind: str) -> None:
    data = load("nautilus", f"http_get_instruments_{kind}.json")["data"]
    assert data
    for item in data:
        inst = Instrument.from_okx(item)
        assert_lossless(inst, item)
        assert inst.inst_type == kind.upper()
        assert inst.tick_sz is not None and inst.lot_sz is not None and inst.min_sz is not None
        if "instIdCode" in item:
            assert inst.inst_id_code == item["instIdCode"]


def test_nautilus_account_balance() -> None:
    item = load("nautilus", "http_get_account_balance.json")["data"][0]
    bal = Balance.from_okx(item)
    assert_lossless(bal, item)
    assert len(bal.details) == len(item["details"])
    for d, raw in zip(bal.details, item["details"], strict=True):
        assert_lossless(d, raw)
    usdt = bal.detail("USDT")
    assert usdt is not None and usdt.avail_bal == Decimal("94.42612990333333")


def test_nautilus_orders_history() -> None:
    for item in load("nautilus", "http_get_orders_history.json")["data"]:
        order = Order.from_okx(item)
        assert_lossless(order, item)
        assert order.reduce_only is False and order.state == "filled" and not order.is_live


def test_nautilus_positions_history() -> None:
    for item in load("nautilus", "http_get_account_positions-history.json")["data"]:
        pos = Position.from_okx(item)
        assert_lossless(pos, item)
        assert pos.close_avg_px == Decimal("3224.8")


def test_nautilus_trades() -> None:
    for item in load("nautilus", "http_get_trades.json")["data"]:
        assert_lossless(Trade.from_okx(item), item)


def test_nautilus_candlesticks() -> None:
    rows = load("nautilus", "http_get_candlesticks_full.json")["data"]
    for row in rows:
        c = Candle.from_okx(row)
        assert c.raw == tuple(row)
        assert (str(c.ts), c.o, c.h, c.l, c.c) == (row[0], *(Decimal(x) for x in row[1:5]))
        assert (c.vol, c.vol_ccy, c.vol_ccy_quote) == tuple(Decimal(x) for x in row[5:8])
        assert c.confirm is (row[8] == "1")


def test_nautilus_index_price_as_ticker() -> None:
    for item in load("nautilus", "http_get_index_price.json")["data"]:
        t = Ticker.from_okx(item)
        assert_lossless(t, item)
        assert t.sod_utc8 == Decimal(item["sodUtc8"]) and t.raw["idxPx"] == item["idxPx"]


@pytest.mark.parametrize(
    ("name", "method", "path", "kwargs", "query"),
    [
        ("http_get_mark_price.json", "get_mark_price", "/api/v5/public/mark-price",
         {"inst_type": "SWAP"}, "instType=SWAP"),
        ("http_get_funding_rate_history.json", "get_funding_rate_history",
         "/api/v5/public/funding-rate-history", {"inst_id": "BTC-USDT-SWAP"},
         "instId=BTC-USDT-SWAP"),
    ],
)  # fmt: skip
def test_nautilus_record_endpoints_and_raw_request(
    name: str, method: str, path: str, kwargs: dict[str, str], query: str
) -> None:
    # Endpoints without a core model: the named method returns their generated records
    # (lossless: raw is the item, every typed field read exactly); client.request
    # returns OKX's data unchanged.
    from rest_mock import Routes

    from okx_sync import Client, RequestGateConfig
    from okx_sync.models.records import Record
    from okx_sync.rest.endpoints import registry
    from okx_sync.rest.named import RESULTS, result_record
    from okx_sync.testing.mock_transport import json_response

    body = realdata_path("nautilus", name).read_bytes()
    data = json.loads(body)["data"]
    endpoint = registry().get("GET", path)
    assert endpoint is not None and endpoint.key not in RESULTS and endpoint.name == method
    mock = Routes()
    mock.add_callback("GET", path, lambda _req: json_response(body))
    no_buckets = RequestGateConfig(rate_limits=False)
    with Client(gate=no_buckets, transport=mock.transport) as client:
        got = getattr(client.public, method)(**kwargs)
        raw = client.request("GET", path, {k: v for k, v in (query.split("="),)})
    sent = mock.calls[0].target
    assert raw == data and all(type(x) is dict for x in raw)
    assert len(got) == len(data) >= 1
    for rec, item in zip(got, data, strict=True):
        assert type(rec) is result_record(endpoint) and isinstance(rec, Record)
        assert rec.raw == item
        for attr, okx, _conv in type(rec)._okx_fields:
            value = getattr(rec, attr)
            if okx in item and isinstance(value, Decimal):
                assert str(value) == item[okx]  # the exact digits
            elif okx in item and isinstance(value, int):
                assert str(value) == item[okx]  # ms timestamps
            elif okx in item:
                assert value == (item[okx] or None)
    assert sent == f"{path}?{query}"


ACK_FIELDS = (
    ("ord_id", "ordId"),
    ("cl_ord_id", "clOrdId"),
    ("tag", "tag"),
    ("sub_code", "subCode"),
    ("req_id", "reqId"),
)


def assert_ack_lossless(ack: OrderAck, item: dict[str, Any]) -> None:
    """Every field of an order-entry item, as OKX sent it ("" -> None; ts an int)."""
    assert ack.raw == item
    for attr, key in ACK_FIELDS:
        assert getattr(ack, attr) == (item.get(key) or None), (attr, item.get(key))
    assert ack.ts == (int(item["ts"]) if item.get("ts") else None)
    assert ack.s_code == item["sCode"] and ack.s_msg == item["sMsg"]
    assert ack.ok is (item["sCode"] == "0")


def test_nautilus_place_order_rejected() -> None:
    from okx_sync.errors import OrderError
    from okx_sync.rest.envelope import interpret

    raw = realdata_path("nautilus", "http_place_order_rejected.json").read_bytes()
    body = json.loads(raw)
    item = body["data"][0]
    ack = OrderAck.from_okx(item)
    assert_ack_lossless(ack, item)
    assert (ack.s_code, ack.cl_ord_id, ack.ts) == ("54109", "Ousdcnotactive1", 1790000000000)
    assert ack.ord_id is None and ack.tag is None and ack.sub_code is None
    # as the REST core reads the whole answer: code "1" -> OrderError with that item
    out = interpret(200, {}, raw, method="POST", path="/api/v5/trade/order", order_entry=True)
    err = out.error
    assert isinstance(err, OrderError) and (err.code, err.msg) == ("1", "All operations failed")
    assert err.items == (ack,) and err.failed == (ack,) and not err.succeeded
    assert err.cl_ord_ids == ("Ousdcnotactive1",) and "Ousdcnotactive1=54109" in str(err)


def test_cryptofeed_instrument_lines() -> None:
    path = realdata_path("cryptofeed", "OKX.0.lines21-26")
    counts: dict[str, int] = {}
    for line in path.read_text("utf-8").splitlines():
        if "/api/v5/public/instruments" not in line:
            continue
        body = json.loads(line.split(": ", 1)[1])
        assert body["code"] == "0"
        for item in body["data"]:
            inst = Instrument.from_okx(item)
            assert_lossless(inst, item)
            counts[inst.inst_type or ""] = counts.get(inst.inst_type or "", 0) + 1
    assert counts["SPOT"] == 513 and counts["SWAP"] == 166 and counts["FUTURES"] == 104
    assert counts["OPTION"] == 346 + 350


def test_ccxt_rest_extract() -> None:
    cases = load("ccxt", "rest_okx_response_extract.json")["cases"]
    acks = [c for c in cases if c["method"] == "createOrder"]
    balances = [c for c in cases if c["method"] == "fetchBalance"]
    assert acks and balances
    seen_acks = 0
    for case in acks:
        for item in case["httpResponse"]["data"]:
            ack = OrderAck.from_okx(item)
            assert_ack_lossless(ack, item)
            assert ack.ok and ack.cl_ord_id == item["clOrdId"] and ack.tag == item["tag"]
            seen_acks += 1
    assert seen_acks == len(acks)
    seen = 0
    for case in balances:
        for item in case["httpResponse"]["data"]:
            d = BalanceDetail.from_okx(item)
            assert_lossless(d, item)
            assert d.bal == Decimal(item["bal"]) and d.avail_bal == Decimal(item["availBal"])
            seen += 1
    assert seen >= 1
