"""The simulator's exchange: matching outcomes, balances, positions, determinism, timers."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from okx_sync.clock import FakeClock
from okx_sync.sim import Simulator
from okx_sync.sim.exchange import Exchange, SimEvent
from okx_sync.sim.instruments import resolve_instruments
from okx_sync.sim.testing import RawRest
from okx_sync.testing import wait_until

UID = "1001"


def make_exchange(seed: int = 1, **kw) -> tuple[Exchange, list[SimEvent]]:
    clock = FakeClock(wall_start=1_790_000_000.0)
    specs = resolve_instruments(None, int(clock.time() * 1000))
    options = {"volatility": 0.0, "trade_probability": 0.0, "book_depth": 5}
    options.update(kw)
    ex = Exchange(specs=specs, seed=seed, clock=clock, **options)
    ex.create_account(UID, demo=False, label="t", balances={"USDT": "100000", "BTC": "1"})
    events: list[SimEvent] = []
    ex.add_listener(lambda evs, block: events.extend(evs))
    return ex, events


def order(inst="BTC-USDT", side="buy", ord_type="limit", sz="0.01", px=None, **extra):
    item = {
        "instId": inst,
        "tdMode": "cash" if "-SWAP" not in inst else "cross",
        "side": side,
        "ordType": ord_type,
        "sz": sz,
    }
    if px is not None:
        item["px"] = px
    item.update(extra)
    return item


def place(ex, *items):
    return ex.place_orders(UID, list(items))


def states(events, ord_id):
    return [
        e.data[0]["state"] for e in events if e.channel == "orders" and e.data[0]["ordId"] == ord_id
    ]


def best(ex, inst="BTC-USDT"):
    book = ex.live_book(inst)
    return Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])


def test_limit_order_rests_and_freezes():
    ex, events = make_exchange()
    bid, _ = best(ex)
    res = place(ex, order(px=str(bid - 10), sz="0.5"))[0]
    assert res["sCode"] == "0" and res["sMsg"] == "Order placed"
    o = ex.orders[res["ordId"]]
    assert o.state == "live" and o.is_live
    acc = ex.account(UID)
    assert acc.frozen["USDT"] == (bid - 10) * Decimal("0.5")
    level = [lv for lv in ex.live_book("BTC-USDT")["bids"] if Decimal(lv[0]) == bid - 10]
    assert level and level[0][1] == "0.5" and level[0][3] == "1"
    assert states(events, o.ord_id) == ["live"]
    account_events = [e for e in events if e.channel == "account"]
    assert account_events and account_events[-1].data[0]["details"][0]["ordFrozen"]


def test_crossing_limit_fills_across_levels_with_fees():
    ex, events = make_exchange()
    asks = ex.live_book("BTC-USDT")["asks"]
    need = Decimal(asks[0][1]) + Decimal(asks[1][1]) / 2
    limit = asks[1][0]
    res = place(ex, order(px=limit, sz=str(need)))[0]
    o = ex.orders[res["ordId"]]
    assert o.state == "filled" and o.acc_fill_sz == need
    assert states(events, o.ord_id)[0] == "live"
    assert states(events, o.ord_id)[-1] == "filled"
    fills = ex.account(UID).fills
    assert [f.fill_px for f in fills] == sorted(f.fill_px for f in fills)
    assert all(f.exec_type == "T" and f.fee_ccy == "BTC" for f in fills)
    cost = sum((f.fill_px * f.fill_sz for f in fills), Decimal(0))
    acc = ex.account(UID)
    assert acc.cash["USDT"] == Decimal("100000") - cost
    assert acc.cash["BTC"] == Decimal(1) + need + sum((f.fee for f in fills), Decimal(0))
    assert acc.frozen.get("USDT", 0) == 0
    assert o.avg_px == cost / need
    trades = [e for e in events if e.channel == "trades"]
    assert trades and all(t.data[0]["side"] == "buy" for t in trades)


def test_market_buy_spends_quote_amount():
    ex, _ = make_exchange()
    res = place(ex, order(ord_type="market", sz="100"))[0]
    o = ex.orders[res["ordId"]]
    assert o.tgt_ccy == "quote_ccy" and o.state == "filled"
    assert Decimal("99.9") < o.acc_quote <= Decimal("100")
    assert ex.account(UID).cash["USDT"] == Decimal("100000") - o.acc_quote


def test_post_only_ioc_fok_outcomes():
    ex, events = make_exchange()
    bid, ask = best(ex)
    taker = place(ex, order(ord_type="post_only", px=str(ask), sz="0.001"))[0]
    o = ex.orders[taker["ordId"]]
    assert (o.state, o.cancel_source, o.acc_fill_sz) == ("canceled", "31", 0)
    maker = place(ex, order(ord_type="post_only", px=str(bid), sz="0.001"))[0]
    assert ex.orders[maker["ordId"]].state == "live"
    book = ex.live_book("BTC-USDT")
    first_ask = Decimal(book["asks"][0][1])
    ioc = place(ex, order(ord_type="ioc", px=str(ask), sz=str(first_ask * 2)))[0]
    o = ex.orders[ioc["ordId"]]
    assert (o.state, o.cancel_source, o.acc_fill_sz) == ("canceled", "14", first_ask)
    _, ask2 = best(ex)
    total = sum(Decimal(lv[1]) for lv in ex.live_book("BTC-USDT")["asks"] if Decimal(lv[0]) <= ask2)
    fok = place(ex, order(ord_type="fok", px=str(ask2), sz=str(total + Decimal("0.001"))))[0]
    o = ex.orders[fok["ordId"]]
    assert (o.state, o.cancel_source, o.acc_fill_sz) == ("canceled", "13", 0)
    fok2 = place(ex, order(ord_type="fok", px=str(ask2), sz=str(total)))[0]
    assert ex.orders[fok2["ordId"]].state == "filled"
    assert ex.account(UID).frozen.get("USDT", 0) == Decimal(bid) * Decimal("0.001")
    del events


def test_item_errors():
    ex, _ = make_exchange()
    bid, ask = best(ex)
    cases = [
        (order(inst="NOPE-USDT", px="1"), "51001"),
        (order(px=str(bid), sz="0.000000001"), "51121"),
        (order(px=str(bid), sz="0.000001"), "51020"),
        (order(px=str(bid + Decimal("0.05"))), "51000"),
        (order(px=None), "51204"),
        (order(px=str(ask * 2)), "51006"),
        (order(px=str(bid), sz="10"), "51008"),
        (order(side="sell", px=str(ask), sz="5"), "51008"),
        (order(px=str(bid), clOrdId="bad-id!"), "51000"),
        (
            order(inst="BTC-USDT-SWAP", side="sell", ord_type="market", sz="1", reduceOnly="true"),
            "51169",
        ),
    ]
    for item, code in cases:
        res = place(ex, item)[0]
        assert res["sCode"] == code, (item, res)
        assert res["ordId"] == ""
    insufficient = place(ex, order(px=str(bid), sz="10"))[0]
    assert insufficient["subCode"] == "1000" and "USDT" in insufficient["sMsg"]
    assert not ex.orders


def test_cl_ord_id_unique_among_pending_and_reusable():
    ex, _ = make_exchange()
    bid, _ = best(ex)
    first, dup_in_batch = place(
        ex, order(px=str(bid - 5), clOrdId="abc1"), order(px=str(bid - 6), clOrdId="abc1")
    )
    assert first["sCode"] == "0" and dup_in_batch["sCode"] == "51016"
    assert place(ex, order(px=str(bid - 7), clOrdId="abc1"))[0]["sCode"] == "51016"
    ex.cancel_orders(UID, [{"instId": "BTC-USDT", "clOrdId": "abc1"}])
    again = place(ex, order(px=str(bid - 8), clOrdId="abc1"))[0]
    assert again["sCode"] == "0"
    assert ex._find(UID, "BTC-USDT", "", "abc1").ord_id == again["ordId"]  # latest wins


def test_cancel_and_amend():
    ex, events = make_exchange()
    bid, _ = best(ex)
    res = place(ex, order(px=str(bid - 10), sz="0.2"))[0]
    ord_id = res["ordId"]
    amended = ex.amend_orders(
        UID, [{"instId": "BTC-USDT", "ordId": ord_id, "newSz": "0.1", "reqId": "q1"}]
    )[0]
    assert amended["sCode"] == "0" and amended["reqId"] == "q1"
    o = ex.orders[ord_id]
    assert o.sz == Decimal("0.1") and ex.account(UID).frozen["USDT"] == (bid - 10) * Decimal("0.1")
    push = [e.data[0] for e in events if e.channel == "orders" and e.data[0]["ordId"] == ord_id][-1]
    assert push["amendResult"] == "0" and push["reqId"] == "q1"
    moved = ex.amend_orders(UID, [{"instId": "BTC-USDT", "ordId": ord_id, "newPx": str(bid - 20)}])[
        0
    ]
    assert moved["sCode"] == "0" and o.px == bid - 20
    bad = ex.amend_orders(UID, [{"instId": "BTC-USDT", "ordId": ord_id}])[0]
    assert bad["sCode"] == "51500"
    assert ex.cancel_orders(UID, [{"instId": "BTC-USDT", "ordId": ord_id}])[0]["sCode"] == "0"
    assert o.state == "canceled" and o.cancel_source == "1"
    assert ex.cancel_orders(UID, [{"instId": "BTC-USDT", "ordId": ord_id}])[0]["sCode"] == "51400"
    assert (
        ex.amend_orders(UID, [{"instId": "BTC-USDT", "ordId": ord_id, "newSz": "1"}])[0]["sCode"]
        == "51503"
    )
    assert ex.cancel_orders(UID, [{"instId": "BTC-USDT"}])[0]["sCode"] == "51003"
    assert ex.account(UID).frozen.get("USDT", 0) == 0


def test_amend_price_through_the_book_executes():
    ex, _ = make_exchange()
    bid, ask = best(ex)
    res = place(ex, order(px=str(bid - 10), sz="0.001"))[0]
    ex.amend_orders(UID, [{"instId": "BTC-USDT", "ordId": res["ordId"], "newPx": str(ask)}])
    o = ex.orders[res["ordId"]]
    assert o.state == "filled" and o.avg_px == ask


def test_self_trade_prevention_cancels_maker():
    ex, _ = make_exchange()
    bid, ask = best(ex)
    inside = bid + Decimal("0.1")
    maker = place(ex, order(side="sell", px=str(inside), sz="0.01"))[0]
    taker = place(ex, order(side="buy", px=str(inside), sz="0.01"))[0]
    assert ex.orders[maker["ordId"]].cancel_source == "32"
    assert ex.orders[taker["ordId"]].state == "live"  # nothing else at that price
    del ask


def test_swap_position_pnl_and_close():
    ex, events = make_exchange()
    place(ex, order(inst="BTC-USDT-SWAP", ord_type="market", sz="1"))
    acc = ex.account(UID)
    pos = acc.positions["BTC-USDT-SWAP"]
    assert pos.pos == Decimal(1) and pos.avg_px > 0
    usdt_before = acc.cash["USDT"]
    sell = place(ex, order(inst="BTC-USDT-SWAP", side="sell", ord_type="market", sz="1"))[0]
    o = ex.orders[sell["ordId"]]
    assert pos.pos == 0
    # bought at the ask, sold at the bid: the spread is a realised loss
    assert o.pnl < 0 and acc.cash["USDT"] == usdt_before + o.pnl + o.fee
    bp = [e for e in events if e.channel == "balance_and_position"]
    assert bp and bp[-1].data[0]["eventType"] == "filled" and bp[-1].data[0]["trades"]
    assert any(e.channel == "positions" for e in events)


def test_resting_order_fills_when_market_moves_to_it():
    ex, events = make_exchange(seed=3, volatility=1.0, trade_probability=0.5, book_depth=20)
    bid, _ = best(ex)
    res = place(ex, order(px=str(bid), sz="0.001"))[0]
    o = ex.orders[res["ordId"]]
    for _ in range(3000):
        if not o.is_live:
            break
        ex.step()
    assert o.state == "filled"
    fill = ex.account(UID).fills[-1]
    assert fill.exec_type == "M" and fill.fill_px == bid
    assert fill.fee == Decimal("0.001") * Decimal("-0.0008")


def test_same_seed_same_market():
    a, _ = make_exchange(seed=9, volatility=1.0, trade_probability=0.5)
    b, _ = make_exchange(seed=9, volatility=1.0, trade_probability=0.5)
    c, _ = make_exchange(seed=10, volatility=1.0, trade_probability=0.5)
    for ex in (a, b, c):
        for _ in range(50):
            ex.step()
            ex.flush()
    for inst in a.specs:
        assert a.book(inst) == b.book(inst)
    assert any(a.book(i).bids != c.book(i).bids for i in a.specs)
    assert a.trades("BTC-USDT") == b.trades("BTC-USDT")


def test_published_book_chains_and_checksums():
    ex, events = make_exchange(seed=4, volatility=1.0, trade_probability=0.5)
    last = ex.book("BTC-USDT").seq_id
    for _ in range(30):
        ex.step()
        ex.flush()
    updates = [e.data[0] for e in events if e.channel == "books" and e.inst_id == "BTC-USDT"]
    assert updates
    for u in updates:
        assert u["prevSeqId"] == last and u["seqId"] > last
        last = u["seqId"]
    assert ex.book("BTC-USDT").seq_id == last


def timers_caught_up(sim: Simulator) -> None:
    """Return once the simulator's timer thread ran everything due at the fake clock's now:
    a probe timer due now runs after every timer due earlier (one heap, one thread)."""
    ran = threading.Event()
    sim.timers.schedule(0.0, ran.set)
    assert ran.wait(5), "the simulator's timer thread did not run a due timer"


def test_cancel_all_after_fires_with_cancel_source_20():
    clock = FakeClock(wall_start=time.time())
    with Simulator(seed=2, auto_tick=False, clock=clock, ws=False, control=False) as sim:
        rest = RawRest(
            sim.rest_url, sim.credentials.live, clock_ms=lambda: int(clock.time() * 1000)
        )
        bid = Decimal(sim.exchange.book("BTC-USDT").bids[-1][0]) - 10
        ord_id = rest.post(
            "/api/v5/trade/order", order(px=str(bid), sz="0.001", tag="keep")
        ).json()["data"][0]["ordId"]
        other = rest.post("/api/v5/trade/order", order(px=str(bid), sz="0.001")).json()["data"][0][
            "ordId"
        ]
        armed = rest.post("/api/v5/trade/cancel-all-after", {"timeOut": "10"}).json()["data"][0]
        assert int(armed["triggerTime"]) == int(armed["ts"]) + 10
        clock.advance(1.0)  # the endpoint allows 1 request per second
        assert (
            rest.post("/api/v5/trade/cancel-all-after", {"timeOut": "5"}).json()["code"] == "51000"
        )
        clock.advance(8.0)
        timers_caught_up(sim)  # 9 s of 10: nothing due yet
        assert sim.exchange.orders[ord_id].is_live
        clock.advance(1.5)
        assert wait_until(lambda: not sim.exchange.orders[ord_id].is_live, 5)
        for oid in (ord_id, other):
            got = rest.get("/api/v5/trade/order", {"instId": "BTC-USDT", "ordId": oid}).json()[
                "data"
            ][0]
            assert (got["state"], got["cancelSource"]) == ("canceled", "20")
        rest.close()


def test_cancel_all_after_rearm_and_disarm():
    clock = FakeClock(wall_start=time.time())
    with Simulator(seed=2, auto_tick=False, clock=clock, ws=False, control=False) as sim:
        rest = RawRest(
            sim.rest_url, sim.credentials.live, clock_ms=lambda: int(clock.time() * 1000)
        )
        bid = Decimal(sim.exchange.book("BTC-USDT").bids[-1][0]) - 10
        ord_id = rest.post("/api/v5/trade/order", order(px=str(bid), sz="0.001")).json()["data"][0][
            "ordId"
        ]
        rest.post("/api/v5/trade/cancel-all-after", {"timeOut": "10"})
        clock.advance(1.0)  # the endpoint allows 1 request per second
        disarmed = rest.post("/api/v5/trade/cancel-all-after", {"timeOut": "0"}).json()["data"][0]
        assert disarmed["triggerTime"] == "0"
        clock.advance(20)
        timers_caught_up(sim)  # the disarmed timer's time passed
        assert sim.exchange.orders[ord_id].is_live
        assert not sim.exchange.cancel_all_after_armed(sim.live_uid)
        rest.close()


def test_simulator_threads_are_named_and_joined():
    before = set(threading.enumerate())
    with Simulator(seed=1) as sim:
        names = {t.name for t in threading.enumerate() if t not in before}
        assert {
            "okx-sim-rest",
            "okx-sim-ws",
            "okx-sim-market",
            "okx-sim-timers",
            "okx-sim-control",
        } <= names
        assert sim.rest_url.startswith("http://127.0.0.1:")
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []


def test_quiet_book_sends_the_no_change_update():
    ex, events = make_exchange(quiet_interval_s=0.0)
    seq = ex.book("BTC-USDT").seq_id
    ex.flush(["BTC-USDT"])
    upd = [e.data[0] for e in events if e.channel == "books"][-1]
    assert (upd["prevSeqId"], upd["seqId"], upd["bids"], upd["asks"]) == (seq, seq, [], [])
    assert upd["checksum"] == ex.book("BTC-USDT").checksum


def test_rest_exp_time_header_refuses_late_orders():
    with Simulator(seed=2, auto_tick=False, ws=False, control=False) as sim:
        rest = RawRest(sim.rest_url, sim.credentials.live)
        bid = Decimal(sim.exchange.book("BTC-USDT").bids[-1][0]) - 10
        late = str(int(time.time() * 1000) - 1)
        r = rest.post("/api/v5/trade/order", order(px=str(bid)), headers={"expTime": late}).json()
        assert r["code"] == "50037" and not sim.exchange.orders
        soon = str(int(time.time() * 1000) + 10_000)
        r = rest.post("/api/v5/trade/order", order(px=str(bid)), headers={"expTime": soon}).json()
        assert r["code"] == "0"
        rest.close()
