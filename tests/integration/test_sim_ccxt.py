"""An independent OKX client (ccxt's okx class) against the simulator's REST API.

Skipped when ccxt is not installed (the ``test`` and ``bench`` extras install it). Only the REST
base URL is overridden; signing, parameters and parsing are ccxt's own.
"""

from __future__ import annotations

import pytest

from okx_sync.sim import Simulator

ccxt = pytest.importorskip("ccxt")


@pytest.fixture(scope="module")
def exchange():
    with Simulator(seed=41) as sim:
        creds = sim.credentials.live
        ex = ccxt.okx(
            {
                "apiKey": creds.api_key,
                "secret": creds.secret_key,
                "password": creds.passphrase,
                "enableRateLimit": False,
                "timeout": 10_000,
            }
        )
        ex.urls["api"]["rest"] = sim.rest_url
        yield ex, sim


def test_load_markets(exchange):
    ex, sim = exchange
    markets = ex.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"} <= set(markets)
    assert len(markets) == len(sim.exchange.specs)
    btc = markets["BTC/USDT"]
    assert btc["spot"] and btc["id"] == "BTC-USDT"
    assert btc["precision"]["price"] == pytest.approx(0.1)
    assert btc["limits"]["amount"]["min"] == pytest.approx(0.00001)
    swap = markets["BTC/USDT:USDT"]
    assert swap["swap"] and swap["contractSize"] == pytest.approx(0.01) and swap["linear"]
    assert any(m["option"] for m in markets.values())
    assert any(m["future"] for m in markets.values())


def test_ticker_and_order_book(exchange):
    ex, sim = exchange
    ex.load_markets()
    ticker = ex.fetch_ticker("BTC/USDT")
    assert ticker["symbol"] == "BTC/USDT" and ticker["ask"] > ticker["bid"] > 0
    book = ex.fetch_order_book("BTC/USDT", 5)
    assert len(book["bids"]) == 5 and len(book["asks"]) == 5
    assert book["bids"][0][0] < book["asks"][0][0]
    assert book["bids"] == sorted(book["bids"], reverse=True)


def test_balance(exchange):
    ex, _ = exchange
    balance = ex.fetch_balance()
    assert balance["total"]["USDT"] == pytest.approx(100000, rel=0.01)
    assert balance["total"]["BTC"] > 0 and "free" in balance["USDT"]


def test_limit_order_create_fetch_cancel(exchange):
    ex, sim = exchange
    ex.load_markets()
    price = float(sim.exchange.book("BTC-USDT").bids[-1][0]) - 500
    created = ex.create_order("BTC/USDT", "limit", "buy", 0.001, price)
    assert created["id"] and created["clientOrderId"]
    fetched = ex.fetch_order(created["id"], "BTC/USDT")
    assert fetched["status"] == "open"
    assert fetched["price"] == pytest.approx(price) and fetched["amount"] == pytest.approx(0.001)
    assert fetched["clientOrderId"] == created["clientOrderId"]
    sim_order = sim.exchange.orders[created["id"]]
    assert sim_order.cl_ord_id == created["clientOrderId"] and sim_order.is_live
    ex.cancel_order(created["id"], "BTC/USDT")
    assert ex.fetch_order(created["id"], "BTC/USDT")["status"] == "canceled"
    assert sim_order.state == "canceled" and sim_order.cancel_source == "1"
