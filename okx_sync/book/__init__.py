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

The parts, one idea each: :mod:`.store` (``OrderBookStore``: the entry point and the
read API), :mod:`.apply` (the update application: snapshot, seqId chain, merge),
:mod:`.side` (one side's levels and keys), :mod:`.wire` (a push's shape checks and
errors), :mod:`.verify` (checksum and not-crossed), :mod:`.counters` (``stats``: the frozen
:class:`StoreStats` and its :class:`BookErrorCounts`).
"""

from __future__ import annotations

# What ``okx_sync.book`` always exported (``__all__``) and the names it always made
# importable from it (the models it reads as, the errors it raises).
from ..errors import OrderBookChecksumError as OrderBookChecksumError
from ..errors import OrderBookCrossedError as OrderBookCrossedError
from ..errors import OrderBookDataError as OrderBookDataError
from ..errors import OrderBookError as OrderBookError
from ..errors import OrderBookNotReadyError as OrderBookNotReadyError
from ..errors import OrderBookSequenceError as OrderBookSequenceError
from ..errors import ValidationError as ValidationError
from ..models.market import BookLevel as BookLevel
from ..models.market import OrderBook as OrderBook
from ..models.ws import BookUpdate as BookUpdate
from .counters import BookErrorCounts, StoreStats
from .side import Level as Level
from .store import BOOK_CHANNELS, INCREMENTAL_CHANNELS, SNAPSHOT_CHANNELS, OrderBookStore

__all__ = [
    "OrderBookStore",
    "StoreStats",
    "BookErrorCounts",
    "SNAPSHOT_CHANNELS",
    "INCREMENTAL_CHANNELS",
    "BOOK_CHANNELS",
]
