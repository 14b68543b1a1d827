"""Typed models of WS pushes (okx_sync.models.ws.push_parser) on real recorded OKX messages."""

from __future__ import annotations

import json
from decimal import Decimal

from okx_sync.models import Balance, Candle, Order, Ticker, Trade
from okx_sync.models.ws import BalanceAndPosition, BookUpdate, push_parser
from tests.conftest import realdata_path


def build_all(msg):
    build = push_parser(msg["arg"]["channel"])
    assert build is not None, msg["arg"]
    return [build(msg["arg"], item, msg.get("action")) for item in msg["data"]]


def ccxt_pushes(channel):
    cases = json.loads(realdata_path("ccxt", "ws_okx_fixture_messages_extract.json").read_text())
    return [
        m
        for c in cases["cases"]
        for m in c["messages"]
        if "data" in m and m.get("arg", {}).get("channel") == channel
    ]


def test_tickers_real_pushes():
    pushes = ccxt_pushes("tickers")
    assert pushes
    for msg in pushes:
        (t,) = build_all(msg)
        item = msg["data"][0]
        assert isinstance(t, Ticker)
        assert t.inst_id == item["instId"] and t.last == Decimal(item["last"])
        assert t.bid_px == Decimal(item["bidPx"]) and t.ts == int(item["ts"])


def test_books5_real_pushes_keep_wire_strings():
    pushes = ccxt_pushes("books5")
    assert pushes
    for msg in pushes:
        (b,) = build_all(msg)
        item = msg["data"][0]
        assert isinstance(b, BookUpdate)
        assert b.channel == "books5" and b.inst_id == msg["arg"]["instId"]
        assert b.is_snapshot and b.action == "snapshot"  # books5 carries no action
        assert b.asks == tuple(item["asks"]) and b.bids == tuple(item["bids"])
        assert b.best_bid() == (Decimal(item["bids"][0][0]), Decimal(item["bids"][0][1]))
        assert b.levels("asks")[0] == (Decimal(item["asks"][0][0]), Decimal(item["asks"][0][1]))
        assert b.seq_id == item.get("seqId") and b.checksum is None and b.ts == int(item["ts"])


def test_books_update_fields_and_equality():
    msg = json.loads(realdata_path("nautilus", "ws_books_update.json").read_text())
    (b,) = build_all(msg)
    item = msg["data"][0]
    assert b.action == "update" and not b.is_snapshot
    assert (b.prev_seq_id, b.seq_id) == (item["prevSeqId"], item["seqId"])
    assert b.checksum == item["checksum"]
    assert b == BookUpdate.from_okx(msg)
    assert b.raw is item  # the reader's hot path does not copy


def test_candles_trades_orders_account():
    (c,) = build_all(ccxt_pushes("candle1m")[0])
    assert isinstance(c, Candle) and c.inst_id and isinstance(c.c, Decimal)
    for line in realdata_path("gocryptotrader", "wsAllTrades.json").read_text().splitlines():
        (t,) = build_all(json.loads(line))
        assert isinstance(t, Trade) and t.inst_id == "BTC-USDT" and t.side in ("buy", "sell")
    states = []
    for line in realdata_path("gocryptotrader", "wsOrders.json").read_text().splitlines()[1:]:
        (o,) = build_all(json.loads(line))
        assert isinstance(o, Order)
        states.append(o.state)
    assert states == ["live", "partially_filled", "filled"]
    (acct,) = build_all(json.loads(realdata_path("nautilus", "ws_account.json").read_text()))
    assert isinstance(acct, Balance)


def test_balance_and_position_documented_shape():
    item = {
        "pTime": "1597026383085",
        "eventType": "snapshot",
        "balData": [{"ccy": "BTC", "cashBal": "1", "uTime": "1597026383085"}],
        "posData": [
            {
                "posId": "1111111111",
                "tradeId": "2",
                "instId": "BTC-USD-191018",
                "instType": "FUTURES",
                "mgnMode": "cross",
                "posSide": "long",
                "pos": "10",
                "ccy": "BTC",
                "posCcy": "",
                "avgPx": "3320",
                "uTime": "1597026383085",
            }
        ],
        "trades": [{"instId": "BTC-USD-191018", "tradeId": "2"}],
    }
    msg = {"arg": {"channel": "balance_and_position", "uid": "77"}, "data": [item]}
    (bp,) = build_all(msg)
    assert isinstance(bp, BalanceAndPosition) and bp.event_type == "snapshot"
    assert bp.balances[0].ccy == "BTC" and bp.balances[0].cash_bal == Decimal("1")
    pos = bp.positions[0]
    assert pos.inst_id == "BTC-USD-191018" and pos.pos == Decimal("10") and pos.pos_ccy is None
    assert bp.trades == (("BTC-USD-191018", "2"),)


def test_channels_without_a_model_get_dicts():
    assert push_parser("mark-price") is None
    assert push_parser("liquidation-warning") is None
    assert push_parser("mark-price-candle1m") is not None
    assert push_parser("candle1Dutc") is not None
