"""Every registry endpoint's named method sends the right request through the real
REST core: method, path, query or JSON body with OKX names, and the signing headers
exactly when the endpoint is private (HTTP on ``MockTransport``)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from rest_mock import Routes

from okx_sync.auth import prehash, sign
from okx_sync.client import Client
from okx_sync.rest.endpoints import Endpoint, registry
from okx_sync.rest.named import RESULTS, group_attr, method_name
from okx_sync.rest.order_fields import CLIENT_ID_FIELDS, SIZE_FIELDS, is_price_field
from okx_sync.rest.params import batch_keyword, id_pairs, params_for

BASE = "https://www.okx.com"
RATE_LIMIT = "/api/v5/trade/account-rate-limit"
KEY, SECRET, PASSPHRASE = "key-1", "secret-1", "pass-1"

# A minimal data item per typed single-object result, so the model can be built.
ONE_ITEM: dict[str, dict[str, Any]] = {
    "ServerTime": {"ts": "1700000000000"},
    "OrderAck": {"ordId": "1", "clOrdId": "", "sCode": "0", "sMsg": ""},
}
AUTH_HEADERS = ("OK-ACCESS-KEY", "OK-ACCESS-SIGN", "OK-ACCESS-TIMESTAMP", "OK-ACCESS-PASSPHRASE")


def _number(okx: str) -> bool:
    # prices and sizes must be numbers on order entry (okx_sync.rest.order_fields)
    return okx == "amt" or okx in SIZE_FIELDS or is_price_field(okx)


def _value(okx: str) -> Any:
    # distinct, recognisable values; numbers as Decimal to exercise the conversion
    return Decimal("1.5") if _number(okx) else _wire(okx)


def _wire(okx: str) -> str:
    if _number(okx):
        return "1.5"
    return f"v{okx}" if okx in CLIENT_ID_FIELDS else f"v-{okx}"  # ids: letters/digits only


def call_args(ep: Endpoint) -> tuple[dict[str, Any], Any]:
    """Keyword arguments with every required parameter (and one optional), and the
    OKX params the request must carry."""
    spec = params_for(ep)
    chosen = [p for p in spec.params if p.required == "yes"]
    # exactly one id of a pair both declared ``cond`` (okx_sync.rest.params.ONE_OF_IDS)
    pairs = id_pairs(spec)
    chosen += [spec.by_okx[pair[0]] for pair in pairs]
    paired = {n for pair in pairs for n in pair}
    optional = [p for p in spec.params if p.required != "yes" and p.okx not in paired]
    if optional:
        chosen.append(optional[0])
    kwargs = {p.snake: _value(p.okx) for p in chosen}
    wire = {p.okx: _wire(p.okx) for p in chosen}
    if spec.kind == "items":
        return {batch_keyword(ep): [kwargs]}, [wire]
    return kwargs, wire


def response_data(ep: Endpoint, wire: Any) -> list[Any]:
    if ep.acks_each_order:  # one ack per order sent, naming it (okx_sync.rest.acks)
        items = wire if isinstance(wire, list) else [wire]
        keys = ("clOrdId", "ordId")
        return [{k: w.get(k, "") for k in keys} | {"sCode": "0", "sMsg": ""} for w in items]
    spec = RESULTS.get(ep.key)
    if spec is None or spec[1]:
        return []
    return [ONE_ITEM.get(spec[0].__name__, {})]


@pytest.fixture(scope="module")
def shared_routes() -> Routes:
    return Routes()


@pytest.fixture
def routes(shared_routes: Routes) -> Routes:
    shared_routes.reset()
    return shared_routes


@pytest.fixture(scope="module")
def client(shared_routes: Routes) -> Any:
    c = Client(KEY, SECRET, PASSPHRASE, transport=shared_routes.transport)
    yield c
    c.close()


@pytest.mark.parametrize("ep", list(registry()), ids=lambda e: f"{e.method} {e.path}")
def test_named_method_sends_the_right_request(routes: Routes, client: Any, ep: Endpoint) -> None:
    if ep.path != RATE_LIMIT:
        # the REST core may refresh the account order limit before order entry
        routes.get(
            BASE + RATE_LIMIT,
            json={"code": "0", "msg": "", "data": [{"accRateLimit": "1000", "ts": "1"}]},
        )
    kwargs, wire = call_args(ep)
    body = {"code": "0", "msg": "", "data": response_data(ep, wire)}
    routes.add(
        ep.method,
        BASE + ep.path,
        json=body,
        status=200,
    )
    if ep.key in (
        ("POST", "/api/v5/trade/order"),
        ("POST", "/api/v5/trade/batch-orders"),
        ("POST", "/api/v5/trade/amend-order"),
        ("POST", "/api/v5/trade/amend-batch-orders"),
    ):
        kwargs["validate"] = False  # instrument rules are tested separately
    method = getattr(getattr(client, group_attr(ep.group)), method_name(ep))
    method(**kwargs)

    sent = [c for c in routes.calls if ep.path == RATE_LIMIT or RATE_LIMIT not in c.target]
    assert len(sent) == 1, [r.target for r in sent]
    req = sent[0]
    url = urlsplit(req.target)
    assert req.method == ep.method and url.path == ep.path
    if ep.method == "GET":
        assert dict(parse_qsl(url.query, keep_blank_values=True)) == wire
        assert not req.body
        request_path = ep.path + (f"?{url.query}" if url.query else "")
        signed_body = ""
    else:
        assert req.body is not None and json.loads(req.body) == wire
        request_path = ep.path
        signed_body = req.body.decode()
    if ep.private:
        for h in AUTH_HEADERS:
            assert req.headers.get(h), h
        assert req.headers["OK-ACCESS-KEY"] == KEY
        assert req.headers["OK-ACCESS-PASSPHRASE"] == PASSPHRASE
        ts = req.headers["OK-ACCESS-TIMESTAMP"]
        assert req.headers["OK-ACCESS-SIGN"] == sign(
            SECRET, prehash(ts, ep.method, request_path, signed_body)
        )
    else:
        for h in AUTH_HEADERS:
            assert h not in req.headers, h


def test_exp_time_travels_as_a_request_header(routes: Routes, client: Any) -> None:
    routes.post(
        BASE + "/api/v5/trade/cancel-order",
        json={"code": "0", "msg": "", "data": [ONE_ITEM["OrderAck"]]},
    )
    client.trade.cancel_order(inst_id="BTC-USDT", ord_id="1", exp_time=1_700_000_000_000)
    (req,) = [c for c in routes.calls if "cancel-order" in c.target]
    assert req.headers["expTime"] == "1700000000000"


# -- derived facts of the registry (rest/endpoints.py), which drive the gate and retries --


def test_every_order_action_and_account_order_path_is_a_registry_post() -> None:
    from okx_sync.rest.endpoints import ACCOUNT_ORDER_PATHS, ORDER_ACTIONS

    reg = registry()
    for path, action in ORDER_ACTIONS.items():
        ep = reg.get("POST", path)
        assert ep is not None, f"ORDER_ACTIONS names {path}, which is no registry POST"
        assert ep.order_action == action and ep.enters_orders, path
        assert not ep.idempotent and ep.private, path
    for path in ACCOUNT_ORDER_PATHS:
        ep = reg.get("POST", path)
        assert ep is not None, f"ACCOUNT_ORDER_PATHS names {path}, which is no registry POST"
        assert ep.counts_account_orders and ep.order_action in ("place", "amend"), path
    # and the other way round: the derived flags come from those tables only
    entering = {e.path for e in reg if e.enters_orders}
    assert entering == set(ORDER_ACTIONS)
    assert {e.path for e in reg if e.counts_account_orders} == set(ACCOUNT_ORDER_PATHS)


def test_derived_flags_hold_for_every_row() -> None:
    for ep in registry():
        assert ep.idempotent is (ep.method == "GET"), ep.key
        if ep.method == "GET":  # a GET on an order path (trade/order) only reads
            assert ep.order_action == "" and not ep.enters_orders, ep.key
            assert not ep.counts_account_orders, ep.key
        assert ep.enters_orders is (ep.order_action != ""), ep.key


@pytest.mark.parametrize(
    ("method", "path", "facts"),
    [
        # (idempotent, enters_orders, order_action, counts_account_orders, batch)
        ("POST", "/api/v5/trade/order", (False, True, "place", True, False)),
        ("POST", "/api/v5/trade/batch-orders", (False, True, "place", True, True)),
        ("POST", "/api/v5/trade/amend-order", (False, True, "amend", True, False)),
        ("POST", "/api/v5/trade/amend-batch-orders", (False, True, "amend", True, True)),
        ("POST", "/api/v5/trade/cancel-order", (False, True, "cancel", False, False)),
        ("POST", "/api/v5/trade/cancel-batch-orders", (False, True, "cancel", False, True)),
        ("POST", "/api/v5/trade/close-position", (False, True, "close", False, False)),
        ("POST", "/api/v5/trade/order-algo", (False, True, "place", False, False)),
        ("GET", "/api/v5/trade/order", (True, False, "", False, False)),
        ("GET", "/api/v5/trade/orders-pending", (True, False, "", False, False)),
        ("GET", "/api/v5/market/ticker", (True, False, "", False, False)),
        ("POST", "/api/v5/account/set-leverage", (False, False, "", False, False)),
    ],
)
def test_derived_facts_of_key_rows(method: str, path: str, facts: tuple[Any, ...]) -> None:
    ep = registry().get(method, path)
    assert ep is not None
    got = (ep.idempotent, ep.enters_orders, ep.order_action, ep.counts_account_orders, ep.batch)
    assert got == facts


# -- one endpoint table: every derived fact is an Endpoint attribute (rest/endpoints.py) --

_API_PATH = "/api/v5/"


def _path_keyed_tables(source: str) -> list[str]:
    """Module-level dict/set literals (also ``frozenset({...})``) whose keys, elements or
    values name an ``/api/v5/`` path, directly or through a module-level string constant."""
    import ast

    tree = ast.parse(source)
    consts: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                consts.update(
                    {t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)}
                )

    def names_path(expr: ast.AST) -> bool:
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                if _API_PATH in sub.value:
                    return True
            if isinstance(sub, ast.Name) and _API_PATH in consts.get(sub.id, ""):
                return True
        return False

    found = []
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.Call) and getattr(value.func, "id", "") in ("frozenset", "set"):
            value = value.args[0] if value.args else None
        parts: list[ast.AST] = []
        if isinstance(value, ast.Dict):
            parts = [k for k in value.keys if k is not None] + list(value.values)
        elif isinstance(value, ast.Set):
            parts = list(value.elts)
        if any(names_path(p) for p in parts):
            found.append(f"line {node.lineno}")
    return found


def test_the_table_finder_finds_tables() -> None:  # the guard below looks for the right thing
    assert _path_keyed_tables('A = {"/api/v5/trade/order": "place"}\n') == ["line 1"]
    assert _path_keyed_tables('P = "/api/v5/"\nB = frozenset({P + "x"})\n') == ["line 2"]
    assert _path_keyed_tables('C: dict = {"m": ("op", "/api/v5/trade/order", False)}\n')
    assert _path_keyed_tables('D = {ep.path: 1 for ep in reg}\nE = "/api/v5/x"\n') == []


def test_no_module_but_the_registry_keeps_a_table_keyed_by_path() -> None:
    import okx_sync
    from tests.conftest import REPO

    package = REPO / "okx_sync"
    assert package == __import__("pathlib").Path(okx_sync.__file__).resolve().parent
    offenders = {
        str(path.relative_to(REPO)): hits
        for path in sorted(package.rglob("*.py"))
        if path != package / "rest" / "endpoints.py"
        and (hits := _path_keyed_tables(path.read_text("utf-8")))
    }
    assert offenders == {}, "declare endpoint facts on Endpoint (rest/endpoints.py _FACTS)"


def test_every_derived_fact_is_an_endpoint_attribute() -> None:
    reg = registry()
    place = reg.by_name("place_order")
    batch = reg.by_name("place_batch_orders")
    assert (place.order_action, place.order_validation, place.ws_op) == ("place", "place", "order")
    assert place.counts_account_orders and place.acks_each_order and place.lane == ""
    assert (place.result_model, place.result_many) == ("OrderAck", False)
    assert batch.single_order_twin == place.path and batch.result_many
    cancel = reg.by_name("cancel_batch_orders")
    assert cancel.lane == "cancel" and cancel.order_validation == ""
    assert not cancel.counts_account_orders and cancel.acks_each_order
    assert reg.by_name("cancel_all_after").lane == "cancel"
    assert not reg.by_name("cancel_all_after").enters_orders
    assert reg.by_name("get_order").expected_codes == {"51603"}
    assert reg.by_name("create_subaccount_apikey").secret_fields >= {"secretKey"}
    # every cancel rides the cancel lane; nothing else but the dead-man switch does
    laned = {ep.path for ep in reg if ep.lane == "cancel"}
    cancels = {ep.path for ep in reg if ep.order_action == "cancel"}
    assert laned - cancels == {"/api/v5/trade/cancel-all-after"} and cancels <= laned
    # the views kept for earlier callers agree with the attributes
    for ep in reg:
        spec = RESULTS.get(ep.key)
        assert (
            (spec[0].__name__, spec[1]) == (ep.result_model, ep.result_many)
            if spec
            else (not ep.result_model)
        ), ep.key


def test_gate_ws_and_sim_read_the_endpoint_facts() -> None:
    from okx_sync.gate.charges import plan_charges, rides_cancel_lane
    from okx_sync.sim.ratelimit import SINGLE_OF_BATCH
    from okx_sync.ws.orders import WS_ORDER_OPS

    reg = registry()
    assert (
        WS_ORDER_OPS == {ep.name: (ep.ws_op, ep.path, ep.batch) for ep in reg if ep.ws_op}
        and len(WS_ORDER_OPS) == 10
    )
    assert WS_ORDER_OPS["spread_mass_cancel"] == (
        "sprd-mass-cancel", "/api/v5/sprd/mass-cancel", False,
    )  # fmt: skip
    assert WS_ORDER_OPS["cancel_batch_orders"] == (
        "batch-cancel-orders", "/api/v5/trade/cancel-batch-orders", True,
    )  # fmt: skip
    assert SINGLE_OF_BATCH["/api/v5/trade/amend-batch-orders"] == "/api/v5/trade/amend-order"
    assert rides_cancel_lane(reg.by_name("cancel_all_after"))
    assert not rides_cancel_lane(reg.by_name("place_order"))
    one = plan_charges(reg.by_name("place_batch_orders"), [{"instId": "BTC-USDT"}])
    assert one[0].key.startswith("POST /api/v5/trade/order [")  # the single-order twin
