"""The counters of an order-book store (what :meth:`OrderBookStore.stats` reports)."""

from __future__ import annotations

from typing import Any

from ..errors import (
    OrderBookChecksumError,
    OrderBookCrossedError,
    OrderBookError,
    OrderBookNotReadyError,
    OrderBookSequenceError,
)

ERROR_KINDS = ("sequence", "checksum", "not_ready", "malformed", "crossed")


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

    def as_dict(self) -> dict[str, Any]:
        """The counters as the JSON-serialisable part of :meth:`OrderBookStore.stats`."""
        return {
            "applied": self.applied,
            "snapshots": self.snapshots,
            "updates": self.updates,
            "verified": self.verified,
            "unverified": self.unverified,
            "resets": self.resets,
            "sequence_resets": self.seq_resets,
            "crossed_snapshots": self.crossed_snapshots,
            "errors": dict(self.errors),
        }
