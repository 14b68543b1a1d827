"""Safe mode ("cancel, never add") and the dead-man switch (OKX cancel-all-after).

    python examples/safe_mode_and_dead_man.py
    python examples/safe_mode_and_dead_man.py --fire     # simulator: let the switch fire (~12 s)
    python examples/safe_mode_and_dead_man.py --live --demo

- The dead-man switch keeps OKX's cancel-all-after timer re-armed from a
  background thread: if this process hangs or dies, OKX cancels every pending
  order when the timer runs out. ``stop()`` disarms it.
- Safe mode refuses every placement and amend (REST and WS) before sending;
  cancels, queries and reduce-only orders still go out. Enter it when something
  is wrong; reconcile before leaving it.
"""

from __future__ import annotations

import time
from decimal import ROUND_DOWN, Decimal

from _common import connect, parser

import okx_sync


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--fire", action="store_true", help="simulator only: stop refreshing and "
                   "watch OKX cancel the orders when the timer runs out")  # fmt: skip
    args = p.parse_args()
    with connect(args) as venue:
        client, inst_id = venue.client, args.inst_id
        bid = client.market.get_ticker(inst_id=inst_id).bid_px
        px = client.round_price(inst_id, bid * Decimal("0.95"), rounding=ROUND_DOWN)
        order = dict(inst_id=inst_id, td_mode="cash", side="buy", ord_type="post_only",
                     px=px, sz=client.instrument(inst_id).min_sz)  # fmt: skip

        # 10 s is OKX's shortest timer; refresh well inside it.
        switch = client.dead_man_switch(timeout_s=10, refresh_s=2)
        s = switch.stats()
        print(f"dead-man switch armed: timeout={s.timeout_s}s refresh every {s.refresh_s}s")

        for _ in range(3):
            client.trade.place_order(**order)
        print(f"placed 3 orders; pending: {len(client.trade.get_orders_pending(inst_id=inst_id))}")

        # Something is wrong (a burst of errors, a drifting position...): stop adding risk.
        report = client.enter_safe_mode(cancel_open_orders=True, reason="example: error burst")
        c = report.cancel
        assert c is not None
        print(
            f"safe mode on ({report.state.reason}): drained={report.drained} "
            f"cancelled {len(c.cancelled)} of {c.listed} pending, failed {len(c.failed)}"
        )
        try:
            client.trade.place_order(**order)
        except okx_sync.SafeModeError as exc:
            print(f"placement refused before sending: {type(exc).__name__}")
        pending = client.trade.get_orders_pending(inst_id=inst_id)  # queries still go out
        print(
            f"pending after the sweep: {len(pending)}; refused so far: {client.safe_mode.refused}"
        )

        # Leave safe mode only after looking at the account as OKX sees it.
        snap = okx_sync.Reconciler(client).snapshot(inst_type="SPOT")
        print(f"reconciled: {len(snap.pending_orders)} pending, {len(snap.fills)} fills")
        client.exit_safe_mode()
        ack = client.trade.place_order(**order)
        print(f"safe mode off: placed ordId={ack.ord_id}")

        if args.fire and venue.sim is not None:
            switch.stop(disarm=False)  # as if this process had hung: the timer keeps running
            print("switch stopped without disarming; waiting for OKX's timer...")
            deadline = time.monotonic() + 15
            while client.trade.get_orders_pending(inst_id=inst_id) and time.monotonic() < deadline:
                time.sleep(0.5)
            gone = client.trade.get_order(inst_id=inst_id, ord_id=ack.ord_id)
            print(f"timer fired: order {gone.state}, cancelSource={gone.cancel_source}")
        else:
            switch.stop()  # disarms the timer (timeOut=0)
            client.trade.cancel_order(inst_id=inst_id, ord_id=ack.ord_id)
        s = switch.stats()
        print(f"switch: running={s.running} armed={s.armed} refreshes={s.refreshes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
