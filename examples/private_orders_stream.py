"""Private WebSocket: order and balance pushes while an order is placed and cancelled.

    python examples/private_orders_stream.py
    python examples/private_orders_stream.py --live --demo

``ws_private()`` logs in with the Client's credentials (and again after every
reconnect, resubscribing what was subscribed). The order goes out over REST; its
state changes arrive on the ``orders`` channel — possibly before the REST reply
(OKX does not order the two), which is why the handler matches on clOrdId.
"""

from __future__ import annotations

import queue
from decimal import ROUND_DOWN, Decimal

from _common import connect, parser, say

import okx_sync


def main() -> int:
    args = parser(__doc__.splitlines()[0], seconds=5.0).parse_args()
    cl_ord_id = okx_sync.new_cl_ord_id("pos")
    states: queue.Queue[str] = queue.Queue()  # hands our order's states to the main thread

    def on_order(order: okx_sync.Order) -> None:  # WS thread: print and hand over, no blocking
        say(f"push orders: {order.inst_id} {order.side} {order.sz} @ {order.px} {order.state}")
        if order.cl_ord_id == cl_ord_id and order.state:
            states.put(order.state)

    def on_balance(balance: okx_sync.Balance) -> None:
        ccys = ", ".join(f"{d.ccy} avail={d.avail_bal}" for d in balance.details)
        say(f"push account: {ccys}")

    def wait_for(state: str) -> None:
        while states.get(timeout=args.seconds) != state:
            pass
        say(f"seen: {state}")

    with connect(args) as venue, venue.client.ws_private() as ws:
        client, inst_id = venue.client, args.inst_id
        ws.on("orders", on_order)
        ws.on("account", on_balance)
        ws.subscribe_and_wait(
            [{"channel": "orders", "instType": "SPOT"}, {"channel": "account", "ccy": "USDT"}]
        )
        bid = client.market.get_ticker(inst_id=inst_id).bid_px
        px = client.round_price(inst_id, bid * Decimal("0.95"), rounding=ROUND_DOWN)
        sz = client.instrument(inst_id).min_sz
        ack = client.trade.place_order(
            inst_id=inst_id, td_mode="cash", side="buy", ord_type="limit",
            px=px, sz=sz, cl_ord_id=cl_ord_id,
        )  # fmt: skip
        say(f"placed ordId={ack.ord_id}")
        wait_for("live")
        client.trade.cancel_order(inst_id=inst_id, cl_ord_id=cl_ord_id)
        wait_for("canceled")
        s = ws.stats()
        say(f"private ws: messages={s.messages} connects={s.connects} reconnects={s.reconnects}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
