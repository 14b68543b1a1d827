"""Published market data of one instrument: the book as subscribers see it, with its seqId.

The matching book changes continuously; :class:`InstrumentFeed` turns its changed
levels into what OKX publishes at a cadence (facts §5): a ``books`` snapshot, then
incremental updates whose ``prevSeqId`` equals the previous ``seqId`` (seqIds are
per instrument, identical on every connection, and may jump by more than one),
with the CRC32 checksum of the top 25 levels after the update, or ``0`` when the
simulator runs with ``checksum="zero"`` as OKX does since June 2026. ``books5`` and
``bbo-tbt`` are full snapshots sent when they change.

Injected faults change the next update only: a *gap* (the update is computed but
never sent, so the following one does not chain), a *corrupt checksum*, a
*sequence reset* (``seqId < prevSeqId``, as after maintenance), and a *malformed*
update (one extra bid level that no correct client may store: a size ``"abc"``, a
price ``"NaN"``, or, with checksum 0, a bid at the best ask price that crosses the
book). The published book itself is never changed by a fault.

Thread safety: not thread-safe; used under the exchange lock.
"""

from __future__ import annotations

import bisect
import random
from decimal import Decimal
from typing import Any

import attrs

from ..checksum import book_checksum
from .instruments import InstrumentSpec
from .numbers import fmt

__all__ = ["InstrumentFeed", "BookUpdate", "PublishedSide", "CHECKSUM_MODES", "MALFORMED_KINDS"]

CHECKSUM_MODES = ("crc32", "zero")
#: What a malformed update carries: a bid with size "abc", with price "NaN", or at the
#: best ask price (crossing; the update's checksum is then 0 so nothing vouches for it).
MALFORMED_KINDS = ("size", "price", "crossed")

WireLevel = list[str]
Change = tuple[Decimal, "list[str] | None"]


@attrs.frozen
class BookUpdate:
    """One ``books`` message body (``data[0]``); ``dropped`` when a gap fault ate it."""

    data: dict[str, Any]
    dropped: bool = False


class PublishedSide:
    """One side of the published book: wire levels kept sorted best-first."""

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.keys: list[Decimal] = []  # ascending: -price for bids, price for asks
        self.levels: list[WireLevel] = []
        self.by_px: dict[str, WireLevel] = {}

    def _key(self, px: Decimal) -> Decimal:
        return -px if self.is_bid else px

    def replace_all(self, levels: list[WireLevel]) -> None:
        """Publish ``levels`` (best-first) as the whole side."""
        self.levels = [list(lv) for lv in levels]
        self.keys = [self._key(Decimal(lv[0])) for lv in self.levels]
        self.by_px = {lv[0]: lv for lv in self.levels}

    def apply(self, changes: list[Change]) -> list[WireLevel]:
        """Apply engine changes; returns the levels to send (deletes as size ``"0"``)."""
        out: list[WireLevel] = []
        for px, level in changes:
            text = level[0] if level is not None else fmt(px)
            old = self.by_px.get(text)
            if level is None:
                if old is None:
                    continue
                idx = bisect.bisect_left(self.keys, self._key(px))
                del self.keys[idx]
                del self.levels[idx]
                del self.by_px[text]
                out.append([text, "0", "0", "0"])
                continue
            if old == level:
                continue
            key = self._key(px)
            idx = bisect.bisect_left(self.keys, key)
            if old is None:
                self.keys.insert(idx, key)
                self.levels.insert(idx, level)
            else:
                self.levels[idx] = level
            self.by_px[text] = level
            out.append(level)
        return out


class InstrumentFeed:
    """The published book of one instrument and its seqId chain."""

    def __init__(self, spec: InstrumentSpec, rng: random.Random, checksum_mode: str) -> None:
        if checksum_mode not in CHECKSUM_MODES:
            raise ValueError(f"checksum must be one of {CHECKSUM_MODES}, not {checksum_mode!r}")
        self.spec = spec
        self.rng = rng
        self.checksum_mode = checksum_mode
        self.seq_id = rng.randint(1_000_000, 900_000_000)
        self._bids = PublishedSide(is_bid=True)
        self._asks = PublishedSide(is_bid=False)
        self.ts = 0
        self.last_change_mono = 0.0
        self.gap_pending = 0
        self.corrupt_pending = 0
        self.reset_pending = 0
        self.malformed_pending: list[str] = []  # MALFORMED_KINDS, next update first
        self.last_books5: tuple[Any, ...] | None = None
        self.last_bbo: tuple[Any, ...] | None = None
        self.last_ticker: tuple[Any, ...] | None = None

    @property
    def bids(self) -> list[WireLevel]:
        """Published bids, best first (do not modify)."""
        return self._bids.levels

    @property
    def asks(self) -> list[WireLevel]:
        """Published asks, best first (do not modify)."""
        return self._asks.levels

    def checksum(self) -> int:
        """The checksum field for the current published book (0 in ``zero`` mode)."""
        if self.checksum_mode == "zero":
            return 0
        return book_checksum(self._bids.levels[:25], self._asks.levels[:25])

    def start(self, bids: list[WireLevel], asks: list[WireLevel], now_ms: int, mono: float) -> None:
        """Publish the first state (no message: subscribers get snapshots)."""
        self._bids.replace_all(bids)
        self._asks.replace_all(asks)
        self.ts = now_ms
        self.last_change_mono = mono

    def update(
        self,
        bid_changes: list[Change],
        ask_changes: list[Change],
        now_ms: int,
        mono: float,
        quiet_interval_s: float | None,
    ) -> BookUpdate | None:
        """Publish the engine's changed levels; returns the ``books`` update or None.

        When nothing changed for ``quiet_interval_s`` seconds, returns the no-change
        update (empty sides, ``prevSeqId == seqId``) that OKX sends for quiet books.
        """
        bid_diff = self._bids.apply(bid_changes)
        ask_diff = self._asks.apply(ask_changes)
        if not bid_diff and not ask_diff and not self.reset_pending:
            if quiet_interval_s is None or mono - self.last_change_mono < quiet_interval_s:
                return None
            return self.heartbeat(now_ms, mono)
        self.ts = now_ms
        self.last_change_mono = mono
        prev = self.seq_id
        if self.reset_pending:
            self.reset_pending -= 1
            self.seq_id = self.rng.randint(1, max(1, min(prev - 1, 1000)))
        else:
            self.seq_id = prev + self.rng.randint(1, 4)
        data = self._data(ask_diff, bid_diff, prev, self.seq_id)
        if self.corrupt_pending:
            self.corrupt_pending -= 1
            data["checksum"] = self._corrupted(data["checksum"])
        if self.malformed_pending:
            self._malform(data, self.malformed_pending.pop(0))
        dropped = False
        if self.gap_pending:
            self.gap_pending -= 1
            dropped = True
        return BookUpdate(data, dropped)

    def heartbeat(self, now_ms: int, mono: float) -> BookUpdate:
        """The no-change update for a quiet book (``prevSeqId == seqId``), now."""
        self.last_change_mono = mono
        self.ts = now_ms
        return BookUpdate(self._data([], [], self.seq_id, self.seq_id))

    def _malform(self, data: dict[str, Any], kind: str) -> None:
        """Add the bid level of a malformed update of ``kind`` (MALFORMED_KINDS)."""
        best_bid = self.bids[0][0] if self.bids else "1"
        if kind == "size":
            bad = [best_bid, "abc", "0", "1"]
        elif kind == "price":
            bad = ["NaN", "1", "0", "1"]
        else:  # crossed: a bid at the best ask
            bad = [self.asks[0][0] if self.asks else best_bid, "1", "0", "1"]
            data["checksum"] = 0
        data["bids"] = [*data["bids"], bad]

    @staticmethod
    def _corrupted(checksum: int) -> int:
        bad = checksum ^ 0x5A5A5A5
        return bad if bad != 0 else 1

    def _data(
        self, asks: list[WireLevel], bids: list[WireLevel], prev: int, seq: int
    ) -> dict[str, Any]:
        return {
            "asks": asks,
            "bids": bids,
            "ts": str(self.ts),
            "checksum": self.checksum(),
            "prevSeqId": prev,
            "seqId": seq,
        }

    def snapshot(self) -> dict[str, Any]:
        """The ``books`` snapshot body (``prevSeqId`` -1) of the published state."""
        return {
            "asks": [list(lv) for lv in self.asks],
            "bids": [list(lv) for lv in self.bids],
            "ts": str(self.ts),
            "checksum": self.checksum(),
            "prevSeqId": -1,
            "seqId": self.seq_id,
        }

    def books5(self) -> dict[str, Any]:
        """The ``books5`` body of the published state."""
        return {
            "asks": [list(lv) for lv in self.asks[:5]],
            "bids": [list(lv) for lv in self.bids[:5]],
            "instId": self.spec.inst_id,
            "ts": str(self.ts),
            "seqId": self.seq_id,
        }

    def bbo(self) -> dict[str, Any]:
        """The ``bbo-tbt`` body of the published state."""
        return {
            "asks": [list(lv) for lv in self.asks[:1]],
            "bids": [list(lv) for lv in self.bids[:1]],
            "ts": str(self.ts),
            "seqId": self.seq_id,
        }

    def books5_changed(self) -> bool:
        """True (and remembered) when the top 5 differ from the last ``books5`` sent."""
        key = (tuple(map(tuple, self.asks[:5])), tuple(map(tuple, self.bids[:5])))
        if key == self.last_books5:
            return False
        self.last_books5 = key
        return True

    def bbo_changed(self) -> bool:
        """True (and remembered) when the top level differs from the last ``bbo-tbt``."""
        key = (tuple(map(tuple, self.asks[:1])), tuple(map(tuple, self.bids[:1])))
        if key == self.last_bbo:
            return False
        self.last_bbo = key
        return True
