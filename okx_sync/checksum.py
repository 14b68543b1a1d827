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

__all__ = ["checksum_string", "checksum_of_string", "book_checksum", "CHECKSUM_DEPTH"]

CHECKSUM_DEPTH = 25

Level = Sequence[str]


def checksum_string(
    bids: Sequence[Level], asks: Sequence[Level], depth: int = CHECKSUM_DEPTH
) -> str:
    """Build the interleaved check string from the best-first levels of each side."""
    parts: list[str] = []
    nb = min(len(bids), depth)
    na = min(len(asks), depth)
    for i in range(max(nb, na)):
        if i < nb:
            b = bids[i]
            parts.append(b[0])
            parts.append(b[1])
        if i < na:
            a = asks[i]
            parts.append(a[0])
            parts.append(a[1])
    return ":".join(parts)


def checksum_of_string(text: str) -> int:
    """CRC32 of ``text`` (UTF-8) as a signed 32-bit integer."""
    value = zlib.crc32(text.encode("utf-8"))
    return value - (1 << 32) if value >= (1 << 31) else value


def book_checksum(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """The OKX checksum of a book given best-first bid and ask levels."""
    return checksum_of_string(checksum_string(bids, asks))
