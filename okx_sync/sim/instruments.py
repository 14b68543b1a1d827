"""The simulator's instrument catalogue: what ``GET /api/v5/public/instruments`` lists.

An :class:`InstrumentSpec` holds one instrument's trading rules (tick, lot, minimum
size, contract value ...) and its starting price for the market maker's random walk.
:func:`default_instruments` builds a small catalogue covering SPOT, SWAP, FUTURES and
OPTION; expiries are derived from the wall-clock time given, so the catalogue is a
pure function of ``(now_ms)``.

Thread safety: specs are immutable; the functions are pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from .numbers import D, fmt

__all__ = ["InstrumentSpec", "default_instruments", "resolve_instruments", "INST_TYPES"]

INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")


@attrs.frozen(kw_only=True)
class InstrumentSpec:
    """One simulated instrument.

    ``start_px`` is the market maker's first mid price. For derivatives, ``ct_val``
    (contract value, in ``ct_val_ccy``) and ``settle_ccy`` define margin and P&L;
    spot uses ``base_ccy``/``quote_ccy``. Thread safety: immutable.
    """

    inst_type: str
    inst_id: str
    inst_id_code: int
    tick_sz: Decimal
    lot_sz: Decimal
    min_sz: Decimal
    start_px: Decimal
    base_ccy: str = ""
    quote_ccy: str = ""
    settle_ccy: str = ""
    ct_val: Decimal = Decimal(1)
    ct_mult: Decimal = Decimal(1)
    ct_val_ccy: str = ""
    ct_type: str = ""
    inst_family: str = ""
    lever: str = ""
    exp_time: int | None = None
    opt_type: str = ""
    stk: str = ""
    alias: str = ""
    max_lmt_sz: Decimal = Decimal("1000000")
    max_mkt_sz: Decimal = Decimal("100000")
    list_time: int = 1_600_000_000_000
    maker_fee_rate: Decimal = Decimal("-0.0008")
    taker_fee_rate: Decimal = Decimal("-0.001")

    @property
    def is_spot(self) -> bool:
        """True for SPOT (and MARGIN) instruments: balances move, no positions."""
        return self.inst_type in ("SPOT", "MARGIN")

    @property
    def is_derivative(self) -> bool:
        """True for SWAP, FUTURES and OPTION: positions in contracts."""
        return not self.is_spot

    @property
    def fee_ccy_for_derivatives(self) -> str:
        """The currency fees and P&L are booked in for derivatives."""
        return self.settle_ccy

    @property
    def multiplier(self) -> Decimal:
        """Underlying quantity per contract (``ctVal * ctMult``; 1 for spot)."""
        return self.ct_val * self.ct_mult if self.is_derivative else Decimal(1)

    def to_okx(self) -> dict[str, Any]:
        """The instrument as ``GET /api/v5/public/instruments`` returns it (strings)."""
        deriv = self.is_derivative
        return {
            "alias": self.alias,
            "auctionEndTime": "",
            "baseCcy": self.base_ccy if not deriv else "",
            "category": "1",
            "contTdSwTime": "",
            "ctMult": fmt(self.ct_mult) if deriv else "",
            "ctType": self.ct_type,
            "ctVal": fmt(self.ct_val) if deriv else "",
            "ctValCcy": self.ct_val_ccy if deriv else "",
            "expTime": str(self.exp_time) if self.exp_time else "",
            "futureSettlement": False,
            "instFamily": self.inst_family,
            "instId": self.inst_id,
            "instIdCode": self.inst_id_code,
            "instType": self.inst_type,
            "lever": self.lever,
            "listTime": str(self.list_time),
            "lotSz": fmt(self.lot_sz),
            "maxIcebergSz": fmt(self.max_lmt_sz),
            "maxLmtAmt": "20000000",
            "maxLmtSz": fmt(self.max_lmt_sz),
            "maxMktAmt": "1000000" if not deriv else "",
            "maxMktSz": fmt(self.max_mkt_sz),
            "maxStopSz": fmt(self.max_mkt_sz),
            "maxTriggerSz": fmt(self.max_lmt_sz),
            "maxTwapSz": fmt(self.max_lmt_sz),
            "minSz": fmt(self.min_sz),
            "openType": "",
            "optType": self.opt_type,
            "quoteCcy": self.quote_ccy if not deriv else "",
            "ruleType": "normal",
            "settleCcy": self.settle_ccy if deriv else "",
            "state": "live",
            "stk": self.stk,
            "tickSz": fmt(self.tick_sz),
            "tradeQuoteCcyList": [self.quote_ccy] if not deriv else [],
            "uly": self.inst_family,
        }


def _last_friday_of_quarter(now: datetime) -> datetime:
    """08:00 UTC on the last Friday of the quarter after the one containing ``now``."""
    next_quarter = (now.month - 1) // 3 + 1
    end_month0 = next_quarter * 3 + 2  # 0-based month index from January of now.year
    year = now.year + end_month0 // 12
    month = end_month0 % 12 + 1
    following = datetime(year + month // 12, month % 12 + 1, 1, 8, tzinfo=UTC)
    day = following - timedelta(days=1)
    while day.weekday() != 4:
        day -= timedelta(days=1)
    return day


def _next_friday(now: datetime) -> datetime:
    """08:00 UTC on the Friday at least 7 days after ``now``."""
    day = (now + timedelta(days=7)).replace(hour=8, minute=0, second=0, microsecond=0)
    while day.weekday() != 4:
        day += timedelta(days=1)
    return day


def _spot(base: str, code: int, tick: str, lot: str, min_sz: str, px: str) -> InstrumentSpec:
    return InstrumentSpec(
        inst_type="SPOT",
        inst_id=f"{base}-USDT",
        inst_id_code=code,
        base_ccy=base,
        quote_ccy="USDT",
        tick_sz=D(tick),
        lot_sz=D(lot),
        min_sz=D(min_sz),
        start_px=D(px),
        max_lmt_sz=D("9999999999"),
        max_mkt_sz=D("1000000"),
    )


def _linear(
    base: str, code: int, suffix: str, ct_val: str, tick: str, lot: str, px: str, **extra: Any
) -> InstrumentSpec:
    extra.setdefault("max_mkt_sz", D("30000"))
    return InstrumentSpec(
        inst_type="SWAP" if suffix == "SWAP" else "FUTURES",
        inst_id=f"{base}-USDT-{suffix}",
        inst_id_code=code,
        settle_ccy="USDT",
        ct_val=D(ct_val),
        ct_val_ccy=base,
        ct_type="linear",
        inst_family=f"{base}-USDT",
        tick_sz=D(tick),
        lot_sz=D(lot),
        min_sz=D(lot),
        start_px=D(px),
        max_lmt_sz=D("100000000"),
        maker_fee_rate=D("-0.0002"),
        taker_fee_rate=D("-0.0005"),
        **extra,
    )


def _option(code: int, expiry: datetime, opt_type: str, px: str) -> InstrumentSpec:
    return InstrumentSpec(
        inst_type="OPTION",
        inst_id=f"BTC-USD-{expiry.strftime('%y%m%d')}-60000-{opt_type}",
        inst_id_code=code,
        settle_ccy="BTC",
        ct_val=D("1"),
        ct_mult=D("0.01"),
        ct_val_ccy="BTC",
        inst_family="BTC-USD",
        opt_type=opt_type,
        stk="60000",
        exp_time=int(expiry.timestamp() * 1000),
        tick_sz=D("0.0005"),
        lot_sz=D("1"),
        min_sz=D("1"),
        start_px=D(px),
        max_mkt_sz=D("5000"),
        maker_fee_rate=D("-0.0002"),
        taker_fee_rate=D("-0.0003"),
    )


def default_instruments(now_ms: int) -> list[InstrumentSpec]:
    """The default catalogue: 2 SPOT, 2 SWAP (linear), 1 FUTURES, 2 OPTION (call/put).

    Expiry dates derive from ``now_ms`` (ms since the epoch).
    """
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    fut = _last_friday_of_quarter(now)
    opt = _next_friday(now)
    return [
        _spot("BTC", 10001, "0.1", "0.00000001", "0.00001", "60000"),
        _spot("ETH", 10002, "0.01", "0.000001", "0.0001", "3000"),
        _linear("BTC", 10011, "SWAP", "0.01", "0.1", "0.01", "60000", lever="100"),
        _linear("ETH", 10012, "SWAP", "0.1", "0.01", "0.01", "3000", lever="100"),
        _linear(
            "BTC",
            10021,
            fut.strftime("%y%m%d"),
            "0.01",
            "0.1",
            "0.1",
            "60500",
            lever="50",
            alias="quarter",
            exp_time=int(fut.timestamp() * 1000),
            max_mkt_sz=D("10000"),
        ),
        _option(10031, opt, "C", "0.05"),
        _option(10032, opt, "P", "0.045"),
    ]


def resolve_instruments(
    wanted: Iterable[InstrumentSpec | str] | None, now_ms: int
) -> list[InstrumentSpec]:
    """Turn the ``instruments=`` argument into specs.

    ``None`` gives :func:`default_instruments`; strings pick instruments from the
    default catalogue by ``instId`` (``"FUTURES"``/``"OPTION"`` style type names pick
    every default instrument of that type); specs are used as given.
    Raises ``ValueError`` for an unknown id or duplicate ids / instIdCodes.
    """
    catalogue = default_instruments(now_ms)
    if wanted is None:
        return catalogue
    by_id = {s.inst_id: s for s in catalogue}
    out: list[InstrumentSpec] = []
    for item in wanted:
        if isinstance(item, InstrumentSpec):
            out.append(item)
        elif item in by_id:
            out.append(by_id[item])
        elif item in INST_TYPES:
            out.extend(s for s in catalogue if s.inst_type == item)
        else:
            known = ", ".join(sorted(by_id))
            raise ValueError(f"unknown simulator instrument {item!r}; known: {known}")
    _check_unique(out)
    return out


def _check_unique(specs: Sequence[InstrumentSpec]) -> None:
    ids = [s.inst_id for s in specs]
    codes = [s.inst_id_code for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate instrument ids in {ids}")
    if len(set(codes)) != len(codes):
        raise ValueError(f"duplicate instIdCodes in {codes}")
    if not specs:
        raise ValueError("the simulator needs at least one instrument")
