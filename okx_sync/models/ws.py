"""Models of WebSocket-only pushes: order-book pushes and ``balance_and_position``. Pure.

``BookUpdate`` is one data item of a ``books``, ``books5``, ``bbo-tbt``,
``books-l2-tbt``, ``books50-l2-tbt`` or ``books-elp`` push (facts §5). Its
``asks``/``bids`` are ``BookLevel`` tuples (the one level type of REST books and of
``OrderBookStore``), parsed lazily; ``raw`` keeps OKX's exact strings
(``[px, sz, "0", numOrders]``): the checksum is computed over them and
re-formatting a price would break it. The pushed items carry no instId, so it is
taken from the push's ``arg``.

``BalanceAndPosition`` is one item of the private ``balance_and_position``
channel (facts §6.4): only the changed balances and positions are included.

Every other channel the OKX docs list gets a record generated from ``pushes.tsv``
(the docs' push tables, written by ``scripts/gen_results.py``; see
:mod:`okx_sync.models.records`): ``orders-algo`` -> ``OrdersAlgoPush``,
``sprd-candle1m`` -> ``SprdCandlePush`` (a candle family shares one record), built
on first use and cached (:func:`push_record`).

Models are frozen attrs classes; they keep the original item as ``raw`` and are
safe to share between threads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from importlib import resources
from typing import Any

import attrs

from .account import Balance, Position
from .base import dec, opt_int, opt_str, raw_field
from .instrument import Instrument
from .market import BookLevel, Candle, Ticker, Trade
from .order import Fill, Order
from .records import Record, RecordTable, camel

__all__ = [
    "BOOK_CHANNELS",
    "BookUpdate",
    "BalanceChange",
    "PositionChange",
    "BalanceAndPosition",
    "SPREAD_BOOK_CHANNELS",
    "push_parser",
    "push_record",
    "push_record_key",
    "documented_channels",
]

#: Order-book channels whose items are ``BookUpdate`` (facts §5).
BOOK_CHANNELS = frozenset(
    {"books", "books5", "bbo-tbt", "books-l2-tbt", "books50-l2-tbt", "books-elp"}
)


#: Spread order-book channels: their items have the same shape (``BookUpdate``).
SPREAD_BOOK_CHANNELS = frozenset({"sprd-books5", "sprd-bbo-tbt", "sprd-books-l2-tbt"})


@attrs.frozen(slots=True)
class BookUpdate:
    """One order-book push item.

    ``channel`` and ``inst_id`` come from the push's ``arg``; ``action`` is
    ``"snapshot"`` or ``"update"`` (channels without ``action``, such as
    ``books5`` and ``bbo-tbt``, are full snapshots); ``raw`` is the pushed
    item, its ``raw["asks"]`` / ``raw["bids"]`` the exact wire levels
    (``[px, sz, "0", numOrders]`` strings: what the checksum is computed over
    and what :meth:`okx_sync.OrderBookStore.apply` merges). Building one costs
    next to nothing on the reader thread: the other values are read from
    ``raw`` when accessed. ``asks`` (ascending) and ``bids`` (descending) are
    :class:`~okx_sync.models.BookLevel` tuples, parsed on first access and
    kept; ``ts`` (ms); ``checksum`` (None when absent; OKX sends 0 since June
    2026, meaning "not provided"); ``seq_id`` and ``prev_seq_id`` (None when
    absent; ``prev_seq_id == -1`` on a snapshot).

    Raises ``ValueError`` from ``asks`` / ``bids`` / ``best_*`` when a level's
    price or size is not a number. Thread safety: immutable (do not modify
    ``raw``); the parsed levels are cached, and two threads parsing at once
    only repeat the work.
    """

    channel: str
    inst_id: str
    action: str
    raw: dict[str, Any] = attrs.field(repr=False)
    _parsed: dict[str, tuple[BookLevel, ...]] = attrs.field(
        init=False, factory=dict, eq=False, repr=False
    )

    def _side(self, side: str) -> tuple[BookLevel, ...]:
        levels = self._parsed.get(side)
        if levels is None:
            levels = tuple(map(BookLevel.from_okx, self.raw.get(side) or ()))
            self._parsed[side] = levels
        return levels

    def _first(self, side: str) -> BookLevel | None:
        levels = self._parsed.get(side)
        if levels is not None:
            return levels[0] if levels else None
        wire = self.raw.get(side)
        return BookLevel.from_okx(wire[0]) if wire else None

    @property
    def asks(self) -> tuple[BookLevel, ...]:
        """Ask levels, best (lowest) first."""
        return self._side("asks")

    @property
    def bids(self) -> tuple[BookLevel, ...]:
        """Bid levels, best (highest) first."""
        return self._side("bids")

    @property
    def ts(self) -> int | None:
        """Push time in ms."""
        return opt_int(self.raw.get("ts"))

    @property
    def checksum(self) -> int | None:
        """The pushed CRC32 (0 = not provided), or None when absent."""
        return opt_int(self.raw.get("checksum"))

    @property
    def seq_id(self) -> int | None:
        """This push's seqId, or None when absent."""
        return opt_int(self.raw.get("seqId"))

    @property
    def prev_seq_id(self) -> int | None:
        """The previous push's seqId (-1 on a snapshot), or None when absent."""
        return opt_int(self.raw.get("prevSeqId"))

    @property
    def is_snapshot(self) -> bool:
        """True for a full book (``action`` snapshot, or a snapshot-only channel)."""
        return self.action == "snapshot"

    def best_bid(self) -> BookLevel | None:
        """The first bid level (only that one is parsed), or None."""
        return self._first("bids")

    def best_ask(self) -> BookLevel | None:
        """The first ask level (only that one is parsed), or None."""
        return self._first("asks")

    @classmethod
    def from_push(
        cls, arg: Mapping[str, Any], item: Mapping[str, Any], action: str | None = None
    ) -> BookUpdate:
        """Build from a push's ``arg``, one ``data`` item and its ``action``.

        A ``dict`` item is kept as ``raw`` without a copy (the reader's hot path).
        """
        raw = item if type(item) is dict else dict(item)
        return cls(arg.get("channel", ""), arg.get("instId", ""), action or "snapshot", raw)

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> BookUpdate:
        """Build from a whole push message (``arg``, ``action``, first ``data`` item).

        Raises ``ValueError`` when the message has no data item.
        """
        data = d.get("data") or []
        if not data:
            raise ValueError("book push without data")
        return cls.from_push(d.get("arg") or {}, data[0], d.get("action"))


@attrs.frozen(kw_only=True)
class BalanceChange:
    """One ``balData`` entry of ``balance_and_position``: a currency's new cash balance."""

    ccy: str
    cash_bal: Decimal | None
    u_time: int | None
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> BalanceChange:
        """Build from one ``balData`` item."""
        return cls(
            ccy=str(d.get("ccy", "")),
            cash_bal=dec(d.get("cashBal")),
            u_time=opt_int(d.get("uTime")),
            raw=dict(d),
        )


@attrs.frozen(kw_only=True)
class PositionChange:
    """One ``posData`` entry of ``balance_and_position``: a changed position."""

    pos_id: str | None
    trade_id: str | None
    inst_id: str
    inst_type: str | None
    mgn_mode: str | None
    pos_side: str | None
    pos: Decimal | None
    avg_px: Decimal | None
    ccy: str | None
    pos_ccy: str | None
    u_time: int | None
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> PositionChange:
        """Build from one ``posData`` item."""
        return cls(
            pos_id=opt_str(d.get("posId")),
            trade_id=opt_str(d.get("tradeId")),
            inst_id=str(d.get("instId", "")),
            inst_type=opt_str(d.get("instType")),
            mgn_mode=opt_str(d.get("mgnMode")),
            pos_side=opt_str(d.get("posSide")),
            pos=dec(d.get("pos")),
            avg_px=dec(d.get("avgPx")),
            ccy=opt_str(d.get("ccy")),
            pos_ccy=opt_str(d.get("posCcy")),
            u_time=opt_int(d.get("uTime")),
            raw=dict(d),
        )


@attrs.frozen(kw_only=True)
class BalanceAndPosition:
    """One item of the ``balance_and_position`` channel (facts §6.4).

    ``event_type``: ``snapshot``, ``delivered``, ``exercised``, ``transferred``,
    ``filled``, ``liquidation``, ``claw_back``, ``adl``. ``trades`` holds
    ``(instId, tradeId)`` pairs. Thread safety: immutable.
    """

    p_time: int | None
    event_type: str | None
    balances: tuple[BalanceChange, ...]
    positions: tuple[PositionChange, ...]
    trades: tuple[tuple[str, str], ...]
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> BalanceAndPosition:
        """Build from one ``data`` item."""
        return cls(
            p_time=opt_int(d.get("pTime")),
            event_type=opt_str(d.get("eventType")),
            balances=tuple(BalanceChange.from_okx(b) for b in d.get("balData") or ()),
            positions=tuple(PositionChange.from_okx(p) for p in d.get("posData") or ()),
            trades=tuple(
                (str(t.get("instId", "")), str(t.get("tradeId", ""))) for t in d.get("trades") or ()
            ),
            raw=dict(d),
        )


PushParser = Callable[[Mapping[str, Any], Mapping[str, Any], "str | None"], Any]


def _book(arg: Mapping[str, Any], item: Mapping[str, Any], action: str | None) -> BookUpdate:
    return BookUpdate.from_push(arg, item, action)


def _candle(arg: Mapping[str, Any], item: Any, action: str | None) -> Candle:
    return Candle.from_okx(item, inst_id=arg.get("instId"))


def _item_model(model: Any) -> PushParser:
    def build(arg: Mapping[str, Any], item: Mapping[str, Any], action: str | None) -> Any:
        return model.from_okx(item)

    return build


def _read_pushes() -> str:
    return resources.files("okx_sync.models").joinpath("pushes.tsv").read_text("utf-8")


# channel (a candle family as ``prefix*``) -> push fields of one data item
# (pushes.tsv, from the OKX docs); turned into record classes on first use.
_PUSH_TABLE = RecordTable(_read_pushes, 1, __name__)
_FAMILY = re.compile(r"^(.*candle)\d*[A-Za-z]+(utc)?$")


# channel -> builder for the channels with a hand-written model
_BY_CHANNEL: Mapping[str, PushParser] = {
    "tickers": _item_model(Ticker),
    "trades": _item_model(Trade),
    "trades-all": _item_model(Trade),
    "orders": _item_model(Order),
    "fills": _item_model(Fill),
    "account": _item_model(Balance),
    "positions": _item_model(Position),
    "balance_and_position": _item_model(BalanceAndPosition),
    "instruments": _item_model(Instrument),
    **{ch: _book for ch in BOOK_CHANNELS | SPREAD_BOOK_CHANNELS},
}
_CANDLE_PREFIXES = ("candle", "mark-price-candle", "index-candle")


def push_record_key(channel: str) -> str | None:
    """The ``pushes.tsv`` key of ``channel`` (``sprd-candle1H`` -> ``sprd-candle*``), or
    None when the docs list no push table for it."""
    keys = _PUSH_TABLE.rows()
    if (channel,) in keys:
        return channel
    fam = _FAMILY.match(channel)
    if fam and (fam.group(1) + "*",) in keys:
        return fam.group(1) + "*"
    return None


def push_record(channel: str) -> type[Record] | None:
    """The generated record class of ``channel``'s data items (``OrdersAlgoPush``), or
    None when the docs list no push table for it. Built on first use, cached;
    thread-safe."""
    key = push_record_key(channel)
    if key is None:
        return None
    return _PUSH_TABLE.record((key,), camel(key) + "Push", source=f"the {key!r} channel")


def documented_channels() -> tuple[str, ...]:
    """Every channel (candle families as ``prefix*``) with a push table in the docs."""
    return tuple(sorted(k[0] for k in _PUSH_TABLE.keys()))


def push_parser(channel: str) -> PushParser | None:
    """The typed-model builder for a channel's data items, or None (handlers get dicts).

    A builder is called as ``build(arg, item, action)`` with the push's ``arg``,
    one ``data`` item and the push's ``action``. Models: ``Ticker`` (tickers),
    ``Trade`` (trades, trades-all), ``BookUpdate`` (books*, bbo-tbt, sprd-books5,
    sprd-bbo-tbt, sprd-books-l2-tbt), ``Candle`` (candle*, mark-price-candle*,
    index-candle*), ``Order`` (orders), ``Fill`` (fills), ``Balance`` (account),
    ``Position`` (positions), ``BalanceAndPosition`` (balance_and_position),
    ``Instrument`` (instruments); every other documented channel its generated record
    (:func:`push_record`). A builder raises ValueError for an item that is not an
    object (nor an array, for array-item channels).
    """
    parser = _BY_CHANNEL.get(channel)
    if parser is None and channel.startswith(_CANDLE_PREFIXES):
        return _candle
    if parser is None:
        record = push_record(channel)
        if record is not None:
            return _item_model(record)
    return parser
