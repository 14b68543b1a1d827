"""The counters of an order-book store and the frozen :class:`StoreStats` snapshot of
them (what :meth:`OrderBookStore.stats` returns), with its :class:`BookErrorCounts`.

Thread safety: ``BookCounters`` is not locked (its store holds the lock);
``StoreStats`` and ``BookErrorCounts`` are immutable.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..errors import (
    OrderBookChecksumError,
    OrderBookCrossedError,
    OrderBookError,
    OrderBookNotReadyError,
    OrderBookSequenceError,
)

__all__ = ["BookCounters", "BookErrorCounts", "StoreStats", "ERROR_KINDS"]


@attrs.frozen(kw_only=True)
class BookErrorCounts:
    """The pushes an order book refused, by kind (``stats().errors``).

    ``sequence``: ``prevSeqId`` did not chain to the stored ``seqId``
    (``OrderBookSequenceError``); ``checksum``: the merged book's CRC32 differed
    from the push (``OrderBookChecksumError``); ``not_ready``: an update came
    before any snapshot (``OrderBookNotReadyError``); ``malformed``: a field was
    not as OKX sends it (``OrderBookDataError``, or any other ``OrderBookError``);
    ``crossed``: an update crossed the book (``OrderBookCrossedError``).
    ``total`` is their sum; ``to_dict()`` the JSON-serialisable dict (the kinds in
    this order). Thread safety: immutable.
    """

    sequence: int = 0
    checksum: int = 0
    not_ready: int = 0
    malformed: int = 0
    crossed: int = 0

    @property
    def total(self) -> int:
        """Every kind, summed."""
        return self.sequence + self.checksum + self.not_ready + self.malformed + self.crossed

    def to_dict(self) -> dict[str, int]:
        """A JSON-serialisable dict of every kind."""
        return attrs.asdict(self)


#: The kinds of refused pushes, in :class:`BookErrorCounts` order.
ERROR_KINDS = tuple(field.name for field in attrs.fields(BookErrorCounts))


@attrs.frozen(kw_only=True)
class StoreStats:
    """A frozen snapshot of an :class:`~okx_sync.book.OrderBookStore` (``store.stats()``).

    The book now: ``channel``, ``inst_id``, ``ready`` (a snapshot applied and no
    check failed since), ``seq_id`` (of the last applied push, or None), ``bids`` /
    ``asks`` (level counts). Counted since the store was made: ``applied`` (data
    items applied), ``snapshots``, ``updates``, ``verified`` (checksum checked) /
    ``unverified`` (checksum not provided, or verification off), ``resets`` (book
    dropped, by ``reset()`` or after an error), ``sequence_resets`` (OKX
    maintenance resets of ``seqId`` seen), ``crossed_snapshots`` (snapshots OKX
    sent crossed, kept as sent) and ``errors`` (a :class:`BookErrorCounts`: the
    refused pushes by kind). ``to_dict()`` is the JSON-serialisable dict, keys in
    this order, ``errors`` a nested dict. Thread safety: immutable; ``stats()``
    reads the store under its lock, so one snapshot is one consistent moment.
    """

    channel: str
    inst_id: str
    ready: bool
    seq_id: int | None
    bids: int
    asks: int
    applied: int
    snapshots: int
    updates: int
    verified: int
    unverified: int
    resets: int
    sequence_resets: int
    crossed_snapshots: int
    errors: BookErrorCounts

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field (``errors`` as a dict)."""
        return attrs.asdict(self)


class BookCounters:
    """What a store applied, verified and refused: plain counters, bumped in place.

    Not locked: the owning store changes and reads them under its readers' lock.
    """

    __slots__ = (
        "applied",
        "snapshots",
        "updates",
        "verified",
        "unverified",
        "resets",
        "seq_resets",
        "crossed_snapshots",
        "errors",
    )

    def __init__(self) -> None:
        self.applied = 0
        self.snapshots = 0
        self.updates = 0
        self.verified = 0
        self.unverified = 0
        self.resets = 0
        self.seq_resets = 0
        self.crossed_snapshots = 0
        self.errors = dict.fromkeys(ERROR_KINDS, 0)

    def count_error(self, exc: OrderBookError) -> None:
        """Count a refused push by the kind of ``exc`` (any other OrderBookError: malformed)."""
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
        self.errors[kind] += 1

    def snapshot(
        self, *, channel: str, inst_id: str, ready: bool, seq_id: int | None, bids: int, asks: int
    ) -> StoreStats:
        """The counters with the book's state (given by the store) as a :class:`StoreStats`.

        The caller holds the store's lock, so state and counters are one moment.
        """
        return StoreStats(
            channel=channel,
            inst_id=inst_id,
            ready=ready,
            seq_id=seq_id,
            bids=bids,
            asks=asks,
            applied=self.applied,
            snapshots=self.snapshots,
            updates=self.updates,
            verified=self.verified,
            unverified=self.unverified,
            resets=self.resets,
            sequence_resets=self.seq_resets,
            crossed_snapshots=self.crossed_snapshots,
            errors=BookErrorCounts(**self.errors),
        )
