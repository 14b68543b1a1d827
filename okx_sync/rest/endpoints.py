"""The endpoint registry: every OKX V5 REST endpoint, declared once, as data. Pure.

The rows come from ``endpoints.tsv`` (packaged beside this module; the fact
base is ``okx-endpoints.tsv``: group, method, path, auth, permission, limit,
window, rate rule, cost unit, name). This module adds what okx_sync derives
from them: which endpoints enter orders (``order_action``), which count toward
the account's new+amend order limit, which are idempotent.

Secondary limits (``Endpoint.extra_limits``) come from ``limits.tsv``, packaged
beside it: the ``secondary_limit`` and ``copytrading_lead_instrument_limit``
rows of the fact base's ``okx-endpoints-extra.tsv`` (``method, path, key,
value`` copied as they are), each with its reading in the columns after them:
``limit`` per ``window_s``, ``cost_unit``, the ``bucket`` it draws on (rows
naming the same bucket share one budget, e.g. isElpTakerAccess orders over
``trade/order`` and ``trade/batch-orders``), the key ``rule`` and the
``condition`` under which a call is charged (``always``,
``param:NAME=true`` per order, ``config:lead_trader``).

The registry feeds the request gate (buckets), the retry policy and
``client.request``. Thread safety: the registry is built once and immutable.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Literal

import attrs

__all__ = [
    "Endpoint",
    "ExtraLimit",
    "param_true",
    "EndpointRegistry",
    "registry",
    "ORDER_ACTIONS",
    "ACCOUNT_ORDER_PATHS",
    "ORDER_ACK_PATHS",
    "EXPECTED_CODES",
    "ORDER_NOT_FOUND",
]

OrderAction = Literal["place", "amend", "cancel", "close", ""]

_P = "/api/v5/"

# Endpoints that enter, change or remove orders (POST only). Data, not code:
# safe mode refuses "place" and "amend"; "cancel" rides the cancel lane of the
# gate; none of these is retried once it may have been dispatched.
ORDER_ACTIONS: Mapping[str, OrderAction] = {
    _P + "trade/order": "place",
    _P + "trade/batch-orders": "place",
    _P + "trade/order-algo": "place",
    _P + "sprd/order": "place",
    _P + "rfq/create-rfq": "place",
    _P + "rfq/create-quote": "place",
    _P + "rfq/execute-quote": "place",
    _P + "tradingBot/grid/order-algo": "place",
    _P + "tradingBot/grid/copy-order-algo": "place",
    _P + "tradingBot/grid/order-instant-trigger": "place",
    _P + "tradingBot/signal/order-algo": "place",
    _P + "tradingBot/signal/sub-order": "place",
    _P + "tradingBot/recurring/order-algo": "place",
    _P + "tradingBot/dca/create": "place",
    _P + "tradingBot/dca/orders/manual-buy": "place",
    _P + "copytrading/algo-order": "place",
    _P + "trade/amend-order": "amend",
    _P + "trade/amend-batch-orders": "amend",
    _P + "trade/amend-algos": "amend",
    _P + "sprd/amend-order": "amend",
    _P + "tradingBot/grid/amend-order-algo": "amend",
    _P + "tradingBot/grid/amend-algo-basic-param": "amend",
    _P + "tradingBot/signal/amendTPSL": "amend",
    _P + "tradingBot/recurring/amend-order-algo": "amend",
    _P + "tradingBot/recurring/amend-price-range": "amend",
    _P + "tradingBot/recurring/amend-recurring-amount": "amend",
    _P + "tradingBot/recurring/amend-recurring-time": "amend",
    _P + "tradingBot/dca/amend-order-algo": "amend",
    _P + "tradingBot/dca/settings/reinvestment": "amend",
    _P + "tradingBot/dca/settings/take-profit": "amend",
    _P + "trade/cancel-order": "cancel",
    _P + "trade/cancel-batch-orders": "cancel",
    _P + "trade/cancel-algos": "cancel",
    _P + "trade/mass-cancel": "cancel",
    _P + "sprd/cancel-order": "cancel",
    _P + "sprd/mass-cancel": "cancel",
    _P + "rfq/cancel-rfq": "cancel",
    _P + "rfq/cancel-batch-rfqs": "cancel",
    _P + "rfq/cancel-all-rfqs": "cancel",
    _P + "rfq/cancel-quote": "cancel",
    _P + "rfq/cancel-batch-quotes": "cancel",
    _P + "rfq/cancel-all-quotes": "cancel",
    _P + "tradingBot/signal/cancel-sub-order": "cancel",
    _P + "tradingBot/grid/cancel-close-order": "cancel",
    _P + "tradingBot/grid/stop-order-algo": "cancel",
    _P + "tradingBot/signal/stop-order-algo": "cancel",
    _P + "tradingBot/recurring/stop-order-algo": "cancel",
    _P + "tradingBot/dca/stop": "cancel",
    _P + "trade/close-position": "close",
    _P + "tradingBot/grid/close-position": "close",
    _P + "tradingBot/signal/close-position": "close",
    _P + "copytrading/close-subposition": "close",
}

# New orders and amendments counted by the sub-account order rate limit (facts §2.3).
ACCOUNT_ORDER_PATHS = frozenset(
    {
        _P + "trade/order",
        _P + "trade/batch-orders",
        _P + "trade/amend-order",
        _P + "trade/amend-batch-orders",
    }
)

# Order entry answered with one item per order sent (an OrderAck each): the reply is
# matched to the request item by item (okx_sync.rest.acks), REST and WS alike.
ORDER_ACK_PATHS = frozenset(
    {
        *ACCOUNT_ORDER_PATHS,
        _P + "trade/cancel-order",
        _P + "trade/cancel-batch-orders",
    }
)


#: ``GET /api/v5/trade/order``: the order does not exist.
ORDER_NOT_FOUND = "51603"

# Codes that are an answer to the call, not a failure of it: the call still raises
# ``APIError`` (the caller decides), but the REST core logs the attempt at DEBUG, not
# WARNING (a query for an order that does not exist is how ``resolve_order`` proves
# absence). Keyed by (method, path).
EXPECTED_CODES: Mapping[tuple[str, str], frozenset[str]] = {
    ("GET", _P + "trade/order"): frozenset({ORDER_NOT_FOUND}),
}


def param_true(value: object) -> bool:
    """True for a request parameter that says yes: ``True`` or the text ``"true"``
    (any case, spaces ignored). Pure."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


@attrs.frozen(kw_only=True)
class ExtraLimit:
    """A limit an endpoint has besides its main one (from ``limits.tsv``).

    ``kind``: ``"secondary"`` (OKX applies it to everyone it concerns) or
    ``"lead_trader"`` (copy-trading lead traders only); ``limit`` per
    ``window_s``; ``cost_unit`` ``"order"`` (per order of a batch) or
    ``"request"``; ``bucket``: the budget's name, shared by every row that names
    it; ``rule``: the key rule (same vocabulary as ``Endpoint.rule``);
    ``condition``: ``"always"``, ``"param:NAME=true"`` (only orders whose
    ``NAME`` is true count) or ``"config:lead_trader"``; ``source``: OKX's
    wording as recorded. Thread safety: immutable.
    """

    kind: Literal["secondary", "lead_trader"]
    limit: int
    window_s: float
    cost_unit: str
    bucket: str
    rule: str
    condition: str
    source: str

    def counts(self, item: Mapping[str, object], *, lead_trader: bool) -> bool:
        """Whether one order/request (``item``: its OKX params) is charged to this limit.

        ``lead_trader``: the account is a copy-trading lead trader
        (``RequestGateConfig.lead_trader``). Pure.
        """
        if self.condition == "always":
            return True
        if self.condition == "config:lead_trader":
            return lead_trader
        name = self.condition.removeprefix("param:").removesuffix("=true")
        return param_true(item.get(name))

    @property
    def rate_text(self) -> str:
        """E.g. ``"50 orders / 2 s per UID+instId (param:isElpTakerAccess=true)"``."""
        unit = "orders" if self.cost_unit == "order" else "requests"
        when = "" if self.condition == "always" else f" ({self.condition})"
        return f"{self.limit} {unit} / {self.window_s:g} s per {self.rule}{when}"


_EXTRA_KINDS = {"secondary_limit": "secondary", "copytrading_lead_instrument_limit": "lead_trader"}
_CONDITIONS = re.compile(r"^(always|config:lead_trader|param:[A-Za-z]+=true)$")


@attrs.frozen(kw_only=True)
class Endpoint:
    """One OKX REST endpoint as declared in the registry.

    ``rule`` is the rate-limit key rule (``IP``, ``UID+instId;OPTION:UID+instFamily``,
    ...), ``limit`` requests (or orders, when ``cost_unit == "order"``) per
    ``window_s`` seconds (None for the one monthly limit). Thread safety: immutable.
    """

    group: str
    method: str
    path: str
    auth: str
    permission: str
    limit: int
    window_s: float | None
    rule: str
    cost_unit: str
    name: str
    in_go_okx: bool = False
    extra_limits: tuple[ExtraLimit, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """``(method, path)``, unique in the registry."""
        return (self.method, self.path)

    @property
    def private(self) -> bool:
        """True when the endpoint must be signed."""
        return self.auth == "private"

    @property
    def idempotent(self) -> bool:
        """True for reads (GET): safe to retry after an uncertain failure."""
        return self.method == "GET"

    @property
    def order_action(self) -> OrderAction:
        """``place``/``amend``/``cancel``/``close`` for order entry, else ``""``."""
        if self.method != "POST":
            return ""
        return ORDER_ACTIONS.get(self.path, "")

    @property
    def enters_orders(self) -> bool:
        """True for order entry (place/amend/cancel/close): never retried once dispatched."""
        return self.order_action != ""

    @property
    def expected_codes(self) -> frozenset[str]:
        """OKX codes that answer this call rather than report a failure (``EXPECTED_CODES``):
        logged at DEBUG by the REST core; still raised as ``APIError``."""
        return EXPECTED_CODES.get(self.key, frozenset())

    @property
    def counts_account_orders(self) -> bool:
        """True when each order sent counts toward the account new+amend limit."""
        return self.method == "POST" and self.path in ACCOUNT_ORDER_PATHS

    @property
    def acks_each_order(self) -> bool:
        """True for place/amend/cancel (single and batch): one reply item per order sent."""
        return self.method == "POST" and self.path in ORDER_ACK_PATHS

    @property
    def batch(self) -> bool:
        """True when the endpoint is charged per order (a list body), not per request."""
        return self.cost_unit == "order"

    @property
    def rate_text(self) -> str:
        """The published limit as text, e.g. ``"60 requests / 2 s per UID+instId"``."""
        unit = "orders" if self.batch else "requests"
        window = f"{self.window_s:g} s" if self.window_s else "month"
        rule = self.rule or "(no rule)"
        return f"{self.limit} {unit} / {window} per {rule}"


class EndpointRegistry:
    """All endpoints, looked up by (method, path) or by name.

    Thread safety: immutable after construction.
    """

    def __init__(self, endpoints: list[Endpoint]) -> None:
        self._by_key: dict[tuple[str, str], Endpoint] = {}
        self._by_name: dict[str, Endpoint] = {}
        for ep in endpoints:
            if ep.key in self._by_key:
                raise ValueError(f"duplicate endpoint {ep.method} {ep.path}")
            if ep.name in self._by_name:
                raise ValueError(f"duplicate endpoint name {ep.name}")
            self._by_key[ep.key] = ep
            self._by_name[ep.name] = ep

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, method: str, path: str) -> Endpoint | None:
        """The endpoint for ``method`` + ``path`` (no query string), or None."""
        return self._by_key.get((method.upper(), path))

    def by_name(self, name: str) -> Endpoint:
        """The endpoint with registry name ``name``; raises KeyError."""
        return self._by_name[name]

    def groups(self) -> dict[str, list[Endpoint]]:
        """Endpoints by group, in registry order."""
        out: dict[str, list[Endpoint]] = {}
        for ep in self:
            out.setdefault(ep.group, []).append(ep)
        return out


def _parse_limit(row: dict[str, str]) -> ExtraLimit:
    """One ``limits.tsv`` row; ValueError naming the row when it does not read."""
    where = f"limits.tsv {row.get('method')} {row.get('path')} {row.get('key')}"
    kind = _EXTRA_KINDS.get(row["key"])
    if kind is None or not _CONDITIONS.match(row["condition"]):
        raise ValueError(f"{where}: unknown key or condition")
    if row["cost_unit"] not in ("order", "request") or not row["bucket"] or not row["rule"]:
        raise ValueError(f"{where}: cost_unit, bucket and rule are required")
    limit, window = int(row["limit"]), float(row["window_s"])
    if limit <= 0 or window <= 0:
        raise ValueError(f"{where}: limit and window_s must be > 0")
    return ExtraLimit(
        kind=kind,  # type: ignore[arg-type]
        limit=limit,
        window_s=window,
        cost_unit=row["cost_unit"],
        bucket=row["bucket"],
        rule=row["rule"],
        condition=row["condition"],
        source=row["value"],
    )


def _parse_row(row: dict[str, str], extra: tuple[ExtraLimit, ...] = ()) -> Endpoint:
    window = row["window_s"].strip()
    return Endpoint(
        group=row["group"],
        method=row["method"].upper(),
        path=row["path"],
        auth=row["auth"],
        permission=row["permission"],
        limit=int(row["limit"]),
        window_s=float(window) if window else None,
        rule=row["rule"],
        cost_unit=row["cost_unit"],
        name=row["name"],
        in_go_okx=row.get("in_go_okx", "") == "yes",
        extra_limits=extra,
    )


def _read_tsv(name: str) -> list[dict[str, str]]:
    text = resources.files("okx_sync.rest").joinpath(name).read_text("utf-8")
    return list(csv.DictReader(text.splitlines(), delimiter="\t"))


@functools.cache
def registry() -> EndpointRegistry:
    """The packaged registry of all OKX V5 REST endpoints (loaded once), each with
    its ``extra_limits``. Raises ValueError when a limits row names no known
    endpoint, does not read, or differs from another row of its bucket."""
    extra: dict[tuple[str, str], list[ExtraLimit]] = {}
    buckets: dict[str, tuple[int, float, str, str]] = {}
    for row in _read_tsv("limits.tsv"):
        limit = _parse_limit(row)
        shape = (limit.limit, limit.window_s, limit.rule, limit.condition)
        if buckets.setdefault(limit.bucket, shape) != shape:
            raise ValueError(f"limits.tsv: rows sharing bucket {limit.bucket!r} disagree")
        extra.setdefault((row["method"].upper(), row["path"]), []).append(limit)
    endpoints = []
    for row in _read_tsv("endpoints.tsv"):
        key = (row["method"].upper(), row["path"])
        endpoints.append(_parse_row(row, tuple(extra.pop(key, ()))))
    if extra:
        raise ValueError(f"limits.tsv rows for endpoints not in the registry: {sorted(extra)}")
    return EndpointRegistry(endpoints)
