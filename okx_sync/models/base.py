"""Field conversion shared by every model. Pure.

OKX sends every value as a string; "" means "not set". Models turn prices and
sizes into ``Decimal``, counts and timestamps into ``int``, flags into ``bool``
and ``""`` into ``None``, and keep the original dict as ``raw``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ..naming import to_okx

__all__ = [
    "dec",
    "opt_int",
    "opt_str",
    "opt_bool",
    "raw_field",
    "dec_field",
    "int_field",
    "str_field",
    "bool_field",
    "okx_name",
    "field_values",
    "mapped_keys",
]


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


# --- declarative fields -------------------------------------------------------
#
# Models declare each OKX field once: ``px: Decimal | None = dec_field()``. The OKX
# name is derived from the attribute name with the package's one name mapping
# (``okx_sync.naming.to_okx``: ``ask_px`` -> ``askPx``) unless ``okx=`` is given.
# :func:`from_okx_fields` fills every declared field from a dict and keeps the dict as
# ``raw``.


def _field(conv: Any, okx: str | None) -> Any:
    import attrs

    return attrs.field(default=None, metadata={"conv": conv, "okx": okx})


def dec_field(okx: str | None = None) -> Any:
    """A ``Decimal | None`` field read from an OKX numeric string."""
    return _field(dec, okx)


def int_field(okx: str | None = None) -> Any:
    """An ``int | None`` field (timestamps in ms, counts)."""
    return _field(opt_int, okx)


def str_field(okx: str | None = None) -> Any:
    """A ``str | None`` field ("" becomes None)."""
    return _field(opt_str, okx)


def bool_field(okx: str | None = None) -> Any:
    """A ``bool | None`` field (``true``/``"true"``)."""
    return _field(opt_bool, okx)


def okx_name(attr_name: str) -> str:
    """The OKX field name of a model attribute (the package's one name mapping,
    :func:`okx_sync.naming.to_okx`)."""
    return to_okx(attr_name)


# cls -> ((attribute, OKX key, converter), ...): worked out once per model class.
_CONVERTED: dict[type, tuple[tuple[str, str, Any], ...]] = {}


def _converted_fields(cls: type) -> tuple[tuple[str, str, Any], ...]:
    plan = _CONVERTED.get(cls)
    if plan is None:
        import attrs

        plan = tuple(
            (f.name, f.metadata.get("okx") or okx_name(f.name), f.metadata["conv"])
            for f in attrs.fields(cls)
            if f.metadata.get("conv") is not None
        )
        _CONVERTED[cls] = plan  # same value from any thread: a race only repeats the work
    return plan


def field_values(cls: type, d: Any) -> dict[str, Any]:
    """Keyword arguments for ``cls`` from the OKX dict ``d``: every attrs field with a
    ``conv`` metadata, converted. Fields without it are left to the caller. Pure (the
    per-class field plan is memoised); thread-safe."""
    get = d.get
    return {name: conv(get(key)) for name, key, conv in _converted_fields(cls)}


def mapped_keys(cls: type) -> frozenset[str]:
    """The OKX keys that ``cls`` turns into typed attributes (for lossless checks)."""
    import attrs

    keys = set()
    for f in attrs.fields(cls):
        if f.metadata.get("conv") is not None:
            keys.add(f.metadata.get("okx") or okx_name(f.name))
        elif f.metadata.get("okx"):
            keys.add(f.metadata["okx"])
    return frozenset(keys)
