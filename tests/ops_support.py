"""Helpers shared by the ops tests (safe mode, reconciliation): passive orders far from the
market, so they rest on the simulator's book until cancelled."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

INST = "BTC-USDT"


def far_px(sim: Any, client: Any, inst_id: str = INST) -> Decimal:
    """A bid 20 % under the simulator's best bid, on the instrument's tick."""
    best = Decimal(sim.exchange.book(inst_id).bids[0][0])
    return client.round_price(inst_id, best * Decimal("0.8"))


def order_kw(px: Decimal, **extra: Any) -> dict[str, Any]:
    """Keywords of a small passive spot limit buy of BTC-USDT at ``px``."""
    return dict(
        inst_id=INST, td_mode="cash", side="buy", ord_type="limit", sz="0.01", px=px, **extra
    )
