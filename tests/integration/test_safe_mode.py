"""Safe mode ("只撤不加") against okx_sync.sim: REST and WS refusal before sending, what still
goes out, the cancel sweep, and the race with orders from 8 threads."""

from __future__ import annotations

import threading
import time

import pytest

from okx_sync import FakeClock, SafeModeError, WSClient
from okx_sync.errors import APIError, OkxError
from okx_sync.ids import new_cl_ord_id
from okx_sync.ops.safe_mode import SafeMode, allowed_in_safe_mode
from okx_sync.rest.endpoints import registry
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client, wait_until
from okx_sync.ws.policies import ConnectRateLimiter
from tests.ops_support import INST, far_px, order_kw


@pytest.fixture
def sim():
    with Simulator(seed=11, auto_tick=False) as s:
        yield s


@pytest.fixture
def client(sim):
    with sim_client(sim) as c:
        yield c


def sim_cl_ids(sim) -> set[str]:
    return {o.cl_ord_id for o in sim.exchange.orders.values() if o.cl_ord_id}


# --------------------------------------------------------------------------- pure rule


def test_rule_refuses_place_and_amend_allows_cancel_close_reads_and_reduce_only():
    reg = registry()
    place = reg.get("POST", "/api/v5/trade/order")
    batch = reg.get("POST", "/api/v5/trade/batch-orders")
    assert not allowed_in_safe_mode(place, {"instId": INST, "sz": "1"})
    assert allowed_in_safe_mode(place, {"instId": INST, "reduceOnly": True})
    assert allowed_in_safe_mode(place, {"instId": INST, "reduceOnly": "true"})
    assert not allowed_in_safe_mode(place, {"instId": INST, "reduceOnly": "false"})
    assert allowed_in_safe_mode(batch, [{"reduceOnly": "true"}, {"reduceOnly": True}])
    assert not allowed_in_safe_mode(batch, [{"reduceOnly": "true"}, {"sz": "1"}])
    assert not allowed_in_safe_mode(batch, [])
    assert not allowed_in_safe_mode(
        reg.get("POST", "/api/v5/trade/amend-order"), {"reduceOnly": "true"}
    )
    assert not allowed_in_safe_mode(reg.get("POST", "/api/v5/trade/order-algo"), {"sz": "1"})
    for method, path in [
        ("POST", "/api/v5/trade/cancel-order"),
        ("POST", "/api/v5/trade/cancel-batch-orders"),
        ("POST", "/api/v5/trade/close-position"),
        ("POST", "/api/v5/trade/cancel-all-after"),
        ("GET", "/api/v5/trade/order"),
        ("GET", "/api/v5/account/balance"),
    ]:
        assert allowed_in_safe_mode(reg.get(method, path), {"instId": INST}), path
    assert allowed_in_safe_mode(None, {"anything": 1})
    # every registry endpoint with order_action place/amend is refused without reduceOnly
    for ep in reg:
        if ep.order_action in ("place", "amend"):
            assert not allowed_in_safe_mode(ep, {"instId": INST}), ep.path


def test_state_enter_twice_exit_and_refusal_counts():
    sm = SafeMode()
    place = registry().get("POST", "/api/v5/trade/order")
    release = sm.guard(place, {"instId": INST})
    assert callable(release) and sm.state.in_flight == 1
    release()
    release()  # one-shot
    assert sm.state.in_flight == 0
    assert sm.enter("first", drain_timeout_s=0.1) == 0
    since = sm.state.since
    assert sm.enter("", drain_timeout_s=0.1) == 0
    state = sm.state
    assert state and state.active and state.reason == "first" and state.since == since
    assert state.entered == 1
    with pytest.raises(SafeModeError) as info:
        sm.guard(place, {"instId": INST, "clOrdId": "abc1"})
    assert info.value.reason == "first" and "abc1" in str(info.value)
    assert sm.state.refused == 1
    assert sm.exit() is True and sm.exit() is False
    assert not sm.state and sm.state.since is None


def test_enter_reports_when_admitted_orders_do_not_finish_in_time():
    sm = SafeMode()
    place = registry().get("POST", "/api/v5/trade/order")
    release = sm.guard(place, {"instId": INST})
    assert sm.enter("stuck", drain_timeout_s=0.05) == 1
    assert release is not None
    release()
    assert sm.state.in_flight == 0


# --------------------------------------------------------------------------- REST


def test_rest_place_and_amend_refused_before_sending_cancel_query_close_go_out(sim, client):
    px = far_px(sim, client)
    ack = client.trade.place_order(**order_kw(px, cl_ord_id=new_cl_ord_id()))
    report = client.enter_safe_mode(reason="incident 42")
    assert report.drained and report.cancel is None
    assert client.safe_mode and client.safe_mode.reason == "incident 42"
    sent_before = client.stats().attempts
    orders_before = len(sim.exchange.orders)

    with pytest.raises(SafeModeError, match="incident 42"):
        client.trade.place_order(**order_kw(px, cl_ord_id=new_cl_ord_id()))
    with pytest.raises(SafeModeError):
        client.trade.place_batch_orders(orders=[order_kw(px), order_kw(px)])
    with pytest.raises(SafeModeError):
        client.trade.amend_order(inst_id=INST, ord_id=ack.ord_id, new_px=px - 1)
    with pytest.raises(SafeModeError):  # the raw path is guarded too
        client.request(
            "POST",
            "/api/v5/trade/order",
            {
                "instId": INST,
                "tdMode": "cash",
                "side": "buy",
                "ordType": "limit",
                "sz": "0.01",
                "px": str(px),
            },
        )
    with pytest.raises(SafeModeError):
        client.trade.place_order_safely(**order_kw(px))
    assert client.stats().attempts == sent_before  # nothing left the process
    assert len(sim.exchange.orders) == orders_before
    assert client.safe_mode.refused == 5

    # queries, reduce-only placements, close-position and cancels still go out (OKX answers:
    # the simulator refuses a reduce-only order / a close without a position)
    assert client.trade.get_order(inst_id=INST, ord_id=ack.ord_id).state == "live"
    with pytest.raises(APIError) as reduce_only:
        client.trade.place_order(
            inst_id="BTC-USDT-SWAP",
            td_mode="cross",
            side="sell",
            ord_type="market",
            sz="1",
            reduce_only=True,
        )
    assert reduce_only.value.request_id  # a response from the exchange
    with pytest.raises(APIError) as close:
        client.trade.close_position(inst_id="BTC-USDT-SWAP", mgn_mode="cross")
    assert close.value.code == "51023" and close.value.request_id
    assert client.trade.cancel_order(inst_id=INST, ord_id=ack.ord_id).ok
    assert sim.exchange.orders[ack.ord_id].state == "canceled"

    assert client.exit_safe_mode() is True
    assert not client.safe_mode
    again = client.trade.place_order(**order_kw(px))
    assert again.ok


def test_cancel_open_orders_sweeps_every_page_in_batches_and_reports(sim, client):
    px = far_px(sim, client)
    ids = []
    for _ in range(2):  # 2 batches of 20 + 5 singles: 45 pending orders
        batch = [order_kw(px, cl_ord_id=new_cl_ord_id()) for _ in range(20)]
        ids += [a.cl_ord_id for a in client.trade.place_batch_orders(orders=batch)]
    for _ in range(5):
        ids.append(client.trade.place_order(**order_kw(px, cl_ord_id=new_cl_ord_id())).cl_ord_id)
    uid = sim.credentials.live_uid
    assert len(sim.exchange.pending(uid)) == 45

    report = client.enter_safe_mode(cancel_open_orders=True, reason="sweep")
    sweep = report.cancel
    assert sweep is not None and sweep.ok
    assert sweep.listed == 45 and len(sweep.cancelled) == 45 and not sweep.failed
    assert {c.cl_ord_id for c in sweep.cancelled} == set(ids)
    assert sim.exchange.pending(uid) == []
    assert report.to_dict()["cancel"]["listed"] == 45
    # cancel-batch-orders carried at most 20 each: 3 requests
    bucket = [
        b
        for b in client.gate_stats().buckets
        if b.key.startswith("POST /api/v5/trade/cancel-batch")
    ]
    assert sum(b.admitted for b in bucket) == 3


def test_cancel_sweep_reports_failures(sim, client):
    px = far_px(sim, client)
    for _ in range(3):
        client.trade.place_order(**order_kw(px, cl_ord_id=new_cl_ord_id()))
    sim.faults.server_errors(500, count=1, path="/api/v5/trade/cancel-batch-orders")
    report = client.enter_safe_mode(cancel_open_orders=True)
    sweep = report.cancel
    assert sweep is not None and not sweep.ok
    assert sweep.listed == 3 and not sweep.cancelled and len(sweep.failed) == 3
    assert {f.code for f in sweep.failed} == {"50026"}
    assert sweep.errors and "50026" in sweep.errors[0]
    assert client.safe_mode  # still on: the sweep failing never turns it off


def test_cancel_sweep_reports_the_order_a_short_reply_left_out(sim, client):
    px = far_px(sim, client)
    for _ in range(3):
        client.trade.place_order(**order_kw(px, cl_ord_id=new_cl_ord_id()))
    sim.faults.lose_order_response("short", action="cancel")  # the reply drops its last item
    sweep = client.enter_safe_mode(cancel_open_orders=True).cancel
    assert sweep is not None and not sweep.ok
    assert sweep.listed == 3 and len(sweep.cancelled) == 2 and len(sweep.failed) == 1
    assert "outcome unknown" in sweep.failed[0].msg


def test_concurrent_sweeps_share_one_and_report_nothing_failed(sim, client, monkeypatch, caplog):
    px = far_px(sim, client)
    ids = {
        client.trade.place_order(**order_kw(px, cl_ord_id=new_cl_ord_id())).cl_ord_id
        for _ in range(4)
    }
    original = type(client.trade).cancel_batch_orders
    calls: list[int] = []
    in_sweep = threading.Event()

    def held_cancel(api, **kw):  # the first sweep waits here until the second caller joined it
        calls.append(len(kw["orders"]))
        in_sweep.set()
        assert wait_until(lambda: client._safe_mode.sweep_joiners == 1)
        return original(api, **kw)

    monkeypatch.setattr(type(client.trade), "cancel_batch_orders", held_cancel)
    caplog.set_level("WARNING", logger="okx_sync")
    first, out1 = run_in_thread(lambda: client.enter_safe_mode(cancel_open_orders=True))
    assert in_sweep.wait(10)
    second, out2 = run_in_thread(lambda: client.enter_safe_mode(cancel_open_orders=True))
    first.join(10)
    second.join(10)
    r1, r2 = out1["result"].cancel, out2["result"].cancel
    assert r1 is r2  # one sweep, one report
    assert calls == [4]  # each order's cancel sent once
    assert r1.ok and {c.cl_ord_id for c in r1.cancelled} == ids and not r1.failed
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert client._safe_mode.sweep_joiners == 0
    # a later sweep (nothing running) runs on its own
    assert client.enter_safe_mode(cancel_open_orders=True).cancel.listed == 0


def test_order_already_cancelled_elsewhere_is_benign_not_failed(sim, client, monkeypatch, caplog):
    px = far_px(sim, client)
    acks = [client.trade.place_order(**order_kw(px, cl_ord_id=new_cl_ord_id())) for _ in range(3)]
    original = type(client.trade).cancel_batch_orders

    def sibling_first(
        api, **kw
    ):  # a sibling sweep cancels one order between listing and cancelling
        api.cancel_order(inst_id=INST, ord_id=acks[0].ord_id)
        return original(api, **kw)

    monkeypatch.setattr(type(client.trade), "cancel_batch_orders", sibling_first)
    caplog.set_level("WARNING", logger="okx_sync")
    sweep = client.enter_safe_mode(cancel_open_orders=True).cancel
    assert sweep is not None and sweep.ok and not sweep.failed
    assert [f.ord_id for f in sweep.already_final] == [acks[0].ord_id]
    assert sweep.already_final[0].code in ("51400", "51401", "51402")
    assert len(sweep.cancelled) == 2
    assert sweep.to_dict()["already_final"][0]["ord_id"] == acks[0].ord_id
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


# --------------------------------------------------------------------------- WS


def test_ws_place_and_amend_refused_cancel_goes_out(sim, client):
    px = far_px(sim, client)
    ws = WSClient(
        sim.ws_private_url, credentials=sim.credentials.live, instruments=client.instrument_cache
    )
    client._ws_wiring.register(ws)  # what the client's WS factories do: puts it under safe mode
    with ws:
        ack = ws.place_order(**order_kw(px, cl_ord_id=new_cl_ord_id()))
        assert ack.ok
        client.enter_safe_mode(reason="ws")
        before = len(sim.exchange.orders)
        with pytest.raises(SafeModeError):
            ws.place_order(**order_kw(px, cl_ord_id=new_cl_ord_id()))
        with pytest.raises(SafeModeError):
            ws.place_batch_orders([order_kw(px), order_kw(px)])
        with pytest.raises(SafeModeError):
            ws.amend_order(inst_id=INST, ord_id=ack.ord_id, new_px=px - 1)
        assert len(sim.exchange.orders) == before
        assert ws.cancel_order(inst_id=INST, ord_id=ack.ord_id).ok
        client.exit_safe_mode()
        assert ws.place_order(**order_kw(px)).ok


# --------------------------------------------------------------------------- the race


def test_orders_from_8_threads_none_placed_after_enter_returns(sim, client):
    px = far_px(sim, client)
    # slow answers keep orders in flight while safe mode is entered
    sim.faults.slow_responses(0.02, count=10_000, path="/api/v5/trade/order")
    start = threading.Barrier(9)
    placed: list[str] = []
    refused: list[str] = []
    failed: list[BaseException] = []
    lock = threading.Lock()
    enough = threading.Event()

    def trader() -> None:
        start.wait()
        while True:
            cid = new_cl_ord_id()
            try:
                client.trade.place_order(**order_kw(px, cl_ord_id=cid), validate=False)
            except SafeModeError:
                with lock:
                    refused.append(cid)
                return
            except OkxError as exc:  # not expected; recorded and asserted below
                with lock:
                    failed.append(exc)
                return
            with lock:
                placed.append(cid)
                if len(placed) >= 16:
                    enough.set()

    threads = [threading.Thread(target=trader, name=f"trader-{i}") for i in range(8)]
    for t in threads:
        t.start()
    start.wait()
    assert enough.wait(20)
    report = client.enter_safe_mode(reason="race")
    at_return = sim_cl_ids(sim)
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    assert not failed, failed
    final = sim_cl_ids(sim)
    assert final == at_return, "an order reached the exchange after enter_safe_mode returned"
    assert report.drained
    assert len(refused) == 8  # every thread ended on a refusal
    assert set(placed) <= final  # every success is at the exchange
    assert not (set(refused) & final)  # no refused order is
    assert client.safe_mode.refused == 8


# --------------------------------------------------------------------------- re-checked per send


@pytest.fixture
def manual():
    """A simulator and client on one manual FakeClock: time moves only when the test says."""
    clock = FakeClock(wall_start=time.time(), auto_advance=False)
    with Simulator(seed=13, auto_tick=False, clock=clock) as s, sim_client(s, clock=clock) as c:
        yield s, c, clock


def run_in_thread(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def target() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            out["error"] = exc

    thread = threading.Thread(target=target, name="order-under-test")
    thread.start()
    return thread, out


def wait_for(predicate, timeout: float = 10.0) -> None:
    assert wait_until(predicate, timeout), "condition not reached"


def test_rest_order_refused_at_its_retry_when_safe_mode_came_on_meanwhile(manual):
    sim, client, clock = manual
    px = far_px(sim, client)
    sim.faults.rate_limit_storm(1.0)
    cid = new_cl_ord_id()
    thread, out = run_in_thread(lambda: client.trade.place_order(**order_kw(px, cl_ord_id=cid)))
    # Its first attempt met the storm's 429 (not executed): it now waits for its retry.
    wait_for(lambda: any(e["path"] == "/api/v5/trade/order" for e in client._rest.recent_errors()))
    assert client.safe_mode.in_flight == 0  # nothing of it is on the wire
    report = client.enter_safe_mode(reason="storm", drain_timeout_s=0.0)
    assert report.drained  # enter did not wait for the order between its attempts
    clock.advance(3.0)  # storm over, the bucket's hold over: the retry is admitted ...
    thread.join(10)
    assert isinstance(out.get("error"), SafeModeError), out  # ... and refused before sending
    assert cid not in sim_cl_ids(sim)
    assert client.safe_mode.refused == 1
    assert [e["stage"] for e in client._rest.recent_errors() if e["cl_ord_ids"] == [cid]] == [
        "response"
    ]  # one attempt sent (the 429), the retry never was


def test_ws_order_waiting_in_the_gate_is_refused_when_safe_mode_came_on(manual):
    sim, client, clock = manual
    px = far_px(sim, client)
    place = registry().get("POST", "/api/v5/trade/order")
    with client.ws_private(connect_limiter=ConnectRateLimiter()) as ws:
        assert ws.place_order(**order_kw(px)).ok  # loads the account limit, fills nothing
        # OKX throttled BTC-USDT placements: the gate holds that bucket for 2 s.
        client._gate.observe(place, {"instId": INST}, http_status=429, code="50011")
        cid = new_cl_ord_id()
        thread, out = run_in_thread(lambda: ws.place_order(**order_kw(px, cl_ord_id=cid)))
        wait_for(lambda: client.gate_stats().waiting == 1)
        report = client.enter_safe_mode(reason="ws", drain_timeout_s=0.0)
        assert report.drained and client.safe_mode.in_flight == 0
        clock.advance(2.5)  # the hold is over: admitted, then refused before sending
        thread.join(10)
        assert isinstance(out.get("error"), SafeModeError), out
        assert cid not in sim_cl_ids(sim)
        assert client.safe_mode.refused == 1
