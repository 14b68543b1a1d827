"""OKX order-book checksum (facts §5.3). Pure.

The check string interleaves the first 25 bids and 25 asks of the merged book
as ``bidPx:bidSz:askPx:askSz:...`` using the price and size strings exactly as
received; when one side runs out, the other side's remaining levels follow.
The checksum is CRC32 (zlib) of that string read as a signed 32-bit integer.

Shared by the client's order book and the simulator: both are tested against
the published vectors, so agreement between them is not a shared bug.
Thread safety: pure functions.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TypeVar

__all__ = [
    "checksum_string",
    "checksum_of_string",
    "book_checksum",
    "interleaved",
    "CHECKSUM_DEPTH",
]

CHECKSUM_DEPTH = 25

Level = Sequence[str]
T = TypeVar("T")


def interleaved(bids: Sequence[T], asks: Sequence[T], depth: int = CHECKSUM_DEPTH) -> list[T]:
    """The best ``depth`` items of each best-first side in check-string order:
    bid 1, ask 1, bid 2, ask 2, ...; when one side runs out, the other's rest.

    The items may be levels or anything standing for them (the store passes each
    level's ``"px:sz"`` text). Built by slice assignment: no per-item Python code.
    """
    top_bids = list(bids[:depth])
    top_asks = list(asks[:depth])
    order = top_bids + top_asks  # the right length; reordered below
    n = min(len(top_bids), len(top_asks))
    if len(top_bids) == len(top_asks):
        order[0::2] = top_bids
        order[1::2] = top_asks
        return order
    order[0 : 2 * n : 2] = top_bids[:n]
    order[1 : 2 * n : 2] = top_asks[:n]
    order[2 * n :] = top_bids[n:] if len(top_bids) > n else top_asks[n:]
    return order


def checksum_string(
    bids: Sequence[Level], asks: Sequence[Level], depth: int = CHECKSUM_DEPTH
) -> str:
    """Build the interleaved check string from the best-first levels of each side.

    Raises ``IndexError`` for a level shorter than two, ``TypeError`` for a price
    or size that is not a string.
    """
    parts: list[str] = []
    for lvl in interleaved(bids, asks, depth):
        parts += (lvl[0], lvl[1])
    return ":".join(parts)


def checksum_of_string(text: str) -> int:
    """CRC32 of ``text`` (UTF-8) as a signed 32-bit integer."""
    value = zlib.crc32(text.encode("utf-8"))
    return value - (1 << 32) if value >= (1 << 31) else value


def book_checksum(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """The OKX checksum of a book given best-first bid and ask levels."""
    return checksum_of_string(checksum_string(bids, asks))
