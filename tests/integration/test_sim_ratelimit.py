"""The simulator's trading rate limits (facts §2.1-§2.3) through raw REST and raw WS.

Batches count orders, a one-order batch is charged to the single-order budget,
place / cancel / amend budgets are independent, options share one budget per
instrument family, and WS order operations draw on the REST buckets (50011) and on
the account order limit (50061). Every simulator runs on a manual FakeClock: the
windows move only when the test advances time.
"""

from __future__ import annotations

import contextlib
import time
from decimal import Decimal

import pytest

from okx_sync.clock import FakeClock
from okx_sync.sim import Simulator
from okx_sync.sim.testing import RawRest, RawWS

P = "/api/v5/"
TOO_MANY = {"msg": "Too Many Requests", "code": "50011"}


@contextlib.contextmanager
def budget_sim(**options):
    """(simulator, clock, signed RawRest) on a manual FakeClock."""
    clock = FakeClock(wall_start=time.time(), auto_advance=False)
    opts = {"account_order_limit": 100_000, "control": False, **options}
    with Simulator(seed=5, auto_tick=False, clock=clock, **opts) as sim:
        rest = RawRest(
            sim.rest_url, sim.credentials.live, clock_ms=lambda: int(clock.time() * 1000)
        )
        try:
            yield sim, clock, rest
        finally:
            rest.close()


@pytest.fixture
def budgets():
    with budget_sim(ws=False) as env:
        yield env


def resting(sim, inst_id, **extra):
    """A buy limit order far under the book (it rests), of the instrument's minimum size."""
    spec = sim.exchange.specs[inst_id]
    px = Decimal(sim.exchange.book(inst_id).bids[-1][0]) - 10 * spec.tick_sz
    return {
        "instId": inst_id,
        "tdMode": "cash" if spec.inst_type == "SPOT" else "cross",
        "side": "buy",
        "ordType": "limit",
        "px": format(px, "f"),
        "sz": format(spec.min_sz, "f"),
        **extra,
    }


def option_ids(sim):
    """The two options of the default set: one family (BTC-USD), two instIds."""
    ids = sorted(i for i, s in sim.exchange.specs.items() if s.inst_type == "OPTION")
    assert len(ids) == 2 and len({sim.exchange.specs[i].inst_family for i in ids}) == 1
    return ids


def statuses(rest, path, body, n):
    return [rest.post(P + path, body).status_code for _ in range(n)]


def pending_count(sim, inst_id):
    return sum(1 for o in sim.exchange.pending(sim.live_uid) if o.spec.inst_id == inst_id)


def test_batch_orders_count_orders_not_requests(budgets):
    sim, clock, rest = budgets
    batch = [resting(sim, "BTC-USDT")] * 20
    # 300 orders / 2 s: fifteen batches of 20 pass, the sixteenth is refused whole
    assert statuses(rest, "trade/batch-orders", batch, 15) == [200] * 15
    r = rest.post(P + "trade/batch-orders", batch)
    assert (r.status_code, r.json()) == (429, TOO_MANY)
    assert pending_count(sim, "BTC-USDT") == 300
    # one order short of a full batch is still too many; a batch for another instId is not
    assert rest.post(P + "trade/batch-orders", batch[:2]).status_code == 429
    eth = rest.post(P + "trade/batch-orders", [resting(sim, "ETH-USDT")] * 20)
    assert eth.status_code == 200 and eth.json()["code"] == "0"
    # batches do not draw on the single-order budget
    single = rest.post(P + "trade/order", resting(sim, "BTC-USDT"))
    assert single.status_code == 200 and single.json()["code"] == "0"
    clock.advance(2.0)
    assert rest.post(P + "trade/batch-orders", batch).status_code == 200


def test_a_mixed_batch_charges_each_instrument(budgets):
    sim, _, rest = budgets
    btc, eth = resting(sim, "BTC-USDT"), resting(sim, "ETH-USDT")
    assert statuses(rest, "trade/batch-orders", [btc] * 20, 14) == [200] * 14  # 280 BTC
    # 10 BTC + 10 ETH: BTC reaches 290, ETH 10
    assert rest.post(P + "trade/batch-orders", [btc, eth] * 10).status_code == 200
    # 11 more BTC would make 301
    assert rest.post(P + "trade/batch-orders", [btc] * 11 + [eth]).status_code == 429
    assert rest.post(P + "trade/batch-orders", [btc] * 10 + [eth] * 10).status_code == 200


def test_one_order_batch_is_charged_to_the_single_order_budget(budgets):
    sim, _, rest = budgets
    order = resting(sim, "BTC-USDT")
    assert statuses(rest, "trade/order", order, 59) == [200] * 59
    assert rest.post(P + "trade/batch-orders", [order]).status_code == 200  # the 60th
    assert rest.post(P + "trade/order", order).status_code == 429
    assert rest.post(P + "trade/batch-orders", [order]).status_code == 429
    # a batch of two draws on the batch budget, which is untouched
    assert rest.post(P + "trade/batch-orders", [order, order]).status_code == 200


def test_cancel_and_amend_budgets_are_independent_of_placement(budgets):
    sim, _, rest = budgets
    order = resting(sim, "BTC-USDT")
    ids = [rest.post(P + "trade/order", order).json()["data"][0]["ordId"] for _ in range(60)]
    assert rest.post(P + "trade/order", order).status_code == 429  # placement exhausted
    new_sz = format(Decimal(order["sz"]) * 2, "f")
    amends = [
        rest.post(P + "trade/amend-order", {"instId": "BTC-USDT", "ordId": i, "newSz": new_sz})
        for i in ids
    ]
    assert [(a.status_code, a.json()["code"]) for a in amends] == [(200, "0")] * 60
    over = rest.post(P + "trade/amend-order", {"instId": "BTC-USDT", "ordId": ids[0], "newSz": "1"})
    assert (over.status_code, over.json()) == (429, TOO_MANY)
    cancels = [rest.post(P + "trade/cancel-order", {"instId": "BTC-USDT", "ordId": i}) for i in ids]
    assert [(c.status_code, c.json()["code"]) for c in cancels] == [(200, "0")] * 60
    assert pending_count(sim, "BTC-USDT") == 0
    over = rest.post(P + "trade/cancel-order", {"instId": "BTC-USDT", "ordId": ids[0]})
    assert over.status_code == 429
    # the batch cancel budget is its own again: 20 cancels of unknown orders pass the gate
    items = [{"instId": "BTC-USDT", "ordId": str(n)} for n in range(1, 21)]
    r = rest.post(P + "trade/cancel-batch-orders", items)
    assert r.status_code == 200 and {d["sCode"] for d in r.json()["data"]} == {"51400"}


def test_options_share_one_budget_per_instrument_family(budgets):
    sim, _, rest = budgets
    call, put = option_ids(sim)
    assert statuses(rest, "trade/order", resting(sim, call), 60) == [200] * 60
    # the put is another instId of the same family: UID+instFamily for OPTION
    r = rest.post(P + "trade/order", resting(sim, put))
    assert (r.status_code, r.json()) == (429, TOO_MANY)
    # while swaps are keyed by instId: a full BTC swap budget leaves ETH's free
    assert statuses(rest, "trade/order", resting(sim, "BTC-USDT-SWAP"), 61) == [200] * 60 + [429]
    assert rest.post(P + "trade/order", resting(sim, "ETH-USDT-SWAP")).status_code == 200


# ---------------------------------------------------------------- WS order entry


def ws_item(sim, inst_id, **extra):
    """``resting`` with ``instIdCode`` in place of ``instId`` (WS order entry)."""
    item = resting(sim, inst_id, **extra)
    item["instIdCode"] = sim.exchange.specs[item.pop("instId")].inst_id_code
    return item


class Ops:
    """WS order ops with fresh ids on one logged-in private connection."""

    def __init__(self, sim):
        self.ws = RawWS(sim.ws_private_url)
        assert self.ws.login(sim.credentials.live)["event"] == "login"
        self.n = 0

    def __call__(self, op, args):
        self.n += 1
        op_id = f"q{self.n}"
        self.ws.send_json({"id": op_id, "op": op, "args": args})
        return self.ws.wait_for(lambda m: isinstance(m, dict) and m.get("id") == op_id)


@pytest.fixture
def ws_budgets():
    with budget_sim() as (sim, clock, rest):
        ops = Ops(sim)
        yield sim, clock, rest, ops
        ops.ws.close()


RATE_MSG = (
    "Rate limit reached. Please refer to API documentation and throttle requests accordingly."
)


def test_ws_orders_share_the_rest_order_budget(ws_budgets):
    sim, clock, rest, ops = ws_budgets
    assert statuses(rest, "trade/order", resting(sim, "BTC-USDT"), 60) == [200] * 60
    refused = ops("order", [ws_item(sim, "BTC-USDT")])
    assert (refused["code"], refused["msg"], refused["data"]) == ("50011", RATE_MSG, [])
    assert ops("order", [ws_item(sim, "ETH-USDT")])["code"] == "0"  # ETH has its own
    clock.advance(2.0)
    assert ops("order", [ws_item(sim, "BTC-USDT")])["code"] == "0"
    # and the other way round: WS orders use up the budget REST then finds spent
    # (the ETH order above has left the window)
    for _ in range(60):
        assert ops("order", [ws_item(sim, "ETH-USDT")])["code"] == "0"
    r = rest.post(P + "trade/order", resting(sim, "ETH-USDT"))
    assert (r.status_code, r.json()) == (429, TOO_MANY)


def test_ws_batches_share_the_rest_batch_budget(ws_budgets):
    sim, _, rest, ops = ws_budgets
    for _ in range(15):
        assert ops("batch-orders", [ws_item(sim, "BTC-USDT")] * 20)["code"] == "0"
    assert rest.post(P + "trade/batch-orders", [resting(sim, "BTC-USDT")] * 20).status_code == 429
    assert ops("batch-orders", [ws_item(sim, "BTC-USDT")] * 2)["code"] == "50011"


def test_ws_cancels_share_the_rest_cancel_budget(ws_budgets):
    sim, _, rest, ops = ws_budgets
    code = sim.exchange.specs["BTC-USDT"].inst_id_code
    for n in range(60):
        reply = ops("cancel-order", [{"instIdCode": code, "ordId": str(n + 1)}])
        assert reply["data"][0]["sCode"] == "51400"  # passed the gate, no such order
    assert (
        rest.post(P + "trade/cancel-order", {"instId": "BTC-USDT", "ordId": "1"}).status_code == 429
    )
    assert ops("cancel-order", [{"instIdCode": code, "ordId": "1"}])["code"] == "50011"
    # placement is a separate budget
    assert ops("order", [ws_item(sim, "BTC-USDT")])["code"] == "0"


def test_ws_orders_count_toward_the_account_order_limit():
    with budget_sim(account_order_limit=3) as (sim, clock, rest):
        ops = Ops(sim)
        try:
            assert ops("order", [ws_item(sim, "BTC-USDT-SWAP")])["code"] == "0"
            assert ops("batch-orders", [ws_item(sim, "ETH-USDT-SWAP")] * 2)["code"] == "0"
            refused = ops("order", [ws_item(sim, "ETH-USDT-SWAP")])
            assert (refused["code"], refused["data"]) == ("50061", [])
            assert refused["msg"] == "You've reached the maximum order rate limit for this account."
            r = rest.post(P + "trade/order", resting(sim, "BTC-USDT-SWAP"))
            assert (r.status_code, r.json()["code"]) == (200, "50061")
            # spot orders are exempt (facts §2.3), over WS too
            assert ops("order", [ws_item(sim, "BTC-USDT")])["code"] == "0"
            clock.advance(2.0)
            assert ops("order", [ws_item(sim, "ETH-USDT-SWAP")])["code"] == "0"
        finally:
            ops.ws.close()
