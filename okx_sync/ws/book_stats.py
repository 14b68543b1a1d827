"""The frozen ``BookStats`` snapshot of a managed order book and its ``BookCheckStats``.

``ManagedOrderBook.stats()`` assembles a :class:`BookStats` (a ``StoreStats`` with
the book's own fields after the store's) from the store's snapshot
(``OrderBookStore.stats()``), the sync state, the callback worker and the REST
cross-check; ``to_dict()`` gives the JSON-serialisable dict the evidence and the
stats sinks show. Pure module: no I/O, no threads.

Thread safety: immutable.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..book.counters import StoreStats

__all__ = ["BookStats", "BookCheckStats"]


@attrs.frozen(kw_only=True)
class BookCheckStats:
    """The REST cross-check of a managed book (``book.stats().rest_check``).

    ``enabled`` (a REST client was given), ``checked``, ``mismatches``,
    ``errors``, ``last_difference`` (a ``CrossCheck.to_dict()`` or None) and
    ``last_error``. Thread safety: immutable (do not mutate ``last_difference``).
    """

    enabled: bool
    checked: int
    mismatches: int
    errors: int
    last_difference: dict[str, Any] | None
    last_error: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class BookStats(StoreStats):
    """A frozen snapshot of a ``ManagedOrderBook`` (``book.stats()``).

    A :class:`~okx_sync.book.StoreStats` (its store's fields first: ``channel``,
    ``inst_id``, ``ready``, ``seq_id``, ``bids`` / ``asks`` (level counts),
    ``applied``, ``snapshots``, ``updates``, ``verified`` / ``unverified``,
    ``resets``, ``sequence_resets``, ``crossed_snapshots``, ``errors`` (a
    :class:`~okx_sync.book.BookErrorCounts`: ``sequence``, ``checksum``,
    ``not_ready``, ``malformed``, ``crossed``)), then the book's: ``ws`` (its
    client's name), ``in_sync``, ``resyncs``, ``resubscribes`` (unsubscribe +
    subscribe pairs sent), ``skipped`` (updates dropped while waiting for a
    snapshot), ``last_error``, ``rejected`` (the code with which OKX refused the
    subscription for good, e.g. ``"60018"``; None), ``last_resync_s`` (out of
    sync -> in sync), ``callback_errors``, ``closed`` and ``rest_check`` (a
    :class:`BookCheckStats`). ``to_dict()`` is the JSON-serialisable dict, keys
    in this order (``errors`` and ``rest_check`` as dicts). Thread safety: immutable.
    """

    ws: str
    in_sync: bool
    resyncs: int
    resubscribes: int
    skipped: int
    last_error: str
    rejected: str | None
    last_resync_s: float | None
    callback_errors: int
    closed: bool
    rest_check: BookCheckStats

    @property
    def error_total(self) -> int:
        """The store's errors of every kind, summed."""
        return self.errors.total
