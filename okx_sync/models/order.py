"""Orders: order-entry acknowledgements (``OrderAck``), orders (``Order``), fills (``Fill``). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from .base import (
    bool_field,
    dec_field,
    field_values,
    int_field,
    opt_int,
    opt_str,
    raw_field,
    str_field,
)

__all__ = ["OrderAck", "Order", "Fill"]


@attrs.frozen(kw_only=True)
class OrderAck:
    """One item of an order-entry response (REST or WS): the per-order result.

    ``s_code == "0"`` means OKX accepted the request for this order; for cancel
    and amend it is only an acknowledgement, the final state comes from the
    orders channel or an order query. ``ok`` is that test. OKX sends an sCode in
    every item; an item without one (missing or empty) is malformed and says
    nothing about the order: ``s_code`` is None and ``ok`` is False (it is never
    read as success; resolve such an order by its clOrdId). Thread safety: immutable.
    """

    ord_id: str | None
    cl_ord_id: str | None
    tag: str | None
    ts: int | None
    s_code: str | None
    s_msg: str
    sub_code: str | None
    req_id: str | None = None
    raw: dict[str, Any] = raw_field()

    @property
    def ok(self) -> bool:
        """True when this order's sCode is "0"."""
        return self.s_code == "0"

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> OrderAck:
        """Build from one OKX ``data`` item; keeps it as ``raw``."""
        return cls(
            ord_id=opt_str(d.get("ordId")),
            cl_ord_id=opt_str(d.get("clOrdId")),
            tag=opt_str(d.get("tag")),
            ts=opt_int(d.get("ts")),
            s_code=opt_str(d.get("sCode")),
            s_msg=str(d.get("sMsg", "") or ""),
            sub_code=opt_str(d.get("subCode")),
            req_id=opt_str(d.get("reqId")),
            raw=dict(d),
        )


@attrs.frozen(kw_only=True)
class Order:
    """One order (``GET /api/v5/trade/order``, ``orders-pending``, ``orders-history``,
    ``orders-history-archive``). ``attach_algo_ords`` keeps OKX's dicts unchanged.

    Thread safety: immutable.
    """

    inst_type: str | None = str_field()
    inst_id: str | None = str_field()
    ord_id: str | None = str_field()
    cl_ord_id: str | None = str_field()
    tag: str | None = str_field()
    ccy: str | None = str_field()
    px: Decimal | None = dec_field()
    px_usd: Decimal | None = dec_field()
    px_vol: Decimal | None = dec_field()
    px_type: str | None = str_field()
    sz: Decimal | None = dec_field()
    ord_type: str | None = str_field()
    side: str | None = str_field()
    pos_side: str | None = str_field()
    td_mode: str | None = str_field()
    tgt_ccy: str | None = str_field()
    acc_fill_sz: Decimal | None = dec_field()
    fill_px: Decimal | None = dec_field()
    fill_sz: Decimal | None = dec_field()
    fill_time: int | None = int_field()
    trade_id: str | None = str_field()
    avg_px: Decimal | None = dec_field()
    state: str | None = str_field()
    lever: Decimal | None = dec_field()
    fee: Decimal | None = dec_field()
    fee_ccy: str | None = str_field()
    rebate: Decimal | None = dec_field()
    rebate_ccy: str | None = str_field()
    pnl: Decimal | None = dec_field()
    category: str | None = str_field()
    source: str | None = str_field()
    reduce_only: bool | None = bool_field()
    is_tp_limit: bool | None = bool_field()
    cancel_source: str | None = str_field()
    cancel_source_reason: str | None = str_field()
    quick_mgn_type: str | None = str_field()
    stp_id: str | None = str_field()
    stp_mode: str | None = str_field()
    algo_id: str | None = str_field()
    algo_cl_ord_id: str | None = str_field()
    attach_algo_cl_ord_id: str | None = str_field()
    tp_trigger_px: Decimal | None = dec_field()
    tp_trigger_px_type: str | None = str_field()
    tp_ord_px: Decimal | None = dec_field()
    sl_trigger_px: Decimal | None = dec_field()
    sl_trigger_px_type: str | None = str_field()
    sl_ord_px: Decimal | None = dec_field()
    req_id: str | None = str_field()
    amend_result: str | None = str_field()
    c_time: int | None = int_field()
    u_time: int | None = int_field()
    attach_algo_ords: tuple[dict[str, Any], ...] = attrs.field(
        default=(), metadata={"okx": "attachAlgoOrds"}
    )
    raw: dict[str, Any] = raw_field()

    @property
    def is_live(self) -> bool:
        """True while the order can still fill (``live`` or ``partially_filled``)."""
        return self.state in ("live", "partially_filled")

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> Order:
        """Build from one order item; keeps it as ``raw``."""
        return cls(
            **field_values(cls, d),
            attach_algo_ords=tuple(dict(x) for x in d.get("attachAlgoOrds") or ()),
            raw=dict(d),
        )


@attrs.frozen(kw_only=True)
class Fill:
    """One fill of the account (``GET /api/v5/trade/fills`` / ``fills-history``).

    ``fee`` is negative for a charge, positive for a rebate. Thread safety: immutable.
    """

    inst_type: str | None = str_field()
    inst_id: str | None = str_field()
    trade_id: str | None = str_field()
    ord_id: str | None = str_field()
    cl_ord_id: str | None = str_field()
    bill_id: str | None = str_field()
    sub_type: str | None = str_field()
    tag: str | None = str_field()
    fill_px: Decimal | None = dec_field()
    fill_sz: Decimal | None = dec_field()
    fill_idx_px: Decimal | None = dec_field()
    fill_pnl: Decimal | None = dec_field()
    fill_mark_px: Decimal | None = dec_field()
    side: str | None = str_field()
    pos_side: str | None = str_field()
    exec_type: str | None = str_field()
    fee_ccy: str | None = str_field()
    fee: Decimal | None = dec_field()
    fill_time: int | None = int_field()
    ts: int | None = int_field()
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> Fill:
        """Build from one fill item; keeps it as ``raw``."""
        return cls(**field_values(cls, d), raw=dict(d))
