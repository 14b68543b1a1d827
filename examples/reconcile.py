"""Reconciliation: REST is the authority, and an order whose answer was lost is never re-sent blindly.

    python examples/reconcile.py
    python examples/reconcile.py --live --demo

1. ``client.trade.place_order_safely(...)`` places with a clOrdId and an expTime.
   Against the simulator the answer is lost on purpose (OKX code 50004, "outcome
   unknown"): the call waits until the expTime has passed — after it OKX would
   drop the request — then asks OKX by clOrdId, finds the order and returns it
   instead of sending a second one.
2. ``Reconciler(client).snapshot()``: balances, positions, pending orders, fills
   in one object — what to compare local state with after an incident.
3. ``resolve_order`` of a clOrdId that was never sent: proven absent.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from _common import connect, parser

import okx_sync


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    with connect(args) as venue:
        client, inst_id = venue.client, args.inst_id
        bid = client.market.get_ticker(inst_id=inst_id).bid_px
        px = client.round_price(inst_id, bid * Decimal("0.95"), rounding=ROUND_DOWN)
        sz = client.instrument(inst_id).min_sz

        if venue.sim is not None:
            # The order executes, but the reply says 50004 (timeout, outcome unknown).
            venue.sim.faults.lose_order_response(mode="50004", count=1)
            print("injected: the next order's answer is lost (50004)")
        result = client.trade.place_order_safely(
            inst_id=inst_id, td_mode="cash", side="buy", ord_type="limit", px=px, sz=sz,
            expire_after_s=1.5,  # short for the demo: resolution waits for the expTime
        )  # fmt: skip
        # resolved: the order as the query found it; else OKX's ack (which carries no state)
        how = f"resolved by query, state={result.state}" if result.resolved else "acknowledged,"
        print(f"order {result.cl_ord_id}: {how} ordId={result.ord_id} sends={result.sends}")
        for text in result.uncertain:  # the failures that made the outcome unknown
            print(f"  uncertain: {text[:72]}...")

        reconciler = okx_sync.Reconciler(client)
        snap = reconciler.snapshot(inst_type="SPOT")
        usdt = next((d for d in snap.balance.details if d.ccy == "USDT"), None)
        print(
            f"snapshot in {snap.duration_s * 1000:.0f} ms: {len(snap.pending_orders)} pending order(s), "
            f"{len(snap.fills)} fill(s), USDT avail={usdt.avail_bal if usdt else None} "
            f"frozen={usdt.frozen_bal if usdt else None}"
        )
        mine = snap.order(cl_ord_id=result.cl_ord_id)
        print(f"our order in the snapshot: {mine.state if mine else 'missing'}")

        never_sent = okx_sync.new_cl_ord_id("ghost")
        absent = reconciler.resolve_order(inst_id, never_sent, attempts=2, interval_s=0.2)
        print(f"resolve {never_sent}: found={absent.found} after {absent.queries} queries")

        client.trade.cancel_order(inst_id=inst_id, cl_ord_id=result.cl_ord_id)
        left = reconciler.snapshot(inst_type="SPOT").pending_orders
        print(f"after cancel: {len(left)} pending order(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
