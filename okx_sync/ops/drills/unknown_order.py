"""Drill ``unknown_order`` (runbook §6.2.3): the order executed but its answer was lost.

Each case places a resting limit order through ``place_order_safely`` (what
``client.trade.place_order_safely`` calls) while the simulator loses the answer, and
then counts the orders with that clOrdId *on the exchange* — the only count
that proves "no duplicate":

1. **50004** — the order executes, the answer is HTTP 400 + 50004 (outcome
   unknown): resolved by a clOrdId query after the request's expTime; one send,
   one order.
2. **connection lost** — the order executes, the server holds the answer
   and closes the connection: ``RequestStateError(dispatched=True)``,
   resolved the same way; one send, one order.
3. **missing ack** — the order executes, the answer is code "0" with no
   item for it: ``OrderError`` whose ``outcome_unknown`` is True, resolved
   the same way; one send, one order.
4. **not executed** — a bare HTTP 502 before the order reached the matching
   engine: the query proves it absent after its expTime, and it is re-sent
   once with the same clOrdId; two sends, one order.
5. **no blind retry** — the plain ``place_order`` under a lost answer raises
   ``RequestStateError(dispatched=True)`` and the REST core does not retry
   it; ``Reconciler.resolve_order`` then finds the live order.

Each order is cancelled at the end. Simulator only.
"""

from __future__ import annotations

from typing import Any

from ...errors import OkxError, RequestStateError
from ...ids import new_cl_ord_id
from ..ports import DrillClient
from ..reconcile import Reconciler, place_order_safely
from .base import Drill, DrillRun, passive_limit

__all__ = ["DRILL"]

INST_ID = "BTC-USDT"
# A short expTime: "not found" becomes final 0.3 s after a send (a local simulator answers
# in milliseconds; place_order_safely's default, for OKX, is 10 s).
EXPIRE_AFTER_S = 0.3
RESOLVE_INTERVAL_S = 0.05  # between clOrdId queries that answer "not found"
HOLD_S = 0.1  # the simulator holds a lost answer this long before closing the connection


def _orders_on_exchange(run: DrillRun, cl_ord_id: str) -> list[Any]:
    sim = run.sim
    assert sim is not None
    return [o for o in sim.exchange.orders.values() if o.cl_ord_id == cl_ord_id]


def _case(
    run: DrillRun, client: DrillClient, label: str, arm: Any, sends: int, resolved: bool
) -> None:
    params = passive_limit(client, INST_ID)
    cl_ord_id = new_cl_ord_id("drill")
    arm()
    run.step(f"{label}: place_order_safely {cl_ord_id}")
    try:
        res = place_order_safely(
            client,
            cl_ord_id=cl_ord_id,
            expire_after_s=EXPIRE_AFTER_S,
            resolve_interval_s=RESOLVE_INTERVAL_S,
            **params,
        )
    except OkxError as exc:
        run.check(f"{label}: place_order_safely settled the order", False, f"raised {exc!r}")
        return
    finally:
        if run.sim is not None:
            run.sim.faults.clear()
    on_exchange = _orders_on_exchange(run, cl_ord_id)
    run.figure(f"{label}_sends", res.sends, key=True)
    run.figure(f"{label}_orders_on_exchange", len(on_exchange))
    run.check(
        f"{label}: settled with the expected sends",
        res.sends == sends and res.resolved == resolved and res.ord_id is not None,
        f"sends {res.sends}, resolved by query {res.resolved}, state {res.state}, "
        f"unknown outcomes met: {[u.split(':')[0] for u in res.uncertain]}",
    )
    run.check(
        f"{label}: exactly one order on the exchange (no duplicate)",
        len(on_exchange) == 1 and on_exchange[0].ord_id == res.ord_id,
        f"{len(on_exchange)} order(s) with clOrdId {cl_ord_id}",
    )
    client.trade.cancel_order(inst_id=INST_ID, ord_id=res.ord_id)


def _no_blind_retry(run: DrillRun, client: DrillClient) -> None:
    sim = run.sim
    assert sim is not None
    params = passive_limit(client, INST_ID)
    cl_ord_id = new_cl_ord_id("drill")
    retries_before = client.stats().retries
    sim.faults.lose_order_response("timeout", hold_s=HOLD_S)
    run.step(f"plain place_order {cl_ord_id} under a lost answer")
    err: OkxError | None = None
    try:
        client.trade.place_order(cl_ord_id=cl_ord_id, **params)
    except OkxError as exc:
        err = exc
    retries = client.stats().retries - retries_before
    run.figure("plain_retries", retries)
    run.check(
        "plain: unknown outcome reported, not retried",
        isinstance(err, RequestStateError) and err.dispatched and retries == 0,
        f"{type(err).__name__ if err else 'no error'} dispatched="
        f"{getattr(err, 'dispatched', None)}, stage={getattr(err, 'stage', None)}, "
        f"retries {retries}",
    )
    found = Reconciler(client).resolve_order(INST_ID, cl_ord_id, interval_s=RESOLVE_INTERVAL_S)
    on_exchange = _orders_on_exchange(run, cl_ord_id)
    run.check(
        "plain: resolve_order finds the executed order",
        found.found and found.live and len(on_exchange) == 1,
        f"found {found.found}, state {found.state}, {len(on_exchange)} on the exchange",
    )
    if found.order is not None:
        client.trade.cancel_order(inst_id=INST_ID, ord_id=found.order.ord_id)


def routine(run: DrillRun) -> None:
    """The drill (see the module docstring)."""
    sim = run.sim
    assert sim is not None
    client = run.client(timeout_s=5.0)
    client.sync_time()
    _case(run, client, "lost_50004", lambda: sim.faults.lose_order_response("50004"), 1, True)
    _case(
        run,
        client,
        "lost_connection",
        lambda: sim.faults.lose_order_response("timeout", hold_s=HOLD_S),
        1,
        True,
    )
    _case(run, client, "missing_ack", lambda: sim.faults.lose_order_response("short"), 1, True)
    _case(
        run,
        client,
        "not_executed",
        lambda: sim.faults.server_errors(502, count=1, path="/api/v5/trade/order"),
        2,
        False,
    )
    _no_blind_retry(run, client)
    left = sim.exchange.pending(sim.credentials.live_uid)
    run.check("no order left behind", not left, f"{len(left)} pending")


DRILL = Drill(
    name="unknown_order",
    title="order executed, answer lost: place_order_safely resolves it, no duplicate",
    runbook="§6",
    routine=routine,
    sim_options={"auto_tick": False, "ws": False},
)
