"""The server clock (``GET /api/v5/public/time``). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .base import opt_int, raw_field

__all__ = ["ServerTime"]


@attrs.frozen(kw_only=True)
class ServerTime:
    """OKX's clock: ``ts`` in Unix milliseconds. Thread safety: immutable."""

    ts: int
    raw: dict[str, Any] = raw_field()

    @classmethod
    def from_okx(cls, d: Mapping[str, Any]) -> ServerTime:
        """Build from the time item. Raises ValueError when ``ts`` is missing."""
        ts = opt_int(d.get("ts"))
        if ts is None:
            raise ValueError(f"server time without ts: {dict(d)!r}")
        return cls(ts=ts, raw=dict(d))
