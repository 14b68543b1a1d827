"""Order validation through the real Client: bad px/sz refused naming the instrument
rule and no order request sent; the instruments list is fetched once, on demand."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import responses

from okx_sync.client import Client
from okx_sync.clock import FakeClock
from okx_sync.errors import InstrumentRuleError
from okx_sync.models import OrderAck
from tests.conftest import realdata_path

BASE = "https://www.okx.com"
INSTRUMENTS = BASE + "/api/v5/public/instruments"
ORDER = BASE + "/api/v5/trade/order"
RATE_LIMIT = "/api/v5/trade/account-rate-limit"


def mock_rate_limit() -> None:
    # the REST core refreshes the account order limit before order entry
    responses.add(
        responses.GET,
        BASE + RATE_LIMIT,
        json={"code": "0", "msg": "", "data": [{"accRateLimit": "1000", "ts": "1"}]},
    )


def sent() -> list[Any]:
    return [c.request for c in responses.calls if RATE_LIMIT not in c.request.url]


def swap_instruments() -> dict[str, Any]:
    return json.loads(
        realdata_path("nautilus", "http_get_instruments_swap.json").read_text("utf-8")
    )


@pytest.fixture
def client() -> Any:
    c = Client("k", "s", "p", clock=FakeClock(start=1_000.0, wall_start=1_700_000_000.0))
    yield c
    c.close()


def base_order() -> dict[str, Any]:
    # ETH-USDT-SWAP in the recording: tickSz 0.01, lotSz 0.01, minSz 0.01, maxLmtSz 1000000
    return dict(inst_id="ETH-USDT-SWAP", td_mode="cross", side="buy", ord_type="limit")


@responses.activate
@pytest.mark.parametrize(
    ("px", "sz", "rule"),
    [("3000.005", "1", "tickSz"), ("3000.01", "1.005", "lotSz"), ("3000.01", "0.001", "lotSz")],
)
def test_bad_order_is_refused_and_nothing_sent(client: Any, px: str, sz: str, rule: str) -> None:
    mock_rate_limit()
    responses.add(responses.GET, INSTRUMENTS, json=swap_instruments())
    responses.add(responses.POST, ORDER, json={"code": "0", "msg": "", "data": []})
    inst = client.instrument("ETH-USDT-SWAP")
    assert inst.tick_sz == Decimal("0.01")
    with pytest.raises(InstrumentRuleError) as e:
        client.trade.place_order(**base_order(), px=px, sz=sz)
    assert e.value.rule == rule and f"instrument rule {rule}" in str(e.value)
    assert [r.method for r in sent()] == ["GET"]  # the instruments fetch only


@responses.activate
def test_below_minimum_is_refused(client: Any) -> None:
    data = swap_instruments()
    for item in data["data"]:
        if item["instId"] == "ETH-USDT-SWAP":
            item["minSz"] = "0.1"
    mock_rate_limit()
    responses.add(responses.GET, INSTRUMENTS, json=data)
    with pytest.raises(InstrumentRuleError) as e:
        client.trade.place_order(**base_order(), px="3000.01", sz="0.05")
    assert e.value.rule == "minSz" and "minSz" in str(e.value)
    assert len(sent()) == 1


@responses.activate
def test_good_order_is_sent_once_instruments_cached(client: Any) -> None:
    mock_rate_limit()
    responses.add(responses.GET, INSTRUMENTS, json=swap_instruments())
    responses.add(
        responses.POST,
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
    methods = [r.method for r in sent()]
    assert methods == ["GET", "POST", "POST", "POST"]
    assert sent()[0].url.endswith("instType=SWAP")
    assert client.inst_id_code("BTC-USD-SWAP") == 10458
