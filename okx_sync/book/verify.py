"""The checks of a merged order book (facts §5.3): its CRC32 checksum against the push's,
and not crossed by an update. Pure: no I/O, no threads."""

from __future__ import annotations

from zlib import crc32

from ..checksum import CHECKSUM_DEPTH, checksum_of_string, checksum_string, interleaved
from ..errors import OrderBookChecksumError, OrderBookCrossedError
from .side import Side

_PAST_TOP = CHECKSUM_DEPTH + 1  # texts[:-_PAST_TOP:-1]: the top CHECKSUM_DEPTH, best first


class BookVerifier:
    """Checks a merged book before readers can see it (see :meth:`settle`).

    ``BookVerifier(inst_id, *, verify_checksum, verify_uncrossed)``: each check can be
    off. Immutable; thread safety: safe from any thread (the sides it reads are the
    caller's to guard).
    """

    __slots__ = ("_inst_id", "_verify_checksum", "_verify_uncrossed")

    def __init__(self, inst_id: str, *, verify_checksum: bool, verify_uncrossed: bool) -> None:
        self._inst_id = inst_id
        self._verify_checksum = verify_checksum
        self._verify_uncrossed = verify_uncrossed

    def settle(
        self, bids: Side, asks: Side, checksum: int | None, snapshot: bool, was_crossed: bool
    ) -> tuple[bool, bool]:
        """Check a merged book: ``(crossed, verified)``.

        ``checksum`` the push's (0 or None: not provided, nothing to verify);
        ``snapshot`` when the sides are a new snapshot; ``was_crossed`` when the book
        before this push was crossed as OKX sent it. Raises OrderBookChecksumError on
        a CRC32 mismatch; OrderBookCrossedError when an update crossed a book that was
        not crossed and no checksum vouched for it (a verified checksum proves the top
        of the book is OKX's own, crossed or not).
        """
        bk = bids.keys
        ak = asks.keys
        crossed = len(bk) > 1 and len(ak) > 1 and bk[-2] >= -ak[-2]
        verified = False
        if checksum and self._verify_checksum:
            texts = bids.texts  # the best CHECKSUM_DEPTH, best first (Side.top_texts)
            top_bids = bids.top_texts() if texts is None else texts[:-_PAST_TOP:-1]
            texts = asks.texts
            top_asks = asks.top_texts() if texts is None else texts[:-_PAST_TOP:-1]
            if len(top_bids) == len(top_asks):  # the usual case: interleaved by two slices
                parts = top_bids + top_asks
                parts[0::2] = top_bids
                parts[1::2] = top_asks
            else:
                parts = interleaved(top_bids, top_asks)
            text = ":".join(parts)
            # compared unsigned, as crc32 gives it; only a signed 32-bit checksum can match
            if crc32(text.encode()) != checksum & 0xFFFFFFFF or not (
                -0x80000000 <= checksum <= 0x7FFFFFFF
            ):
                got = checksum_of_string(text)
                raise OrderBookChecksumError(checksum, got, text, inst_id=self._inst_id)
            verified = True
        if crossed and not (snapshot or verified or was_crossed) and self._verify_uncrossed:
            raise OrderBookCrossedError(
                bids.levels[-1][0], asks.levels[-1][0], inst_id=self._inst_id
            )
        return crossed, verified


def check_string(bids: Side, asks: Side) -> str:
    """The OKX check string of a book (top 25 levels of each side, §5.3)."""
    return checksum_string(bids.top(CHECKSUM_DEPTH), asks.top(CHECKSUM_DEPTH))
