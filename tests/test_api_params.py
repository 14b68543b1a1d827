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
