"""ManagedOrderBook without a server: resync policy, REST comparison, option validation."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from okx_sync import WSClient
from okx_sync.errors import ValidationError
from okx_sync.testing.ws_servers import ws_threads
from okx_sync.ws.managed_book import CrossCheck, ResyncPolicy, compare_best

D = Decimal


def test_resync_policy_backoff():
    p = ResyncPolicy(retry_initial=0.5, retry_max=3.0)
    assert [p.retry_delay(n) for n in (1, 2, 3, 4, 5, 50)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert ResyncPolicy().snapshot_timeout_s == 5.0
    for bad in ({"snapshot_timeout_s": 0}, {"retry_initial": -1}, {"retry_max": 0}):
        with pytest.raises(ValueError):
            ResyncPolicy(**bad)


def test_compare_best_same_seq_must_be_equal():
    same = compare_best((7, D("100.0"), D("100.1")), (7, D("100.0"), D("100.10")), 0.01)
    assert same.ok and same.tolerance == 0.0 and same.bid_diff == 0.0 and same.ask_diff == 0.0
    off = compare_best((7, D("100.0"), D("100.1")), (7, D("100.0"), D("100.2")), 0.01)
    assert not off.ok and off.tolerance == 0.0


def test_compare_best_tolerance_and_missing_sides():
    near = compare_best((7, D("100"), D("101")), (9, D("100.05"), D("101")), 0.001)
    assert near.ok and near.bid_diff == pytest.approx(0.0005)
    far = compare_best((7, D("100"), D("101")), (9, D("99"), D("101")), 0.001)
    assert not far.ok and far.bid_diff == pytest.approx(0.01)
    assert not compare_best((7, D("100"), None), (9, D("100"), D("101")), 0.1).ok
    assert compare_best((7, None, None), (9, None, None), 0.0).ok
    assert compare_best((None, D("1"), D("2")), (None, D("1"), D("2")), 0.0).ok


def test_cross_check_to_dict_is_json():
    check = compare_best((1, D("100.5"), D("100.6")), (2, D("100.5"), None), 0.001)
    assert isinstance(check, CrossCheck) and not check.ok
    data = check.to_dict()
    assert data["local_bid"] == "100.5" and data["rest_ask"] is None
    json.dumps(data)


@pytest.fixture
def ws():
    client = WSClient("ws://127.0.0.1:9/ws/v5/public")  # never started
    yield client
    for book in client.managed_books():
        book.close()
    client.close()


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("BTC-USDT", "tickers"), {}),
        (("",), {}),
        (("BTC-USDT",), {"callbacks": "pool"}),
        (("BTC-USDT",), {"policy": {"snapshot_timeout_s": 1}}),
        (("BTC-USDT",), {"rest_check": object()}),
        (("BTC-USDT",), {"rest_tolerance": -0.1}),
        (("BTC-USDT",), {"rest_tolerance": "wide"}),
    ],
)
def test_bad_options_raise_before_anything_starts(ws, args, kwargs):
    with pytest.raises(ValidationError):
        ws.order_book(*args, **kwargs)
    assert ws.managed_books() == [] and ws.desired_subscriptions() == []
    assert not ws_threads(), ws_threads()


def test_spread_book_refuses_rest_check(ws):
    class Rest:
        class market:  # noqa: N801 - shape of Client.market
            @staticmethod
            def get_order_book(**_kw):
                raise AssertionError("not called")

    with pytest.raises(ValidationError, match="spread"):
        ws.order_book("BTC-USDT_BTC-USDT-SWAP", "sprd-books5", rest_check=Rest())
    book = ws.order_book("BTC-USDT_BTC-USDT-SWAP", "sprd-books5")
    assert ws.desired_subscriptions() == [
        {"channel": "sprd-books5", "sprdId": "BTC-USDT_BTC-USDT-SWAP"}
    ]
    assert book.close()


def test_not_started_client_book_waits_and_closes_cleanly(ws):
    book = ws.order_book("BTC-USDT")
    assert not ws_threads()  # the book's thread runs only while its client is started
    assert repr(book).startswith("ManagedOrderBook(books BTC-USDT out of sync")
    assert not book.in_sync and book.seq_id is None
    assert book.wait_ready(0.05) is False
    stats = book.stats()
    assert stats.in_sync is False and stats.ready is False and stats.ws == "public"
    json.dumps(stats.to_dict())
    with pytest.raises(ValidationError):
        book.on_update("not callable")  # type: ignore[arg-type]
    assert book.close()
    assert not ws_threads(), ws_threads()
