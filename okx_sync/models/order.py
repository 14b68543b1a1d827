"""Order-entry acknowledgements (one item of a place/cancel/amend response). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .base import opt_int, opt_str, raw_field

__all__ = ["OrderAck"]


@attrs.frozen(kw_only=True)
class OrderAck:
    """One item of an order-entry response (REST or WS): the per-order result.

    ``s_code == "0"`` means OKX accepted the request for this order; for cancel
    and amend it is only an acknowledgement, the final state comes from the
    orders channel or an order query. ``ok`` is that test. Thread safety: immutable.
    """

    ord_id: str | None
    cl_ord_id: str | None
    tag: str | None
    ts: int | None
    s_code: str
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
            s_code=str(d.get("sCode", "0") or "0"),
            s_msg=str(d.get("sMsg", "") or ""),
            sub_code=opt_str(d.get("subCode")),
            req_id=opt_str(d.get("reqId")),
            raw=dict(d),
        )
