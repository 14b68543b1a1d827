"""Order-entry replies are complete or an error: one ack per order sent, REST and WS alike.

The matching itself (okx_sync.rest.acks) is pure and tested first; then the REST core
(named methods and ``client.request``) on ``MockTransport``, WS order entry through a
scripted WebSocket server, ``get_order`` with two items, and ``place_order_safely``
resolving a missing ack by clOrdId on the simulator (REST and WS fault ``short``).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from rest_mock import Routes

from okx_sync import Client, RequestGateConfig, RetryPolicy, WSClient
from okx_sync.auth import Credentials
from okx_sync.clock import FakeClock
from okx_sync.errors import APIError, OrderError, ValidationError
from okx_sync.ids import new_cl_ord_id
from okx_sync.ops.reconcile import is_outcome_unknown
from okx_sync.rest.acks import match_acks, order_reply
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client
from okx_sync.testing.ws_servers import ScriptedOKX, ScriptedPeer, ws_threads
from okx_sync.ws.config import WSConfig
from tests.ops_support import far_px, order_kw

BASE = "https://www.okx.com"


def ack(cid: str = "", ord_id: str = "", s_code: str = "0", s_msg: str = "") -> dict[str, Any]:
    return {"clOrdId": cid, "ordId": ord_id, "tag": "", "sCode": s_code, "sMsg": s_msg}


def order(cid: str = "") -> dict[str, Any]:
    item = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit"}
    item.update({"px": "100", "sz": "0.01"})
    if cid:
        item["clOrdId"] = cid
    return item


# --------------------------------------------------------------------------- pure


def test_reordered_reply_is_matched_by_cl_ord_id_and_returned_in_request_order():
    reqs = [order("a1"), order("b2"), order("c3")]
    data = [ack("c3", "3"), ack("a1", "1"), ack("b2", "2", "51008", "no money")]
    found = match_acks(reqs, data)
    assert found.complete and not found.unmatched and not found.missing
    assert [o.ack.ord_id for o in found.outcomes] == ["1", "2", "3"]
    assert [o.reply_index for o in found.outcomes] == [1, 2, 0]
    ordered, error = order_reply(reqs, "0", "", data)
    assert error is None and [d["clOrdId"] for d in ordered] == ["a1", "b2", "c3"]


def test_without_cl_ord_ids_items_match_by_position():
    reqs = [order(), order()]
    data = [ack("", "10"), ack("", "11", "51008")]
    ordered, error = order_reply(reqs, "0", "", data)
    assert error is None and [d["ordId"] for d in ordered] == ["10", "11"]
    # a reply item naming a clOrdId nobody sent is not taken by position
    found = match_acks(reqs, [ack("", "10"), ack("zz9", "11")])
    assert [o.ack is None for o in found.outcomes] == [False, True]
    assert [u.cl_ord_id for u in found.unmatched] == ["zz9"]


def test_cancels_by_ord_id_match_by_ord_id_even_when_okx_adds_the_cl_ord_id():
    reqs = [{"instId": "BTC-USDT", "ordId": "7"}, {"instId": "BTC-USDT", "ordId": "8"}]
    data = [ack("x8", "8"), ack("x7", "7")]
    ordered, error = order_reply(reqs, "0", "", data)
    assert error is None and [d["ordId"] for d in ordered] == ["7", "8"]


def test_fewer_items_name_the_missing_order_outcome_unknown():
    reqs = [order("a1"), order("b2"), order("c3")]
    _, error = order_reply(reqs, "0", "", [ack("c3", "3"), ack("a1", "1")], path="/p")
    assert isinstance(error, OrderError) and error.code == "0"
    assert error.outcome_unknown and is_outcome_unknown(error)
    assert [(o.index, o.cl_ord_id) for o in error.missing] == [(1, "b2")]
    assert [o.ack.ord_id if o.ack else None for o in error.outcomes] == ["1", None, "3"]
    assert error.cl_ord_ids == ("a1", "b2", "c3")  # the missing one included
    assert len(error.items) == 2 and len(error.succeeded) == 2 and not error.unmatched
    text = str(error)
    assert "2 item(s) for 3 order(s)" in text and "#1 clOrdId=b2: missing (outcome unknown)" in text
    assert "#0 clOrdId=a1: sCode 0 ordId=1" in text
    copy = pickle.loads(pickle.dumps(error))
    assert copy.outcomes == error.outcomes and copy.outcome_unknown


def test_more_items_and_unmatchable_items_are_listed_as_unmatched_extras():
    reqs = [order("a1"), order("b2")]
    _, error = order_reply(reqs, "0", "", [ack("a1", "1"), ack("b2", "2"), ack("q9", "9")])
    assert isinstance(error, OrderError)
    assert not error.outcome_unknown and not is_outcome_unknown(error)  # both orders answered
    assert [u.cl_ord_id for u in error.unmatched] == ["q9"]
    assert "unmatched extra item q9=0" in str(error) and "1 unmatched extra item(s)" in str(error)
    # same count, but one item belongs to no order sent: that order is missing
    _, error = order_reply(reqs, "0", "", [ack("a1", "1"), ack("q9", "9")])
    assert isinstance(error, OrderError) and error.outcome_unknown
    assert [o.cl_ord_id for o in error.missing] == ["b2"]
    assert [u.cl_ord_id for u in error.unmatched] == ["q9"]
    # an item that is not even an object
    _, error = order_reply([order("a1")], "0", "", ["junk"])
    assert isinstance(error, OrderError) and error.outcome_unknown and len(error.unmatched) == 1


def test_two_acks_for_one_order_leave_it_unknown_and_zero_acks_too():
    one = [order("a1")]
    _, error = order_reply(one, "0", "", [ack("a1", "1"), ack("a1", "1", "51016")])
    assert isinstance(error, OrderError) and error.outcome_unknown  # which one is true?
    assert len(error.unmatched) == 2
    # the same in a batch whose item count happens to be right: not taken by position either
    _, error = order_reply([order("a1"), order("b2")], "0", "", [ack("a1", "1"), ack("a1", "2")])
    assert isinstance(error, OrderError) and [o.cl_ord_id for o in error.missing] == ["a1", "b2"]
    _, error = order_reply(one, "0", "", [ack("a1", "1"), ack("", "5")])
    assert isinstance(error, OrderError) and not error.outcome_unknown
    assert error.outcomes[0].ack.ord_id == "1" and [u.ord_id for u in error.unmatched] == ["5"]
    _, error = order_reply(one, "0", "", [])
    assert isinstance(error, OrderError) and error.outcome_unknown
    assert error.cl_ord_ids == ("a1",) and is_outcome_unknown(error)


def test_code_2_partial_reply_keeps_failed_succeeded_and_marks_what_is_missing():
    reqs = [order("a1"), order("b2")]
    _, error = order_reply(reqs, "2", "partial", [ack("a1", "1", "0"), ack("b2", "", "51008")])
    assert isinstance(error, OrderError) and error.msg == "partial" and not error.outcome_unknown
    assert len(error.failed) == 1 and len(error.succeeded) == 1
    _, error = order_reply(reqs, "2", "partial", [ack("b2", "", "51008")])
    assert isinstance(error, OrderError) and error.outcome_unknown
    assert [o.cl_ord_id for o in error.missing] == ["a1"]


# --------------------------------------------------------------------------- REST


@pytest.fixture
def rsps() -> Routes:
    return Routes()


@pytest.fixture
def client(rsps: Routes) -> Iterator[Client]:
    with Client(
        "key-0123456789abcdef",
        "secret",
        "pass",
        clock=FakeClock(),
        gate=RequestGateConfig(rate_limits=False),
        retry=RetryPolicy(base_delay_s=0.01, jitter=0.0),
        transport=rsps.transport,
    ) as c:
        yield c


def answer(rsps: Routes, path: str, data: list[Any], code: str = "0") -> None:
    rsps.post(BASE + path, json={"code": code, "msg": "", "data": data})


def sent(rsps: Routes) -> int:
    return sum(c.method == "POST" for c in rsps.calls)


def batch(*cids: str) -> list[dict[str, Any]]:
    return [
        {"inst_id": "BTC-USDT", "td_mode": "cash", "side": "buy", "ord_type": "limit"}
        | {"px": "100", "sz": "0.01", "cl_ord_id": c}
        for c in cids
    ]


def test_rest_batch_reordered_comes_back_in_request_order(rsps, client):
    answer(rsps, "/api/v5/trade/batch-orders", [ack("b2", "2"), ack("a1", "1")])
    acks = client.trade.place_batch_orders(orders=batch("a1", "b2"), validate=False)
    assert [(a.cl_ord_id, a.ord_id) for a in acks] == [("a1", "1"), ("b2", "2")]
    raw = client.request("POST", "/api/v5/trade/batch-orders", [order("a1"), order("b2")])
    assert [d["clOrdId"] for d in raw] == ["a1", "b2"]


def test_rest_batch_short_reply_raises_order_error_sent_once(rsps, client):
    answer(rsps, "/api/v5/trade/batch-orders", [ack("a1", "1"), ack("c3", "3")])
    with pytest.raises(OrderError) as info:
        client.trade.place_batch_orders(orders=batch("a1", "b2", "c3"), validate=False)
    err = info.value
    assert err.path == "/api/v5/trade/batch-orders" and err.http_status == 200
    assert [o.cl_ord_id for o in err.missing] == ["b2"] and is_outcome_unknown(err)
    assert sent(rsps) == 1  # order entry is never retried


@pytest.mark.parametrize(
    ("path", "method", "orders"),
    [
        ("/api/v5/trade/amend-batch-orders", "amend_batch_orders", "amend"),
        ("/api/v5/trade/cancel-batch-orders", "cancel_batch_orders", "cancel"),
    ],
)
def test_rest_amend_and_cancel_batches_with_an_extra_item(rsps, client, path, method, orders):
    items = [{"inst_id": "BTC-USDT", "ord_id": "7"}, {"inst_id": "BTC-USDT", "ord_id": "8"}]
    if orders == "amend":
        items = [dict(i, new_sz="0.02") for i in items]
    answer(rsps, path, [ack("", "8"), ack("", "7"), ack("", "99")])
    kw = {"validate": False} if orders == "amend" else {}
    with pytest.raises(OrderError) as info:
        getattr(client.trade, method)(orders=items, **kw)
    err = info.value
    assert [o.ack.ord_id for o in err.outcomes] == ["7", "8"] and not err.outcome_unknown
    assert [u.ord_id for u in err.unmatched] == ["99"]
    # the raw path runs the same check
    with pytest.raises(OrderError):
        client.request("POST", path, [{"instId": "BTC-USDT", "ordId": "7"}])


def test_rest_single_order_with_two_acks_or_none_is_an_error(rsps, client):
    answer(rsps, "/api/v5/trade/order", [ack("a1", "1"), ack("a1", "2")])
    with pytest.raises(OrderError) as info:
        client.trade.place_order(**batch("a1")[0], validate=False)
    assert info.value.outcome_unknown and len(info.value.unmatched) == 2
    rsps.replace("POST", BASE + "/api/v5/trade/order", json={"code": "0", "data": []})
    with pytest.raises(OrderError) as info:
        client.trade.place_order(**batch("a1")[0], validate=False)
    assert is_outcome_unknown(info.value) and info.value.cl_ord_ids == ("a1",)
    answer(rsps, "/api/v5/trade/cancel-order", [ack("a1", "1"), ack("zz", "2")])
    with pytest.raises(OrderError) as info:
        client.trade.cancel_order(inst_id="BTC-USDT", cl_ord_id="a1")
    assert info.value.outcomes[0].ack.ord_id == "1" and len(info.value.unmatched) == 1


def test_get_order_with_two_items_is_an_error(rsps, client):
    one = {"instId": "BTC-USDT", "ordId": "1", "clOrdId": "a1", "state": "live"}
    rsps.get(BASE + "/api/v5/trade/order", json={"code": "0", "data": [one, dict(one, ordId="2")]})
    with pytest.raises(APIError, match="2 data items where one was expected") as info:
        client.trade.get_order(inst_id="BTC-USDT", cl_ord_id="a1")
    assert len(info.value.data) == 2


# --------------------------------------------------------------------------- WS


class _Codes:
    """The instrument cache's one method WS order entry needs here."""

    def inst_id_code(self, inst_id: str) -> int:
        return 1


def scripted(replies: list[list[dict[str, Any]]], code: str = "0") -> ScriptedOKX:
    """A private WS server that accepts the login, then answers each order op with the
    next ``replies`` entry as its ``data``."""

    def script(peer: ScriptedPeer) -> None:
        login = peer.recv_json()
        assert login["op"] == "login"
        peer.send_json({"event": "login", "code": "0", "msg": "", "connId": "c1"})
        for data in replies:
            op = peer.recv_json()
            peer.send_json({"id": op["id"], "op": op["op"], "code": code, "msg": "", "data": data})

    return ScriptedOKX(script, path="/ws/v5/private")


def ws_client(server: ScriptedOKX) -> WSClient:
    creds = Credentials(api_key="key-0123456789abcdef", secret_key="s", passphrase="p")
    return WSClient(
        server.url, credentials=creds, instruments=_Codes(), config=WSConfig(order_timeout_s=5)
    )


def test_ws_batches_are_matched_like_rest():
    replies = [
        [ack("b2", "2"), ack("a1", "1")],  # reordered: fine
        [ack("a1", "1")],  # short
        [ack("", "7"), ack("", "8"), ack("", "9")],  # cancel: one extra
        [ack("a1", "1"), ack("a1", "1")],  # single amend, two acks
    ]
    with scripted(replies) as server, ws_client(server) as ws:
        acks = ws.place_batch_orders(batch("a1", "b2"))
        assert [a.ord_id for a in acks] == ["1", "2"]
        with pytest.raises(OrderError) as info:
            ws.place_batch_orders(batch("a1", "b2"))
        assert info.value.path == "batch-orders" and is_outcome_unknown(info.value)
        assert [o.cl_ord_id for o in info.value.missing] == ["b2"]
        with pytest.raises(OrderError) as info:
            ws.cancel_batch_orders(
                [{"inst_id": "BTC-USDT", "ord_id": "7"}, {"inst_id": "BTC-USDT", "ord_id": "8"}]
            )
        assert [u.ord_id for u in info.value.unmatched] == ["9"]
        assert not info.value.outcome_unknown
        with pytest.raises(OrderError) as info:
            ws.amend_order(inst_id="BTC-USDT", cl_ord_id="a1", new_sz="0.02")
        assert info.value.outcome_unknown and info.value.path == "amend-order"
    assert not server.errors
    assert not ws_threads()


def test_ws_reply_code_0_without_items_is_outcome_unknown_never_index_error():
    """code "0" with an empty, missing or non-list ``data``: OrderError marked outcome-unknown."""

    def script(peer: ScriptedPeer) -> None:
        assert peer.recv_json()["op"] == "login"
        peer.send_json({"event": "login", "code": "0", "msg": "", "connId": "c1"})
        for extra in ({"data": []}, {}, {"data": {"ordId": "1"}}):
            op = peer.recv_json()
            peer.send_json({"id": op["id"], "op": op["op"], "code": "0", "msg": "", **extra})

    with ScriptedOKX(script, path="/ws/v5/private") as server, ws_client(server) as ws:
        for cid in ("e1", "e2", "e3"):
            with pytest.raises(OrderError) as info:
                ws.place_order(
                    inst_id="BTC-USDT", td_mode="cash", side="buy", ord_type="market", sz="1",
                    cl_ord_id=cid,
                )  # fmt: skip
            assert info.value.outcome_unknown and is_outcome_unknown(info.value)
            assert info.value.cl_ord_ids == (cid,)
            assert [o.cl_ord_id for o in info.value.missing] == [cid]
    assert not server.errors


@pytest.mark.parametrize("path", ["/ws/v5/public", "/ws/v5/business"])
def test_ws_orders_on_a_connection_that_cannot_take_them_are_refused_unsent(path):
    """Public and business sockets take no orders: ValidationError, and no frame goes out."""
    frames: list[dict[str, Any]] = []

    def script(peer: ScriptedPeer) -> None:
        while True:
            msg = peer.recv_json()
            frames.append(msg)
            if msg.get("op") == "subscribe":
                arg = msg["args"][0]
                peer.send_json({"id": msg["id"], "event": "subscribe", "arg": arg})

    with ScriptedOKX(script, path=path) as server:
        with WSClient(server.url, instruments=_Codes(), config=WSConfig(order_timeout_s=5)) as ws:
            order = {"inst_id": "BTC-USDT", "td_mode": "cash", "side": "buy", "sz": "1"}
            calls = [
                lambda: ws.place_order(ord_type="market", cl_ord_id="x1", **order),
                lambda: ws.place_batch_orders([{"ord_type": "market", **order}]),
                lambda: ws.cancel_order(inst_id="BTC-USDT", ord_id="1"),
                lambda: ws.cancel_batch_orders([{"inst_id": "BTC-USDT", "ord_id": "1"}]),
                lambda: ws.amend_order(inst_id="BTC-USDT", ord_id="1", new_sz="2"),
                lambda: ws.amend_batch_orders(
                    [{"inst_id": "BTC-USDT", "ord_id": "1", "new_sz": "2"}]
                ),
            ]
            for call in calls:
                with pytest.raises(ValidationError, match="does not take orders"):
                    call()
            # a subscribe after them is the first frame the server sees: nothing else went out
            ws.subscribe_and_wait({"channel": "tickers", "instId": "BTC-USDT"})
        assert [f.get("op") for f in frames] == ["subscribe"]
    assert not server.errors


# --------------------------------------------------------------------------- resolution


@pytest.mark.parametrize("transport", ["rest", "ws"])
def test_place_order_safely_resolves_a_missing_ack_by_cl_ord_id(transport):
    with Simulator(seed=5, auto_tick=False, ws=transport == "ws") as sim, sim_client(sim) as client:
        px = far_px(sim, client)
        sim.faults.lose_order_response("short", transport=transport)
        cid = new_cl_ord_id()
        if transport == "rest":
            res = client.trade.place_order_safely(
                **order_kw(px, cl_ord_id=cid), expire_after_s=0.2, resolve_interval_s=0.02
            )
            assert res.resolved and res.sends == 1 and res.state == "live"
            assert "order reply does not match the request" in res.uncertain[0]
        else:
            with client.ws_private() as ws, pytest.raises(OrderError) as info:
                ws.place_order(**order_kw(px, cl_ord_id=cid))
            assert is_outcome_unknown(info.value) and info.value.cl_ord_ids == (cid,)
            found = client.trade.get_order(inst_id="BTC-USDT", cl_ord_id=cid)
            assert found.state == "live"
        assert [o.cl_ord_id for o in sim.exchange.orders.values()].count(cid) == 1
        payload = json.dumps([o.to_okx()["clOrdId"] for o in sim.exchange.orders.values()])
        assert cid in payload
