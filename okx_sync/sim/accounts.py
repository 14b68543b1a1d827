"""Simulated accounts: cash, order freezes, net-mode positions and their OKX shapes.

Economics (simple, self-consistent, documented rather than exact OKX risk maths):

- SPOT: a buy limit freezes ``px * sz`` quote; a sell freezes ``sz`` base. Fees are
  charged in the currency received.
- SWAP/FUTURES (linear, settled in ``settleCcy``): an order freezes
  ``px * sz * ctVal / lever``; a position holds ``|pos| * ctVal * mark / lever`` as
  initial margin; closing realises ``(px - avgPx) * qty * ctVal`` into cash.
- OPTION (settled in BTC): buying pays ``px * sz * ctVal * ctMult`` premium, selling
  receives it; short positions hold 15 % of the underlying as margin.

Thread safety: not thread-safe; the exchange lock protects accounts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import attrs

from .instruments import InstrumentSpec
from .numbers import ZERO, fmt
from .orders import FillRecord

__all__ = ["Account", "Position", "OPTION_SHORT_MARGIN"]

OPTION_SHORT_MARGIN = Decimal("0.15")

PriceFn = Callable[[str], Decimal]


def _q(value: Decimal) -> str:
    return fmt(value.quantize(Decimal("1e-10")))


@attrs.define(eq=False, slots=True)
class Position:
    """A net-mode position in one derivative instrument (``pos`` is signed contracts)."""

    spec: InstrumentSpec
    pos_id: str
    mgn_mode: str
    lever: Decimal
    c_time: int
    pos: Decimal = ZERO
    avg_px: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fee: Decimal = ZERO
    u_time: int = 0
    trade_id: str = ""

    def upl(self, mark: Decimal) -> Decimal:
        """Unrealised P&L in the settle currency at ``mark``."""
        if self.pos == 0:
            return ZERO
        return (mark - self.avg_px) * self.pos * self.spec.multiplier

    def imr(self, mark: Decimal) -> Decimal:
        """Initial margin held for the position, in the settle currency."""
        qty = abs(self.pos) * self.spec.multiplier
        if self.spec.inst_type == "OPTION":
            return qty * OPTION_SHORT_MARGIN if self.pos < 0 else ZERO
        return qty * mark / self.lever if self.lever > 0 else ZERO

    def to_okx(self, mark: Decimal, usd: Decimal) -> dict[str, Any]:
        """The position as ``GET /api/v5/account/positions`` shows it."""
        spec = self.spec
        upl = self.upl(mark)
        imr = self.imr(mark)
        notional = abs(self.pos) * spec.multiplier * mark
        margin_base = abs(self.pos) * spec.multiplier * self.avg_px
        ratio = upl / (margin_base / self.lever) if margin_base > 0 and self.lever > 0 else ZERO
        return {
            "adl": "1",
            "availPos": fmt(abs(self.pos)) if self.mgn_mode == "isolated" else "",
            "avgPx": _q(self.avg_px) if self.pos != 0 else "",
            "baseBal": "",
            "bePx": _q(self.avg_px) if self.pos != 0 else "",
            "cTime": str(self.c_time),
            "ccy": spec.settle_ccy,
            "deltaBS": "",
            "deltaPA": "",
            "fee": _q(self.fee),
            "fundingFee": "0",
            "gammaBS": "",
            "gammaPA": "",
            "idxPx": _q(mark),
            "imr": _q(imr) if self.mgn_mode == "cross" else "",
            "instId": spec.inst_id,
            "instType": spec.inst_type,
            "interest": "",
            "last": _q(mark),
            "lever": fmt(self.lever),
            "liab": "",
            "liabCcy": "",
            "liqPenalty": "0",
            "liqPx": "",
            "margin": _q(imr) if self.mgn_mode == "isolated" else "",
            "markPx": _q(mark),
            "mgnMode": self.mgn_mode,
            "mgnRatio": "",
            "mmr": _q(imr / 2),
            "notionalUsd": _q(notional * usd),
            "optVal": "",
            "pendingCloseOrdLiabVal": "",
            "pnl": _q(self.realized_pnl),
            "pos": fmt(self.pos),
            "posCcy": "",
            "posId": self.pos_id,
            "posSide": "net",
            "quoteBal": "",
            "realizedPnl": _q(self.realized_pnl + self.fee),
            "thetaBS": "",
            "thetaPA": "",
            "tradeId": self.trade_id,
            "uTime": str(self.u_time),
            "upl": _q(upl),
            "uplLastPx": _q(upl),
            "uplRatio": _q(ratio),
            "uplRatioLastPx": _q(ratio),
            "usdPx": _q(usd),
            "vegaBS": "",
            "vegaPA": "",
        }


@attrs.define(eq=False)
class Account:
    """One trading account (a live or a demo API key maps to one)."""

    uid: str
    demo: bool
    label: str
    cash: dict[str, Decimal] = attrs.field(factory=dict)
    frozen: dict[str, Decimal] = attrs.field(factory=dict)
    positions: dict[str, Position] = attrs.field(factory=dict)
    leverage: dict[tuple[str, str], Decimal] = attrs.field(factory=dict)
    funding: dict[str, Decimal] = attrs.field(factory=dict)
    ccy_u_time: dict[str, int] = attrs.field(factory=dict)
    fills: list[FillRecord] = attrs.field(factory=list)

    def add_cash(self, ccy: str, amount: Decimal, ts: int) -> None:
        """Change a cash balance (negative to debit)."""
        self.cash[ccy] = self.cash.get(ccy, ZERO) + amount
        self.ccy_u_time[ccy] = ts

    def freeze(self, ccy: str, amount: Decimal, ts: int) -> None:
        """Move ``amount`` into (or, negative, out of) the order freeze of ``ccy``."""
        value = self.frozen.get(ccy, ZERO) + amount
        self.frozen[ccy] = value if value > Decimal("1e-18") else ZERO
        self.ccy_u_time[ccy] = ts

    def margin_held(self, ccy: str, mark: PriceFn) -> Decimal:
        """Initial margin of positions settled in ``ccy``."""
        return sum(
            (
                p.imr(mark(p.spec.inst_id))
                for p in self.positions.values()
                if p.spec.settle_ccy == ccy and p.pos != 0
            ),
            ZERO,
        )

    def upl(self, ccy: str, mark: PriceFn) -> Decimal:
        """Unrealised P&L of positions settled in ``ccy``."""
        return sum(
            (
                p.upl(mark(p.spec.inst_id))
                for p in self.positions.values()
                if p.spec.settle_ccy == ccy and p.pos != 0
            ),
            ZERO,
        )

    def available(self, ccy: str, mark: PriceFn) -> Decimal:
        """Cash that new orders may use: cash - order freezes - position margin."""
        return self.cash.get(ccy, ZERO) - self.frozen.get(ccy, ZERO) - self.margin_held(ccy, mark)

    def currencies(self) -> list[str]:
        """Currencies with any balance, freeze or position, sorted."""
        ccys = {c for c, v in self.cash.items() if v != 0}
        ccys |= {c for c, v in self.frozen.items() if v != 0}
        ccys |= {p.spec.settle_ccy for p in self.positions.values() if p.pos != 0}
        return sorted(ccys)

    def balance_detail(self, ccy: str, mark: PriceFn, usd: PriceFn, ts: int) -> dict[str, Any]:
        """One ``details[]`` item of ``GET /api/v5/account/balance``."""
        cash = self.cash.get(ccy, ZERO)
        ord_frozen = self.frozen.get(ccy, ZERO)
        imr = self.margin_held(ccy, mark)
        upl = self.upl(ccy, mark)
        eq = cash + upl
        frozen = ord_frozen + imr
        px = usd(ccy)
        return {
            "accAvgPx": "",
            "availBal": _q(cash - frozen),
            "availEq": _q(eq - frozen),
            "borrowFroz": "",
            "cashBal": _q(cash),
            "ccy": ccy,
            "clSpotInUseAmt": "",
            "collateralEnabled": False,
            "crossLiab": "",
            "disEq": _q(eq * px),
            "eq": _q(eq),
            "eqUsd": _q(eq * px),
            "fixedBal": "0",
            "frozenBal": _q(frozen),
            "imr": _q(imr),
            "interest": "",
            "isoEq": "0",
            "isoLiab": "",
            "isoUpl": "0",
            "liab": "",
            "maxLoan": "",
            "mgnRatio": "",
            "mmr": _q(imr / 2),
            "notionalLever": "0",
            "ordFrozen": _q(ord_frozen),
            "rewardBal": "0",
            "smtSyncEq": "0",
            "spotBal": "",
            "spotInUseAmt": "",
            "spotIsoBal": "0",
            "stgyEq": "0",
            "twap": "0",
            "uTime": str(self.ccy_u_time.get(ccy, ts)),
            "upl": _q(upl),
            "uplLiab": "",
        }

    def balance(
        self, ccys: Iterable[str] | None, mark: PriceFn, usd: PriceFn, ts: int
    ) -> dict[str, Any]:
        """``data[0]`` of ``GET /api/v5/account/balance`` for ``ccys`` (None: all)."""
        wanted = self.currencies() if ccys is None else list(ccys)
        details = [self.balance_detail(c, mark, usd, ts) for c in wanted]
        total = sum((Decimal(d["eqUsd"]) for d in details), ZERO)
        imr = sum((Decimal(d["imr"]) * usd(d["ccy"]) for d in details), ZERO)
        return {
            "adjEq": _q(total),
            "availEq": _q(total - imr),
            "borrowFroz": "",
            "details": details,
            "imr": _q(imr),
            "isoEq": "0",
            "mgnRatio": "",
            "mmr": _q(imr / 2),
            "notionalUsd": "",
            "notionalUsdForBorrow": "",
            "notionalUsdForFutures": "",
            "notionalUsdForOption": "",
            "notionalUsdForSwap": "",
            "ordFroz": "",
            "totalEq": _q(total),
            "uTime": str(ts),
            "upl": "",
        }
