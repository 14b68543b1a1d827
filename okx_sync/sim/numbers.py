"""Decimal helpers for the simulator: parse OKX number strings and print them back.

OKX sends prices and sizes as strings without trailing zeros (``"63921"``,
``"0.15455902"``). :func:`fmt` prints a Decimal that way, so a level's strings are
identical in a snapshot, in later updates and in the checksum. Pure functions.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation

__all__ = ["D", "fmt", "parse_decimal", "floor_to", "is_multiple"]

ZERO = Decimal(0)


def D(value: str | int | Decimal) -> Decimal:  # noqa: N802 - reads like a literal
    """``Decimal(value)``; a short spelling for literals."""
    return Decimal(value)


def fmt(value: Decimal) -> str:
    """The OKX spelling of a number: plain notation, no trailing zeros, ``"0"`` for zero."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def parse_decimal(value: object) -> Decimal | None:
    """A finite Decimal from an OKX string/number, or None when absent/empty/invalid."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return out if out.is_finite() else None


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded down to a multiple of ``step``."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """True when ``value`` is an exact multiple of ``step``."""
    if step <= 0:
        return True
    return (value % step) == 0
