"""A Tkinter trading window: live order-book ladder, last trades, an order ticket, WS stats.

    python examples/gui_order_book.py                   # against the embedded simulator
    python examples/gui_order_book.py --live --demo     # OKX demo trading (keys from the env)

Tk is single-threaded: widgets may only be touched from the thread running
``mainloop()``. okx_sync calls handlers on its WS threads, so the handlers here
never touch a widget; they put what arrived into a bounded queue, and the Tk
thread drains that queue every 100 ms (``after()``). Orders are sent from a
worker thread too, because a REST call blocks (up to the HTTP timeout) and would
freeze the window; its result comes back through the same queue.

Click a ladder row to copy its price into the ticket. Ctrl+Q or closing the
window quits; ``--seconds N`` quits after N seconds (0 = run until closed).
"""

from __future__ import annotations

import queue
import tkinter as tk
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal, InvalidOperation
from tkinter import font as tkfont
from tkinter import ttk
from typing import Any

import _tk_check
from _common import connect, parser

import okx_sync

DEPTH = 10  # ladder levels per side
ASK, BID = "#c0392b", "#1e8449"  # ladder colours
SOLD, BOUGHT = "#a93226", "#196f3d"  # trade colours (the GUI test tells them apart)
POLL_MS = 100  # how often the Tk thread drains the inbox
STATS_MS = 500  # how often the status bar is refreshed


class TradingWindow:
    """The window. Every method runs on the Tk thread except the ``on_*`` WS handlers,
    which only enqueue."""

    def __init__(
        self,
        root: tk.Tk,
        client: okx_sync.Client,
        public: okx_sync.WSClient,
        private: okx_sync.WSClient,
        book: okx_sync.ManagedOrderBook,
        inst_id: str,
        seconds: float,
    ) -> None:
        self.root, self.client, self.inst_id = root, client, inst_id
        self.public, self.private, self.book = public, private, book
        # Bounded: if the Tk thread stalls, WS threads must not grow memory without limit.
        # A full inbox drops the item and counts it (shown in the status bar).
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=5000)
        self.inbox_dropped = 0
        self.orders = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gui-orders")
        self.ladder_ready = False
        self.tick = client.instrument(inst_id).tick_sz or Decimal("0.1")  # REST, once, cached
        self._closing = False
        self._build(seconds)

    # ---------------------------------------------------------------- WS threads
    def _enqueue(self, kind: str, item: Any) -> None:
        try:
            self.inbox.put_nowait((kind, item))
        except queue.Full:
            self.inbox_dropped += 1  # one writer per WS client thread; a rough count is fine

    def on_trade(self, trade: okx_sync.Trade) -> None:
        self._enqueue("trade", trade)

    def on_order(self, order: okx_sync.Order) -> None:
        self._enqueue("order", order)

    def on_book(self, book: okx_sync.ManagedOrderBook) -> None:
        # Runs on the book's own thread, coalesced: a copy of the top levels goes
        # to the Tk thread, never the book itself (it keeps changing).
        self._enqueue("book", book.snapshot(depth=DEPTH))

    def on_resync(self, book: okx_sync.ManagedOrderBook, error: BaseException) -> None:
        self._enqueue("resync", f"{type(error).__name__}: {error}")

    # ---------------------------------------------------------------- layout
    def _build(self, seconds: float) -> None:
        root = self.root
        root.title(f"okx_sync - {self.inst_id}")
        mono = tkfont.nametofont("TkFixedFont").copy()  # columns of digits line up
        mono.configure(size=11)
        body = ttk.Frame(root, padding=6)
        body.grid(row=0, column=0, sticky="nsew")

        ttk.Label(body, text="Order book").grid(row=0, column=0, sticky="w")
        self.ladder = tk.Listbox(
            body, height=2 * DEPTH, width=28, font=mono, activestyle="none", exportselection=False
        )
        self.ladder.grid(row=1, column=0, sticky="ns", padx=(0, 8))
        self.ladder.bind("<<ListboxSelect>>", self._ladder_clicked)

        ttk.Label(body, text="Last trades").grid(row=0, column=1, sticky="w")
        self.trades = tk.Listbox(body, height=2 * DEPTH, width=34, font=mono)
        self.trades.grid(row=1, column=1, sticky="ns", padx=(0, 8))

        ticket = ttk.LabelFrame(body, text="Order ticket", padding=6)
        ticket.grid(row=1, column=2, sticky="n")
        ttk.Label(ticket, text="Price").grid(row=0, column=0, sticky="w")
        self.price = ttk.Entry(ticket, width=14)
        self.price.grid(row=0, column=1, pady=2)
        ttk.Label(ticket, text="Size").grid(row=1, column=0, sticky="w")
        self.size = ttk.Entry(ticket, width=14)
        self.size.grid(row=1, column=1, pady=2)
        # Tab order is creation order: Price -> Size -> Buy -> Sell (space presses a button).
        ttk.Button(ticket, text="Buy", command=lambda: self._submit("buy")).grid(
            row=2, column=0, pady=4
        )
        ttk.Button(ticket, text="Sell", command=lambda: self._submit("sell")).grid(
            row=2, column=1, pady=4
        )
        self.ticket_msg = ttk.Label(ticket, text="", width=30, wraplength=220)
        self.ticket_msg.grid(row=3, column=0, columnspan=2, sticky="w")
        ttk.Label(ticket, text="My orders").grid(row=4, column=0, columnspan=2, sticky="w")
        self.my_orders = tk.Listbox(ticket, height=8, width=32, font=mono)
        self.my_orders.grid(row=5, column=0, columnspan=2)
        self._order_rows: dict[str, str] = {}

        self.status = ttk.Label(
            root, text="connecting...", relief="sunken", anchor="w", padding=(4, 1)
        )
        self.status.grid(row=1, column=0, sticky="ew")

        root.protocol("WM_DELETE_WINDOW", self.close)
        root.bind_all("<Control-q>", lambda _e: self.close())
        self.price.focus_set()
        self.root.after(POLL_MS, self._poll)
        self.root.after(STATS_MS, self._refresh_status)
        if seconds > 0:
            self.root.after(int(seconds * 1000), self.close)

    # ---------------------------------------------------------------- Tk thread
    def _poll(self) -> None:
        """Drain the inbox (bounded per tick, so a flood cannot freeze the window)."""
        if self._closing:
            return
        book = None
        for _ in range(500):
            try:
                kind, item = self.inbox.get_nowait()
            except queue.Empty:
                break
            if kind == "book":
                book = item  # only the newest ladder matters: render it once per tick
            else:
                getattr(self, f"_show_{kind}")(item)
        if book is not None:
            self._show_book(book)
        self.root.after(POLL_MS, self._poll)

    def _show_book(self, snap: okx_sync.OrderBook) -> None:
        bids, asks = snap.bids, snap.asks  # BookLevel(px, sz, orders), best first
        if not bids or not asks:
            return  # out of sync (resyncing): keep showing the last good ladder
        # OKX sends "60001" and "60000.5" alike: show every price with the tick's decimals.
        rows = [(f"{self._px(a.px):>12} {a.sz:>12}", ASK) for a in reversed(asks)]
        rows += [(f"{self._px(b.px):>12} {b.sz:>12}", BID) for b in bids]
        self.ladder.delete(0, "end")
        for i, (text, colour) in enumerate(rows):
            self.ladder.insert("end", text)
            self.ladder.itemconfig(i, foreground=colour)
        if not self.ladder_ready:
            self.ladder_ready = True
            # One line for whoever drives this window from outside (the GUI test waits on it).
            print(f"ladder: best_bid={bids[0].px} best_ask={asks[0].px}", flush=True)

    def _px(self, px: Decimal) -> Decimal:
        return px.quantize(self.tick)

    def _show_resync(self, text: str) -> None:
        self.ticket_msg.config(text=f"order book resyncing: {text}")

    def _ladder_clicked(self, _event: object) -> None:
        sel = self.ladder.curselection()
        if sel:
            self.price.delete(0, "end")
            self.price.insert(0, self.ladder.get(sel[0]).split()[0])

    def _show_trade(self, trade: okx_sync.Trade) -> None:
        when = datetime.fromtimestamp((trade.ts or 0) / 1000).strftime("%H:%M:%S")
        self.trades.insert(0, f"{when} {trade.side or '':<4} {trade.px} {trade.sz}")
        self.trades.itemconfig(0, foreground=BOUGHT if trade.side == "buy" else SOLD)
        self.trades.delete(2 * DEPTH, "end")

    def _show_order(self, order: okx_sync.Order) -> None:
        if order.inst_id != self.inst_id or not order.ord_id:
            return
        self._order_rows[order.ord_id] = f"{order.side:<4} {order.px} x {order.sz} {order.state}"
        self.my_orders.delete(0, "end")
        for row in list(self._order_rows.values())[-8:]:
            self.my_orders.insert("end", row)
        print(f"my order: ordId={order.ord_id} state={order.state}", flush=True)

    def _show_ack(self, result: tuple[str, str, Decimal, Decimal]) -> None:
        side, ord_id, px, sz = result
        self.ticket_msg.config(text=f"{side} {sz} @ {px}: accepted, ordId {ord_id}")
        print(f"order: {side} px={px} sz={sz} ordId={ord_id}", flush=True)

    def _show_error(self, text: str) -> None:
        self.ticket_msg.config(text=text)
        print(f"order error: {text}", flush=True)

    def _submit(self, side: str) -> None:
        try:
            px, sz = Decimal(self.price.get().strip()), Decimal(self.size.get().strip())
        except InvalidOperation:
            self._show_error("price and size must be numbers")
            return
        self.ticket_msg.config(text=f"sending {side} {sz} @ {px}...")
        self.orders.submit(self._place, side, px, sz)

    # ---------------------------------------------------------------- order worker
    def _place(self, side: str, px: Decimal, sz: Decimal) -> None:
        """Runs on the order worker thread: blocking REST is fine here, widgets are not."""
        try:
            # Validated against tickSz/lotSz/minSz before anything is sent.
            ack = self.client.trade.place_order(
                inst_id=self.inst_id, td_mode="cash", side=side, ord_type="limit", px=px, sz=sz
            )
        except okx_sync.OkxError as exc:
            self._enqueue("error", f"{side} refused: {exc}")
        else:
            self._enqueue("ack", (side, ack.ord_id or "", px, sz))

    def _refresh_status(self) -> None:
        if self._closing:
            return
        parts = []
        for ws in (self.public, self.private):
            s = ws.stats()
            parts.append(
                f"{s.name}: {'up' if s.connected else 'DOWN'} msgs={s.messages} "
                f"reconnects={s.reconnects} queue={s.typed_queue_len} "
                f"dropped={s.typed_dropped} handler_errors={s.handler_errors}"
            )
        b = self.book.stats()
        line2 = (
            f"book {'in sync' if b['in_sync'] else 'RESYNCING'} seq={b['seq_id']} "
            f"resyncs={b['resyncs']}  |  gui inbox={self.inbox.qsize()} "
            f"dropped={self.inbox_dropped}"
        )
        self.status.config(text="\n".join([*parts, line2]))
        self.root.after(STATS_MS, self._refresh_status)

    def state(self) -> dict[str, Any]:
        """What the widgets show (for the check mode's F12): status bar, trade rows."""
        return {"status": self.status.cget("text"), "trades": list(self.trades.get(0, "end"))}

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        # An order already sent finishes first (its outcome is then known, not lost).
        self.orders.shutdown(wait=True, cancel_futures=True)
        self.root.destroy()


def main() -> int:
    p = parser(__doc__.splitlines()[0], seconds=0.0)
    args = p.parse_args()
    root = tk.Tk()  # first: without a display this fails before anything is started
    window: TradingWindow | None = None
    violations = None
    if _tk_check.ENABLED:  # EXAMPLE_TK_CHECK=1: prove no widget is touched off the Tk thread
        violations = _tk_check.install(root, lambda: window.state() if window else {})
    with connect(args) as venue:
        client = venue.client
        with (
            client.ws_public() as public,
            client.ws_private() as private,
            public.order_book(args.inst_id) as book,
        ):
            window = TradingWindow(root, client, public, private, book, args.inst_id, args.seconds)
            book.on_update(window.on_book)
            book.on_resync(window.on_resync)
            public.on("trades", window.on_trade)
            public.subscribe_and_wait({"channel": "trades", "instId": args.inst_id})
            private.on("orders", window.on_order)
            private.subscribe_and_wait({"channel": "orders", "instType": "ANY"})
            root.mainloop()
            print("window closed", flush=True)
    if violations is not None:
        print(f"tk thread violations: {violations()}", flush=True)
        return 1 if violations() else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
