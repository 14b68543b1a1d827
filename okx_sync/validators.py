"""Checks of option and input values, shared by every public config object. Pure.

Each check takes the value and the ``name`` to put in the message, returns the value
in its canonical type, and raises :class:`~okx_sync.errors.ValidationError` (a
``ValueError``) for anything else. None of them coerces a string into a number or a
number into a bool: ``timeout="5"``, ``max_retries=2.0``, ``workers=True`` and
``demo=1`` are refused, so a typo in a config file fails where it is built rather
than deep inside a thread.

- :func:`seconds`: a duration — an ``int`` or ``float`` (not a ``bool``), finite,
  ``>= 0`` (``> 0`` with ``positive=True``); ``None`` too with ``optional=True``.
- :func:`count`: an ``int`` (not a ``bool``, not a ``float``) ``>= minimum``.
- :func:`real`: a finite ``int``/``float`` within ``[low, high]`` (each end optional,
  ``low_open`` excludes ``low``): ratios, multipliers.
- :func:`flag`: a ``bool``.
- :func:`short_text`: a short printable-ASCII text (a User-Agent part, a version, a commit).
- :func:`one_of`: one of a fixed set of strings; :func:`instance`: an object of a type.
- :func:`order_number`: a price or size for order entry as an exact ``Decimal``
  (``Decimal``, ``int`` or numeric ``str``; never a ``float`` or ``bool``), finite and
  within :data:`MAX_INTEGER_DIGITS` / :data:`MAX_FRACTION_DIGITS`.
- :func:`field`: an attrs validator running one of these checks with the
  attribute's name (``attrs.field(default=1.0, validator=field(seconds))``).

Thread safety: stateless functions; safe from any thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, overload

from .errors import ValidationError

__all__ = [
    "MAX_INTEGER_DIGITS",
    "MAX_FRACTION_DIGITS",
    "seconds",
    "count",
    "real",
    "flag",
    "one_of",
    "instance",
    "order_number",
    "plain",
    "field",
]

#: An order price or size has at most this many digits before the decimal point
#: (OKX's largest ``maxLmtSz`` has 16), so ``1e30`` is refused before sending.
MAX_INTEGER_DIGITS = 20
#: ... and at most this many significant digits after it (OKX's finest ``tickSz``
#: has 12), trailing zeros not counted.
MAX_FRACTION_DIGITS = 20


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@overload
def seconds(
    value: Any, *, name: str, positive: bool = False, optional: Literal[False] = False
) -> float: ...
@overload
def seconds(value: Any, *, name: str, positive: bool = False, optional: bool) -> float | None: ...
def seconds(
    value: Any, *, name: str, positive: bool = False, optional: bool = False
) -> float | None:
    """``value`` as float seconds; ValidationError unless it is a finite ``int``/``float``
    ``>= 0`` (``> 0`` when ``positive``), or None when ``optional``."""
    if value is None and optional:
        return None
    if not _is_real(value):
        raise ValidationError(
            f"{name} must be a number of seconds (int or float), got {type(value).__name__} "
            f"{value!r}"
        )
    if not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number of seconds, got {value!r}")
    if positive and not value > 0:
        raise ValidationError(f"{name} must be > 0 seconds, got {value!r}")
    if value < 0:
        raise ValidationError(f"{name} must be >= 0 seconds, got {value!r}")
    return float(value)


@overload
def count(value: Any, *, name: str, minimum: int = 1, optional: Literal[False] = False) -> int: ...
@overload
def count(value: Any, *, name: str, minimum: int = 1, optional: bool) -> int | None: ...
def count(value: Any, *, name: str, minimum: int = 1, optional: bool = False) -> int | None:
    """``value`` as an int ``>= minimum`` (or None when ``optional``); ValidationError for
    a ``bool``, a ``float`` (even ``2.0``), a string or a smaller int."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValidationError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def real(
    value: Any,
    *,
    name: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """``value`` as a float in ``[low, high]`` (``(low, high]`` when ``low_open``);
    ValidationError for a ``bool``, a string, NaN, an infinity or a value outside."""
    if not _is_real(value):
        raise ValidationError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number, got {value!r}")
    below = low is not None and (value <= low if low_open else value < low)
    if below or (high is not None and value > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        bounds = f"{'(' if low_open else '['}{lo}, {hi}]"
        raise ValidationError(f"{name} must be in {bounds}, got {value!r}")
    return float(value)


def flag(value: Any, *, name: str) -> bool:
    """``value`` itself when it is a ``bool``; ValidationError otherwise (``1``, ``"yes"``)."""
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return value


def instance(value: Any, *, name: str, kind: type, optional: bool = False) -> Any:
    """``value`` when it is a ``kind`` (or None when ``optional``); ValidationError
    otherwise (``gate={"max_concurrent": 5}`` where a RequestGateConfig is needed)."""
    if (value is None and optional) or isinstance(value, kind):
        return value
    raise ValidationError(f"{name} must be a {kind.__name__}, got {type(value).__name__} {value!r}")


def short_text(value: Any, *, name: str, max_len: int = 128, optional: bool = False) -> str | None:
    """A ``str`` of 1..``max_len`` printable ASCII characters (space to ``~``: safe in an
    HTTP header and a log line), or None with ``optional``."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a str, got {type(value).__name__}")
    if not 1 <= len(value) <= max_len or not all(" " <= c <= "~" for c in value):
        raise ValidationError(
            f"{name} must be 1..{max_len} printable ASCII characters, got {value[:60]!r}"
        )
    return value


def one_of(value: Any, *, name: str, choices: Collection[str]) -> str:
    """``value`` when it is one of ``choices``; ValidationError otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise ValidationError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def order_number(value: Any, *, name: str, positive: bool = False) -> Decimal:
    """A price or size of order entry as an exact, finite ``Decimal``.

    Takes a ``Decimal``, an ``int`` or a ``str`` holding a decimal number (``"1.5"``,
    ``"-1"``, ``"2e-3"``; surrounding blanks ignored). Raises ValidationError for a
    ``float`` (inexact: pass a Decimal or a str), a ``bool``, anything else, text that
    is not a number, NaN/Infinity, more than :data:`MAX_INTEGER_DIGITS` digits before
    the point or :data:`MAX_FRACTION_DIGITS` significant digits after it, and, with
    ``positive``, a value ``<= 0``.
    """
    if isinstance(value, bool):
        raise ValidationError(f"{name}: {value!r} is a bool, not a number")
    if isinstance(value, float):
        raise ValidationError(f"{name}: float {value!r} refused; pass a Decimal or a str")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        if value.bit_length() > 4 * MAX_INTEGER_DIGITS:  # cheap bound before str()
            raise ValidationError(_range_text(name, f"an int of {value.bit_length()} bits"))
        d = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 4 * (MAX_INTEGER_DIGITS + MAX_FRACTION_DIGITS) or "_" in text:
            raise ValidationError(f"{name}: {value[:60]!r} is not a number")
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise ValidationError(f"{name}: {value!r} is not a number") from None
    else:
        raise ValidationError(f"{name}: {type(value).__name__} is not a number")
    if not d.is_finite():
        raise ValidationError(f"{name}: {value!r} is not a finite number")
    if d.is_zero():
        d = Decimal(0)
    else:
        sign, digits, exponent = d.as_tuple()
        assert isinstance(exponent, int)  # finite
        stripped = len(digits)
        while stripped > 1 and digits[stripped - 1] == 0:
            stripped -= 1
        fraction = max(0, -(exponent + len(digits) - stripped))
        if d.adjusted() >= MAX_INTEGER_DIGITS or fraction > MAX_FRACTION_DIGITS:
            raise ValidationError(_range_text(name, repr(value)))
        if exponent < -MAX_FRACTION_DIGITS:  # only zeros beyond: keep the plain form short
            d = Decimal((sign, digits[:stripped], exponent + len(digits) - stripped))
    if positive and not d > 0:
        raise ValidationError(f"{name}: {value!r} must be a positive number")
    return d


def _range_text(name: str, shown: str) -> str:
    return (
        f"{name}: {shown[:60]} is out of range: at most {MAX_INTEGER_DIGITS} digits before "
        f"the decimal point and {MAX_FRACTION_DIGITS} after it"
    )


def plain(value: Decimal) -> str:
    """``value`` in plain decimal notation (``1E+3`` -> ``"1000"``), as OKX expects."""
    return format(value, "f")


def field(check: Callable[..., Any], **options: Any) -> Callable[[Any, Any, Any], None]:
    """An attrs validator that runs ``check(value, name=<attribute name>, **options)``."""

    def run(_inst: Any, attribute: Any, value: Any) -> None:
        check(value, name=attribute.name, **options)

    run.__doc__ = f"attrs validator: {check.__name__}({options or ''})"
    return run
