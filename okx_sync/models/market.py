"""Market data from REST: tickers, order books, candlesticks, trades. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from .base import dec, dec_field, field_values, int_field, opt_int, raw_field, str_field

__all__ = ["Ticker", "BookLevel", "OrderBook", "Candle", "Trade"]


@attrs.frozen(kw_only=True)
class Ticker:
    """Latest price snapshot of one instrument (``GET /api/v5/market/ticker(s)``), or of
    one index (``GET /api/v5/market/index-tickers``: ``idx_px`` set, ``last`` None).

    Thread safety: immutable.
    """

    inst_type: str | None = str_field()
    inst_id: str | None = str_field()
    last: Decimal | None = dec_field()
    last_sz: Decimal | None = dec_field()
    ask_px: Decimal | None = dec_field()
    ask_sz: Decimal | None = dec_field()
    bid_px: Decimal | None = dec_field()
    bid_sz: Decimal | None = dec_field()
    open24h: Decimal | None = dec_field("open24h")
    high24h: Decimal | None = dec_field("high24h")
    low24h: Decimal | None = dec_field("low24h")
    vol_ccy24h: Decimal | None = dec_field("volCcy24h")
    vol24h: Decimal | None = dec_field("vol24h")
    sod_utc0: Decimal | None = dec_field("sodUtc0")
    sod_utc8: Decimal | None = dec_field("sodUtc8")
    idx_px: Decimal | None = dec_field()
    ts: int | None = int_field()
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> Ticker:
        """Build from one ticker item; keeps it as ``raw``."""
        return cls(**field_values(cls, d), raw=dict(d))


@attrs.frozen
class BookLevel:
    """One price level: ``px``, ``sz``, number of orders (``orders``; None when absent).

    The one level type of every book: REST ``OrderBook``, WS ``BookUpdate``,
    ``OrderBookStore`` and ``ManagedOrderBook``. Thread safety: immutable.
    """

    px: Decimal
    sz: Decimal
    orders: int | None = None

    @classmethod
    def from_okx(cls, level: Sequence[Any]) -> BookLevel:
        """From ``[px, sz, "0", numOrders]`` (or ``[px, sz, numOrders]`` for spreads).

        Raises ValueError when price or size is not a number.
        """
        px, sz = dec(level[0]), dec(level[1])
        if px is None or sz is None:
            raise ValueError(f"bad order book level {list(level)!r}")
        orders = opt_int(level[-1]) if len(level) >= 3 else None
        return cls(px, sz, orders)


@attrs.frozen(kw_only=True)
class OrderBook:
    """An order-book snapshot: what ``GET /api/v5/market/books`` / ``books-full`` return,
    and what ``OrderBookStore.snapshot()`` / ``ManagedOrderBook.snapshot()`` return for the
    local book (one shape for both).

    ``bids`` are best (highest) first, ``asks`` best (lowest) first, as OKX sends them,
    each a :class:`BookLevel`; ``raw`` is the books item with OKX's exact level strings.
    The response carries no instId; the named method fills ``inst_id`` from the
    request. Thread safety: immutable.
    """

    inst_id: str | None = None
    asks: tuple[BookLevel, ...] = ()
    bids: tuple[BookLevel, ...] = ()
    ts: int | None = None
    seq_id: int | None = None
    raw: dict[str, Any] = raw_field()

    @property
    def best_bid(self) -> BookLevel | None:
        """The highest bid, or None for an empty side."""
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> BookLevel | None:
        """The lowest ask, or None for an empty side."""
        return self.asks[0] if self.asks else None

    @classmethod
    def from_okx(cls, d: Mapping[str, Any], *, inst_id: str | None = None) -> OrderBook:
        """Build from one books item (``{"asks": [...], "bids": [...], "ts": ...}``)."""
        return cls(
            inst_id=inst_id or d.get("instId") or None,
            asks=tuple(BookLevel.from_okx(lv) for lv in d.get("asks") or ()),
            bids=tuple(BookLevel.from_okx(lv) for lv in d.get("bids") or ()),
            ts=opt_int(d.get("ts")),
            seq_id=opt_int(d.get("seqId")),
            raw=dict(d),
        )


@attrs.frozen(kw_only=True)
class Candle:
    """One candlestick (``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``).

    Index and mark-price candles have only ``[ts, o, h, l, c, confirm]``; their volume
    fields are None. ``confirm`` is True for a completed candle. ``raw`` keeps the
    original list. Thread safety: immutable.
    """

    inst_id: str | None = None
    ts: int
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 - OKX's name
    c: Decimal
    vol: Decimal | None = None
    vol_ccy: Decimal | None = None
    vol_ccy_quote: Decimal | None = None
    confirm: bool | None = None
    raw: tuple[str, ...] = attrs.field(default=(), eq=False, repr=False)

    @classmethod
    def from_okx(cls, row: Sequence[Any], *, inst_id: str | None = None) -> Candle:
        """Build from one candle row. Raises ValueError for a malformed row."""
        if len(row) < 5:
            raise ValueError(f"bad candle row {list(row)!r}")
        ts = opt_int(row[0])
        o, h, low, c = dec(row[1]), dec(row[2]), dec(row[3]), dec(row[4])
        if ts is None or o is None or h is None or low is None or c is None:
            raise ValueError(f"bad candle row {list(row)!r}")
        full = len(row) >= 9
        confirm_raw = row[8] if full else (row[5] if len(row) == 6 else None)
        return cls(
            inst_id=inst_id,
            ts=ts,
            o=o,
            h=h,
            l=low,
            c=c,
            vol=dec(row[5]) if full else None,
            vol_ccy=dec(row[6]) if full else None,
            vol_ccy_quote=dec(row[7]) if full else None,
            confirm=None if confirm_raw in (None, "") else str(confirm_raw) == "1",
            raw=tuple(str(x) for x in row),
        )


@attrs.frozen(kw_only=True)
class Trade:
    """One public trade (``GET /api/v5/market/trades`` / ``history-trades``).

    ``side`` is the taker side. Thread safety: immutable.
    """

    inst_id: str | None = str_field()
    trade_id: str | None = str_field()
    px: Decimal | None = dec_field()
    sz: Decimal | None = dec_field()
    side: str | None = str_field()
    count: int | None = int_field()
    source: str | None = str_field()
    ts: int | None = int_field()
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> Trade:
        """Build from one trade item; keeps it as ``raw``."""
        return cls(**field_values(cls, d), raw=dict(d))
