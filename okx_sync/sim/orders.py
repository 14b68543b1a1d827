"""Simulated orders and fills, and their OKX wire shapes.

A :class:`SimOrder` is mutable and owned by the exchange (changed only under the
exchange lock); :meth:`SimOrder.to_okx` renders it the way ``GET /trade/order``
and the private ``orders`` channel show it. :class:`FillRecord` is one execution as
``GET /trade/fills`` shows it. Thread safety: not thread-safe; the exchange lock
protects them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from .instruments import InstrumentSpec
from .numbers import ZERO, fmt

__all__ = ["SimOrder", "FillRecord", "LIVE_STATES", "TERMINAL_STATES", "CANCEL_REASONS"]

LIVE_STATES = frozenset({"live", "partially_filled"})
TERMINAL_STATES = frozenset({"filled", "canceled", "mmp_canceled"})

# cancelSource -> cancelSourceReason (facts §6.1)
CANCEL_REASONS = {
    "0": "Order canceled by system",
    "1": "Order canceled by user",
    "13": "FOK order canceled: could not be filled in full",
    "14": "IOC order canceled: remaining size not filled",
    "20": "Order canceled by cancel-all-after",
    "31": "Post-only order canceled: it would have taken liquidity",
    "32": "Order canceled by self-trade prevention",
}


def _s(value: Decimal | None) -> str:
    return "" if value is None else fmt(value)


@attrs.define(eq=False, slots=True)
class SimOrder:
    """One order of one account. ``px`` is None for market orders.

    ``sz`` is in contracts (derivatives) or base currency (spot), except spot market
    orders with ``tgt_ccy == "quote_ccy"`` where it is a quote amount.
    """

    ord_id: str
    uid: str
    spec: InstrumentSpec
    side: str
    ord_type: str
    td_mode: str
    sz: Decimal
    px: Decimal | None
    c_time: int
    cl_ord_id: str = ""
    tag: str = ""
    tgt_ccy: str = ""
    pos_side: str = "net"
    reduce_only: bool = False
    stp_mode: str = "cancel_maker"
    lever: str = ""
    ccy: str = ""
    state: str = "live"
    acc_fill_sz: Decimal = ZERO
    acc_quote: Decimal = ZERO  # sum(px * sz) over fills, for avgPx
    fee: Decimal = ZERO
    fee_ccy: str = ""
    pnl: Decimal = ZERO
    u_time: int = 0
    cancel_source: str = ""
    amend_result: str = ""
    amend_source: str = ""
    req_id: str = ""
    frozen: Decimal = ZERO  # amount currently frozen for this order
    frozen_ccy: str = ""
    # the fill described by the latest update (orders channel semantics)
    fill_px: Decimal | None = None
    fill_sz: Decimal = ZERO
    fill_time: int | None = None
    fill_fee: Decimal = ZERO
    fill_pnl: Decimal = ZERO
    trade_id: str = ""
    exec_type: str = ""
    source: str = ""
    resting: Any = None  # the book's Resting entry while on the book

    @property
    def is_live(self) -> bool:
        """True while the order can still trade (live or partially filled)."""
        return self.state in LIVE_STATES

    @property
    def remaining(self) -> Decimal:
        """Size not yet filled (in the order's ``sz`` unit)."""
        return self.sz - self.acc_fill_sz if not self.quote_sized else self.sz - self.acc_quote

    @property
    def quote_sized(self) -> bool:
        """True for spot market orders whose ``sz`` is a quote-currency amount."""
        return self.spec.is_spot and self.ord_type == "market" and self.tgt_ccy == "quote_ccy"

    @property
    def avg_px(self) -> Decimal | None:
        """Average fill price, None before the first fill."""
        if self.acc_fill_sz <= 0:
            return None
        return self.acc_quote / self.acc_fill_sz

    def clear_fill(self) -> None:
        """Forget the per-update fill fields (the next push describes no fill)."""
        self.fill_px = None
        self.fill_sz = ZERO
        self.fill_time = None
        self.fill_fee = ZERO
        self.fill_pnl = ZERO
        self.trade_id = ""
        self.exec_type = ""

    def to_okx(self, *, ws: bool = False) -> dict[str, Any]:
        """The order as ``GET /api/v5/trade/order`` (or, with ``ws``, the orders channel)."""
        spec = self.spec
        avg = self.avg_px
        avg_s = "" if avg is None else fmt(avg.quantize(Decimal("1e-10")))
        out: dict[str, Any] = {
            "accFillSz": fmt(self.acc_fill_sz),
            "algoClOrdId": "",
            "algoId": "",
            "attachAlgoClOrdId": "",
            "attachAlgoOrds": [],
            "avgPx": avg_s,
            "cTime": str(self.c_time),
            "cancelSource": self.cancel_source,
            "cancelSourceReason": CANCEL_REASONS.get(self.cancel_source, ""),
            "category": "normal",
            "ccy": self.ccy,
            "clOrdId": self.cl_ord_id,
            "fee": fmt(self.fee),
            "feeCcy": self.fee_ccy,
            "fillPx": _s(self.fill_px),
            "fillSz": fmt(self.fill_sz),
            "fillTime": "" if self.fill_time is None else str(self.fill_time),
            "instId": spec.inst_id,
            "instType": spec.inst_type,
            "isTpLimit": "false",
            "lever": self.lever,
            "linkedAlgoOrd": {"algoId": ""},
            "ordId": self.ord_id,
            "ordType": self.ord_type,
            "pnl": fmt(self.pnl),
            "posSide": self.pos_side,
            "px": _s(self.px),
            "pxType": "",
            "pxUsd": "",
            "pxVol": "",
            "quickMgnType": "",
            "rebate": "0",
            "rebateCcy": spec.quote_ccy if spec.is_spot else spec.settle_ccy,
            "reduceOnly": "true" if self.reduce_only else "false",
            "side": self.side,
            "slOrdPx": "",
            "slTriggerPx": "",
            "slTriggerPxType": "",
            "source": self.source,
            "state": self.state,
            "stpId": "",
            "stpMode": self.stp_mode,
            "sz": fmt(self.sz),
            "tag": self.tag,
            "tdMode": self.td_mode,
            "tgtCcy": self.tgt_ccy,
            "tpOrdPx": "",
            "tpTriggerPx": "",
            "tpTriggerPxType": "",
            "tradeId": self.trade_id,
            "uTime": str(self.u_time),
        }
        if ws:
            out.update(
                {
                    "amendResult": self.amend_result,
                    "amendSource": self.amend_source,
                    "code": "0",
                    "msg": "",
                    "execType": self.exec_type,
                    "fillFee": fmt(self.fill_fee),
                    "fillFeeCcy": self.fee_ccy if self.fill_sz > 0 else "",
                    "fillPnl": fmt(self.fill_pnl),
                    "fillNotionalUsd": "",
                    "notionalUsd": "",
                    "reqId": self.req_id,
                }
            )
        return out


@attrs.frozen(kw_only=True)
class FillRecord:
    """One execution of one account's order (``GET /api/v5/trade/fills`` item)."""

    bill_id: str
    trade_id: str
    ord_id: str
    cl_ord_id: str
    tag: str
    spec: InstrumentSpec
    side: str
    pos_side: str
    fill_px: Decimal
    fill_sz: Decimal
    fee: Decimal
    fee_ccy: str
    fee_rate: Decimal
    pnl: Decimal
    exec_type: str
    ts: int

    def to_okx(self) -> dict[str, Any]:
        """The fill in OKX wire form."""
        return {
            "instType": self.spec.inst_type,
            "instId": self.spec.inst_id,
            "tradeId": self.trade_id,
            "ordId": self.ord_id,
            "clOrdId": self.cl_ord_id,
            "billId": self.bill_id,
            "subType": "1" if self.side == "buy" else "2",
            "tag": self.tag,
            "fillPx": fmt(self.fill_px),
            "fillSz": fmt(self.fill_sz),
            "fillIdxPx": fmt(self.fill_px),
            "fillPnl": fmt(self.pnl),
            "fillPxVol": "",
            "fillPxUsd": "",
            "fillMarkVol": "",
            "fillFwdPx": "",
            "fillMarkPx": fmt(self.fill_px) if self.spec.is_derivative else "",
            "side": self.side,
            "posSide": self.pos_side,
            "execType": self.exec_type,
            "feeCcy": self.fee_ccy,
            "fee": fmt(self.fee),
            "feeRate": fmt(self.fee_rate),
            "ts": str(self.ts),
            "fillTime": str(self.ts),
        }
