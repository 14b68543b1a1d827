"""WS order entry on the private socket against okx_sync.sim: acks, errors, gate, unknown outcomes."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from okx_sync import WSClient
from okx_sync.clock import FakeClock
from okx_sync.errors import OrderError, RequestStateError, ValidationError
from okx_sync.gate import ACCOUNT_BUCKET_KEY, RequestGate, RequestGateConfig
from okx_sync.ids import new_cl_ord_id
from okx_sync.instruments import InstrumentCache
from okx_sync.models import Instrument, Order, OrderAck
from okx_sync.sim import Simulator
from okx_sync.sim.testing import RawRest
from okx_sync.testing import sim_client, wait_until
from okx_sync.testing.ws_servers import ws_options, ws_threads
from okx_sync.ws.policies import ConnectRateLimiter

INST = "BTC-USDT"


@pytest.fixture
def sim():
    with Simulator(seed=21) as s:
        yield s
    assert not ws_threads(), ws_threads()


@pytest.fixture
def instruments(sim):
    rest = RawRest(sim.rest_url)

    def fetch(inst_type, inst_family):
        params = {"instType": inst_type}
        if inst_family:
            params["instFamily"] = inst_family
        body = rest.get("/api/v5/public/instruments", params, sign=False).json()
        return [Instrument.from_okx(d) for d in body["data"]]

    yield InstrumentCache(fetch)
    rest.close()


def far_bid(sim, instruments) -> Decimal:
    best = Decimal(sim.exchange.book(INST).bids[0][0])
    return instruments.round_price(INST, best * Decimal("0.8"))


def private(sim, instruments, **kw) -> WSClient:
    return WSClient(
        sim.ws_private_url,
        credentials=sim.credentials.live,
        instruments=instruments,
        **ws_options(**kw),
    )


def test_place_amend_cancel_round_trip(sim, instruments):
    pushes: list[Order] = []
    gate = RequestGate(RequestGateConfig())
    ws = private(sim, instruments, gate=gate)
    ws.on("orders", pushes.append)
    with ws:
        ws.subscribe_and_wait({"channel": "orders", "instType": "SPOT"})
        px = far_bid(sim, instruments)
        cid = new_cl_ord_id()
        ack = ws.place_order(
            inst_id=INST,
            td_mode="cash",
            side="buy",
            ord_type="limit",
            px=px,
            sz="0.01",
            cl_ord_id=cid,
        )
        assert isinstance(ack, OrderAck) and ack.ok and ack.cl_ord_id == cid and ack.ord_id
        placed = sim.exchange.orders[ack.ord_id]
        assert placed.to_okx()["clOrdId"] == cid and placed.to_okx()["state"] == "live"
        assert wait_until(lambda: any(o.cl_ord_id == cid and o.state == "live" for o in pushes))

        new_px = instruments.round_price(INST, px * Decimal("0.99"))
        amended = ws.amend_order(inst_id=INST, cl_ord_id=cid, new_px=new_px, req_id="r1")
        assert amended.ok and amended.req_id == "r1"
        assert wait_until(lambda: Decimal(sim.exchange.orders[ack.ord_id].to_okx()["px"]) == new_px)

        cancelled = ws.cancel_order(inst_id=INST, ord_id=ack.ord_id)
        assert cancelled.ok and cancelled.ord_id == ack.ord_id
        assert wait_until(lambda: any(o.cl_ord_id == cid and o.state == "canceled" for o in pushes))

        # batches
        ids = [new_cl_ord_id() for _ in range(3)]
        acks = ws.place_batch_orders(
            [
                {
                    "inst_id": INST,
                    "td_mode": "cash",
                    "side": "buy",
                    "ord_type": "limit",
                    "px": px,
                    "sz": "0.01",
                    "cl_ord_id": c,
                }
                for c in ids
            ]
        )
        assert [a.cl_ord_id for a in acks] == ids and all(a.ok for a in acks)
        acks = ws.amend_batch_orders(
            [{"inst_id": INST, "cl_ord_id": c, "new_sz": "0.02"} for c in ids]
        )
        assert all(a.ok for a in acks)
        acks = ws.cancel_batch_orders([{"inst_id": INST, "cl_ord_id": c} for c in ids])
        assert all(a.ok for a in acks)
    stats = gate.stats()
    paths = {b.key for b in stats.buckets if b.admitted}
    text = " ".join(str(p) for p in paths)
    # WS order entry drew on the same buckets REST order entry uses
    for path in ("trade/order", "trade/amend-order", "trade/cancel-order", "trade/batch-orders"):
        assert path in text, (path, text)
    gate.close()


def test_order_error_and_validation(sim, instruments):
    with private(sim, instruments) as ws:
        cid = new_cl_ord_id()
        with pytest.raises(OrderError) as info:
            ws.place_order(
                inst_id=INST,
                td_mode="cash",
                side="buy",
                ord_type="limit",
                px=far_bid(sim, instruments),
                sz="1000",
                cl_ord_id=cid,
            )
        err = info.value
        assert err.code == "1" and err.cl_ord_ids == (cid,)
        assert err.items[0].s_code == "51008" and not err.items[0].ok
        before = len(sim.exchange.orders)
        with pytest.raises(ValidationError):
            ws.place_order(inst_id=INST, td_mode="cash", side="buy", sz="0.01")  # no ord_type
        with pytest.raises(ValidationError):
            ws.place_order(
                inst_id="NOPE-USDT", td_mode="cash", side="buy", ord_type="market", sz="1"
            )
        with pytest.raises(ValidationError):
            ws.place_order(
                inst_id=INST, td_mode="cash", side="buy", ord_type="limit", px=1.5, sz="1"
            )
        assert len(sim.exchange.orders) == before  # nothing was sent


def test_not_connected_is_not_dispatched(sim, instruments):
    ws = private(sim, instruments)
    with pytest.raises(RequestStateError) as info:
        ws.place_order(
            inst_id=INST, td_mode="cash", side="buy", ord_type="market", sz="0.01", cl_ord_id="abc1"
        )
    assert info.value.stage == "ws" and info.value.dispatched is False
    assert info.value.cl_ord_ids == ("abc1",)


def test_socket_dropped_mid_order_is_dispatched_unknown(sim, instruments):
    with private(sim, instruments, order_timeout_s=5) as ws:
        sim.faults.lose_order_response("timeout", transport="ws", action="place")
        cid = new_cl_ord_id()
        result: list[BaseException] = []

        def place():
            try:
                ws.place_order(
                    inst_id=INST,
                    td_mode="cash",
                    side="buy",
                    ord_type="limit",
                    px=far_bid(sim, instruments),
                    sz="0.01",
                    cl_ord_id=cid,
                )
            except BaseException as exc:
                result.append(exc)

        t = threading.Thread(target=place)
        t.start()
        # the order executed on the exchange, its answer is held: drop the socket now
        assert wait_until(
            lambda: any(o.to_okx()["clOrdId"] == cid for o in sim.exchange.orders.values())
        )
        sim.faults.drop_ws(kind="private")
        t.join(5)
        assert len(result) == 1
        err = result[0]
        assert isinstance(err, RequestStateError)
        assert err.stage == "ws" and err.dispatched is True and err.cl_ord_ids == (cid,)
        assert "outcome unknown" in str(err)
        # the client reconnects by itself
        assert wait_until(lambda: ws.stats().connected and ws.stats().reconnects == 1)


def test_no_reply_within_timeout_is_dispatched_unknown(sim, instruments):
    with private(sim, instruments) as ws:
        sim.faults.lose_order_response("timeout", transport="ws", action="cancel")
        t0 = time.monotonic()
        with pytest.raises(RequestStateError) as info:
            ws.cancel_order(inst_id=INST, cl_ord_id="nosuchorder1", timeout_s=0.3)
        assert time.monotonic() - t0 < 2
        assert info.value.dispatched is True and info.value.cl_ord_ids == ("nosuchorder1",)
        assert ws.stats().connected  # a lost answer is not a reason to reconnect


def test_client_factories_share_credentials_gate_and_instruments(sim):
    import okx_sync

    with sim_client(sim) as client:
        assert (
            okx_sync.Client(demo=True)._ws_urls["private"]
            == "wss://wspap.okx.com:8443/ws/v5/private"
        )
        assert okx_sync.Client()._ws_urls["public"] == "wss://ws.okx.com:8443/ws/v5/public"
        pushes: list[Order] = []
        with client.ws_public() as pub, client.ws_private() as priv, client.ws_business() as biz:
            assert pub.url == sim.ws_public_url and biz.url == sim.ws_business_url
            assert priv.stats().connected and biz.stats().connected
            assert client.ws_clients() == [pub, priv, biz]
            priv.on("orders", pushes.append)
            priv.subscribe_and_wait({"channel": "orders", "instType": "ANY"})
            px = client.round_price(
                INST, Decimal(sim.exchange.book(INST).bids[0][0]) * Decimal("0.8")
            )
            cid = new_cl_ord_id()
            # instIdCode from the client's instrument cache, buckets from the client's gate
            ack = priv.place_order(
                inst_id=INST,
                td_mode="cash",
                side="buy",
                ord_type="limit",
                px=px,
                sz="0.01",
                cl_ord_id=cid,
            )
            assert ack.ok
            assert wait_until(lambda: any(o.cl_ord_id == cid for o in pushes))
            buckets = " ".join(str(b.key) for b in client.gate_stats().buckets if b.admitted)
            assert "trade/order" in buckets
            # safe mode reaches WS order entry too
            client.enter_safe_mode(cancel_open_orders=False, reason="test")
            with pytest.raises(okx_sync.SafeModeError):
                priv.place_order(
                    inst_id=INST, td_mode="cash", side="buy", ord_type="limit", px=px, sz="0.01"
                )
            client.exit_safe_mode()
            assert priv.cancel_order(inst_id=INST, cl_ord_id=cid).ok
    with pytest.raises(ValidationError):
        okx_sync.Client(ws_urls={"spot": "ws://x"})
    with pytest.raises(ValidationError):
        okx_sync.Client().ws_private()


def test_ws_orders_load_the_account_limit_and_share_the_account_bucket_with_rest():
    # A manual FakeClock shared with the simulator: time moves only when the test says so.
    clock = FakeClock(wall_start=time.time(), auto_advance=False)
    with (
        Simulator(seed=23, auto_tick=False, account_order_limit=1500, clock=clock) as sim,
        sim_client(sim, clock=clock, gate=RequestGateConfig(refresh_account_limit_s=5.0)) as client,
        # its own connect limiter: the process-wide one holds other tests' system-clock times
        client.ws_private(connect_limiter=ConnectRateLimiter()) as priv,
    ):
        px = client.round_price(INST, Decimal(sim.exchange.book(INST).bids[0][0]) * Decimal("0.8"))
        order = dict(inst_id=INST, td_mode="cash", side="buy", ord_type="limit", sz="0.01", px=px)

        def account() -> dict:
            stats = client.gate_stats()
            [found] = [b for b in stats.buckets if b.key == ACCOUNT_BUCKET_KEY]
            loads = [b.admitted for b in stats.buckets if "account-rate-limit" in b.key]
            return {**found.to_dict(), "loads": sum(loads), **stats.account_order_limit.to_dict()}

        # The first order of the client is a WS order: the limit is loaded before it.
        ws_ack = priv.place_order(**order, cl_ord_id=new_cl_ord_id())
        acc = account()
        assert (acc["source"], acc["limit"], acc["loads"], acc["admitted"]) == (
            "account-rate-limit",
            1500,
            1,
            1,
        )
        # REST and WS orders draw on that one account bucket (cancels do not).
        rest_ack = client.trade.place_order(**order, cl_ord_id=new_cl_ord_id())
        assert account()["admitted"] == 2
        priv.amend_order(inst_id=INST, ord_id=ws_ack.ord_id, new_px=px - 1)
        assert account()["admitted"] == 3
        priv.cancel_order(inst_id=INST, ord_id=ws_ack.ord_id)
        client.trade.cancel_order(inst_id=INST, ord_id=rest_ack.ord_id)
        assert (account()["admitted"], account()["loads"]) == (3, 1)  # not reloaded meanwhile
        # refresh_account_limit_s later, the next WS order reloads it first.
        sim.limiter.account_order_limit = 1750
        clock.advance(5.0)
        priv.place_order(**order, cl_ord_id=new_cl_ord_id())
        acc = account()
        assert (acc["limit"], acc["capacity"], acc["loads"], acc["admitted"]) == (1750, 1575, 2, 4)
        assert acc["load_failures"] == 0
    assert not ws_threads(), ws_threads()
