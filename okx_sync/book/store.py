"""The public face of an order-book store: :class:`OrderBookStore` (the package doc,
:mod:`okx_sync.book`, says what it checks). Pure: no I/O, no threads of its own."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ..errors import OrderBookError, ValidationError
from ..models.market import BookLevel, OrderBook
from ..models.ws import BookUpdate
from .apply import BookApplier
from .counters import BookCounters, StoreStats
from .verify import BookVerifier, check_string
from .wire import WireCheck

#: Channels whose every push is a complete book.
SNAPSHOT_CHANNELS = frozenset({"books5", "bbo-tbt", "sprd-books5", "sprd-bbo-tbt"})
#: Channels that send one snapshot, then incremental updates.
INCREMENTAL_CHANNELS = frozenset(
    {"books", "books-elp", "books-rpi", "books-l2-tbt", "books50-l2-tbt", "sprd-books-l2-tbt"}
)
BOOK_CHANNELS = SNAPSHOT_CHANNELS | INCREMENTAL_CHANNELS
# The channel whose book may be crossed in normal operation: books-elp carries ELP
# orders only, including their "invalid parts" priced through the non-ELP book.
_CROSSING_CHANNELS = frozenset({"books-elp"})


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
        "_wire",
        "_writing",
        "_lock",
        "_counters",
        "_book",
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
        if verify_uncrossed is None:
            verify_uncrossed = channel not in _CROSSING_CHANNELS
        # spread prices may be negative
        self._wire = WireCheck(channel, inst_id, signed=channel.startswith("sprd-"))
        self._writing = threading.Lock()  # serialises apply(); readers never take it
        self._lock = threading.Lock()
        self._counters = BookCounters()
        verifier = BookVerifier(
            inst_id, verify_checksum=bool(verify_checksum), verify_uncrossed=bool(verify_uncrossed)
        )
        self._book = BookApplier(
            self._wire,
            verifier,
            self._counters,
            self._lock,
            verify_sequence=bool(verify_sequence),
        )

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
        return self._book.ready

    @property
    def seq_id(self) -> int | None:
        """``seqId`` of the last applied push (None before one, or when OKX sent none)."""
        return self._book.seq_id

    @property
    def ts(self) -> int | None:
        """``ts`` (ms since epoch) of the last applied push, or None."""
        ts = self._book.ts
        return int(ts) if ts is not None else None

    def __repr__(self) -> str:
        book = self._book
        return (
            f"OrderBookStore({self._channel} {self._inst_id} ready={book.ready} "
            f"seq_id={book.seq_id} bids={len(book.bids.levels)} asks={len(book.asks.levels)})"
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
        if type(message) is not dict and isinstance(message, BookUpdate):  # a typed push: as wire
            message = {
                "arg": {"channel": message.channel, "instId": message.inst_id},
                "action": message.action,
                "data": (message.raw,),
            }
        with self._writing:
            try:
                if type(message) is not dict and not isinstance(message, Mapping):
                    raise self._wire.bad("push", f"not an object: {type(message).__name__}")
                arg = message.get("arg")
                if arg is not None:
                    if type(arg) is not dict and not isinstance(arg, Mapping):
                        raise self._wire.bad("arg", f"not an object: {arg!r:.80}")
                    channel = arg.get("channel")
                    inst = arg.get("instId") or arg.get("sprdId")
                    if channel != self._channel or inst != self._inst_id:
                        raise ValidationError(
                            f"push for {channel} {inst} given to the store of "
                            f"{self._channel} {self._inst_id}"
                        )
                action = message.get("action")
                if action is not None and action != "update" and action != "snapshot":
                    raise self._wire.bad("action", f"unknown action {action!r:.80}")
                items = message.get("data")
                if type(items) is not list and not isinstance(items, (list, tuple)):
                    raise self._wire.bad("data", f"not a list: {type(items).__name__}")
                replace = not self._incremental or action != "update"
                apply_item = self._book.apply_item
                for item in items:
                    apply_item(item, replace)
            except ValidationError:
                raise  # another book's push: this one is untouched
            except OrderBookError as exc:
                self._fail(exc)
                raise
            except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
                err = self._wire.bad("", f"{type(exc).__name__}: {exc}")
                self._fail(err)
                raise err from exc

    def reset(self) -> None:
        """Drop the book: not ready until the next snapshot. Stats are kept.

        Thread safety: safe from any thread (waits for a push being applied).
        """
        with self._writing, self._lock:
            self._book.clear()

    def _fail(self, exc: OrderBookError) -> None:
        with self._lock:
            self._counters.count_error(exc)
            self._book.clear()

    # ------------------------------------------------------------------ reading

    def best_bid(self) -> BookLevel | None:
        """The best bid as a :class:`~okx_sync.models.BookLevel` (``px``, ``sz``,
        ``orders``), or None when the side is empty (or the store not ready).

        Raises ``ValueError`` when the stored level's price or size is not a
        number. Thread safety: safe from any thread.
        """
        with self._lock:
            bids = self._book.bids.levels
            lvl = bids[-1] if bids else None
        return None if lvl is None else BookLevel.from_okx(lvl)

    def best_ask(self) -> BookLevel | None:
        """The best ask as a :class:`~okx_sync.models.BookLevel`, or None when the side
        is empty (or the store not ready).

        Raises ``ValueError`` as :meth:`best_bid`. Thread safety: safe from any thread.
        """
        with self._lock:
            asks = self._book.asks.levels
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
            book = self._book
            top_bids = book.bids.top(depth)
            top_asks = book.asks.top(depth)
            seq_id = book.seq_id
            ts = book.ts
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
            text = check_string(self._book.bids, self._book.asks)
        return text

    def stats(self) -> StoreStats:
        """The store's counters and the book's state as a frozen
        :class:`~okx_sync.book.StoreStats` (``to_dict()`` for JSON): ``channel``,
        ``inst_id``, ``ready``, ``seq_id``, ``bids`` / ``asks`` (level counts),
        ``applied`` (data items applied), ``snapshots``, ``updates``, ``verified``
        / ``unverified`` (checksum checked / not provided or verification off),
        ``resets`` (book dropped, by :meth:`reset` or after an error),
        ``sequence_resets`` (OKX maintenance resets seen), ``crossed_snapshots``
        (snapshots OKX sent crossed, kept as sent) and ``errors`` (a
        :class:`~okx_sync.book.BookErrorCounts`: ``sequence``, ``checksum``,
        ``not_ready``, ``malformed``, ``crossed``). Thread safety: safe from any
        thread; read under the readers' lock, so the snapshot is one moment
        between two pushes.
        """
        with self._lock:
            book = self._book
            return self._counters.snapshot(
                channel=self._channel,
                inst_id=self._inst_id,
                ready=book.ready,
                seq_id=book.seq_id,
                bids=len(book.bids.levels),
                asks=len(book.asks.levels),
            )
