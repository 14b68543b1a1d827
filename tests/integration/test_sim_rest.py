"""The simulator's REST API through raw ``requests``: shapes, errors, auth codes, rate limits."""

from __future__ import annotations

import socket
import time
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from okx_sync.clock import FakeClock
from okx_sync.sim import Simulator
from okx_sync.sim.testing import RawRest

P = "/api/v5/"


@pytest.fixture(scope="module")
def sim():
    with Simulator(seed=11, auto_tick=False, rate_limits=False) as s:
        yield s


@pytest.fixture
def live(sim):
    rest = RawRest(sim.rest_url, sim.credentials.live)
    yield rest
    rest.close()


@pytest.fixture
def public(sim):
    rest = RawRest(sim.rest_url)
    yield rest
    rest.close()


def test_public_time_and_request_id(sim, public):
    r1 = public.get(P + "public/time")
    r2 = public.get(P + "public/time")
    assert r1.status_code == 200
    body = r1.json()
    assert body["code"] == "0" and body["msg"] == ""
    assert abs(int(body["data"][0]["ts"]) - time.time() * 1000) < 5000
    rid1, rid2 = r1.headers["x-request-id"], r2.headers["x-request-id"]
    assert len(rid1) == 16 and rid1 != rid2


@pytest.mark.parametrize("inst_type", ["SPOT", "SWAP", "FUTURES", "OPTION"])
def test_instruments_by_type(public, inst_type):
    params = {"instType": inst_type}
    if inst_type == "OPTION":
        params["instFamily"] = "BTC-USD"
    data = public.get(P + "public/instruments", params).json()["data"]
    assert data and all(d["instType"] == inst_type for d in data)
    first = data[0]
    assert isinstance(first["instIdCode"], int)
    for field in ("tickSz", "lotSz", "minSz", "ctVal", "settleCcy", "expTime", "state"):
        assert isinstance(first[field], str)
    if inst_type == "SPOT":
        assert first["baseCcy"] and first["quoteCcy"] and first["ctVal"] == ""
    else:
        assert first["settleCcy"] and first["ctVal"]


def test_instrument_parameter_errors(public):
    r = public.get(P + "public/instruments")
    assert r.status_code == 400
    assert r.json() == {"code": "50014", "msg": "Parameter instType can not be empty.", "data": []}
    r = public.get(P + "public/instruments", {"instType": "OPTION"})
    assert r.json()["code"] == "50015"
    r = public.get(P + "public/instruments", {"instType": "BOGUS"})
    assert r.json()["code"] == "51000"


def test_market_data_shapes(sim, public):
    ticker = public.get(P + "market/ticker", {"instId": "BTC-USDT"}).json()["data"][0]
    assert ticker["instId"] == "BTC-USDT" and float(ticker["askPx"]) > float(ticker["bidPx"])
    tickers = public.get(P + "market/tickers", {"instType": "SWAP"}).json()["data"]
    assert {t["instId"] for t in tickers} == {"BTC-USDT-SWAP", "ETH-USDT-SWAP"}
    books = public.get(P + "market/books", {"instId": "BTC-USDT", "sz": "5"}).json()["data"][0]
    view = sim.exchange.book("BTC-USDT")
    assert books["seqId"] == view.seq_id
    assert books["bids"] == view.bids[:5] and books["asks"] == view.asks[:5]
    assert all(len(level) == 4 and level[2] == "0" for level in books["bids"])
    candles = public.get(P + "market/candles", {"instId": "BTC-USDT", "limit": "5"}).json()["data"]
    assert len(candles) == 5 and all(len(c) == 9 for c in candles)
    assert int(candles[0][0]) > int(candles[1][0])  # newest first
    older = public.get(
        P + "market/candles", {"instId": "BTC-USDT", "after": candles[1][0], "limit": "2"}
    ).json()["data"]
    assert [c[0] for c in older] == [candles[2][0], candles[3][0]]
    hourly = public.get(P + "market/candles", {"instId": "BTC-USDT", "bar": "1H"}).json()["data"]
    assert hourly and int(hourly[0][0]) % 3_600_000 == 0
    assert (
        public.get(P + "market/candles", {"instId": "BTC-USDT", "bar": "7m"}).json()["code"]
        == "51000"
    )
    r = public.get(P + "market/ticker", {"instId": "NOPE-USDT"})
    assert r.status_code == 200 and r.json()["code"] == "51001"


def test_trades_after_market_activity(sim, public):
    sim.exchange.place_orders(
        sim.live_uid,
        [{"instId": "ETH-USDT", "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "50"}],
    )
    trades = public.get(P + "market/trades", {"instId": "ETH-USDT", "limit": "3"}).json()["data"]
    assert trades and trades[0]["side"] == "buy"
    assert set(trades[0]) >= {"instId", "side", "sz", "px", "tradeId", "ts"}


def test_unknown_path_and_wrong_method(public, live):
    r = public.get(P + "no/such/thing")
    assert r.status_code == 404
    assert r.json() == {
        "code": 404,
        "data": {},
        "detailMsg": "",
        "error_code": "404",
        "error_message": "Not Found",
        "msg": "Not Found",
    }
    assert r.headers["x-request-id"]
    r = live.post(P + "public/time", {})
    assert r.status_code == 405 and r.json()["code"] == "50115"


def _raw_http_bytes(sim, request: bytes) -> bytes:
    """Send raw bytes on one connection; everything read until the server closes."""
    url = urlsplit(sim.rest_url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _raw_http(sim, request: bytes) -> list[bytes]:
    """The HTTP/1.1 replies to raw ``request``, split at each status line."""
    data = _raw_http_bytes(sim, request)
    return [b"HTTP/1.1 " + part for part in data.split(b"HTTP/1.1 ")[1:]]


def test_raw_http_requests_keep_alive_and_close(sim):
    # Two pipelined requests on one connection (header names in any case), the
    # second asking to close: two answers, each with its length, then EOF.
    get = b"GET /api/v5/public/time HTTP/1.1\r\nHost: x\r\nuser-AGENT: t\r\n"
    replies = _raw_http(sim, get + b"\r\n" + get + b"CONNECTION: close\r\n\r\n")
    assert len(replies) == 2
    for reply in replies:
        head, _, body = reply.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 200 OK"
        fields = dict(line.split(": ", 1) for line in lines[1:])
        assert int(fields["Content-Length"]) == len(body)
        assert fields["Content-Type"] == "application/json" and fields["x-request-id"]
        assert b'"code":"0"' in body
    assert b"Connection: close" in replies[1]


def test_raw_http_post_body_by_content_length(sim):
    body = b"{}"
    request = (
        b"POST /api/v5/public/time HTTP/1.1\r\nHost: x\r\ncontent-length: 2\r\n"
        b"Connection: close\r\n\r\n" + body
    )
    (reply,) = _raw_http(sim, request)
    assert reply.startswith(b"HTTP/1.1 405 ") and b'"code":"50115"' in reply


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GET /api/v5/public/time HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"GET /api/v5/public/time HTTP/1.1\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n", b"431"),
        (b"GET /api/v5/public/time HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", b"431"),
        (b"GET /api/v5/public/time HTTP/9.9\r\n\r\n", b"505"),
        (b"BROKEN\r\n\r\n", b"400"),
    ],
    ids=["bad-header-line", "too-many-headers", "header-too-long", "bad-version", "bad-line"],
)
def test_raw_http_malformed_requests_refused(sim, request_bytes, status):
    # (a line that is not HTTP/1.x gets the stdlib's HTTP/0.9-style answer: no
    # status line, an HTML body naming the code)
    data = _raw_http_bytes(sim, request_bytes)
    assert data.startswith(b"HTTP/1.1 " + status) or b"Error code: " + status in data, data[:80]


def _bare(sim, **headers):
    rest = RawRest(sim.rest_url)
    try:
        return rest.get(P + "account/balance", sign=False, headers=headers)
    finally:
        rest.close()


def test_auth_header_codes(sim):
    good = RawRest(sim.rest_url, sim.credentials.live)
    target = P + "account/balance"
    full = good._headers("GET", target, "", True)
    good.close()
    cases = [
        ("OK-ACCESS-KEY", "50103"),
        ("OK-ACCESS-SIGN", "50106"),
        ("OK-ACCESS-TIMESTAMP", "50107"),
        ("OK-ACCESS-PASSPHRASE", "50104"),
    ]
    for missing, code in cases:
        headers = {k: v for k, v in full.items() if k != missing}
        r = _bare(sim, **headers)
        assert r.status_code == 401, missing
        assert r.json()["code"] == code
        assert "data" not in r.json()
    r = _bare(sim, **{**full, "OK-ACCESS-TIMESTAMP": "1700000000000"})
    assert (r.status_code, r.json()["code"]) == (401, "50112")
    r = _bare(sim, **{**full, "OK-ACCESS-KEY": "00000000-0000-0000-0000-000000000000"})
    assert r.json() == {"msg": "Invalid OK-ACCESS-KEY", "code": "50111"}
    r = _bare(sim, **{**full, "OK-ACCESS-PASSPHRASE": "wrong"})
    assert r.json()["code"] == "50105"
    r = _bare(sim, **{**full, "OK-ACCESS-SIGN": "AAAA" + full["OK-ACCESS-SIGN"][4:]})
    assert r.json()["code"] == "50113"


def test_auth_timestamp_skew(sim):
    stale = RawRest(
        sim.rest_url, sim.credentials.live, clock_ms=lambda: int(time.time() * 1000) - 31_000
    )
    r = stale.get(P + "account/balance")
    assert (r.status_code, r.json()["code"]) == (401, "50102")
    fresh = RawRest(
        sim.rest_url, sim.credentials.live, clock_ms=lambda: int(time.time() * 1000) - 20_000
    )
    assert fresh.get(P + "account/balance").json()["code"] == "0"
    # the window is two-sided: 31 s ahead of the server is refused, 20 s ahead accepted
    ahead = RawRest(
        sim.rest_url, sim.credentials.live, clock_ms=lambda: int(time.time() * 1000) + 31_000
    )
    r = ahead.get(P + "account/balance")
    assert (r.status_code, r.json()) == (401, {"msg": "Timestamp request expired", "code": "50102"})
    assert ahead.post(P + "trade/order", {}).json()["code"] == "50102"
    near = RawRest(
        sim.rest_url, sim.credentials.live, clock_ms=lambda: int(time.time() * 1000) + 20_000
    )
    assert near.get(P + "account/balance").json()["code"] == "0"
    for rest in (stale, fresh, ahead, near):
        rest.close()


def test_signature_covers_the_post_body(sim, live):
    body = '{"instId":"BTC-USDT-SWAP","mgnMode":"cross","lever":"3"}'
    target = P + "account/set-leverage"
    headers = {"Content-Type": "application/json"}
    headers.update(live._headers("POST", target, body, True))

    def send(text):
        return live.session.post(sim.rest_url + target, data=text, headers=headers)

    altered = body.replace('"3"', '"4"')
    for text in (altered, body.replace(",", ", "), body + " "):
        r = send(text)
        assert (r.status_code, r.json()) == (401, {"msg": "Invalid Sign", "code": "50113"}), text
    r = send(body)  # the body exactly as signed
    assert (r.status_code, r.json()["code"]) == (200, "0")


def test_live_and_demo_keys_need_their_environment(sim):
    wrong = [
        RawRest(sim.rest_url, sim.credentials.live, demo=True),
        RawRest(sim.rest_url, sim.credentials.demo, demo=False),
    ]
    for rest in wrong:
        r = rest.get(P + "account/balance")
        assert (r.status_code, r.json()["code"]) == (401, "50101")
        rest.close()
    demo = RawRest(sim.rest_url, sim.credentials.demo, demo=True)
    cfg = demo.get(P + "account/config").json()["data"][0]
    assert cfg["uid"] == sim.demo_uid and cfg["posMode"] == "net_mode"
    demo.close()


def test_signature_covers_raw_request_target(sim, live):
    # signed in caller order and sent as is: accepted
    r = live.get(P + "account/balance", {"ccy": "USDT"})
    assert r.json()["code"] == "0"
    assert [d["ccy"] for d in r.json()["data"][0]["details"]] == ["USDT"]
    # signed over one query order, sent with another: the server must not re-encode
    target = P + "trade/orders-pending?instType=SPOT&limit=5"
    headers = live._headers("GET", target, "", True)
    r = live.session.get(
        sim.rest_url + P + "trade/orders-pending?limit=5&instType=SPOT", headers=headers
    )
    assert (r.status_code, r.json()["code"]) == (401, "50113")


def test_post_body_errors(sim, live):
    r = live.post(P + "trade/order", "")
    assert (r.status_code, r.json()["code"]) == (400, "50000")
    r = live.post(P + "trade/order", "{not json")
    assert (r.status_code, r.json()["code"]) == (400, "50002")
    r = live.post(P + "trade/order", {"instId": "BTC-USDT"}, headers={"Content-Type": "text/plain"})
    assert (r.status_code, r.json()["code"]) == (400, "50006")
    r = live.post(P + "trade/order", {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy"})
    assert r.status_code == 400
    assert r.json() == {"code": "50014", "msg": "Parameter ordType can not be empty.", "data": []}


def test_private_account_endpoints(sim, live):
    bal = live.get(P + "account/balance").json()["data"][0]
    assert {d["ccy"] for d in bal["details"]} >= {"USDT", "BTC", "ETH"}
    assert float(bal["totalEq"]) > 100000
    assert live.get(P + "account/positions").json() == {"code": "0", "msg": "", "data": []}
    lev = live.post(
        P + "account/set-leverage", {"instId": "BTC-USDT-SWAP", "lever": "5", "mgnMode": "cross"}
    ).json()
    assert lev["data"] == [
        {"lever": "5", "mgnMode": "cross", "instId": "BTC-USDT-SWAP", "posSide": "net"}
    ]
    too_high = live.post(
        P + "account/set-leverage", {"instId": "BTC-USDT-SWAP", "lever": "500", "mgnMode": "cross"}
    ).json()
    assert too_high["code"] == "59102"
    funding = live.get(P + "asset/balances", {"ccy": "USDT"}).json()["data"]
    assert funding == [{"availBal": "5000", "bal": "5000", "ccy": "USDT", "frozenBal": "0"}]
    ccys = live.get(P + "asset/currencies").json()["data"]
    assert {"BTC", "USDT"} <= {c["ccy"] for c in ccys}
    rl = live.get(P + "trade/account-rate-limit").json()["data"][0]
    assert rl["accRateLimit"] == "1000" and rl["fillRatio"] == ""


def test_order_lifecycle_over_rest(sim, live):
    book = sim.exchange.book("BTC-USDT")
    far = str(float(book.bids[-1][0]) - 100)
    placed = live.post(
        P + "trade/order",
        {
            "instId": "BTC-USDT",
            "tdMode": "cash",
            "side": "buy",
            "ordType": "limit",
            "px": far,
            "sz": "0.01",
            "clOrdId": "restA1",
        },
    ).json()
    assert placed["code"] == "0" and placed["data"][0]["sCode"] == "0"
    assert int(placed["outTime"]) >= int(placed["inTime"]) > 0
    ord_id = placed["data"][0]["ordId"]
    dup = live.post(
        P + "trade/order",
        {
            "instId": "BTC-USDT",
            "tdMode": "cash",
            "side": "buy",
            "ordType": "limit",
            "px": far,
            "sz": "0.01",
            "clOrdId": "restA1",
        },
    ).json()
    assert dup["code"] == "1" and dup["msg"] == "All operations failed"
    assert dup["data"][0]["sCode"] == "51016"
    by_cl = live.get(P + "trade/order", {"instId": "BTC-USDT", "clOrdId": "restA1"}).json()["data"][
        0
    ]
    assert by_cl["ordId"] == ord_id and by_cl["state"] == "live"
    pending = live.get(P + "trade/orders-pending", {"instType": "SPOT"}).json()["data"]
    assert ord_id in {o["ordId"] for o in pending}
    amended = live.post(
        P + "trade/amend-order",
        {"instId": "BTC-USDT", "ordId": ord_id, "newSz": "0.02", "reqId": "r1"},
    ).json()
    assert amended["data"][0]["sCode"] == "0" and amended["data"][0]["reqId"] == "r1"
    assert (
        live.get(P + "trade/order", {"instId": "BTC-USDT", "ordId": ord_id}).json()["data"][0]["sz"]
        == "0.02"
    )
    canceled = live.post(P + "trade/cancel-order", {"instId": "BTC-USDT", "ordId": ord_id}).json()
    assert canceled["code"] == "0"
    again = live.post(P + "trade/cancel-order", {"instId": "BTC-USDT", "ordId": ord_id}).json()
    assert again["code"] == "1" and again["data"][0]["sCode"] == "51400"
    history = live.get(P + "trade/orders-history", {"instType": "SPOT"}).json()["data"]
    assert any(o["ordId"] == ord_id and o["state"] == "canceled" for o in history)
    missing = live.get(P + "trade/order", {"instId": "BTC-USDT", "ordId": "1"}).json()
    assert missing["code"] == "51603"


def test_batch_orders_partial_success(sim, live):
    book = sim.exchange.book("ETH-USDT")
    far = str(round(float(book.bids[-1][0]) - 50, 2))
    resp = live.post(
        P + "trade/batch-orders",
        [
            {
                "instId": "ETH-USDT",
                "tdMode": "cash",
                "side": "buy",
                "ordType": "limit",
                "px": far,
                "sz": "0.1",
                "clOrdId": "bat1",
            },
            {
                "instId": "ETH-USDT",
                "tdMode": "cash",
                "side": "buy",
                "ordType": "limit",
                "px": far,
                "sz": "0.1",
                "clOrdId": "bat1",
            },
            {
                "instId": "ETH-USDT",
                "tdMode": "cash",
                "side": "buy",
                "ordType": "limit",
                "px": far,
                "sz": "0.00001",
            },
        ],
    ).json()
    assert resp["code"] == "2" and resp["msg"] == "Bulk operation partially succeeded."
    assert [d["sCode"] for d in resp["data"]] == ["0", "51016", "51020"]
    cancel = live.post(
        P + "trade/cancel-batch-orders",
        [{"instId": "ETH-USDT", "clOrdId": "bat1"}, {"instId": "ETH-USDT", "ordId": "42"}],
    ).json()
    assert cancel["code"] == "2"
    too_many = live.post(P + "trade/batch-orders", [{"instId": "ETH-USDT"}] * 21).json()
    assert too_many["code"] == "51111"


def test_fills_and_positions_after_swap_trades(sim, live):
    buy = live.post(
        P + "trade/order",
        {
            "instId": "BTC-USDT-SWAP",
            "tdMode": "cross",
            "side": "buy",
            "ordType": "market",
            "sz": "2",
        },
    ).json()
    ord_id = buy["data"][0]["ordId"]
    fills = live.get(P + "trade/fills", {"ordId": ord_id}).json()["data"]
    assert fills and sum(float(f["fillSz"]) for f in fills) == pytest.approx(2)
    assert all(f["execType"] == "T" and float(f["fee"]) < 0 for f in fills)
    pos = live.get(P + "account/positions", {"instId": "BTC-USDT-SWAP"}).json()["data"]
    assert len(pos) == 1 and pos[0]["pos"] == "2" and pos[0]["posSide"] == "net"
    closed = live.post(
        P + "trade/close-position",
        {"instId": "BTC-USDT-SWAP", "mgnMode": "cross", "clOrdId": "close1"},
    ).json()
    assert closed["data"] == [
        {"instId": "BTC-USDT-SWAP", "posSide": "net", "clOrdId": "close1", "tag": ""}
    ]
    assert live.get(P + "account/positions", {"instId": "BTC-USDT-SWAP"}).json()["data"] == []
    again = live.post(
        P + "trade/close-position", {"instId": "BTC-USDT-SWAP", "mgnMode": "cross"}
    ).json()
    assert again["code"] == "51023"


def test_order_types_over_rest(sim, live):
    """post_only / ioc / fok / market placed through raw REST: the state and cancelSource
    OKX reports for each (facts §6.1: 31 post-only would take, 14 IOC remainder, 13 FOK)."""
    inst = "ETH-USDT"

    def place(ord_type, px, sz):
        body = {"instId": inst, "tdMode": "cash", "side": "buy", "ordType": ord_type, "sz": sz}
        if px is not None:
            body["px"] = px
        reply = live.post(P + "trade/order", body).json()
        assert reply["code"] == "0", reply
        ord_id = reply["data"][0]["ordId"]
        got = live.get(P + "trade/order", {"instId": inst, "ordId": ord_id}).json()["data"][0]
        return got["state"], got["cancelSource"], got["accFillSz"]

    def asks():
        return sim.exchange.live_book(inst)["asks"]

    best_ask, first_sz = asks()[0][:2]
    best_bid = sim.exchange.live_book(inst)["bids"][0][0]
    assert place("post_only", best_ask, "0.01") == ("canceled", "31", "0")
    assert place("post_only", best_bid, "0.01") == ("live", "", "0")
    # ioc for twice the best level: that level fills, the remainder is canceled
    state, source, filled = place("ioc", best_ask, str(Decimal(first_sz) * 2))
    assert (state, source, Decimal(filled)) == ("canceled", "14", Decimal(first_sz))
    # fok for more than the book holds up to its price: nothing fills
    ask_px = asks()[0][0]
    depth = sum(Decimal(lv[1]) for lv in asks() if Decimal(lv[0]) <= Decimal(ask_px))
    assert place("fok", ask_px, str(depth + Decimal("0.001"))) == ("canceled", "13", "0")
    state, source, filled = place("fok", ask_px, str(depth))
    assert (state, source, Decimal(filled)) == ("filled", "", depth)
    state, source, _ = place("market", None, "10")  # 10 USDT of ETH
    assert (state, source) == ("filled", "")


# ---------------------------------------------------------------- rate limits (fake clock)


@pytest.fixture
def limited():
    clock = FakeClock(wall_start=time.time())
    with Simulator(
        seed=5, auto_tick=False, clock=clock, account_order_limit=3, control=False, ws=False
    ) as s:
        yield s, clock


def test_public_rate_limit_by_ip(limited):
    sim, clock = limited
    rest = RawRest(sim.rest_url)
    codes = [rest.get(P + "public/time").status_code for _ in range(11)]
    assert codes == [200] * 10 + [429]
    r = rest.get(P + "public/time")
    assert r.json() == {"msg": "Too Many Requests", "code": "50011"}
    clock.advance(2.0)
    assert rest.get(P + "public/time").status_code == 200
    rest.close()


def test_order_rate_limits(limited):
    sim, clock = limited
    rest = RawRest(sim.rest_url, sim.credentials.live, clock_ms=lambda: int(clock.time() * 1000))
    rl = rest.get(P + "trade/account-rate-limit").json()
    assert rl["data"][0]["accRateLimit"] == "3"
    assert rest.get(P + "trade/account-rate-limit").status_code == 429  # 1 per second
    far_bid = str(float(sim.exchange.book("BTC-USDT-SWAP").bids[-1][0]) - 100)
    order = {
        "instId": "BTC-USDT-SWAP",
        "tdMode": "cross",
        "side": "buy",
        "ordType": "limit",
        "px": far_bid,
        "sz": "0.01",
    }
    for _ in range(3):
        assert rest.post(P + "trade/order", order).json()["code"] == "0"
    r = rest.post(P + "trade/order", order)
    assert r.status_code == 200
    assert r.json() == {
        "code": "50061",
        "msg": "You've reached the maximum order rate limit for this account.",
        "data": [],
    }
    # spot orders are exempt from the account limit but keep the per-instrument limit (60 / 2 s)
    far_spot = str(float(sim.exchange.book("BTC-USDT").bids[-1][0]) - 100)
    spot = {
        "instId": "BTC-USDT",
        "tdMode": "cash",
        "side": "buy",
        "ordType": "limit",
        "px": far_spot,
        "sz": "0.0001",
    }
    statuses = [rest.post(P + "trade/order", spot).status_code for _ in range(61)]
    assert statuses == [200] * 60 + [429]
    clock.advance(2.0)
    assert rest.post(P + "trade/order", order).json()["code"] == "0"
    rest.close()


def test_candle_history_is_the_same_whenever_it_is_first_read():
    """The history is made on its first read: reading it at once, or only after trades
    and minutes have passed, gives the same candles (the newest minutes aside)."""
    clocks = [FakeClock(wall_start=1_700_000_000.0, auto_advance=False) for _ in range(2)]
    rows, tickers = [], []
    for late, clock in enumerate(clocks):
        with Simulator(seed=11, auto_tick=False, ws=False, control=False, clock=clock) as sim:
            ex = sim.exchange
            if not late:
                early = ex.candle_rows("BTC-USDT", "1m", 300, None, None)
            for _ in range(8):  # trades and three new minutes before the first read
                sim.tick()
                clock.advance(25)
            ticker = ex.ticker("BTC-USDT")  # its 24 h fields read the history
            tickers.append(ticker)
            day = ex.candle_rows("BTC-USDT", "1m", 1500, None, None)
            since = int(day[0][0]) - 24 * 3600 * 1000  # the 24 h window's oldest minute
            assert ticker["open24h"] == min(r for r in day if int(r[0]) >= since)[1]
            got = ex.candle_rows("BTC-USDT", "1m", 300, None, None)
            rows.append({r[0]: r for r in got})
    assert tickers[0] == tickers[1]
    assert len(early) == 300 and len(rows[0]) == len(rows[1]) == 300
    old = [t for t in rows[0] if int(t) < int(early[0][0])]  # minutes before the start
    assert len(old) > 290 and all(rows[0][t] == rows[1][t] for t in old)
    assert rows[0] == rows[1]  # the newest minutes too: the same trades went into them
