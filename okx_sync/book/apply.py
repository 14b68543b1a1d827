"""The update application of an order-book store (facts §5): snapshots built and swapped
in, updates chained by seqId and merged level by level (in place, or into new lists when
large), each push checked before readers can see it. Pure: no I/O, no threads."""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from ..errors import OrderBookNotReadyError, OrderBookSequenceError
from .counters import BookCounters
from .side import CACHE_LIMIT, FLOAT_EXACT_LEN, Key, Levels, Side, has_long_price
from .verify import BookVerifier
from .wire import WIRE_TYPES, WireCheck

# An update of k levels into a book of n is merged in place, under the readers'
# lock, while k * (n + k) <= _BULK_WORK (each insert moves up to n + k references:
# a few ms at most); a larger one (k > _BULK_MIN) is merged into new lists in
# O(n + k log k) outside that lock, and swapped in.
_BULK_MIN = 64
_BULK_WORK = 1_000_000


class BookApplier:
    """The book of one store and the writing of it: ``bids`` and ``asks`` (:class:`Side`),
    ``ready``, ``crossed`` (as OKX sent it), ``seq_id`` and ``ts`` of the last push.

    ``BookApplier(wire, verifier, counters, lock, *, verify_sequence)``: ``lock`` is the
    readers' lock, taken only to change what readers see; ``counters`` are bumped under it.

    Thread safety: :meth:`apply_item` and :meth:`clear` are called by one writer at a
    time (the store serialises them); readers read the attributes above under ``lock``.
    """

    __slots__ = (
        "_wire",
        "_verifier",
        "_counters",
        "_lock",
        "_verify_sequence",
        "_signed",
        "_key",
        "_sizes",
        "bids",
        "asks",
        "ready",
        "crossed",
        "seq_id",
        "ts",
    )

    def __init__(
        self,
        wire: WireCheck,
        verifier: BookVerifier,
        counters: BookCounters,
        lock: threading.Lock,
        *,
        verify_sequence: bool,
    ) -> None:
        self._wire = wire
        self._verifier = verifier
        self._counters = counters
        self._lock = lock
        self._verify_sequence = verify_sequence
        self._signed = wire.signed  # spread prices may be negative
        # Both sides are stored worst level first, best level LAST (see Side).
        self.bids = Side.empty(negate=False)
        self.asks = Side.empty(negate=True)
        self._key: Key = float
        self._sizes: dict[str, float] = {}  # size string -> value, checked (bounded)
        self.ready = False
        self.crossed = False  # the book is crossed as OKX sent it (a crossed snapshot)
        self.seq_id: int | None = None
        self.ts: str | None = None

    # The hot path. Called with the store's writing lock held; takes self._lock only to
    # change what readers see.
    def apply_item(self, item: Any, replace: bool) -> None:
        """Apply one ``data`` item: a snapshot when ``replace``, else an update.

        Raises OrderBookNotReadyError (an update before any snapshot),
        OrderBookSequenceError, OrderBookChecksumError, OrderBookCrossedError,
        OrderBookDataError (a malformed field or level), or a ``LookupError`` /
        ``TypeError`` / ``ValueError`` a malformed item causes; on any error readers
        never see the item (the caller then clears the book).
        """
        if type(item) is not dict and not isinstance(item, Mapping):
            raise self._wire.bad("data", f"item is not an object: {type(item).__name__}")
        get: Callable[[str], Any] = item.get
        seq = get("seqId")
        ts = get("ts")
        checksum = get("checksum")
        bids = get("bids")
        asks = get("asks")
        if (
            type(seq),
            type(ts),
            type(checksum),
            type(bids),
            type(asks),
        ) not in WIRE_TYPES or not ts.isdecimal():  # as OKX sends books; else check each
            seq, ts, checksum, bids, asks = self._wire.fields(seq, ts, checksum, bids, asks)
        if replace:
            self._install(bids, asks, seq, ts, checksum)
            return
        if not self.ready:
            raise OrderBookNotReadyError(
                f"order book update before snapshot for {self._wire.channel} {self._wire.inst_id}"
            )
        prev = item.get("prevSeqId")
        if prev is not None and type(prev) is not int:
            raise self._wire.bad("prevSeqId", f"not an integer: {prev!r:.80}")
        stored = self.seq_id
        reset = False
        if prev is not None and stored is not None:
            if prev != stored and self._verify_sequence:
                raise OrderBookSequenceError(
                    stored, prev, -1 if seq is None else seq, inst_id=self._wire.inst_id
                )
            reset = seq is not None and seq < prev
        k = len(bids) + len(asks)
        if k > _BULK_MIN and k * (len(self.bids.levels) + len(self.asks.levels) + k) > _BULK_WORK:
            self._bulk_update(bids, asks, seq, ts, checksum, reset)
            return
        counters = self._counters
        with self._lock:  # small update: merged in place, readers wait for it
            try:
                if bids:
                    self._merge(self.bids, bids)
                if asks:
                    self._merge(self.asks, asks)
                try:  # keys end with a sentinel: [-2] is the best level's
                    crossed = self.bids.keys[-2] >= -self.asks.keys[-2]
                except IndexError:  # an empty side
                    crossed = False
                if checksum or crossed:
                    crossed, verified = self._verifier.settle(
                        self.bids, self.asks, checksum, False, self.crossed
                    )
                    if verified:
                        counters.verified += 1
                    else:
                        counters.unverified += 1
                else:
                    counters.unverified += 1
            except BaseException:
                self.clear()  # never let a reader see a half-merged book
                raise
            # inline _commit (the hot path)
            if seq is not None:
                self.seq_id = seq
            if ts is not None:
                self.ts = ts
            self.crossed = crossed
            if reset:
                counters.seq_resets += 1
            counters.applied += 1
            counters.updates += 1

    def clear(self) -> None:
        """Drop the book (not ready until the next snapshot); counted as a reset when
        there was a book. Call under the readers' lock."""
        if self.ready or self.bids.levels or self.asks.levels:
            self._counters.resets += 1
        self.bids = Side.empty(negate=False)
        self.asks = Side.empty(negate=True)
        self._key = float
        self.ready = False
        self.crossed = False
        self.seq_id = None
        self.ts = None

    def _install(
        self, bids: Levels, asks: Levels, seq: int | None, ts: str | None, checksum: int | None
    ) -> None:
        """A snapshot: built, checked, then swapped in (readers wait for the swap only)."""
        key: Key = Decimal if has_long_price(bids, asks) else float
        keep = key is self._key  # parsed keys stay valid: keep the caches warm
        new_bids = self._built("bids", bids, key, self.bids.cache if keep else {})
        new_asks = self._built("asks", asks, key, self.asks.cache if keep else {})
        crossed, verified = self._verifier.settle(new_bids, new_asks, checksum, True, self.crossed)
        with self._lock:
            self._key = key
            self.bids = new_bids
            self.asks = new_asks
            self.ready = True
            self._counters.snapshots += 1
            self._counters.crossed_snapshots += crossed
            self._commit(seq, ts, verified, crossed, False)

    def _built(self, name: str, raw: Levels, key: Key, cache: dict[str, Any]) -> Side:
        try:
            return Side.build(raw, key, negate=name == "asks", cache=cache, signed=self._signed)
        except (LookupError, TypeError, ValueError, ArithmeticError) as exc:
            raise self._wire.bad(name, f"{type(exc).__name__}: {exc}") from exc

    def _bulk_update(
        self,
        bids: Levels,
        asks: Levels,
        seq: int | None,
        ts: str | None,
        checksum: int | None,
        reset: bool,
    ) -> None:
        """A large update: merged into new lists outside the readers' lock, then swapped in."""
        if self._key is float and has_long_price(bids, asks):
            self._use_exact_keys()  # keys are the writer's own: readers only read levels
        key = self._key
        new_bids, new_asks = self.bids, self.asks
        try:
            if bids:
                new_bids = new_bids.merged(bids, key, signed=self._signed)
        except (LookupError, TypeError, ValueError, ArithmeticError) as exc:
            raise self._wire.bad("bids", f"{type(exc).__name__}: {exc}") from exc
        try:
            if asks:
                new_asks = new_asks.merged(asks, key, signed=self._signed)
        except (LookupError, TypeError, ValueError, ArithmeticError) as exc:
            raise self._wire.bad("asks", f"{type(exc).__name__}: {exc}") from exc
        crossed, verified = self._verifier.settle(new_bids, new_asks, checksum, False, self.crossed)
        with self._lock:
            self.bids = new_bids
            self.asks = new_asks
            self._counters.updates += 1
            self._commit(seq, ts, verified, crossed, reset)

    def _commit(
        self, seq: int | None, ts: str | None, verified: bool, crossed: bool, reset: bool
    ) -> None:
        """Record an applied item (under self._lock)."""
        if seq is not None:
            self.seq_id = seq
        if ts is not None:
            self.ts = ts
        counters = self._counters
        if verified:
            counters.verified += 1
        else:
            counters.unverified += 1
        self.crossed = crossed
        if reset:
            counters.seq_resets += 1
        counters.applied += 1

    def _merge(self, side: Side, deltas: Levels) -> None:
        # Per level: two dict lookups (price and size strings -> parsed, checked
        # values; only a string never seen is parsed and checked, inline) and one
        # bisect. Identity is numeric: a new spelling of a stored price ("0.10" vs
        # "0.1") is the same level.
        keys = side.keys
        levels = side.levels
        cache = side.cache
        sizes = self._sizes
        if len(cache) >= CACHE_LIMIT:  # each bounded by CACHE_LIMIT + one push
            cache.clear()
        if len(sizes) >= CACHE_LIMIT:
            sizes.clear()
        key = self._key
        find = bisect_left
        inf = math.inf
        texts = side.texts  # kept in step once a checksum was verified (else None)
        for lvl in deltas:
            if type(lvl) is not list and type(lvl) is not tuple:  # a str would pass as [px, sz]
                raise self._wire.bad(side.name, f"level is not a list: {lvl!r:.80}")
            px = lvl[0]
            k = cache.get(px)
            if k is None:
                if type(px) is not str or (len(px) > FLOAT_EXACT_LEN and key is float):
                    k = self._price_key(side, px)
                    key = self._key
                else:
                    try:
                        num = key(px)
                        ok = 0.0 <= num < inf or (self._signed and -inf < num < 0.0)
                    except (ValueError, ArithmeticError):
                        ok = False
                    if not ok:
                        raise self._wire.price_error(side.name, px)
                    k = -num if side.negate else num
                    cache[px] = k
            sz = lvl[1]
            f = sizes.get(sz)
            if f is None:
                try:
                    f = float(sz)
                except (TypeError, ValueError):
                    f = math.nan
                if not 0.0 <= f < inf or type(sz) is not str:
                    raise self._wire.size_error(side.name, sz)
                sizes[sz] = f
            i = find(keys, k)
            if texts is None:
                if f:
                    if keys[i] == k:
                        levels[i] = tuple(lvl)
                    else:
                        keys.insert(i, k)
                        levels.insert(i, tuple(lvl))
                elif keys[i] == k:
                    del keys[i]
                    del levels[i]
            elif f:
                if keys[i] == k:
                    levels[i] = tuple(lvl)
                    texts[i] = f"{px}:{sz}"
                else:
                    keys.insert(i, k)
                    levels.insert(i, tuple(lvl))
                    texts.insert(i, f"{px}:{sz}")
            elif keys[i] == k:
                del keys[i]
                del levels[i]
                del texts[i]

    def _price_key(self, side: Side, px: Any) -> Any:
        """Parse, check and cache a price never seen on this side: its sort key
        (switching the book to exact keys for a long price string)."""
        if type(px) is not str:
            raise self._wire.price_error(side.name, px)
        key = self._key
        if len(px) > FLOAT_EXACT_LEN and key is float:
            key = self._use_exact_keys()
        try:
            k = key(px)
            finite = math.isfinite(k)
        except (ValueError, ArithmeticError):
            finite = False
        if not finite or (k < 0 and not self._signed):
            raise self._wire.price_error(side.name, px)
        if side.negate:
            k = -k
        cache = side.cache
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        cache[px] = k
        return k

    def _use_exact_keys(self) -> Key:
        # A price string too long for an exact float key arrived: re-key both
        # sides with Decimal in place (the float order of the existing,
        # shorter strings was exact, so the level order stays valid).
        self.bids.rekey(Decimal)
        self.asks.rekey(Decimal)
        self._key = Decimal
        return Decimal
