"""A legacy-style strategy: one plain thread, a loop, blocking calls — kept safe by okx_sync.

    python examples/legacy_strategy.py --seconds 4
    python examples/legacy_strategy.py --live --demo --seconds 60

The loop quotes one post-only buy a few ticks under the best bid of a managed
order book and follows the bid when it moves (amend). Around it:

- signals come only from a book that is in sync (``best_bid()`` is None while
  it resyncs after a gap or a reconnect: the loop then waits);
- orders go out through the Client's request gate (rate limits are respected
  whatever the number of threads) with ``place_order_safely`` (never duplicated);
- after the private WebSocket reconnects, pushes may have been missed: the loop
  reconciles its view of its order with REST before doing anything else;
- three errors within ten seconds put the client in safe mode (no placement or
  amend goes out, open orders are cancelled) and the loop stops quoting.

Against the simulator, the private connection is dropped after a third of the
run, and amends start failing (HTTP 500) after two thirds, to show both.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from decimal import Decimal

from _common import connect, parser, say

import okx_sync

TICKS_UNDER = 5  # quote this many ticks under the best bid
REQUOTE_TICKS = 2  # amend when the target moved this far
MAX_ERRORS, ERROR_WINDOW_S = 3, 10.0


class Strategy:
    """State is touched by the loop thread and, for order pushes, by the WS thread: one lock."""

    def __init__(self, client: okx_sync.Client, book: okx_sync.ManagedOrderBook) -> None:
        self.client, self.book, self.inst_id = client, book, book.inst_id
        self.tick = client.instrument(self.inst_id).tick_sz or Decimal("0.1")
        self.lock = threading.Lock()
        self.cl_ord_id: str | None = None  # our one quote, if any
        self.px: Decimal | None = None
        self.errors: deque[float] = deque()
        self.reconcile_needed = threading.Event()
        self.stop = threading.Event()
        self.counts = {"placed": 0, "amended": 0, "reconciled": 0, "errors": 0}

    # -- WS threads: record and hand over, never call REST here ---------------------
    def on_order(self, order: okx_sync.Order) -> None:
        with self.lock:
            if order.cl_ord_id == self.cl_ord_id and order.state in ("filled", "canceled"):
                say(f"push: our order {order.state}")
                self.cl_ord_id = self.px = None

    def on_reconnect(self) -> None:
        say("private ws reconnected: reconcile before the next order")
        self.reconcile_needed.set()

    # -- the loop thread -------------------------------------------------------------
    def run(self) -> None:
        while not self.stop.wait(0.1):
            if self.client.safe_mode:
                continue  # an operator (or the error rule) stopped us: cancels only
            try:
                if self.reconcile_needed.is_set():
                    self.reconcile()
                self.step()
            except okx_sync.OkxError as exc:
                self.on_error(exc)

    def step(self) -> None:
        bid = self.book.best_bid()
        if bid is None:
            return  # no trustworthy signal while the book resyncs
        target = bid.px - TICKS_UNDER * self.tick
        with self.lock:
            cl_ord_id, px = self.cl_ord_id, self.px
        if cl_ord_id is None:
            result = self.client.trade.place_order_safely(
                inst_id=self.inst_id, td_mode="cash", side="buy", ord_type="post_only",
                px=target, sz=self.client.instrument(self.inst_id).min_sz,
            )  # fmt: skip
            with self.lock:
                self.cl_ord_id, self.px = result.cl_ord_id, target
            self.counts["placed"] += 1
            say(f"quote placed at {target}")
        elif px is not None and abs(target - px) >= REQUOTE_TICKS * self.tick:
            self.client.trade.amend_order(inst_id=self.inst_id, cl_ord_id=cl_ord_id, new_px=target)
            with self.lock:
                self.px = target
            self.counts["amended"] += 1
            say(f"quote moved {px} -> {target}")

    def reconcile(self) -> None:
        self.reconcile_needed.clear()
        snap = okx_sync.Reconciler(self.client).snapshot(inst_type="SPOT")
        with self.lock:
            ours = snap.order(cl_ord_id=self.cl_ord_id) if self.cl_ord_id else None
            if ours is None:
                self.cl_ord_id = self.px = None  # filled or cancelled while we were blind
            else:
                self.px = ours.px
        self.counts["reconciled"] += 1
        say(f"reconciled: {len(snap.pending_orders)} pending; our quote: "
            f"{'live at ' + str(ours.px) if ours else 'gone'}")  # fmt: skip

    def on_error(self, exc: okx_sync.OkxError) -> None:
        now = time.monotonic()
        self.errors.append(now)
        while self.errors and self.errors[0] < now - ERROR_WINDOW_S:
            self.errors.popleft()
        self.counts["errors"] += 1
        say(f"error: {type(exc).__name__}: {str(exc)[:80]}")
        if len(self.errors) >= MAX_ERRORS:
            report = self.client.enter_safe_mode(
                cancel_open_orders=True, reason=f"{len(self.errors)} errors in {ERROR_WINDOW_S:g} s"
            )
            c = report.cancel
            say(f"safe mode: {report.state.reason}; cancelled {len(c.cancelled) if c else 0}")


def main() -> int:
    args = parser(__doc__.splitlines()[0], seconds=4.0).parse_args()
    with (
        connect(args) as venue,
        venue.client.ws_public() as public,
        venue.client.ws_private() as private,
        public.order_book(args.inst_id) as book,
    ):
        client, sim = venue.client, venue.sim
        strategy = Strategy(client, book)
        private.on("orders", strategy.on_order)
        private.on_reconnect(strategy.on_reconnect)
        private.subscribe_and_wait({"channel": "orders", "instType": "SPOT"})
        book.wait_ready(timeout_s=10)
        loop = threading.Thread(target=strategy.run, name="strategy")
        loop.start()
        try:
            if sim is not None:
                time.sleep(args.seconds / 3)
                say(f"injected: private connection dropped ({sim.faults.drop_ws(kind='private')})")
                time.sleep(args.seconds / 3)
                # HTTP 500 + 50026 on amends: not retried (the outcome of an order call
                # is unknown then), so each one reaches the strategy's error rule.
                sim.faults.server_errors(
                    500, seconds=args.seconds, path="/api/v5/trade/amend-order"
                )
                say("injected: amends answer HTTP 500")
                # The next re-quote fails, and so does each retry of it: safe mode follows.
                until = time.monotonic() + args.seconds
                while not client.safe_mode and time.monotonic() < until:
                    time.sleep(0.1)
            else:
                time.sleep(args.seconds)
        finally:
            strategy.stop.set()
            loop.join()
        if not client.safe_mode:  # shutting down: leave nothing behind
            client.enter_safe_mode(cancel_open_orders=True, reason="shutdown")
        left = client.trade.get_orders_pending(inst_id=args.inst_id)
        say(
            f"done: {strategy.counts}; safe mode: {client.safe_mode.reason!r}; pending: {len(left)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
