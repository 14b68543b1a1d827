"""Every simulator fault, through raw REST/WS clients and through the control endpoint."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import requests
from test_sim_ws import IndependentBook, is_event, is_push

from okx_sync.clock import FakeClock
from okx_sync.sim import Simulator
from okx_sync.sim.testing import RawRest, RawWS
from okx_sync.testing import wait_until

P = "/api/v5/"


@pytest.fixture
def sim():
    with Simulator(seed=31, auto_tick=False, rate_limits=False) as s:
        yield s


@pytest.fixture
def timed():
    """(simulator, clock) on a manual FakeClock: timed faults end when the test moves time,
    not after real seconds that a loaded machine may spend before the test looks."""
    clock = FakeClock(wall_start=time.time(), auto_advance=False)
    with Simulator(seed=31, auto_tick=False, rate_limits=False, clock=clock) as s:
        yield s, clock


def far_order(sim, cl_ord_id, inst="BTC-USDT"):
    px = Decimal(sim.exchange.book(inst).bids[-1][0]) - 100
    return {
        "instId": inst,
        "tdMode": "cash",
        "side": "buy",
        "ordType": "limit",
        "px": str(px),
        "sz": "0.001",
        "clOrdId": cl_ord_id,
    }


def test_rate_limit_storm(timed):
    sim, clock = timed
    rest = RawRest(sim.rest_url, sim.credentials.live, clock_ms=lambda: int(clock.time() * 1000))
    sim.faults.rate_limit_storm(0.4)
    r = rest.get(P + "account/balance")
    assert r.status_code == 429 and r.json() == {"msg": "Too Many Requests", "code": "50011"}
    assert rest.get(P + "public/time").status_code == 429
    assert sim.faults.active()["rate_limit_storm_seconds_left"] == pytest.approx(0.4)
    clock.advance(0.39)
    assert rest.get(P + "public/time").status_code == 429
    clock.advance(0.02)
    assert rest.get(P + "public/time").status_code == 200
    rest.close()


def test_slow_responses(sim):
    """Which answers were delayed is read from the server's counter, not from how long
    they took (a loaded machine is slow without any fault); that the delay is real
    is a lower bound."""
    rest = RawRest(sim.rest_url)

    def delayed():
        return sim.stats()["rest_delayed"]

    sim.faults.slow_responses(0.15, count=1)
    t0 = time.monotonic()
    assert rest.get(P + "public/time").status_code == 200
    assert time.monotonic() - t0 >= 0.15
    assert delayed() == 1
    assert rest.get(P + "public/time").status_code == 200  # count=1: used up
    assert delayed() == 1 and sim.faults.active()["slow_responses"] == []
    sim.faults.slow_responses(0.01, count=1, path=P + "market/ticker")
    assert rest.get(P + "public/time").status_code == 200  # other paths are not delayed
    assert delayed() == 1 and sim.faults.active()["slow_responses"][0]["count"] == 1
    assert rest.get(P + "market/ticker", {"instId": "BTC-USDT"}).status_code == 200
    assert delayed() == 2
    rest.close()


def test_server_errors(sim):
    rest = RawRest(sim.rest_url)
    sim.faults.server_errors(503, count=1)
    r = rest.get(P + "public/time")
    assert r.status_code == 503 and r.json()["code"] == "50001"
    sim.faults.server_errors(500, count=1)
    r = rest.get(P + "public/time")
    assert r.status_code == 500 and r.json()["code"] == "50026"
    sim.faults.server_errors(502, count=1)
    r = rest.get(P + "public/time")
    assert r.status_code == 502 and r.headers["Content-Type"] == "text/html"
    assert rest.get(P + "public/time").status_code == 200
    with pytest.raises(ValueError):
        sim.faults.server_errors(404)
    rest.close()


def test_lost_order_response_timeout_but_order_executes(sim):
    rest = RawRest(sim.rest_url, sim.credentials.live)
    sim.faults.lose_order_response("timeout", hold_s=1.0)
    assert rest.get(P + "public/time").status_code == 200  # not order entry: untouched
    with pytest.raises(requests.exceptions.ReadTimeout):
        rest.post(P + "trade/order", far_order(sim, "lost1"), timeout_s=0.15)
    got = rest.get(P + "trade/order", {"instId": "BTC-USDT", "clOrdId": "lost1"}).json()
    assert got["code"] == "0" and got["data"][0]["state"] == "live"
    again = rest.post(P + "trade/order", far_order(sim, "lost1")).json()
    assert again["data"][0]["sCode"] == "51016"  # re-send with the same clOrdId is refused
    rest.close()


def test_lost_order_response_50004(sim):
    rest = RawRest(sim.rest_url, sim.credentials.live)
    sim.faults.lose_order_response("50004")
    r = rest.post(P + "trade/order", far_order(sim, "lost2"))
    assert r.status_code == 400 and r.json()["code"] == "50004" and r.json()["data"] == []
    assert [o for o in sim.exchange.pending(sim.live_uid) if o.cl_ord_id == "lost2"]
    rest.close()


LOST_50004_MSG = (
    "API endpoint request timeout. (does not mean that the request was successful or failed, "
    "please check the request result)."
)


def ws_item(sim, cl_ord_id, inst="BTC-USDT"):
    """``far_order`` as a WS order-entry arg (``instIdCode`` for ``instId``)."""
    item = far_order(sim, cl_ord_id, inst)
    item["instIdCode"] = sim.exchange.specs[item.pop("instId")].inst_id_code
    return item


@pytest.fixture
def priv_ws(sim):
    ws = RawWS(sim.ws_private_url)
    assert ws.login(sim.credentials.live)["event"] == "login"
    yield ws
    ws.close()


def ws_call(ws, op_id, op, args):
    ws.send_json({"id": op_id, "op": op, "args": args})
    return ws.wait_for(lambda m: isinstance(m, dict) and m.get("id") == op_id)


def assert_no_reply(ws, op_id):
    """A ping after the op is answered: the connection answers in order, so a reply to
    ``op_id`` would have come first (no wait on the clock)."""
    ws.send_text("ping")
    ws.wait_for(lambda m: m == "pong")
    assert not [m for m in ws.received if isinstance(m, dict) and m.get("id") == op_id]


def test_lost_ws_order_reply(sim, priv_ws):
    sim.faults.lose_order_response("timeout", transport="ws")
    priv_ws.send_json({"id": "L1", "op": "order", "args": [ws_item(sim, "lostws")]})
    assert_no_reply(priv_ws, "L1")
    assert [o for o in sim.exchange.pending(sim.live_uid) if o.cl_ord_id == "lostws"]


def test_lost_ws_order_reply_50004(sim, priv_ws):
    sim.faults.lose_order_response("50004", transport="ws")
    reply = ws_call(priv_ws, "L2", "order", [ws_item(sim, "lostws2")])
    assert (reply["op"], reply["code"], reply["msg"], reply["data"]) == (
        "order",
        "50004",
        LOST_50004_MSG,
        [],
    )
    assert [o for o in sim.exchange.pending(sim.live_uid) if o.cl_ord_id == "lostws2"]
    # one shot: the next order is answered
    assert ws_call(priv_ws, "L3", "order", [ws_item(sim, "lostws3")])["code"] == "0"


def test_lost_ws_cancel_reply(sim, priv_ws):
    code = sim.exchange.specs["BTC-USDT"].inst_id_code
    sim.faults.lose_order_response("timeout", transport="ws", action="cancel")
    # placement is not the armed action: answered
    placed = ws_call(priv_ws, "C1", "order", [ws_item(sim, "lostc1")])
    ord_id = placed["data"][0]["ordId"]
    priv_ws.send_json(
        {"id": "C2", "op": "cancel-order", "args": [{"instIdCode": code, "ordId": ord_id}]}
    )
    assert_no_reply(priv_ws, "C2")
    assert sim.exchange.orders[ord_id].state == "canceled"  # executed, answer lost
    assert sim.faults.active()["lose_order_response"] == []


def test_lost_ws_amend_reply_50004(sim, priv_ws):
    code = sim.exchange.specs["BTC-USDT"].inst_id_code
    placed = ws_call(priv_ws, "A1", "order", [ws_item(sim, "losta1")])
    ord_id = placed["data"][0]["ordId"]
    sim.faults.lose_order_response("50004", transport="ws", action="amend")
    # a REST amend is not the armed transport: answered
    rest = RawRest(sim.rest_url, sim.credentials.live)
    amend = {"instId": "BTC-USDT", "ordId": ord_id, "newSz": "0.002"}
    assert rest.post(P + "trade/amend-order", amend).json()["code"] == "0"
    rest.close()
    args = [{"instIdCode": code, "ordId": ord_id, "newSz": "0.003"}]
    reply = ws_call(priv_ws, "A2", "amend-order", args)
    assert (reply["code"], reply["data"]) == ("50004", [])
    assert sim.exchange.orders[ord_id].sz == Decimal("0.003")  # executed anyway
    # used up: the next WS op is answered
    cancel = [{"instIdCode": code, "ordId": ord_id}]
    assert ws_call(priv_ws, "A3", "cancel-order", cancel)["code"] == "0"


def test_drop_ws_is_abrupt(sim):
    a, b = RawWS(sim.ws_public_url), RawWS(sim.ws_private_url)
    a.send_text("ping")
    a.wait_for(lambda m: m == "pong")
    assert sim.faults.drop_ws(kind="public") == 1
    assert a.wait_close(timeout_s=3) is None  # no close frame
    b.send_text("ping")
    assert b.wait_for(lambda m: m == "pong") == "pong"
    assert sim.faults.drop_ws() == 1
    assert b.wait_close(timeout_s=3) is None
    assert wait_until(lambda: sim.ws_connections() == [], 3)


def test_silent_ws(sim):
    ws = RawWS(sim.ws_public_url)
    ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]})
    ws.wait_for(is_push("books"))
    assert sim.faults.silence_ws() == 1
    ws.send_text("ping")
    sim.tick(3)
    with pytest.raises(TimeoutError):
        ws.wait_for(lambda m: True, timeout_s=0.2)  # a pong comes in ms when not silent
    sim.faults.clear()
    ws.send_text("ping")
    assert ws.wait_for(lambda m: m == "pong", timeout_s=2) == "pong"
    ws.close()


def test_silent_ws_for_a_while(timed):
    sim, clock = timed
    ws = RawWS(sim.ws_public_url)
    ws.send_text("ping")  # the server has registered the connection once it answers
    assert ws.wait_for(lambda m: m == "pong", timeout_s=2) == "pong"
    assert sim.faults.silence_ws(seconds=1.5) == 1
    ws.send_text("ping")
    with pytest.raises(TimeoutError):
        ws.wait_for(lambda m: m == "pong", timeout_s=0.2)
    clock.advance(1.4)
    ws.send_text("ping")
    with pytest.raises(TimeoutError):
        ws.wait_for(lambda m: m == "pong", timeout_s=0.2)
    # the silence lifts by itself once its time is up
    clock.advance(0.2)
    assert wait_until(lambda: not sim.ws_connections()[0]["silent"])
    ws.send_text("ping")
    assert ws.wait_for(lambda m: m == "pong", timeout_s=2) == "pong"
    ws.close()


def test_notice_then_close(sim):
    ws = RawWS(sim.ws_public_url)
    ws.send_text("ping")
    ws.wait_for(lambda m: m == "pong")
    assert sim.faults.notice_then_close(0.2) == 1
    notice = ws.wait_for(is_event("notice"))
    assert notice["code"] == "64008" and notice["connId"]
    assert ws.wait_close(timeout_s=3) == 1012
    ws.close()


def stream(sim, ws, inst="BTC-USDT"):
    ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": inst}]})
    snap = ws.wait_for(is_push("books", inst))["data"][0]
    book = IndependentBook()
    book.apply(snap, snapshot=True)
    return book, snap["seqId"]


def next_update(sim, ws, inst="BTC-USDT"):
    sim.tick()
    return ws.wait_for(is_push("books", inst))["data"][0]


def test_seq_gap(sim):
    ws = RawWS(sim.ws_public_url)
    _, last = stream(sim, ws)
    sim.faults.seq_gap("BTC-USDT")
    sim.tick()  # this update is computed but never sent
    upd = next_update(sim, ws)
    assert upd["prevSeqId"] != last and upd["prevSeqId"] > last
    ws.close()


def test_bad_checksum(sim):
    ws = RawWS(sim.ws_public_url)
    book, last = stream(sim, ws)
    sim.faults.bad_checksum("BTC-USDT")
    upd = next_update(sim, ws)
    book.apply(upd, snapshot=False)
    assert upd["prevSeqId"] == last and upd["checksum"] != 0
    assert upd["checksum"] != book.checksum()
    upd2 = next_update(sim, ws)
    book.apply(upd2, snapshot=False)
    assert upd2["checksum"] == book.checksum()
    ws.close()


def test_seq_reset(sim):
    ws = RawWS(sim.ws_public_url)
    _, last = stream(sim, ws)
    sim.faults.seq_reset("BTC-USDT")
    upd = next_update(sim, ws)
    assert upd["prevSeqId"] == last and upd["seqId"] < upd["prevSeqId"]
    upd2 = next_update(sim, ws)
    assert upd2["prevSeqId"] == upd["seqId"] and upd2["seqId"] > upd["seqId"]
    ws.close()


@pytest.mark.parametrize("kind", ["size", "price", "crossed"])
def test_malformed_book(sim, kind):
    ws = RawWS(sim.ws_public_url)
    book, last = stream(sim, ws)
    sim.faults.malformed_book("BTC-USDT", kind)
    upd = next_update(sim, ws)
    assert upd["prevSeqId"] == last
    *good, bad = upd["bids"]
    book.apply({**upd, "bids": good}, snapshot=False)
    best_ask = book.sorted_asks()[0][0]
    expected = {"size": "abc", "price": "NaN", "crossed": best_ask}
    assert bad[1 if kind == "size" else 0] == expected[kind]
    # without the extra level the update is the published book's (checksum included)
    if kind == "crossed":
        assert upd["checksum"] == 0
    else:
        assert upd["checksum"] == book.checksum()
    upd2 = next_update(sim, ws)  # the next one is sound again
    book.apply(upd2, snapshot=False)
    assert upd2["prevSeqId"] == upd["seqId"] and upd2["checksum"] == book.checksum()
    ws.close()
    with pytest.raises(ValueError):
        sim.faults.malformed_book("BTC-USDT", "other")


def test_reject_subscription_and_fail_login(sim):
    ws = RawWS(sim.ws_public_url)
    sim.faults.reject_subscription("books", "BTC-USDT", code="60012")
    ws.send_json(
        {
            "id": "r1",
            "op": "subscribe",
            "args": [
                {"channel": "books", "instId": "BTC-USDT"},
                {"channel": "books", "instId": "ETH-USDT"},
            ],
        }
    )
    err = ws.wait_for(is_event("error"))
    assert err["code"] == "60012" and err["id"] == "r1"
    assert ws.wait_for(is_event("subscribe"))["arg"]["instId"] == "ETH-USDT"
    ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]})
    assert ws.wait_for(is_event("subscribe"))["arg"]["instId"] == "BTC-USDT"
    ws.close()
    priv = RawWS(sim.ws_private_url)
    sim.faults.fail_logins(1)
    assert priv.login(sim.credentials.live)["code"] == "60009"
    assert priv.login(sim.credentials.live)["event"] == "login"
    priv.close()


def frames_until_close(ws):
    """(text messages, close code) read until the server's close frame."""
    import websocket

    texts = []
    ws.ws.settimeout(5)
    while True:
        opcode, data = ws.ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return texts, int.from_bytes(data[:2], "big"), data[2:].decode()
        if opcode == websocket.ABNF.OPCODE_TEXT:
            texts.append(json.loads(data))


def send_login(sim, ws):
    from okx_sync.auth import ws_login_args

    ws.send_json({"op": "login", "args": [ws_login_args(sim.credentials.live, int(time.time()))]})


def test_fail_login_then_close_4001(sim):
    sim.faults.fail_logins(1, close_code=4001)
    ws = RawWS(sim.ws_private_url)
    send_login(sim, ws)
    texts, code, reason = frames_until_close(ws)
    assert [(t["event"], t["code"]) for t in texts] == [("error", "60009")]  # event, then close
    assert (code, reason) == (4001, "Login failed.")
    ws.close()
    assert wait_until(lambda: sim.ws_connections() == [])
    again = RawWS(sim.ws_private_url)  # used up: the next login passes
    assert again.login(sim.credentials.live)["event"] == "login"
    again.close()


def test_login_refused_by_close_code_only(sim):
    ctl = requests.Session()
    r = ctl.post(sim.control_url + "/faults/fail_logins", json={"code": "", "close_code": 4007})
    assert r.json() == {"ok": True, "result": None}
    ctl.close()
    ws = RawWS(sim.ws_private_url)
    send_login(sim, ws)
    texts, code, reason = frames_until_close(ws)
    assert texts == [] and (code, reason) == (4007, "API key has been updated or deleted.")
    ws.close()


@pytest.mark.parametrize(
    "kwargs", [{"close_code": 1000}, {"close_code": 5000}, {"code": ""}], ids=str
)
def test_fail_logins_refuses_bad_arguments(sim, kwargs):
    with pytest.raises(ValueError):
        sim.faults.fail_logins(1, **kwargs)
    assert sim.faults.active()["fail_logins"] == []


def test_control_endpoint_needs_the_run_token_and_a_loopback_host(sim):
    token = sim.control_token
    assert len(token) >= 20 and sim.control_url.endswith("/" + token)
    bare = sim.control_url[: -len(token) - 1]  # http://127.0.0.1:PORT
    ctl = requests.Session()
    wrong = token[:-1] + ("y" if token.endswith("x") else "x")  # one character off
    for url in (bare + "/faults/rate_limit_storm", f"{bare}/{wrong}/faults/rate_limit_storm"):
        r = ctl.post(url, json={"seconds": 30})
        assert r.status_code == 403 and "token" in r.json()["error"]
    assert ctl.get(bare + "/state").status_code == 403  # reads too
    # DNS rebinding: the right token under a host name that is not loopback
    r = ctl.post(
        sim.control_url + "/faults/rate_limit_storm",
        json={"seconds": 30},
        headers={"Host": f"attacker.example:{urlsplit(bare).port}"},
    )
    assert r.status_code == 403 and "Host" in r.json()["error"]
    assert sim.faults.active()["rate_limit_storm_seconds_left"] == 0  # nothing was done
    for host in ("localhost", f"localhost:{urlsplit(bare).port}", "[::1]:1", "127.0.0.1"):
        r = ctl.get(sim.control_url + "/", headers={"Host": host})
        assert r.status_code == 200 and r.json()["ok"], host
    ctl.close()
    with Simulator(seed=1, auto_tick=False, ws=False) as other:
        assert other.control_token != token  # per run, not from the seed


def test_control_endpoint(sim):
    ctl = requests.Session()
    base = sim.control_url
    assert ctl.get(base + "/").json()["result"]["rest_url"] == sim.rest_url
    # long enough to outlast the checks below on a loaded machine; cleared below
    r = ctl.post(base + "/faults/rate_limit_storm", json={"seconds": 30})
    assert r.json() == {"ok": True, "result": None}
    assert requests.get(sim.rest_url + P + "public/time").status_code == 429
    assert ctl.get(base + "/faults").json()["result"]["rate_limit_storm_seconds_left"] > 0
    assert ctl.post(base + "/faults/clear").json()["ok"]
    assert requests.get(sim.rest_url + P + "public/time").status_code == 200
    seq = sim.exchange.book("BTC-USDT").seq_id
    assert ctl.post(base + "/tick", json={"n": 2}).json()["ok"]
    book = ctl.get(base + "/book/BTC-USDT").json()["result"]
    assert book["seq_id"] > seq and book["bids"]
    state = ctl.get(base + "/state").json()["result"]
    assert state["rest_requests"] >= 2 and "faults" in state
    bad = ctl.post(base + "/faults/format_disk", json={})
    assert bad.status_code == 400 and not bad.json()["ok"]
    bad = ctl.post(base + "/faults/server_errors", json={"status": 200})
    assert bad.status_code == 400 and "status" in bad.json()["error"]
    assert ctl.post(base + "/faults/seq_gap", json={"inst_id": "BTC-USDT"}).json()["ok"]
    ctl.close()


def test_flood_delivers_every_update_in_order(sim):
    ws = RawWS(sim.ws_public_url)
    ws.send_json(
        {
            "op": "subscribe",
            "args": [
                {"channel": "books", "instId": "ETH-USDT"},
                {"channel": "trades", "instId": "ETH-USDT"},
            ],
        }
    )
    snap = ws.wait_for(is_push("books", "ETH-USDT"))["data"][0]
    book = IndependentBook()
    book.apply(snap, snapshot=True)
    rounds = 300
    worker = threading.Thread(target=sim.flood, args=("ETH-USDT", rounds), name="okx-test-flood")
    worker.start()
    last, updates, trades = snap["seqId"], 0, 0
    target = None
    while target is None or last != target:
        msg = ws.wait_for(lambda m: is_push("books")(m) or is_push("trades")(m), timeout_s=10)
        if msg["arg"]["channel"] == "trades":
            trades += 1
            continue
        data = msg["data"][0]
        assert data["prevSeqId"] == last
        book.apply(data, snapshot=False)
        assert data["checksum"] == book.checksum()
        last = data["seqId"]
        updates += 1
        if target is None and not worker.is_alive():
            target = sim.exchange.book("ETH-USDT").seq_id
    worker.join()
    assert updates >= rounds * 0.9 and trades >= rounds
    ws.close()
