"""A managed order book: always whole, verified by seqId (and checksum), resyncs by itself.

    python examples/managed_order_book.py --seconds 3
    python examples/managed_order_book.py --live --inst-id ETH-USDT

Against the simulator it also injects a sequence gap half way through, to show
the book noticing it, resubscribing for a fresh snapshot and carrying on.
"""

from __future__ import annotations

import time

from _common import connect, parser, say

import okx_sync


def main() -> int:
    args = parser(__doc__.splitlines()[0], public=True).parse_args()  # --live: no key
    with (
        connect(args) as venue,
        venue.client.ws_public() as ws,
        ws.order_book(args.inst_id) as book,
    ):

        @book.on_resync
        def lost_sync(book: okx_sync.ManagedOrderBook, error: BaseException) -> None:
            # Runs on the book's thread; the book is already resubscribing.
            say(f"resync: {type(error).__name__}: {error}")

        if not book.wait_ready(timeout_s=10):
            say("the book did not get in sync within 10 s")
            return 1
        say(f"book {args.inst_id} in sync at seqId {book.seq_id}")
        end = time.monotonic() + args.seconds
        fault_at = time.monotonic() + args.seconds / 2
        injected = False
        while time.monotonic() < end:
            if venue.sim is not None and not injected and time.monotonic() >= fault_at:
                venue.sim.faults.seq_gap(args.inst_id)  # the next update skips a seqId
                say("injected: sequence gap")
                injected = True
            bid, ask = book.best_bid(), book.best_ask()  # BookLevel, None while resyncing
            if bid and ask:
                say(f"seqId={book.seq_id} bid {bid.sz} @ {bid.px}  ask {ask.sz} @ {ask.px}")
            else:
                say("resyncing...")
            time.sleep(0.25)
        book.wait_ready(timeout_s=10)
        s = book.stats()
        say(
            f"done: in_sync={s.in_sync} resyncs={s.resyncs} updates={s.updates} "
            f"snapshots={s.snapshots} errors={s.errors.to_dict()}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
