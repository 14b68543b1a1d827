"""The shape of client order ids, prices and sizes in a request, checked before sending. Pure.

:func:`check_fields` runs on the OKX params :func:`~okx_sync.rest.params.build_params`
built (so REST named methods, WS order entry and ``place_order_safely`` share it), and
on every element of a batch and of a nested object list (``attachAlgoOrds``):

- client ids (:data:`CLIENT_ID_FIELDS`: ``clOrdId``, ``algoClOrdId``,
  ``attachAlgoClOrdId``) must be 1–32 ASCII letters/digits on the trading, spread and
  trading-bot endpoints (:data:`STRICT_ID_PATHS`; facts §7), and a non-empty string
  elsewhere (the fiat buy/sell docs state no format). ``cl_ord_id=""`` is refused, not
  sent or silently dropped: leave it out (``None``) to send none.
- on order entry that places or amends (``Endpoint.order_action`` ``place``/``amend``):
  sizes (:data:`SIZE_FIELDS`: ``sz``, ``newSz``) must be positive numbers; prices
  (``px`` and every name ending in ``Px``, ``PxUsd`` or ``PxVol``: ``newPx``,
  ``tpTriggerPx``, ``slOrdPx`` ...) numbers of any sign (``-1`` is OKX's "market"
  for an algo order price; spread prices may be negative); an empty price means
  "not given" and passes. Numbers are :func:`okx_sync.validators.order_number`: a
  ``Decimal``, ``int`` or numeric ``str``, never a ``float`` or ``bool``, finite,
  within 20 digits before and after the point; they are sent in plain notation
  (``"2e-3"`` -> ``"0.002"``).

Violations raise :class:`~okx_sync.errors.ValidationError` naming the method, the
field and the element. Thread safety: stateless; safe from any thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from ..ids import is_valid_cl_ord_id
from ..validators import order_number, plain
from .endpoints import Endpoint

__all__ = ["CLIENT_ID_FIELDS", "STRICT_ID_PATHS", "SIZE_FIELDS", "is_price_field", "check_fields"]

#: OKX fields holding a client-chosen order id (1–32 letters/digits).
CLIENT_ID_FIELDS = frozenset({"clOrdId", "algoClOrdId", "attachAlgoClOrdId"})
#: Path prefixes whose client ids follow OKX's 1–32 letters/digits rule.
STRICT_ID_PATHS = ("/api/v5/trade/", "/api/v5/sprd/", "/api/v5/tradingBot/")
#: Order sizes: positive numbers.
SIZE_FIELDS = frozenset({"sz", "newSz"})
_PRICE_SUFFIXES = ("Px", "PxUsd", "PxVol")


def is_price_field(name: str) -> bool:
    """True for an order price field: ``px`` or a name ending in ``Px``/``PxUsd``/``PxVol``."""
    return name == "px" or name.endswith(_PRICE_SUFFIXES)


def _check_object(
    obj: dict[str, Any], *, numbers: bool, strict_ids: bool, label: str, where: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        at = f"{label}: {key}{where}"
        if key in CLIENT_ID_FIELDS:
            valid = is_valid_cl_ord_id(value) if strict_ids else isinstance(value, str)
            if not valid or value == "":
                rule = "1-32 ASCII letters/digits" if strict_ids else "a non-empty string"
                raise ValidationError(
                    f"{at} must be {rule}, got {value!r}"
                    + (" (leave it out to send none)" if value == "" else "")
                )
        elif numbers and key in SIZE_FIELDS:
            value = plain(order_number(value, name=at, positive=True))
        elif numbers and is_price_field(key) and value != "":
            value = plain(order_number(value, name=at))
        elif isinstance(value, list):
            value = [
                _check_object(
                    el,
                    numbers=numbers,
                    strict_ids=strict_ids,
                    label=label,
                    where=f" in {key}[{i}]{where}",
                )
                if isinstance(el, dict)
                else el
                for i, el in enumerate(value)
            ]
        out[key] = value
    return out


def check_fields(
    endpoint: Endpoint, obj: Mapping[str, Any], *, label: str, where: str = ""
) -> dict[str, Any]:
    """``obj`` (the OKX params of one request, or one element of a batch) with its
    client ids checked and, on place/amend endpoints, its prices and sizes checked and
    written in plain notation (see the module doc). ``label`` names the method and
    ``where`` the element (``" in orders[2]"``) in messages.

    Returns a new dict; raises ValidationError. Pure.
    """
    return _check_object(
        dict(obj),
        numbers=endpoint.order_action in ("place", "amend"),
        strict_ids=endpoint.path.startswith(STRICT_ID_PATHS),
        label=label,
        where=where,
    )
