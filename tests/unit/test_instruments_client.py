"""Order validation through the real Client: bad px/sz refused naming the instrument
rule and no order request sent; the instruments list is fetched once, on demand."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from rest_mock import Routes

from okx_sync.client import Client
from okx_sync.clock import FakeClock
from okx_sync.errors import InstrumentRuleError
from okx_sync.models import OrderAck
from tests.conftest import realdata_path

BASE = "https://www.okx.com"
INSTRUMENTS = BASE + "/api/v5/public/instruments"
ORDER = BASE + "/api/v5/trade/order"
RATE_LIMIT = "/api/v5/trade/account-rate-limit"


def mock_rate_limit(mock: Routes) -> None:
    # the REST core refreshes the account order limit before order entry
    mock.get(
        BASE + RATE_LIMIT,
        json={"code": "0", "msg": "", "data": [{"accRateLimit": "1000", "ts": "1"}]},
    )


def sent(mock: Routes) -> list[Any]:
    return [c for c in mock.calls if RATE_LIMIT not in c.target]


def swap_instruments() -> dict[str, Any]:
    return json.loads(
        realdata_path("nautilus", "http_get_instruments_swap.json").read_text("utf-8")
    )


@pytest.fixture
def mock() -> Routes:
    return Routes()


@pytest.fixture
def client(mock: Routes) -> Any:
    clock = FakeClock(start=1_000.0, wall_start=1_700_000_000.0)
    c = Client("k", "s", "p", clock=clock, transport=mock.transport)
    yield c
    c.close()


def base_order() -> dict[str, Any]:
    # ETH-USDT-SWAP in the recording: tickSz 0.01, lotSz 0.01, minSz 0.01, maxLmtSz 1000000
    return dict(inst_id="ETH-USDT-SWAP", td_mode="cross", side="buy", ord_type="limit")


@pytest.mark.parametrize(
    ("px", "sz", "rule"),
    [("3000.005", "1", "tickSz"), ("3000.01", "1.005", "lotSz"), ("3000.01", "0.001", "lotSz")],
)
def test_bad_order_is_refused_and_nothing_sent(
    mock: Routes, client: Any, px: str, sz: str, rule: str
) -> None:
    mock_rate_limit(mock)
    mock.get(INSTRUMENTS, json=swap_instruments())
    mock.post(ORDER, json={"code": "0", "msg": "", "data": []})
    inst = client.instrument("ETH-USDT-SWAP")
    assert inst.tick_sz == Decimal("0.01")
    with pytest.raises(InstrumentRuleError) as e:
        client.trade.place_order(**base_order(), px=px, sz=sz)
    assert e.value.rule == rule and f"instrument rule {rule}" in str(e.value)
    assert [r.method for r in sent(mock)] == ["GET"]  # the instruments fetch only


def test_below_minimum_is_refused(mock: Routes, client: Any) -> None:
    data = swap_instruments()
    for item in data["data"]:
        if item["instId"] == "ETH-USDT-SWAP":
            item["minSz"] = "0.1"
    mock_rate_limit(mock)
    mock.get(INSTRUMENTS, json=data)
    with pytest.raises(InstrumentRuleError) as e:
        client.trade.place_order(**base_order(), px="3000.01", sz="0.05")
    assert e.value.rule == "minSz" and "minSz" in str(e.value)
    assert len(sent(mock)) == 1


def test_good_order_is_sent_once_instruments_cached(mock: Routes, client: Any) -> None:
    mock_rate_limit(mock)
    mock.get(INSTRUMENTS, json=swap_instruments())
    mock.post(
        ORDER,
        json={
            "code": "0",
            "msg": "",
            "data": [{"ordId": "7", "clOrdId": "a1", "sCode": "0", "sMsg": ""}],
        },
    )
    for _ in range(3):
        ack = client.trade.place_order(**base_order(), px="3000.01", sz="0.02", cl_ord_id="a1")
        assert isinstance(ack, OrderAck) and ack.ok
    methods = [r.method for r in sent(mock)]
    assert methods == ["GET", "POST", "POST", "POST"]
    assert sent(mock)[0].target.endswith("instType=SWAP")
    assert client.inst_id_code("BTC-USD-SWAP") == 10458
