"""okx_sync.naming: the one snake_case <-> OKX name mapping, used by params and models."""

from __future__ import annotations

import pytest

from okx_sync import naming
from okx_sync.models.base import okx_name
from okx_sync.models.market import Ticker
from okx_sync.naming import IRREGULAR, is_raw_okx_name, to_okx, to_snake
from okx_sync.rest import params


@pytest.mark.parametrize(
    ("snake", "okx"),
    [
        ("inst_id", "instId"),
        ("cl_ord_id", "clOrdId"),
        ("algo_cl_ord_id", "algoClOrdId"),
        ("tgt_ccy", "tgtCcy"),
        ("cl_t_req_id", "clTReqId"),  # one-letter part
        ("from_", "from"),  # Python keyword
        ("side", "side"),
        ("px", "px"),
    ],
)
def test_names_map_both_ways(snake: str, okx: str) -> None:
    assert to_okx(snake) == okx
    assert to_snake(okx) == snake


def test_raw_okx_names_map_to_themselves_and_keywords_get_an_underscore() -> None:
    assert to_okx("instId") == "instId"  # no underscore: passed unchanged
    assert to_snake("from") == "from_" and to_okx(to_snake("from")) == "from"
    assert to_snake("import") == "import_"  # any keyword, not only the listed ones
    assert IRREGULAR == {"from_": "from"}


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("newField", True),
        ("clOrdId", True),
        ("a1B2", True),
        ("side", False),  # no capital: could be a snake name
        ("inst_id", False),
        ("InstId", False),  # upper-case first letter
        ("clOrd-Id", False),
        ("", False),
    ],
)
def test_is_raw_okx_name(name: str, raw: bool) -> None:
    assert is_raw_okx_name(name) is raw


def test_params_and_models_use_this_one_mapping() -> None:
    assert params.to_okx is to_okx and params.to_snake is to_snake
    assert params.IRREGULAR is naming.IRREGULAR
    assert okx_name("ask_px") == "askPx"
    t = Ticker.from_okx({"instId": "BTC-USDT", "askPx": "101.5", "bidSz": "2"})
    assert str(t.ask_px) == "101.5" and str(t.bid_sz) == "2"
