"""Write the answer and push field tables from the OKX docs mirror (dev-time only).

Usage: python scripts/gen_results.py [--git-dir DIR] [--rev REV] [--check]

Reads the OKX V5 reference as mirrored in github.com/qiuham/crypto-api-docs (a bare git
directory, by default /work/.mirror/qiuham+crypto-api-docs/repo, or $OKX_DOCS_GIT) and
writes two tables of facts (field names, documented types, nesting; no prose):

- okx_sync/rest/results.tsv: for every endpoint of the registry (endpoints.tsv), the
  fields of one ``data`` item of its answer ("Response Parameters" tables);
- okx_sync/models/pushes.tsv: for every WebSocket channel the docs list, the fields of
  one ``data`` item of its pushes ("Push data parameters" tables).

Each row also carries ``conv``, how a value is turned into Python, decided here from the
documented type, the field name, the description and the documented example values:
``dec`` (Decimal), ``int`` (ms timestamps), ``str``, ``bool``, ``strs`` (tuple of str),
``obj`` / ``objs`` (a nested record / a tuple of them; their fields are the rows
``parent.child``), ``any`` (kept as sent). A row ``[]`` with conv ``positional`` says that
the documented items are arrays whose positions are the following top-level fields.
The mirror commit is recorded in each file's header. ``--check`` compares instead of
writing (exit 1 when different).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from docs_mirror import git, json_block, mirror_args, pages

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "okx_sync" / "rest" / "results.tsv"
PUSHES = ROOT / "okx_sync" / "models" / "pushes.tsv"
ENDPOINTS = ROOT / "okx_sync" / "rest" / "endpoints.tsv"

REQ = re.compile(r"`(GET|POST)\s+(/api/v5/[^\s`?]+)[^`]*`")
ROW = re.compile(r"^((?:>\s*)*)([A-Za-z_][A-Za-z0-9_.\[\]]*)\s*\|\s*([^|]*?)\s*\|(.*)$")
CHANNEL = re.compile(r'"channel"\s*:\s*"([A-Za-z0-9_-]+)"')
NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
ENUM_DESC = re.compile(r"`[^`]{1,30}`\s*[:：]")
CANDLE_FAMILY = re.compile(r"^(.*candle)\d*[A-Za-z]+(utc)?$")

NUMERIC_NAME = re.compile(
    r"(px|Px|sz|Sz|amt|Amt|bal|Bal|fee|Fee|pnl|Pnl|Eq$|^eq|rate|Rate|ratio|Ratio|lever|Lever|"
    r"vol|Vol|qty|Qty|imr|mmr|upl|Upl|liab|Liab|interest|Interest|notional|Notional|price|"
    r"Price|Lmt|limit|Limit|size|Size|delta|Delta|gamma|Gamma|vega|Vega|theta|Theta|apy|Apy|"
    r"apr|Apr|yield|Yield|amount|Amount|quota|Quota|^oi|Oi|Usd$|Val$|val$|Froz|froz|^max|Max|^min|Min|"
    r"Spread$|spread$|Cnt$|cnt$|Num$|num$|Count$|count$)"
)
STR_SUFFIX = re.compile(
    r"(id|Id|ID|ids|Ids|IDs|type|Type|state|State|status|Status|mode|Mode|side|Side|flag|Flag|"
    r"Code|code|Ccy|ccy|uly|Uly|Family|family|Name|name|tag|Tag|alias|Alias|label|Label|addr|"
    r"Addr|chain|Chain|memo|Memo|msg|Msg|bar|Bar|period|Period|url|Url|Link|link|Stgy|Ver|"
    r"Algo|Dir|dir|Src|src|Lvl|lvl|Lv|Route|List|Key|key|Acct|From|Zone)$"
)
# names documented as strings whose values are codes, not amounts
ENUM_NAMES = frozenset(
    {
        "ccy", "instId", "uid", "sMsg", "sCode", "confirm", "from", "to", "category", "tier",
        "classic", "enabled", "trading", "term", "recurringHour", "recurringTime",
    }
)  # fmt: skip
TIME_NAME = re.compile(r"(^ts$|Ts$|Time$|^[a-z]?[A-Z]?time$|Date$)")


def _table(lines: list[str], start: int) -> tuple[list[dict[str, object]], int]:
    """Rows (name, type, depth, desc) of the markdown table after the heading at ``start``."""
    rows: list[dict[str, object]] = []
    last: dict[str, object] | None = None
    j = start + 1
    while j < len(lines):
        line = lines[j]
        low = line.lower().strip()
        if line.startswith("#"):
            break
        if low.startswith("> ") and ("example" in low or "示例" in low):
            if rows:
                break
            _, j = json_block(lines, j)  # an example between the heading and its table
            continue
        if line.strip() == "---":
            break
        m = ROW.match(line)
        if m and m.group(2).lower() not in ("parameter", "parameters", "field"):
            cells = m.group(4).split("|")
            last = {
                "name": m.group(2),
                "type": m.group(3).strip("* "),
                "depth": m.group(1).count(">"),
                "desc": cells[-1],
                "required": len(cells) > 1,
            }
            rows.append(last)
        elif last is not None and not set(line.strip()) <= set("-|"):
            last["desc"] = str(last["desc"]) + "\n" + line
        j += 1
    return rows, j


def _values(example: object, path: tuple[str, ...]) -> list[object]:
    """The values at ``path`` in the example items (lists are walked through)."""
    items: list[object] = [example]
    for key in path:
        nxt: list[object] = []
        for it in items:
            for x in it if isinstance(it, list) else [it]:
                if isinstance(x, dict) and key in x:
                    nxt.append(x[key])
        items = nxt
    return items


def _conv(name: str, typ: str, desc: str, values: list[object], has_children: bool) -> str:
    t = typ.lower()
    base = name.split(".")[-1]
    if "bool" in t:
        return "bool"
    if t.startswith("array"):
        if has_children and "object" in t:
            return "objs"
        if "string" in t and "array" not in t[5:]:
            return "strs"
        return "objs" if has_children else "any"
    if "object" in t:
        return "obj" if has_children else "any"
    scalars = [v for v in values if not isinstance(v, (list, dict))]
    texts = [str(v) for v in scalars if v not in ("", None)]
    low = desc.lower()
    timeish = "millisecond" in low or "unix timestamp" in low or TIME_NAME.search(base)
    if timeish and texts and all(x.isdigit() and len(x) >= 12 for x in texts):
        return "int"
    if TIME_NAME.search(base) and texts and all(x.isdigit() for x in texts):
        return "int"
    if timeish and not texts and ("millisecond" in low or "unix timestamp" in low):
        return "int"
    if STR_SUFFIX.search(base) or base in ENUM_NAMES:
        return "str"
    if ENUM_DESC.search(desc) and not NUMERIC_NAME.search(base):
        return "str"
    if texts:
        return "dec" if all(NUMBER.match(x) for x in texts) else "str"
    if "number" in t or "integer" in t or NUMERIC_NAME.search(base):
        return "dec"
    return "str"


def _fields(rows: list[dict[str, object]], example: object) -> list[tuple[str, str, str]]:
    """(dotted field, documented type, conv) for the table rows of one data item."""
    out: list[tuple[str, str, str]] = []
    stack: list[str] = []
    top = -1
    positional = _positional(example)
    for i, r in enumerate(rows):
        depth = int(str(r["depth"]))
        name = str(r["name"])
        stack = stack[:depth] + [name]
        path = tuple(stack)
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        children = nxt is not None and int(str(nxt["depth"])) > depth
        top += depth == 0
        if positional and depth == 0 and isinstance(example, list):
            arrays = example if isinstance(example[0], list) else [example]
            vals = [it[top] for it in arrays if len(it) > top]  # arrays: by position
        else:
            vals = _values(example, path)
        conv = _conv(".".join(path), str(r["type"]), str(r["desc"]), vals, children)
        out.append((".".join(path), str(r["type"]).replace("\t", " "), conv))
    return out


def _item_rows(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The rows describing one data item: the children of a ``data`` row when the table
    documents the whole envelope (code/msg/data or arg/data), else the table as is."""
    names = [str(r["name"]) for r in rows if r["depth"] == 0]
    if "data" in names and ({"code", "msg", "arg"} & set(names) or len(names) == 1):
        k = next(i for i, r in enumerate(rows) if r["name"] == "data" and r["depth"] == 0)
        out = []
        for r in rows[k + 1 :]:
            if int(str(r["depth"])) == 0:
                break
            out.append({**r, "depth": int(str(r["depth"])) - 1})
        return out
    return rows


def _example_items(example: object) -> object:
    if isinstance(example, dict) and "data" in example:
        return example["data"]
    return example


def _positional(items: object) -> bool:
    """Items documented as arrays (or the data itself one flat array)."""
    if not isinstance(items, list) or not items:
        return False
    return all(isinstance(x, list) for x in items) or not any(
        isinstance(x, (list, dict)) for x in items
    )


def parse_docs(git_dir: str, rev: str) -> tuple[dict, dict]:
    """(endpoint key -> found, channel -> found) from every docs page at ``rev``; each
    found is a list (one per page) of (fields, positional, example data items or None).
    Tests read the examples too (tests/unit/test_records.py). Parsed once per commit in a
    process (``render`` and the tests share it): callers only read it."""
    return _parse_commit(git_dir, git(git_dir, "rev-parse", rev).strip())


@functools.lru_cache(maxsize=4)
def _parse_commit(git_dir: str, commit: str) -> tuple[dict, dict]:
    rest: dict[str, list[tuple[list, bool, object]]] = {}
    ws: dict[str, list[tuple[list, bool, object]]] = {}
    for _name, lines in pages(git_dir, commit):  # leaf pages first
        cur: list[str] = []
        example: object = None
        push_example: object = None
        channel = ""
        service = ""
        i = 0
        while i < len(lines):
            line = lines[i]
            low = line.lower().strip()
            if line.startswith("# ") or line.startswith("## "):
                cur, example, push_example, channel, service = [], None, None, "", ""
            if low.startswith("/ws/v5/"):
                m = re.match(r"/ws/v5/(\w+)", low)
                service = (m.group(1) if m else "") + (" login" if "login" in low else "")
            if line.startswith("#") and "http request" in low:
                cur, example = [], None
                j = i + 1
                while j < len(lines) and not lines[j].startswith("#"):
                    cur += [
                        f"{m.group(1)} {m.group(2).rstrip('/')}" for m in REQ.finditer(lines[j])
                    ]
                    j += 1
                i = j
                continue
            if low.startswith(">") and "response example" in low:
                example, i = json_block(lines, i)
                example = None if isinstance(example, str) else example
                if isinstance(example, dict) and {"arg", "data"} <= set(example):
                    push_example, example = example, None  # a push shown as a "response"
                    m = CHANNEL.search(json.dumps(push_example))
                    channel = m.group(1) if m else channel
                continue
            if low.startswith(">") and "push" in low and "example" in low:
                push_example, i = json_block(lines, i)
                text = push_example if isinstance(push_example, str) else json.dumps(push_example)
                m = CHANNEL.search(text) if push_example else None
                channel = m.group(1) if m else channel
                push_example = None if isinstance(push_example, str) else push_example
                continue
            heading = "response parameters" in low or "response example" in low
            if low.startswith("#") and heading and cur:  # (a few pages head it "Example")
                rows, j = _table(lines, i)
                if rows and not any(r["required"] for r in rows[:3]):
                    items = _example_items(example)
                    fields = _fields(_item_rows(rows), items)
                    for key in cur:
                        rest.setdefault(key, []).append((fields, _positional(items), items))
                    cur = []
                i = j
                continue
            pushed = "push data parameters" in low or "data is pushed" in low
            if low.startswith("#") and "response parameters" in low and push_example and channel:
                pushed = True  # the table of a push shown as a "response"
            if low.startswith("#") and pushed:
                rows, j = _table(lines, i)
                if rows and channel:
                    items = _example_items(push_example)
                    name = channel
                    fam = CANDLE_FAMILY.match(channel)
                    if fam and "candle" in channel:
                        name = fam.group(1) + "*"
                    fields = _fields(_item_rows(rows), items)
                    if service:  # the WebSocket service (URL path) as a meta row
                        fields.insert(0, ("@service", service, "meta"))
                    ws.setdefault(name, []).append((fields, _positional(items), items))
                channel = ""
                i = j
                continue
            i += 1
    return rest, ws


def best(found: list[tuple[list, bool, object]]) -> tuple[list, bool, object]:
    """The fullest table of the pages found for one key."""
    return max(found, key=lambda fp: len(fp[0]))


def _rows(key: str, fields: list[tuple[str, str, str]], positional: bool) -> Iterable[str]:
    if positional:
        yield f"{key}\t[]\tArray\tpositional"
    seen = set()
    for name, typ, conv in fields:
        if name in seen:
            continue
        seen.add(name)
        yield f"{key}\t{name}\t{typ}\t{conv}"


def render(git_dir: str, rev: str) -> tuple[str, str]:
    """The text of results.tsv and pushes.tsv."""
    commit = git(git_dir, "rev-parse", rev).strip()
    rest, ws = parse_docs(git_dir, rev)
    header = [
        "# Generated by scripts/gen_results.py from the OKX V5 reference as mirrored in",
        f"# github.com/qiuham/crypto-api-docs (docs/okx/...), commit {commit}.",
        "# Facts only: field names, documented types, nesting (parent.child); no prose.",
        "# conv: dec = Decimal, int = int (ms timestamps), str, bool, strs = tuple of str,",
        "#       obj / objs = nested record / tuple of records (fields: the parent.* rows),",
        "#       any = kept as sent; field [] conv positional = items are arrays whose",
        "#       positions are the top-level fields in order.",
    ]
    out = header + [
        "# Endpoints without a row had no response table in the docs: their records",
        "# keep everything in .raw.",
        "method\tpath\tfield\ttype\tconv",
    ]
    eps = [ln.split("\t") for ln in ENDPOINTS.read_text("utf-8").splitlines()[1:] if ln.strip()]
    for ep in eps:
        key = f"{ep[1]} {ep[2]}"
        if key in rest:
            fields, positional, _ = best(rest[key])
            out += [r.replace(" ", "\t", 1) for r in _rows(key, fields, positional)]
    ws_out = header + [
        "# channel: as documented; a candle family is written prefix* (candle1m -> candle*).",
        "# field @service (conv meta): the channel's WebSocket service (URL path), + login if needed.",
        "channel\tfield\ttype\tconv",
    ]
    for ch in sorted(ws):
        fields, positional, _ = best(ws[ch])
        ws_out += list(_rows(ch, fields, positional))
    return "\n".join(out) + "\n", "\n".join(ws_out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) results.tsv and pushes.tsv; the exit status."""
    args = sys.argv[1:] if argv is None else argv
    git_dir, rev = mirror_args(args)
    results, pushes = render(git_dir, rev)
    if "--check" in args:
        bad = [p for p, t in ((RESULTS, results), (PUSHES, pushes)) if p.read_text("utf-8") != t]
        for p in bad:
            print(f"{p} is out of date; run python scripts/gen_results.py", file=sys.stderr)
        return 1 if bad else 0
    RESULTS.write_text(results, "utf-8")
    PUSHES.write_text(pushes, "utf-8")
    print(f"wrote {RESULTS} and {PUSHES}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
