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
- not crossed: an update that leaves best bid >= best ask on a book that was not
  crossed, without a checksum vouching for it, is refused (a merge gone wrong;
  since checksums are 0, the only check of the merged levels). OKX's own book may be crossed — during
  the pre-open period (call auction) the best ask may be below the best bid, and
  ``books-elp`` carries invalid ELP parts — so a crossed *snapshot* is kept as
  sent (counted as ``crossed_snapshots``) and updates may keep it crossed; the
  check is off by default on ``books-elp``. A book that crosses through updates
  therefore costs one resync, whose snapshot then says whether OKX's book is
  crossed.

Before any of this, every push is validated while it is parsed (shape, types,
finite non-negative numbers: :meth:`OrderBookStore.apply`); a malformed push
raises :class:`~okx_sync.errors.OrderBookDataError` and is never stored.

On snapshot channels every push stands alone: its ``seqId`` is recorded, not
chained, and a missing checksum (``books5``/``bbo-tbt`` carry none) counts as
unverified.

A failed update leaves the store reset (not ready): the caller resubscribes
for a fresh snapshot. Designed to be fed inline from a WebSocket reader thread
(one short lock per push; each level costs two dict lookups and a bisect) while
any number of other threads read. Snapshots, and updates too large to merge in
place within a few milliseconds, are built outside the readers' lock in
O(n + k log k) and swapped in.

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

from .checksum import CHECKSUM_DEPTH, checksum_of_string, checksum_string, interleaved
from .errors import (
    OrderBookChecksumError,
    OrderBookCrossedError,
    OrderBookDataError,
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
# Bound of each side's price-string -> key cache and of the size cache (cleared when full).
_CACHE_LIMIT = 8192
_ERROR_KINDS = ("sequence", "checksum", "not_ready", "malformed", "crossed")
# An update of k levels into a book of n is merged in place, under the readers'
# lock, while k * (n + k) <= _BULK_WORK (each insert moves up to n + k references:
# a few ms at most); a larger one (k > _BULK_MIN) is merged into new lists in
# O(n + k log k) outside that lock, and swapped in.
_BULK_MIN = 64
_BULK_WORK = 1_000_000
# The channel whose book may be crossed in normal operation: books-elp carries ELP
# orders only, including their "invalid parts" priced through the non-ELP book.
_CROSSING_CHANNELS = frozenset({"books-elp"})

Level = tuple[str, ...]
_Levels = Sequence[Sequence[str]]
_Key = Callable[[str], Any]


class OrderBookStore:
    """The merged, verified order book of one ``(channel, inst_id)``.

    ``OrderBookStore(channel, inst_id, *, verify_sequence=True, verify_checksum=True,
    verify_uncrossed=None)``; ``inst_id`` is the ``instId`` (or ``sprdId`` for spread
    channels) of the pushes; ``verify_uncrossed`` None means on, except on
    ``books-elp`` (module doc). Raises :class:`~okx_sync.errors.ValidationError` for
    an unknown channel or an empty ``inst_id``.

    Feed it with :meth:`apply`; read it with :meth:`best_bid`, :meth:`best_ask`,
    :meth:`snapshot`, :meth:`checksum_string`, :meth:`stats` and the ``ready``,
    ``seq_id`` and ``ts`` properties.

    Thread safety: every method may be called from any thread. One lock guards
    what readers see; :meth:`apply` holds it for an in-place merge of one push
    (bounded: a few ms at most) or just for a swap of references (snapshots and
    large updates, built outside it), readers only long enough to copy
    references to immutable level tuples, so a reader always sees the book as
    it was between two pushes, never half-merged. A second lock serialises
    :meth:`apply` calls. Typical use: one thread (the WS reader) applies, GUI
    and strategy threads read.
    """

    __slots__ = (
        "_channel",
        "_inst_id",
        "_incremental",
        "_verify_sequence",
        "_verify_checksum",
        "_verify_uncrossed",
        "_signed",
        "_writing",
        "_lock",
        "_bids",
        "_asks",
        "_key",
        "_sizes",
        "_ready",
        "_crossed",
        "_crossed_snapshots",
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
        verify_uncrossed: bool | None = None,
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
        if verify_uncrossed is None:
            verify_uncrossed = channel not in _CROSSING_CHANNELS
        self._verify_uncrossed = bool(verify_uncrossed)
        self._signed = channel.startswith("sprd-")  # spread prices may be negative
        self._writing = threading.Lock()  # serialises apply(); readers never take it
        self._lock = threading.Lock()
        # Both sides are stored worst level first, best level LAST (see _Side).
        self._bids = _Side.empty(negate=False)
        self._asks = _Side.empty(negate=True)
        self._key: _Key = float
        self._sizes: dict[str, float] = {}  # size string -> value, checked (bounded)
        self._ready = False
        self._crossed = False  # the book is crossed as OKX sent it (a crossed snapshot)
        self._crossed_snapshots = 0
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

        Every field is checked while it is parsed, before the book can be read
        with it: the push must be an object whose ``data`` is a list of objects,
        ``action`` absent, ``"snapshot"`` or ``"update"``; each level a list of at
        least two strings, price and size finite numbers, size >= 0 and (except
        on spread channels, whose prices may be negative) price >= 0; ``ts`` a
        string of digits; ``seqId``/``prevSeqId`` integers.

        Raises:
            ValidationError: the push names another channel or instrument (the
                book is left untouched).
            OrderBookNotReadyError: an update arrived before any snapshot.
            OrderBookSequenceError: ``prevSeqId`` does not chain to the stored ``seqId``.
            OrderBookCrossedError: an update crossed a book that was not crossed
                (see the module doc; a crossed snapshot is OKX's own state and is kept).
            OrderBookChecksumError: the merged book's CRC32 differs from the push.
            OrderBookDataError: the push is malformed (see above).
            After any ``OrderBookError`` the store is reset (not ready) and the
            error is counted in :meth:`stats`; readers never see the refused push.

        The store keeps its own copies of the levels (tuples); the message is
        not modified and may be reused. Thread safety: safe from any thread;
        pushes for one store must be applied in the order received (concurrent
        calls are serialised). Readers wait at most for a bounded in-place merge
        or a reference swap: a large update (many levels into a big book) is
        merged in O(n + k log k) into new lists outside the readers' lock.
        """
        if isinstance(message, BookUpdate):  # one item of a typed push: back to the push shape
            message = {
                "arg": {"channel": message.channel, "instId": message.inst_id},
                "action": message.action,
                "data": (message.raw,),
            }
        with self._writing:
            try:
                if type(message) is not dict and not isinstance(message, Mapping):
                    raise self._bad("push", f"not an object: {type(message).__name__}")
                arg = message.get("arg")
                if arg is not None:
                    if type(arg) is not dict and not isinstance(arg, Mapping):
                        raise self._bad("arg", f"not an object: {arg!r:.80}")
                    channel = arg.get("channel")
                    inst = arg.get("instId") or arg.get("sprdId")
                    if channel != self._channel or inst != self._inst_id:
                        raise ValidationError(
                            f"push for {channel} {inst} given to the store of "
                            f"{self._channel} {self._inst_id}"
                        )
                action = message.get("action")
                if action is not None and action != "update" and action != "snapshot":
                    raise self._bad("action", f"unknown action {action!r:.80}")
                items = message.get("data")
                if type(items) is not list and not isinstance(items, (list, tuple)):
                    raise self._bad("data", f"not a list: {type(items).__name__}")
                replace = not self._incremental or action != "update"
                for item in items:
                    self._apply_item(item, replace)
            except ValidationError:
                raise  # another book's push: this one is untouched
            except OrderBookError as exc:
                self._fail(exc)
                raise
            except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
                err = self._bad("", f"{type(exc).__name__}: {exc}")
                self._fail(err)
                raise err from exc

    def reset(self) -> None:
        """Drop the book: not ready until the next snapshot. Stats are kept.

        Thread safety: safe from any thread (waits for a push being applied).
        """
        with self._writing, self._lock:
            self._clear()

    def _bad(self, field: str, text: str) -> OrderBookDataError:
        return OrderBookDataError(
            f"malformed order book push for {self._channel} {self._inst_id}: {text}",
            inst_id=self._inst_id,
            field=field,
        )

    # The hot path. Called with self._writing held; takes self._lock only to change
    # what readers see.
    def _apply_item(self, item: Any, replace: bool) -> None:
        if type(item) is not dict and not isinstance(item, Mapping):
            raise self._bad("data", f"item is not an object: {type(item).__name__}")
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
        ) not in _WIRE_TYPES or not ts.isdecimal():  # as OKX sends books; else check each
            seq, ts, checksum, bids, asks = self._checked(seq, ts, checksum, bids, asks)
        if replace:
            self._install(bids, asks, seq, ts, checksum)
            return
        if not self._ready:
            raise OrderBookNotReadyError(
                f"order book update before snapshot for {self._channel} {self._inst_id}"
            )
        prev = item.get("prevSeqId")
        if prev is not None and type(prev) is not int:
            raise self._bad("prevSeqId", f"not an integer: {prev!r:.80}")
        stored = self._seq_id
        reset = False
        if prev is not None and stored is not None:
            if prev != stored and self._verify_sequence:
                raise OrderBookSequenceError(
                    stored, prev, -1 if seq is None else seq, inst_id=self._inst_id
                )
            reset = seq is not None and seq < prev
        k = len(bids) + len(asks)
        if k > _BULK_MIN and k * (len(self._bids.levels) + len(self._asks.levels) + k) > _BULK_WORK:
            self._bulk_update(bids, asks, seq, ts, checksum, reset)
            return
        with self._lock:  # small update: merged in place, readers wait for it
            try:
                if bids:
                    self._merge(self._bids, bids)
                if asks:
                    self._merge(self._asks, asks)
                try:  # keys end with a sentinel: [-2] is the best level's
                    crossed = self._bids.keys[-2] >= -self._asks.keys[-2]
                except IndexError:  # an empty side
                    crossed = False
                if checksum or crossed:
                    crossed, verified = self._settle(self._bids, self._asks, checksum, False)
                    if verified:
                        self._verified += 1
                    else:
                        self._unverified += 1
                else:
                    self._unverified += 1
            except BaseException:
                self._clear()  # never let a reader see a half-merged book
                raise
            # inline _commit (the hot path)
            if seq is not None:
                self._seq_id = seq
            if ts is not None:
                self._ts = ts
            self._crossed = crossed
            if reset:
                self._seq_resets += 1
            self._applied += 1
            self._updates += 1

    def _checked(
        self, seq: Any, ts: Any, checksum: Any, bids: Any, asks: Any
    ) -> tuple[int | None, str | None, int | None, Sequence[Any], Sequence[Any]]:
        """The item's fields when they are not all as OKX sends ``books``: absent ones
        (None; empty sides), tuples and a checksum string are accepted, anything else
        raises OrderBookDataError."""
        if seq is not None and type(seq) is not int:
            raise self._bad("seqId", f"not an integer: {seq!r:.80}")
        if ts is not None and not (type(ts) is str and ts.isdecimal()):
            raise self._bad("ts", f"not a number of milliseconds: {ts!r:.80}")
        if checksum is not None and type(checksum) is not int:
            if type(checksum) is not str or not checksum.lstrip("-").isdigit():
                raise self._bad("checksum", f"not an integer: {checksum!r:.80}")
            checksum = int(checksum)
        sides = []
        for name, levels in (("bids", bids), ("asks", asks)):
            if levels is None:
                levels = ()
            elif not isinstance(levels, (list, tuple)):
                raise self._bad(name, f"not a list: {type(levels).__name__}")
            sides.append(levels)
        return seq, ts, checksum, sides[0], sides[1]

    def _install(
        self, bids: _Levels, asks: _Levels, seq: int | None, ts: str | None, checksum: int | None
    ) -> None:
        """A snapshot: built, checked, then swapped in (readers wait for the swap only)."""
        key: _Key = Decimal if _has_long_price(bids, asks) else float
        keep = key is self._key  # parsed keys stay valid: keep the caches warm
        new_bids = self._built("bids", bids, key, self._bids.cache if keep else {})
        new_asks = self._built("asks", asks, key, self._asks.cache if keep else {})
        crossed, verified = self._settle(new_bids, new_asks, checksum, True)
        with self._lock:
            self._key = key
            self._bids = new_bids
            self._asks = new_asks
            self._ready = True
            self._snapshots += 1
            self._crossed_snapshots += crossed
            self._commit(seq, ts, verified, crossed, False)

    def _built(
        self, name: str, raw: Sequence[Sequence[str]], key: _Key, cache: dict[str, Any]
    ) -> _Side:
        try:
            return _Side.build(raw, key, negate=name == "asks", cache=cache, signed=self._signed)
        except (LookupError, TypeError, ValueError, ArithmeticError) as exc:
            raise self._bad(name, f"{type(exc).__name__}: {exc}") from exc

    def _bulk_update(
        self,
        bids: _Levels,
        asks: _Levels,
        seq: int | None,
        ts: str | None,
        checksum: int | None,
        reset: bool,
    ) -> None:
        """A large update: merged into new lists outside the readers' lock, then swapped in."""
        if self._key is float and _has_long_price(bids, asks):
            self._use_exact_keys()  # keys are the writer's own: readers only read levels
        key = self._key
        new_bids, new_asks = self._bids, self._asks
        try:
            if bids:
                new_bids = new_bids.merged(bids, key, signed=self._signed)
        except (LookupError, TypeError, ValueError, ArithmeticError) as exc:
            raise self._bad("bids", f"{type(exc).__name__}: {exc}") from exc
        try:
            if asks:
                new_asks = new_asks.merged(asks, key, signed=self._signed)
        except (LookupError, TypeError, ValueError, ArithmeticError) as exc:
            raise self._bad("asks", f"{type(exc).__name__}: {exc}") from exc
        crossed, verified = self._settle(new_bids, new_asks, checksum, False)
        with self._lock:
            self._bids = new_bids
            self._asks = new_asks
            self._updates += 1
            self._commit(seq, ts, verified, crossed, reset)

    def _settle(
        self, bids: _Side, asks: _Side, checksum: int | None, snapshot: bool
    ) -> tuple[bool, bool]:
        """Check a merged book: ``(crossed, verified)``.

        Raises OrderBookChecksumError on a CRC32 mismatch; OrderBookCrossedError when
        an update crossed a book that was not crossed and no checksum vouched for it
        (a verified checksum proves the top of the book is OKX's own, crossed or not).
        """
        bk = bids.keys
        ak = asks.keys
        crossed = len(bk) > 1 and len(ak) > 1 and bk[-2] >= -ak[-2]
        verified = False
        if checksum and self._verify_checksum:
            text = ":".join(interleaved(bids.top_texts(), asks.top_texts()))
            got = checksum_of_string(text)
            if got != checksum:
                raise OrderBookChecksumError(checksum, got, text, inst_id=self._inst_id)
            verified = True
        if crossed and not (snapshot or verified or self._crossed) and self._verify_uncrossed:
            raise OrderBookCrossedError(
                bids.levels[-1][0], asks.levels[-1][0], inst_id=self._inst_id
            )
        return crossed, verified

    def _commit(
        self, seq: int | None, ts: str | None, verified: bool, crossed: bool, reset: bool
    ) -> None:
        """Record an applied item (under self._lock)."""
        if seq is not None:
            self._seq_id = seq
        if ts is not None:
            self._ts = ts
        if verified:
            self._verified += 1
        else:
            self._unverified += 1
        self._crossed = crossed
        if reset:
            self._seq_resets += 1
        self._applied += 1

    def _merge(self, side: _Side, deltas: Sequence[Sequence[str]]) -> None:
        # Per level: two dict lookups (price and size strings -> parsed, checked
        # values; only a string never seen is parsed and checked, inline) and one
        # bisect. Identity is numeric: a new spelling of a stored price ("0.10" vs
        # "0.1") is the same level.
        keys = side.keys
        levels = side.levels
        cache = side.cache
        sizes = self._sizes
        if len(cache) >= _CACHE_LIMIT:  # each bounded by _CACHE_LIMIT + one push
            cache.clear()
        if len(sizes) >= _CACHE_LIMIT:
            sizes.clear()
        key = self._key
        find = bisect_left
        inf = math.inf
        texts = side.texts  # kept in step once a checksum was verified (else None)
        for lvl in deltas:
            if type(lvl) is not list and type(lvl) is not tuple:  # a str would pass as [px, sz]
                raise self._bad(side.name, f"level is not a list: {lvl!r:.80}")
            px = lvl[0]
            k = cache.get(px)
            if k is None:
                if type(px) is not str or (len(px) > _FLOAT_EXACT_LEN and key is float):
                    k = self._price_key(side, px)
                    key = self._key
                else:
                    try:
                        num = key(px)
                        ok = 0.0 <= num < inf or (self._signed and -inf < num < 0.0)
                    except (ValueError, ArithmeticError):
                        ok = False
                    if not ok:
                        raise self._price_error(side, px)
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
                    raise self._size_error(side, sz)
                sizes[sz] = f
            i = find(keys, k)
            if f:
                if keys[i] == k:
                    levels[i] = tuple(lvl)
                    if texts is not None:
                        texts[i] = f"{px}:{sz}"
                else:
                    keys.insert(i, k)
                    levels.insert(i, tuple(lvl))
                    if texts is not None:
                        texts.insert(i, f"{px}:{sz}")
            elif keys[i] == k:
                del keys[i]
                del levels[i]
                if texts is not None:
                    del texts[i]

    def _price_key(self, side: _Side, px: Any) -> Any:
        """Parse, check and cache a price never seen on this side: its sort key
        (switching the store to exact keys for a long price string)."""
        if type(px) is not str:
            raise self._price_error(side, px)
        key = self._key
        if len(px) > _FLOAT_EXACT_LEN and key is float:
            key = self._use_exact_keys()
        try:
            k = key(px)
            finite = math.isfinite(k)
        except (ValueError, ArithmeticError):
            finite = False
        if not finite or (k < 0 and not self._signed):
            raise self._price_error(side, px)
        if side.negate:
            k = -k
        cache = side.cache
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[px] = k
        return k

    def _price_error(self, side: _Side, px: Any) -> OrderBookDataError:
        """The error saying why ``px`` is not a price (the merge's slow path)."""
        if type(px) is not str:
            return self._bad(side.name, f"price is not a string: {px!r:.80}")
        if self._signed:
            return self._bad(side.name, f"price is not a finite number: {px!r:.80}")
        return self._bad(side.name, f"price is not a finite number >= 0: {px!r:.80}")

    def _size_error(self, side: _Side, sz: Any) -> OrderBookDataError:
        """The error saying why ``sz`` is not a size (the merge's slow path)."""
        if type(sz) is not str:
            return self._bad(side.name, f"size is not a string: {sz!r:.80}")
        return self._bad(side.name, f"size is not a finite number >= 0: {sz!r:.80}")

    def _use_exact_keys(self) -> _Key:
        # A price string too long for an exact float key arrived: re-key both
        # sides with Decimal in place (the float order of the existing,
        # shorter strings was exact, so the level order stays valid).
        self._bids.rekey(Decimal)
        self._asks.rekey(Decimal)
        self._key = Decimal
        return Decimal

    def _clear(self) -> None:
        if self._ready or self._bids.levels or self._asks.levels:
            self._resets += 1
        self._bids = _Side.empty(negate=False)
        self._asks = _Side.empty(negate=True)
        self._key = float
        self._ready = False
        self._crossed = False
        self._seq_id = None
        self._ts = None

    def _fail(self, exc: OrderBookError) -> None:
        if isinstance(exc, OrderBookSequenceError):
            kind = "sequence"
        elif isinstance(exc, OrderBookChecksumError):
            kind = "checksum"
        elif isinstance(exc, OrderBookNotReadyError):
            kind = "not_ready"
        elif isinstance(exc, OrderBookCrossedError):
            kind = "crossed"
        else:
            kind = "malformed"
        with self._lock:
            self._errors[kind] += 1
            self._clear()

    def _check_string(self) -> str:
        return checksum_string(self._bids.top(CHECKSUM_DEPTH), self._asks.top(CHECKSUM_DEPTH))

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
        ``crossed_snapshots`` (snapshots OKX sent crossed, kept as sent),
        ``errors`` by kind (``sequence``, ``checksum``, ``not_ready``,
        ``malformed``, ``crossed``), plus the current ``ready``, ``seq_id``, ``bids`` and
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
                "crossed_snapshots": self._crossed_snapshots,
                "errors": dict(self._errors),
            }


def _has_long_price(*sides: Sequence[Sequence[str]]) -> bool:
    """True when a price string is too long for an exact float key."""
    return any(len(lvl[0]) > _FLOAT_EXACT_LEN for levels in sides for lvl in levels)


_SENTINELS: dict[Any, Any] = {float: math.inf, Decimal: Decimal("Infinity")}
_LEVEL_TYPES = frozenset({list, tuple})
# Types of seqId, ts, checksum, bids, asks in a push as OKX sends it: books (seqId since
# 2022-10; before, none), books5 / bbo-tbt (no checksum).
_WIRE_TYPES = frozenset(
    {
        (int, str, int, list, list),
        (type(None), str, int, list, list),
        (int, str, type(None), list, list),
    }
)


class _Side:
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
    def empty(cls, *, negate: bool) -> _Side:
        return cls([math.inf], [], {}, negate)

    @property
    def name(self) -> str:
        """``"bids"`` or ``"asks"``."""
        return "asks" if self.negate else "bids"

    @staticmethod
    def parse(
        raw: Sequence[Sequence[str]], key: _Key, *, negate: bool, signed: bool
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
        key: _Key,
        *,
        negate: bool,
        cache: dict[str, Any],
        signed: bool = False,
    ) -> _Side:
        """A side from best-first snapshot levels (zero sizes dropped; repeated price:
        last wins). Raises as :meth:`parse`."""
        keys, levels, values = cls.parse(raw, key, negate=negate, signed=signed)
        if len(cache) + len(keys) > _CACHE_LIMIT:
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
        keys.append(_SENTINELS[key])
        return cls(keys, levels, cache, negate)

    def merged(self, raw: Sequence[Sequence[str]], key: _Key, *, signed: bool) -> _Side:
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
