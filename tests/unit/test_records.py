"""Typed answers and pushes: records built from results.tsv / pushes.tsv.

Every registry endpoint's named method returns its record (or its core model) for an
answer made from its documented fields and, where the docs mirror is on this machine,
for the docs' example answer; every documented WebSocket channel's pushes parse into
its model. Conversions: numeric strings -> Decimal, ms timestamps -> int, ids -> str,
"" -> None, nested arrays -> tuples of records, unknown fields kept in ``raw``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from okx_sync.models import Candle, Instrument, Ticker
from okx_sync.models.records import Record, RecordTable, parse_table, record_class
from okx_sync.models.ws import (
    BookUpdate,
    documented_channels,
    push_parser,
    push_record,
    push_record_key,
)
from okx_sync.rest.api import RESULTS, group_attr, method_name, result_name, result_record
from okx_sync.rest.endpoints import Endpoint, registry
from okx_sync.rest.named import _RESULT_TABLE
from okx_sync.rest.params import id_pairs, params_for
from okx_sync.secret import Secret
from tests.conftest import REPO, realdata_path
from tests.unit.test_api_named import FakeClient

MIRROR = os.environ.get("OKX_DOCS_GIT", "/work/.mirror/qiuham+crypto-api-docs/repo")
ENDPOINTS = list(registry())
SAMPLE = {
    "dec": ("12.50", Decimal("12.50")),
    "int": ("1597026383085", 1597026383085),
    "str": ("12345678901234567890", "12345678901234567890"),
    "bool": (True, True),
    "strs": (["a", "b"], ("a", "b")),
}


def _kwargs(ep: Endpoint) -> dict[str, Any]:
    """Keywords that satisfy the endpoint's required parameters."""
    spec = params_for(ep)
    # the required ones, and one id of each pair of which exactly one must be given
    okx = [p.okx for p in spec.params if p.required == "yes"] + [a for a, _ in id_pairs(spec)]
    required = {spec.by_okx[n].snake: "1" for n in okx}
    if spec.kind == "items":
        from okx_sync.rest.params import batch_keyword

        return {batch_keyword(ep): [{n: "1" for n in okx}]}
    if ep.key in (("POST", "/api/v5/trade/order"), ("POST", "/api/v5/trade/amend-order")):
        required["validate"] = False
    return required


def _call(ep: Endpoint, data: Any) -> Any:
    client = FakeClient({ep.path: data})
    group = getattr(client, group_attr(ep.group))
    kwargs = _kwargs(ep)
    if params_for(ep).kind == "items" and ep.key in {
        ("POST", "/api/v5/trade/batch-orders"),
        ("POST", "/api/v5/trade/amend-batch-orders"),
    }:
        kwargs["validate"] = False
    return getattr(group, method_name(ep))(**kwargs)


def _synthetic(rows: tuple[tuple[str, str, str], ...], prefix: str = "") -> dict[str, Any]:
    """One item with a sample value for every documented field at this level."""
    item: dict[str, Any] = {}
    for field, _typ, conv in rows:
        if not field.startswith(prefix) or "." in field[len(prefix) :] or field[:1] in "[@":
            continue
        name = field[len(prefix) :]
        if conv in ("obj", "objs"):
            child = _synthetic(rows, field + ".")
            item[name] = [child] if conv == "objs" else child
        elif conv in SAMPLE:
            item[name] = SAMPLE[conv][0]
        else:
            item[name] = "as sent"
    return item


def _check(record: Any, item: dict[str, Any], rows: tuple[tuple[str, str, str], ...]) -> None:
    """Every documented top-level field of ``item`` is converted by its conv."""
    assert isinstance(record, Record)
    revealed = {k: v.reveal() if isinstance(v, Secret) else v for k, v in record.raw.items()}
    assert revealed == item
    attrs_by_okx = {okx: name for name, okx, _ in type(record)._okx_fields}
    checked = 0
    for field, _typ, conv in rows:
        if "." in field or field not in attrs_by_okx or conv not in SAMPLE:
            continue
        value = getattr(record, attrs_by_okx[field])
        if isinstance(value, Secret):  # credentials in answers are masked
            value = value.reveal()
        assert value == SAMPLE[conv][1], field
        checked += 1
    for field, _typ, conv in rows:
        if "." not in field and conv == "objs" and field in attrs_by_okx:
            nested = getattr(record, attrs_by_okx[field])
            assert isinstance(nested, tuple) and all(isinstance(n, Record) for n in nested)


# --- the record machinery ------------------------------------------------------

ROWS = (
    ("ordId", "String", "str"),
    ("px", "String", "dec"),
    ("cTime", "String", "int"),
    ("reduceOnly", "Boolean", "bool"),
    ("tags", "Array of strings", "strs"),
    ("legs", "Array of objects", "objs"),
    ("legs.instId", "String", "str"),
    ("legs.sz", "String", "dec"),
    ("linked", "Object", "obj"),
    ("linked.ordId", "String", "str"),
    ("from", "String", "str"),
    ("raw", "String", "str"),
    ("extra", "Object", "any"),
)


def test_record_converts_each_kind_and_keeps_unknown_fields() -> None:
    cls = record_class("DemoResult", ROWS, source="demo")
    item = {
        "ordId": "00123",
        "px": "0.000100",
        "cTime": "1597026383085",
        "reduceOnly": "true",
        "tags": ["a"],
        "legs": [{"instId": "BTC-USDT", "sz": "1e-3", "new": "x"}],
        "linked": {"ordId": "7"},
        "from": "f",
        "raw": "r",
        "extra": {"k": [1]},
        "brandNew": "kept",
    }
    rec = cls.from_okx(item)
    assert rec.ord_id == "00123"  # ids stay strings, leading zeros kept
    assert rec.px == Decimal("0.000100") and str(rec.px) == "0.000100"
    assert rec.c_time == 1597026383085 and rec.reduce_only is True
    assert rec.tags == ("a",)
    (leg,) = rec.legs
    assert type(leg).__name__ == "DemoResultLegs" and leg.sz == Decimal("0.001")
    assert leg.raw["new"] == "x"  # unknown nested field kept
    assert rec.linked.ord_id == "7" and rec.from_ == "f" and rec.raw_ == "r"
    assert rec.extra == {"k": [1]}
    assert rec.raw["brandNew"] == "kept" and rec.raw == item
    assert rec.raw is not item  # a copy: changing the answer later changes nothing
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rec.px = Decimal(1)  # type: ignore[misc]
    empty = cls.from_okx({"ordId": "", "px": "", "cTime": "", "legs": "", "linked": ""})
    assert (empty.ord_id, empty.px, empty.c_time, empty.legs, empty.linked) == (None,) * 5
    assert cls.from_okx({}).px is None  # an absent field is None too
    assert rec == cls.from_okx(dict(item, brandNew="other"))  # raw is not compared
    with pytest.raises(ValueError, match="DemoResult: expected an OKX object for demo"):
        cls.from_okx(["1"])


def test_positional_record_reads_arrays_by_position() -> None:
    rows = (("[]", "Array", "positional"), ("ts", "String", "int"), ("ratio", "String", "dec"))
    cls = record_class("RatioResult", rows)
    rec = cls.from_okx(["1597026383085", "1.5", "surplus"])
    assert (rec.ts, rec.ratio) == (1597026383085, Decimal("1.5"))
    assert rec.raw == {"ts": "1597026383085", "ratio": "1.5", "2": "surplus"}
    assert cls.from_okx({"ts": "1", "ratio": ""}).ratio is None  # objects work too
    with pytest.raises(ValueError, match="object or array"):
        cls.from_okx("x")


def test_table_builds_each_class_once_on_first_use() -> None:
    loads: list[int] = []

    def load() -> str:
        loads.append(1)
        return "# c\nkey\tfield\ttype\tconv\nk\tpx\tString\tdec\n"

    table = RecordTable(load, 1, "demo")
    assert loads == []  # nothing read before the first lookup
    first = table.record(("k",), "KRecord")
    assert table.record(("k",), "KRecord") is first and loads == [1]
    assert table.built("KRecord") is first and first.__module__ == "demo"
    assert table.record(("none",), "NoneRecord").from_okx({"a": "1"}).raw == {"a": "1"}
    with pytest.raises(ValueError, match="line 2"):
        parse_table("h\ta\tb\tc\nk\tonly\n", 1)


# --- every endpoint -------------------------------------------------------------


def test_every_endpoint_has_a_record_or_a_core_model() -> None:
    rows = _RESULT_TABLE.rows()
    typed = [ep for ep in ENDPOINTS if ep.key not in RESULTS]
    assert len(typed) + len({ep.key for ep in ENDPOINTS if ep.key in RESULTS}) == 379
    documented = [ep for ep in typed if rows.get(ep.key)]
    assert len(documented) >= 320  # the docs give answer fields for nearly every one
    names = [result_name(ep) for ep in typed]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("ep", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_named_method_returns_its_record_for_the_documented_fields(ep: Endpoint) -> None:
    if ep.key in RESULTS:
        model, many = RESULTS[ep.key]
        assert model.__module__.startswith("okx_sync.models")
        return
    rows = _RESULT_TABLE.rows().get(ep.key, ())
    item = _synthetic(rows) or {"undocumented": "1"}
    got = _call(ep, [item])
    assert isinstance(got, list) and len(got) == 1
    (rec,) = got
    assert type(rec) is result_record(ep) and type(rec).__name__ == result_name(ep)
    _check(rec, item, rows)


def test_records_are_importable_from_the_api_module() -> None:
    from okx_sync.rest import api

    ep = registry().get("GET", "/api/v5/public/funding-rate")
    assert ep is not None
    assert api.GetFundingRateResult is result_record(ep)
    with pytest.raises(AttributeError):
        api.NoSuchResult  # noqa: B018


def test_recorded_mark_price_and_funding_history_answers() -> None:
    data = json.loads(realdata_path("nautilus", "http_get_mark_price.json").read_text())["data"]
    ep = registry().get("GET", "/api/v5/public/mark-price")
    assert ep is not None
    (mark,) = _call(ep, data)
    assert mark.mark_px == Decimal("84660.1") and mark.ts == 1744590349506
    assert mark.inst_id == "BTC-USDT-SWAP" and mark.raw == data[0]
    path = realdata_path("nautilus", "http_get_funding_rate_history.json")
    data = json.loads(path.read_text())["data"]
    ep = registry().get("GET", "/api/v5/public/funding-rate-history")
    assert ep is not None
    rates = _call(ep, data)
    assert len(rates) == len(data)
    assert rates[0].funding_rate == Decimal("0.0001515032")
    assert rates[0].funding_time == 1704067200000 and rates[0].realized_rate == Decimal("0.00015")


# --- the docs' examples (when the mirror is on this machine) ----------------------


@pytest.fixture(scope="module")
def docs() -> tuple[dict, dict]:
    if not Path(MIRROR).exists():
        pytest.skip(f"OKX docs mirror not available at {MIRROR} (set OKX_DOCS_GIT)")
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gen_results
    finally:
        sys.path.remove(str(REPO / "scripts"))
    try:
        return gen_results.parse_docs(MIRROR, "HEAD")  # type: ignore[no-any-return]
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"OKX docs mirror unreadable: {exc}")


def _examples(found: list[tuple[list, bool, object]]) -> list[Any]:
    items: list[Any] = []
    for _fields, _pos, example in found:
        if isinstance(example, list) and example:
            items = example
            break
        if isinstance(example, dict) and example:
            items = [example]
            break
    return items


def test_every_documented_example_answer_gives_records(docs: tuple[dict, dict]) -> None:
    rest, _ = docs
    done = 0
    for ep in ENDPOINTS:
        items = _examples(rest.get(f"{ep.method} {ep.path}", []))
        if not items:
            continue
        got = _call(ep, items)
        model = RESULTS.get(ep.key, (result_record(ep), True))[0]
        results = got if isinstance(got, list) else [got]
        assert results and all(isinstance(r, model) for r in results), ep.key
        for r, item in zip(results, items, strict=False):
            if isinstance(item, dict) and isinstance(r, Record):
                assert r.raw == item
        done += 1
    assert done >= 300  # the mirror has example answers for most endpoints


def test_every_documented_example_push_parses(docs: tuple[dict, dict]) -> None:
    _, ws = docs
    assert len(ws) >= 45
    for key, found in ws.items():
        channel = key.replace("*", "1m")
        parse = push_parser(channel)
        assert parse is not None, channel
        for item in _examples(found):
            model = parse({"channel": channel, "instId": "BTC-USDT"}, item, "snapshot")
            assert model is not None and hasattr(model, "raw"), channel


# --- WebSocket channels ----------------------------------------------------------

NEW_CHANNELS = [
    "orders-algo", "algo-advance", "liquidation-warning", "adl-warning", "account-greeks",
    "funding-rate", "mark-price", "index-tickers", "price-limit", "opt-summary",
    "estimated-price", "open-interest", "liquidation-orders", "sprd-orders", "sprd-trades",
    "sprd-public-trades", "sprd-tickers", "sprd-candle1m", "grid-orders-spot",
    "grid-orders-contract", "grid-positions", "grid-sub-orders", "rfqs", "quotes",
    "struc-block-trades", "public-struc-block-trades", "public-block-trades", "block-tickers",
    "economic-calendar", "deposit-info", "withdrawal-info", "algo-recurring-buy",
    "copytrading-lead-notification", "option-trades", "call-auction-details",
    "event-contract-markets", "status",
]  # fmt: skip


@pytest.mark.parametrize("channel", NEW_CHANNELS)
def test_documented_channel_push_parses_into_its_record(channel: str) -> None:
    record = push_record(channel)
    assert record is not None, channel
    key = push_record_key(channel)
    from okx_sync.models import ws

    rows = ws._PUSH_TABLE.rows()[(key,)]
    item = _synthetic(rows)
    parse = push_parser(channel)
    assert parse is not None
    rec = parse({"channel": channel}, item, None)
    assert type(rec) is record and type(rec).__name__.endswith("Push")
    _check(rec, item, rows)


def test_every_documented_channel_is_typed() -> None:
    for key in documented_channels():
        assert push_parser(key.replace("*", "1H")) is not None, key
    assert push_parser("no-such-channel") is None


def test_core_models_kept_and_spread_books_are_book_updates() -> None:
    assert isinstance(push_parser("tickers")({}, {"instId": "X", "last": "1"}, None), Ticker)  # type: ignore[misc]
    assert push_parser("candle1m") is push_parser("mark-price-candle1H")
    inst = push_parser("instruments")({}, {"instId": "BTC-USDT", "tickSz": "0.1"}, None)  # type: ignore[misc]
    assert isinstance(inst, Instrument)
    for ch in ("sprd-books5", "sprd-bbo-tbt", "sprd-books-l2-tbt"):
        book = push_parser(ch)(
            {"channel": ch, "sprdId": "S"}, {"asks": [["1", "2", "0", "1"]], "bids": []}, None
        )  # type: ignore[misc]
        assert isinstance(book, BookUpdate) and book.asks[0].px == Decimal("1")
    candle = push_parser("candle1m")(
        {"instId": "X"}, ["1", "2", "3", "1", "2", "5", "5", "5", "1"], None
    )  # type: ignore[misc]
    assert isinstance(candle, Candle)


def test_sprd_candle_arrays_are_read_by_position() -> None:
    parse = push_parser("sprd-candle1H")
    assert parse is not None
    rec = parse(
        {}, ["1597026383085", "8533.02", "8553.74", "8527.17", "8548.26", "45247", "1"], None
    )
    assert rec.ts == 1597026383085 and rec.o == Decimal("8533.02")
    assert rec.raw["ts"] == "1597026383085"


def test_field_tables_match_the_docs_mirror(docs: tuple[dict, dict]) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gen_results
    finally:
        sys.path.remove(str(REPO / "scripts"))
    assert gen_results.main(["--check", "--git-dir", MIRROR]) == 0
