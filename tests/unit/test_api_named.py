"""Named methods declared from the registry: discoverable, documented, typed results,
order validation before sending, the expTime header, the generated stub is current."""

from __future__ import annotations

import importlib.util
import inspect
import json
from typing import Any

import pytest

import okx_sync.rest.named
from okx_sync.errors import APIError, InstrumentRuleError, ValidationError
from okx_sync.models import (
    AccountRateLimit,
    Balance,
    Candle,
    Instrument,
    Order,
    OrderAck,
    OrderBook,
    ServerTime,
    Ticker,
)
from okx_sync.rest.api import (
    ALIASES,
    GROUP_CLASSES,
    RestAPI,
    group_attr,
    method_name,
    method_names,
)
from okx_sync.rest.endpoints import Endpoint, registry
from tests.conftest import REPO

SWAP_INST = {
    "instType": "SWAP",
    "instId": "BTC-USDT-SWAP",
    "tickSz": "0.1",
    "lotSz": "0.01",
    "minSz": "0.1",
    "maxLmtSz": "100000",
    "maxMktSz": "12000",
    "instIdCode": 10459,
}


class FakeRest:
    """Records calls; answers from a table keyed by path."""

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[str, str, Any, dict[str, Any]]] = []
        self.answers = answers or {}

    def call(self, endpoint: Any, params: Any, **kw: Any) -> Any:
        self.calls.append((endpoint.method, endpoint.path, params, kw))
        if endpoint.path == "/api/v5/public/instruments":
            return [SWAP_INST]
        return self.answers.get(endpoint.path, [])


class FakeClient(RestAPI):
    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self._rest = FakeRest(answers)

    def sent(self) -> list[tuple[str, str, Any, dict[str, Any]]]:
        return [c for c in self._rest.calls if c[1] != "/api/v5/public/instruments"]


@pytest.mark.parametrize("ep", list(registry()), ids=lambda e: f"{e.method} {e.path}")
def test_every_endpoint_has_a_documented_method(ep: Any) -> None:
    client = FakeClient()
    group = getattr(client, group_attr(ep.group))
    method = getattr(group, method_name(ep))
    doc = method.__doc__ or ""
    assert f"{ep.method} {ep.path}" in doc and ep.rate_text in doc
    assert f"Registry name: {ep.name} " in doc
    assert method_name(ep) in dir(group)
    sig = inspect.signature(method)
    assert "extra" in sig.parameters
    if ep.enters_orders:
        # the expTime header keyword; no order-entry endpoint has an expTime parameter
        assert sig.parameters["exp_time"].annotation == "int | None"


def test_groups_cover_the_issue_names() -> None:
    expected = {
        "trade", "account", "market", "public", "asset", "subaccount", "algo", "grid",
        "copytrading", "spread", "rfq", "rubik", "finance", "affiliate", "system", "fiat",
        "support", "signal", "recurring", "dca",
    }  # fmt: skip
    assert set(GROUP_CLASSES) == expected
    total = sum(len(cls.endpoints) for cls in GROUP_CLASSES.values())
    assert total == len(registry()) == 379
    assert all(a in dir(FakeClient()) for a in expected)


def test_aliases_point_at_the_same_function() -> None:
    for (attr, alias), target in ALIASES.items():
        cls = GROUP_CLASSES[attr]
        assert getattr(cls, alias) is getattr(cls, target)


def test_help_shows_signature_and_doc() -> None:
    text = inspect.getdoc(FakeClient().trade.place_order) or ""
    assert "POST /api/v5/trade/order" in text and "inst_id (instId, required)" in text
    sig = str(inspect.signature(FakeClient().market.get_ticker))
    assert sig.startswith("(*, inst_id")


def test_stub_is_current() -> None:
    path = REPO / "okx_sync" / "rest" / "api.pyi"
    spec = importlib.util.spec_from_file_location(
        "gen_api_stub", REPO / "scripts" / "gen_api_stub.py"
    )
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert path.read_text("utf-8") == gen.render_stub(), "run: python scripts/gen_api_stub.py"
    assert not hasattr(okx_sync.rest.named, "render_stub")  # the package does not ship it


def test_typed_results() -> None:
    answers = {
        "/api/v5/market/ticker": [{"instId": "BTC-USDT", "last": "1.5", "ts": "1"}],
        "/api/v5/market/books": [
            {"asks": [["2", "1", "0", "3"]], "bids": [["1", "4", "0", "1"]], "ts": "5"}
        ],
        "/api/v5/market/candles": [["1", "1", "2", "0.5", "1.5", "10", "1", "15", "0"]],
        "/api/v5/public/time": [{"ts": "1700000000000"}],
        "/api/v5/account/balance": [{"totalEq": "10", "details": [{"ccy": "USDT", "eq": "10"}]}],
        "/api/v5/trade/account-rate-limit": [
            {
                "accRateLimit": "2000",
                "fillRatio": "0.1",
                "mainFillRatio": "0.1",
                "nextAccRateLimit": "2000",
                "ts": "1",
            }
        ],
        "/api/v5/trade/orders-pending": [{"ordId": "1", "px": "1.0", "state": "live"}],
        "/api/v5/market/index-components": {"index": "BTC-USDT", "components": []},
    }
    c = FakeClient(answers)
    t = c.market.get_ticker(inst_id="BTC-USDT")
    assert isinstance(t, Ticker) and str(t.last) == "1.5"
    book = c.market.get_order_book(inst_id="BTC-USDT", sz=5)
    assert isinstance(book, OrderBook) and book.inst_id == "BTC-USDT" and book.best_ask.orders == 3  # type: ignore[union-attr]
    (candle,) = c.market.get_candles(inst_id="BTC-USDT")
    assert isinstance(candle, Candle) and candle.confirm is False and candle.inst_id == "BTC-USDT"
    assert isinstance(c.public.get_system_time(), ServerTime)
    assert isinstance(c.public.get_time(), ServerTime)
    bal = c.account.get_balance()
    assert isinstance(bal, Balance) and bal.details[0].ccy == "USDT"
    assert isinstance(c.trade.get_account_rate_limit(), AccountRateLimit)
    (order,) = c.trade.get_orders_pending()
    assert isinstance(order, Order) and order.is_live
    (comp,) = c.public.get_index_components(index="BTC-USDT")
    assert type(comp).__name__ == "GetIndexComponentsResult"
    assert comp.index == "BTC-USDT" and comp.components == () and comp.ts is None
    assert comp.raw == {"index": "BTC-USDT", "components": []}
    assert c.account.get_bills() == []
    with pytest.raises(APIError, match="no data"):
        FakeClient().market.get_ticker(inst_id="NONE")
    sent = c.sent()
    assert sent[1][2] == {"instId": "BTC-USDT", "sz": "5"}


def test_place_order_validates_before_sending_and_sends_exp_time() -> None:
    ack = [{"ordId": "9", "clOrdId": "c1", "sCode": "0", "sMsg": ""}]
    c = FakeClient({"/api/v5/trade/order": ack, "/api/v5/trade/batch-orders": ack * 2})
    order = dict(inst_id="BTC-USDT-SWAP", td_mode="cross", side="buy", ord_type="limit", sz="1")
    for px, sz, rule in (
        ("100.05", "1", "tickSz"),
        ("100.1", "1.005", "lotSz"),
        ("100.1", "0.05", "minSz"),
    ):
        with pytest.raises(InstrumentRuleError) as e:
            c.trade.place_order(**{**order, "px": px, "sz": sz})
        assert e.value.rule == rule and rule in str(e.value)
    assert c.sent() == []  # nothing reached the REST core
    got = c.trade.place_order(**order, px="100.1", cl_ord_id="c1", exp_time=1_700_000_000_000)
    assert isinstance(got, OrderAck) and got.ok
    (method, path, params, kw) = c.sent()[-1]
    assert (method, path) == ("POST", "/api/v5/trade/order")
    assert params["clOrdId"] == "c1" and params["px"] == "100.1"
    assert kw == {"headers": {"expTime": "1700000000000"}}
    with pytest.raises(InstrumentRuleError):
        c.trade.place_batch_orders(orders=[{**order, "px": "1.1"}, {**order, "px": "1.15"}])
    assert len(c.sent()) == 1
    acks = c.trade.place_batch_orders(orders=[{**order, "px": "1.1"}, {**order, "px": "1.2"}])
    assert [type(a) for a in acks] == [OrderAck, OrderAck]
    with pytest.raises(InstrumentRuleError):
        c.trade.amend_order(inst_id="BTC-USDT-SWAP", ord_id="9", new_px="1.15")
    c.trade.place_order(**order, px="100.15", validate=False)  # escape hatch
    with pytest.raises(ValidationError, match="exp_time"):
        c.trade.place_order(**order, px="100.1", exp_time="soon")


def test_unknown_keyword_refused_before_sending() -> None:
    c = FakeClient()
    with pytest.raises(ValidationError, match="market.get_ticker.*'instid'"):
        c.market.get_ticker(instid="BTC-USDT")
    assert c.sent() == []


def test_instrument_helpers_on_client() -> None:
    c = FakeClient()
    inst = c.instrument("BTC-USDT-SWAP")
    assert isinstance(inst, Instrument) and c.inst_id_code("BTC-USDT-SWAP") == 10459
    assert [i.inst_id for i in c.instruments("SWAP")] == ["BTC-USDT-SWAP"]
    assert str(c.round_price("BTC-USDT-SWAP", "100.06")) == "100.1"
    assert str(c.round_size("BTC-USDT-SWAP", "1.019")) == "1.01"
    fetches = [x for x in c._rest.calls if x[1] == "/api/v5/public/instruments"]
    assert len(fetches) == 1 and fetches[0][2] == {"instType": "SWAP"}


def test_docs_coverage_json_roundtrip_of_names() -> None:
    # every method name is a valid identifier and unique within its group
    for cls in GROUP_CLASSES.values():
        names = [method_name(e) for e in cls.endpoints]
        assert len(names) == len(set(names)) and all(n.isidentifier() for n in names)
    json.dumps({a: [method_name(e) for e in c.endpoints] for a, c in GROUP_CLASSES.items()})


def test_method_names_do_not_repeat_their_group() -> None:
    # client.grid.amend_order, not client.grid.grid_amend_order; the registry name stays
    # in the docstring. Both spellings of a group count: the client attribute
    # (subaccount, asset, system) and the registry group in snake form (sub_account).
    stripped = 0
    for attr, cls in GROUP_CLASSES.items():
        prefixes = (attr + "_", cls.group.replace("-", "_") + "_")
        public = [n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))]
        assert public and not [n for n in public if n.startswith(prefixes)], attr
        for ep in cls.endpoints:
            method = getattr(cls, method_name(ep))
            assert method.endpoint is ep and method.__name__ == method_name(ep)
            assert f"Registry name: {ep.name} " in (method.__doc__ or "")
            if method_name(ep) != ep.name:
                stripped += 1
                assert not hasattr(cls, ep.name)  # the long name is gone
    assert stripped >= 50
    assert GROUP_CLASSES["grid"].amend_order.endpoint.name == "grid_amend_order"
    assert GROUP_CLASSES["subaccount"].transfer.endpoint.name == "subaccount_transfer"
    assert GROUP_CLASSES["rfq"].cancel_all_after.endpoint.path == "/api/v5/rfq/cancel-all-after"


def _row(group: str, path: str, name: str) -> Endpoint:
    return Endpoint(
        group=group, method="POST", path=path, auth="private", permission="Trade",
        limit=1, window_s=1.0, rule="UID", cost_unit="request", name=name,
    )  # fmt: skip


def test_a_stripped_name_that_collides_is_refused() -> None:
    # Stripping never picks a winner: a clash is a registry error naming both rows.
    a = _row("grid", "/api/v5/x/a", "grid_stop_order")
    b = _row("grid", "/api/v5/x/b", "stop_order")
    with pytest.raises(ValueError, match="grid.stop_order would serve both grid_stop_order"):
        method_names([a, b])
    sub = _row("sub-account", "/api/v5/x/c", "sub_account_transfer")
    other = _row("sub-account", "/api/v5/x/d", "transfer_in")
    assert method_names([sub, other]) == {"transfer": sub, "transfer_in": other}
    with pytest.raises(ValueError, match="method name 'class'"):
        method_names([_row("grid", "/api/v5/x/e", "grid_class")])
