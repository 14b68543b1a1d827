"""Reconciliation: Reconciler.snapshot / resolve_order and place_order_safely, against
okx_sync.sim (orders executed with the answer lost, 50004, bare 5xx) and against a scripted
client for the branches a simulator cannot stage (51016 after a proven absence, exhaustion)."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest
import requests

from okx_sync import Reconciler, RetryPolicy, SafeModeError
from okx_sync.clock import FakeClock
from okx_sync.errors import APIError, OrderError, RequestStateError, ValidationError
from okx_sync.ids import new_cl_ord_id
from okx_sync.models import Order, OrderAck
from okx_sync.ops.reconcile import is_outcome_unknown, place_order_safely
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client
from tests.ops_support import INST, far_px, order_kw


@pytest.fixture
def sim():
    with Simulator(seed=17, auto_tick=False, ws=False) as s:
        yield s


@pytest.fixture
def client(sim):
    with sim_client(sim) as c:
        yield c


def at_exchange(sim, cl_ord_id: str) -> list[Any]:
    return [o for o in sim.exchange.orders.values() if o.cl_ord_id == cl_ord_id]


FAST = {"expire_after_s": 0.2, "resolve_interval_s": 0.02}


# --------------------------------------------------------------------------- pure


def test_is_outcome_unknown_follows_the_retry_guidance():
    sent = RequestStateError("read timeout", stage="http", dispatched=True)
    unsent = RequestStateError("refused", stage="http", dispatched=False)
    gate = RequestStateError("gate", stage="gate", dispatched=False)
    ws = RequestStateError("no reply", stage="ws", dispatched=True)
    assert is_outcome_unknown(sent) and is_outcome_unknown(ws)
    assert not is_outcome_unknown(unsent) and not is_outcome_unknown(gate)
    for code in ("50004", "51149", "51054", "50026"):
        assert is_outcome_unknown(APIError(code, "x", http_status=400))
    assert is_outcome_unknown(APIError("", "bad gateway", http_status=502))
    for code in ("51008", "50011", "51000", "50113"):
        assert not is_outcome_unknown(APIError(code, "x", http_status=200))
    item = OrderAck.from_okx({"sCode": "51149", "sMsg": "order timed out"})
    assert is_outcome_unknown(OrderError("1", "failed", items=[item]))
    refused = OrderAck.from_okx({"sCode": "51008", "sMsg": "insufficient"})
    assert not is_outcome_unknown(OrderError("1", "failed", items=[refused]))
    assert not is_outcome_unknown(ValueError("x"))


# --------------------------------------------------------------------------- snapshot


def test_snapshot_pulls_balance_positions_every_pending_page_and_fills(sim, client):
    px = far_px(sim, client)
    cl_ids = []
    for _ in range(6):  # 120 pending orders: two pages of orders-pending
        batch = [order_kw(px, cl_ord_id=new_cl_ord_id()) for _ in range(20)]
        cl_ids += [a.cl_ord_id for a in client.trade.place_batch_orders(orders=batch)]
    client.trade.place_order(
        inst_id=INST, td_mode="cash", side="buy", ord_type="market", sz="0.001", tgt_ccy="base_ccy"
    )
    snap = Reconciler(client).snapshot()
    assert len(snap.pending_orders) == 120
    assert {o.cl_ord_id for o in snap.pending_orders} == set(cl_ids)
    assert all(o.is_live for o in snap.pending_orders)
    assert snap.fills and snap.fills[0].inst_id == INST
    assert any(d.ccy == "USDT" for d in snap.balance.details)
    assert isinstance(snap.positions, tuple)
    assert snap.taken_at_ms > 0 and snap.duration_s >= 0
    found = snap.order(cl_ord_id=cl_ids[7])
    assert found is not None and found.state == "live"
    assert snap.order(cl_ord_id="nosuchorder") is None
    data = json.loads(json.dumps(snap.to_dict()))
    assert len(data["pending_orders"]) == 120 and data["balance"]["details"]
    spot_only = Reconciler(client).snapshot(inst_type="SWAP")
    assert spot_only.pending_orders == ()
    with pytest.raises(ValidationError):
        Reconciler(client).snapshot(fills_limit=101)


# --------------------------------------------------------------------------- resolve_order


def test_resolve_order_found_and_not_found(sim, client, caplog):
    caplog.set_level(logging.DEBUG, logger="okx_sync")
    px = far_px(sim, client)
    cid = new_cl_ord_id()
    client.trade.place_order(**order_kw(px, cl_ord_id=cid))
    rec = Reconciler(client)
    found = rec.resolve_order(INST, cid)
    assert found.found and found.state == "live" and found.live and found.queries == 1
    assert isinstance(found.order, Order) and found.order.cl_ord_id == cid
    missing = rec.resolve_order(INST, new_cl_ord_id(), attempts=2, interval_s=0.0)
    assert not missing.found and missing.state is None and missing.queries == 2
    # 51603 is the answer resolve_order asks for (EXPECTED_CODES): DEBUG, never a warning
    answers = [r for r in caplog.records if r.__dict__.get("code") == "51603"]
    assert len(answers) == 2 and {r.levelno for r in answers} == {logging.DEBUG}
    assert "GET /api/v5/trade/order answered" in answers[0].getMessage()
    assert "51603" in answers[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert json.dumps(missing.to_dict())
    with pytest.raises(ValidationError):
        rec.resolve_order(INST, "bad-id!")
    with pytest.raises(ValidationError):
        rec.resolve_order(INST, cid, attempts=0)


# --------------------------------------------------------------------------- place_order_safely


def test_place_order_safely_plain_success(sim, client):
    px = far_px(sim, client)
    res = client.trade.place_order_safely(**order_kw(px), **FAST)
    assert res.sends == 1 and not res.resolved and res.ack is not None and res.ack.ok
    assert res.ord_id and len(at_exchange(sim, res.cl_ord_id)) == 1
    assert json.dumps(res.to_dict())


@pytest.mark.parametrize("mode", ["50004", "timeout"])
def test_executed_order_with_lost_answer_is_resolved_not_resent(sim, client, mode, caplog):
    px = far_px(sim, client)
    sim.faults.lose_order_response(mode, hold_s=0.05)
    cid = new_cl_ord_id()
    caplog.set_level(logging.WARNING, logger="okx_sync.ops.reconcile")
    res = client.trade.place_order_safely(**order_kw(px, cl_ord_id=cid), **FAST)
    assert res.resolved and res.sends == 1 and res.state == "live"
    lines = [r.getMessage() for r in caplog.records if r.name == "okx_sync.ops.reconcile"]
    assert lines == [
        f"order clOrdId={cid} on {INST}: outcome unknown after send 1 ({res.uncertain[0]}); "
        "resolving by clOrdId",
        f"order clOrdId={cid} on {INST} resolved by query: it exists (ordId {res.ord_id}, "
        "state live); not re-sent",
    ]
    assert res.order is not None and res.ord_id == res.order.ord_id
    assert len(res.uncertain) == 1
    assert (
        ("50004" in res.uncertain[0])
        if mode == "50004"
        else ("dispatched=True" in res.uncertain[0])
    )
    assert len(at_exchange(sim, cid)) == 1  # never a duplicate


def test_unexecuted_order_with_unknown_outcome_is_proven_absent_then_resent(sim, client, caplog):
    px = far_px(sim, client)
    sim.faults.server_errors(502, count=1, path="/api/v5/trade/order")  # bare 5xx, not executed
    cid = new_cl_ord_id()
    caplog.set_level(logging.WARNING, logger="okx_sync.ops.reconcile")
    res = client.trade.place_order_safely(**order_kw(px, cl_ord_id=cid), **FAST)
    assert res.sends == 2 and not res.resolved and res.ack is not None
    assert "502" in res.uncertain[0]
    lines = [r.getMessage() for r in caplog.records if r.name == "okx_sync.ops.reconcile"]
    assert len(lines) == 2 and "502" in lines[0] and f"clOrdId={cid} on {INST}" in lines[0]
    assert lines[1] == (
        f"order clOrdId={cid} on {INST} proven absent (51603 by clOrdId after its expTime, "
        "3 queries); re-sending the same clOrdId (send 2 of at most 3)"
    )
    assert len(at_exchange(sim, cid)) == 1


class _AnswerLost(requests.adapters.HTTPAdapter):
    """Answers the next order placement with HTTP 500 + ``code`` (51149 / 51054), as OKX
    does when it timed out internally: after passing it on to the simulator (``executed``:
    the order exists) or without passing it on (it never reached the matching engine)."""

    def __init__(self, code: str, executed: bool) -> None:
        super().__init__()
        self.code, self.executed, self.pending = code, executed, 1
        self.placements = 0

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        placing = request.method == "POST" and request.path_url == "/api/v5/trade/order"
        self.placements += placing
        if not (placing and self.pending):
            return super().send(request, *args, **kwargs)
        self.pending -= 1
        if self.executed:
            super().send(request, *args, **kwargs).close()  # executed; the answer is lost
        resp = requests.Response()
        resp.status_code, resp.request, resp.url = 500, request, request.url
        resp.headers["Content-Type"] = "application/json"
        resp._content = json.dumps({"code": self.code, "msg": "timed out", "data": []}).encode()
        return resp


@pytest.mark.parametrize("code", ["51149", "51054"])
@pytest.mark.parametrize("executed", [True, False], ids=["executed", "not-executed"])
def test_timeout_codes_are_resolved_by_query_without_a_duplicate(sim, code, executed):
    adapter = _AnswerLost(code, executed)
    with requests.Session() as session, sim_client(sim, session=session) as client:
        session.mount("http://", adapter)
        px = far_px(sim, client)
        cid = new_cl_ord_id()
        # plain place_order: the code surfaces, nothing is retried
        with pytest.raises(APIError) as info:
            client.trade.place_order(**order_kw(px, cl_ord_id=new_cl_ord_id()))
        assert info.value.code == code and is_outcome_unknown(info.value)
        assert adapter.placements == 1
        adapter.pending = 1
        res = client.trade.place_order_safely(**order_kw(px, cl_ord_id=cid), **FAST)
    assert code in res.uncertain[0]
    if executed:  # found by clOrdId: returned as it is, not sent again
        assert res.resolved and res.sends == 1 and res.state == "live"
        assert res.order is not None and res.ord_id == res.order.ord_id
        assert adapter.placements == 2
    else:  # proven absent after its expTime: sent again, once, with the same clOrdId
        assert not res.resolved and res.sends == 2 and res.ack is not None
        assert adapter.placements == 3
    orders = at_exchange(sim, cid)
    assert len(orders) == 1 and orders[0].ord_id == res.ord_id  # never a duplicate


def test_unanswered_resolution_never_resends(sim):
    with sim_client(sim, retry=RetryPolicy(max_retries=0)) as client:
        px = far_px(sim, client)
        sim.faults.server_errors(502, count=5, path="/api/v5/trade/order")  # POST and the queries
        cid = new_cl_ord_id()
        with pytest.raises(RequestStateError) as info:
            client.trade.place_order_safely(
                **order_kw(px, cl_ord_id=cid), resolve_attempts=2, **FAST
            )
        assert info.value.dispatched and info.value.cl_ord_ids == (cid,)
        assert isinstance(info.value.__cause__, APIError)
        assert at_exchange(sim, cid) == []
        assert sim.faults.active()["server_errors"] == []  # 1 send + 4 queries, no resend


def test_refusals_and_safe_mode_raise_without_resolution(sim, client):
    with pytest.raises(OrderError) as info:  # far too large: OKX refuses, nothing to resolve
        client.trade.place_order_safely(
            inst_id=INST, td_mode="cash", side="buy", ord_type="limit", sz="1000", px="1000", **FAST
        )
    assert info.value.failed
    client.enter_safe_mode(reason="test")
    with pytest.raises(SafeModeError):
        client.trade.place_order_safely(**order_kw(far_px(sim, client)), **FAST)
    with pytest.raises(ValidationError):
        client.trade.place_order_safely(**order_kw(Decimal(1), cl_ord_id="not valid"))


# --------------------------------------------------------------------------- scripted client


class _Trade:
    def __init__(self, owner: _Scripted) -> None:
        self._o = owner

    def place_order(self, **kw: Any) -> OrderAck:
        self._o.placed.append(kw)
        outcome = self._o.place_script.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def get_order(self, **kw: Any) -> Order:
        self._o.queried.append((self._o.clock.monotonic(), kw))
        outcome = self._o.get_script.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class _Scripted:
    """Just enough of a Client: ``trade.place_order``/``get_order`` follow scripts."""

    def __init__(self, place: list[Any], get: list[Any]) -> None:
        self.clock = FakeClock()
        self.place_script = list(place)
        self.get_script = list(get)
        self.placed: list[dict[str, Any]] = []
        self.queried: list[tuple[float, dict[str, Any]]] = []
        self.trade = _Trade(self)

    def now_ms(self) -> int:
        return int(self.clock.time() * 1000)


def _not_found() -> APIError:
    return APIError("51603", "Order does not exist", http_status=200)


def _live(cid: str) -> Order:
    return Order.from_okx({"instId": INST, "ordId": "42", "clOrdId": cid, "state": "live"})


def _ack(cid: str) -> OrderAck:
    return OrderAck.from_okx({"ordId": "43", "clOrdId": cid, "sCode": "0"})


def _dup(cid: str) -> OrderError:
    item = OrderAck.from_okx({"clOrdId": cid, "sCode": "51016", "sMsg": "Duplicated clOrdId"})
    return OrderError("1", "All operations failed", items=[item])


LOST = RequestStateError("read timed out", stage="http", dispatched=True)


def test_resolution_waits_for_exp_time_and_resend_meets_51016():
    cid = "abc123"
    fake = _Scripted(
        place=[LOST, _dup(cid)],
        get=[_not_found(), _not_found(), _not_found(), _live(cid)],
    )
    start_ms = fake.now_ms()
    res = place_order_safely(fake, inst_id=INST, cl_ord_id=cid, expire_after_s=3.0, sz="1")
    assert res.resolved and res.sends == 2 and res.state == "live" and res.ord_id == "42"
    first, second = fake.placed
    assert first["cl_ord_id"] == second["cl_ord_id"] == cid
    assert first["exp_time"] == start_ms + 3000
    assert second["exp_time"] > first["exp_time"]  # a fresh expTime for the re-send
    first_query_at = fake.queried[0][0]
    # no query before the first send's expTime: "not found" is then final
    assert (first_query_at - 1000.0) * 1000 >= 3000
    assert [kw["cl_ord_id"] for _, kw in fake.queried] == [cid] * 4


def test_expire_after_s_is_seconds_and_bad_values_are_refused_before_sending():
    fake = _Scripted(place=[LOST], get=[_live("c9")])
    start_ms, start_mono = fake.now_ms(), fake.clock.monotonic()
    res = place_order_safely(fake, inst_id=INST, cl_ord_id="c9", expire_after_s=0.25, sz="1")
    assert res.resolved and fake.placed[0]["exp_time"] == start_ms + 250
    # no query before the expTime: the caller waited the 0.25 s it asked for, not longer
    assert fake.queried[0][0] - start_mono == pytest.approx(0.25, abs=0.001)
    for bad in (0, -1.0, 0.0001, float("nan"), float("inf"), True, "10"):
        fake = _Scripted(place=[], get=[])
        with pytest.raises(ValidationError, match="expire_after_s"):
            place_order_safely(fake, inst_id=INST, cl_ord_id="c9", expire_after_s=bad, sz="1")
        assert fake.placed == []


def test_every_send_proven_absent_exhausts_max_sends_with_nothing_placed():
    fake = _Scripted(place=[LOST, LOST], get=[_not_found()] * 6)
    with pytest.raises(RequestStateError) as info:
        place_order_safely(fake, inst_id=INST, cl_ord_id="c1", max_sends=2, expire_after_s=0.1)
    assert info.value.dispatched is False and "proven absent" in str(info.value)
    assert len(fake.placed) == 2


def test_not_dispatched_or_refused_raise_at_once_without_a_query():
    for err in (
        RequestStateError("refused", stage="http", dispatched=False),
        APIError("51008", "insufficient balance", http_status=200),
    ):
        fake = _Scripted(place=[err], get=[])
        with pytest.raises(type(err)):
            place_order_safely(fake, inst_id=INST, cl_ord_id="c2")
        assert fake.queried == [] and len(fake.placed) == 1


def test_resolve_order_retries_unanswered_queries_and_counts_answers():
    fake = _Scripted(
        place=[],
        get=[_not_found(), RequestStateError("x", stage="http", dispatched=True), _not_found()],
    )
    res = Reconciler(fake).resolve_order(INST, "c3", attempts=2, interval_s=0.1)
    assert not res.found and res.queries == 3
    fake = _Scripted(place=[], get=[APIError("50026", "busy", http_status=500)] * 4)
    with pytest.raises(APIError):
        Reconciler(fake).resolve_order(INST, "c4", attempts=2, interval_s=0.0)
    assert fake.get_script == []


def test_plain_ack_after_a_proven_absence():
    fake = _Scripted(place=[LOST, _ack("c5")], get=[_not_found()] * 3)
    res = place_order_safely(fake, inst_id=INST, cl_ord_id="c5", expire_after_s=0.1)
    assert res.sends == 2 and res.ack is not None and res.ord_id == "43" and not res.resolved


def test_place_order_safely_is_composed_onto_the_trade_group_not_subclassed():
    import inspect

    from okx_sync import Client
    from okx_sync.ops.reconcile import TRADE_EXTRAS
    from okx_sync.rest.api import GROUP_CLASSES, EndpointGroup

    with Client() as client:
        trade = client.trade
        # the registry's generated trade class itself, no subclass of it
        assert type(trade) is GROUP_CLASSES["trade"]
        assert "place_order_safely" not in vars(type(trade))
        bound = trade.place_order_safely
        assert bound.__self__ is client and bound.__func__ is TRADE_EXTRAS["place_order_safely"]
        assert bound.__doc__ == place_order_safely.__doc__
        assert "place_order_safely" in dir(trade)
        assert next(iter(inspect.signature(bound).parameters)) == "inst_id"
        # other groups, and a trade group built without extras, do not have it
        assert not hasattr(client.account, "place_order_safely")
        assert not hasattr(GROUP_CLASSES["trade"](client), "place_order_safely")
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            trade.nope  # noqa: B018
        # an extra cannot shadow an endpoint method or be private
        with pytest.raises(ValueError, match="'place_order' is taken"):
            GROUP_CLASSES["trade"](client, extras={"place_order": place_order_safely})
        with pytest.raises(ValueError, match="'_x' is taken"):
            EndpointGroup(client, extras={"_x": place_order_safely})
