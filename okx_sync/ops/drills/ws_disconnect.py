"""Drill ``ws_disconnect`` (runbook §4, §6, §7): kill the sockets; recover, then reconcile.

Two WS clients run as a strategy would run them: a private one (``orders``
channel, keeping a local view of the live orders from the pushes) and a
public one (``tickers`` plus a managed ``books`` order book). Two orders
rest on the book. Then the connections go silent while one order is
cancelled and another placed over REST (their pushes are lost, as with a
connection that died unnoticed), and the simulator drops every WS
connection (abrupt TCP close). Checks:

1. **recover** — both clients reconnect once; the private one logs in again
   (the simulator sees the session's uid) and every subscription is
   acknowledged again (the simulator lists them on the new connections); the
   order book resyncs from a fresh snapshot and equals the exchange's.
2. **reconcile** — ``Reconciler(client).snapshot()`` (REST, the authority)
   shows exactly what the outage hid: the order cancelled and the order
   placed while disconnected; the local view is rebuilt from it.
3. **passes** — the stream keeps the rebuilt view right: two more REST
   cancels arrive as pushes, and a second reconciliation finds no difference.

Simulator only.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .base import Drill, DrillRun, passive_limit

__all__ = ["DRILL"]

INST_ID = "BTC-USDT"
BACKOFF_S = 0.5
WAIT_S = 10.0


class _LocalOrders:
    """The strategy's view of its live orders, kept from ``orders`` pushes (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: dict[str, str] = {}  # ordId -> clOrdId
        self.pushes = 0

    def on_order(self, order: Any) -> None:
        with self.lock:
            self.pushes += 1
            if order.state in ("live", "partially_filled"):
                self.live[order.ord_id or ""] = order.cl_ord_id or ""
            else:
                self.live.pop(order.ord_id, None)

    def ids(self) -> set[str]:
        with self.lock:
            return set(self.live)

    def rebuild(self, pending: Any) -> None:
        with self.lock:
            self.live = {o.ord_id or "": o.cl_ord_id or "" for o in pending}


def _diff(local: set[str], authority: set[str]) -> tuple[set[str], set[str]]:
    """(live locally but not on the exchange, live on the exchange but unknown locally)."""
    return local - authority, authority - local


def _subscriptions(run: DrillRun, kind: str) -> list[dict[str, Any]]:
    assert run.sim is not None
    return [
        sub
        for conn in run.sim.ws_connections()
        if conn["kind"] == kind
        for sub in conn["subscriptions"]
    ]


def routine(run: DrillRun) -> None:
    """The drill (see the module docstring)."""
    sim = run.sim
    assert sim is not None
    from ...ws.config import WSConfig
    from ...ws.policies import BackoffPolicy
    from ..reconcile import Reconciler

    client = run.client()
    client.sync_time()
    backoff = BackoffPolicy(initial=BACKOFF_S, jitter=0.0)
    local = _LocalOrders()
    private = run.ws("private", client, config=WSConfig(name="drill-private", backoff=backoff))
    private.on("orders", local.on_order)
    private.start()
    private.subscribe_and_wait({"channel": "orders", "instType": "SPOT"})
    public = run.ws("public", client, config=WSConfig(name="drill-public", backoff=backoff))
    tickers: list[Any] = []
    public.on("tickers", tickers.append)
    public.start()
    public.subscribe_and_wait({"channel": "tickers", "instId": INST_ID})
    book = run.own(public.order_book(INST_ID))
    run.check("setup: book ready", book.wait_ready(WAIT_S), repr(book), required=True)

    params = passive_limit(client, INST_ID)
    placed = [client.trade.place_order(**params).ord_id for _ in range(2)]
    run.check(
        "setup: both orders seen on the stream",
        run.wait_until(lambda: local.ids() == set(placed), WAIT_S),
        f"local view {sorted(local.ids())}",
        required=True,
    )
    desired = {
        "private": private.stats().desired_subscriptions,
        "public": public.stats().desired_subscriptions,
    }
    before = {"private": private.stats(), "public": public.stats()}
    book_resyncs = book.resyncs

    run.step("fault: connections go silent, one order cancelled and one placed, then dropped")
    # Silent first, so the two pushes are lost whatever the timing of the reconnect.
    sim.faults.silence_ws("all")
    client.trade.cancel_order(inst_id=INST_ID, ord_id=placed[0])
    hidden_new = client.trade.place_order(**params).ord_id
    dropped_at = time.monotonic()
    dropped = sim.faults.drop_ws("all")
    run.figure("connections_dropped", dropped)

    # 1. recover --------------------------------------------------------------------------
    def recovered() -> bool:
        ps, us = private.stats(), public.stats()
        return (
            ps.connected
            and us.connected
            and ps.reconnects == before["private"].reconnects + 1
            and us.reconnects == before["public"].reconnects + 1
            and len(_subscriptions(run, "private")) == desired["private"]
            and len(_subscriptions(run, "public")) == desired["public"]
        )

    back = run.wait_until(recovered, WAIT_S)
    run.figure("reconnect_s", time.monotonic() - dropped_at, key=True)
    ps, us = private.stats(), public.stats()
    run.check(
        "recover: both clients reconnected once",
        back,
        f"private reconnects {ps.reconnects}, public reconnects {us.reconnects}, "
        f"connected {ps.connected}/{us.connected}",
    )
    sessions = [c for c in sim.ws_connections() if c["kind"] == "private"]
    run.check(
        "recover: re-login on the private connection",
        len(sessions) == 1 and sessions[0]["uid"] == sim.credentials.live_uid,
        f"private sessions {[(c['conn_id'], c['uid']) for c in sessions]}",
    )
    run.check(
        "recover: every subscription acknowledged again",
        ps.subscribe_ok - before["private"].subscribe_ok >= desired["private"]
        and us.subscribe_ok - before["public"].subscribe_ok >= desired["public"]
        and len(_subscriptions(run, "public")) == desired["public"],
        f"re-acked private {ps.subscribe_ok - before['private'].subscribe_ok}/"
        f"{desired['private']}, public {us.subscribe_ok - before['public'].subscribe_ok}/"
        f"{desired['public']}",
    )
    sim.tick(3)
    published = sim.exchange.book(INST_ID)
    synced = run.wait_until(lambda: book.in_sync and book.seq_id == published.seq_id, WAIT_S)
    snap = book.snapshot()
    run.figure("book_resyncs", book.resyncs - book_resyncs)
    run.check(
        "recover: the order book resynced and equals the exchange's",
        synced
        and book.resyncs > book_resyncs
        and snap.raw.get("bids") == published.bids
        and snap.raw.get("asks") == published.asks,
        f"resyncs +{book.resyncs - book_resyncs}, seqId {book.seq_id} vs {published.seq_id}",
    )

    # 2. reconcile ------------------------------------------------------------------------
    reconciler = Reconciler(client)
    snapshot = reconciler.snapshot(inst_type="SPOT")
    authority = {o.ord_id or "" for o in snapshot.pending_orders}
    stale, unknown = _diff(local.ids(), authority)
    run.figure("drift_found", len(stale) + len(unknown), key=True)
    run.figure("reconcile_s", snapshot.duration_s)
    run.check(
        "reconcile: finds exactly what the outage hid",
        stale == {placed[0]} and unknown == {hidden_new},
        f"live locally but cancelled: {sorted(stale)}; placed but unknown locally: "
        f"{sorted(unknown)}",
    )
    local.rebuild(snapshot.pending_orders)

    # 3. passes ---------------------------------------------------------------------------
    pushes = local.pushes
    for ord_id in (placed[1], hidden_new):
        client.trade.cancel_order(inst_id=INST_ID, ord_id=ord_id)
    streamed = run.wait_until(lambda: local.pushes >= pushes + 2 and not local.ids(), WAIT_S)
    second = reconciler.snapshot(inst_type="SPOT")
    stale, unknown = _diff(local.ids(), {o.ord_id or "" for o in second.pending_orders})
    run.figure("drift_after", len(stale) + len(unknown), key=True)
    run.check(
        "reconcile: passes afterwards (the stream keeps the view right)",
        streamed and not stale and not unknown,
        f"{local.pushes - pushes} pushes after the rebuild; differences {len(stale) + len(unknown)}",
    )


DRILL = Drill(
    name="ws_disconnect",
    title="kill the sockets: reconnect, re-login, resubscribe, reconcile",
    runbook="§4",
    routine=routine,
    sim_options={"auto_tick": False, "quiet_interval_s": None},
)
