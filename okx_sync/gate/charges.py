"""What a call draws on: rule scopes, the charge plan and throttle classification. Pure.

``plan_charges(endpoint, params)`` turns one call into ``Charge``s, one per
budget it draws on: the endpoint's rate bucket keyed by the endpoint's OKX rule
(``IP``, ``UID``, ``UID+instId``, ``UID+instId;OPTION:UID+instFamily``, ...)
with the scope values read from the call's params (``rule_scope``); batch
endpoints charge one token per order, per instrument, and a batch of exactly
one order is charged to the single-order endpoint (as OKX does); new orders
and amends add the account order bucket; the endpoint's secondary limits
(``Endpoint.extra_limits``, registry data) add theirs when they apply.
``throttle_hits`` says which budgets an answer penalises;
``rides_cancel_lane`` which calls go in the cancel lane. No I/O, no clock, no
state: every function here is safe from any thread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..errors import ValidationError
from ..rest.endpoints import Endpoint, registry

__all__ = [
    "Charge",
    "plan_charges",
    "rule_scope",
    "throttle_hits",
    "rides_cancel_lane",
    "DEFAULT_ACCOUNT_ORDER_LIMIT",
    "ACCOUNT_ORDER_WINDOW_S",
    "ACCOUNT_BUCKET_KEY",
    "MONTH_S",
]

DEFAULT_ACCOUNT_ORDER_LIMIT = 1000
"""OKX's base sub-account new+amend limit per 2 s (facts §2.3)."""
ACCOUNT_ORDER_WINDOW_S = 2.0
ACCOUNT_BUCKET_KEY = "account orders [UID]"
MONTH_S = 31 * 86400.0
"""The window of the one monthly limit: 31 days covers any calendar month."""

_PRINCIPALS = frozenset({"IP", "UID", "MasterUID", "UID|IP"})
# BTC-USD-240628-60000-C: underlying, expiry, strike, call/put.
_OPTION_INST_ID = re.compile(r"^([A-Z0-9]+-[A-Z0-9]+)-\d{6}-[0-9.]+-[CP]$")


def _param(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    if value in (None, "") and name == "instFamily":
        value = item.get("uly")
        if value in (None, ""):
            parts = str(item.get("instId") or "").split("-")
            value = "-".join(parts[:2]) if len(parts) >= 3 else ""
    return "" if value is None else str(value)


def _is_option(item: Mapping[str, Any]) -> bool:
    if str(item.get("instType") or "").upper() == "OPTION":
        return True
    return bool(_OPTION_INST_ID.match(str(item.get("instId") or "")))


def rule_scope(rule: str, item: Mapping[str, Any] | None) -> str:
    """The concrete scope of ``rule`` for one call (or one batch item).

    ``"UID+instId"`` with ``{"instId": "BTC-USDT"}`` -> ``"UID+instId=BTC-USDT"``;
    ``"UID+instId;OPTION:UID+instFamily"`` switches to the family for options
    (``instType == "OPTION"`` or an option instId); ``"IP"``, ``"UID"``,
    ``"MasterUID"`` and ``"UID|IP"`` have no param part (one Client = one UID and
    one IP); the empty rule is treated as ``"IP"``. A missing param scopes to
    ``""`` (OKX refuses such a call anyway). Pure; never raises.
    """
    item = item or {}
    chosen, _, alternatives = (rule or "IP").partition(";")
    for alternative in alternatives.split(";") if alternatives else ():
        condition, _, alt_rule = alternative.partition(":")
        if condition == "OPTION" and _is_option(item):
            chosen = alt_rule
    parts = chosen.split("+")
    if parts[0] in _PRINCIPALS:
        principal, fields = parts[0], parts[1:]
    else:
        principal, fields = "", parts
    scoped = [f"{name}={_param(item, name)}" for name in fields]
    return "+".join(([principal] if principal else []) + scoped)


@attrs.frozen
class Charge:
    """One budget a call draws on: bucket ``key``, its published ``limit`` per
    ``window_s``, the ``cost`` (tokens) and ``kind`` (``"endpoint"``,
    ``"account"``, or a secondary limit's ``"secondary"`` / ``"lead_trader"``)
    and the ``rule`` its key is scoped by (as declared, e.g. ``"UID+instId"``).
    Thread safety: immutable."""

    key: str
    limit: int
    window_s: float
    cost: int
    kind: str = "endpoint"
    rule: str = ""


def _items(params: Any) -> list[Mapping[str, Any]]:
    if isinstance(params, Mapping):
        return [params]
    if isinstance(params, Sequence) and not isinstance(params, str | bytes):
        return [p for p in params if isinstance(p, Mapping)] or [{}]
    return [{}]


def _order_count(params: Any) -> int:
    if isinstance(params, Sequence) and not isinstance(params, str | bytes | Mapping):
        return max(1, len(params))
    return 1


def plan_charges(
    endpoint: Endpoint,
    params: Any,
    *,
    account_limit: int = DEFAULT_ACCOUNT_ORDER_LIMIT,
    lead_trader: bool = False,
) -> list[Charge]:
    """The budgets a call to ``endpoint`` with ``params`` draws on. Pure.

    ``params`` is a dict, or a list of dicts for batch endpoints. Endpoint
    buckets are keyed ``"METHOD PATH [scope]"``; batch endpoints
    (``cost_unit == "order"``) charge one token per order to the bucket of
    each order's scope, and a batch of exactly one order is charged to the
    single-order endpoint. New orders and amends add the account order
    bucket (``ACCOUNT_BUCKET_KEY``), one token per order. Each of the
    endpoint's ``extra_limits`` that applies (``ExtraLimit.counts``: always,
    per order by a param such as ``isElpTakerAccess``, or ``lead_trader``)
    adds ``"BUCKET [scope]"`` charges the same way (``kind`` ``"secondary"``
    or ``"lead_trader"``).
    Raises ``ValidationError`` when one call needs more tokens than a published
    limit allows (OKX would refuse it; nothing is sent).
    """
    orders = _order_count(params)
    items = _items(params)
    ep = endpoint
    if ep.batch and orders == 1 and ep.single_order_twin:  # facts §2.1
        ep = registry().get(ep.method, ep.single_order_twin) or ep
    window = ep.window_s if ep.window_s else MONTH_S
    costs: dict[str, int] = {}
    for item in items if ep.batch else items[:1]:
        scope = rule_scope(ep.rule, item)
        costs[scope] = costs.get(scope, 0) + 1
    charges = [
        Charge(f"{ep.method} {ep.path} [{scope}]", ep.limit, window, cost, rule=ep.rule or "IP")
        for scope, cost in costs.items()
    ]
    for extra in ep.extra_limits:
        extra_costs: dict[str, int] = {}
        for item in items if ep.batch else items[:1]:
            if extra.counts(item, lead_trader=lead_trader):
                scope = rule_scope(extra.rule, item)
                extra_costs[scope] = extra_costs.get(scope, 0) + 1
        charges += [
            Charge(
                f"{extra.bucket} [{scope}]",
                extra.limit,
                extra.window_s,
                cost if extra.cost_unit == "order" else 1,
                extra.kind,
                extra.rule,
            )
            for scope, cost in extra_costs.items()
        ]
    if endpoint.counts_account_orders:
        charges.append(
            Charge(
                ACCOUNT_BUCKET_KEY,
                account_limit,
                ACCOUNT_ORDER_WINDOW_S,
                orders,
                "account",
                "UID (new and amended orders)",
            )
        )
    for charge in charges:
        if charge.cost > charge.limit:
            raise ValidationError(
                f"{endpoint.method} {endpoint.path}: {charge.cost} orders in one call exceed "
                f"the published limit of {charge.limit} per {charge.window_s:g} s ({charge.key})"
            )
    return charges


def rides_cancel_lane(endpoint: Endpoint | None) -> bool:
    """True for calls in the cancel lane (``Endpoint.lane``): cancel endpoints and
    ``cancel-all-after``."""
    return endpoint is not None and endpoint.lane == "cancel"


def throttle_hits(http_status: int | None, code: str, data: Any) -> tuple[bool, bool]:
    """Which budgets an answer says were throttled: ``(endpoint, account)``.

    HTTP 429 or code 50011 (top level or any item's ``sCode``) hits the
    endpoint's charges, its secondary-limit ones included (OKX does not say
    which limit was hit); 50061 (top level or ``sCode``) hits the account
    order charge; a 429 carrying 50061 hits only the account. Never raises.
    """
    items = data if isinstance(data, list) else ()
    codes = {str(item.get("sCode") or "") for item in items if isinstance(item, Mapping)}
    codes.add(code)
    return (http_status == 429 and code != "50061") or "50011" in codes, "50061" in codes
