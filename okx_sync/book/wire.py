"""The shape checks of an order-book push, and the errors naming what is wrong with it.
Pure: no I/O, no threads, no state beyond the book it names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import OrderBookDataError

# Types of seqId, ts, checksum, bids, asks in a push as OKX sends it: books (seqId since
# 2022-10; before, none), books5 / bbo-tbt (no checksum).
WIRE_TYPES = frozenset(
    {
        (int, str, int, list, list),
        (type(None), str, int, list, list),
        (int, str, type(None), list, list),
    }
)


class WireCheck:
    """The checks of one book's items outside the level merge (an item's fields when
    they are not as OKX sends them) and the :class:`~okx_sync.errors.OrderBookDataError`
    for each bad field of a push.

    ``WireCheck(channel, inst_id, *, signed)``: ``signed`` when prices
    may be negative (spread channels). Immutable; thread safety: safe from any thread.
    """

    __slots__ = ("channel", "inst_id", "signed")

    def __init__(self, channel: str, inst_id: str, *, signed: bool) -> None:
        self.channel = channel
        self.inst_id = inst_id
        self.signed = signed

    def fields(
        self, seq: Any, ts: Any, checksum: Any, bids: Any, asks: Any
    ) -> tuple[int | None, str | None, int | None, Sequence[Any], Sequence[Any]]:
        """An item's fields when they are not all as OKX sends ``books``: absent ones
        (None; empty sides), tuples and a checksum string are accepted, anything else
        raises OrderBookDataError."""
        if seq is not None and type(seq) is not int:
            raise self.bad("seqId", f"not an integer: {seq!r:.80}")
        if ts is not None and not (type(ts) is str and ts.isdecimal()):
            raise self.bad("ts", f"not a number of milliseconds: {ts!r:.80}")
        if checksum is not None and type(checksum) is not int:
            if type(checksum) is not str or not checksum.lstrip("-").isdigit():
                raise self.bad("checksum", f"not an integer: {checksum!r:.80}")
            checksum = int(checksum)
        sides = []
        for name, levels in (("bids", bids), ("asks", asks)):
            if levels is None:
                levels = ()
            elif not isinstance(levels, (list, tuple)):
                raise self.bad(name, f"not a list: {type(levels).__name__}")
            sides.append(levels)
        return seq, ts, checksum, sides[0], sides[1]

    def bad(self, field: str, text: str) -> OrderBookDataError:
        """The error for a malformed ``field`` of this book's push (returned, not raised)."""
        return OrderBookDataError(
            f"malformed order book push for {self.channel} {self.inst_id}: {text}",
            inst_id=self.inst_id,
            field=field,
        )

    def price_error(self, side: str, px: Any) -> OrderBookDataError:
        """The error saying why ``px`` on ``side`` (``"bids"``/``"asks"``) is not a price."""
        if type(px) is not str:
            return self.bad(side, f"price is not a string: {px!r:.80}")
        if self.signed:
            return self.bad(side, f"price is not a finite number: {px!r:.80}")
        return self.bad(side, f"price is not a finite number >= 0: {px!r:.80}")

    def size_error(self, side: str, sz: Any) -> OrderBookDataError:
        """The error saying why ``sz`` on ``side`` is not a size."""
        if type(sz) is not str:
            return self.bad(side, f"size is not a string: {sz!r:.80}")
        return self.bad(side, f"size is not a finite number >= 0: {sz!r:.80}")
