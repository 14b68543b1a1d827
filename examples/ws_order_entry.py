"""Order entry over the private WebSocket: place, amend, cancel — and what is refused before sending.

    python examples/ws_order_entry.py
    python examples/ws_order_entry.py --live --demo

WS order entry shares the Client's request gate (the same rate buckets as REST)
and instrument rules. Each call blocks until OKX replies. A
``RequestStateError`` with ``dispatched=True`` means the outcome is unknown (the
connection dropped after sending): look the order up by its clOrdId before
sending it again.
"""

from __future__ import annotations

import time
from decimal import ROUND_DOWN, Decimal

from _common import connect, parser

import okx_sync


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    with connect(args) as venue, venue.client.ws_private() as ws:
        client, inst_id = venue.client, args.inst_id
        inst = client.instrument(inst_id)
        bid = client.market.get_ticker(inst_id=inst_id).bid_px
        px = client.round_price(inst_id, bid * Decimal("0.95"), rounding=ROUND_DOWN)

        # Refused before anything is sent: a price off the tick grid names the rule.
        try:
            ws.place_order(inst_id=inst_id, td_mode="cash", side="buy", ord_type="limit",
                           px=px + inst.tick_sz / 2, sz=inst.min_sz)  # fmt: skip
        except okx_sync.InstrumentRuleError as exc:
            print(f"refused locally ({exc.rule}): {exc}")

        cl_ord_id = okx_sync.new_cl_ord_id("ws")
        t0 = time.perf_counter()
        ack = ws.place_order(inst_id=inst_id, td_mode="cash", side="buy", ord_type="limit",
                             px=px, sz=inst.min_sz, cl_ord_id=cl_ord_id)  # fmt: skip
        print(f"placed ordId={ack.ord_id} in {1000 * (time.perf_counter() - t0):.1f} ms")

        new_px = px - 10 * inst.tick_sz
        ack = ws.amend_order(inst_id=inst_id, cl_ord_id=cl_ord_id, new_px=new_px)
        print(f"amended ordId={ack.ord_id} sCode={ack.s_code} to px={new_px}")

        ack = ws.cancel_order(inst_id=inst_id, cl_ord_id=cl_ord_id)
        print(f"cancel accepted ordId={ack.ord_id} sCode={ack.s_code}")

        order = client.trade.get_order(inst_id=inst_id, cl_ord_id=cl_ord_id)  # REST check
        print(f"order now: state={order.state} px={order.px}")

        # OKX refuses what only it can judge (here: cancelling an order that is gone).
        try:
            ws.cancel_order(inst_id=inst_id, cl_ord_id=cl_ord_id)
        except okx_sync.OrderError as exc:
            for item in exc.failed:  # one OrderAck per refused order
                print(f"refused by OKX: sCode={item.s_code} {item.s_msg}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
