"""Instrument rules: px/sz validation (Decimal), rounding, the TTL instruments cache."""

from __future__ import annotations

import json
import threading
from decimal import ROUND_UP, Decimal

import pytest

from okx_sync.clock import FakeClock
from okx_sync.errors import InstrumentRuleError, ValidationError
from okx_sync.instruments import (
    InstrumentCache,
    inst_family_of,
    inst_type_of,
    round_price,
    round_size,
    validate_amend,
    validate_order,
    validate_order_params,
)
from okx_sync.models import Instrument
from tests.conftest import realdata_path

SPOT = Instrument.from_okx(
    {
        "instType": "SPOT",
        "instId": "BTC-USDT",
        "tickSz": "0.1",
        "lotSz": "0.00000001",
        "minSz": "0.00001",
        "maxLmtSz": "9999999999",
        "maxMktSz": "1000000",
        "quoteCcy": "USDT",
        "baseCcy": "BTC",
    }
)
SWAP = Instrument.from_okx(
    {
        "instType": "SWAP",
        "instId": "BTC-USDT-SWAP",
        "tickSz": "0.1",
        "lotSz": "0.01",
        "minSz": "0.01",
        "maxLmtSz": "100000",
        "maxMktSz": "12000",
        "instIdCode": 10459,
    }
)


def rule_of(exc: pytest.ExceptionInfo[InstrumentRuleError]) -> str:
    return exc.value.rule


def test_price_off_tick_is_refused_naming_tick_sz() -> None:
    with pytest.raises(InstrumentRuleError) as e:
        validate_order(SPOT, px="100.05", sz="0.001", ord_type="limit")
    assert rule_of(e) == "tickSz" and "tickSz" in str(e.value) and "BTC-USDT" in str(e.value)
    assert e.value.value == "100.05" and e.value.limit == "0.1"


def test_size_off_lot_is_refused_naming_lot_sz() -> None:
    with pytest.raises(InstrumentRuleError) as e:
        validate_order(SWAP, px="100.1", sz="1.005", ord_type="limit")
    assert rule_of(e) == "lotSz" and "lotSz" in str(e.value)


def test_size_below_minimum_is_refused_naming_min_sz() -> None:
    with pytest.raises(InstrumentRuleError) as e:
        validate_order(SPOT, px="100.1", sz="0.000001", ord_type="limit")
    assert rule_of(e) == "minSz" and "minSz" in str(e.value)


def test_size_above_max_limit_size_is_refused() -> None:
    with pytest.raises(InstrumentRuleError) as e:
        validate_order(SWAP, px="100.1", sz="100000.01", ord_type="post_only")
    assert rule_of(e) == "maxLmtSz"
    with pytest.raises(InstrumentRuleError) as e2:
        validate_order(SWAP, sz="12000.01", ord_type="market")
    assert rule_of(e2) == "maxMktSz"


def test_valid_orders_pass_and_exact_decimal_arithmetic() -> None:
    validate_order(SPOT, px="100.1", sz="0.00001", ord_type="limit")
    validate_order(SPOT, px=Decimal("0.3"), sz=Decimal("0.30000001"), ord_type="limit")
    validate_order(SWAP, px="65000.0", sz="0.01", ord_type="limit")
    # float arithmetic would say 0.3 % 0.1 != 0; Decimal does not
    validate_order(SWAP, px="0.3", sz="0.03", ord_type="ioc")


def test_spot_market_buy_in_quote_currency_skips_base_rules() -> None:
    validate_order(SPOT, sz="25.5", ord_type="market", side="buy", td_mode="cash")
    with pytest.raises(InstrumentRuleError):
        validate_order(SPOT, sz="0.000001", ord_type="market", side="sell", td_mode="cash")


def test_float_and_garbage_refused() -> None:
    with pytest.raises(ValidationError, match="float"):
        validate_order(SPOT, px=100.1, sz="1", ord_type="limit")
    with pytest.raises(ValidationError):
        validate_order(SPOT, px="abc", sz="1", ord_type="limit")
    with pytest.raises(InstrumentRuleError):
        validate_order(SPOT, px="-1", sz="1", ord_type="limit")


def test_amend_checks_new_px_and_new_sz() -> None:
    validate_amend(SWAP, new_px="100.2")
    with pytest.raises(InstrumentRuleError) as e:
        validate_amend(SWAP, new_sz="0.015")
    assert rule_of(e) == "lotSz"


def test_validate_order_params_uses_okx_names() -> None:
    table = {"BTC-USDT-SWAP": SWAP}
    validate_order_params(
        {"instId": "BTC-USDT-SWAP", "px": "1.1", "sz": "1", "ordType": "limit"}, table.__getitem__
    )
    with pytest.raises(InstrumentRuleError):
        validate_order_params(
            {"instId": "BTC-USDT-SWAP", "newPx": "1.15"}, table.__getitem__, amend=True
        )
    validate_order_params({"ordId": "1", "newSz": "3"}, table.__getitem__, amend=True)  # no instId


def test_rounding() -> None:
    assert round_price(SPOT, "100.05") == Decimal("100.1")
    assert round_price(SPOT, "100.04") == Decimal("100.0")
    assert round_price(SPOT, "100.01", rounding=ROUND_UP) == Decimal("100.1")
    assert round_size(SWAP, "1.019") == Decimal("1.01")
    assert round_size(SWAP, "1.011", rounding=ROUND_UP) == Decimal("1.02")
    validate_order(
        SWAP, px=round_price(SWAP, "123.456"), sz=round_size(SWAP, "0.987"), ord_type="limit"
    )


def test_inst_type_and_family_from_id() -> None:
    assert inst_type_of("BTC-USDT") == "SPOT"
    assert inst_type_of("BTC-USDT-SWAP") == "SWAP"
    assert inst_type_of("BTC-USD-241227") == "FUTURES"
    assert inst_type_of("BTC-USD-241217-92000-C") == "OPTION"
    assert inst_family_of("BTC-USD-241217-92000-C") == "BTC-USD"
    assert inst_family_of("BTC-USDT") is None


def _real(kind: str) -> list[Instrument]:
    path = realdata_path("nautilus", f"http_get_instruments_{kind}.json")
    return [Instrument.from_okx(x) for x in json.loads(path.read_text("utf-8"))["data"]]


def test_cache_fetches_on_demand_expires_and_maps_inst_id_code() -> None:
    calls: list[tuple[str, str | None]] = []

    def fetch(inst_type: str, fam: str | None) -> list[Instrument]:
        calls.append((inst_type, fam))
        return _real(inst_type.lower())

    clock = FakeClock()
    cache = InstrumentCache(fetch, ttl_s=60, clock=clock)
    swap = cache.instrument("BTC-USD-SWAP")
    assert swap.tick_sz == Decimal("0.1") and cache.inst_id_code("BTC-USD-SWAP") == 10458
    assert calls == [("SWAP", None)]
    cache.instrument("ETH-USDT-SWAP")
    assert len(calls) == 1
    clock.advance(61)
    cache.instrument("BTC-USD-SWAP")
    assert len(calls) == 2
    assert {i.inst_id for i in cache.instruments("SPOT")} >= {"BTC-USD", "ETH-USD"}
    with pytest.raises(ValidationError, match="unknown instrument"):
        cache.instrument("NOPE-USDT")
    with pytest.raises(ValidationError):
        cache.instruments("OPTION")
    opt = cache.instrument("BTC-USD-241217-92000-C")
    assert opt.opt_type == "C" and calls[-1] == ("OPTION", "BTC-USD")


def test_cache_concurrent_misses_fetch_once() -> None:
    started = threading.Event()
    release = threading.Event()
    n = 0

    def fetch(inst_type: str, fam: str | None) -> list[Instrument]:
        nonlocal n
        n += 1
        started.set()
        release.wait(10)
        return [SWAP]

    cache = InstrumentCache(fetch)
    results: list[Instrument] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.instrument("BTC-USDT-SWAP")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    assert started.wait(10)
    release.set()
    for t in threads:
        t.join(10)
    assert n == 1 and len(results) == 8 and all(r is SWAP for r in results)


def test_cache_load_and_refresh() -> None:
    fetched: list[str] = []
    cache = InstrumentCache(lambda t, f: fetched.append(t) or [SPOT])
    cache.load([SWAP])
    assert cache.instrument("BTC-USDT-SWAP") is SWAP and fetched == []
    cache.refresh("SWAP")
    with pytest.raises(ValidationError):
        cache.instrument("BTC-USDT-SWAP")  # fetch returns only SPOT
    assert fetched == ["SWAP", "SWAP"]
