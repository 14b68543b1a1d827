"""The request-parameter data and the one snake_case <-> OKX name mapping."""

from __future__ import annotations

from decimal import Decimal

import pytest

from okx_sync.errors import ValidationError
from okx_sync.rest.endpoints import registry
from okx_sync.rest.params import (
    IRREGULAR,
    SOURCE_COMMIT,
    all_params,
    batch_keyword,
    build_params,
    okx_value,
    params_for,
    to_okx,
    to_snake,
)


def ep(method: str, path: str):
    e = registry().get(method, path)
    assert e is not None
    return e


def test_every_registry_row_has_param_data() -> None:
    data = all_params()
    missing = [e.key for e in registry() if e.key not in data]
    assert missing == []
    assert set(data) == {e.key for e in registry()}


def test_param_sources_are_known_and_header_names_commit() -> None:
    from importlib import resources

    text = resources.files("okx_sync.rest").joinpath("params.tsv").read_text("utf-8")
    assert SOURCE_COMMIT in text
    assert {p.source for p in all_params().values()} <= {"docs", "pyokx", "xref", "infer"}
    docs = sum(1 for p in all_params().values() if p.source == "docs")
    assert docs >= 300


def test_get_endpoints_use_query_and_post_use_body() -> None:
    for e in registry():
        spec = params_for(e)
        if e.method == "GET":
            assert spec.kind == "query", e.key
        else:
            assert spec.kind in ("body", "items"), e.key


@pytest.mark.parametrize(
    ("snake", "okx"),
    [
        ("inst_id", "instId"),
        ("cl_ord_id", "clOrdId"),
        ("td_mode", "tdMode"),
        ("attach_algo_ords", "attachAlgoOrds"),
        ("cl_t_req_id", "clTReqId"),
        ("from_", "from"),
        ("side", "side"),
    ],
)
def test_name_mapping(snake: str, okx: str) -> None:
    assert to_okx(snake) == okx
    assert to_snake(okx) == snake


def test_every_okx_param_round_trips_and_no_two_collide() -> None:
    seen: dict[str, str] = {}
    for spec in all_params().values():
        for p in spec.params:
            assert to_okx(p.snake) == p.okx
            assert p.snake.isidentifier()
            other = seen.setdefault(p.snake, p.okx)
            assert other == p.okx
    assert IRREGULAR["from_"] == "from"


def test_build_maps_keywords_and_converts_values() -> None:
    out = build_params(
        ep("POST", "/api/v5/trade/order"),
        {
            "inst_id": "BTC-USDT",
            "td_mode": "cash",
            "side": "buy",
            "ord_type": "limit",
            "sz": Decimal("0.01"),
            "px": Decimal("1E+3"),
            "cl_ord_id": None,
            "attach_algo_ords": [{"tp_trigger_px": Decimal("2000"), "tp_ord_px": "-1"}],
        },
    )
    assert out == {
        "instId": "BTC-USDT",
        "tdMode": "cash",
        "side": "buy",
        "ordType": "limit",
        "sz": "0.01",
        "px": "1000",
        "attachAlgoOrds": [{"tpTriggerPx": "2000", "tpOrdPx": "-1"}],
    }


def test_unknown_keyword_is_refused_naming_keyword_and_method() -> None:
    with pytest.raises(ValidationError) as e:
        build_params(ep("GET", "/api/v5/market/ticker"), {"inst_id": "X", "instrument": "Y"})
    assert "'instrument'" in str(e.value)
    assert "market.get_ticker" in str(e.value)


def test_missing_required_is_refused() -> None:
    with pytest.raises(ValidationError, match="inst_id"):
        build_params(ep("GET", "/api/v5/market/ticker"), {})


def test_raw_okx_names_and_extra_pass_through() -> None:
    out = build_params(
        ep("GET", "/api/v5/market/ticker"), {"inst_id": "X", "futureField": "1"}, {"other": "2"}
    )
    assert out == {"instId": "X", "futureField": "1", "other": "2"}


def test_declared_okx_spelling_is_accepted_but_not_twice() -> None:
    e = ep("GET", "/api/v5/market/ticker")
    assert build_params(e, {"instId": "X"}) == {"instId": "X"}
    with pytest.raises(ValidationError, match="twice"):
        build_params(e, {"instId": "X", "inst_id": "Y"})


def test_float_is_refused() -> None:
    with pytest.raises(ValidationError, match="float"):
        okx_value(0.1, where="px")


def test_python_keyword_parameter_from() -> None:
    out = build_params(
        ep("POST", "/api/v5/asset/transfer"),
        {"ccy": "USDT", "amt": "1", "from_": "6", "to": "18"},
    )
    assert out["from"] == "6"


def test_batch_endpoints_take_a_list_and_check_each_item() -> None:
    e = ep("POST", "/api/v5/trade/batch-orders")
    assert batch_keyword(e) == "orders"
    item = {"inst_id": "A", "td_mode": "cash", "side": "buy", "ord_type": "market", "sz": "1"}
    assert build_params(e, {"orders": [item]}) == [
        {"instId": "A", "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "1"}
    ]
    with pytest.raises(ValidationError, match=r"orders\[1\]"):
        build_params(e, {"orders": [item, {"inst_id": "A"}]})
    with pytest.raises(ValidationError, match="empty"):
        build_params(e, {"orders": []})
    with pytest.raises(ValidationError, match="unknown keyword"):
        build_params(e, {"orders": [item], "inst_id": "A"})
    assert batch_keyword(ep("POST", "/api/v5/trade/cancel-algos")) == "items"


PLACE = {"inst_id": "BTC-USDT", "td_mode": "cash", "side": "buy", "ord_type": "limit",
         "px": "1", "sz": "1"}  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    ["clOrdID", "ClOrdId", "clordid", "CLORDID", "cl_ordid", "Cl_Ord_Id", "instID", "tdmode"],
)
def test_near_miss_of_a_declared_name_is_refused_naming_the_declared_one(bad: str) -> None:
    # sent as written, OKX ignores the field: the order would go out without a clOrdId
    e = ep("POST", "/api/v5/trade/order")
    with pytest.raises(ValidationError) as info:
        build_params(e, {**PLACE, bad: "abc"})
    text = str(info.value)
    assert repr(bad) in text and "trade.place_order" in text
    p = next(p for p in params_for(e).params if p.okx.lower() == bad.replace("_", "").lower())
    assert f"did you mean {p.snake!r} (OKX {p.okx!r})" in text
    with pytest.raises(ValidationError, match="did you mean"):
        build_params(e, PLACE, {bad: "abc"})  # the same through extra
    with pytest.raises(ValidationError, match=r"in orders\[0\].*did you mean"):
        build_params(ep("POST", "/api/v5/trade/batch-orders"), {"orders": [{**PLACE, bad: "x"}]})


def test_extra_takes_okx_names_and_still_passes_unknown_fields() -> None:
    e = ep("POST", "/api/v5/trade/order")
    out = build_params(e, PLACE, {"clOrdId": "c1", "brandNewField": "1"})
    assert out["clOrdId"] == "c1" and out["brandNewField"] == "1"
    assert build_params(e, {**PLACE, "brandNewField": "1"})["brandNewField"] == "1"
    with pytest.raises(ValidationError, match=r"extra takes raw OKX names: pass 'clOrdId'"):
        build_params(e, PLACE, {"cl_ord_id": "c1"})


def test_a_typo_in_snake_case_names_the_closest_keyword() -> None:
    with pytest.raises(ValidationError, match=r"'cl_ord_idd' \(did you mean 'cl_ord_id'\?\)"):
        build_params(ep("POST", "/api/v5/trade/order"), {**PLACE, "cl_ord_idd": "c1"})


ATTACH = {
    "/api/v5/trade/order": ("body", "tpTriggerPx"),
    "/api/v5/trade/batch-orders": ("items", "tpTriggerPx"),
    "/api/v5/trade/order-precheck": ("body", "tpTriggerPx"),
    "/api/v5/trade/order-algo": ("body", "tpTriggerPx"),
    "/api/v5/trade/amend-order": ("body", "newTpTriggerPx"),
    "/api/v5/trade/amend-batch-orders": ("items", "newTpTriggerPx"),
    "/api/v5/trade/amend-algos": ("body", "newTpTriggerPx"),
}


def test_attach_algo_ords_fields_are_data_for_every_endpoint_that_takes_it() -> None:
    with_attach = {k for k, s in all_params().items() if "attachAlgoOrds" in s.by_okx}
    assert with_attach == {("POST", path) for path in ATTACH}
    for (method, path), spec in all_params().items():
        # nested fields are declared only for attachAlgoOrds, never as top-level params
        assert set(spec.fields) <= {"attachAlgoOrds"}, path
        assert all("." not in p.okx for p in spec.params), path
        if (method, path) in with_attach:
            fields = spec.fields["attachAlgoOrds"]
            kind, trigger = ATTACH[path]
            assert spec.kind == kind and trigger in fields.by_okx
            for p in fields.params:
                assert to_okx(p.snake) == p.okx and p.location == "field"
    place = params_for(ep("POST", "/api/v5/trade/order")).fields["attachAlgoOrds"]
    assert {"attachAlgoClOrdId", "tpOrdPx", "slTriggerPx", "slOrdPx", "sz", "callbackRatio"} <= set(
        place.by_okx
    )
    amend = params_for(ep("POST", "/api/v5/trade/amend-order")).fields["attachAlgoOrds"]
    assert {"attachAlgoId", "newSlTriggerPx", "newSlOrdPx"} <= set(amend.by_okx)
    assert "tpTriggerPx" not in amend.by_okx


AT = r"(attach_algo_ords\[1\]|attachAlgoOrds\[0\] in extra)"


def test_attach_algo_ords_keys_are_checked_against_the_documented_fields() -> None:
    e = ep("POST", "/api/v5/trade/order")
    tp_sl = {"tp_trigger_px": Decimal("2100"), "tp_ord_px": "-1", "slTriggerPx": "1900",
             "sl_ord_px": "-1", "attach_algo_cl_ord_id": "a1"}  # fmt: skip
    out = build_params(e, {**PLACE, "attach_algo_ords": [tp_sl]})
    assert out["attachAlgoOrds"] == [
        {"tpTriggerPx": "2100", "tpOrdPx": "-1", "slTriggerPx": "1900", "slOrdPx": "-1",
         "attachAlgoClOrdId": "a1"}
    ]  # fmt: skip
    cases = [
        ({"tp_triger_px": "1"}, rf"unknown keyword 'tp_triger_px' in {AT} "
                                r"\(did you mean 'tp_trigger_px'\?\)"),
        ({"tpTriggerPX": "1"}, rf"'tpTriggerPX' in {AT} is not a parameter "
                               r"name; did you mean 'tp_trigger_px' \(OKX 'tpTriggerPx'\)"),
        ({"attachAlgoClOrdID": "a"}, r"did you mean 'attach_algo_cl_ord_id'"),
        ({"tp_trigger_px": 1.5}, r"float"),
    ]  # fmt: skip
    for obj, message in cases:
        with pytest.raises(ValidationError, match=message):
            build_params(e, {**PLACE, "attach_algo_ords": [{"sl_trigger_px": "1"}, obj]})
        with pytest.raises(ValidationError, match=message):
            build_params(e, PLACE, {"attachAlgoOrds": [obj]})  # raw, through extra
    with pytest.raises(ValidationError, match=r"attach_algo_ords must be a list of mappings"):
        build_params(e, {**PLACE, "attach_algo_ords": {"tp_trigger_px": "1"}})
    with pytest.raises(ValidationError, match=r"attach_algo_ords\[0\] is not a mapping"):
        build_params(e, {**PLACE, "attach_algo_ords": ["tpTriggerPx=1"]})
    # a field OKX adds later passes through unchanged, as at the top level
    new = build_params(e, {**PLACE, "attach_algo_ords": [{"tp_trigger_px": "1", "newSub": "2"}]})
    assert new["attachAlgoOrds"] == [{"tpTriggerPx": "1", "newSub": "2"}]


def test_attach_algo_ords_in_batches_and_amends_use_their_own_fields() -> None:
    batch = ep("POST", "/api/v5/trade/batch-orders")
    with pytest.raises(
        ValidationError, match=r"'sl_ord_pxx' in attach_algo_ords\[1\] in orders\[1\]"
    ):
        build_params(batch, {"orders": [PLACE, {**PLACE, "attach_algo_ords": [
            {"sl_trigger_px": "1"}, {"sl_ord_pxx": "2"}]}]})  # fmt: skip
    amend = ep("POST", "/api/v5/trade/amend-order")
    out = build_params(amend, {"inst_id": "X", "ord_id": "1", "attach_algo_ords": [
        {"attach_algo_id": "9", "new_sl_trigger_px": "1", "new_sl_ord_px": "-1"}]})  # fmt: skip
    assert out["attachAlgoOrds"] == [
        {"attachAlgoId": "9", "newSlTriggerPx": "1", "newSlOrdPx": "-1"}
    ]
    with pytest.raises(ValidationError, match=r"'tp_trigger_px' in attach_algo_ords\[0\]"):
        # the placement field name is not an amend field (amend takes new_tp_trigger_px)
        build_params(amend, {"inst_id": "X", "ord_id": "1",
                             "attach_algo_ords": [{"tp_trigger_px": "1"}]})  # fmt: skip


# The endpoints the Go SDK (pkssssss/go-okx) refuses with "exactly one of" before sending;
# the rule here is derived from params.tsv (both names of a pair declared ``cond``).
ONE_ID_ENDPOINTS = {
    ("GET", "/api/v5/trade/order"): ("ord_id", "cl_ord_id"),
    ("POST", "/api/v5/trade/cancel-order"): ("ord_id", "cl_ord_id"),
    ("POST", "/api/v5/trade/amend-order"): ("ord_id", "cl_ord_id"),
    ("GET", "/api/v5/trade/order-algo"): ("algo_id", "algo_cl_ord_id"),
    ("POST", "/api/v5/trade/amend-algos"): ("algo_id", "algo_cl_ord_id"),
    ("GET", "/api/v5/sprd/order"): ("ord_id", "cl_ord_id"),
    ("POST", "/api/v5/sprd/cancel-order"): ("ord_id", "cl_ord_id"),
    ("POST", "/api/v5/sprd/amend-order"): ("ord_id", "cl_ord_id"),
    ("GET", "/api/v5/asset/deposit-withdraw-status"): ("wd_id", "tx_id"),
}
ONE_ID_BATCHES = {
    ("POST", "/api/v5/trade/cancel-batch-orders"): ("ord_id", "cl_ord_id"),
    ("POST", "/api/v5/trade/amend-batch-orders"): ("ord_id", "cl_ord_id"),
    ("POST", "/api/v5/trade/cancel-algos"): ("algo_id", "algo_cl_ord_id"),
}


def _base(e) -> dict[str, str]:
    """The endpoint's required keywords, each with a placeholder value."""
    return {p.snake: "1" for p in params_for(e).required}


@pytest.mark.parametrize("key", sorted(ONE_ID_ENDPOINTS))
def test_exactly_one_order_id_neither_or_both_refused(key: tuple[str, str]) -> None:
    e = ep(*key)
    a, b = ONE_ID_ENDPOINTS[key]
    base = _base(e)
    for given in ({}, {a: "1", b: "x1"}):
        with pytest.raises(ValidationError, match=f"exactly one of {a} .* or {b}") as err:
            build_params(e, {**base, **given})
        assert ("both" if given else "neither") in str(err.value)
    for one in (a, b):
        out = build_params(e, {**base, one: "x1"})
        assert isinstance(out, dict) and to_okx(one) in out


@pytest.mark.parametrize("key", sorted(ONE_ID_BATCHES))
def test_exactly_one_order_id_per_batch_element(key: tuple[str, str]) -> None:
    e = ep(*key)
    a, b = ONE_ID_BATCHES[key]
    kw = batch_keyword(e)
    base = _base(e)
    good = {**base, a: "1"}
    with pytest.raises(ValidationError, match=rf"exactly one of .* in {kw}\[1\], got both"):
        build_params(e, {kw: [good, {**base, a: "1", b: "x1"}]})
    with pytest.raises(ValidationError, match=rf"in {kw}\[0\], got neither"):
        build_params(e, {kw: [base]})
    assert len(build_params(e, {kw: [good, {**base, b: "x1"}]})) == 2


def test_exactly_one_id_rule_covers_just_these_endpoints() -> None:
    from okx_sync.rest.params import id_pairs

    covered = {key for key, spec in all_params().items() if id_pairs(spec)}
    assert covered == set(ONE_ID_ENDPOINTS) | set(ONE_ID_BATCHES)


def test_a_cancel_without_an_order_id_is_not_sent() -> None:
    from okx_sync import Client
    from okx_sync.testing import MockTransport

    sent: list[object] = []
    client = Client("k", "s", "p", transport=MockTransport(lambda req: sent.append(req)))
    try:
        with pytest.raises(ValidationError, match="got neither"):
            client.trade.cancel_order(inst_id="BTC-USDT")
        with pytest.raises(ValidationError, match="got both"):
            client.trade.cancel_order(inst_id="BTC-USDT", ord_id="1", cl_ord_id="a1")
    finally:
        client.close()
    assert sent == []
