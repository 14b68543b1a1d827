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


def test_nautilus_mark_price_and_funding_rate_history_stay_dicts() -> None:
    # Not typed endpoints: the named methods return the data items unchanged.
    for name in ("http_get_mark_price.json", "http_get_funding_rate_history.json"):
        data = load("nautilus", name)["data"]
        assert data and all(isinstance(x, dict) for x in data)


def test_nautilus_place_order_rejected() -> None:
    body = load("nautilus", "http_place_order_rejected.json")
    ack = OrderAck.from_okx(body["data"][0])
    assert not ack.ok and ack.s_code == "54109" and ack.cl_ord_id == "Ousdcnotactive1"
    assert ack.raw == body["data"][0]


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
    for case in acks:
        for item in case["httpResponse"]["data"]:
            ack = OrderAck.from_okx(item)
            assert ack.ok and ack.raw == item and ack.cl_ord_id == item["clOrdId"]
    seen = 0
    for case in balances:
        for item in case["httpResponse"]["data"]:
            d = BalanceDetail.from_okx(item)
            assert_lossless(d, item)
            assert d.bal == Decimal(item["bal"]) and d.avail_bal == Decimal(item["availBal"])
            seen += 1
    assert seen >= 1
