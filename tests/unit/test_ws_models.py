"""Typed models of WS pushes (okx_sync.models.ws.push_parser) on real recorded OKX messages."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from okx_sync.models import Balance, BookLevel, Candle, Fill, Order, Position, Ticker, Trade
from okx_sync.models.ws import BalanceAndPosition, BookUpdate, push_parser
from tests.conftest import realdata_path


def build_all(msg):
    build = push_parser(msg["arg"]["channel"])
    assert build is not None, msg["arg"]
    return [build(msg["arg"], item, msg.get("action")) for item in msg["data"]]


def level(wire):
    """The BookLevel of a wire level ``[px, sz, "0", numOrders]``, spelled out here."""
    return BookLevel(Decimal(wire[0]), Decimal(wire[1]), int(wire[3]))


def test_book_update_parses_levels_lazily_and_once():
    """Building a BookUpdate on the reader parses nothing; each side is parsed on its first
    read (and kept), best_bid/best_ask parse only the first level; raw stays the wire item."""
    item = {
        "bids": [["100.5", "2", "0", "3"], ["oops", "1", "0", "1"]],  # 2nd level unparsable
        "asks": [["101", "0.25", "0", "1"]],
        "ts": "1700000000000",
        "checksum": 0,
        "prevSeqId": 4,
        "seqId": 5,
    }
    build = push_parser("books")
    assert build is not None
    b = build({"channel": "books", "instId": "BTC-USDT"}, item, "update")  # no parse, no copy
    assert isinstance(b, BookUpdate) and b.raw is item
    assert b.best_bid() == BookLevel(Decimal("100.5"), Decimal("2"), 3)  # the first level only
    asks = b.asks
    assert asks == (BookLevel(Decimal("101"), Decimal("0.25"), 1),) and b.asks is asks  # kept
    assert b.best_ask() is asks[0]
    with pytest.raises(ValueError, match="oops"):
        b.bids  # noqa: B018 - the whole side is parsed on first read
    assert (b.seq_id, b.prev_seq_id, b.checksum, b.ts) == (5, 4, 0, 1700000000000)
    fresh = build({"channel": "books", "instId": "BTC-USDT"}, item, "update")
    assert fresh == b  # the parsed cache is no part of equality
    empty = build({"channel": "bbo-tbt", "instId": "BTC-USDT"}, {"bids": [], "ts": "1"}, None)
    assert empty.bids == () and empty.asks == () and empty.best_bid() is None
    assert empty.best_ask() is None and empty.is_snapshot


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
        assert b.raw["asks"] is item["asks"] and b.raw["bids"] is item["bids"]  # wire strings
        assert b.asks == tuple(map(level, item["asks"]))
        assert b.bids == tuple(map(level, item["bids"]))
        assert b.best_bid() == level(item["bids"][0]) == b.bids[0]
        assert b.best_ask() == level(item["asks"][0]) == b.asks[0]
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


def test_documented_channels_get_records_and_unknown_channels_get_dicts():
    assert push_parser("no-such-channel") is None
    mark = push_parser("mark-price")({"channel": "mark-price"}, {"markPx": "0.1", "ts": "1"}, None)
    assert type(mark).__name__ == "MarkPricePush" and str(mark.mark_px) == "0.1" and mark.ts == 1
    assert push_parser("liquidation-warning") is not None
    assert push_parser("mark-price-candle1m") is not None
    assert push_parser("candle1Dutc") is not None


def test_bbo_tbt_real_pushes():
    """bbo-tbt: OKJ's V5 clone recorded live (2026) and the OKX docs example."""
    frames = [
        json.loads(line)
        for line in realdata_path("okj-probe-doc", "okj_v5_frames_trimmed.jsonl")
        .read_text()
        .splitlines()
        if '"bbo-tbt"' in line
    ]
    frames.append(json.loads(realdata_path("nautilus", "ws_bbo_tbt.json").read_text()))
    assert len(frames) == 2
    for msg in frames:
        (b,) = build_all(msg)
        item = msg["data"][0]
        assert isinstance(b, BookUpdate) and b.channel == "bbo-tbt"
        assert b.inst_id == msg["arg"]["instId"] and b.is_snapshot  # no action: a full book
        assert b.best_bid() == level(item["bids"][0])
        assert b.best_ask() == level(item["asks"][0])
        assert b.seq_id == item["seqId"] and b.checksum is None and b.prev_seq_id is None
        assert b.ts == int(item["ts"])


def test_positions_documented_shape():
    """The ``positions`` push of the OKX docs (facts §6.3: the REST position fields;
    no public recording has one). Empty strings become None."""
    item = {
        "adl": "1",
        "availPos": "1",
        "avgPx": "2566.31",
        "cTime": "1619507758793",
        "ccy": "ETH",
        "imr": "",
        "instId": "ETH-USD-210430",
        "instType": "FUTURES",
        "interest": "0",
        "idxPx": "2566.13",
        "last": "2566.22",
        "lever": "10",
        "liab": "",
        "liabCcy": "",
        "liqPx": "2352.8496681818233",
        "markPx": "2353.849",
        "margin": "0.0003896645377994",
        "mgnMode": "isolated",
        "mgnRatio": "11.731726509588816",
        "mmr": "0.0000311811092368",
        "notionalUsd": "2276.2546609009605",
        "pTime": "1619507761462",
        "pos": "1",
        "posCcy": "",
        "posId": "307173036051017730",
        "posSide": "long",
        "tradeId": "109844",
        "uTime": "1619507761462",
        "upl": "-0.0000009932766034",
        "uplRatio": "-0.0025490556801078",
        "realizedPnl": "0.001",
        "pnl": "0.0011",
        "fee": "-0.0001",
        "fundingFee": "0",
        "liqPenalty": "0",
    }
    msg = {
        "arg": {"channel": "positions", "uid": "77982378738415879", "instType": "FUTURES"},
        "eventType": "snapshot",
        "curPage": 1,
        "lastPage": True,
        "data": [item],
    }
    (pos,) = build_all(msg)
    assert isinstance(pos, Position)
    assert (pos.inst_id, pos.inst_type, pos.mgn_mode, pos.pos_side) == (
        "ETH-USD-210430",
        "FUTURES",
        "isolated",
        "long",
    )
    assert pos.pos == Decimal("1") and pos.avg_px == Decimal("2566.31")
    assert pos.liq_px == Decimal("2352.8496681818233") and pos.lever == Decimal("10")
    assert pos.imr is None and pos.pos_ccy is None and pos.liab_ccy is None
    assert pos.pos_id == "307173036051017730" and pos.trade_id == "109844"
    assert pos.raw == item


def test_fills_documented_shape():
    """The ``fills`` push of the OKX docs (private, VIP6+; no public recording has one)."""
    item = {
        "instId": "BTC-USDT-SWAP",
        "fillSz": "100",
        "fillPx": "70000",
        "side": "buy",
        "ts": "1705449605015",
        "ordId": "680800019749904384",
        "clOrdId": "1234567890",
        "tradeId": "12345",
        "execType": "T",
        "count": "10",
    }
    msg = {"arg": {"channel": "fills", "uid": "614488474791111"}, "data": [item]}
    (fill,) = build_all(msg)
    assert isinstance(fill, Fill)
    assert (fill.inst_id, fill.side, fill.exec_type) == ("BTC-USDT-SWAP", "buy", "T")
    assert fill.fill_px == Decimal("70000") and fill.fill_sz == Decimal("100")
    assert (fill.ord_id, fill.cl_ord_id, fill.trade_id) == (
        "680800019749904384",
        "1234567890",
        "12345",
    )
    assert fill.ts == 1705449605015 and fill.fee is None
