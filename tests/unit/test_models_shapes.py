"""Models on the documented response shapes not covered by the recorded data."""

from __future__ import annotations

from decimal import Decimal

import pytest

from okx_sync.errors import OrderError
from okx_sync.models import (
    AccountConfig,
    AccountRateLimit,
    BookLevel,
    Candle,
    Fill,
    OrderAck,
    OrderBook,
    ServerTime,
    Ticker,
)


def test_order_book_levels_and_best() -> None:
    item = {
        "asks": [["41006.8", "0.60038921", "0", "1"], ["41007", "1", "0", "2"]],
        "bids": [["41006.3", "0.30178218", "0", "2"]],
        "ts": "1629966436396",
        "seqId": "12",
    }
    book = OrderBook.from_okx(item, inst_id="BTC-USDT")
    assert book.inst_id == "BTC-USDT" and book.ts == 1629966436396 and book.seq_id == 12
    assert book.best_ask == BookLevel(Decimal("41006.8"), Decimal("0.60038921"), 1)
    assert book.best_bid is not None and book.best_bid.orders == 2
    assert book.raw == item
    empty = OrderBook.from_okx({"asks": [], "bids": [], "ts": "1"})
    assert empty.best_bid is None and empty.best_ask is None
    with pytest.raises(ValueError):
        BookLevel.from_okx(["x", "1", "0", "1"])


def test_candle_variants() -> None:
    index = Candle.from_okx(["1597026383085", "3.721", "3.743", "3.677", "3.708", "0"])
    assert index.vol is None and index.confirm is False and index.c == Decimal("3.708")
    with pytest.raises(ValueError):
        Candle.from_okx(["1", "2"])


def test_ticker() -> None:
    item = {
        "instType": "SWAP",
        "instId": "BTC-USD-SWAP",
        "last": "9999.99",
        "lastSz": "1",
        "askPx": "9999.99",
        "askSz": "11",
        "bidPx": "8888.88",
        "bidSz": "5",
        "open24h": "9000",
        "high24h": "10000",
        "low24h": "8888.88",
        "volCcy24h": "2222",
        "vol24h": "2222",
        "sodUtc0": "0.1",
        "sodUtc8": "0.1",
        "ts": "1597026383085",
    }
    t = Ticker.from_okx(item)
    assert (t.last, t.ask_sz, t.vol_ccy24h, t.open24h) == (
        Decimal("9999.99"),
        Decimal("11"),
        Decimal("2222"),
        Decimal("9000"),
    )
    assert t.raw == item


def test_fill() -> None:
    item = {
        "instType": "SPOT",
        "instId": "BTC-USDT",
        "tradeId": "123",
        "ordId": "312269865356374016",
        "clOrdId": "b16",
        "billId": "1111",
        "subType": "1",
        "tag": "",
        "fillPx": "999",
        "fillSz": "3",
        "fillIdxPx": "998",
        "fillPnl": "0",
        "side": "buy",
        "posSide": "long",
        "execType": "M",
        "feeCcy": "",
        "fee": "-0.003",
        "ts": "1597026383085",
        "fillTime": "1597026383084",
    }
    f = Fill.from_okx(item)
    assert f.fee == Decimal("-0.003") and f.fee_ccy is None and f.tag is None
    assert f.exec_type == "M" and f.fill_time == 1597026383084


def test_account_config_rate_limit_server_time() -> None:
    cfg = AccountConfig.from_okx(
        {
            "uid": "44705892343619584",
            "acctLv": "2",
            "posMode": "long_short_mode",
            "autoLoan": False,
            "label": "",
        }
    )
    assert cfg.acct_lv == "2" and cfg.auto_loan is False and cfg.label is None
    rl = AccountRateLimit.from_okx(
        {
            "accRateLimit": "2000",
            "fillRatio": "0.1234",
            "mainFillRatio": "0.1234",
            "nextAccRateLimit": "2000",
            "ts": "123456789",
        }
    )
    assert rl.acc_rate_limit == 2000 and rl.fill_ratio == Decimal("0.1234")
    st = ServerTime.from_okx({"ts": "1597026383085"})
    assert st.ts == 1597026383085
    with pytest.raises(ValueError):
        ServerTime.from_okx({})


def test_models_are_frozen() -> None:
    t = Ticker.from_okx({"instId": "X"})
    with pytest.raises(AttributeError):
        t.inst_id = "Y"  # type: ignore[misc]


@pytest.mark.parametrize(
    "item",
    [
        {"ordId": "1", "clOrdId": "c1", "tag": "", "ts": "1", "sMsg": "", "subCode": ""},
        {"ordId": "1", "clOrdId": "c1", "sCode": ""},
        {"ordId": "1", "clOrdId": "c1", "sCode": None},
    ],
    ids=["missing", "empty", "null"],
)
def test_order_ack_without_s_code_is_never_success(item: dict) -> None:
    # OKX sends sCode in every item; without one the item says nothing about the order
    ack = OrderAck.from_okx(item)
    assert ack.s_code is None and not ack.ok
    assert ack.cl_ord_id == "c1" and ack.raw == item
    good = OrderAck.from_okx({"sCode": "0", "clOrdId": "c2"})
    err = OrderError("2", "partial", items=[ack, good])
    assert err.failed == (ack,) and [a.cl_ord_id for a in err.succeeded] == ["c2"]


def test_order_ack_fields() -> None:
    item = {"ordId": "9", "clOrdId": "c9", "tag": "t1", "ts": "1695190491421", "sCode": "0",
            "sMsg": "Order placed", "subCode": "", "reqId": "r1"}  # fmt: skip
    ack = OrderAck.from_okx(item)
    assert ack.ok
    assert (ack.ord_id, ack.cl_ord_id, ack.tag, ack.ts) == ("9", "c9", "t1", 1695190491421)
    assert (ack.s_code, ack.s_msg, ack.sub_code, ack.req_id) == ("0", "Order placed", None, "r1")
    rejected = OrderAck.from_okx({"sCode": "51008", "sMsg": "Insufficient", "subCode": "1000"})
    assert not rejected.ok and (rejected.s_code, rejected.sub_code) == ("51008", "1000")
