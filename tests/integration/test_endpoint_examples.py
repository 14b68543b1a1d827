"""The example of every REST endpoint (docs/examples/<group>.md) is current and runs.

Each snippet is executed as written: on the simulator for the endpoints it serves (one
simulator, one client; the orders and the position a snippet acts on are set up first),
on a ``MockTransport`` answering the OKX docs' example answer for the others (one client
per group, no sockets). For each: the request that went out (method, path, the
``Sends:`` params in OKX names), the declared record or model type of the result, and
the field the snippet reads.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import pytest

from okx_sync import Client, FakeClock, RequestGateConfig
from okx_sync.rest.endpoints import Endpoint, registry
from okx_sync.rest.named import _RESULT_TABLE, GROUP_CLASSES, RESULTS, result_record
from okx_sync.rest.transport import PooledTransport, Request
from okx_sync.sim import Simulator
from okx_sync.sim.instruments import default_instruments
from okx_sync.testing import MockTransport, sim_client
from okx_sync.testing.mock_transport import json_response
from tests.conftest import REPO
from tests.unit.test_records import MIRROR, _examples, _synthetic
from tests.unit.test_records import docs as docs  # the docs mirror's pages, parsed once

EXAMPLES = REPO / "docs" / "examples"
ENTRY = re.compile(
    r"^### client\.(\w+)\.(\w+)\n\n`(GET|POST) (\S+)` returns `([^`]+)`; tested on: "
    r"(simulator|mock)\.\n\n```python\n(.*?)\n```\n\nSends: `([^\n]*)`$",
    re.M | re.S,
)


@attrs.frozen
class Example:
    group: str
    method: str
    http: str
    path: str
    where: str
    code: str
    sends: Any

    @property
    def endpoint(self) -> Endpoint:
        ep = registry().get(self.http, self.path)
        assert ep is not None, self.path
        return ep


def _load(name: str) -> list[Example]:
    text = (EXAMPLES / name).read_text("utf-8")
    found = [
        Example(m[1], m[2], m[3], m[4], m[6], m[7], json.loads(m[8])) for m in ENTRY.finditer(text)
    ]
    assert len(found) == text.count("\n### "), f"{name}: an entry does not parse"
    return found


def _all() -> list[Example]:
    return [e for attr in GROUP_CLASSES for e in _load(f"{attr}.md")]


def _gen() -> Any:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gen_endpoint_examples
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return gen_endpoint_examples


def test_examples_match_the_generator() -> None:
    if not Path(MIRROR).exists():
        pytest.skip(f"OKX docs mirror not available at {MIRROR} (set OKX_DOCS_GIT)")
    assert _gen().main(["--check", "--git-dir", MIRROR]) == 0


def test_one_example_per_endpoint_in_its_group_file() -> None:
    files = sorted(p.name for p in EXAMPLES.glob("*.md"))
    assert files == sorted(f"{a}.md" for a in GROUP_CLASSES) and len(files) == 20
    seen = {}
    for ex in _all():
        ep = ex.endpoint
        assert GROUP_CLASSES[ex.group].group == ep.group
        assert f"client.{ex.group}.{ex.method}(" in ex.code
        seen[ep.key] = ex
    assert set(seen) == {ep.key for ep in registry()} and len(seen) == 379


def _run(client: Client, ex: Example) -> tuple[Any, list[str]]:
    """Execute the snippet; (its ``result``, what it printed)."""
    printed: list[str] = []
    scope: dict[str, Any] = {"client": client, "print": lambda *a: printed.append(a)}
    exec(compile(ex.code, f"docs/examples/{ex.group}.md:{ex.method}", "exec"), scope)  # noqa: S102
    return scope["result"], printed


def _since(transport: MockTransport, before: int) -> list[Request]:
    n = transport.sent - before
    return transport.requests[-n:] if n else []


def _params(req: Request) -> Any:
    if req.method == "GET":
        return dict(parse_qsl(urlsplit(req.target).query, keep_blank_values=True))
    return json.loads(req.body or b"{}")


def _check(
    ex: Example, sent: list[Request], result: Any, printed: list[Any], empty: bool = False
) -> None:
    ep = ex.endpoint
    mine = [r for r in sent if urlsplit(r.target).path == ep.path and r.method == ep.method]
    assert len(mine) == 1, (ex.method, [r.target for r in sent])
    assert _params(mine[0]) == _wire(ex.sends, ep.method), ex.method
    model, many = RESULTS.get(ep.key, (result_record(ep), True))
    results = result if many else [result]
    assert isinstance(result, list if many else model), ex.method
    assert (empty or results) and all(isinstance(r, model) for r in results), ex.method
    assert len(printed) == len(results), ex.method  # the field the snippet reads


def _wire(sends: Any, method: str) -> Any:
    """The ``Sends:`` params as the wire carries them (a query holds strings)."""
    if method == "GET":
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in sends.items()}
    return sends


# --- the endpoints the simulator does not serve: a MockTransport per group -------------


def _answers(docs_rest: dict | None) -> dict[str, list[Any]]:
    """Path -> the ``data`` the mock answers: the docs' example answer, else an item
    with a sample value for every documented answer field."""
    out: dict[str, list[Any]] = {}
    for ep in registry():
        items = _examples(docs_rest.get(f"{ep.method} {ep.path}", [])) if docs_rest else []
        if not items:
            items = [_synthetic(_RESULT_TABLE.rows().get(ep.key, ())) or {"undocumented": "1"}]
        out[f"{ep.method} {ep.path}"] = items
    return out


@pytest.fixture(scope="module")
def answers(request: pytest.FixtureRequest) -> dict[str, list[Any]]:
    if not Path(MIRROR).exists():
        return _answers(None)
    rest, _ws = request.getfixturevalue("docs")
    return _answers(rest)


@pytest.mark.parametrize("group", list(GROUP_CLASSES))
def test_mock_examples_send_their_params_and_return_their_types(
    group: str, answers: dict[str, list[Any]]
) -> None:
    examples = [e for e in _load(f"{group}.md") if e.where == "mock"]

    def okx(req: Request) -> Any:
        key = f"{req.method} {urlsplit(req.target).path}"
        return json_response({"code": "0", "msg": "", "data": answers[key]})

    transport = MockTransport(okx)
    client = Client("key", "secret", "passphrase", transport=transport, clock=FakeClock())
    with client:
        for ex in examples:
            before = transport.sent
            result, printed = _run(client, ex)
            _check(ex, _since(transport, before), result, printed)
    served = {e.endpoint.key for e in _load(f"{group}.md") if e.where == "simulator"}
    assert len(examples) + len(served) == len(GROUP_CLASSES[group].endpoints)


# --- the endpoints the simulator serves -----------------------------------------------


def _instruments(examples: list[Example]) -> list[Any]:
    """The default catalogue plus a copy of a like instrument for each instId a snippet
    names that the catalogue lacks (an old futures id of the docs, say)."""
    specs = default_instruments(int(FakeClock().time() * 1000))
    # the docs price their BTC-USDT orders at 2.15 (OKX's tickSz there is 0.1)
    specs = [
        attrs.evolve(s, tick_sz=Decimal("0.01")) if s.inst_id == "BTC-USDT" else s for s in specs
    ]
    by_id = {s.inst_id: s for s in specs}
    code = max(s.inst_id_code for s in specs)
    for ex in examples:
        for item in ex.sends if isinstance(ex.sends, list) else [ex.sends]:
            inst = item.get("instId")
            if inst and inst not in by_id:
                like = by_id["BTC-USDT-SWAP" if inst.count("-") > 1 else "BTC-USDT"]
                if inst.count("-") == 2 and not inst.endswith("SWAP"):
                    like = next(s for s in specs if s.inst_type == "FUTURES")
                code += 1
                by_id[inst] = attrs.evolve(like, inst_id=inst, inst_id_code=code)
                specs.append(by_id[inst])
    return specs


def _orders_named(ex: Example) -> Iterator[tuple[str, str]]:
    """(instId, clOrdId) of each order a snippet acts on (not one it places)."""
    if ex.path in ("/api/v5/trade/order", "/api/v5/trade/batch-orders") and ex.http == "POST":
        return
    for item in ex.sends if isinstance(ex.sends, list) else [ex.sends]:
        if "clOrdId" in item:
            yield item["instId"], item["clOrdId"]


def _prepare(client: Client, ex: Example, specs: dict[str, Any]) -> None:
    """Cancel what rests, then place the orders (and open the position) ``ex`` acts on."""
    pending = client.trade.get_orders_pending()
    if pending:
        client.trade.cancel_batch_orders(
            orders=[{"inst_id": o.inst_id, "ord_id": o.ord_id} for o in pending]
        )
    for inst_id, cl_ord_id in _orders_named(ex):
        bid = client.market.get_ticker(inst_id=inst_id).bid_px
        px = (bid * Decimal("0.9")).quantize(specs[inst_id].tick_sz)
        mode = "cash" if inst_id.count("-") == 1 else "cross"
        client.trade.place_order(
            inst_id=inst_id, td_mode=mode, side="buy", ord_type="limit", px=px,
            sz=specs[inst_id].min_sz,
            cl_ord_id=cl_ord_id,
        )  # fmt: skip
    spot = specs["BTC-USDT"]
    ticker = client.market.get_ticker(inst_id="BTC-USDT")
    low = (ticker.bid_px * Decimal("0.9")).quantize(spot.tick_sz)
    high = (ticker.ask_px * Decimal("1.01")).quantize(spot.tick_sz)
    setup = {  # a fill, a closed and a resting order for the reads of them
        "/api/v5/trade/fills": {"ord_type": "limit", "px": high},
        "/api/v5/trade/fills-history": {"ord_type": "limit", "px": high},
        "/api/v5/trade/orders-history": {"ord_type": "ioc", "px": low},
        "/api/v5/trade/orders-pending": {"ord_type": "post_only", "px": low},
    }.get(ex.path)
    if setup is not None:
        client.trade.place_order(
            inst_id="BTC-USDT", td_mode="cash", side="buy", sz=spot.min_sz, **setup
        )
    if ex.path == "/api/v5/trade/close-position":
        client.trade.place_order(
            inst_id=ex.sends["instId"], td_mode=ex.sends["mgnMode"], side="buy",
            ord_type="market", sz=specs[ex.sends["instId"]].min_sz,
        )  # fmt: skip


#: Reads the simulator answers with nothing: it keeps no margin positions on spot ids.
EMPTY_ON_SIM = {("GET", "/api/v5/account/positions")}


def test_simulator_examples_send_their_params_and_return_their_types() -> None:
    examples = [e for e in _all() if e.where == "simulator"]
    assert len(examples) >= 25
    specs = {s.inst_id: s for s in _instruments(examples)}
    rich = {"USDT": "1000000000", "BTC": "1000", "ETH": "10000"}  # docs sizes, any price
    # No rate limits on either side: this checks requests and answers, and the set-up
    # reads (pending orders, tickers) would wait ~3.5 s in the gate for OKX's windows.
    with Simulator(seed=1, instruments=list(specs.values()), balances=rich, ws=False,
                   rate_limits=False) as sim:  # fmt: skip
        inner = PooledTransport(sim.rest_url)
        transport = MockTransport(inner.send)
        gate = RequestGateConfig(rate_limits=False)
        with sim_client(sim, transport=transport, gate=gate) as client:
            for ex in examples:
                _prepare(client, ex, specs)
                before = transport.sent
                result, printed = _run(client, ex)
                empty = ex.endpoint.key in EMPTY_ON_SIM
                _check(ex, _since(transport, before), result, printed, empty)
