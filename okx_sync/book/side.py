"""One side of an order book: its levels, their sort keys and price cache, and the
merges that build a new side (a snapshot, a large update). Pure: no I/O, no threads,
no lock (the owning store's lock guards a side)."""

from __future__ import annotations

import math
import operator
from bisect import bisect_left
from collections.abc import Callable, Sequence
from decimal import Decimal
from operator import itemgetter
from typing import Any

from ..checksum import CHECKSUM_DEPTH

# Longest price string whose float key is exact (DBL_DIG = 15 significant digits;
# the length bounds the digit count from above).
FLOAT_EXACT_LEN = 15
# Bound of each side's price-string -> key cache and of the size cache (cleared when full).
CACHE_LIMIT = 8192

Level = tuple[str, ...]
Levels = Sequence[Sequence[str]]
Key = Callable[[str], Any]


def has_long_price(*sides: Sequence[Sequence[str]]) -> bool:
    """True when a price string is too long for an exact float key (``IndexError``
    for an empty level, ``TypeError`` for a level or price without a length)."""
    return any(max(map(len, map(_PRICE, levels)), default=0) > FLOAT_EXACT_LEN for levels in sides)


SENTINELS: dict[Any, Any] = {float: math.inf, Decimal: Decimal("Infinity")}
_LEVEL_TYPES = frozenset({list, tuple})
_PRICE = itemgetter(0)


class Side:
    """One side of a book, stored worst level first and best level LAST.

    Most changes happen near the best price, so keeping it at the end of the
    lists makes inserts and deletes there cheap. ``levels`` holds immutable
    level tuples; ``keys`` their numeric sort keys (the price for bids, minus
    the price for asks, so both ascend towards the best) plus a +infinity
    sentinel at the end, so a bisect index is always a valid key index;
    ``cache`` maps price strings seen on this side to their keys (bounded);
    ``texts`` (None until the first checksum is verified, then kept in step by
    the in-place merge) each level's ``"px:sz"`` part of the check string.
    Not locked: the owning store's lock guards it.
    """

    __slots__ = ("keys", "levels", "cache", "negate", "texts")

    def __init__(
        self, keys: list[Any], levels: list[Level], cache: dict[str, Any], negate: bool
    ) -> None:
        self.keys = keys
        self.levels = levels
        self.cache = cache
        self.negate = negate
        self.texts: list[str] | None = None

    def top_texts(self) -> list[str]:
        """The ``"px:sz"`` texts of the best CHECKSUM_DEPTH levels, best first
        (built for the whole side on first use, then kept in step by the merge)."""
        texts = self.texts
        if texts is None:
            texts = self.texts = [f"{lvl[0]}:{lvl[1]}" for lvl in self.levels]
        return texts[: -CHECKSUM_DEPTH - 1 : -1]

    @classmethod
    def empty(cls, *, negate: bool) -> Side:
        """A side without levels (its keys only the sentinel); ``negate`` for asks."""
        return cls([math.inf], [], {}, negate)

    @property
    def name(self) -> str:
        """``"bids"`` or ``"asks"``."""
        return "asks" if self.negate else "bids"

    @staticmethod
    def parse(
        raw: Sequence[Sequence[str]], key: Key, *, negate: bool, signed: bool
    ) -> tuple[list[Any], list[Level], list[float]]:
        """Check wire levels and parse them, in received order: ``(keys, levels, sizes)``.

        Raises ``TypeError`` (a level that is not a list, a price or size that is not a
        string), ``IndexError`` (a level shorter than two), ``ValueError`` /
        ``ArithmeticError`` (not a finite number, a negative size or, unless
        ``signed``, a negative price). Vectorised: the cost per level is a few C calls.
        """
        if not _LEVEL_TYPES.issuperset(map(type, raw)):
            raise TypeError("a level is not a list")
        levels = list(map(tuple, raw))
        prices = list(map(itemgetter(0), levels))
        sizes = list(map(itemgetter(1), levels))
        "".join(prices)  # raises TypeError unless every price is a str
        "".join(sizes)
        keys = list(map(key, prices))
        values = list(map(float, sizes))
        if not all(map(math.isfinite, keys)):
            raise ValueError("a price is not a finite number")
        if keys and not signed and min(keys) < 0:
            raise ValueError("a price is negative")
        if values and not (min(values) >= 0.0 and math.fsum(values) < math.inf):
            raise ValueError("a size is not a finite number >= 0")
        if negate:
            keys = list(map(operator.neg, keys))
        return keys, levels, values

    @classmethod
    def build(
        cls,
        raw: Sequence[Sequence[str]],
        key: Key,
        *,
        negate: bool,
        cache: dict[str, Any],
        signed: bool = False,
    ) -> Side:
        """A side from best-first snapshot levels (zero sizes dropped; repeated price:
        last wins). Raises as :meth:`parse`."""
        keys, levels, values = cls.parse(raw, key, negate=negate, signed=signed)
        if len(cache) + len(keys) > CACHE_LIMIT:
            cache.clear()
        cache.update(zip(map(itemgetter(0), levels), keys, strict=True))
        if 0.0 in values or not all(map(operator.gt, keys, keys[1:])):
            # not as OKX sends it: sort, dedupe, drop zeros the slow way
            by_key = {k: lvl for k, lvl, v in zip(keys, levels, values, strict=True) if v}
            keys = sorted(by_key)
            levels = [by_key[k] for k in keys]
        else:  # received best first: stored worst first
            keys.reverse()
            levels.reverse()
        keys.append(SENTINELS[key])
        return cls(keys, levels, cache, negate)

    def merged(self, raw: Sequence[Sequence[str]], key: Key, *, signed: bool) -> Side:
        """A new side: this one with the update levels ``raw`` merged (size 0
        deletes; repeated price: last wins), in O(n + k log k); this side is not
        modified (its price cache is shared). Raises as :meth:`parse`."""
        keys, levels, values = self.parse(raw, key, negate=self.negate, signed=signed)
        marks = [lvl if v else None for lvl, v in zip(levels, values, strict=True)]
        changes = dict(zip(keys, marks, strict=True))
        old_keys = self.keys
        old_levels = self.levels
        n = len(old_levels)
        out_keys: list[Any] = []
        out_levels: list[Level] = []
        i = 0
        find = bisect_left
        for k in sorted(changes):
            j = find(old_keys, k, i, n)
            if j > i:
                out_keys += old_keys[i:j]
                out_levels += old_levels[i:j]
            i = j
            if i < n and old_keys[i] == k:
                i += 1  # replaced or deleted
            lvl = changes[k]
            if lvl is not None:
                out_keys.append(k)
                out_levels.append(lvl)
        out_keys += old_keys[i:]  # the rest, and the sentinel
        out_levels += old_levels[i:]
        return type(self)(out_keys, out_levels, self.cache, self.negate)

    def rekey(self, key: Key) -> None:
        """Recompute every key with ``key``, in place (same list and dict objects)."""
        sign = -1 if self.negate else 1
        self.keys[:] = [sign * key(lvl[0]) for lvl in self.levels]
        self.keys.append(SENTINELS[key])
        self.cache.clear()

    def top(self, depth: int | None) -> list[Level]:
        """The best ``depth`` levels (all when None), best first."""
        levels = self.levels
        if depth is None:
            return levels[::-1]
        return levels[: -depth - 1 : -1] if depth else []
