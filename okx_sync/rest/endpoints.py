"""The endpoint registry: every OKX V5 REST endpoint, declared once, as data. Pure.

The rows come from ``endpoints.tsv`` (packaged beside this module; the fact
base is ``okx-endpoints.tsv``: group, method, path, auth, permission, limit,
window, rate rule, cost unit, name). This module adds, in ONE overlay
(``_FACTS``), everything okx_sync derives per endpoint, as ``Endpoint`` fields:
the order action (``order_action``: safe mode, retries), account-limit counting
(``counts_account_orders``), one ack per order (``acks_each_order``), the
pre-send instrument check (``order_validation``), the single-order twin of a
batch and the gate lane (``single_order_twin``, ``lane``), the WS order op
(``ws_op``), the typed result (``result_model``, ``result_many``), codes that
answer rather than fail (``expected_codes``) and credential fields
(``secret_fields``). Every other module reads these attributes; none keeps a
table keyed by path.

Secondary limits (``Endpoint.extra_limits``) come from ``limits.tsv``, packaged
beside it: the ``secondary_limit`` and ``copytrading_lead_instrument_limit``
rows of the fact base's ``okx-endpoints-extra.tsv`` (``method, path, key,
value`` copied as they are), each with its reading in the columns after them:
``limit`` per ``window_s``, ``cost_unit``, the ``bucket`` it draws on (rows
naming the same bucket share one budget, e.g. isElpTakerAccess orders over
``trade/order`` and ``trade/batch-orders``), the key ``rule`` and the
``condition`` under which a call is charged (``always``,
``param:NAME=true`` per order, ``config:lead_trader``).

The registry feeds the request gate (buckets, lanes), the retry policy,
``client.request``, the named methods, WS order entry and the simulator. Thread safety: the registry is built once and immutable.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any, Literal

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
    # -- what okx_sync derives (the overlay ``_FACTS`` below; defaults for the rest) --
    #: ``place``/``amend``/``cancel``/``close`` for order entry (POST only), else ``""``:
    #: safe mode refuses place and amend; none is retried once it may have been sent.
    order_action: OrderAction = ""
    #: Each order sent counts toward the account new+amend limit (facts §2.3).
    counts_account_orders: bool = False
    #: One reply item per order sent (an OrderAck each), matched to the request item by
    #: item (okx_sync.rest.acks), REST and WS alike.
    acks_each_order: bool = False
    #: ``place``/``amend``: the named method checks px/sz against the instrument rules
    #: before sending (``validate=True``); ``""``: no such check.
    order_validation: Literal["place", "amend", ""] = ""
    #: For a batch endpoint: the path of the single-order endpoint a batch of exactly one
    #: order is charged to (facts §2.1), else ``""``.
    single_order_twin: str = ""
    #: ``"cancel"``: the call rides the gate's cancel lane; ``""``: the normal lane.
    lane: Literal["cancel", ""] = ""
    #: The WebSocket order op of the same action (facts §6.5: same rate buckets; the
    #: ``sprd-*`` ops of the spread endpoints go to the business URL), else ``""``.
    ws_op: str = ""
    #: The ``okx_sync.models`` class name of the named method's result (``""``: ``list[dict]``)
    #: and its cardinality: ``result_many`` a list of models, else exactly one.
    result_model: str = ""
    result_many: bool = False
    #: OKX codes that answer this call rather than report a failure: logged at DEBUG by
    #: the REST core; still raised as ``APIError``.
    expected_codes: frozenset[str] = frozenset()
    #: Answer fields carrying credentials: the named method returns them as ``Secret``.
    secret_fields: frozenset[str] = frozenset()

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
    def enters_orders(self) -> bool:
        """True for order entry (place/amend/cancel/close): never retried once dispatched."""
        return self.order_action != ""

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


# --- the overlay: what okx_sync derives per endpoint, declared once --------------------
# "METHOD path-after-/api/v5/" -> Endpoint field values (the fields after ``extra_limits``).
# The gate, named methods, WS order entry, safe mode, reconcile, the simulator and the
# docs generators read these as Endpoint attributes; no other module keeps a table keyed
# by path (tests/unit/test_api_registry.py checks).

_P = "/api/v5/"

#: ``GET /api/v5/trade/order``: the order does not exist.
ORDER_NOT_FOUND = "51603"

_PLACE: Mapping[str, Any] = {"order_action": "place"}
_AMEND: Mapping[str, Any] = {"order_action": "amend"}
_CANCEL: Mapping[str, Any] = {"order_action": "cancel", "lane": "cancel"}
_CLOSE: Mapping[str, Any] = {"order_action": "close"}


def _order_entry(action: OrderAction, ws_op: str, single: str = "") -> dict[str, Any]:
    """The facts of the six ``trade`` order endpoints (place/amend/cancel, single and batch)
    that REST and WS share: an OrderAck per order; place and amend count toward the
    account limit and are checked against the instrument rules; ``single``: the
    single-order twin of a batch."""
    base = _CANCEL if action == "cancel" else {"order_action": action}
    new_or_amend = action in ("place", "amend")
    return {
        **base,
        "acks_each_order": True,
        "ws_op": ws_op,
        "result_model": "OrderAck",
        "result_many": bool(single),
        "single_order_twin": _P + single if single else "",
        "counts_account_orders": new_or_amend,
        "order_validation": action if new_or_amend else "",
    }


def _model(name: str, many: bool = False, **more: Any) -> dict[str, Any]:
    return {"result_model": name, "result_many": many, **more}


_FACTS: Mapping[str, Mapping[str, Any]] = {
    # order entry (ws_op: the WS op of the same action)
    "POST trade/order": _order_entry("place", "order"),
    "POST trade/batch-orders": _order_entry("place", "batch-orders", "trade/order"),
    "POST trade/amend-order": _order_entry("amend", "amend-order"),
    "POST trade/amend-batch-orders": _order_entry(
        "amend", "batch-amend-orders", "trade/amend-order"
    ),
    "POST trade/cancel-order": _order_entry("cancel", "cancel-order"),
    "POST trade/cancel-batch-orders": _order_entry(
        "cancel", "batch-cancel-orders", "trade/cancel-order"
    ),
    "POST trade/order-algo": _PLACE,
    "POST sprd/order": {**_PLACE, "ws_op": "sprd-order"},
    "POST rfq/create-rfq": _PLACE,
    "POST rfq/create-quote": _PLACE,
    "POST rfq/execute-quote": _PLACE,
    "POST tradingBot/grid/order-algo": _PLACE,
    "POST tradingBot/grid/copy-order-algo": _PLACE,
    "POST tradingBot/grid/order-instant-trigger": _PLACE,
    "POST tradingBot/signal/order-algo": _PLACE,
    "POST tradingBot/signal/sub-order": _PLACE,
    "POST tradingBot/recurring/order-algo": _PLACE,
    "POST tradingBot/dca/create": _PLACE,
    "POST tradingBot/dca/orders/manual-buy": _PLACE,
    "POST copytrading/algo-order": _PLACE,
    "POST trade/amend-algos": _AMEND,
    "POST sprd/amend-order": {**_AMEND, "ws_op": "sprd-amend-order"},
    "POST tradingBot/grid/amend-order-algo": _AMEND,
    "POST tradingBot/grid/amend-algo-basic-param": _AMEND,
    "POST tradingBot/signal/amendTPSL": _AMEND,
    "POST tradingBot/recurring/amend-order-algo": _AMEND,
    "POST tradingBot/recurring/amend-price-range": _AMEND,
    "POST tradingBot/recurring/amend-recurring-amount": _AMEND,
    "POST tradingBot/recurring/amend-recurring-time": _AMEND,
    "POST tradingBot/dca/amend-order-algo": _AMEND,
    "POST tradingBot/dca/settings/reinvestment": _AMEND,
    "POST tradingBot/dca/settings/take-profit": _AMEND,
    "POST trade/cancel-algos": _CANCEL,
    "POST trade/mass-cancel": _CANCEL,
    "POST sprd/cancel-order": {**_CANCEL, "ws_op": "sprd-cancel-order"},
    "POST sprd/mass-cancel": {**_CANCEL, "ws_op": "sprd-mass-cancel"},
    "POST rfq/cancel-rfq": _CANCEL,
    "POST rfq/cancel-batch-rfqs": _CANCEL,
    "POST rfq/cancel-all-rfqs": _CANCEL,
    "POST rfq/cancel-quote": _CANCEL,
    "POST rfq/cancel-batch-quotes": _CANCEL,
    "POST rfq/cancel-all-quotes": _CANCEL,
    "POST tradingBot/signal/cancel-sub-order": _CANCEL,
    "POST tradingBot/grid/cancel-close-order": _CANCEL,
    "POST tradingBot/grid/stop-order-algo": _CANCEL,
    "POST tradingBot/signal/stop-order-algo": _CANCEL,
    "POST tradingBot/recurring/stop-order-algo": _CANCEL,
    "POST tradingBot/dca/stop": _CANCEL,
    "POST trade/close-position": _CLOSE,
    "POST tradingBot/grid/close-position": _CLOSE,
    "POST tradingBot/signal/close-position": _CLOSE,
    "POST copytrading/close-subposition": _CLOSE,
    # not order entry, but the cancel lane (the dead-man switch)
    "POST trade/cancel-all-after": {"lane": "cancel"},
    # typed results (okx_sync.models class name; many: a list)
    "GET public/instruments": _model("Instrument", True),
    "GET account/instruments": _model("Instrument", True),
    "GET market/ticker": _model("Ticker"),
    "GET market/tickers": _model("Ticker", True),
    "GET market/index-tickers": _model("Ticker", True),
    "GET market/books": _model("OrderBook"),
    "GET market/books-full": _model("OrderBook"),
    "GET market/candles": _model("Candle", True),
    "GET market/history-candles": _model("Candle", True),
    "GET market/index-candles": _model("Candle", True),
    "GET market/history-index-candles": _model("Candle", True),
    "GET market/mark-price-candles": _model("Candle", True),
    "GET market/history-mark-price-candles": _model("Candle", True),
    "GET market/trades": _model("Trade", True),
    "GET market/history-trades": _model("Trade", True),
    "GET account/balance": _model("Balance"),
    "GET asset/balances": _model("BalanceDetail", True),
    "GET account/positions": _model("Position", True),
    "GET account/positions-history": _model("Position", True),
    # a query for an order that does not exist is how resolve_order proves absence
    "GET trade/order": _model("Order", expected_codes=frozenset({ORDER_NOT_FOUND})),
    "GET trade/orders-pending": _model("Order", True),
    "GET trade/orders-history": _model("Order", True),
    "GET trade/orders-history-archive": _model("Order", True),
    "GET trade/fills": _model("Fill", True),
    "GET trade/fills-history": _model("Fill", True),
    "GET account/config": _model("AccountConfig"),
    "GET trade/account-rate-limit": _model("AccountRateLimit"),
    "GET public/time": _model("ServerTime"),
    # answer fields that carry credentials (OKX docs, sub-account API key endpoints)
    "POST users/subaccount/apikey": {
        "secret_fields": frozenset({"apiKey", "secretKey", "passphrase"})
    },
    "GET users/subaccount/apikey": {"secret_fields": frozenset({"apiKey"})},
    "POST users/subaccount/modify-apikey": {"secret_fields": frozenset({"apiKey"})},
}


def _with_facts(ep: Endpoint, facts: Mapping[str, Any]) -> Endpoint:
    """``ep`` with its overlay facts; ValueError when one does not fit the endpoint."""
    try:
        out = attrs.evolve(ep, **facts)
    except TypeError as exc:
        raise ValueError(f"_FACTS[{ep.method} {ep.path}]: {exc}") from None
    if out.order_action and out.method != "POST":
        raise ValueError(f"_FACTS[{ep.method} {ep.path}]: order entry is POST only")
    if out.single_order_twin and not out.batch:
        raise ValueError(f"_FACTS[{ep.method} {ep.path}]: a single-order twin needs a batch")
    return out


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
    facts = dict(_FACTS)
    endpoints = []
    for row in _read_tsv("endpoints.tsv"):
        key = (row["method"].upper(), row["path"])
        ep = _parse_row(row, tuple(extra.pop(key, ())))
        overlay = facts.pop(f"{ep.method} {ep.path.removeprefix(_P)}", None)
        endpoints.append(ep if overlay is None else _with_facts(ep, overlay))
    if extra:
        raise ValueError(f"limits.tsv rows for endpoints not in the registry: {sorted(extra)}")
    if facts:
        raise ValueError(f"_FACTS rows for endpoints not in the registry: {sorted(facts)}")
    reg = EndpointRegistry(endpoints)
    for ep in reg:
        twin = reg.get(ep.method, ep.single_order_twin) if ep.single_order_twin else ep
        if twin is None:
            raise ValueError(f"{ep.method} {ep.path}: single-order twin is no registry endpoint")
    return reg


# --- views of the facts above (kept for callers of the earlier tables) --------------------

#: path -> order action of every order-entry endpoint (``Endpoint.order_action``).
ORDER_ACTIONS: Mapping[str, OrderAction] = {
    ep.path: ep.order_action for ep in registry() if ep.order_action
}
#: Paths whose orders count toward the account limit (``Endpoint.counts_account_orders``).
ACCOUNT_ORDER_PATHS = frozenset(ep.path for ep in registry() if ep.counts_account_orders)
#: Paths answered with one OrderAck per order (``Endpoint.acks_each_order``).
ORDER_ACK_PATHS = frozenset(ep.path for ep in registry() if ep.acks_each_order)
#: (method, path) -> codes that answer the call (``Endpoint.expected_codes``).
EXPECTED_CODES: Mapping[tuple[str, str], frozenset[str]] = {
    ep.key: ep.expected_codes for ep in registry() if ep.expected_codes
}
