"""Instruments (``GET /api/v5/public/instruments``, ``GET /api/v5/account/instruments``). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Any

import attrs

from ..errors import InstrumentRuleError, ValidationError
from ..validators import order_number
from .base import bool_field, dec_field, field_values, int_field, raw_field, str_field

__all__ = ["Instrument", "exact_context", "fmt_decimal", "snap_to_step", "check_min_size"]

#: Instrument types whose ``sz`` is already in base currency (no contracts).
COIN_SIZED_TYPES = frozenset({"SPOT", "MARGIN"})
_ROUNDINGS = frozenset({ROUND_DOWN, ROUND_UP, ROUND_HALF_UP})


# Exact arithmetic for the grid checks: a 20+20-digit value divided by a 20-digit step
# needs more than the default 28 digits (``Decimal("1e19") % Decimal("1e-12")`` would
# raise InvalidOperation in the default context). A new Context per use: a Context
# records flags, so a shared one would be shared mutable state.
def exact_context() -> Context:
    """A fresh 100-digit ``decimal.Context`` trapping invalid/zero-division/overflow. Pure."""
    return Context(prec=100, traps=[InvalidOperation, DivisionByZero, Overflow])


def fmt_decimal(d: Decimal | None) -> str:
    """``d`` as plain text without exponent or trailing zeros ("" for None). Pure."""
    return "" if d is None else format(d.normalize(exact_context()), "f")


def snap_to_step(value: Decimal, step: Decimal | None, rounding: str) -> Decimal:
    """``value`` on the grid of ``step`` (unchanged without a positive step), rounded
    with the ``decimal`` rounding mode ``rounding``. Pure."""
    if step is None or step <= 0:
        return value
    units = exact_context().divide(value, step).to_integral_value(rounding=rounding)
    return exact_context().multiply(units, step)


def check_min_size(inst: Instrument, sz: Decimal) -> None:
    """Raise ``InstrumentRuleError(rule="minSz")`` when ``sz`` is below ``inst.min_sz``.
    Pure."""
    if inst.min_sz is not None and sz < inst.min_sz:
        raise InstrumentRuleError(
            f"{inst.inst_id}: size {fmt_decimal(sz)} is below minSz {fmt_decimal(inst.min_sz)} "
            "(instrument rule minSz)",
            inst_id=inst.inst_id or "",
            rule="minSz",
            value=fmt_decimal(sz),
            limit=fmt_decimal(inst.min_sz),
        )


@attrs.frozen(kw_only=True)
class Instrument:
    """One tradable instrument and its trading rules.

    The rules the order validation uses are ``tick_sz`` (price increment), ``lot_sz``
    (size increment), ``min_sz`` (smallest size) and ``max_lmt_sz`` / ``max_mkt_sz``
    (largest limit / market order size). Sizes are in contracts for derivatives and in
    base currency for SPOT/MARGIN. ``inst_id_code`` is the numeric id WebSocket order
    entry may use instead of ``instId`` (None when OKX has not assigned one).
    Thread safety: immutable.
    """

    inst_type: str | None = str_field()
    inst_id: str | None = str_field()
    uly: str | None = str_field()
    inst_family: str | None = str_field()
    series_id: str | None = str_field()
    base_ccy: str | None = str_field()
    quote_ccy: str | None = str_field()
    settle_ccy: str | None = str_field()
    ct_val: Decimal | None = dec_field()
    ct_mult: Decimal | None = dec_field()
    ct_val_ccy: str | None = str_field()
    ct_type: str | None = str_field()
    opt_type: str | None = str_field()
    stk: Decimal | None = dec_field()
    list_time: int | None = int_field()
    exp_time: int | None = int_field()
    auction_end_time: int | None = int_field()
    cont_td_sw_time: int | None = int_field()
    pre_mkt_sw_time: int | None = int_field()
    open_type: str | None = str_field()
    lever: Decimal | None = dec_field()
    tick_sz: Decimal | None = dec_field()
    lot_sz: Decimal | None = dec_field()
    min_sz: Decimal | None = dec_field()
    max_lmt_sz: Decimal | None = dec_field()
    max_mkt_sz: Decimal | None = dec_field()
    max_lmt_amt: Decimal | None = dec_field()
    max_mkt_amt: Decimal | None = dec_field()
    max_twap_sz: Decimal | None = dec_field()
    max_iceberg_sz: Decimal | None = dec_field()
    max_trigger_sz: Decimal | None = dec_field()
    max_stop_sz: Decimal | None = dec_field()
    state: str | None = str_field()
    rule_type: str | None = str_field()
    alias: str | None = str_field()
    category: str | None = str_field()
    group_id: str | None = str_field()
    inst_category: str | None = str_field()
    future_settlement: bool | None = bool_field()
    inst_id_code: int | None = int_field()
    trade_quote_ccy_list: tuple[str, ...] = attrs.field(
        default=(), metadata={"okx": "tradeQuoteCcyList"}
    )
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> Instrument:
        """Build from one item of an instruments response; keeps it as ``raw``."""
        quotes = d.get("tradeQuoteCcyList") or ()
        return cls(
            **field_values(cls, d),
            trade_quote_ccy_list=tuple(str(q) for q in quotes),
            raw=dict(d),
        )

    def _contract_value(self) -> Decimal | None:
        """``ctVal * ctMult`` (ctMult 1 when unset); None for SPOT/MARGIN. Raises
        ValidationError for a derivative without a positive ctVal/ctMult."""
        if self.inst_type in COIN_SIZED_TYPES:
            return None
        mult = self.ct_mult if self.ct_mult is not None else Decimal(1)
        if self.ct_val is None or self.ct_val <= 0 or mult <= 0:
            raise ValidationError(
                f"{self.inst_id}: no contract value (ctVal={fmt_decimal(self.ct_val)!r}, "
                f"ctMult={fmt_decimal(self.ct_mult)!r}, instType={self.inst_type!r}); "
                "cannot convert between contracts and coin"
            )
        return exact_context().multiply(self.ct_val, mult)

    def contracts_to_coin(self, sz: Any) -> Decimal:
        """The quantity ``sz`` contracts stand for: ``sz * ctVal * ctMult``, in
        ``ct_val_ccy`` units (the base coin of a linear contract, e.g. BTC for
        BTC-USDT-SWAP; USD for an inverse one such as BTC-USD-SWAP).

        SPOT/MARGIN: identity (their ``sz`` is already in base currency). Raises
        ValidationError when ``sz`` is not a number >= 0 (see
        :func:`okx_sync.validators.order_number`) or a derivative has no ``ctVal``.
        Pure; thread safety: immutable.
        """
        n = order_number(sz, name="sz")
        if n < 0:
            raise ValidationError(f"sz: {sz!r} is negative")
        value = self._contract_value()
        return n if value is None else exact_context().multiply(n, value)

    def coin_to_contracts(self, qty: Any, *, rounding: str = ROUND_DOWN) -> Decimal:
        """The ``sz`` (contracts) for ``qty`` in ``ct_val_ccy`` units:
        ``qty / (ctVal * ctMult)`` snapped onto the ``lotSz`` grid with ``rounding``
        (``decimal.ROUND_DOWN``, the default, never exceeds ``qty``; ``ROUND_UP``,
        ``ROUND_HALF_UP``).

        SPOT/MARGIN: ``qty`` is already the base-currency ``sz``; it is only snapped
        onto ``lotSz``. Raises ValidationError for a ``qty`` that is not a number > 0,
        an unknown ``rounding`` or a derivative without ``ctVal``, and
        ``InstrumentRuleError(rule="minSz")`` when the result is below ``minSz`` (what
        order validation would refuse). Pure; thread safety: immutable.
        """
        if rounding not in _ROUNDINGS:
            raise ValidationError(
                f"rounding must be decimal.ROUND_DOWN, ROUND_UP or ROUND_HALF_UP, got {rounding!r}"
            )
        q = order_number(qty, name="qty", positive=True)
        value = self._contract_value()
        raw = q if value is None else exact_context().divide(q, value)
        sz = snap_to_step(raw, self.lot_sz, rounding)
        if sz <= 0:
            raise InstrumentRuleError(
                f"{self.inst_id}: {fmt_decimal(q)} rounds to {fmt_decimal(sz)} contracts "
                f"(lotSz {fmt_decimal(self.lot_sz)}; instrument rule minSz)",
                inst_id=self.inst_id or "",
                rule="minSz",
                value=fmt_decimal(sz),
                limit=fmt_decimal(self.min_sz),
            )
        check_min_size(self, sz)
        return sz
