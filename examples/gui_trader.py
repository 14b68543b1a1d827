"""A Tkinter trading window: order book, trades, order ticket, open orders, safe mode, health.

    python examples/gui_trader.py                   # against the embedded simulator
    python examples/gui_trader.py --live --demo     # OKX demo trading (keys from the env)

What a person sees: the order-book ladder (click a row to copy its price into the
ticket) and the last trades; an order ticket (Buy/Sell, price, size, Place); the
account's open orders, each with its own Cancel button, and Cancel all; the balance
(and position, for derivatives) of the instrument's currencies; a safe-mode switch
(``client.enter_safe_mode`` / ``exit_safe_mode``: placements refused, cancels still
go out); the client's health and the WebSocket / order-book counters.

Threads. Tk is single-threaded: widgets may only be touched from the thread running
``mainloop()``. okx_sync calls handlers on its WS threads, and an exchange call blocks
(up to the HTTP timeout), so neither happens on the Tk thread: WS handlers and the
worker threads (one for orders, one for safe mode, snapshots and health) put what they
have into a bounded queue, which the Tk thread drains every 100 ms (``after()``).

Closing the window (or Ctrl+Q) cancels nothing silently: with orders open it asks
whether to cancel them first, leave them open, or keep the window; ``--seconds N``
(quit after N s; 0 = run until closed) says which orders stay open.
"""

from __future__ import annotations

import queue
import tkinter as tk
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from tkinter import font as tkfont
from tkinter import ttk
from typing import Any

import _tk_check
from _common import connect, parser

import okx_sync
from okx_sync.ops.safe_mode import cancel_pending_orders

DEPTH = 10  # ladder levels per side
ASK, BID = "#c0392b", "#1e8449"  # ladder colours
SOLD, BOUGHT = "#a93226", "#196f3d"  # trade colours
POLL_MS = 100  # how often the Tk thread drains the inbox
STATS_MS = 500  # how often the status lines are refreshed
HEALTH_EVERY = 2  # ask for client.health() every this many status refreshes
OPEN_STATES = ("live", "partially_filled")
MAX_ORDER_ROWS = 12  # open orders shown (the count says how many there are)
KEEP_FINAL = 200  # ended orders remembered (a late push of an older state is then ignored)


def _say(text: str) -> None:
    """One line for whoever runs this window from a terminal (the GUI test reads them)."""
    print(text, flush=True)


def _failure(exc: BaseException) -> str:
    """``refused: ...``, or ``outcome UNKNOWN ...`` when the request may have reached the
    exchange without an answer (then it is not re-sent; the orders channel will tell)."""
    what = f"{type(exc).__name__}: {exc}"
    if okx_sync.is_outcome_unknown(exc):
        return f"outcome UNKNOWN, not re-sent (Open orders will show the result): {what}"
    return f"refused: {what}"


class Desk:
    """The exchange side of the window: every method runs on a worker thread, calls
    okx_sync (blocking is fine here) and reports through ``post(kind, item)``, never
    touching a widget. Never raises: failures are posted as ``("error", text)``."""

    def __init__(
        self,
        client: okx_sync.Client,
        instrument: okx_sync.Instrument,
        post: Callable[[str, Any], None],
    ) -> None:
        self.client, self.inst_id, self.post = client, instrument.inst_id or "", post
        # spot trades with cash; derivatives on cross margin (this window opens no isolated)
        self.td_mode = "cash" if instrument.inst_type == "SPOT" else "cross"

    def place(self, side: str, px: Decimal, sz: Decimal) -> None:
        """Place a limit order (validated against tickSz/lotSz/minSz before sending).

        ``place_order_safely``: with a clOrdId and an expTime, so a lost answer is
        resolved by query, never re-sent blindly; one still unknown is said so, not
        reported refused."""
        try:
            result = self.client.trade.place_order_safely(
                inst_id=self.inst_id,
                td_mode=self.td_mode,
                side=side,
                ord_type="limit",
                px=px,
                sz=sz,
            )
        except okx_sync.OkxError as exc:
            self.post("error", f"{side} {_failure(exc)}")
        else:
            self.post("ack", (side, result.ord_id or "", px, sz))

    def cancel(self, inst_id: str, ord_id: str) -> None:
        """Cancel one order; the orders channel then reports it canceled."""
        try:
            self.client.trade.cancel_order(inst_id=inst_id, ord_id=ord_id)
        except okx_sync.OkxError as exc:
            self.post("error", f"cancel {ord_id} {_failure(exc)}")
        else:
            self.post("cancel_sent", ord_id)

    def cancel_all(self, then: str = "") -> None:
        """Cancel every pending order of the account (listed over REST, batches of 20).

        ``then="close"``: the report tells the window to close when nothing failed.
        """
        self.post("cancel_all_done", (cancel_pending_orders(self.client), then))

    def set_safe_mode(self, on: bool) -> None:
        """Enter (placements and amends refused before sending) or leave safe mode."""
        if on:
            report = self.client.enter_safe_mode(reason="GUI switch")
            self.post("safe_mode", (report.state, f"drained={report.drained}"))
        else:
            self.client.exit_safe_mode()
            self.post("safe_mode", (self.client.safe_mode, ""))

    def snapshot(self) -> None:
        """The account over REST (balances, positions, open orders): at start and after
        the private WS reconnects, when pushes may have been missed."""
        try:
            self.post("snapshot", okx_sync.Reconciler(self.client).snapshot(fills_limit=1))
        except okx_sync.OkxError as exc:
            self.post("error", f"account snapshot failed: {type(exc).__name__}: {exc}")

    def health(self) -> None:
        """``client.health()`` (reads stats only; off the Tk thread all the same)."""
        self.post("health", self.client.health())


class OrdersPanel:
    """The account's open orders as this window knows them (pushes from the orders
    channel, REST snapshots), one row each with its own Cancel button, and Cancel all.

    Tk thread only. Buttons call ``cancel(ord_id)`` / ``cancel_all()``; each Cancel
    button is registered in ``widgets`` as ``cancel:<ordId>``.
    """

    def __init__(
        self,
        parent: tk.Misc,
        mono: tkfont.Font,
        widgets: dict[str, tk.Misc],
        cancel: Callable[[str], None],
        cancel_all: Callable[[], None],
    ) -> None:
        self.widgets, self._cancel, self._mono = widgets, cancel, mono
        self.orders: dict[str, okx_sync.Order] = {}  # ordId -> newest state seen
        self._final: deque[str] = deque()  # ordIds that reached a final state, oldest first
        self._rows: list[tuple[str, str]] = []  # (ordId, text) shown
        self.box = ttk.LabelFrame(parent, text="Open orders (account)", padding=6)
        head = ttk.Frame(self.box)
        head.grid(row=0, column=0, sticky="ew")
        self.count = ttk.Label(head, text="none")
        self.count.grid(row=0, column=0, sticky="w")
        self.cancel_all_button = ttk.Button(head, text="Cancel all", command=cancel_all)
        self.cancel_all_button.grid(row=0, column=1, sticky="e", padx=(12, 0))
        widgets["cancel_all"] = self.cancel_all_button
        self.rows = ttk.Frame(self.box)
        self.rows.grid(row=1, column=0, sticky="ew")

    def update(self, order: okx_sync.Order) -> bool:
        """Take a newer state of ``order``; False when it was older than the one known
        (a snapshot crossing a push) or has no ordId."""
        if not order.ord_id:
            return False
        known = self.orders.get(order.ord_id)
        if known is not None and (known.u_time or 0) > (order.u_time or 0):
            return False
        self.orders[order.ord_id] = order
        if order.state not in OPEN_STATES:  # kept to recognise late pushes, a bounded few
            self._final.append(order.ord_id)
            while len(self._final) > KEEP_FINAL:
                gone = self._final.popleft()
                if gone in self.orders and self.orders[gone].state not in OPEN_STATES:
                    del self.orders[gone]
        self._render()
        return True

    def forget_ended(self, snap: okx_sync.AccountSnapshot) -> None:
        """Drop orders open here but not pending in ``snap`` and not updated since it was
        taken: they ended while pushes were missed (a reconnect)."""
        pending = {o.ord_id for o in snap.pending_orders}
        for ord_id, order in list(self.orders.items()):
            if order.state in OPEN_STATES and ord_id not in pending:
                if (order.u_time or 0) <= snap.taken_at_ms:
                    del self.orders[ord_id]
        self._render()

    def open_orders(self) -> list[okx_sync.Order]:
        """Live and partially filled orders, oldest first."""
        live = [o for o in self.orders.values() if o.state in OPEN_STATES]
        return sorted(live, key=lambda o: o.c_time or 0)

    def shown(self) -> list[str]:
        """The ordIds of the rows on screen."""
        return [ord_id for ord_id, _ in self._rows]

    def _render(self) -> None:
        open_orders = self.open_orders()
        rows = [
            (o.ord_id or "", f"{o.inst_id} {o.side or '?':<4} {o.px} x {o.sz} {o.state}")
            for o in open_orders[:MAX_ORDER_ROWS]
        ]
        self.count.config(text=f"{len(open_orders)} open" if open_orders else "none")
        if rows == self._rows:
            return
        self._rows = rows
        for child in self.rows.winfo_children():
            child.destroy()
        for name in [k for k in self.widgets if k.startswith("cancel:")]:
            del self.widgets[name]
        for i, (ord_id, text) in enumerate(rows):
            ttk.Label(self.rows, text=text, font=self._mono).grid(row=i, column=0, sticky="w")
            button = ttk.Button(
                self.rows, text="Cancel", width=7, command=partial(self._cancel, ord_id)
            )
            button.grid(row=i, column=1, padx=(6, 0))
            self.widgets[f"cancel:{ord_id}"] = button


class AccountLine:
    """One line: the balance of the instrument's currencies (spot: base and quote;
    derivatives: the settle currency) and its position, if any. Tk thread only."""

    def __init__(self, parent: tk.Misc, instrument: okx_sync.Instrument) -> None:
        self.inst_id = instrument.inst_id or ""
        self.ccys = [c for c in (instrument.base_ccy, instrument.quote_ccy) if c] or [
            instrument.settle_ccy or "USDT"
        ]
        self.balances: dict[str, okx_sync.BalanceDetail] = {}
        self.positions: dict[str, okx_sync.Position] = {}  # posSide ("" = net) -> position
        self.label = ttk.Label(parent, text="balance: ...", anchor="w", padding=(6, 1))

    def show(
        self, balance: okx_sync.Balance | None, positions: Iterable[okx_sync.Position]
    ) -> None:
        """Take the currencies in ``balance`` (a push holds the changed ones) and the
        positions of this instrument, then redraw."""
        for detail in balance.details if balance else ():
            if detail.ccy:
                self.balances[detail.ccy] = detail
        for p in positions:
            if p.inst_id == self.inst_id:
                self.positions[p.pos_side or ""] = p
        parts = []
        for ccy in self.ccys:
            d = self.balances.get(ccy)
            parts.append(f"{ccy} {d.cash_bal} (avail {d.avail_bal})" if d else f"{ccy} -")
        for pos_side, p in sorted(self.positions.items()):
            if p.pos:
                parts.append(f"position {pos_side or 'net'} {p.pos} @ {p.avg_px} upl {p.upl}")
        self.label.config(text="balance: " + "   ".join(parts))


class TradingWindow:
    """The window. Every method runs on the Tk thread except the ``on_*`` WS handlers,
    which only enqueue; exchange calls go to :class:`Desk` on worker threads."""

    def __init__(
        self,
        root: tk.Tk,
        client: okx_sync.Client,
        public: okx_sync.WSClient,
        private: okx_sync.WSClient,
        book: okx_sync.ManagedOrderBook,
        instrument: okx_sync.Instrument,
        seconds: float,
    ) -> None:
        self.root, self.client, self.inst_id = root, client, instrument.inst_id or ""
        self.public, self.private, self.book = public, private, book
        self.tick = instrument.tick_sz or Decimal("0.1")
        # Bounded: if the Tk thread stalls, WS threads must not grow memory without limit.
        # A full inbox drops the item and counts it (shown in the status lines).
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=5000)
        self.inbox_dropped = 0
        self.desk = Desk(client, instrument, self._enqueue)
        # Orders one at a time, in the order clicked; safe mode, snapshots and health on
        # their own thread, so the switch never waits behind a slow order.
        self.order_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gui-orders")
        self.ops_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gui-ops")
        self.jobs: list[Future[None]] = []  # handed to a worker, not known done yet
        self._health_job: Future[None] | None = None
        self.health_text = "health: ..."
        self.ladder_ready = False
        self._status_ticks = 0
        self._safe_pending = False  # a safe-mode switch is being sent
        self._closing = False  # close decided: no new work, waiting for jobs to finish
        self._dialog: tk.Toplevel | None = None
        self.widgets: dict[str, tk.Misc] = {}  # named widgets (their geometry is in state())
        self._build(instrument, seconds)
        self._run(self.ops_worker, self.desk.snapshot)

    # ---------------------------------------------------------------- WS threads
    def _enqueue(self, kind: str, item: Any) -> None:
        try:
            self.inbox.put_nowait((kind, item))
        except queue.Full:
            self.inbox_dropped += 1  # a rough count is fine

    def on_trade(self, trade: okx_sync.Trade) -> None:
        self._enqueue("trade", trade)

    def on_order(self, order: okx_sync.Order) -> None:
        self._enqueue("order", order)

    def on_balance(self, balance: okx_sync.Balance) -> None:
        self._enqueue("balance", balance)

    def on_position(self, position: okx_sync.Position) -> None:
        self._enqueue("position", position)

    def on_private_reconnect(self) -> None:
        self._enqueue("reconnected", None)

    def on_book(self, book: okx_sync.ManagedOrderBook) -> None:
        # The book's own thread, coalesced: a copy of the top levels goes to the Tk
        # thread, never the book itself (it keeps changing).
        self._enqueue("book", book.snapshot(depth=DEPTH))

    def on_resync(self, book: okx_sync.ManagedOrderBook, error: BaseException) -> None:
        self._enqueue("resync", f"{type(error).__name__}: {error}")

    # ---------------------------------------------------------------- layout
    def _build(self, instrument: okx_sync.Instrument, seconds: float) -> None:
        root = self.root
        root.title(f"okx_sync - {self.inst_id}")
        mono = tkfont.nametofont("TkFixedFont").copy()  # columns of digits line up
        mono.configure(size=10)
        body = ttk.Frame(root, padding=6)
        body.grid(row=0, column=0, sticky="nsew")

        ttk.Label(body, text="Order book").grid(row=0, column=0, sticky="w")
        self.ladder = tk.Listbox(
            body, height=2 * DEPTH, width=26, font=mono, activestyle="none", exportselection=False
        )
        self.ladder.grid(row=1, column=0, sticky="ns", padx=(0, 8))
        self.ladder.bind("<<ListboxSelect>>", self._ladder_clicked)

        ttk.Label(body, text="Last trades").grid(row=0, column=1, sticky="w")
        self.trades = tk.Listbox(body, height=2 * DEPTH, width=32, font=mono)
        self.trades.grid(row=1, column=1, sticky="ns", padx=(0, 8))

        right = ttk.Frame(body)
        right.grid(row=0, column=2, rowspan=2, sticky="n")
        self._build_ticket(right)
        self.order_panel = OrdersPanel(right, mono, self.widgets, self._cancel, self._cancel_all)
        self.order_panel.box.grid(row=3, column=0, sticky="ew", pady=(6, 0))

        self.account = AccountLine(root, instrument)
        self.account.label.grid(row=1, column=0, sticky="ew")
        self.status = ttk.Label(
            root, text="connecting...", relief="sunken", anchor="w", padding=(4, 1)
        )
        self.status.grid(row=2, column=0, sticky="ew")

        root.protocol("WM_DELETE_WINDOW", self.request_close)
        root.bind_all("<Control-q>", lambda _e: self.request_close())
        self.price.focus_set()
        root.after(POLL_MS, self._poll)
        root.after(STATS_MS, self._refresh_status)
        if seconds > 0:
            root.after(int(seconds * 1000), self._timed_close)

    def _build_ticket(self, parent: ttk.Frame) -> None:
        ticket = ttk.LabelFrame(parent, text="Order ticket", padding=6)
        ticket.grid(row=0, column=0, sticky="ew")
        self.side = tk.StringVar(value="buy")
        for col, side in enumerate(("buy", "sell")):
            rb = ttk.Radiobutton(ticket, text=side.capitalize(), value=side, variable=self.side)
            rb.grid(row=0, column=col, sticky="w")
            self.widgets[f"side_{side}"] = rb
        ttk.Label(ticket, text="Price").grid(row=1, column=0, sticky="w")
        self.price = ttk.Entry(ticket, width=16)
        self.price.grid(row=1, column=1, pady=2)
        ttk.Label(ticket, text="Size").grid(row=2, column=0, sticky="w")
        self.size = ttk.Entry(ticket, width=16)
        self.size.grid(row=2, column=1, pady=2)
        # Tab order is creation order: Price -> Size -> Place (space presses a button).
        self.place_button = ttk.Button(ticket, text="Place", command=self._submit)
        self.place_button.grid(row=3, column=0, columnspan=2, pady=4, sticky="ew")
        # Three lines high whatever it says, so the widgets below never move.
        self.ticket_msg = tk.Label(
            ticket, text="", width=48, height=3, wraplength=340, anchor="nw", justify="left"
        )
        self.ticket_msg.grid(row=4, column=0, columnspan=2, sticky="w")
        for entry in (self.price, self.size):
            entry.bind("<Return>", lambda _e: self._submit())
        self.widgets.update(price=self.price, size=self.size, place=self.place_button)

        self.safe_var = tk.BooleanVar(value=False)
        self.safe_switch = ttk.Checkbutton(
            parent,
            text="Safe mode: refuse placements (cancels still go out)",
            variable=self.safe_var,
            command=self._safe_clicked,
        )
        self.safe_switch.grid(row=1, column=0, sticky="w", pady=(6, 0))
        # Always one line of text, so nothing below moves when safe mode changes.
        self.safe_line = tk.Label(parent, text="", anchor="w", width=50, wraplength=380)
        self.safe_line.grid(row=2, column=0, sticky="w")
        self.widgets["safe_mode"] = self.safe_switch

    # ---------------------------------------------------------------- Tk thread
    def _run(
        self, worker: ThreadPoolExecutor, fn: Callable[..., None], *args: Any
    ) -> Future[None] | None:
        """Hand ``fn(*args)`` to a worker thread (remembered until done, for closing)."""
        if self._closing and fn != self.desk.cancel_all:
            return None
        job = worker.submit(self._guarded, fn, *args)
        self.jobs.append(job)
        return job

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        """On the worker: ``fn(*args)``; an unexpected exception is shown, not lost."""
        try:
            fn(*args)
        except Exception as exc:  # Desk catches okx_sync's errors; anything else lands here
            self._enqueue("failed", f"{fn.__name__} failed: {type(exc).__name__}: {exc}")

    def _poll(self) -> None:
        """Drain the inbox (bounded per tick, so a flood cannot freeze the window)."""
        # Jobs done before the drain have posted everything they had: closing may go on.
        self.jobs = [job for job in self.jobs if not job.done()]
        idle = not self.jobs
        book, drained = None, False
        for _ in range(500):
            try:
                kind, item = self.inbox.get_nowait()
            except queue.Empty:
                drained = True
                break
            if kind == "book":
                book = item  # only the newest ladder matters: render it once per tick
            else:
                getattr(self, f"_show_{kind}")(item)
        if book is not None and not self._closing:
            self._show_book(book)
        if self._closing and idle and drained:
            self._destroy()
            return
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
            _say(f"ladder: best_bid={bids[0].px} best_ask={asks[0].px}")

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

    # -- orders
    def _show_order(self, order: okx_sync.Order) -> None:
        if self.order_panel.update(order):
            _say(f"my order: ordId={order.ord_id} state={order.state}")

    def _submit(self) -> None:
        side = self.side.get()
        try:
            px, sz = Decimal(self.price.get().strip()), Decimal(self.size.get().strip())
        except InvalidOperation:
            self._show_error("price and size must be numbers")
            return
        self.ticket_msg.config(text=f"sending {side} {sz} @ {px}...")
        self._run(self.order_worker, self.desk.place, side, px, sz)

    def _cancel(self, ord_id: str) -> None:
        order = self.order_panel.orders.get(ord_id)
        if order is not None:
            self.ticket_msg.config(text=f"cancelling {ord_id}...")
            self._run(self.order_worker, self.desk.cancel, order.inst_id or self.inst_id, ord_id)

    def _cancel_all(self) -> None:
        self.ticket_msg.config(text="cancelling every open order...")
        self._run(self.order_worker, self.desk.cancel_all)

    def _show_ack(self, result: tuple[str, str, Decimal, Decimal]) -> None:
        side, ord_id, px, sz = result
        self.ticket_msg.config(text=f"{side} {sz} @ {px}: accepted, ordId {ord_id}")
        _say(f"order: {side} px={px} sz={sz} ordId={ord_id}")

    def _show_cancel_sent(self, ord_id: str) -> None:
        self.ticket_msg.config(text=f"cancel of {ord_id} accepted")
        _say(f"cancel: ordId={ord_id} accepted")

    def _show_cancel_all_done(self, result: tuple[Any, str]) -> None:
        report, then = result
        text = (
            f"cancel all: {len(report.cancelled)} of {report.listed} accepted, "
            f"{len(report.failed)} failed"
        )
        if report.errors:
            text += f" ({'; '.join(report.errors)})"
        self.ticket_msg.config(text=text)
        _say(text)
        if then == "close":
            if report.ok:
                self._close("closing: open orders cancelled")
            else:  # something may still be open: stay, so the person can see and retry
                self._closing = False
                self._set_enabled(True)
                self.ticket_msg.config(text=f"{text}: window kept open")

    def _show_failed(self, text: str) -> None:
        if self._safe_pending:  # the switch shows the client's real state again
            self._safe_pending = False
            self.safe_switch.state(["!disabled"])
        self._show_error(text)

    def _show_error(self, text: str) -> None:
        self.ticket_msg.config(text=text)
        _say(f"order error: {text}")

    # -- account
    def _show_snapshot(self, snap: okx_sync.AccountSnapshot) -> None:
        self.account.show(snap.balance, snap.positions)
        for order in snap.pending_orders:
            self._show_order(order)
        self.order_panel.forget_ended(snap)

    def _show_balance(self, balance: okx_sync.Balance) -> None:
        self.account.show(balance, ())

    def _show_position(self, position: okx_sync.Position) -> None:
        self.account.show(None, (position,))

    def _show_reconnected(self, _item: None) -> None:
        self.ticket_msg.config(text="private WS reconnected: reloading the account")
        self._run(self.ops_worker, self.desk.snapshot)

    # -- safe mode
    def _safe_clicked(self) -> None:
        want = self.safe_var.get()
        self._safe_pending = True
        self.safe_switch.state(["disabled"])
        self.safe_line.config(text="entering safe mode..." if want else "leaving safe mode...")
        self._run(self.ops_worker, self.desk.set_safe_mode, want)

    def _show_safe_mode(self, result: tuple[okx_sync.SafeModeState, str]) -> None:
        state, note = result
        self._safe_pending = False
        self.safe_switch.state(["!disabled"])
        self._render_safe_mode(state)
        _say(f"safe mode: {'on' if state.active else 'off'} {note}".rstrip())

    def _render_safe_mode(self, state: okx_sync.SafeModeState) -> None:
        self.safe_var.set(state.active)
        if state.active:
            text = f"SAFE MODE ON ({state.reason}): placements refused, {state.refused} so far"
            self.safe_line.config(text=text, fg="#b03a2e")
        else:
            self.safe_line.config(text="safe mode off: orders go out", fg="#566573")

    # -- status
    def _show_health(self, health: Any) -> None:
        self.health_text = f"health: {health.status}" + (
            f" ({health.reason})" if health.reasons else ""
        )

    def _refresh_status(self) -> None:
        self.root.after(STATS_MS, self._refresh_status)
        if self._closing:
            return  # (destroying the window drops the timer)
        parts = []
        for ws in (self.public, self.private):
            s = ws.stats()
            parts.append(
                f"{s.name}: {'up' if s.connected else 'DOWN'} msgs={s.messages} "
                f"reconnects={s.reconnects} queue={s.typed_queue_len} "
                f"dropped={s.typed_dropped} handler_errors={s.handler_errors}"
            )
        b = self.book.stats()
        parts.append(
            f"book {'in sync' if b.in_sync else 'RESYNCING'} seq={b.seq_id} "
            f"resyncs={b.resyncs}  |  gui inbox={self.inbox.qsize()} "
            f"dropped={self.inbox_dropped}"
        )
        self.status.config(text="\n".join([self.health_text, *parts]))
        if not self._safe_pending:  # safe mode may be entered elsewhere (a policy, a drill)
            self._render_safe_mode(self.client.safe_mode)  # local state, no network
        self._status_ticks += 1
        health_due = self._status_ticks % HEALTH_EVERY == 1
        if health_due and (self._health_job is None or self._health_job.done()):
            self._health_job = self._run(self.ops_worker, self.desk.health)

    def state(self) -> dict[str, Any]:
        """What the widgets show, and where the named ones are on the screen (root
        coordinates: x, y, width, height), for whoever drives the window from outside."""
        self.root.update_idletasks()  # the geometry after the latest changes, not before
        geometry = {}
        for name, w in self.widgets.items():
            if w.winfo_exists() and w.winfo_viewable():
                geometry[name] = [w.winfo_rootx(), w.winfo_rooty(), w.winfo_width(),
                                  w.winfo_height()]  # fmt: skip
        return {
            "ladder_ready": self.ladder_ready,
            "status": self.status.cget("text"),
            "account": self.account.label.cget("text"),
            "ticket": self.ticket_msg.cget("text"),
            "safe_mode": bool(self.safe_var.get()),
            "open_orders": self.order_panel.shown(),
            "trades": list(self.trades.get(0, "end")),
            "dialog": self._dialog is not None,
            "widgets": geometry,
        }

    # ---------------------------------------------------------------- closing
    def request_close(self) -> None:
        """Window close / Ctrl+Q: with orders open, ask what to do with them."""
        if self._closing or self._dialog is not None:
            return
        open_orders = self.order_panel.open_orders()
        if not open_orders:
            self._close("closing: no open orders")
            return
        self._ask_about_open_orders(len(open_orders))

    def _ask_about_open_orders(self, count: int) -> None:
        choices = [
            ("close_cancel", "Cancel them, then close", self._close_cancelling),
            ("close_leave", "Leave them open, close", self._close_leaving),
            ("close_stay", "Keep the window", self._close_dismissed),
        ]
        text = (
            f"{count} order(s) are open on the account.\nClosing this window does not cancel them."
        )
        self._dialog = modal_choice(self.root, "Open orders", text, choices, self.widgets)
        _say(f"asking: {count} open order(s)")

    def _drop_dialog(self) -> None:
        if self._dialog is not None:
            self._dialog.grab_release()
            self._dialog.destroy()
            self._dialog = None
        for name in [k for k in self.widgets if k.startswith("close_")]:
            del self.widgets[name]

    def _close_dismissed(self) -> None:
        self._drop_dialog()
        _say("close: kept open")

    def _close_leaving(self) -> None:
        self._drop_dialog()
        self._close(self._left_open_text())

    def _close_cancelling(self) -> None:
        self._drop_dialog()
        self._set_enabled(False)
        self.ticket_msg.config(text="cancelling every open order, then closing...")
        self._closing = True  # no new work; the cancel below is the last job
        self._run(self.order_worker, self.desk.cancel_all, "close")

    def _timed_close(self) -> None:
        if self._closing:
            return
        if self._dialog is not None:
            self._drop_dialog()
        self._close(self._left_open_text())

    def _left_open_text(self) -> str:
        ids = [o.ord_id for o in self.order_panel.open_orders()]
        if not ids:
            return "closing: no open orders"
        return f"closing: {len(ids)} order(s) stay open: {' '.join(str(i) for i in ids)}"

    def _set_enabled(self, on: bool) -> None:
        for w in (self.place_button, self.order_panel.cancel_all_button, self.safe_switch):
            w.state(["!disabled"] if on else ["disabled"])

    def _close(self, text: str) -> None:
        """Close once the jobs already handed to a worker are done (their outcome is then
        known, not lost); jobs not started yet are dropped. The Tk thread keeps polling
        meanwhile: it never waits on a worker."""
        _say(text)
        self._closing = True
        self._set_enabled(False)
        for job in list(self.jobs):
            job.cancel()  # only succeeds for a job not started yet

    def _destroy(self) -> None:
        self.order_worker.shutdown(wait=False)
        self.ops_worker.shutdown(wait=False)
        self.root.destroy()


def modal_choice(
    root: tk.Tk,
    title: str,
    text: str,
    choices: list[tuple[str, str, Callable[[], None]]],
    widgets: dict[str, tk.Misc],
) -> tk.Toplevel:
    """A dialog over ``root`` saying ``text`` with one button per ``(name, label,
    command)`` (registered in ``widgets`` under ``name``); closing it runs the last
    choice. It holds the input grab until the caller destroys it. Tk thread only."""
    dialog = tk.Toplevel(root)
    dialog.title(title)
    dialog.transient(root)
    frame = ttk.Frame(dialog, padding=12)
    frame.grid()
    ttk.Label(frame, text=text).grid(row=0, column=0, columnspan=len(choices), pady=(0, 10))
    for col, (name, label, command) in enumerate(choices):
        button = ttk.Button(frame, text=label, command=command)
        button.grid(row=1, column=col, padx=4)
        widgets[name] = button
    dialog.protocol("WM_DELETE_WINDOW", choices[-1][2])
    dialog.update_idletasks()  # its size, to centre it over the window
    x = root.winfo_rootx() + (root.winfo_width() - dialog.winfo_reqwidth()) // 2
    y = root.winfo_rooty() + (root.winfo_height() - dialog.winfo_reqheight()) // 3
    dialog.geometry(f"+{max(x, 0)}+{max(y, 0)}")
    dialog.grab_set()
    return dialog


def main() -> int:
    p = parser(__doc__.splitlines()[0], seconds=0.0)
    args = p.parse_args()
    root = tk.Tk()  # first: without a display this fails before anything is started
    violations = None
    if _tk_check.ENABLED:  # EXAMPLE_TK_CHECK=1: prove no widget is touched off the Tk thread
        violations = _tk_check.install(root)
    with connect(args) as venue:
        client = venue.client
        # Before the window is shown: the one blocking call made on this thread.
        instrument = client.instrument(args.inst_id)
        with (
            client.ws_public() as public,
            client.ws_private() as private,
            public.order_book(args.inst_id) as book,
        ):
            window = TradingWindow(root, client, public, private, book, instrument, args.seconds)
            if _tk_check.STATE_PATH:  # EXAMPLE_TK_STATE=PATH: the widgets' state, for a driver
                _tk_check.publish_state(root, window.state, _tk_check.STATE_PATH)
            book.on_update(window.on_book)
            book.on_resync(window.on_resync)
            public.on("trades", window.on_trade)
            private.on("orders", window.on_order)
            private.on("account", window.on_balance)
            private.on("positions", window.on_position)
            private.on_reconnect(window.on_private_reconnect)
            public.subscribe_and_wait({"channel": "trades", "instId": args.inst_id})
            private.subscribe_and_wait(
                [
                    {"channel": "orders", "instType": "ANY"},
                    {"channel": "account"},
                    {"channel": "positions", "instType": "ANY"},
                ]
            )
            root.mainloop()
            _say("window closed")
    if violations is not None:
        _say(f"tk thread violations: {violations()}")
        return 1 if violations() else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
