"""Write docs/coverage.md: every OKX V5 REST endpoint with its named method and rate rule.

Usage: python scripts/gen_coverage.py [--check]

Generated from the endpoint registry (okx_sync/rest/endpoints.tsv), the request
parameter data (okx_sync/rest/params.tsv) and the named-method groups
(okx_sync.rest.named). ``--check`` writes nothing and exits 1 when the file is stale;
tests/unit/test_api_coverage.py does the same comparison inside ``python -m pytest``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "coverage.md"


# The audit of params.tsv against the OKX docs mirror: what was done once, by hand, with a
# throwaway parser of every endpoint's request-parameter table. Kept here so the generated
# file carries it; the flagged-parameter table after it is generated from params.tsv.
AUDIT = """\
## Request parameters against the OKX docs

Audit of `okx_sync/rest/params.tsv` against the OKX docs mirror
(github.com/qiuham/crypto-api-docs, `docs/okx/`, commit `{commit}`):
the request-parameter table of every endpoint of `endpoints.tsv` was parsed and compared
with the declared parameters and required flags.

- Endpoints checked: **379**; not found in the mirror: **none**. 367 have a
  request-parameter table (two of them headed "Response parameters" in the mirror:
  `GET /api/v5/asset/convert/currency-pair`, `POST /api/v5/sprd/amend-order`); 12 are
  documented without parameters.
- Parameters added: **2** — `GET /api/v5/account/interest-accrued`: `type`;
  `POST /api/v5/account/set-auto-earn`: `apr` (deprecated).
- Deprecated (marked so in the docs, still accepted, flagged `deprecated` in `params.tsv`):
  **3** — `riskOffsetType` (`POST /api/v5/account/account-level-switch-preset`), `apr`
  (`POST /api/v5/account/set-auto-earn`), `discountLv`
  (`GET /api/v5/public/discount-rate-interest-free-quota`). Not flagged: deprecated *values*
  of a current parameter (`type` of insurance-fund, `module` 6 of market-data-history,
  `action=amend` of set-auto-earn) and `clOrdId` of `GET /api/v5/tradingBot/signal/sub-orders`
  (announced for deprecation, not deprecated yet).
- Declared but absent from the docs table (flagged `undocumented`, kept as keywords): `uly`
  of `GET /api/v5/account/position-tiers` and `GET /api/v5/public/insurance-fund`,
  `subPosType` of `POST /api/v5/copytrading/algo-order`.
- Sources: the 71 endpoints whose rows came from python-okx signatures, an SDK table or
  inference now read `docs`, with the docs' names, order and required flags (54 flags on
  34 endpoints changed, e.g. `ccy` of the rubik statistics, `posMode` of set-position-mode,
  now refused before sending when missing). Two flags deliberately differ from the table:
  `instFamily` of account position-tiers is `cond` (the undocumented `uly` is the
  alternative); `after` of signal orders-algo-history is optional (a pagination cursor; the
  same call's pending twin declares it optional too).
- Required flags kept where a `docs` row differs from the table's Required column, because
  the Yes applies to one variant only or the description makes it conditional: order-algo
  and amend-algos (per-order-type sub-tables), grid order-algo (`sz`, `direction`, `lever`:
  contract grid only), dca create (`lever`: contract DCA only), stop-copy-trading
  (`subPosCloseType`: only with open copy positions), signal
  set-instruments (`instIds` ignored when `includeAll` is true; `includeAll` has a
  default), account-level-switch-preset (`lever`: only when leaving Portfolio margin
  with cross positions), signal orders-algo-pending (`after`: a pagination cursor).
- Nested objects: the fields of `attachAlgoOrds` are declared (`attachAlgoOrds.<field>`
  rows) and match the docs on all 7 endpoints that take it. Other nested objects (`legs`,
  `triggerParams`, `investData`, `simPos`, `rcvrInfo`...) are declared as their parent
  parameter; their keys are converted snake_case -> camelCase on the wire, not checked.
"""


def _sim_routes() -> set[tuple[str, str]]:
    """(method, path) of every REST route the simulator serves (okx_sync/sim/routes.py)."""
    text = (ROOT / "okx_sync" / "sim" / "routes.py").read_text("utf-8")
    return {(m, "/api/v5/" + p) for m, p in re.findall(r'\("(GET|POST)", _P \+ "([^"]+)"\)', text)}


def _sim_text() -> str:
    return "\n".join(p.read_text("utf-8") for p in sorted((ROOT / "okx_sync" / "sim").glob("*.py")))


def _examples_text() -> str:
    return "\n".join(p.read_text("utf-8") for p in sorted((ROOT / "examples").glob("*.py")))


def _channel_in(text: str, channel: str) -> bool:
    """Whether ``text`` names ``channel`` as a channel (``"channel": "x"``,
    ``on("x"``, ``== "x"``, a channel set...): a quoted name that is not a dict key."""
    name = (
        re.escape(channel[:-1]) + r"\d+[A-Za-z]+" if channel.endswith("*") else re.escape(channel)
    )
    return re.search(r'(?<!\[)"' + name + r'"(?!\s*:)', text) is not None


def _channels(examples: str, sim: str) -> list[str]:
    """The WebSocket channel table (generated from models/pushes.tsv)."""
    from okx_sync.models.ws import (
        _BY_CHANNEL,
        _CANDLE_PREFIXES,
        _PUSH_TABLE,
        BOOK_CHANNELS,
        SPREAD_BOOK_CHANNELS,
        documented_channels,
        push_parser,
        push_record,
    )

    rows = _PUSH_TABLE.rows()
    channels = sorted(set(documented_channels()) | BOOK_CHANNELS | SPREAD_BOOK_CHANNELS)
    lines = [
        "## WebSocket channels",
        "",
        "Every channel with a push table in the OKX docs (`okx_sync/models/pushes.tsv`,",
        "written by `scripts/gen_results.py`) plus the book channels. `ws.on(channel, fn)`",
        "hands `fn` the model below; *record* = generated from the docs' push fields.",
        "sim: the simulator (okx_sync/sim) names the channel; example: an `examples/` script",
        "names it.",
        "",
        "| channel | model | typed | service | sim | example |",
        "|---|---|---|---|---|---|",
    ]
    for ch in channels:
        probe = ch.replace("*", "1m")
        parse = push_parser(probe)
        meta = [t for f, t, _ in rows.get((ch,), ()) if f == "@service"]
        record = push_record(probe)
        hand = ch in _BY_CHANNEL or probe.startswith(_CANDLE_PREFIXES)
        if parse is None or (record is None and not hand):
            model, typed = "dict", "no"
        elif hand:
            model, typed = _hand_model(ch), "yes (core model)"
        else:
            model, typed = f"`{record.__name__}`", "yes (record)"
        lines.append(
            f"| `{ch}` | {model} | {typed} | {meta[0] if meta else '-'} "
            f"| {'yes' if _channel_in(sim, ch) else '-'} "
            f"| {'yes' if _channel_in(examples, ch) else '-'} |"
        )
    lines.append("")
    return lines


def _hand_model(channel: str) -> str:
    if "candle" in channel:
        return "`Candle`"
    if "book" in channel or channel.endswith("bbo-tbt"):
        return "`BookUpdate`"
    names = {
        "tickers": "Ticker", "trades": "Trade", "trades-all": "Trade", "orders": "Order",
        "fills": "Fill", "account": "Balance", "positions": "Position",
        "balance_and_position": "BalanceAndPosition", "instruments": "Instrument",
    }  # fmt: skip
    return f"`{names.get(channel, '?')}`"


def render() -> str:
    """The text of docs/coverage.md for the current registry."""
    sys.path.insert(0, str(ROOT))
    from okx_sync.rest.endpoints import registry
    from okx_sync.rest.named import (
        _RESULT_TABLE,
        ALIASES,
        GROUP_CLASSES,
        RESULTS,
        group_attr,
        method_name,
        result_name,
    )
    from okx_sync.rest.params import SOURCE_COMMIT, params_for

    sim_routes = _sim_routes()
    sim_text = _sim_text()
    examples = _examples_text()
    answer_rows = _RESULT_TABLE.rows()

    reg = registry()
    total = len(reg)
    go = sum(1 for e in reg if e.in_go_okx)
    sources: dict[str, int] = {}
    for e in reg:
        s = params_for(e).source
        sources[s] = sources.get(s, 0) + 1
    lines = [
        "# OKX V5 REST coverage",
        "",
        "Generated by `python scripts/gen_coverage.py` from the endpoint registry",
        "(`okx_sync/rest/endpoints.tsv`) and the parameter data (`okx_sync/rest/params.tsv`);",
        "a test regenerates it and fails when this file is stale.",
        "",
        f"- Endpoints: **{total}**, every one with a named method "
        f"({go} also in the Go SDK, {total - go} not).",
        f"- Groups: {len(GROUP_CLASSES)} — "
        + ", ".join(f"`client.{a}`" for a in GROUP_CLASSES)
        + ".",
        "- Registry groups renamed on the client: `funding` → `asset`, `sub-account` → "
        "`subaccount`, `status` → `system`; the bot groups `signal`, `recurring`, `dca` "
        "keep their own names.",
        "- Parameter sources: "
        + ", ".join(f"{k} {v}" for k, v in sorted(sources.items()))
        + " (see the header of `params.tsv`).",
        f"- Typed results: every endpoint. {len(RESULTS)} return core models "
        "(`okx_sync.models`); the others return lists of records generated from the answer "
        "fields in the OKX docs (`okx_sync/rest/results.tsv`, `scripts/gen_results.py`), "
        f"{sum(1 for e in reg if e.key not in RESULTS and answer_rows.get(e.key))} with typed "
        "fields, "
        f"{sum(1 for e in reg if e.key not in RESULTS and not answer_rows.get(e.key))} with "
        "`raw` only (the docs list no answer fields). `client.request` returns OKX's data as sent.",
        f"- Served by the simulator: {sum(1 for e in reg if e.key in sim_routes)} endpoints; "
        "columns: sim = a route in `okx_sync/sim/routes.py`, example = named by an "
        "`examples/` script, tags = order entry / private / deprecated params.",
        "- Method names do not repeat their group (`client.grid.amend_order`); the registry "
        "name (`grid_amend_order`, the `name` column of `endpoints.tsv`) stays in the "
        "method's docstring and in the last column below.",
        "- Rate rule: `limit unit / window per key rule` as published by OKX.",
        "",
    ]
    if ALIASES:
        lines.append(
            "Aliases (both names work): "
            + ", ".join(f"`{g}.{a}` = `{g}.{t}`" for (g, a), t in sorted(ALIASES.items()))
            + "."
        )
        lines.append("")
    lines += AUDIT.format(commit=SOURCE_COMMIT).splitlines()
    lines += [
        "",
        "Flagged parameters (generated from `params.tsv`; each is also named in the method's",
        "docstring and in `okx_sync/rest/api.pyi`):",
        "",
        "| endpoint | keyword (OKX name) | status |",
        "|---|---|---|",
    ]
    for e in sorted(reg, key=lambda e: (e.path, e.method)):
        spec = params_for(e)
        flagged = [p for p in spec.params if p.note]
        flagged += [f for ps in spec.fields.values() for f in ps.params if f.note]
        for p in flagged:
            lines.append(f"| `{e.method} {e.path}` | `{p.snake}` (`{p.okx}`) | {p.note} |")
    lines.append("")
    for attr, cls in GROUP_CLASSES.items():
        lines.append(f"## client.{attr} ({cls.group}, {len(cls.endpoints)})")
        lines.append("")
        lines.append(
            f"A runnable example of each endpoint below: [examples/{attr}.md](examples/{attr}.md)"
            " (executed by `tests/integration/test_endpoint_examples.py`)."
        )
        lines.append("")
        lines.append(
            "| endpoint | named method | rate rule | returns | typed | sim | example | tags "
            "| registry name |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for ep in sorted(cls.endpoints, key=lambda e: (e.path, e.method)):
            spec = RESULTS.get(ep.key)
            if spec is None:
                ret = f"list[{result_name(ep)}]"
                typed = "record" if answer_rows.get(ep.key) else "raw only"
            else:
                ret = f"list[{spec[0].__name__}]" if spec[1] else spec[0].__name__
                typed = "model"
            name = method_name(ep)
            attr = group_attr(ep.group)
            used = f".{attr}.{name}(" in examples or f'"{ep.path}"' in examples
            tags = []
            if ep.enters_orders:
                tags.append("order entry")
            if ep.auth == "private":
                tags.append("private")
            if any(p.note == "deprecated" for p in params_for(ep).params):
                tags.append("deprecated params")
            lines.append(
                f"| `{ep.method} {ep.path}` | `client.{attr}.{name}` "
                f"| {ep.rate_text} | {ret} | {typed} | {'yes' if ep.key in sim_routes else '-'} "
                f"| {'yes' if used else '-'} | {', '.join(tags) or '-'} | `{ep.name}` |"
            )
        lines.append("")
    lines += _channels(examples, sim_text)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, verify) docs/coverage.md; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        if not DOC.exists() or DOC.read_text("utf-8") != text:
            print(f"{DOC} is out of date; run python scripts/gen_coverage.py", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, "utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
