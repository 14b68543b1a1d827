"""The simulator's WebSocket server through a raw websocket client.

Book streams are verified by an independent merge and CRC32 written here (zlib), not
by okx_sync.checksum, so a shared bug cannot hide.
"""

from __future__ import annotations

import logging
import time
import zlib
from decimal import Decimal

import pytest

from okx_sync.clock import FakeClock
from okx_sync.sim import Simulator
from okx_sync.sim.testing import RawRest, RawWS
from okx_sync.testing import wait_until


def is_event(name):
    return lambda m: isinstance(m, dict) and m.get("event") == name


def is_push(channel, inst_id=None):
    def pred(m):
        return (
            isinstance(m, dict)
            and "data" in m
            and m.get("arg", {}).get("channel") == channel
            and (inst_id is None or m["arg"].get("instId") == inst_id)
        )

    return pred


class IndependentBook:
    """Merge rules and checksum re-implemented for the test (facts §5.2, §5.3)."""

    def __init__(self):
        self.bids: dict[Decimal, list[str]] = {}
        self.asks: dict[Decimal, list[str]] = {}

    def apply(self, data, snapshot):
        if snapshot:
            self.bids, self.asks = {}, {}
        for side, levels in ((self.bids, data["bids"]), (self.asks, data["asks"])):
            for level in levels:
                px = Decimal(level[0])
                if level[1] == "0":
                    side.pop(px, None)
                else:
                    side[px] = level

    def sorted_bids(self):
        return [self.bids[p] for p in sorted(self.bids, reverse=True)]

    def sorted_asks(self):
        return [self.asks[p] for p in sorted(self.asks)]

    def checksum(self):
        bids, asks = self.sorted_bids()[:25], self.sorted_asks()[:25]
        parts = []
        for i in range(max(len(bids), len(asks))):
            if i < len(bids):
                parts += bids[i][:2]
            if i < len(asks):
                parts += asks[i][:2]
        value = zlib.crc32(":".join(parts).encode())
        return value - 2**32 if value >= 2**31 else value


def test_independent_checksum_matches_published_vectors():
    book = IndependentBook()
    book.apply(
        {"bids": [["3366.1", "7"], ["3366", "6"]], "asks": [["3366.8", "9"], ["3368", "8"]]}, True
    )
    assert book.checksum() == -1881014294
    book.apply(
        {"bids": [["3366.1", "7"]], "asks": [["3366.8", "9"], ["3368", "8"], ["3372", "8"]]}, True
    )
    assert book.checksum() == 831078360


@pytest.fixture(scope="module")
def sim():
    with Simulator(seed=21, auto_tick=False) as s:
        yield s


@pytest.fixture
def pub(sim):
    ws = RawWS(sim.ws_public_url)
    yield ws
    ws.close()


@pytest.fixture
def priv(sim):
    ws = RawWS(sim.ws_private_url)
    assert ws.login(sim.credentials.live)["event"] == "login"
    yield ws
    ws.close()


def test_subscribe_unsubscribe_acks_and_ping(sim, pub):
    pub.send_json(
        {"id": "a1", "op": "subscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]}
    )
    ack = pub.recv()
    assert ack["id"] == "a1" and ack["event"] == "subscribe"
    assert ack["arg"] == {"channel": "tickers", "instId": "BTC-USDT"}
    assert len(ack["connId"]) == 8
    first = pub.wait_for(is_push("tickers"))
    assert first["data"][0]["instId"] == "BTC-USDT"
    pub.send_text("ping")
    assert pub.wait_for(lambda m: m == "pong") == "pong"
    pub.send_json({"op": "unsubscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})
    unack = pub.wait_for(is_event("unsubscribe"))
    assert "id" not in unack and unack["connId"] == ack["connId"]
    assert [c for c in sim.ws_connections() if c["conn_id"] == ack["connId"]][0][
        "subscriptions"
    ] == []


@pytest.mark.parametrize(
    ("url_kind", "message", "code"),
    [
        ("public", "not json", "60012"),
        ("public", {"op": "subscribe", "args": [{"channel": "books", "instId": "NOPE"}]}, "60018"),
        (
            "public",
            {"op": "subscribe", "args": [{"channel": "nosuch", "instId": "BTC-USDT"}]},
            "60018",
        ),
        (
            "public",
            {"op": "subscribe", "args": [{"channel": "candle1m", "instId": "BTC-USDT"}]},
            "64001",
        ),
        (
            "business",
            {"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]},
            "64002",
        ),
        (
            "public",
            {"op": "subscribe", "args": [{"channel": "books-l2-tbt", "instId": "BTC-USDT"}]},
            "64003",
        ),
        (
            "private",
            {"op": "subscribe", "args": [{"channel": "orders", "instType": "ANY"}]},
            "60011",
        ),
        ("public", {"op": "dance", "args": []}, "60019"),
        ("public", {"id": "x1", "op": "order", "args": [{}]}, "60028"),
    ],
)
def test_error_events(sim, url_kind, message, code):
    ws = RawWS(getattr(sim, f"ws_{url_kind}_url"))
    if isinstance(message, str):
        ws.send_text(message)
    else:
        ws.send_json(message)
    err = ws.wait_for(is_event("error"))
    assert err["code"] == code and err["connId"] and err["msg"]
    ws.close()


def test_one_bad_arg_does_not_spoil_the_others(pub):
    pub.send_json(
        {
            "id": "m1",
            "op": "subscribe",
            "args": [
                {"channel": "books5", "instId": "BTC-USDT"},
                {"channel": "books5", "instId": "XX"},
            ],
        }
    )
    ack = pub.wait_for(lambda m: isinstance(m, dict) and m.get("event") in ("subscribe", "error"))
    err = pub.wait_for(is_event("error"))
    assert ack["event"] == "subscribe" and err["code"] == "60018" and err["id"] == "m1"


def run_book_stream(sim, ws, inst_id, ticks):
    """Subscribe ``books``; tick the market; verify every message; return the local book."""
    ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": inst_id}]})
    snap = ws.wait_for(is_push("books", inst_id))
    assert snap["action"] == "snapshot" and snap["data"][0]["prevSeqId"] == -1
    book = IndependentBook()
    book.apply(snap["data"][0], snapshot=True)
    last = snap["data"][0]["seqId"]
    seen = [last]
    for _ in range(ticks):
        sim.tick()
        target = sim.exchange.book(inst_id).seq_id
        while last != target:
            msg = ws.wait_for(is_push("books", inst_id))
            data = msg["data"][0]
            assert msg["action"] == "update"
            assert data["prevSeqId"] == last, "seq chain broken"
            book.apply(data, snapshot=False)
            if data["checksum"] != 0:
                assert data["checksum"] == book.checksum()
            last = data["seqId"]
            seen.append(last)
    return book, seen


def test_books_snapshot_updates_seq_chain_and_checksum(sim, pub):
    book, seen = run_book_stream(sim, pub, "BTC-USDT", ticks=25)
    assert len(seen) > 10 and seen == sorted(seen)
    view = sim.exchange.book("BTC-USDT")
    assert view.seq_id == seen[-1]
    assert book.sorted_bids() == view.bids and book.sorted_asks() == view.asks
    assert book.checksum() == view.checksum != 0


def test_two_connections_see_the_same_sequence(sim):
    a, b = RawWS(sim.ws_public_url), RawWS(sim.ws_public_url)
    for ws in (a, b):
        ws.send_json({"op": "subscribe", "args": [{"channel": "books", "instId": "ETH-USDT"}]})
        ws.wait_for(is_push("books", "ETH-USDT"))
    sim.tick(3)
    target = sim.exchange.book("ETH-USDT").seq_id
    chains = []
    for ws in (a, b):
        seq = []
        while not seq or seq[-1] != target:
            seq.append(ws.wait_for(is_push("books", "ETH-USDT"))["data"][0]["seqId"])
        chains.append(seq)
        ws.close()
    assert chains[0] == chains[1]


def test_checksum_zero_mode():
    with Simulator(seed=3, auto_tick=False, checksum="zero", control=False) as zsim:
        ws = RawWS(zsim.ws_public_url)
        book, seen = run_book_stream(zsim, ws, "BTC-USDT", ticks=5)
        assert zsim.exchange.book("BTC-USDT").checksum == 0
        assert len(seen) > 2
        ws.close()
    assert [m["data"][0]["checksum"] for m in ws.received if is_push("books")(m)] == [0] * len(seen)


def test_books5_bbo_tickers_trades(sim, pub):
    inst = "BTC-USDT-SWAP"
    pub.send_json(
        {
            "op": "subscribe",
            "args": [
                {"channel": c, "instId": inst} for c in ("books5", "bbo-tbt", "tickers", "trades")
            ],
        }
    )
    b5 = pub.wait_for(is_push("books5", inst))["data"][0]
    assert len(b5["bids"]) == 5 and len(b5["asks"]) == 5 and b5["instId"] == inst
    assert "checksum" not in b5 and isinstance(b5["seqId"], int)
    bbo = pub.wait_for(is_push("bbo-tbt", inst))["data"][0]
    assert len(bbo["bids"]) == 1 and bbo["bids"][0] == b5["bids"][0]
    ticker = pub.wait_for(is_push("tickers", inst))["data"][0]
    assert ticker["bidPx"] == b5["bids"][0][0]
    rest = RawRest(sim.rest_url, sim.credentials.live)
    rest.post(
        "/api/v5/trade/order",
        {"instId": inst, "tdMode": "cross", "side": "sell", "ordType": "market", "sz": "1"},
    )
    rest.close()
    trade = pub.wait_for(is_push("trades", inst))["data"][0]
    assert trade["side"] == "sell" and set(trade) >= {"tradeId", "px", "sz", "ts", "count", "seqId"}
    sim.flush()
    assert pub.wait_for(is_push("books5", inst))["data"][0]["seqId"] > b5["seqId"]


def test_candles_on_business(sim):
    ws = RawWS(sim.ws_business_url)
    ws.send_json({"op": "subscribe", "args": [{"channel": "candle1m", "instId": "BTC-USDT"}]})
    assert ws.wait_for(is_event("subscribe"))
    candle = ws.wait_for(is_push("candle1m"))["data"][0]
    assert len(candle) == 9 and candle[8] == "0"
    ws.close()


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda a: {**a, "passphrase": "wrong"}, "60024"),
        (lambda a: {**a, "sign": "AAAA" + a["sign"][4:]}, "60007"),
        (lambda a: {**a, "apiKey": "11111111-2222-3333-4444-555555555555"}, "60032"),
        (lambda a: {**a, "timestamp": "soon"}, "60004"),
        (lambda a: {**a, "apiKey": ""}, "60005"),
    ],
)
def test_login_failures(sim, mutate, code):
    from okx_sync.auth import ws_login_args

    ws = RawWS(sim.ws_private_url)
    ws.send_json(
        {"op": "login", "args": [mutate(ws_login_args(sim.credentials.live, int(time.time())))]}
    )
    err = ws.wait_for(is_event("error"))
    assert err["code"] == code and err["connId"]
    ws.close()


def test_login_expired_timestamp(sim):
    # 30 s is the window: 40 s outside it either way (int(now) + 31 is within 30 s of the
    # server's clock when the second's fraction plus the trip reach 1 s: a slow trip
    # under load, or a login sent late in a second)
    ws = RawWS(sim.ws_private_url)
    err = ws.login(sim.credentials.live, epoch_s=int(time.time()) - 40)
    assert (err["event"], err["code"]) == ("error", "60006")
    ahead = ws.login(sim.credentials.live, epoch_s=int(time.time()) + 40)
    assert (ahead["event"], ahead["code"]) == ("error", "60006")
    ok = ws.login(sim.credentials.live, epoch_s=int(time.time()) - 10)
    assert ok == {"event": "login", "code": "0", "msg": "", "connId": ok["connId"]}
    ws.close()


def test_private_pushes_from_exchange_events(sim, priv):
    priv.send_json(
        {
            "id": "p1",
            "op": "subscribe",
            "args": [
                {"channel": "orders", "instType": "SWAP"},
                {"channel": "positions", "instType": "ANY"},
                {"channel": "account", "ccy": "USDT"},
                {"channel": "balance_and_position"},
            ],
        }
    )
    count = priv.wait_for(lambda m: isinstance(m, dict) and m.get("event") == "channel-conn-count")
    assert count["channel"] == "orders" and int(count["connCount"]) >= 1
    positions = priv.wait_for(is_push("positions"))
    assert positions["eventType"] == "snapshot"
    acct = priv.wait_for(is_push("account"))
    assert acct["eventType"] == "snapshot" and acct["arg"]["uid"] == sim.live_uid
    assert [d["ccy"] for d in acct["data"][0]["details"]] == ["USDT"]
    priv.wait_for(is_push("balance_and_position"))
    rest = RawRest(sim.rest_url, sim.credentials.live)
    placed = rest.post(
        "/api/v5/trade/order",
        {
            "instId": "ETH-USDT-SWAP",
            "tdMode": "cross",
            "side": "buy",
            "ordType": "market",
            "sz": "1",
            "clOrdId": "wsP1",
        },
    ).json()["data"][0]
    rest.close()
    pushes = []
    while not pushes or pushes[-1]["state"] != "filled":
        msg = priv.wait_for(is_push("orders"))
        assert msg["arg"] == {"channel": "orders", "instType": "SWAP", "uid": sim.live_uid}
        pushes.append(msg["data"][0])
    assert pushes[0]["state"] == "live" and pushes[0]["clOrdId"] == "wsP1"
    assert all(p["ordId"] == placed["ordId"] for p in pushes)
    assert sum(Decimal(p["fillSz"]) for p in pushes) == Decimal(1)
    assert pushes[-1]["accFillSz"] == "1" and pushes[-1]["execType"] == "T"
    pos = priv.wait_for(lambda m: is_push("positions")(m) and m.get("eventType") == "event_update")
    assert pos["data"][0]["instId"] == "ETH-USDT-SWAP"
    bp = priv.wait_for(
        lambda m: is_push("balance_and_position")(m) and m["data"][0]["eventType"] == "filled"
    )
    assert bp["data"][0]["trades"] and bp["data"][0]["posData"][0]["instId"] == "ETH-USDT-SWAP"
    spot_rest = RawRest(sim.rest_url, sim.credentials.live)
    spot_rest.post(
        "/api/v5/trade/order",
        {
            "instId": "BTC-USDT",
            "tdMode": "cash",
            "side": "buy",
            "ordType": "market",
            "sz": "10",
            "clOrdId": "spotX",
        },
    )
    spot_rest.close()
    acct_update = priv.wait_for(
        lambda m: is_push("account")(m) and m["eventType"] == "event_update"
    )
    assert all(d["ccy"] == "USDT" for d in acct_update["data"][0]["details"])
    # the SWAP orders subscription never sees the spot order
    assert not [
        m for m in priv.received if is_push("orders")(m) and m["data"][0]["clOrdId"] == "spotX"
    ]


def test_ws_order_entry(sim, priv):
    book = sim.exchange.book("BTC-USDT")
    far = str(Decimal(book.bids[-1][0]) - 100)
    priv.send_json(
        {
            "id": "o1",
            "op": "order",
            "args": [
                {
                    "instIdCode": 10001,
                    "tdMode": "cash",
                    "side": "buy",
                    "ordType": "limit",
                    "px": far,
                    "sz": "0.001",
                    "clOrdId": "wsO1",
                }
            ],
        }
    )
    reply = priv.wait_for(lambda m: isinstance(m, dict) and m.get("id") == "o1")
    assert reply["op"] == "order" and reply["code"] == "0" and reply["msg"] == ""
    assert reply["data"][0]["sCode"] == "0" and reply["data"][0]["clOrdId"] == "wsO1"
    assert int(reply["outTime"]) >= int(reply["inTime"])
    ord_id = reply["data"][0]["ordId"]
    assert sim.exchange.orders[ord_id].source == "ws"
    priv.send_json(
        {
            "id": "o2",
            "op": "amend-order",
            "args": [{"instIdCode": 10001, "ordId": ord_id, "newSz": "0.002", "reqId": "am1"}],
        }
    )
    amend = priv.wait_for(lambda m: isinstance(m, dict) and m.get("id") == "o2")
    assert amend["code"] == "0" and amend["data"][0]["reqId"] == "am1"
    priv.send_json(
        {
            "id": "o3",
            "op": "batch-orders",
            "args": [
                {
                    "instIdCode": 10001,
                    "tdMode": "cash",
                    "side": "buy",
                    "ordType": "limit",
                    "px": far,
                    "sz": "0.001",
                },
                {
                    "instIdCode": 999999,
                    "tdMode": "cash",
                    "side": "buy",
                    "ordType": "limit",
                    "px": far,
                    "sz": "0.001",
                },
            ],
        }
    )
    batch = priv.wait_for(lambda m: isinstance(m, dict) and m.get("id") == "o3")
    assert batch["code"] == "2" and [d["sCode"] for d in batch["data"]] == ["0", "51001"]
    priv.send_json(
        {
            "id": "o4",
            "op": "batch-cancel-orders",
            "args": [
                {"instIdCode": 10001, "clOrdId": "wsO1"},
                {"instIdCode": 10001, "ordId": batch["data"][0]["ordId"]},
            ],
        }
    )
    cancel = priv.wait_for(lambda m: isinstance(m, dict) and m.get("id") == "o4")
    assert cancel["code"] == "0" and sim.exchange.orders[ord_id].state == "canceled"
    priv.send_json({"op": "order", "args": [{"instIdCode": 10001}]})
    assert priv.wait_for(is_event("error"))["code"] == "60013"
    expired = {
        "id": "o5",
        "op": "order",
        "expTime": str(int(time.time() * 1000) - 1000),
        "args": [
            {
                "instIdCode": 10001,
                "tdMode": "cash",
                "side": "buy",
                "ordType": "limit",
                "px": far,
                "sz": "0.001",
            }
        ],
    }
    priv.send_json(expired)
    exp = priv.wait_for(lambda m: isinstance(m, dict) and m.get("id") == "o5")
    assert exp["code"] == "1" and exp["data"][0]["sCode"] == "50037"


def test_order_entry_needs_login(sim):
    ws = RawWS(sim.ws_private_url)
    ws.send_json({"id": "n1", "op": "cancel-order", "args": [{"instIdCode": 10001, "ordId": "1"}]})
    reply = ws.wait_for(lambda m: isinstance(m, dict) and m.get("id") == "n1")
    assert reply["code"] == "60011" and reply["data"] == []
    ws.close()


def test_idle_connection_is_closed_with_4004():
    # on a manual FakeClock: idle time is what the test says, not what a loaded machine took
    clock = FakeClock(wall_start=time.time(), auto_advance=False)
    with Simulator(seed=1, auto_tick=False, idle_timeout_s=0.3, control=False, clock=clock) as isim:
        ws = RawWS(isim.ws_public_url)
        assert wait_until(lambda: len(isim.ws_connections()) == 1)  # idle counts from here
        clock.advance(0.29)
        with pytest.raises(TimeoutError):
            ws.wait_close(timeout_s=0.2)  # the server's idle check runs every 0.075 s
        clock.advance(0.02)
        assert ws.wait_close(timeout_s=5) == 4004
        ws.close()
        # traffic keeps a connection open
        ws = RawWS(isim.ws_public_url)
        ws.send_text("ping")
        assert ws.wait_for(lambda m: m == "pong", timeout_s=2) == "pong"
        for _ in range(4):  # 0.6 s of idle time in all, never 0.3 s without a message
            clock.advance(0.15)
            ws.send_text("ping")
            assert ws.wait_for(lambda m: m == "pong", timeout_s=2) == "pong"
        ws.close()


def test_unknown_ws_path_is_refused(sim):
    import websocket

    with pytest.raises(websocket.WebSocketBadStatusException):
        RawWS(sim.ws_public_url.replace("/ws/v5/public", "/ws/v5/nowhere"))


def test_full_send_queue_closes_with_4005(sim):
    import threading

    from okx_sync.sim.ws import SimConnection

    class StuckSocket:
        def __init__(self):
            self.release = threading.Event()
            self.closed_with = None

        def send(self, text):
            self.release.wait(5)

        def close(self, code, reason):
            self.closed_with = (code, reason)
            self.release.set()

    stuck = StuckSocket()
    conn = SimConnection(sim.hub, stuck, "public", "deadbeef", 10_000)
    original = sim.hub.queue_size
    sim.hub.queue_size = 3
    try:
        conn.start()
        assert conn.send("a")  # taken by the writer, which then blocks
        assert wait_until(lambda: not conn._queue, 2)
        assert all(conn.send(x) for x in "bcd")
        assert not conn.send("e")  # queue full: the connection is closed, not the exchange
        assert wait_until(lambda: stuck.closed_with is not None, 2)
        assert stuck.closed_with == (4005, "Buffer is full, cannot write data")
    finally:
        sim.hub.queue_size = original
        conn.stop_writer()


def test_drop_one_connection():
    with Simulator(seed=4, auto_tick=False, control=False) as fresh:
        a = RawWS(fresh.ws_public_url)
        a.send_text("ping")
        a.wait_for(lambda m: m == "pong")
        b = RawWS(fresh.ws_public_url)
        b.send_text("ping")
        b.wait_for(lambda m: m == "pong")
        oldest = fresh.ws_connections()[0]["conn_id"]
        assert fresh.faults.drop_ws("one", kind="public") == 1
        assert oldest not in [c["conn_id"] for c in fresh.ws_connections()]
        assert a.wait_close(timeout_s=3) is None
        b.send_text("ping")
        assert b.wait_for(lambda m: m == "pong") == "pong"
        b.close()


def test_server_logs_never_carry_login_secrets(sim, caplog):
    """The websockets server dumps frames at DEBUG; a login frame holds the key and passphrase."""
    caplog.set_level(logging.DEBUG)
    creds = sim.credentials.live
    ws = RawWS(sim.ws_private_url)
    ok = ws.login(creds)
    assert ok["code"] == "0"
    ws.send_text("ping")
    assert ws.wait_for(lambda m: m == "pong") == "pong"
    ws.close()
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert caplog.records, "DEBUG logging was captured"
    for secret in (creds.passphrase, creds.secret_key, creds.api_key):
        assert secret not in text


def test_partly_filled_limit_order_is_partially_filled(sim, priv):
    """A buy limit at the best ask for twice that level's size: it takes the level and
    rests with the remainder, ``partially_filled`` in the orders push and in REST."""
    priv.send_json(
        {"id": "pf", "op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]}
    )
    priv.wait_for(lambda m: is_event("subscribe")(m) and m.get("id") == "pf")
    px, level_sz = sim.exchange.live_book("ETH-USDT")["asks"][0][:2]
    taken = Decimal(level_sz)
    rest = RawRest(sim.rest_url, sim.credentials.live)
    try:
        placed = rest.post(
            "/api/v5/trade/order",
            {
                "instId": "ETH-USDT",
                "tdMode": "cash",
                "side": "buy",
                "ordType": "limit",
                "px": px,
                "sz": str(taken * 2),
                "clOrdId": "partly1",
            },
        ).json()
        assert placed["code"] == "0"
        ord_id = placed["data"][0]["ordId"]
        pushes = []
        while not pushes or Decimal(pushes[-1]["accFillSz"]) < taken:
            msg = priv.wait_for(is_push("orders"))
            if msg["data"][0]["ordId"] == ord_id:
                pushes.append(msg["data"][0])
        assert pushes[0]["state"] == "live" and pushes[0]["accFillSz"] == "0"
        assert [p["state"] for p in pushes[1:]] == ["partially_filled"] * (len(pushes) - 1)
        assert sum(Decimal(p["fillSz"]) for p in pushes[1:]) == taken
        assert {p["fillPx"] for p in pushes[1:]} == {px}
        got = rest.get("/api/v5/trade/order", {"instId": "ETH-USDT", "ordId": ord_id}).json()
        order = got["data"][0]
        assert (order["state"], Decimal(order["accFillSz"]), order["avgPx"]) == (
            "partially_filled",
            taken,
            px,
        )
        pending = rest.get("/api/v5/trade/orders-pending", {"instId": "ETH-USDT"}).json()["data"]
        assert [o["state"] for o in pending if o["ordId"] == ord_id] == ["partially_filled"]
        # the rest is still in the book: a cancel ends it canceled, fills kept
        rest.post("/api/v5/trade/cancel-order", {"instId": "ETH-USDT", "ordId": ord_id})
        final = priv.wait_for(
            lambda m: (
                is_push("orders")(m)
                and m["data"][0]["ordId"] == ord_id
                and m["data"][0]["state"] != "partially_filled"
            )
        )["data"][0]
        assert (final["state"], Decimal(final["accFillSz"]), final["cancelSource"]) == (
            "canceled",
            taken,
            "1",
        )
    finally:
        rest.close()


def reply_to(op_id):
    return lambda m: isinstance(m, dict) and m.get("id") == op_id and "op" in m


def test_ws_cancel_order_and_batch_amend(sim, priv):
    code = sim.exchange.specs["BTC-USDT"].inst_id_code
    far = Decimal(sim.exchange.book("BTC-USDT").bids[-1][0]) - 100
    item = {"instIdCode": code, "tdMode": "cash", "side": "buy", "ordType": "limit", "sz": "0.001"}
    priv.send_json(
        {
            "id": "ba0",
            "op": "batch-orders",
            "args": [
                {**item, "px": str(far), "clOrdId": "wsBa1"},
                {**item, "px": str(far), "clOrdId": "wsBa2"},
            ],
        }
    )
    placed = priv.wait_for(reply_to("ba0"))
    assert placed["code"] == "0"
    first, second = (d["ordId"] for d in placed["data"])
    priv.send_json(
        {
            "id": "ba1",
            "op": "batch-amend-orders",
            "args": [
                {"instIdCode": code, "ordId": first, "newSz": "0.002", "reqId": "bam1"},
                {"instIdCode": code, "clOrdId": "wsBa2", "newPx": str(far - 1), "reqId": "bam2"},
                {"instIdCode": code, "ordId": "1", "newSz": "0.002", "reqId": "bam3"},
            ],
        }
    )
    amended = priv.wait_for(reply_to("ba1"))
    assert (amended["op"], amended["code"]) == ("batch-amend-orders", "2")
    assert amended["msg"] == "Bulk operation partially succeeded."
    assert [(d["sCode"], d["reqId"], d["ordId"]) for d in amended["data"]] == [
        ("0", "bam1", first),
        ("0", "bam2", second),
        ("51503", "bam3", "1"),
    ]
    assert int(amended["outTime"]) >= int(amended["inTime"]) > 0
    orders = sim.exchange.orders
    assert orders[first].sz == Decimal("0.002") and orders[second].px == far - 1
    priv.send_json(
        {"id": "ca1", "op": "cancel-order", "args": [{"instIdCode": code, "ordId": first}]}
    )
    canceled = priv.wait_for(reply_to("ca1"))
    assert (canceled["op"], canceled["code"], canceled["msg"]) == ("cancel-order", "0", "")
    assert [(d["sCode"], d["ordId"], d["clOrdId"]) for d in canceled["data"]] == [
        ("0", first, "wsBa1")
    ]
    assert orders[first].state == "canceled" and orders[first].cancel_source == "1"
    priv.send_json(
        {"id": "ca2", "op": "cancel-order", "args": [{"instIdCode": code, "clOrdId": "wsBa2"}]}
    )
    assert priv.wait_for(reply_to("ca2"))["code"] == "0"
    assert orders[second].state == "canceled"
    priv.send_json(
        {"id": "ca3", "op": "cancel-order", "args": [{"instIdCode": code, "ordId": first}]}
    )
    again = priv.wait_for(reply_to("ca3"))
    assert (again["code"], again["data"][0]["sCode"]) == ("1", "51400")


def test_unsubscribe_ack_carries_the_id(sim, pub):
    arg = {"channel": "tickers", "instId": "ETH-USDT"}
    pub.send_json({"id": "s1", "op": "subscribe", "args": [arg]})
    sub = pub.wait_for(is_event("subscribe"))
    pub.send_json({"id": "u1", "op": "unsubscribe", "args": [arg]})
    unsub = pub.wait_for(is_event("unsubscribe"))
    assert unsub == {"id": "u1", "event": "unsubscribe", "arg": arg, "connId": sub["connId"]}


INST_ID_CODE_ERROR = ("51000", "Parameter instIdCode error", [])


def test_ws_order_entry_requires_inst_id_code(sim, priv):
    """Current OKX lists only instIdCode for WS order entry (instId deprecated Feb 2026):
    a missing or malformed code refuses the whole op, a plain instId is no substitute."""
    code = sim.exchange.specs["BTC-USDT"].inst_id_code
    far = str(Decimal(sim.exchange.book("BTC-USDT").bids[-1][0]) - 100)
    order = {"tdMode": "cash", "side": "buy", "ordType": "limit", "px": far, "sz": "0.001"}
    before = len(sim.exchange.orders)
    ord_id = "1"
    cases = [
        ("order", [{**order, "instId": "BTC-USDT"}]),
        ("order", [{**order, "instIdCode": ""}]),
        ("order", [{**order, "instIdCode": "BTC-USDT"}]),
        ("order", [{**order, "instIdCode": 10001.5}]),
        ("order", [{**order, "instIdCode": True}]),
        ("order", [{**order, "instIdCode": -1}]),
        ("batch-orders", [{**order, "instIdCode": code}, {**order, "instId": "BTC-USDT"}]),
        ("cancel-order", [{"instId": "BTC-USDT", "ordId": ord_id}]),
        ("batch-cancel-orders", [{"instIdCode": code, "ordId": ord_id}, {"ordId": ord_id}]),
        ("amend-order", [{"instId": "BTC-USDT", "ordId": ord_id, "newSz": "0.002"}]),
        ("batch-amend-orders", [{"instId": "BTC-USDT", "ordId": ord_id, "newSz": "0.002"}]),
    ]
    for n, (op, args) in enumerate(cases):
        priv.send_json({"id": f"ic{n}", "op": op, "args": args})
        reply = priv.wait_for(reply_to(f"ic{n}"))
        assert (reply["code"], reply["msg"], reply["data"]) == INST_ID_CODE_ERROR, (op, args)
        assert reply["op"] == op and int(reply["outTime"]) >= int(reply["inTime"])
    assert len(sim.exchange.orders) == before  # nothing placed, not even the batch's good item
    # instIdCode decides the instrument; a stray instId beside it is ignored
    priv.send_json(
        {"id": "icok", "op": "order", "args": [{**order, "instIdCode": code, "instId": "ETH-USDT"}]}
    )
    placed = priv.wait_for(reply_to("icok"))
    assert placed["code"] == "0"
    assert sim.exchange.orders[placed["data"][0]["ordId"]].spec.inst_id == "BTC-USDT"
