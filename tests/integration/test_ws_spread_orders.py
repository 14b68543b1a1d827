"""Issue 24: spread order entry over the business WebSocket, against okx_sync.sim end to end;
the exactly-one-id check of WS amend/cancel; the order-op waiters of ``WSStats``."""

from __future__ import annotations

import threading

import pytest

import okx_sync
from okx_sync import WSClient
from okx_sync.errors import OrderError, RequestStateError, ValidationError
from okx_sync.gate import RequestGate, RequestGateConfig
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client, wait_until
from okx_sync.testing.ws_servers import ws_options, ws_threads

SPREAD = "BTC-USDT_BTC-USDT-SWAP"


@pytest.fixture
def sim():
    with Simulator(seed=24) as s:
        yield s
    assert not ws_threads(), ws_threads()


def business(sim, **kw) -> WSClient:
    return WSClient(sim.ws_business_url, credentials=sim.credentials.live, **ws_options(**kw))


def received(sim, kind: str) -> dict[str, int]:
    """The ops the simulator received on its ``kind`` connections."""
    out: dict[str, int] = {}
    for conn in sim.hub.select(kind=kind):
        for op, n in conn.ops_received.items():
            out[op] = out.get(op, 0) + n
    return out


def test_spread_place_amend_cancel_mass_cancel_round_trip(sim):
    gate = RequestGate(RequestGateConfig())
    pushes: list = []  # typed sprd-orders models
    ws = business(sim, gate=gate)
    ws.on("sprd-orders", pushes.append)
    desk = sim.hub.spreads
    uid = sim.credentials.live_uid
    with ws:
        assert ws.stats().need_login
        ws.subscribe_and_wait({"channel": "sprd-orders", "sprdId": SPREAD})
        ack = ws.place_spread_order(
            sprd_id=SPREAD, side="buy", ord_type="limit", px="-1.5", sz="2", cl_ord_id="sp1"
        )
        assert ack.ok and ack.cl_ord_id == "sp1" and ack.ord_id
        assert [o["clOrdId"] for o in desk.live(uid)] == ["sp1"]
        assert wait_until(
            lambda: any(p.ord_id == ack.ord_id and p.sprd_id == SPREAD for p in pushes)
        )

        amended = ws.amend_spread_order(cl_ord_id="sp1", new_sz="3", req_id="r9")
        assert amended.ok and amended.req_id == "r9" and amended.ord_id == ack.ord_id
        assert desk.live(uid)[0]["sz"] == "3"

        cancelled = ws.cancel_spread_order(ord_id=ack.ord_id)
        assert cancelled.ok and desk.live(uid) == []
        assert wait_until(lambda: any(p.state == "canceled" for p in pushes))
        # cancelling it again: OKX's item error, raised as OrderError like REST
        with pytest.raises(OrderError) as info:
            ws.cancel_spread_order(ord_id=ack.ord_id)
        assert info.value.items[0].s_code == "51401"

        for _ in range(3):
            ws.place_spread_order(sprd_id=SPREAD, side="sell", ord_type="limit", px="1", sz="1")
        other = "ETH-USDT_ETH-USDT-SWAP"
        ws.place_spread_order(sprd_id=other, side="buy", ord_type="limit", px="1", sz="1")
        assert ws.mass_cancel_spread_orders(sprd_id=SPREAD) is True
        assert [o["sprdId"] for o in desk.live(uid)] == [other]  # by sprdId only
        assert ws.mass_cancel_spread_orders() is True
        assert desk.live(uid) == []
        # an unknown spread is OKX's item error
        with pytest.raises(OrderError):
            ws.place_spread_order(sprd_id="NOPE_NADA", side="buy", ord_type="limit", px="1", sz="1")
    keys = " ".join(str(b.key) for b in gate.stats().buckets if b.admitted)
    for path in ("sprd/order", "sprd/amend-order", "sprd/cancel-order", "sprd/mass-cancel"):
        assert path in keys, (path, keys)  # the REST twins' buckets
    gate.close()


def test_spread_ops_only_on_a_business_client_and_validated_before_sending(sim):
    with WSClient(sim.ws_private_url, credentials=sim.credentials.live, **ws_options()) as priv:
        with pytest.raises(ValidationError, match="business WebSocket"):
            priv.place_spread_order(sprd_id=SPREAD, side="buy", ord_type="limit", px="1", sz="1")
        with pytest.raises(ValidationError, match="business WebSocket"):
            priv.mass_cancel_spread_orders()
        assert not any(op.startswith("sprd") for op in received(sim, "private"))
    with business(sim) as ws:
        with pytest.raises(ValidationError, match="does not take orders"):
            ws.place_order(
                inst_id="BTC-USDT", td_mode="cash", side="buy", ord_type="market", sz="1"
            )
        with pytest.raises(ValidationError, match="side"):
            ws.place_spread_order(sprd_id=SPREAD, ord_type="limit", px="1", sz="1")
        with pytest.raises(ValidationError, match="sz"):
            ws.place_spread_order(sprd_id=SPREAD, side="buy", ord_type="limit", px="1", sz="0")
        with pytest.raises(
            ValidationError,
            match=r"exactly one of ord_id \(ordId\) or cl_ord_id \(clOrdId\), got neither",
        ):
            ws.amend_spread_order(new_sz="2")
        with pytest.raises(
            ValidationError,
            match=r"exactly one of ord_id \(ordId\) or cl_ord_id \(clOrdId\), got both",
        ):
            ws.cancel_spread_order(ord_id="1", cl_ord_id="a1")
        assert received(sim, "business") == {"login": 1}  # nothing else was sent


def test_regular_amend_and_cancel_need_exactly_one_order_id(sim):
    with WSClient(sim.ws_private_url, credentials=sim.credentials.live, **ws_options()) as ws:
        cases = [
            lambda: ws.cancel_order(inst_id="BTC-USDT"),
            lambda: ws.cancel_order(inst_id="BTC-USDT", ord_id="1", cl_ord_id="c1"),
            lambda: ws.amend_order(inst_id="BTC-USDT", new_sz="1"),
            lambda: ws.amend_order(inst_id="BTC-USDT", ord_id="1", cl_ord_id="c1", new_sz="1"),
            lambda: ws.cancel_batch_orders(
                [{"inst_id": "BTC-USDT", "ord_id": "1"}, {"inst_id": "BTC-USDT"}]
            ),
        ]
        for call in cases:
            with pytest.raises(
                ValidationError, match=r"exactly one of ord_id \(ordId\) or cl_ord_id \(clOrdId\)"
            ):
                call()
        assert received(sim, "private") == {"login": 1}  # nothing reached the simulator


def test_spread_safe_mode_refuses_place_and_amend_allows_cancels(sim):
    with sim_client(sim) as client, client.ws_business() as ws:
        ack = ws.place_spread_order(sprd_id=SPREAD, side="buy", ord_type="limit", px="1", sz="1")
        client.enter_safe_mode(cancel_open_orders=False, reason="test")
        try:
            with pytest.raises(okx_sync.SafeModeError):
                ws.place_spread_order(sprd_id=SPREAD, side="buy", ord_type="limit", px="1", sz="1")
            with pytest.raises(okx_sync.SafeModeError):
                ws.amend_spread_order(ord_id=ack.ord_id, new_px="2")
            assert received(sim, "business").get("sprd-amend-order", 0) == 0
            assert ws.cancel_spread_order(ord_id=ack.ord_id).ok
            assert ws.mass_cancel_spread_orders() is True
        finally:
            client.exit_safe_mode()


def test_spread_answer_lost_is_outcome_unknown_and_op_waiters_counts_the_caller(sim):
    with business(sim, order_timeout_s=10) as ws:
        sim.faults.lose_order_response("timeout", transport="ws", action="place")
        result: list[BaseException] = []

        def place() -> None:
            try:
                ws.place_spread_order(
                    sprd_id=SPREAD, side="buy", ord_type="limit", px="1", sz="1", cl_ord_id="lost1"
                )
            except BaseException as exc:
                result.append(exc)

        assert ws.stats().op_waiters == 0
        t = threading.Thread(target=place)
        t.start()
        assert wait_until(lambda: ws.stats().op_waiters == 1)  # blocked on the answer
        uid = sim.credentials.live_uid
        assert wait_until(lambda: len(sim.hub.spreads.live(uid)) == 1)  # it executed
        sim.faults.drop_ws(kind="business")  # the answer never comes: the socket ends
        t.join(5)
        err = result[0]
        assert isinstance(err, RequestStateError) and err.dispatched is True
        assert err.cl_ord_ids == ("lost1",) and "outcome unknown" in str(err)
        assert ws.stats().op_waiters == 0
        # no reply within timeout_s: the same
        sim.faults.lose_order_response("timeout", transport="ws", action="cancel")
        assert wait_until(lambda: ws.stats().connected)
        with pytest.raises(RequestStateError, match="outcome unknown"):
            ws.mass_cancel_spread_orders(timeout_s=0.3)
        assert ws.stats().op_waiters == 0
