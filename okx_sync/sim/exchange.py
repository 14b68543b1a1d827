"""The simulator's deterministic exchange: books, market maker, matching, accounts, events.

Everything random comes from ``random.Random`` instances derived from the seed
(one per purpose and instrument), so the same seed and the same sequence of calls
give the same books, fills and ids. The clock is injected.

What it does:

- per-instrument books with a random-walk market maker (``step``): the mid moves a
  tick at a time, the maker quotes ``book_depth`` levels a side, re-sizes a few
  levels per step, sells into user bids (buys from user asks) that the new quotes
  cross, and a noise taker prints trades that may fill user orders at the top;
- user orders: ``limit``, ``market``, ``post_only``, ``fok``, ``ioc``,
  ``optimal_limit_ioc``; price-time priority; self-trade prevention
  (``cancel_maker``); maker/taker fees; balances, order freezes and net-mode
  positions that move (see :mod:`okx_sync.sim.accounts`);
- clOrdId uniqueness among pending orders (51016), states
  ``live -> partially_filled -> filled / canceled`` with OKX cancelSource codes;
- cancel-all-after timers (cancelSource 20) through an injected scheduler;
- published market data (:mod:`okx_sync.sim.marketdata`): ``flush`` turns book
  changes into ``books`` / ``books5`` / ``bbo-tbt`` / ``tickers`` / candle events.

Every state change produces :class:`SimEvent` objects that listeners (the WS hub)
receive, in order, at the end of the operation, while the exchange lock is held.

Thread safety: all public methods take ``self.lock`` (an ``RLock``); listeners run
under it and must not block unless asked to (flood mode).
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from ..clock import Clock
from .accounts import OPTION_SHORT_MARGIN, Account, Position
from .book import MatchBook, Resting
from .instruments import InstrumentSpec
from .market import BARS, CandleSeries
from .marketdata import InstrumentFeed
from .numbers import ZERO, floor_to, fmt, is_multiple, parse_decimal
from .orders import LIVE_STATES, TERMINAL_STATES, FillRecord, SimOrder

__all__ = ["Exchange", "SimEvent", "SimRequestError", "BookView", "ItemError", "Listener"]

log = logging.getLogger("okx_sync.sim.exchange")

_CL_ORD_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_TAG = re.compile(r"^[A-Za-z0-9]{1,16}$")
ORD_TYPES = frozenset({"market", "limit", "post_only", "fok", "ioc", "optimal_limit_ioc"})
MAX_BATCH = 20


class SimRequestError(Exception):
    """A request-level failure: OKX answers with this top-level ``code`` and empty data."""

    def __init__(self, code: str, msg: str, http_status: int = 200) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status


class ItemError(Exception):
    """A per-item failure of an order-entry request (becomes ``sCode``/``sMsg``)."""

    def __init__(self, code: str, msg: str, sub_code: str = "") -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.sub_code = sub_code


@attrs.frozen
class SimEvent:
    """One thing the WS layer may push.

    ``channel`` is the OKX channel (``books``, ``books5``, ``bbo-tbt``, ``tickers``,
    ``trades``, ``candle1m``..., ``orders``, ``account``, ``positions``,
    ``balance_and_position``); private events carry ``uid``; ``dropped`` marks a
    ``books`` update eaten by a seq-gap fault (advance state, send nothing).
    """

    channel: str
    data: list[dict[str, Any]] | list[list[str]]
    inst_id: str = ""
    uid: str = ""
    inst_type: str = ""
    inst_family: str = ""
    action: str = ""
    event_type: str = ""
    dropped: bool = False


Listener = Callable[[list[SimEvent], bool], None]
Schedule = Callable[[float, Callable[[], None]], Any]


@attrs.frozen
class BookView:
    """The published book of one instrument (what WS subscribers have) at ``seq_id``."""

    inst_id: str
    seq_id: int
    ts: int
    checksum: int
    bids: list[list[str]]
    asks: list[list[str]]


@attrs.define(eq=False)
class _MakerState:
    mid: int  # in ticks
    rng: random.Random
    unit: Decimal
    tick: Decimal
    bids: dict[int, list[Resting]] = attrs.field(factory=dict)  # price in ticks -> quotes
    asks: dict[int, list[Resting]] = attrs.field(factory=dict)
    next_id: int = 0
    quoted_range: tuple[int, int] = (0, 0)  # (bid_top, ask_top) of the last full re-quote
    holes: set[tuple[bool, int]] = attrs.field(factory=set)  # levels emptied by trades

    def side(self, is_bid: bool) -> dict[int, list[Resting]]:
        """The maker's quotes on one side, by price in ticks."""
        return self.bids if is_bid else self.asks


@attrs.define(eq=False)
class _Dirty:
    ccys: set[str] = attrs.field(factory=set)
    inst_ids: set[str] = attrs.field(factory=set)
    trades: list[dict[str, str]] = attrs.field(factory=list)


class Exchange:
    """A small deterministic OKX: see the module docstring.

    Raises :class:`SimRequestError` for request-level failures and returns per-item
    results (``sCode``...) for order entry. Thread safety: every public method locks.
    """

    def __init__(
        self,
        *,
        specs: Sequence[InstrumentSpec],
        seed: int | str,
        clock: Clock,
        checksum: str = "crc32",
        book_depth: int = 50,
        quiet_interval_s: float | None = 60.0,
        volatility: float = 1.0,
        trade_probability: float = 0.3,
        price_band: Decimal = Decimal("0.1"),
        history_minutes: int = 1440,
        schedule: Schedule | None = None,
    ) -> None:
        if book_depth < 1:
            raise ValueError("book_depth must be >= 1")
        self.lock = threading.RLock()
        self.clock = clock
        self.seed = seed
        self.specs: dict[str, InstrumentSpec] = {s.inst_id: s for s in specs}
        self.by_code: dict[int, InstrumentSpec] = {s.inst_id_code: s for s in specs}
        self.book_depth = book_depth
        self.quiet_interval_s = quiet_interval_s
        self.volatility = max(0.0, min(1.0, volatility))
        self.trade_probability = trade_probability
        self.price_band = price_band
        self._schedule = schedule
        self._rng = random.Random(f"{seed}:exchange")
        now = self.now_ms()
        self.books: dict[str, MatchBook] = {s.inst_id: MatchBook() for s in specs}
        self.feeds: dict[str, InstrumentFeed] = {
            s.inst_id: InstrumentFeed(s, random.Random(f"{seed}:feed:{s.inst_id}"), checksum)
            for s in specs
        }
        self.candles: dict[str, CandleSeries] = {
            s.inst_id: CandleSeries(
                s, random.Random(f"{seed}:candles:{s.inst_id}"), now, history_minutes
            )
            for s in specs
        }
        self.public_trades: dict[str, deque[dict[str, str]]] = {
            s.inst_id: deque(maxlen=500) for s in specs
        }
        self._trade_ids: dict[str, int] = {
            s.inst_id: self._rng.randrange(100_000_000, 900_000_000) for s in specs
        }
        self._trade_seq: dict[str, int] = {
            s.inst_id: self._rng.randrange(10**9, 10**10) for s in specs
        }
        self._next_ord_id = 2_500_000_000_000_000_000 + self._rng.randrange(10**15)
        self._next_bill_id = 1_800_000_000_000_000_000 + self._rng.randrange(10**15)
        self._next_pos_id = 1_900_000_000_000_000_000 + self._rng.randrange(10**15)
        self.accounts: dict[str, Account] = {}
        self.orders_by_id: dict[str, SimOrder] = {}
        self._makers: dict[str, _MakerState] = {}
        self._listeners: list[Listener] = []
        self._events: list[SimEvent] = []
        self._dirty: dict[str, _Dirty] = {}
        self._interest: dict[tuple[str, str], int] = {}
        self._last_candle: dict[tuple[str, str], list[str]] = {}
        self._caa: dict[tuple[str, str], tuple[int, float]] = {}  # (uid, tag) -> (token, deadline)
        self._caa_token = 0
        for spec in specs:
            unit = spec.min_sz * (100 if spec.is_spot else 10)
            self._makers[spec.inst_id] = _MakerState(
                mid=int(spec.start_px / spec.tick_sz),
                rng=random.Random(f"{seed}:maker:{spec.inst_id}"),
                unit=unit,
                tick=spec.tick_sz,
            )
            self._maker_quote(spec.inst_id)
        mono = self.clock.monotonic()
        for inst_id, feed in self.feeds.items():
            book = self.books[inst_id]
            feed.start(book.bids.wire_levels(10**6), book.asks.wire_levels(10**6), now, mono)
            book.bids.dirty.clear()
            book.asks.dirty.clear()
        self._events.clear()

    # ------------------------------------------------------------------ basics
    def now_ms(self) -> int:
        """The exchange's wall-clock time in milliseconds."""
        return int(self.clock.time() * 1000)

    def add_listener(self, listener: Listener) -> None:
        """Receive every future batch of events (called under the exchange lock)."""
        with self.lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop delivering events to ``listener``."""
        with self.lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def set_interest(self, channel: str, inst_id: str, delta: int) -> None:
        """Count subscribers of a public channel so only wanted pushes are built."""
        with self.lock:
            key = (channel, inst_id)
            value = self._interest.get(key, 0) + delta
            if value <= 0:
                self._interest.pop(key, None)
                self._last_candle.pop(key, None)
            else:
                self._interest[key] = value

    def create_account(
        self,
        uid: str,
        *,
        demo: bool,
        label: str,
        balances: Mapping[str, str | Decimal] | None = None,
        funding: Mapping[str, str | Decimal] | None = None,
    ) -> Account:
        """Add a trading account with starting trading/funding balances."""
        with self.lock:
            now = self.now_ms()
            acc = Account(uid=uid, demo=demo, label=label)
            for ccy, amount in (balances or {}).items():
                acc.add_cash(ccy, Decimal(str(amount)), now)
            for ccy, amount in (funding or {}).items():
                acc.funding[ccy] = Decimal(str(amount))
            self.accounts[uid] = acc
            return acc

    def account(self, uid: str) -> Account:
        """The account with ``uid``; raises ``KeyError``."""
        return self.accounts[uid]

    def instrument(self, inst_id: str) -> InstrumentSpec | None:
        """The spec of ``inst_id`` or None."""
        return self.specs.get(inst_id)

    def instrument_by_code(self, code: int) -> InstrumentSpec | None:
        """The spec with ``instIdCode == code`` or None."""
        return self.by_code.get(code)

    # ------------------------------------------------------------------ views for tests
    def book(self, inst_id: str) -> BookView:
        """The published book (what a correct WS client holds at ``seq_id``)."""
        with self.lock:
            feed = self.feeds[inst_id]
            return BookView(
                inst_id=inst_id,
                seq_id=feed.seq_id,
                ts=feed.ts,
                checksum=feed.checksum(),
                bids=[list(lv) for lv in feed.bids],
                asks=[list(lv) for lv in feed.asks],
            )

    def live_book(self, inst_id: str, depth: int = 400) -> dict[str, list[list[str]]]:
        """The matching book right now (may be ahead of the published one)."""
        with self.lock:
            book = self.books[inst_id]
            return {"bids": book.bids.wire_levels(depth), "asks": book.asks.wire_levels(depth)}

    @property
    def orders(self) -> dict[str, SimOrder]:
        """All user orders by ordId (a copy of the index; the orders are live objects)."""
        with self.lock:
            return dict(self.orders_by_id)

    def pending(self, uid: str | None = None) -> list[SimOrder]:
        """Live and partially filled user orders (of one account when ``uid`` is given)."""
        with self.lock:
            return [
                o for o in self.orders_by_id.values() if o.is_live and (uid is None or o.uid == uid)
            ]

    # ------------------------------------------------------------------ prices
    def mark(self, inst_id: str) -> Decimal:
        """Mid of the matching book (the maker's mid when a side is empty)."""
        book = self.books[inst_id]
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            return (bid + ask) / 2
        spec = self.specs[inst_id]
        return Decimal(self._makers[inst_id].mid) * spec.tick_sz

    def usd_price(self, ccy: str) -> Decimal:
        """USD value of one unit of ``ccy`` (stablecoins 1, others via ``CCY-USDT``)."""
        if ccy in ("USDT", "USD", "USDC"):
            return Decimal(1)
        for inst_id in (f"{ccy}-USDT", f"{ccy}-USDT-SWAP"):
            if inst_id in self.books:
                return self.mark(inst_id)
        return ZERO

    # ------------------------------------------------------------------ ids
    def _new_ord_id(self) -> str:
        self._next_ord_id += 1
        return str(self._next_ord_id)

    def _new_bill_id(self) -> str:
        self._next_bill_id += 1
        return str(self._next_bill_id)

    def _new_trade_id(self, inst_id: str) -> str:
        self._trade_ids[inst_id] += 1
        return str(self._trade_ids[inst_id])

    # ------------------------------------------------------------------ events
    def _emit(self, event: SimEvent) -> None:
        self._events.append(event)

    def _touch(self, uid: str) -> _Dirty:
        dirty = self._dirty.get(uid)
        if dirty is None:
            dirty = self._dirty[uid] = _Dirty()
        return dirty

    def _emit_order(self, order: SimOrder) -> None:
        spec = order.spec
        self._emit(
            SimEvent(
                channel="orders",
                data=[order.to_okx(ws=True)],
                inst_id=spec.inst_id,
                uid=order.uid,
                inst_type=spec.inst_type,
                inst_family=spec.inst_family,
            )
        )
        order.clear_fill()

    def _collect_account_events(self) -> None:
        now = self.now_ms()
        for uid, dirty in self._dirty.items():
            acc = self.accounts.get(uid)
            if acc is None:
                continue
            if dirty.ccys:
                bal = acc.balance(sorted(dirty.ccys), self.mark, self.usd_price, now)
                self._emit(
                    SimEvent(channel="account", data=[bal], uid=uid, event_type="event_update")
                )
            positions = [acc.positions[i] for i in sorted(dirty.inst_ids) if i in acc.positions]
            for pos in positions:
                spec = pos.spec
                self._emit(
                    SimEvent(
                        channel="positions",
                        data=[pos.to_okx(self.mark(spec.inst_id), self._usd_of(spec))],
                        uid=uid,
                        inst_id=spec.inst_id,
                        inst_type=spec.inst_type,
                        inst_family=spec.inst_family,
                        event_type="event_update",
                    )
                )
            if dirty.trades:
                bal_data = [
                    {"ccy": c, "cashBal": fmt(acc.cash.get(c, ZERO)), "uTime": str(now)}
                    for c in sorted(dirty.ccys)
                ]
                pos_data = [self._bp_position(p) for p in positions]
                self._emit(
                    SimEvent(
                        channel="balance_and_position",
                        data=[
                            {
                                "pTime": str(now),
                                "eventType": "filled",
                                "balData": bal_data,
                                "posData": pos_data,
                                "trades": list(dirty.trades),
                            }
                        ],
                        uid=uid,
                    )
                )
        self._dirty.clear()

    def _bp_position(self, pos: Position) -> dict[str, str]:
        spec = pos.spec
        return {
            "posId": pos.pos_id,
            "tradeId": pos.trade_id,
            "instId": spec.inst_id,
            "instType": spec.inst_type,
            "mgnMode": pos.mgn_mode,
            "avgPx": fmt(pos.avg_px) if pos.pos != 0 else "",
            "ccy": spec.settle_ccy,
            "posSide": "net",
            "pos": fmt(pos.pos),
            "baseBal": "",
            "quoteBal": "",
            "posCcy": "",
            "uTime": str(pos.u_time),
        }

    def _usd_of(self, spec: InstrumentSpec) -> Decimal:
        return self.usd_price(spec.settle_ccy or spec.quote_ccy)

    def _dispatch(self, block: bool = False) -> None:
        self._collect_account_events()
        if not self._events:
            return
        events, self._events = self._events, []
        for listener in list(self._listeners):
            try:
                listener(events, block)
            except Exception:  # a broken listener must not break the exchange
                log.exception("simulator event listener failed")

    # ------------------------------------------------------------------ market maker
    def _maker_quote(self, inst_id: str) -> None:
        """(Re)build the maker's ladder around its mid; sells/buys into crossed users.

        Prices are handled in whole ticks; only the edges move when the mid moves,
        and a few random levels are re-sized per call.
        """
        book = self.books[inst_id]
        mm = self._makers[inst_id]
        depth = self.book_depth
        mm.mid = max(mm.mid, depth + 2)
        bid_top, ask_top = mm.mid - 1, mm.mid + 1
        ranges = ((True, bid_top - depth + 1, bid_top), (False, ask_top, ask_top + depth - 1))
        moved = mm.quoted_range != (bid_top, ask_top)
        if moved:
            for is_bid, low, high in ranges:
                quotes = mm.side(is_bid)
                stale = [t for t in quotes if t < low or t > high]
                if stale:
                    side = book.side(is_bid)
                    for t in stale:
                        px = t * mm.tick
                        for r in quotes.pop(t):
                            side.remove(px, r)
            # the maker's new quotes would cross resting user orders: trade with them
            self._maker_take(inst_id, taker_buys=False, limit=ask_top * mm.tick, max_qty=None)
            self._maker_take(inst_id, taker_buys=True, limit=bid_top * mm.tick, max_qty=None)
        rand = mm.rng.random
        if moved:
            for is_bid, low, high in ranges:
                quotes = mm.side(is_bid)
                for t in range(low, high + 1):
                    if t not in quotes:
                        self._maker_add(inst_id, is_bid, t, count=1 + int(rand() * 3))
            mm.quoted_range = (bid_top, ask_top)
            mm.holes.clear()
        elif mm.holes:
            for is_bid, t in sorted(mm.holes):
                if t not in mm.side(is_bid):
                    self._maker_add(inst_id, is_bid, t, count=1 + int(rand() * 3))
            mm.holes.clear()
        for _ in range(int(rand() * 4)):
            is_bid, low, _high = ranges[0] if rand() < 0.5 else ranges[1]
            t = low + int(rand() * depth)
            quotes = mm.side(is_bid)
            side = book.side(is_bid)
            px = t * mm.tick
            for r in quotes.pop(t, []):
                side.remove(px, r)
            self._maker_add(inst_id, is_bid, t, count=1 + int(rand() * 3))

    def _maker_add(self, inst_id: str, is_bid: bool, t: int, count: int) -> None:
        mm = self._makers[inst_id]
        side = self.books[inst_id].side(is_bid)
        entries = mm.side(is_bid).setdefault(t, [])
        px = t * mm.tick
        rand = mm.rng.random
        for _ in range(count):
            mm.next_id += 1
            r = Resting(ord_id=f"mm{mm.next_id}", uid="", size=mm.unit * (1 + int(rand() * 40)))
            side.add(px, r)
            entries.append(r)

    def _maker_forget(self, inst_id: str, px: Decimal, is_bid: bool, r: Resting) -> None:
        mm = self._makers[inst_id]
        quotes = mm.side(is_bid)
        t = int(px / mm.tick)
        entries = quotes.get(t)
        if entries and r in entries:
            entries.remove(r)
            if not entries:
                del quotes[t]
                mm.holes.add((is_bid, t))

    def _maker_take(
        self, inst_id: str, *, taker_buys: bool, limit: Decimal | None, max_qty: Decimal | None
    ) -> None:
        """The maker (or the noise trader) takes liquidity; user makers get filled.

        With ``max_qty=None`` it sweeps every level crossing ``limit`` (only user
        orders can be there: the maker's own stale quotes were pulled first).
        """
        book = self.books[inst_id]
        opp = book.side(not taker_buys)
        remaining = max_qty
        now = self.now_ms()
        while remaining is None or remaining > 0:
            level = opp.best()
            if level is None or not opp.crosses(level.price, limit):
                return
            px = level.price
            for r in list(level.queue):
                if remaining is not None and remaining <= 0:
                    return
                qty = r.size if remaining is None else min(r.size, remaining)
                trade_id = self._new_trade_id(inst_id)
                side = "buy" if taker_buys else "sell"
                self._record_trade(inst_id, px, qty, side, trade_id, now)
                if r.uid:
                    self._fill_user(r.order, px, qty, "M", trade_id, now)
                else:
                    opp.reduce(px, r, qty)
                    if r.size <= 0:
                        self._maker_forget(inst_id, px, not taker_buys, r)
                if remaining is not None:
                    remaining -= qty

    def step(self, inst_ids: Iterable[str] | None = None) -> None:
        """One market-maker step: random walk, re-quote, maybe a noise trade."""
        with self.lock:
            for inst_id in list(inst_ids) if inst_ids is not None else list(self.specs):
                self._step_one(inst_id, force_trade=False)
            self._dispatch()

    def _step_one(self, inst_id: str, force_trade: bool) -> None:
        mm = self._makers[inst_id]
        r = mm.rng.random()
        if r < 0.25 * self.volatility:
            mm.mid -= 1
        elif r < 0.5 * self.volatility:
            mm.mid += 1
        self._maker_quote(inst_id)
        if force_trade or mm.rng.random() < self.trade_probability:
            taker_buys = mm.rng.random() < 0.5
            qty = mm.unit * (1 + int(mm.rng.random() * 5))
            self._maker_take(inst_id, taker_buys=taker_buys, limit=None, max_qty=qty)

    # ------------------------------------------------------------------ publishing
    def flush(self, inst_ids: Iterable[str] | None = None, block: bool = False) -> None:
        """Publish book changes (books/books5/bbo-tbt), tickers and candles as events."""
        with self.lock:
            now = self.now_ms()
            mono = self.clock.monotonic()
            for inst_id in list(inst_ids) if inst_ids is not None else list(self.specs):
                self._flush_one(inst_id, now, mono, self.quiet_interval_s)
            self._dispatch(block)

    def heartbeat(self, inst_id: str) -> None:
        """Send the quiet-book messages now (no-change ``books`` update, snapshots)."""
        with self.lock:
            feed = self.feeds[inst_id]
            upd = feed.heartbeat(self.now_ms(), self.clock.monotonic())
            self._emit(SimEvent(channel="books", data=[upd.data], inst_id=inst_id, action="update"))
            self._emit(SimEvent(channel="books5", data=[feed.books5()], inst_id=inst_id))
            self._emit(SimEvent(channel="bbo-tbt", data=[feed.bbo()], inst_id=inst_id))
            self._dispatch()

    def _flush_one(self, inst_id: str, now: int, mono: float, quiet: float | None) -> None:
        book = self.books[inst_id]
        feed = self.feeds[inst_id]
        upd = feed.update(book.bids.take_changes(), book.asks.take_changes(), now, mono, quiet)
        if upd is not None:
            self._emit(
                SimEvent(
                    channel="books",
                    data=[upd.data],
                    inst_id=inst_id,
                    action="update",
                    dropped=upd.dropped,
                )
            )
            if upd.dropped:
                return
            heartbeat = not upd.data["asks"] and not upd.data["bids"]
            if ("books5", inst_id) in self._interest and (feed.books5_changed() or heartbeat):
                self._emit(SimEvent(channel="books5", data=[feed.books5()], inst_id=inst_id))
            if ("bbo-tbt", inst_id) in self._interest and (feed.bbo_changed() or heartbeat):
                self._emit(SimEvent(channel="bbo-tbt", data=[feed.bbo()], inst_id=inst_id))
        if ("tickers", inst_id) in self._interest:
            ticker = self.ticker(inst_id)
            key = tuple(ticker[k] for k in ("last", "lastSz", "askPx", "askSz", "bidPx", "bidSz"))
            if key != feed.last_ticker:
                feed.last_ticker = key
                self._emit(SimEvent(channel="tickers", data=[ticker], inst_id=inst_id))
        for (channel, iid), _n in list(self._interest.items()):
            if iid != inst_id or not channel.startswith("candle"):
                continue
            candle = self.candles[inst_id].current(channel[len("candle") :], now)
            if candle is not None and candle != self._last_candle.get((channel, iid)):
                self._last_candle[(channel, iid)] = candle
                self._emit(SimEvent(channel=channel, data=[candle], inst_id=inst_id))

    def snapshot_for(self, channel: str, inst_id: str) -> SimEvent | None:
        """The first push a new subscriber of a public channel gets (None: nothing)."""
        with self.lock:
            feed = self.feeds[inst_id]
            if channel == "books":
                return SimEvent(
                    channel="books", data=[feed.snapshot()], inst_id=inst_id, action="snapshot"
                )
            if channel == "books5":
                return SimEvent(channel="books5", data=[feed.books5()], inst_id=inst_id)
            if channel == "bbo-tbt":
                return SimEvent(channel="bbo-tbt", data=[feed.bbo()], inst_id=inst_id)
            if channel == "tickers":
                return SimEvent(channel="tickers", data=[self.ticker(inst_id)], inst_id=inst_id)
            if channel.startswith("candle"):
                candle = self.candles[inst_id].current(channel[len("candle") :], self.now_ms())
                if candle is None:
                    return None
                return SimEvent(channel=channel, data=[candle], inst_id=inst_id)
            return None

    def flood(self, inst_id: str, count: int, channels: Sequence[str] = ("books", "trades")) -> int:
        """Generate ``count`` book changes (and trades) for ``inst_id`` as fast as delivery allows.

        Each round runs one maker step (with a forced trade when ``trades`` is in
        ``channels``) and publishes at once; listeners are asked to block rather than
        drop when a connection's queue is full. Returns the number of rounds.
        """
        if inst_id not in self.specs:
            raise KeyError(inst_id)
        force_trade = "trades" in channels
        for _ in range(count):
            with self.lock:
                self._step_one(inst_id, force_trade=force_trade)
                self._flush_one(inst_id, self.now_ms(), self.clock.monotonic(), None)
                self._dispatch(block=True)
        return count

    # ------------------------------------------------------------------ faults on the feed
    def inject_seq_gap(self, inst_id: str, count: int = 1) -> None:
        """The next ``count`` ``books`` updates of ``inst_id`` are computed but never sent."""
        with self.lock:
            self.feeds[inst_id].gap_pending += count

    def inject_bad_checksum(self, inst_id: str, count: int = 1) -> None:
        """The next ``count`` ``books`` updates carry a wrong (non-zero) checksum."""
        with self.lock:
            self.feeds[inst_id].corrupt_pending += count

    def inject_malformed(self, inst_id: str, kind: str = "size", count: int = 1) -> None:
        """The next ``count`` ``books`` updates carry a malformed level (``MALFORMED_KINDS``)."""
        with self.lock:
            self.feeds[inst_id].malformed_pending.extend([kind] * count)

    def inject_seq_reset(self, inst_id: str) -> None:
        """The next ``books`` update resets the sequence (``seqId < prevSeqId``)."""
        with self.lock:
            self.feeds[inst_id].reset_pending += 1

    # ------------------------------------------------------------------ public data
    def ticker(self, inst_id: str) -> dict[str, str]:
        """``GET /market/ticker`` item from the published book and recent trades."""
        with self.lock:
            spec = self.specs[inst_id]
            feed = self.feeds[inst_id]
            now = self.now_ms()
            series = self.candles[inst_id]
            trades = self.public_trades[inst_id]
            last = trades[-1]["px"] if trades else fmt(series.last_px)
            last_sz = trades[-1]["sz"] if trades else "0"
            stats = series.window_stats(now, 24 * 3600 * 1000)
            ask = feed.asks[0] if feed.asks else ["", ""]
            bid = feed.bids[0] if feed.bids else ["", ""]
            day = 24 * 3600 * 1000
            sod0 = (now // day) * day
            sod8 = ((now + 8 * 3600 * 1000) // day) * day - 8 * 3600 * 1000
            return {
                "instType": spec.inst_type,
                "instId": inst_id,
                "last": last,
                "lastSz": last_sz,
                "askPx": ask[0],
                "askSz": ask[1],
                "bidPx": bid[0],
                "bidSz": bid[1],
                "open24h": fmt(stats["open"]),
                "high24h": fmt(stats["high"]),
                "low24h": fmt(stats["low"]),
                "volCcy24h": fmt(stats["volCcy"].quantize(Decimal("1e-8"))),
                "vol24h": fmt(stats["vol"]),
                "ts": str(now),
                "sodUtc0": fmt(series.open_at(sod0)),
                "sodUtc8": fmt(series.open_at(sod8)),
            }

    def trades(self, inst_id: str, limit: int = 100) -> list[dict[str, str]]:
        """Recent public trades, newest first (REST shape)."""
        with self.lock:
            items = list(self.public_trades[inst_id])[-limit:]
            return [
                {k: t[k] for k in ("instId", "side", "sz", "px", "tradeId", "ts", "source")}
                for t in reversed(items)
            ]

    def candle_rows(
        self, inst_id: str, bar: str, limit: int, after: int | None, before: int | None
    ) -> list[list[str]]:
        """Candles newest first; raises ``SimRequestError`` 51000 for an unknown bar."""
        if bar not in BARS:
            raise SimRequestError("51000", "Parameter bar error", 400)
        with self.lock:
            return self.candles[inst_id].query(bar, limit, self.now_ms(), after, before)

    def _record_trade(
        self, inst_id: str, px: Decimal, qty: Decimal, taker_side: str, trade_id: str, ts: int
    ) -> None:
        self._trade_seq[inst_id] += self._rng.randint(1, 60)
        trade = {
            "instId": inst_id,
            "tradeId": trade_id,
            "px": fmt(px),
            "sz": fmt(qty),
            "side": taker_side,
            "ts": str(ts),
            "count": "1",
            "source": "0",
        }
        self.public_trades[inst_id].append(trade)
        self.candles[inst_id].on_trade(ts, px, qty)
        ws_trade: dict[str, Any] = dict(trade)
        ws_trade["seqId"] = self._trade_seq[inst_id]
        self._emit(SimEvent(channel="trades", data=[ws_trade], inst_id=inst_id))

    # ------------------------------------------------------------------ order entry
    def place_orders(
        self, uid: str, items: Sequence[Mapping[str, Any]], *, source: str = ""
    ) -> list[dict[str, str]]:
        """Place orders (REST ``order``/``batch-orders``, WS ``order``/``batch-orders``).

        Returns one result item per request item (``sCode`` "0" on success).
        Raises ``SimRequestError`` for malformed requests (missing/invalid enums).
        """
        for item in items:
            self._check_place_shape(item)
        with self.lock:
            acc = self.accounts[uid]
            now = self.now_ms()
            batch_ids: set[str] = set()
            results: list[dict[str, str]] = []
            for item in items:
                cl = str(item.get("clOrdId") or "")
                tag = str(item.get("tag") or "")
                try:
                    order = self._new_order(acc, item, now, batch_ids)
                    order.source = source
                except ItemError as exc:
                    results.append(_item(cl, "", tag, now, exc.code, exc.msg, exc.sub_code))
                    continue
                if cl:
                    batch_ids.add(cl)
                results.append(_item(cl, order.ord_id, tag, now, "0", "Order placed"))
                self._accept(order)
            self._dispatch()
            return results

    def _check_place_shape(self, item: Mapping[str, Any]) -> None:
        if not isinstance(item, Mapping):
            raise SimRequestError("50002", "JSON syntax error", 400)
        for name in ("instId", "tdMode", "side", "ordType", "sz"):
            if item.get(name) in (None, ""):
                raise SimRequestError("50014", f"Parameter {name} can not be empty.", 400)
        if item["side"] not in ("buy", "sell"):
            raise SimRequestError("51000", "Parameter side error", 400)
        if item["ordType"] not in ORD_TYPES:
            raise SimRequestError("51000", "Parameter ordType error", 400)

    def _new_order(
        self, acc: Account, item: Mapping[str, Any], now: int, batch_ids: set[str]
    ) -> SimOrder:
        spec = self.specs.get(str(item["instId"]))
        if spec is None:
            raise ItemError(
                "51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist."
            )
        td_mode = str(item["tdMode"])
        if spec.is_spot and td_mode not in ("cash", "cross", "isolated", "spot_isolated"):
            raise ItemError("51000", "Parameter tdMode error")
        if spec.is_derivative and td_mode not in ("cross", "isolated"):
            raise ItemError("51000", "Parameter tdMode error")
        ord_type = str(item["ordType"])
        side = str(item["side"])
        cl = str(item.get("clOrdId") or "")
        tag = str(item.get("tag") or "")
        if cl and not _CL_ORD_ID.match(cl):
            raise ItemError("51000", "Parameter clOrdId error")
        if tag and not _TAG.match(tag):
            raise ItemError("51000", "Parameter tag error")
        if cl and (cl in batch_ids or self._pending_cl(acc.uid, cl) is not None):
            raise ItemError("51016", "Client order ID already exists.")
        sz = parse_decimal(item.get("sz"))
        if sz is None or sz <= 0:
            raise ItemError("51000", "Parameter sz error")
        px: Decimal | None = None
        market_like = ord_type in ("market", "optimal_limit_ioc")
        if not market_like:
            px = parse_decimal(item.get("px"))
            if item.get("px") in (None, ""):
                raise ItemError("51204", "The price for the limit order cannot be empty.")
            if px is None or px <= 0 or not is_multiple(px, spec.tick_sz):
                raise ItemError("51000", "Parameter px error")
        tgt_ccy = str(item.get("tgtCcy") or "")
        if spec.is_spot and ord_type == "market" and not tgt_ccy:
            tgt_ccy = "quote_ccy" if side == "buy" else "base_ccy"
        reduce_only = str(item.get("reduceOnly", "false")).lower() == "true"
        order = SimOrder(
            ord_id="",
            uid=acc.uid,
            spec=spec,
            side=side,
            ord_type=ord_type,
            td_mode=td_mode,
            sz=sz,
            px=px,
            c_time=now,
            u_time=now,
            cl_ord_id=cl,
            tag=tag,
            tgt_ccy=tgt_ccy if spec.is_spot else "",
            pos_side=str(item.get("posSide") or "net") if spec.is_derivative else "",
            reduce_only=reduce_only,
            stp_mode=str(item.get("stpMode") or "cancel_maker"),
            ccy=str(item.get("ccy") or ""),
        )
        if not order.quote_sized:
            if not is_multiple(sz, spec.lot_sz):
                raise ItemError("51121", "Order quantity must be a multiple of the lot size.")
            if sz < spec.min_sz:
                raise ItemError(
                    "51020", "Your order should meet or exceed the minimum order amount."
                )
            limit = spec.max_mkt_sz if market_like else spec.max_lmt_sz
            if sz > limit:
                raise ItemError(
                    "51202" if market_like else "51000", "Order amount exceeds the limit."
                )
        self._check_price_band(order)
        if spec.is_derivative:
            order.lever = fmt(self._lever(acc, spec, td_mode))
            if reduce_only:
                pos = acc.positions.get(spec.inst_id)
                held = pos.pos if pos else ZERO
                if held == 0 or (held > 0) == (side == "buy"):
                    raise ItemError(
                        "51169",
                        "Order failed because you don't have any positions in this direction "
                        "for this contract to reduce or close.",
                    )
        self._reserve(acc, order, now)
        order.ord_id = self._new_ord_id()
        return order

    def _check_price_band(self, order: SimOrder) -> None:
        if order.px is None:
            return
        mark = self.mark(order.spec.inst_id)
        high = mark * (1 + self.price_band)
        low = mark * (1 - self.price_band)
        if order.side == "buy" and order.px > high:
            raise ItemError(
                "51006",
                f"Order price is not within the price limit (max buy price: {fmt(floor_to(high, order.spec.tick_sz))}).",
            )
        if order.side == "sell" and order.px < low:
            raise ItemError(
                "51006",
                f"Order price is not within the price limit (min sell price: {fmt(floor_to(low, order.spec.tick_sz) + order.spec.tick_sz)}).",
            )

    def _lever(self, acc: Account, spec: InstrumentSpec, mgn_mode: str) -> Decimal:
        lever = acc.leverage.get((spec.inst_id, mgn_mode))
        if lever is None:
            lever = Decimal(10) if spec.inst_type != "OPTION" else Decimal(1)
        return lever

    def _estimate_px(self, order: SimOrder) -> Decimal:
        if order.px is not None:
            return order.px
        book = self.books[order.spec.inst_id]
        best = book.best_ask() if order.side == "buy" else book.best_bid()
        return best if best is not None else self.mark(order.spec.inst_id)

    def _requirement(self, acc: Account, order: SimOrder) -> tuple[str, Decimal]:
        """(currency, amount) the order needs available; frozen for resting orders."""
        spec = order.spec
        if spec.is_spot:
            if order.side == "buy":
                if order.quote_sized:
                    return spec.quote_ccy, order.sz
                return spec.quote_ccy, self._estimate_px(order) * order.sz
            if order.tgt_ccy == "quote_ccy" and order.ord_type == "market":
                return spec.base_ccy, order.sz / self._estimate_px(order)
            return spec.base_ccy, order.sz
        px = self._estimate_px(order)
        qty = order.sz * spec.multiplier
        if spec.inst_type == "OPTION":
            if order.side == "buy":
                return spec.settle_ccy, px * qty
            return spec.settle_ccy, qty * OPTION_SHORT_MARGIN
        if order.reduce_only:
            return spec.settle_ccy, ZERO
        return spec.settle_ccy, px * qty / Decimal(order.lever or "10")

    def _reserve(self, acc: Account, order: SimOrder, now: int) -> None:
        ccy, need = self._requirement(acc, order)
        avail = acc.available(ccy, self.mark)
        if need > avail:
            raise ItemError("51008", f"Order failed. Insufficient {ccy} balance in account", "1000")
        order.frozen_ccy = ccy
        if order.ord_type not in ("market", "optimal_limit_ioc"):
            order.frozen = need
            acc.freeze(ccy, need, now)
            self._touch(acc.uid).ccys.add(ccy)

    def _release(self, acc: Account, order: SimOrder, amount: Decimal, now: int) -> None:
        amount = min(amount, order.frozen)
        if amount <= 0:
            return
        order.frozen -= amount
        acc.freeze(order.frozen_ccy, -amount, now)
        self._touch(acc.uid).ccys.add(order.frozen_ccy)

    def _pending_cl(self, uid: str, cl_ord_id: str) -> SimOrder | None:
        for o in self.orders_by_id.values():
            if o.uid == uid and o.cl_ord_id == cl_ord_id and o.is_live:
                return o
        return None

    def _accept(self, order: SimOrder) -> None:
        """Register, announce ``live``, match, then rest or finish the order."""
        self.orders_by_id[order.ord_id] = order
        self._emit_order(order)
        spec = order.spec
        book = self.books[spec.inst_id]
        is_buy = order.side == "buy"
        opp = book.side(not is_buy)
        now = self.now_ms()
        if order.ord_type == "post_only":
            best = opp.best()
            if best is not None and opp.crosses(best.price, order.px):
                self._finish(order, "canceled", "31", now)
                return
        if order.ord_type == "fok" and not self._fok_fillable(order):
            self._finish(order, "canceled", "13", now)
            return
        self._take(order, now)
        if not order.is_live:
            return
        if order.ord_type in ("market", "optimal_limit_ioc", "ioc", "fok"):
            self._finish(order, "canceled", "14", now)
            return
        assert order.px is not None
        order.resting = Resting(
            ord_id=order.ord_id, uid=order.uid, size=order.remaining, order=order
        )
        book.side(is_buy).add(order.px, order.resting)

    def _fok_fillable(self, order: SimOrder) -> bool:
        opp = self.books[order.spec.inst_id].side(order.side != "buy")
        need = order.sz
        for px in opp.prices():
            if not opp.crosses(px, order.px):
                break
            need -= opp.levels[px].total
            if need <= 0:
                return True
        return False

    def _take(self, order: SimOrder, now: int) -> None:
        """Match ``order`` as taker against the opposite side."""
        spec = order.spec
        book = self.books[spec.inst_id]
        taker_buys = order.side == "buy"
        opp = book.side(not taker_buys)
        limit = order.px if order.ord_type not in ("market", "optimal_limit_ioc") else None
        while order.is_live:
            level = opp.best()
            if level is None or not opp.crosses(level.price, limit):
                return
            px = level.price
            for r in list(level.queue):
                if not order.is_live:
                    return
                if r.uid == order.uid and r.order is not None:
                    if order.stp_mode == "cancel_taker":
                        self._finish(order, "canceled", "32", now)
                        return
                    self._cancel_resting(r.order, "32", now)
                    if order.stp_mode == "cancel_both":
                        self._finish(order, "canceled", "32", now)
                        return
                    continue
                want = self._taker_want(order, px)
                if want <= 0:
                    self._finish(order, "canceled" if order.acc_fill_sz == 0 else "filled", "", now)
                    return
                qty = min(r.size, want)
                trade_id = self._new_trade_id(spec.inst_id)
                self._record_trade(spec.inst_id, px, qty, order.side, trade_id, now)
                if r.uid and r.order is not None:
                    self._fill_user(r.order, px, qty, "M", trade_id, now)
                else:
                    opp.reduce(px, r, qty)
                    if r.size <= 0:
                        self._maker_forget(spec.inst_id, px, not taker_buys, r)
                self._fill_user(order, px, qty, "T", trade_id, now)

    def _taker_want(self, order: SimOrder, px: Decimal) -> Decimal:
        spec = order.spec
        if order.quote_sized:
            return floor_to(order.remaining / px, spec.lot_sz)
        return order.remaining

    def _fill_user(
        self, order: SimOrder, px: Decimal, qty: Decimal, exec_type: str, trade_id: str, now: int
    ) -> None:
        """Book one execution for a user order (maker or taker side)."""
        acc = self.accounts[order.uid]
        spec = order.spec
        dirty = self._touch(acc.uid)
        before_remaining = order.remaining
        rate = spec.maker_fee_rate if exec_type == "M" else spec.taker_fee_rate
        pnl = ZERO
        if spec.is_spot:
            if order.side == "buy":
                acc.add_cash(spec.quote_ccy, -px * qty, now)
                fee = qty * rate
                acc.add_cash(spec.base_ccy, qty + fee, now)
                fee_ccy = spec.base_ccy
            else:
                acc.add_cash(spec.base_ccy, -qty, now)
                fee = px * qty * rate
                acc.add_cash(spec.quote_ccy, px * qty + fee, now)
                fee_ccy = spec.quote_ccy
            dirty.ccys.update((spec.base_ccy, spec.quote_ccy))
        else:
            fee_ccy = spec.settle_ccy
            fee = px * qty * spec.multiplier * rate
            if spec.inst_type == "OPTION":
                premium = px * qty * spec.multiplier
                acc.add_cash(spec.settle_ccy, -premium if order.side == "buy" else premium, now)
                self._move_position(acc, order, px, qty, trade_id, now, fee)
            else:
                pnl = self._move_position(acc, order, px, qty, trade_id, now, fee)
                acc.add_cash(spec.settle_ccy, pnl, now)
            acc.add_cash(spec.settle_ccy, fee, now)
            dirty.ccys.add(spec.settle_ccy)
            dirty.inst_ids.add(spec.inst_id)
        # release the share of the freeze this fill consumed
        if order.frozen > 0 and before_remaining > 0:
            used = qty * px if order.quote_sized else qty
            self._release(acc, order, order.frozen * min(Decimal(1), used / before_remaining), now)
        order.acc_fill_sz += qty
        order.acc_quote += px * qty
        order.fee += fee
        order.fee_ccy = fee_ccy
        order.pnl += pnl
        order.fill_px = px
        order.fill_sz = qty
        order.fill_time = now
        order.fill_fee = fee
        order.fill_pnl = pnl
        order.trade_id = trade_id
        order.exec_type = exec_type
        order.u_time = now
        if order.resting is not None and exec_type == "M":
            book_side = self.books[spec.inst_id].side(order.side == "buy")
            assert order.px is not None
            book_side.reduce(order.px, order.resting, qty)
        done = order.remaining <= 0 or (order.quote_sized and order.remaining < px * spec.lot_sz)
        order.state = "filled" if done else "partially_filled"
        if done:
            order.resting = None
            self._release(acc, order, order.frozen, now)
        acc.fills.append(
            FillRecord(
                bill_id=self._new_bill_id(),
                trade_id=trade_id,
                ord_id=order.ord_id,
                cl_ord_id=order.cl_ord_id,
                tag=order.tag,
                spec=spec,
                side=order.side,
                pos_side=order.pos_side or "",
                fill_px=px,
                fill_sz=qty,
                fee=fee,
                fee_ccy=fee_ccy,
                fee_rate=rate,
                pnl=pnl,
                exec_type=exec_type,
                ts=now,
            )
        )
        dirty.trades.append({"instId": spec.inst_id, "tradeId": trade_id})
        self._emit_order(order)

    def _move_position(
        self,
        acc: Account,
        order: SimOrder,
        px: Decimal,
        qty: Decimal,
        trade_id: str,
        now: int,
        fee: Decimal,
    ) -> Decimal:
        """Apply a derivative fill to the net position; returns realised P&L."""
        spec = order.spec
        pos = acc.positions.get(spec.inst_id)
        if pos is None:
            self._next_pos_id += 1
            pos = Position(
                spec=spec,
                pos_id=str(self._next_pos_id),
                mgn_mode=order.td_mode,
                lever=Decimal(order.lever or "1"),
                c_time=now,
            )
            acc.positions[spec.inst_id] = pos
        signed = qty if order.side == "buy" else -qty
        pnl = ZERO
        if pos.pos == 0 or (pos.pos > 0) == (signed > 0):
            total = abs(pos.pos) + qty
            pos.avg_px = (pos.avg_px * abs(pos.pos) + px * qty) / total
            pos.pos += signed
        else:
            closing = min(abs(pos.pos), qty)
            direction = Decimal(1) if pos.pos > 0 else Decimal(-1)
            if spec.inst_type != "OPTION":
                pnl = (px - pos.avg_px) * closing * spec.multiplier * direction
            pos.pos += signed
            if pos.pos == 0:
                pos.avg_px = ZERO
            elif (pos.pos > 0) != (direction > 0):
                pos.avg_px = px
        pos.realized_pnl += pnl
        pos.fee += fee
        pos.u_time = now
        pos.trade_id = trade_id
        if pos.pos == 0:
            pos.mgn_mode = order.td_mode
        return pnl

    def _finish(self, order: SimOrder, state: str, cancel_source: str, now: int) -> None:
        """Move ``order`` to a terminal state, free its freeze, leave the book, push."""
        acc = self.accounts[order.uid]
        if order.resting is not None:
            assert order.px is not None
            self.books[order.spec.inst_id].side(order.side == "buy").remove(order.px, order.resting)
            order.resting = None
        self._release(acc, order, order.frozen, now)
        order.state = state
        order.cancel_source = cancel_source
        order.u_time = now
        self._emit_order(order)

    def _cancel_resting(self, order: SimOrder, source: str, now: int) -> None:
        if order.is_live:
            self._finish(order, "canceled", source, now)

    def _find(self, uid: str, inst_id: str, ord_id: str, cl_ord_id: str) -> SimOrder | None:
        if ord_id:
            o = self.orders_by_id.get(ord_id)
            if o is not None and o.uid == uid and o.spec.inst_id == inst_id:
                return o
            return None
        if cl_ord_id:
            latest: SimOrder | None = None
            for o in self.orders_by_id.values():
                if o.uid == uid and o.cl_ord_id == cl_ord_id and o.spec.inst_id == inst_id:
                    if latest is None or int(o.ord_id) > int(latest.ord_id):
                        latest = o
            return latest
        return None

    def cancel_orders(self, uid: str, items: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
        """Cancel by ordId or clOrdId; per-item results (51400 when not cancelable)."""
        _check_targets(items)
        with self.lock:
            now = self.now_ms()
            out: list[dict[str, str]] = []
            for item in items:
                ord_id = str(item.get("ordId") or "")
                cl = str(item.get("clOrdId") or "")
                base = {"clOrdId": cl, "ordId": ord_id, "ts": str(now)}
                if not ord_id and not cl:
                    out.append(
                        {
                            **base,
                            "sCode": "51003",
                            "sMsg": "Either client order ID or order ID is required.",
                        }
                    )
                    continue
                inst_id = str(item["instId"])
                if inst_id not in self.specs:
                    out.append(
                        {
                            **base,
                            "sCode": "51001",
                            "sMsg": "Instrument ID, Instrument ID code or Spread ID doesn't exist.",
                        }
                    )
                    continue
                order = self._find(uid, inst_id, ord_id, cl)
                if order is None or not order.is_live:
                    out.append(
                        {
                            **base,
                            "sCode": "51400",
                            "sMsg": "Order cancellation failed as the order has been filled, canceled or does not exist.",
                        }
                    )
                    continue
                self._finish(order, "canceled", "1", now)
                out.append(
                    {
                        "clOrdId": order.cl_ord_id,
                        "ordId": order.ord_id,
                        "ts": str(now),
                        "sCode": "0",
                        "sMsg": "",
                    }
                )
            self._dispatch()
            return out

    def amend_orders(self, uid: str, items: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
        """Amend size and/or price; per-item results (51503 when not amendable)."""
        _check_targets(items)
        with self.lock:
            now = self.now_ms()
            out: list[dict[str, str]] = []
            for item in items:
                out.append(self._amend_one(uid, item, now))
            self._dispatch()
            return out

    def _amend_one(self, uid: str, item: Mapping[str, Any], now: int) -> dict[str, str]:
        ord_id = str(item.get("ordId") or "")
        cl = str(item.get("clOrdId") or "")
        req_id = str(item.get("reqId") or "")
        base = {"clOrdId": cl, "ordId": ord_id, "reqId": req_id, "ts": str(now)}
        if not ord_id and not cl:
            return {
                **base,
                "sCode": "51003",
                "sMsg": "Either client order ID or order ID is required.",
                "subCode": "",
            }
        inst_id = str(item["instId"])
        order = self._find(uid, inst_id, ord_id, cl) if inst_id in self.specs else None
        if order is None or not order.is_live:
            return {
                **base,
                "sCode": "51503",
                "sMsg": "Order modification failed as the order has been filled, canceled or does not exist.",
                "subCode": "",
            }
        base.update({"clOrdId": order.cl_ord_id, "ordId": order.ord_id})
        new_sz = parse_decimal(item.get("newSz"))
        new_px = parse_decimal(item.get("newPx"))
        if new_sz is None and new_px is None:
            return {
                **base,
                "sCode": "51500",
                "sMsg": "You must enter a price, quantity, or TP/SL",
                "subCode": "",
            }
        spec = order.spec
        acc = self.accounts[uid]
        error: ItemError | None = None
        if new_sz is not None and (
            new_sz <= order.acc_fill_sz or not is_multiple(new_sz, spec.lot_sz)
        ):
            error = ItemError("51000", "Parameter newSz error")
        elif new_px is not None and (new_px <= 0 or not is_multiple(new_px, spec.tick_sz)):
            error = ItemError("51000", "Parameter newPx error")
        if error is None and new_px is not None:
            probe = attrs.evolve(order, px=new_px, resting=None)
            try:
                self._check_price_band(probe)
            except ItemError as exc:
                error = exc
        if error is None:
            old_frozen = order.frozen
            probe = attrs.evolve(
                order,
                px=new_px if new_px is not None else order.px,
                sz=(new_sz if new_sz is not None else order.sz) - order.acc_fill_sz,
                resting=None,
            )
            ccy, need = self._requirement(acc, probe)
            if need - old_frozen > acc.available(ccy, self.mark):
                error = ItemError(
                    "51008", f"Order failed. Insufficient {ccy} balance in account", "1000"
                )
        if error is not None:
            if str(item.get("cxlOnFail", "false")).lower() == "true":
                order.amend_result = "1"
                order.req_id = req_id
                self._finish(order, "canceled", "1", now)
            return {**base, "sCode": error.code, "sMsg": error.msg, "subCode": error.sub_code}
        self._apply_amend(order, acc, new_sz, new_px, req_id, now)
        return {**base, "sCode": "0", "sMsg": "", "subCode": ""}

    def _apply_amend(
        self,
        order: SimOrder,
        acc: Account,
        new_sz: Decimal | None,
        new_px: Decimal | None,
        req_id: str,
        now: int,
    ) -> None:
        spec = order.spec
        book_side = self.books[spec.inst_id].side(order.side == "buy")
        assert order.px is not None and order.resting is not None
        self._release(acc, order, order.frozen, now)
        price_changed = new_px is not None and new_px != order.px
        grew = new_sz is not None and new_sz > order.sz
        if new_sz is not None:
            order.sz = new_sz
        if price_changed or grew:
            book_side.remove(order.px, order.resting)
            order.resting = None
        if new_px is not None:
            order.px = new_px
        if order.resting is not None:
            # size reduced in place keeps priority
            delta = order.resting.size - order.remaining
            if delta > 0:
                book_side.reduce(order.px, order.resting, delta)
        ccy, need = self._requirement(acc, attrs.evolve(order, sz=order.remaining, resting=None))
        order.frozen = need
        order.frozen_ccy = ccy
        acc.freeze(ccy, need, now)
        self._touch(acc.uid).ccys.add(ccy)
        order.amend_result = "0"
        order.req_id = req_id
        order.u_time = now
        self._emit_order(order)
        order.amend_result = ""
        if order.resting is None:
            opp = self.books[spec.inst_id].side(order.side != "buy")
            best = opp.best()
            if best is not None and opp.crosses(best.price, order.px):
                if order.ord_type == "post_only":
                    self._finish(order, "canceled", "31", now)
                    return
                self._take(order, now)
            if order.is_live:
                order.resting = Resting(
                    ord_id=order.ord_id, uid=order.uid, size=order.remaining, order=order
                )
                book_side.add(order.px, order.resting)

    # ------------------------------------------------------------------ account ops
    def close_position(self, uid: str, params: Mapping[str, Any]) -> dict[str, str]:
        """Close a net position at market (``POST /trade/close-position``)."""
        inst_id = str(params.get("instId") or "")
        mgn_mode = str(params.get("mgnMode") or "")
        if not inst_id:
            raise SimRequestError("50014", "Parameter instId can not be empty.", 400)
        if not mgn_mode:
            raise SimRequestError("50014", "Parameter mgnMode can not be empty.", 400)
        with self.lock:
            acc = self.accounts[uid]
            pos = acc.positions.get(inst_id)
            if inst_id not in self.specs:
                raise SimRequestError(
                    "51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist."
                )
            if pos is None or pos.pos == 0:
                raise SimRequestError("51023", "Position doesn't exist.")
            now = self.now_ms()
            if str(params.get("autoCxl", "false")).lower() == "true":
                for o in self.pending(uid):
                    if o.spec.inst_id == inst_id:
                        self._finish(o, "canceled", "1", now)
            spec = self.specs[inst_id]
            order = SimOrder(
                ord_id=self._new_ord_id(),
                uid=uid,
                spec=spec,
                side="sell" if pos.pos > 0 else "buy",
                ord_type="market",
                td_mode=mgn_mode,
                sz=abs(pos.pos),
                px=None,
                c_time=now,
                u_time=now,
                cl_ord_id=str(params.get("clOrdId") or ""),
                tag=str(params.get("tag") or ""),
                pos_side="net",
                reduce_only=True,
                lever=fmt(pos.lever),
            )
            self._accept(order)
            self._dispatch()
            return {
                "instId": inst_id,
                "posSide": str(params.get("posSide") or "net"),
                "clOrdId": order.cl_ord_id,
                "tag": order.tag,
            }

    def set_leverage(self, uid: str, params: Mapping[str, Any]) -> dict[str, str]:
        """``POST /account/set-leverage`` for an instId (or a ccy in cross mode)."""
        lever = parse_decimal(params.get("lever"))
        mgn_mode = str(params.get("mgnMode") or "")
        inst_id = str(params.get("instId") or "")
        ccy = str(params.get("ccy") or "")
        if params.get("lever") in (None, ""):
            raise SimRequestError("50014", "Parameter lever can not be empty.", 400)
        if mgn_mode not in ("cross", "isolated"):
            raise SimRequestError("51000", "Parameter mgnMode error", 400)
        if not inst_id and not ccy:
            raise SimRequestError("50015", "Either parameter instId or ccy is required", 400)
        if lever is None or lever < 1:
            raise SimRequestError("51000", "Parameter lever error", 400)
        with self.lock:
            acc = self.accounts[uid]
            targets = (
                [inst_id]
                if inst_id
                else [s.inst_id for s in self.specs.values() if s.settle_ccy == ccy]
            )
            for iid in targets:
                spec = self.specs.get(iid)
                if spec is None:
                    raise SimRequestError(
                        "51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist."
                    )
                if spec.is_spot or spec.inst_type == "OPTION":
                    raise SimRequestError("51000", "Parameter instId error")
                if spec.lever and lever > Decimal(spec.lever):
                    raise SimRequestError(
                        "59102", "Leverage exceeds the maximum leverage. Adjust the leverage."
                    )
                acc.leverage[(iid, mgn_mode)] = lever
                pos = acc.positions.get(iid)
                if pos is not None and pos.mgn_mode == mgn_mode:
                    pos.lever = lever
                    self._touch(uid).inst_ids.add(iid)
                    self._touch(uid).ccys.add(spec.settle_ccy)
            self._dispatch()
            return {
                "lever": fmt(lever),
                "mgnMode": mgn_mode,
                "instId": inst_id,
                "posSide": str(params.get("posSide") or "net"),
            }

    def set_cancel_all_after(self, uid: str, timeout_s: int, tag: str) -> dict[str, str]:
        """Arm (timeout 10..120 s) or disarm (0) a cancel-all-after timer."""
        with self.lock:
            now = self.now_ms()
            key = (uid, tag)
            if timeout_s == 0:
                self._caa.pop(key, None)
                return {"triggerTime": "0", "tag": tag, "ts": str(now)}
            if tag and key not in self._caa:
                tags = sum(1 for (u, t) in self._caa if u == uid and t)
                if tags >= 20:
                    raise SimRequestError(
                        "51071",
                        "You've reached the maximum limit for tag level cancel all after timers.",
                    )
            self._caa_token += 1
            token = self._caa_token
            self._caa[key] = (token, self.clock.monotonic() + timeout_s)
            if self._schedule is not None:
                self._schedule(float(timeout_s), lambda: self._fire_caa(uid, tag, token))
            trigger = now // 1000 + timeout_s
            return {"triggerTime": str(trigger), "tag": tag, "ts": str(now // 1000)}

    def _fire_caa(self, uid: str, tag: str, token: int) -> None:
        with self.lock:
            entry = self._caa.get((uid, tag))
            if entry is None or entry[0] != token:
                return  # re-armed or disarmed since
            del self._caa[(uid, tag)]
            now = self.now_ms()
            for o in self.pending(uid):
                if not tag or o.tag == tag:
                    self._finish(o, "canceled", "20", now)
            log.info("cancel-all-after fired", extra={"uid": uid, "tag": tag})
            self._dispatch()

    def cancel_all_after_armed(self, uid: str, tag: str = "") -> bool:
        """True while a cancel-all-after timer for (uid, tag) is armed."""
        with self.lock:
            return (uid, tag) in self._caa


def _check_targets(items: Sequence[Mapping[str, Any]]) -> None:
    """Cancel/amend items must be objects naming an instId (else a request-level error)."""
    for item in items:
        if not isinstance(item, Mapping):
            raise SimRequestError("50002", "JSON syntax error", 400)
        if not item.get("instId"):
            raise SimRequestError("50014", "Parameter instId can not be empty.", 400)


def _item(
    cl: str, ord_id: str, tag: str, ts: int, code: str, msg: str, sub_code: str = ""
) -> dict[str, str]:
    return {
        "clOrdId": cl,
        "ordId": ord_id,
        "tag": tag,
        "ts": str(ts),
        "sCode": code,
        "sMsg": msg,
        "subCode": sub_code,
    }


__all__ += ["LIVE_STATES", "TERMINAL_STATES", "MAX_BATCH"]
