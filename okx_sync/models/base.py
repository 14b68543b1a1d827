"""Field conversion shared by every model. Pure.

OKX sends every value as a string; "" means "not set". Models turn prices and
sizes into ``Decimal``, counts and timestamps into ``int``, flags into ``bool``
and ``""`` into ``None``, and keep the original dict as ``raw``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["dec", "opt_int", "opt_str", "opt_bool", "raw_field"]


def dec(value: Any) -> Decimal | None:
    """``Decimal`` of an OKX numeric string; None for "", None or an unparsable value."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def opt_int(value: Any) -> int | None:
    """``int`` of an OKX integer string (timestamps, counts); None for ""/None."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(Decimal(str(value)))
        except InvalidOperation:
            return None


def opt_str(value: Any) -> str | None:
    """The string, or None for ""/None."""
    if value is None or value == "":
        return None
    return str(value)


def opt_bool(value: Any) -> bool | None:
    """``"true"``/``True`` -> True, ``"false"``/``False`` -> False, ""/None -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    return str(value).lower() == "true"


def raw_field() -> Any:
    """An attrs field holding the original OKX dict (excluded from eq/repr)."""
    import attrs

    return attrs.field(factory=dict, eq=False, repr=False)

