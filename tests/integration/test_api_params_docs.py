"""params.tsv as audited against the OKX docs: deprecated / undocumented parameters are
keywords and are named in every generated document; parameters added by the audit reach
the wire under their OKX names; the README's rule for undeclared and OKX-spelled keywords
holds on a real socket."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from okx_sync import Client, RequestGateConfig, RetryPolicy
from okx_sync.errors import ValidationError
from okx_sync.rest.endpoints import Endpoint, registry
from okx_sync.rest.named import group_attr, method_for
from okx_sync.rest.params import all_params, params_for
from okx_sync.testing.rest_servers import EchoServer, ok_json
from tests.conftest import REPO

KEY, SECRET, PASS = "key-0123456789abcdef", "s3cr3t-value", "pass-phrase-x"


def _ep(method: str, path: str) -> Endpoint:
    e = registry().get(method, path)
    assert e is not None
    return e


def _flagged() -> list[tuple[Endpoint, Any]]:
    return [(e, p) for e in registry() for p in params_for(e).params if p.status != "-"]


def test_deprecated_params_are_data_and_keywords() -> None:
    deprecated = {(e.path, p.okx) for e, p in _flagged() if p.deprecated}
    assert deprecated == {
        ("/api/v5/account/set-auto-earn", "apr"),
        ("/api/v5/account/account-level-switch-preset", "riskOffsetType"),
        ("/api/v5/public/discount-rate-interest-free-quota", "discountLv"),
    }
    statuses = {p.status for spec in all_params().values() for p in spec.params}
    assert statuses == {"-", "deprecated", "undocumented"}
    for e, p in _flagged():
        assert p.snake in params_for(e).by_snake  # a declared keyword, not a raw pass-through


def test_flagged_params_surface_in_docstring_stub_and_coverage() -> None:
    coverage = (REPO / "docs" / "coverage.md").read_text("utf-8")
    stub = (REPO / "okx_sync" / "rest" / "api.pyi").read_text("utf-8")
    flagged = _flagged()
    assert len(flagged) == 6
    for e, p in flagged:
        note = {"deprecated": "deprecated by OKX, still accepted",
                "undocumented": "not in the OKX docs, sent as given"}[p.status]  # fmt: skip
        assert p.note == note
        assert f"| `{e.method} {e.path}` | `{p.snake}` (`{p.okx}`) | {note} |" in coverage
        assert f"        {p.snake} ({p.okx}): {note}." in stub
        doc = method_for(e).__doc__ or ""
        assert f"    {p.snake} ({p.okx}" in doc and f"{note})" in doc
    # documented parameters carry no note anywhere
    assert "deprecated by OKX" not in (
        method_for(_ep("GET", "/api/v5/market/ticker")).__doc__ or ""
    )
    assert coverage.count("deprecated by OKX, still accepted |") == 3


def test_the_audit_is_in_the_coverage_doc() -> None:
    text = (REPO / "docs" / "coverage.md").read_text("utf-8")
    assert "## Request parameters against the OKX docs" in text
    assert "Endpoints checked: **379**; not found in the mirror: **none**" in text
    assert "Parameters added: **2**" in text
    from okx_sync.rest.params import SOURCE_COMMIT

    assert SOURCE_COMMIT in text


@pytest.fixture
def wire() -> Any:
    """A real client against a loopback server; yields (client, seen requests)."""
    seen: list[tuple[str, str, bytes]] = []

    def record(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        seen.append((method, target, body))
        return 200, {}, ok_json([{"sCode": "0"}])

    with EchoServer(record) as server, Client(
        KEY, SECRET, PASS, base_url=server.url, timeout_s=2.0,
        gate=RequestGateConfig(rate_limits=False),
        retry=RetryPolicy(max_retries=0, base_delay_s=0.001, jitter=0.0),
    ) as client:  # fmt: skip
        yield client, seen


def _call(client: Client, method: str, path: str, **kw: Any) -> Any:
    e = _ep(method, path)
    return getattr(getattr(client, group_attr(e.group)), e.name)(**kw)


def test_added_and_deprecated_params_go_out_under_okx_names(wire: Any) -> None:
    client, seen = wire
    _call(client, "GET", "/api/v5/account/interest-accrued", type="2", ccy="BTC", mgn_mode="cross")
    _call(client, "POST", "/api/v5/account/set-auto-earn",
          earn_type="0", ccy="USDT", action="turn_on", apr="0.01")  # fmt: skip
    _call(client, "POST", "/api/v5/account/account-level-switch-preset",
          acct_lv="4", risk_offset_type="1")  # fmt: skip
    _call(client, "GET", "/api/v5/rubik/stat/option/open-interest-volume-strike",
          ccy="BTC", exp_time="20210623")  # fmt: skip
    (m0, t0, _), (m1, _, b1), (m2, _, b2), (m3, t3, _) = seen
    url = urlsplit(t0)
    assert (m0, url.path) == ("GET", "/api/v5/account/interest-accrued")
    assert dict(parse_qsl(url.query)) == {"type": "2", "ccy": "BTC", "mgnMode": "cross"}
    assert m1 == "POST" and json.loads(b1) == {
        "earnType": "0", "ccy": "USDT", "action": "turn_on", "apr": "0.01"}  # fmt: skip
    assert json.loads(b2) == {"acctLv": "4", "riskOffsetType": "1"}
    assert dict(parse_qsl(urlsplit(t3).query)) == {"ccy": "BTC", "expTime": "20210623"}


def test_required_flags_from_the_docs_refuse_before_sending(wire: Any) -> None:
    client, seen = wire
    strike = "/api/v5/rubik/stat/option/open-interest-volume-strike"
    with pytest.raises(ValidationError, match=r"missing required parameter\(s\) exp_time"):
        _call(client, "GET", strike, ccy="BTC")
    with pytest.raises(ValidationError, match=r"ccy \(ccy\), action \(action\)"):
        _call(client, "POST", "/api/v5/account/set-auto-earn", apr="0.01")
    assert seen == []


def test_readme_rule_for_okx_names_and_undeclared_camel_case(wire: Any) -> None:
    client, seen = wire
    client.market.get_ticker(inst_id="BTC-USDT", newField="1")  # the README's example
    client.market.get_ticker(instId="BTC-USDT")
    assert [t for _, t, _ in seen] == [
        "/api/v5/market/ticker?instId=BTC-USDT&newField=1",
        "/api/v5/market/ticker?instId=BTC-USDT",
    ]
    for bad, message in (
        ({"inst_id": "BTC-USDT", "instId": "BTC-USDT"}, "given twice"),
        ({"inst_id": "BTC-USDT", "new_field": "1"}, "unknown keyword 'new_field'"),
        ({"inst_id": "BTC-USDT", "instrument": "1"}, "unknown keyword 'instrument'"),
        ({"instID": "BTC-USDT"}, "did you mean 'inst_id'"),
    ):
        with pytest.raises(ValidationError, match=message):
            client.market.get_ticker(**bad)
    assert len(seen) == 2  # nothing more was sent


def test_nested_objects_without_declared_fields_convert_their_keys(wire: Any) -> None:
    # legs of create-rfq: the parent is declared, its fields are not (docs/coverage.md)
    client, seen = wire
    legs = [{"inst_id": "BTC-USDT", "td_mode": "cash", "sz": "1", "side": "buy"}]
    _call(client, "POST", "/api/v5/rfq/create-rfq", counterparties=["DSK2"], legs=legs)
    body = json.loads(seen[0][2])
    assert body["legs"] == [{"instId": "BTC-USDT", "tdMode": "cash", "sz": "1", "side": "buy"}]
    assert body["counterparties"] == ["DSK2"]
