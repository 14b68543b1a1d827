"""Account objects: balance, positions, account configuration, order rate limit. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from .base import bool_field, dec_field, field_values, int_field, raw_field, str_field

__all__ = ["BalanceDetail", "Balance", "Position", "AccountConfig", "AccountRateLimit"]


@attrs.frozen(kw_only=True)
class BalanceDetail:
    """One currency of a balance: an item of ``details`` of ``GET /api/v5/account/balance``,
    or one item of the funding balance ``GET /api/v5/asset/balances`` (which fills
    ``bal``, ``avail_bal`` and ``frozen_bal``). Thread safety: immutable.
    """

    ccy: str | None = str_field()
    eq: Decimal | None = dec_field()
    cash_bal: Decimal | None = dec_field()
    bal: Decimal | None = dec_field()
    avail_bal: Decimal | None = dec_field()
    avail_eq: Decimal | None = dec_field()
    frozen_bal: Decimal | None = dec_field()
    ord_frozen: Decimal | None = dec_field()
    fixed_bal: Decimal | None = dec_field()
    dis_eq: Decimal | None = dec_field()
    eq_usd: Decimal | None = dec_field()
    iso_eq: Decimal | None = dec_field()
    iso_upl: Decimal | None = dec_field()
    upl: Decimal | None = dec_field()
    upl_liab: Decimal | None = dec_field()
    liab: Decimal | None = dec_field()
    cross_liab: Decimal | None = dec_field()
    iso_liab: Decimal | None = dec_field()
    interest: Decimal | None = dec_field()
    max_loan: Decimal | None = dec_field()
    imr: Decimal | None = dec_field()
    mmr: Decimal | None = dec_field()
    mgn_ratio: Decimal | None = dec_field()
    notional_lever: Decimal | None = dec_field()
    stgy_eq: Decimal | None = dec_field()
    reward_bal: Decimal | None = dec_field()
    spot_iso_bal: Decimal | None = dec_field()
    spot_bal: Decimal | None = dec_field()
    open_avg_px: Decimal | None = dec_field()
    acc_avg_px: Decimal | None = dec_field()
    spot_upl: Decimal | None = dec_field()
    total_pnl: Decimal | None = dec_field()
    twap: str | None = str_field()
    collateral_enabled: bool | None = bool_field()
    u_time: int | None = int_field()
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> BalanceDetail:
        """Build from one currency item; keeps it as ``raw``."""
        return cls(**field_values(cls, d), raw=dict(d))


@attrs.frozen(kw_only=True)
class Balance:
    """The trading account balance (``GET /api/v5/account/balance``): account-level
    figures in USD plus one :class:`BalanceDetail` per currency in ``details``.

    Thread safety: immutable.
    """

    u_time: int | None = int_field()
    total_eq: Decimal | None = dec_field()
    iso_eq: Decimal | None = dec_field()
    adj_eq: Decimal | None = dec_field()
    avail_eq: Decimal | None = dec_field()
    ord_froz: Decimal | None = dec_field()
    imr: Decimal | None = dec_field()
    mmr: Decimal | None = dec_field()
    borrow_froz: Decimal | None = dec_field()
    mgn_ratio: Decimal | None = dec_field()
    notional_usd: Decimal | None = dec_field()
    upl: Decimal | None = dec_field()
    details: tuple[BalanceDetail, ...] = attrs.field(default=(), metadata={"okx": "details"})
    raw: dict[str, Any] = raw_field()

    def detail(self, ccy: str) -> BalanceDetail | None:
        """The details item of ``ccy``, or None."""
        for d in self.details:
            if d.ccy == ccy:
                return d
        return None

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> Balance:
        """Build from one balance item; keeps it as ``raw``."""
        return cls(
            **field_values(cls, d),
            details=tuple(BalanceDetail.from_okx(x) for x in d.get("details") or ()),
            raw=dict(d),
        )


@attrs.frozen(kw_only=True)
class Position:
    """One position (``GET /api/v5/account/positions``) or one closed/updated position
    record (``GET /api/v5/account/positions-history``, which fills the ``open_*`` /
    ``close_*`` fields). Thread safety: immutable.
    """

    inst_type: str | None = str_field()
    inst_id: str | None = str_field()
    uly: str | None = str_field()
    mgn_mode: str | None = str_field()
    pos_id: str | None = str_field()
    pos_side: str | None = str_field()
    direction: str | None = str_field()
    pos: Decimal | None = dec_field()
    pos_ccy: str | None = str_field()
    avail_pos: Decimal | None = dec_field()
    avg_px: Decimal | None = dec_field()
    mark_px: Decimal | None = dec_field()
    last: Decimal | None = dec_field()
    idx_px: Decimal | None = dec_field()
    upl: Decimal | None = dec_field()
    upl_ratio: Decimal | None = dec_field()
    lever: Decimal | None = dec_field()
    liq_px: Decimal | None = dec_field()
    imr: Decimal | None = dec_field()
    margin: Decimal | None = dec_field()
    mgn_ratio: Decimal | None = dec_field()
    mmr: Decimal | None = dec_field()
    liab: Decimal | None = dec_field()
    liab_ccy: str | None = str_field()
    interest: Decimal | None = dec_field()
    notional_usd: Decimal | None = dec_field()
    adl: str | None = str_field()
    ccy: str | None = str_field()
    trade_id: str | None = str_field()
    realized_pnl: Decimal | None = dec_field()
    pnl: Decimal | None = dec_field()
    pnl_ratio: Decimal | None = dec_field()
    fee: Decimal | None = dec_field()
    funding_fee: Decimal | None = dec_field()
    liq_penalty: Decimal | None = dec_field()
    open_avg_px: Decimal | None = dec_field()
    close_avg_px: Decimal | None = dec_field()
    open_max_pos: Decimal | None = dec_field()
    close_total_pos: Decimal | None = dec_field()
    trigger_px: Decimal | None = dec_field()
    type: str | None = str_field()
    c_time: int | None = int_field()
    u_time: int | None = int_field()
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> Position:
        """Build from one positions item; keeps it as ``raw``."""
        return cls(**field_values(cls, d), raw=dict(d))


@attrs.frozen(kw_only=True)
class AccountConfig:
    """Account configuration (``GET /api/v5/account/config``): account mode
    (``acct_lv``), position mode (``pos_mode``), permissions and more; everything else
    OKX returns is in ``raw``. Thread safety: immutable.
    """

    uid: str | None = str_field()
    main_uid: str | None = str_field()
    acct_lv: str | None = str_field()
    acct_stp_mode: str | None = str_field()
    pos_mode: str | None = str_field()
    auto_loan: bool | None = bool_field()
    greeks_type: str | None = str_field()
    level: str | None = str_field()
    level_tmp: str | None = str_field()
    ct_iso_mode: str | None = str_field()
    mgn_iso_mode: str | None = str_field()
    role_type: str | None = str_field()
    spot_role_type: str | None = str_field()
    label: str | None = str_field()
    perm: str | None = str_field()
    ip: str | None = str_field()
    kyc_lv: str | None = str_field()
    type: str | None = str_field()
    settle_ccy: str | None = str_field()
    fee_type: str | None = str_field()
    enable_spot_borrow: bool | None = bool_field()
    spot_borrow_auto_repay: bool | None = bool_field()
    liquidation_gear: str | None = str_field()
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> AccountConfig:
        """Build from the config item; keeps it as ``raw``."""
        return cls(**field_values(cls, d), raw=dict(d))


@attrs.frozen(kw_only=True)
class AccountRateLimit:
    """The sub-account order rate limit (``GET /api/v5/trade/account-rate-limit``):
    ``acc_rate_limit`` new+amend orders per 2 s, the fill ratios it is derived from, and
    the limit that applies next. Thread safety: immutable.
    """

    acc_rate_limit: int | None = int_field()
    fill_ratio: Decimal | None = dec_field()
    main_fill_ratio: Decimal | None = dec_field()
    next_acc_rate_limit: int | None = int_field()
    ts: int | None = int_field()
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> AccountRateLimit:
        """Build from the rate-limit item; keeps it as ``raw``."""
        return cls(**field_values(cls, d), raw=dict(d))
