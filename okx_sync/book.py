"""A verified local copy of one OKX order book (facts §5). Pure: no I/O, no threads.

:class:`OrderBookStore` takes decoded WebSocket pushes for one
``(channel, instId)`` and keeps the merged book:

- snapshot channels (``books5``, ``bbo-tbt``, ``sprd-books5``, ``sprd-bbo-tbt``):
  every push replaces the whole book;
- incremental channels (``books``, ``books-elp``, ``books-rpi``, ``books-l2-tbt``,
  ``books50-l2-tbt``, ``sprd-books-l2-tbt``): a snapshot, then updates merged level
  by level (size ``"0"`` deletes; bids best-first descending, asks ascending, by
  numeric price — never by text).

Checks on every update (each can be switched off at construction):

- sequence (§5.1): ``prevSeqId`` must equal the stored ``seqId``. The no-change
  update (``prevSeqId == seqId``, empty sides) and the maintenance reset
  (``seqId < prevSeqId`` with ``prevSeqId`` chaining) pass. Pushes without
  ``seqId``/``prevSeqId`` (recordings from before 2022-10) pass unchecked.
- checksum (§5.3): CRC32 of the top 25 levels interleaved, original strings,
  signed 32-bit (:mod:`okx_sync.checksum`). A checksum of ``0`` or a missing
  one means "not provided" (OKX sends 0 since June 2026): nothing to verify,
  counted as ``unverified`` in :meth:`OrderBookStore.stats`.

On snapshot channels every push stands alone: its ``seqId`` is recorded, not
chained, and a missing checksum (``books5``/``bbo-tbt`` carry none) counts as
unverified.

A failed update leaves the store reset (not ready): the caller resubscribes
for a fresh snapshot. Designed to be fed inline from a WebSocket reader thread
(one short lock per push; each level costs a dict lookup and a bisect) while
any number of other threads read.

Prices are ordered by ``float`` keys when every price string has at most 15
characters (then float conversion is exact in order and equality: a decimal of
at most 15 significant digits round-trips through an IEEE double); a longer
price string switches that store to ``Decimal`` keys until its next snapshot.
"""

from __future__ import annotations

import math
import operator
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from operator import itemgetter
from typing import Any

from .checksum import CHECKSUM_DEPTH, checksum_of_string, checksum_string
from .errors import (
    OrderBookChecksumError,
    OrderBookError,
    OrderBookNotReadyError,
    OrderBookSequenceError,
    ValidationError,
)
from .models.market import BookLevel, OrderBook
from .models.ws import BookUpdate

__all__ = ["OrderBookStore", "SNAPSHOT_CHANNELS", "INCREMENTAL_CHANNELS", "BOOK_CHANNELS"]

#: Channels whose every push is a complete book.
SNAPSHOT_CHANNELS = frozenset({"books5", "bbo-tbt", "sprd-books5", "sprd-bbo-tbt"})
#: Channels that send one snapshot, then incremental updates.
INCREMENTAL_CHANNELS = frozenset(
    {"books", "books-elp", "books-rpi", "books-l2-tbt", "books50-l2-tbt", "sprd-books-l2-tbt"}
)
BOOK_CHANNELS = SNAPSHOT_CHANNELS | INCREMENTAL_CHANNELS

# Longest price string whose float key is exact (DBL_DIG = 15 significant digits;
# the length bounds the digit count from above).
_FLOAT_EXACT_LEN = 15
# Bound of each side's price-string -> key cache (cleared when full).
_CACHE_LIMIT = 8192
_ERROR_KINDS = ("sequence", "checksum", "not_ready", "malformed")

Level = tuple[str, ...]
_Key = Callable[[str], Any]


class OrderBookStore:
    """The merged, verified order book of one ``(channel, inst_id)``.

    ``OrderBookStore(channel, inst_id, *, verify_sequence=True, verify_checksum=True)``;
    ``inst_id`` is the ``instId`` (or ``sprdId`` for spread channels) of the pushes.
    Raises :class:`~okx_sync.errors.ValidationError` for an unknown channel or an
    empty ``inst_id``.

    Feed it with :meth:`apply`; read it with :meth:`best_bid`, :meth:`best_ask`,
    :meth:`snapshot`, :meth:`checksum_string`, :meth:`stats` and the ``ready``,
    ``seq_id`` and ``ts`` properties.

    Thread safety: every method may be called from any thread. One lock guards
    the book; :meth:`apply` holds it for one push, readers only long enough to
    copy references to immutable level tuples, so a reader always sees the
    book as it was between two pushes, never half-merged. Typical use: one
    thread (the WS reader) applies, GUI and strategy threads read.
    """

    __slots__ = (
        "_channel",
        "_inst_id",
        "_incremental",
        "_verify_sequence",
        "_verify_checksum",
        "_lock",
        "_bids",
        "_asks",
        "_key",
        "_ready",
        "_seq_id",
        "_ts",
        "_applied",
        "_snapshots",
        "_updates",
        "_verified",
        "_unverified",
        "_resets",
        "_seq_resets",
        "_errors",
    )

    def __init__(
        self,
        channel: str,
        inst_id: str,
        *,
        verify_sequence: bool = True,
        verify_checksum: bool = True,
    ) -> None:
        if channel not in BOOK_CHANNELS:
            raise ValidationError(
                f"not an order book channel: {channel!r} (expected one of {sorted(BOOK_CHANNELS)})"
            )
        if not inst_id or not isinstance(inst_id, str):
            raise ValidationError(f"inst_id must be a non-empty string, got {inst_id!r}")
        self._channel = channel
        self._inst_id = inst_id
        self._incremental = channel in INCREMENTAL_CHANNELS
        self._verify_sequence = bool(verify_sequence)
        self._verify_checksum = bool(verify_checksum)
        self._lock = threading.Lock()
        # Both sides are stored worst level first, best level LAST (see _Side).
        self._bids = _Side.empty(negate=False)
        self._asks = _Side.empty(negate=True)
        self._key: _Key = float
        self._ready = False
        self._seq_id: int | None = None
        self._ts: str | None = None
        self._applied = 0
        self._snapshots = 0
        self._updates = 0
        self._verified = 0
        self._unverified = 0
        self._resets = 0
        self._seq_resets = 0
        self._errors = dict.fromkeys(_ERROR_KINDS, 0)

    # ------------------------------------------------------------------ identity

    @property
    def channel(self) -> str:
        """The channel this store accepts (e.g. ``"books"``)."""
        return self._channel

    @property
    def inst_id(self) -> str:
        """The instId (or sprdId) this store accepts."""
        return self._inst_id

    @property
    def incremental(self) -> bool:
        """True for snapshot-then-update channels, False when every push replaces the book."""
        return self._incremental

    @property
    def ready(self) -> bool:
        """True once a snapshot has been applied and no check has failed since."""
        return self._ready

    @property
    def seq_id(self) -> int | None:
        """``seqId`` of the last applied push (None before one, or when OKX sent none)."""
        return self._seq_id

    @property
    def ts(self) -> int | None:
        """``ts`` (ms since epoch) of the last applied push, or None."""
        ts = self._ts
        return int(ts) if ts is not None else None

    def __repr__(self) -> str:
        return (
            f"OrderBookStore({self._channel} {self._inst_id} ready={self._ready} "
            f"seq_id={self._seq_id} bids={len(self._bids.levels)} asks={len(self._asks.levels)})"
        )

    # ------------------------------------------------------------------ writing

    def apply(self, message: Mapping[str, Any] | BookUpdate) -> None:
        """Apply one push: the decoded message ``{"arg": ..., "action": ..., "data": [...]}``,
        or one typed :class:`~okx_sync.models.ws.BookUpdate` (what ``ws.on("books", fn)``
        hands its handler, so ``ws.on("books", store.apply)`` feeds the store).

        Every item of ``data`` is applied in order (a ``BookUpdate`` is one item:
        its ``raw`` wire levels are merged, never its parsed ``BookLevel`` s).
        ``arg`` (when present) must name this store's channel and
        instId/sprdId, as must a ``BookUpdate``'s ``channel``/``inst_id``. A push
        without ``action`` on an incremental channel is treated as a snapshot.

        Raises:
            ValidationError: the push names another channel or instrument (the
                book is left untouched).
            OrderBookNotReadyError: an update arrived before any snapshot.
            OrderBookSequenceError: ``prevSeqId`` does not chain to the stored ``seqId``.
            OrderBookChecksumError: the merged book's CRC32 differs from the push.
            OrderBookError: the push is malformed (bad level, bad number).
            After any ``OrderBookError`` the store is reset (not ready) and the
            error is counted in :meth:`stats`.

        The store keeps its own copies of the levels (tuples); the message is
        not modified and may be reused. Thread safety: safe from any thread;
        pushes for one store must be applied in the order received.
        """
        if isinstance(message, BookUpdate):  # one item of a typed push: back to the push shape
            message = {
                "arg": {"channel": message.channel, "instId": message.inst_id},
                "action": message.action,
                "data": (message.raw,),
            }
        arg = message.get("arg")
        if arg is not None:
            channel = arg.get("channel")
            inst = arg.get("instId") or arg.get("sprdId")
            if channel != self._channel or inst != self._inst_id:
                raise ValidationError(
                    f"push for {channel} {inst} given to the store of "
                    f"{self._channel} {self._inst_id}"
                )
        items = message.get("data") or ()
        replace = not self._incremental or message.get("action") != "update"
        with self._lock:
            for item in items:
                try:
                    self._apply_item(item, replace)
                except OrderBookError as exc:
                    self._fail(exc)
                    raise
                except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                    err = OrderBookError(
                        f"malformed order book push for {self._channel} {self._inst_id}: "
                        f"{type(exc).__name__}: {exc}"
                    )
                    self._fail(err)
                    raise err from exc

    def reset(self) -> None:
        """Drop the book: not ready until the next snapshot. Stats are kept.

        Thread safety: safe from any thread.
        """
        with self._lock:
            self._clear()

    # The hot path: called with the lock held.
    def _apply_item(self, item: Mapping[str, Any], replace: bool) -> None:
        seq = item.get("seqId")
        if replace:
            self._load(item.get("bids") or (), item.get("asks") or ())
            self._ready = True
            self._snapshots += 1
        else:
            if not self._ready:
                raise OrderBookNotReadyError(
                    f"order book update before snapshot for {self._channel} {self._inst_id}"
                )
            prev = item.get("prevSeqId")
            stored = self._seq_id
            if prev is not None and stored is not None:
                if prev != stored and self._verify_sequence:
                    raise OrderBookSequenceError(
                        stored, prev, -1 if seq is None else seq, inst_id=self._inst_id
                    )
                if seq is not None and seq < prev:
                    self._seq_resets += 1
            bids = item.get("bids")
            if bids:
                self._merge(self._bids, bids)
            asks = item.get("asks")
            if asks:
                self._merge(self._asks, asks)
            self._updates += 1
        if seq is not None:
            self._seq_id = seq
        ts = item.get("ts")
        if ts is not None:
            self._ts = ts
        checksum = item.get("checksum")
        if checksum and self._verify_checksum:
            if checksum.__class__ is not int:
                checksum = int(checksum)
            if checksum:
                text = self._check_string()
                got = checksum_of_string(text)
                if got != checksum:
                    raise OrderBookChecksumError(checksum, got, text, inst_id=self._inst_id)
                self._verified += 1
            else:
                self._unverified += 1
        else:
            self._unverified += 1
        self._applied += 1

    def _merge(self, side: _Side, deltas: Sequence[Sequence[str]]) -> None:
        # Per level: one dict lookup (price string -> key; only a string never
        # seen on this side is parsed) and one bisect. Identity is numeric: a
        # new spelling of a stored price ("0.10" vs "0.1") is the same level.
        keys = side.keys
        levels = side.levels
        cache = side.cache
        neg = side.negate
        key = self._key
        find = bisect_left
        for lvl in deltas:
            px = lvl[0]
            k = cache.get(px)
            if k is None:
                if len(px) > _FLOAT_EXACT_LEN and key is float:
                    key = self._use_exact_keys()
                k = key(px)
                if not -math.inf < k < math.inf:
                    raise ValueError(f"price is not a finite number: {px!r}")
                if neg:
                    k = -k
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[px] = k
            i = find(keys, k)
            sz = lvl[1]
            if sz == "0" or (sz[-1] == "0" and not float(sz)):  # inline _is_zero
                if keys[i] == k:
                    del keys[i]
                    del levels[i]
            elif keys[i] == k:
                levels[i] = tuple(lvl)
            else:
                keys.insert(i, k)
                levels.insert(i, tuple(lvl))

    def _load(self, bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> None:
        exact = any(len(lvl[0]) > _FLOAT_EXACT_LEN for lvl in bids) or any(
            len(lvl[0]) > _FLOAT_EXACT_LEN for lvl in asks
        )
        key: _Key = Decimal if exact else float
        keep = key is self._key  # parsed keys stay valid: keep the caches warm
        self._key = key
        self._bids = _Side.build(bids, key, negate=False, cache=self._bids.cache if keep else {})
        self._asks = _Side.build(asks, key, negate=True, cache=self._asks.cache if keep else {})

    def _use_exact_keys(self) -> _Key:
        # A price string too long for an exact float key arrived: re-key both
        # sides with Decimal in place (the float order of the existing,
        # shorter strings was exact, so the level order stays valid).
        self._bids.rekey(Decimal)
        self._asks.rekey(Decimal)
        self._key = Decimal
        return Decimal

    def _check_string(self) -> str:
        return checksum_string(self._bids.top(CHECKSUM_DEPTH), self._asks.top(CHECKSUM_DEPTH))

    def _clear(self) -> None:
        if self._ready or self._bids.levels or self._asks.levels:
            self._resets += 1
        self._bids = _Side.empty(negate=False)
        self._asks = _Side.empty(negate=True)
        self._key = float
        self._ready = False
        self._seq_id = None
        self._ts = None

    def _fail(self, exc: OrderBookError) -> None:
        if isinstance(exc, OrderBookSequenceError):
            kind = "sequence"
        elif isinstance(exc, OrderBookChecksumError):
            kind = "checksum"
        elif isinstance(exc, OrderBookNotReadyError):
            kind = "not_ready"
        else:
            kind = "malformed"
        self._errors[kind] += 1
        self._clear()

    # ------------------------------------------------------------------ reading

    def best_bid(self) -> BookLevel | None:
        """The best bid as a :class:`~okx_sync.models.BookLevel` (``px``, ``sz``,
        ``orders``), or None when the side is empty (or the store not ready).

        Raises ``ValueError`` when the stored level's price or size is not a
        number. Thread safety: safe from any thread.
        """
        with self._lock:
            bids = self._bids.levels
            lvl = bids[-1] if bids else None
        return None if lvl is None else BookLevel.from_okx(lvl)

    def best_ask(self) -> BookLevel | None:
        """The best ask as a :class:`~okx_sync.models.BookLevel`, or None when the side
        is empty (or the store not ready).

        Raises ``ValueError`` as :meth:`best_bid`. Thread safety: safe from any thread.
        """
        with self._lock:
            asks = self._asks.levels
            lvl = asks[-1] if asks else None
        return None if lvl is None else BookLevel.from_okx(lvl)

    def snapshot(self, depth: int | None = None) -> OrderBook:
        """A consistent copy of the book as the model REST returns: an
        :class:`~okx_sync.models.OrderBook` (``inst_id``, ``seq_id``, ``ts``, ``bids``
        best first, ``asks`` best first, each a :class:`~okx_sync.models.BookLevel`),
        at most ``depth`` levels per side (all when None).

        Its ``raw`` is the book as an OKX ``books`` item: ``{"asks": [...], "bids":
        [...], "ts": "...", "seqId": ...}`` with the level lists exactly as OKX sent
        them (``[px, sz, "0", numOrders]``, or ``[px, sz, numOrders]`` on spread
        channels). The result shares nothing with the store. Not ready: both
        sides empty, ``seq_id`` and ``ts`` None.

        Raises ValidationError for a negative ``depth``; ``ValueError`` when a
        stored level's price or size is not a number. Thread safety: safe from
        any thread; the lock is held only to copy references.
        """
        if depth is not None and (not isinstance(depth, int) or depth < 0):
            raise ValidationError(f"depth must be None or an int >= 0, got {depth!r}")
        with self._lock:
            top_bids = self._bids.top(depth)
            top_asks = self._asks.top(depth)
            seq_id = self._seq_id
            ts = self._ts
        item: dict[str, Any] = {
            "asks": [list(lvl) for lvl in top_asks],
            "bids": [list(lvl) for lvl in top_bids],
        }
        if ts is not None:
            item["ts"] = ts
        if seq_id is not None:
            item["seqId"] = seq_id
        return OrderBook.from_okx(item, inst_id=self._inst_id)

    def checksum_string(self) -> str:
        """The OKX check string of the current book (top 25 levels, §5.3).

        Thread safety: safe from any thread.
        """
        with self._lock:
            text = self._check_string()
        return text

    def stats(self) -> dict[str, Any]:
        """Counters as a JSON-serialisable dict.

        ``applied`` (data items applied), ``snapshots``, ``updates``,
        ``verified`` / ``unverified`` (checksum checked / not provided or
        verification off), ``resets`` (book dropped, by :meth:`reset` or after
        an error), ``sequence_resets`` (OKX maintenance resets seen),
        ``errors`` by kind (``sequence``, ``checksum``, ``not_ready``,
        ``malformed``), plus the current ``ready``, ``seq_id``, ``bids`` and
        ``asks`` (level counts). Thread safety: safe from any thread.
        """
        with self._lock:
            return {
                "channel": self._channel,
                "inst_id": self._inst_id,
                "ready": self._ready,
                "seq_id": self._seq_id,
                "bids": len(self._bids.levels),
                "asks": len(self._asks.levels),
                "applied": self._applied,
                "snapshots": self._snapshots,
                "updates": self._updates,
                "verified": self._verified,
                "unverified": self._unverified,
                "resets": self._resets,
                "sequence_resets": self._seq_resets,
                "errors": dict(self._errors),
            }


def _is_zero(size: str) -> bool:
    """True for a size meaning "delete": "0", or any other spelling of zero ("0.0")."""
    return size == "0" or (size[-1] == "0" and not float(size))


_SENTINELS: dict[Any, Any] = {float: math.inf, Decimal: Decimal("Infinity")}


class _Side:
    """One side of a book, stored worst level first and best level LAST.

    Most changes happen near the best price, so keeping it at the end of the
    lists makes inserts and deletes there cheap. ``levels`` holds immutable
    level tuples; ``keys`` their numeric sort keys (the price for bids, minus
    the price for asks, so both ascend towards the best) plus a +infinity
    sentinel at the end, so a bisect index is always a valid key index;
    ``cache`` maps price strings seen on this side to their keys (bounded).
    Not locked: the owning store's lock guards it.
    """

    __slots__ = ("keys", "levels", "cache", "negate")

    def __init__(
        self, keys: list[Any], levels: list[Level], cache: dict[str, Any], negate: bool
    ) -> None:
        self.keys = keys
        self.levels = levels
        self.cache = cache
        self.negate = negate

    @classmethod
    def empty(cls, *, negate: bool) -> _Side:
        return cls([math.inf], [], {}, negate)

    @classmethod
    def build(
        cls, raw: Sequence[Sequence[str]], key: _Key, *, negate: bool, cache: dict[str, Any]
    ) -> _Side:
        """A side from best-first snapshot levels (zero sizes dropped; repeated price: last wins)."""
        levels = list(map(tuple, reversed(raw)))
        prices = list(map(itemgetter(0), levels))
        keys = list(map(key, prices))
        if not all(map(math.isfinite, keys)):
            raise ValueError("a snapshot price is not a finite number")
        if negate:
            keys = list(map(operator.neg, keys))
        if len(cache) + len(keys) > _CACHE_LIMIT:
            cache.clear()
        cache.update(zip(prices, keys, strict=True))
        sizes = list(map(itemgetter(1), levels))
        if (
            "0" in sizes
            or any(not float(sz) for sz in sizes if sz[-1] == "0")
            or not all(map(operator.lt, keys, keys[1:]))
        ):  # not as OKX sends it: sort, dedupe, drop zeros the slow way
            pairs = zip(reversed(keys), reversed(levels), strict=True)  # in received order
            by_key = {k: lvl for k, lvl in pairs if not _is_zero(lvl[1])}
            keys = sorted(by_key)
            levels = [by_key[k] for k in keys]
        keys.append(_SENTINELS[key])
        return cls(keys, levels, cache, negate)

    def rekey(self, key: _Key) -> None:
        """Recompute every key with ``key``, in place (same list and dict objects)."""
        sign = -1 if self.negate else 1
        self.keys[:] = [sign * key(lvl[0]) for lvl in self.levels]
        self.keys.append(_SENTINELS[key])
        self.cache.clear()

    def top(self, depth: int | None) -> list[Level]:
        """The best ``depth`` levels (all when None), best first."""
        levels = self.levels
        if depth is None:
            return levels[::-1]
        return levels[: -depth - 1 : -1] if depth else []
