"""Quick start with REST: public data, the balance, then place and cancel one order.

    python examples/quickstart_rest.py                  # against the embedded simulator
    python examples/quickstart_rest.py --live --demo    # OKX demo trading (keys from the env)

The order is a post-only buy of the minimum size 5% below the best bid, so it
rests on the book and never fills; it is cancelled right away.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from _common import connect, parser

import okx_sync


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    with connect(args) as venue:
        client, inst_id = venue.client, args.inst_id

        # Public data: typed models with Decimal prices.
        ticker = client.market.get_ticker(inst_id=inst_id)
        print(f"ticker {inst_id}: last={ticker.last} bid={ticker.bid_px} ask={ticker.ask_px}")
        book = client.market.get_order_book(inst_id=inst_id, sz=5)
        for ask in reversed(book.asks):
            print(f"  ask {ask.px:>12} {ask.sz}")
        for bid in book.bids:
            print(f"  bid {bid.px:>12} {bid.sz}")
        inst = client.instrument(inst_id)  # fetched once, then cached
        print(
            f"instrument {inst_id}: tick={inst.tick_sz:f} lot={inst.lot_sz:f} min={inst.min_sz:f}"
        )

        # Private data.
        balance = client.account.get_balance()
        for detail in balance.details:
            print(f"balance {detail.ccy}: available {detail.avail_bal}")

        # Place: round onto the instrument's grid first (round down for a buy, so
        # the price never ends up nearer the market than intended).
        best_bid = book.bids[0].px
        px = client.round_price(inst_id, best_bid * Decimal("0.95"), rounding=ROUND_DOWN)
        cl_ord_id = okx_sync.new_cl_ord_id("qs")  # our own id: lets us find it after a timeout
        ack = client.trade.place_order(
            inst_id=inst_id,
            td_mode="cash",
            side="buy",
            ord_type="post_only",
            px=px,
            sz=inst.min_sz,
            cl_ord_id=cl_ord_id,
        )
        print(f"placed ordId={ack.ord_id} clOrdId={ack.cl_ord_id} px={px} sz={inst.min_sz}")
        order = client.trade.get_order(inst_id=inst_id, ord_id=ack.ord_id)
        print(f"order state: {order.state}")

        # Cancel by our clOrdId (an ordId works too) and confirm.
        client.trade.cancel_order(inst_id=inst_id, cl_ord_id=cl_ord_id)
        order = client.trade.get_order(inst_id=inst_id, cl_ord_id=cl_ord_id)
        print(f"cancelled: state={order.state}")
        print(f"REST stats: {client.stats().requests} requests on {venue.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
