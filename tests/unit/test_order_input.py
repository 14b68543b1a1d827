"""Malformed order input is refused with ValidationError before anything is sent:
numbers that are out of range, not finite, negative sizes, bools and floats, and client
order ids that OKX would not accept, over REST named methods (single and batch, with
and without the instrument check) and WS order entry."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from okx_sync import WSClient
from okx_sync.auth import Credentials
from okx_sync.errors import InstrumentRuleError, RequestStateError, ValidationError
from okx_sync.ids import is_valid_cl_ord_id, new_cl_ord_id
from okx_sync.instruments import InstrumentCache, round_price, validate_amend, validate_order
from okx_sync.models import Instrument
from okx_sync.rest.endpoints import registry
from okx_sync.rest.params import build_params
from okx_sync.ws.config import WSConfig
from tests.unit.test_api_named import SWAP_INST, FakeClient

INST = Instrument.from_okx(SWAP_INST)  # tickSz 0.1, lotSz 0.01, minSz 0.1, maxLmtSz 100000
ORDER = dict(inst_id="BTC-USDT-SWAP", td_mode="cross", side="buy", ord_type="limit")

BAD_NUMBERS: list[tuple[str, Any]] = [
    ("px", "1e30"),
    ("sz", 10**400),
    ("sz", "1e40"),
    ("px", Decimal("NaN")),
    ("px", Decimal("sNaN")),
    ("sz", Decimal("Infinity")),
    ("sz", "-Infinity"),
    ("sz", "-1"),
    ("sz", "0"),
    ("sz", Decimal("-0.5")),
    ("px", True),
    ("sz", False),
    ("sz", 1.5),
    ("px", "1_000"),
    ("px", "12abc"),
    ("px", "0." + "0" * 30 + "1"),
    ("px", Decimal("1e999999999")),  # its plain form would be a gigabyte
]


ACK = [{"ordId": "1", "clOrdId": "", "sCode": "0", "sMsg": ""}]
ANSWERS = {f"/api/v5/trade/{p}": ACK for p in ("order", "cancel-order")}


def _ids(case: tuple[str, Any]) -> str:
    return f"{case[0]}={str(case[1])[:12]}"


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("case", BAD_NUMBERS, ids=_ids)
def test_rest_place_bad_number_is_validation_error_nothing_sent(
    case: tuple[str, Any], validate: bool
) -> None:
    field, value = case
    c = FakeClient()
    kwargs = {**ORDER, "px": "100.1", "sz": "1", field: value}
    with pytest.raises(ValidationError) as info:
        c.trade.place_order(**kwargs, validate=validate)
    assert field in str(info.value)
    assert c.sent() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("new_sz", "1e40"), ("new_px", "1e30"), ("new_sz", "-2"), ("new_px", Decimal("NaN"))],
)
def test_rest_amend_bad_number_refused_single_and_batch(field: str, value: Any) -> None:
    c = FakeClient()
    with pytest.raises(ValidationError):
        c.trade.amend_order(inst_id="BTC-USDT-SWAP", ord_id="9", **{field: value})
    with pytest.raises(ValidationError) as info:
        c.trade.amend_batch_orders(
            orders=[
                {"inst_id": "BTC-USDT-SWAP", "ord_id": "8", "new_sz": "2"},
                {"inst_id": "BTC-USDT-SWAP", "ord_id": "9", field: value},
            ]
        )
    assert "orders[1]" in str(info.value)
    assert c.sent() == []


def test_batch_place_and_nested_prices_checked() -> None:
    c = FakeClient()
    with pytest.raises(ValidationError, match=r"sz in orders\[1\]"):
        c.trade.place_batch_orders(
            orders=[{**ORDER, "px": "100.1", "sz": "1"}, {**ORDER, "sz": "-1"}]
        )
    with pytest.raises(ValidationError, match=r"tpTriggerPx in attachAlgoOrds\[0\]"):
        c.trade.place_order(
            **ORDER, px="100.1", sz="1", attach_algo_ords=[{"tp_trigger_px": "nan"}]
        )
    with pytest.raises(ValidationError, match="sz"):
        c.trade.place_order(**ORDER, px="100.1", extra={"sz": "1e40"})  # raw OKX params too
    assert c.sent() == []


def test_good_numbers_sent_in_plain_notation() -> None:
    c = FakeClient(ANSWERS)
    c.trade.place_order(
        **ORDER, px="1001e-1", sz=Decimal("2.50"), attach_algo_ords=[{"sl_ord_px": "-1"}]
    )
    ((_, path, params, _),) = c.sent()
    assert path == "/api/v5/trade/order"
    assert params["px"] == "100.1" and params["sz"] == "2.50"
    assert params["attachAlgoOrds"] == [{"slOrdPx": "-1"}]  # -1: market, any sign for prices


def test_instrument_rules_no_longer_raise_invalid_operation() -> None:
    # 20 digits before the point with a 1e-12 step: beyond the default 28-digit context
    fine = Instrument.from_okx({**SWAP_INST, "lotSz": "0.000000000001", "maxLmtSz": "1"})
    with pytest.raises(InstrumentRuleError) as info:
        validate_order(fine, px="100.1", sz="99999999999999999999.5", ord_type="limit")
    assert info.value.rule == "maxLmtSz"
    for kw in ({"px": "1e30", "sz": "1"}, {"px": "100.1", "sz": 10**400}):
        with pytest.raises(ValidationError, match="out of range"):
            validate_order(INST, ord_type="limit", **kw)
    with pytest.raises(ValidationError, match="out of range"):
        validate_amend(INST, new_sz="1e40")
    assert round_price(INST, "99999999999999999999.16") == Decimal("99999999999999999999.2")


# --------------------------------------------------------------------------- clOrdId

ID = "(clOrdId|cl_ord_id)"  # a float is refused as a float, naming the keyword
BAD_IDS = ["", "a" * 33, "abc-1", "abc 1", "abc\n", "é1", True, 12.5]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_rest_bad_cl_ord_id_refused(bad: Any) -> None:
    c = FakeClient()
    with pytest.raises(ValidationError, match=ID):
        c.trade.place_order(**ORDER, px="100.1", sz="1", cl_ord_id=bad)
    with pytest.raises(ValidationError, match=ID + r" in orders\[1\]"):
        c.trade.place_batch_orders(
            orders=[
                {**ORDER, "px": "100.1", "sz": "1", "cl_ord_id": "ok1"},
                {**ORDER, "px": "100.1", "sz": "1", "cl_ord_id": bad},
            ]
        )
    with pytest.raises(ValidationError, match=ID):  # a GET query would drop ""
        c.trade.get_order(inst_id="BTC-USDT-SWAP", cl_ord_id=bad)
    with pytest.raises(ValidationError, match=ID):
        c.trade.cancel_order(inst_id="BTC-USDT-SWAP", extra={"clOrdId": bad})
    assert c.sent() == []


def test_empty_cl_ord_id_says_leave_it_out_and_valid_ids_pass() -> None:
    c = FakeClient(ANSWERS)
    with pytest.raises(ValidationError, match="leave it out"):
        c.trade.cancel_order(inst_id="BTC-USDT-SWAP", cl_ord_id="")
    cid = new_cl_ord_id("bot7")
    c.trade.cancel_order(inst_id="BTC-USDT-SWAP", cl_ord_id=cid)
    c.trade.place_order(**ORDER, px="100.1", sz="1", cl_ord_id="A" * 32)
    assert [p["clOrdId"] for _, _, p, _ in c.sent()] == [cid, "A" * 32]


def test_algo_client_ids_checked_too() -> None:
    ep = registry().get("POST", "/api/v5/trade/order-algo")
    assert ep is not None
    base = dict(inst_id="BTC-USDT-SWAP", td_mode="cross", side="buy", ord_type="conditional")
    with pytest.raises(ValidationError, match="algoClOrdId"):
        build_params(ep, {**base, "sz": "1", "algo_cl_ord_id": "x_1"})
    assert build_params(ep, {**base, "sz": "1", "algo_cl_ord_id": "x1"})["algoClOrdId"] == "x1"
    # the fiat buy/sell docs give its clOrdId no format: only "" and non-strings refused
    fiat = registry().get("POST", "/api/v5/fiat/buy-sell/trade")
    assert fiat is not None
    keys = ("quote_id", "side", "from_ccy", "to_ccy", "rfq_amt", "rfq_ccy", "payment_method")
    trade = {k: "x" for k in keys}
    assert build_params(fiat, {**trade, "cl_ord_id": "my-id_1"})["clOrdId"] == "my-id_1"
    with pytest.raises(ValidationError, match="non-empty string"):
        build_params(fiat, {**trade, "cl_ord_id": ""})


def test_new_cl_ord_id_valid_and_prefix_must_fit() -> None:
    for prefix in ("", "a", "bot7", "ABCDEF"):
        assert is_valid_cl_ord_id(new_cl_ord_id(prefix))
    for prefix in ("abcdefg", "ab\n", "a_b"):
        with pytest.raises(ValidationError):
            new_cl_ord_id(prefix)
    assert not is_valid_cl_ord_id("abc\n") and not is_valid_cl_ord_id(None)


# --------------------------------------------------------------------------- WS


@pytest.fixture
def ws() -> Any:
    fetches: list[str] = []

    def fetch(inst_type: str, inst_family: str | None) -> list[Instrument]:
        fetches.append(inst_type)
        return [INST]

    client = WSClient(
        "ws://127.0.0.1:9/ws/v5/private",
        credentials=Credentials(api_key="k", secret_key="s", passphrase="p"),
        instruments=InstrumentCache(fetch),
        config=WSConfig(connect_timeout_s=1.0),
    )
    yield client
    client.close()


@pytest.mark.parametrize("case", BAD_NUMBERS, ids=_ids)
def test_ws_place_bad_number_is_validation_error(ws: Any, case: tuple[str, Any]) -> None:
    field, value = case
    with pytest.raises(ValidationError):
        ws.place_order(**{**ORDER, "px": "100.1", "sz": "1", field: value}, timeout_s=0)


def test_ws_amend_and_cl_ord_id_refused_and_a_good_order_reaches_the_socket(ws: Any) -> None:
    with pytest.raises(ValidationError):
        ws.amend_order(inst_id="BTC-USDT-SWAP", ord_id="9", new_sz="1e40", timeout_s=0)
    with pytest.raises(ValidationError, match="clOrdId"):
        ws.cancel_order(inst_id="BTC-USDT-SWAP", cl_ord_id="", timeout_s=0)
    with pytest.raises(ValidationError, match=r"clOrdId in orders\[0\]"):
        ws.place_batch_orders(
            [{**ORDER, "px": "100.1", "sz": "1", "cl_ord_id": "a-b"}], timeout_s=0
        )
    # the same call with good input passes validation and fails only for want of a socket
    with pytest.raises(RequestStateError) as info:
        ws.place_order(**ORDER, px="100.1", sz="1", cl_ord_id="ok1", timeout_s=0)
    assert info.value.stage == "ws" and info.value.dispatched is False
