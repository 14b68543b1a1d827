"""Charge planning (okx_sync.gate.charges): rule scopes, batch cost, single-order twins,
secondary and lead-trader limits, throttle classification, the cancel lane. Pure functions:
no gate, no clock, no threads."""

from __future__ import annotations

from pathlib import Path

import pytest

from okx_sync.errors import ValidationError
from okx_sync.gate import ACCOUNT_BUCKET_KEY, plan_charges, rule_scope
from okx_sync.gate.charges import rides_cancel_lane, throttle_hits
from okx_sync.rest.endpoints import registry

R = registry()
PLACE = R.get("POST", "/api/v5/trade/order")
BATCH = R.get("POST", "/api/v5/trade/batch-orders")
AMEND = R.get("POST", "/api/v5/trade/amend-order")
CANCEL = R.get("POST", "/api/v5/trade/cancel-order")
BALANCE = R.get("GET", "/api/v5/account/balance")
BTC = {"instId": "BTC-USDT"}
ETH = {"instId": "ETH-USDT"}
PLACE_BTC = "POST /api/v5/trade/order [UID+instId=BTC-USDT]"


@pytest.mark.parametrize(
    ("rule", "params", "scope"),
    [
        ("IP", {"instId": "BTC-USDT"}, "IP"),
        ("UID", {}, "UID"),
        ("MasterUID", {}, "MasterUID"),
        ("UID|IP", {}, "UID|IP"),
        ("", None, "IP"),
        ("IP+instId", {"instId": "BTC-USDT"}, "IP+instId=BTC-USDT"),
        ("IP+instType", {"instType": "SWAP"}, "IP+instType=SWAP"),
        ("IP+instFamily", {"instFamily": "BTC-USD"}, "IP+instFamily=BTC-USD"),
        ("IP+instFamily", {"uly": "ETH-USD"}, "IP+instFamily=ETH-USD"),
        (
            "IP+instType+instFamily",
            {"instType": "OPTION", "instFamily": "BTC-USD"},
            "IP+instType=OPTION+instFamily=BTC-USD",
        ),
        ("IP+instIdCode", {"instIdCode": 42}, "IP+instIdCode=42"),
        ("UID+ccy", {"ccy": "USDT"}, "UID+ccy=USDT"),
        ("UID+tag", {"tag": "bot1"}, "UID+tag=bot1"),
        ("UID+instType", {"instType": "SPOT"}, "UID+instType=SPOT"),
        ("UID+instId", {}, "UID+instId="),
        ("UID+instId;OPTION:UID+instFamily", {"instId": "BTC-USDT"}, "UID+instId=BTC-USDT"),
        (
            "UID+instId;OPTION:UID+instFamily",
            {"instId": "BTC-USD-240628-60000-C"},
            "UID+instFamily=BTC-USD",
        ),
        (
            "UID+instId;OPTION:UID+instFamily",
            {"instId": "X", "instType": "OPTION", "instFamily": "ETH-USD"},
            "UID+instFamily=ETH-USD",
        ),
    ],
)
def test_rule_scope(rule: str, params, scope: str) -> None:
    assert rule_scope(rule, params) == scope


def test_every_registry_rule_resolves() -> None:
    for ep in R:
        item = {"instId": "BTC-USDT"}
        charges = plan_charges(ep, [item, item] if ep.batch else item)
        assert charges[0].key.startswith(f"{ep.method} {ep.path} [")
        assert charges[0].cost == (2 if ep.batch else 1)


def test_batch_cost_per_order_per_instrument_and_single_order_twin() -> None:
    charges = plan_charges(BATCH, [BTC] * 3 + [ETH] * 2)
    assert {c.key: c.cost for c in charges} == {
        "POST /api/v5/trade/batch-orders [UID+instId=BTC-USDT]": 3,
        "POST /api/v5/trade/batch-orders [UID+instId=ETH-USDT]": 2,
        ACCOUNT_BUCKET_KEY: 5,
    }
    # A batch of one order is charged to the single-order endpoint (OKX rule).
    assert [c.key for c in plan_charges(BATCH, [BTC])] == [PLACE_BTC, ACCOUNT_BUCKET_KEY]
    # Amends count toward the account bucket, cancels and reads do not.
    assert ACCOUNT_BUCKET_KEY in {c.key for c in plan_charges(AMEND, BTC)}
    assert ACCOUNT_BUCKET_KEY not in {c.key for c in plan_charges(CANCEL, BTC)}
    assert ACCOUNT_BUCKET_KEY not in {c.key for c in plan_charges(BALANCE, {})}


def charges_by_key(endpoint, params, **kw) -> dict[str, tuple[int, float, int, str]]:
    return {
        c.key: (c.limit, c.window_s, c.cost, c.kind) for c in plan_charges(endpoint, params, **kw)
    }


ELP = "isElpTakerAccess orders [UID+instId=BTC-USDT]"
LEAD = "lead-trader orders [UID+instId=BTC-USDT]"


def test_secondary_limits_are_registry_data_copied_from_the_fact_base() -> None:
    import csv

    from conftest import SHARED

    kinds = {}
    for ep in R:
        for extra in ep.extra_limits:
            kinds.setdefault(extra.kind, []).append(ep.path)
    assert len(kinds["secondary"]) == 6 and len(kinds["lead_trader"]) == 5
    packaged = Path(__file__).resolve().parents[2] / "okx_sync" / "rest" / "limits.tsv"
    with packaged.open(encoding="utf-8") as f:
        ours = {
            (r["method"], r["path"], r["key"], r["value"])
            for r in csv.DictReader(f, delimiter="\t")
        }
    shared = SHARED / "okx-endpoints-extra.tsv"
    if not shared.exists():
        pytest.skip(f"fact base not available: {shared}")
    with shared.open(encoding="utf-8") as f:
        facts = {
            (r["method"], r["path"], r["key"], r["value"])
            for r in csv.DictReader(f, delimiter="\t")
            if r["key"] in ("secondary_limit", "copytrading_lead_instrument_limit")
        }
    assert ours == facts  # every such row, copied unchanged


def test_is_elp_taker_access_orders_draw_on_one_shared_bucket_per_instrument() -> None:
    assert not any("isElp" in key for key in charges_by_key(PLACE, BTC))
    for flag in (True, "true", " TRUE "):
        charges = charges_by_key(PLACE, {**BTC, "isElpTakerAccess": flag})
        assert charges[ELP] == (50, 2.0, 1, "secondary")
    assert ELP not in charges_by_key(PLACE, {**BTC, "isElpTakerAccess": "false"})
    batch = [
        {**BTC, "isElpTakerAccess": True},
        {**BTC, "isElpTakerAccess": "true"},
        {**ETH, "isElpTakerAccess": True},
        BTC,  # not flagged: not counted
    ]
    charges = charges_by_key(BATCH, batch)
    assert charges[ELP] == (50, 2.0, 2, "secondary")  # the same key as a single order's
    assert charges["isElpTakerAccess orders [UID+instId=ETH-USDT]"][2] == 1
    assert charges[ACCOUNT_BUCKET_KEY][2] == 4  # every order still counts for the account
    assert charges_by_key(BATCH, [{**BTC, "isElpTakerAccess": True}])[ELP][2] == 1  # twin
    # Amends and cancels have no such limit.
    assert not any("isElp" in k for k in charges_by_key(AMEND, {**BTC, "isElpTakerAccess": True}))


def test_unconditional_secondary_limits_always_apply() -> None:
    estimate = R.get("POST", "/api/v5/asset/convert/estimate-quote")
    convert = R.get("POST", "/api/v5/asset/convert/trade")
    fiat = R.get("POST", "/api/v5/fiat/buy-sell/quote")
    rfq = R.get("POST", "/api/v5/rfq/create-rfq")
    quote = {"baseCcy": "BTC", "quoteCcy": "USDT", "side": "buy"}
    assert charges_by_key(estimate, quote)["convert estimate-quote [instId=]"] == (
        1,
        5.0,
        1,
        "secondary",
    )
    assert "convert trade [UID+side=buy]" in charges_by_key(convert, quote)
    assert "convert trade [UID+side=sell]" in charges_by_key(convert, {**quote, "side": "sell"})
    assert charges_by_key(fiat, {"instId": "BTC-EUR"})["fiat buy-sell quote [instId=BTC-EUR]"][
        :2
    ] == (1, 5.0)
    assert charges_by_key(rfq, {"legs": []})["create-rfq [UID]"] == (80, 43200.0, 1, "secondary")
    # and the main limit is still there
    assert "POST /api/v5/asset/convert/trade [UID]" in charges_by_key(convert, quote)


def test_lead_trader_limits_only_with_the_config_flag() -> None:
    algo = R.get("POST", "/api/v5/trade/order-algo")
    amend_batch = R.get("POST", "/api/v5/trade/amend-batch-orders")
    for endpoint in (PLACE, AMEND, algo):
        assert not any(c.kind == "lead_trader" for c in plan_charges(endpoint, BTC))
    assert charges_by_key(PLACE, BTC, lead_trader=True)[LEAD] == (4, 2.0, 1, "lead_trader")
    assert charges_by_key(AMEND, BTC, lead_trader=True)[LEAD][2] == 1  # one budget with places
    assert charges_by_key(BATCH, [BTC, BTC, ETH], lead_trader=True)[LEAD][2] == 2
    assert charges_by_key(amend_batch, [BTC] * 4, lead_trader=True)[LEAD][2] == 4
    assert charges_by_key(algo, BTC, lead_trader=True)[
        "lead-trader algo orders [UID+instId=BTC-USDT]"
    ] == (1, 2.0, 1, "lead_trader")
    assert not any(c.kind == "lead_trader" for c in plan_charges(CANCEL, BTC, lead_trader=True))
    with pytest.raises(ValidationError, match="lead-trader orders"):
        plan_charges(BATCH, [BTC] * 5, lead_trader=True)  # OKX would refuse 5 at once
    assert plan_charges(BATCH, [BTC] * 5)  # fine for everyone else


def test_throttle_hits_classify_the_answer() -> None:
    assert throttle_hits(200, "0", [{"sCode": "0"}]) == (False, False)
    assert throttle_hits(429, "", None) == (True, False)
    assert throttle_hits(200, "50011", None) == (True, False)
    assert throttle_hits(200, "1", [{"sCode": "0"}, {"sCode": "50011"}]) == (True, False)
    assert throttle_hits(200, "50061", None) == (False, True)
    assert throttle_hits(429, "50061", None) == (False, True)  # the account only
    assert throttle_hits(200, "1", [{"sCode": "50061"}, {"sCode": "50011"}]) == (True, True)
    assert throttle_hits(200, "0", ["odd", None, {"sCode": None}]) == (False, False)
    assert throttle_hits(None, "", "not a list") == (False, False)


def test_cancel_lane_holds_cancels_and_cancel_all_after() -> None:
    assert rides_cancel_lane(CANCEL)
    assert rides_cancel_lane(R.get("POST", "/api/v5/trade/cancel-batch-orders"))
    assert rides_cancel_lane(R.get("POST", "/api/v5/trade/cancel-all-after"))
    assert not rides_cancel_lane(PLACE)
    assert not rides_cancel_lane(AMEND)
    assert not rides_cancel_lane(None)
