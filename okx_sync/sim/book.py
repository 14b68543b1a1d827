"""The simulator's matching book: price levels holding FIFO queues of resting orders.

:class:`BookSide` keeps its prices sorted best-first (bids descending, asks
ascending) with ``bisect``, so the top of book, the top-N levels and a sweep in
price-time priority are cheap. Used only by :mod:`okx_sync.sim.exchange`, under its
lock. Thread safety: not thread-safe on its own.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs

from .numbers import ZERO, fmt

__all__ = ["Resting", "Level", "BookSide", "MatchBook"]


@attrs.define(eq=False, slots=True)
class Resting:
    """One resting order's share of a level.

    ``uid`` is ``""`` for the market maker; ``order`` is the account order object for
    users (None for the market maker).
    """

    ord_id: str
    uid: str
    size: Decimal
    order: Any = None


@attrs.define(eq=False, slots=True)
class Level:
    """A price level: FIFO queue plus its total size."""

    price: Decimal
    queue: deque[Resting] = attrs.field(factory=deque)
    total: Decimal = ZERO

    def count(self) -> int:
        """Number of orders at this level."""
        return len(self.queue)


class BookSide:
    """One side of a book: price -> :class:`Level`, iterated best-first."""

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[Decimal, Level] = {}
        self._keys: list[Decimal] = []  # ascending sort keys: -price for bids, price for asks
        self.dirty: set[Decimal] = set()  # prices changed since the last take_changes()

    def _key(self, price: Decimal) -> Decimal:
        return -price if self.is_bid else price

    def __len__(self) -> int:
        return len(self._keys)

    def best(self) -> Level | None:
        """The best level, or None when the side is empty."""
        if not self._keys:
            return None
        return self.levels[self._price_of(self._keys[0])]

    def _price_of(self, key: Decimal) -> Decimal:
        return -key if self.is_bid else key

    def prices(self) -> Iterator[Decimal]:
        """Prices best-first (a snapshot: safe to modify the side while iterating)."""
        for key in list(self._keys):
            yield self._price_of(key)

    def top(self, n: int) -> list[Level]:
        """The best ``n`` levels."""
        return [self.levels[self._price_of(k)] for k in self._keys[:n]]

    def crosses(self, price: Decimal, limit: Decimal | None) -> bool:
        """True when a taker on the other side with ``limit`` would trade at ``price``.

        ``limit=None`` means a market order (trades at any price).
        """
        if limit is None:
            return True
        return price >= limit if self.is_bid else price <= limit

    def add(self, price: Decimal, resting: Resting) -> None:
        """Append ``resting`` at the back of the queue at ``price``."""
        level = self.levels.get(price)
        if level is None:
            level = Level(price=price)
            self.levels[price] = level
            bisect.insort(self._keys, self._key(price))
        level.queue.append(resting)
        level.total += resting.size
        self.dirty.add(price)

    def reduce(self, price: Decimal, resting: Resting, amount: Decimal) -> None:
        """Take ``amount`` off ``resting`` (removing it when it reaches zero)."""
        level = self.levels[price]
        resting.size -= amount
        level.total -= amount
        self.dirty.add(price)
        if resting.size <= 0:
            level.queue.remove(resting)
            resting.size = ZERO
        if not level.queue:
            self._drop(price)

    def remove(self, price: Decimal, resting: Resting) -> None:
        """Remove ``resting`` entirely (cancel)."""
        level = self.levels.get(price)
        if level is None:
            return
        try:
            level.queue.remove(resting)
        except ValueError:
            return
        level.total -= resting.size
        self.dirty.add(price)
        if not level.queue:
            self._drop(price)

    def _drop(self, price: Decimal) -> None:
        del self.levels[price]
        key = self._key(price)
        idx = bisect.bisect_left(self._keys, key)
        if idx < len(self._keys) and self._keys[idx] == key:
            del self._keys[idx]

    def wire_level(self, price: Decimal) -> list[str] | None:
        """The level at ``price`` in wire form, or None when there is none."""
        lv = self.levels.get(price)
        if lv is None:
            return None
        return [fmt(lv.price), fmt(lv.total), "0", str(lv.count())]

    def take_changes(self) -> list[tuple[Decimal, list[str] | None]]:
        """Levels changed since the last call, best-first: ``(price, wire level or None)``."""
        prices = sorted(self.dirty, reverse=self.is_bid)
        self.dirty.clear()
        return [(px, self.wire_level(px)) for px in prices]

    def wire_levels(self, n: int) -> list[list[str]]:
        """The best ``n`` levels in OKX wire form ``[px, sz, "0", numOrders]``."""
        return [
            [fmt(lv.price), fmt(lv.total), "0", str(lv.count())]
            for lv in (self.levels[self._price_of(k)] for k in self._keys[:n])
        ]


class MatchBook:
    """Both sides of one instrument's book."""

    def __init__(self) -> None:
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)

    def side(self, is_bid: bool) -> BookSide:
        """The bid side when ``is_bid`` else the ask side."""
        return self.bids if is_bid else self.asks

    def best_bid(self) -> Decimal | None:
        """Best bid price or None."""
        lv = self.bids.best()
        return lv.price if lv else None

    def best_ask(self) -> Decimal | None:
        """Best ask price or None."""
        lv = self.asks.best()
        return lv.price if lv else None
