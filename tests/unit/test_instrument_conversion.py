"""Contract <-> coin conversion on Instrument (ctVal, ctMult, lotSz, minSz)."""

from __future__ import annotations

from decimal import ROUND_UP, Decimal

import pytest

from okx_sync.errors import InstrumentRuleError, ValidationError
from okx_sync.models import Instrument

LINEAR = Instrument.from_okx(
    {
        "instType": "SWAP",
        "instId": "BTC-USDT-SWAP",
        "ctVal": "0.01",
        "ctMult": "1",
        "ctValCcy": "BTC",
        "lotSz": "0.01",
        "minSz": "0.01",
    }
)
INVERSE = Instrument.from_okx(
    {
        "instType": "FUTURES",
        "instId": "BTC-USD-261225",
        "ctVal": "100",
        "ctMult": "1",
        "ctValCcy": "USD",
        "lotSz": "1",
        "minSz": "1",
    }
)
MULT = Instrument.from_okx(
    {
        "instType": "OPTION",
        "instId": "BTC-USD-261225-90000-C",
        "ctVal": "0.01",
        "ctMult": "10",
        "lotSz": "1",
        "minSz": "1",
    }
)
SPOT = Instrument.from_okx(
    {"instType": "SPOT", "instId": "BTC-USDT", "ctVal": "", "lotSz": "0.0001", "minSz": "0.001"}
)


def test_contracts_to_coin_multiplies_ct_val_and_ct_mult() -> None:
    assert LINEAR.contracts_to_coin("3") == Decimal("0.03")
    assert LINEAR.contracts_to_coin(Decimal("0.05")) == Decimal("0.0005")
    assert INVERSE.contracts_to_coin(2) == Decimal("200")
    assert MULT.contracts_to_coin("2") == Decimal("0.2")


def test_coin_to_contracts_rounds_onto_lot_sz_down_by_default() -> None:
    assert LINEAR.coin_to_contracts("0.0347") == Decimal("3.47")
    assert LINEAR.coin_to_contracts("0.034789") == Decimal("3.47")
    assert LINEAR.coin_to_contracts("0.034789", rounding=ROUND_UP) == Decimal("3.48")
    assert INVERSE.coin_to_contracts("250") == Decimal("2")
    assert MULT.coin_to_contracts("0.35") == Decimal("3")


def test_coin_to_contracts_refuses_what_min_sz_refuses() -> None:
    with pytest.raises(InstrumentRuleError) as e:
        INVERSE.coin_to_contracts("99")  # 0.99 contract rounds down to 0
    assert e.value.rule == "minSz" and e.value.inst_id == "BTC-USD-261225"
    small = Instrument.from_okx(
        {"instType": "SWAP", "instId": "X-USDT-SWAP", "ctVal": "1", "lotSz": "0.1", "minSz": "1"}
    )
    with pytest.raises(InstrumentRuleError) as e:
        small.coin_to_contracts("0.5")
    assert e.value.rule == "minSz" and e.value.value == "0.5" and e.value.limit == "1"
    assert small.coin_to_contracts("1.05") == Decimal("1.0")  # ctMult unset: 1


def test_spot_is_identity_snapped_to_lot_sz() -> None:
    assert SPOT.contracts_to_coin("0.5") == Decimal("0.5")
    assert SPOT.coin_to_contracts("0.123456") == Decimal("0.1234")
    with pytest.raises(InstrumentRuleError):
        SPOT.coin_to_contracts("0.0005")


@pytest.mark.parametrize("bad", [0.1, True, "abc", None, "-1"])
def test_bad_quantities_are_validation_errors(bad: object) -> None:
    with pytest.raises(ValidationError):
        LINEAR.coin_to_contracts(bad)
    with pytest.raises(ValidationError):
        LINEAR.contracts_to_coin(bad)


def test_derivative_without_ct_val_and_bad_rounding_are_refused() -> None:
    bare = Instrument.from_okx({"instType": "SWAP", "instId": "Y-USDT-SWAP", "lotSz": "1"})
    with pytest.raises(ValidationError, match="ctVal"):
        bare.coin_to_contracts("1")
    with pytest.raises(ValidationError, match="ctVal"):
        bare.contracts_to_coin("1")
    with pytest.raises(ValidationError, match="rounding"):
        LINEAR.coin_to_contracts("1", rounding="sideways")
