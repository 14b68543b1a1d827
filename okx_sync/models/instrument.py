"""Instruments (``GET /api/v5/public/instruments``, ``GET /api/v5/account/instruments``). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from .base import bool_field, dec_field, field_values, int_field, raw_field, str_field

__all__ = ["Instrument"]


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
