"""The one snake_case <-> OKX name mapping. Pure.

Python names are snake_case (``inst_id``, ``cl_ord_id``, ``td_mode``); OKX names
are camelCase (``instId``, ``clOrdId``, ``tdMode``). :func:`to_okx` and
:func:`to_snake` convert one name either way; the names the rule cannot produce
are listed in :data:`IRREGULAR` (``from_`` <-> ``from``: ``from`` is a Python
keyword). :func:`is_raw_okx_name` tells a raw OKX name (``newField``) from a
snake name. Request parameters (``rest.params``) and model fields
(``models.base.okx_name``) both use this module, so a name means the same thing
everywhere.

No I/O. Thread safety: immutable; every function is safe from any thread.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping

__all__ = ["IRREGULAR", "to_okx", "to_snake", "is_raw_okx_name"]

# Python name -> OKX name, for the names the camelCase rule cannot produce.
IRREGULAR: Mapping[str, str] = {
    "from_": "from",
}
_IRREGULAR_BACK: Mapping[str, str] = {v: k for k, v in IRREGULAR.items()}

# A raw OKX name that is not a snake name: lower first letter, at least one capital.
_RAW_OKX_RE = re.compile(r"^[a-z][a-zA-Z0-9]*[A-Z][a-zA-Z0-9]*$")


def to_okx(name: str) -> str:
    """The OKX name of a Python (snake_case) name: ``cl_ord_id`` -> ``clOrdId``.

    Names without underscores are returned unchanged (``side``, ``instId``), so a raw
    OKX name maps to itself. Pure; never raises.
    """
    if name in IRREGULAR:
        return IRREGULAR[name]
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def to_snake(name: str) -> str:
    """The Python name of an OKX name: ``clOrdId`` -> ``cl_ord_id``, ``from`` -> ``from_``.

    Pure; never raises. ``to_okx(to_snake(n)) == n`` for every OKX parameter name in
    the registry (checked by the tests).
    """
    if name in _IRREGULAR_BACK:
        return _IRREGULAR_BACK[name]
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
    if keyword.iskeyword(snake):
        return snake + "_"
    return snake


def is_raw_okx_name(name: str) -> bool:
    """True for a camelCase OKX name that is no snake name: a lower-case first letter,
    letters and digits only, at least one capital (``newField``; not ``side``,
    ``inst_id`` or ``InstId``). Pure; never raises."""
    return bool(_RAW_OKX_RE.match(name))
