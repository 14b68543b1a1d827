"""Write docs/examples/<group>.md: a runnable example of every REST endpoint (dev-time only).

Usage: python scripts/gen_endpoint_examples.py [--git-dir DIR] [--rev REV] [--check]

For every endpoint of the registry (okx_sync/rest/endpoints.tsv), grouped as on the
client (``client.trade``, ``client.account`` ...), one snippet: the named method called
with the keywords of the OKX docs' request example (read from the docs mirror by
scripts/docs_mirror.py), what it returns (the record or model, one field read from it)
and the OKX params it sends. Values the docs example lacks but the call needs (a
required parameter, one id of an exactly-one pair) come from the docs' other request
examples (the most common value of that OKX name), else from :data:`FALLBACK`. Of an
``ordId``/``clOrdId`` (``algoId``/``algoClOrdId``) pair the snippet gives the client id.
tests/integration/test_endpoint_examples.py regenerates the files (stale = fail) and runs every
snippet against the simulator or a MockTransport, checking the request it sends.
``--check`` compares instead of writing (exit 1 when different).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from docs_mirror import git, mirror_args, request_examples
from gen_coverage import _sim_routes

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "examples"

#: Values of OKX names no docs request example gives (nor the endpoint's own example).
FALLBACK = {"instId": "BTC-USDT", "ccy": "USDT"}
#: Of these pairs the client-assigned id (second) is given: the id the caller chose
#: before sending, the one okx_sync's recovery works with.
CLIENT_IDS = (("ordId", "clOrdId"), ("algoId", "algoClOrdId"))
WIDTH = 88
#: Which of several docs examples to show, where the first is one the simulator (which
#: runs these snippets) does not model: it keeps no spot margin.
PREFER = {"POST /api/v5/account/set-leverage": {"instId": "BTC-USDT-SWAP", "mgnMode": "cross"}}


def _setup() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def _py(value: Any) -> str:
    """``value`` as Python source (double-quoted strings, as ruff formats them)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Python literal for {value!r}")


def _snake_keys(value: Any) -> Any:
    """Nested objects' OKX keys as the keywords a caller writes (``instId`` -> ``inst_id``)."""
    from okx_sync.naming import to_snake

    if isinstance(value, dict):
        return {to_snake(k): _snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


def _common_values(examples: dict[str, list[object]]) -> dict[str, list[str]]:
    """OKX name -> its documented example values, most common first."""
    counts: dict[str, Counter[str]] = {}
    for found in examples.values():
        for params in found:
            for item in params if isinstance(params, list) else [params]:
                if not isinstance(item, dict):
                    continue
                for k, v in item.items():
                    if isinstance(v, str) and v:
                        counts.setdefault(k, Counter())[v] += 1
    return {k: [v for v, _ in c.most_common()] for k, c in counts.items()}


def _fits(spec: Any, params: object) -> bool:
    """Whether every element of ``params`` gives the required parameters and exactly
    one id of each pair."""
    from okx_sync.rest.params import id_pairs

    required = [p.okx for p in spec.required]
    return all(
        isinstance(i, dict)
        and all(r in i for r in required)
        and all(sum(n in i for n in pair) == 1 for pair in id_pairs(spec))
        for i in (params if isinstance(params, list) else [params])
    )


def example_params(ep: Any, found: list[object], common: dict[str, list[str]]) -> object:
    """The OKX params of ``ep``'s example: the docs' first example that gives every
    required parameter (else its first), restricted to the declared parameters and
    completed (required ones, exactly one id of each pair; the client id of an order or
    algo order pair). A dict, or a list of dicts for an array body."""
    from okx_sync.rest.params import id_pairs, params_for

    spec = params_for(ep)
    batch = spec.kind == "items"
    usable = [p for p in found if isinstance(p, list) == batch and p != []]
    want = PREFER.get(f"{ep.method} {ep.path}", {}).items()
    usable.sort(key=lambda p: not (isinstance(p, dict) and want <= p.items()))
    chosen = next((p for p in usable if _fits(spec, p)), usable[0] if usable else None)
    if chosen is None:
        chosen = [{}] if batch else {}
    items = chosen if isinstance(chosen, list) else [chosen]
    out: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        obj = {k: v for k, v in item.items() if k in spec.by_okx}
        for pair in id_pairs(spec):
            given = [k for k in pair if k in obj]
            if pair in CLIENT_IDS:
                server, client = pair
                value = obj.get(client) or _value(client, common, n)
                obj = {client if k == server else k: v for k, v in obj.items()}
                obj[client] = value
            elif len(given) != 1:
                for k in given[1:]:
                    obj.pop(k)
                if not given:
                    obj[pair[0]] = _value(pair[0], common, n)
        for p in spec.required:
            if p.okx not in obj:
                obj[p.okx] = _value(p.okx, common, n)
        out.append(obj)
    return out if batch else out[0]


def _value(okx: str, common: dict[str, list[str]], n: int) -> str:
    """A documented example value of ``okx`` (the ``n``-th most common, for the
    ``n``-th element of a batch: ids must differ), else :data:`FALLBACK`'s."""
    values = common.get(okx) or [FALLBACK.get(okx, "1")]
    return values[min(n, len(values) - 1)]


def _call(target: str, kwargs: list[tuple[str, Any]]) -> str:
    args = [f"{k}={_py(v)}" for k, v in kwargs]
    line = f"result = {target}({', '.join(args)})"
    if len(line) <= WIDTH:
        return line
    out = [f"result = {target}("]
    for k, v in kwargs:
        if isinstance(v, list) and len(f"    {k}={_py(v)},") > WIDTH:
            out += [f"    {k}=[", *(f"        {_py(e)}," for e in v), "    ],"]
        else:
            out.append(f"    {k}={_py(v)},")
    return "\n".join(out + [")"])


def _read(ep: Any) -> tuple[str, str, bool]:
    """(returned type text, the attribute the snippet reads, many) of ``ep``'s result."""
    import attrs

    from okx_sync.rest.named import _RESULT_TABLE, RESULTS, result_record

    spec = RESULTS.get(ep.key)
    if spec is not None:
        model, many = spec
        names = [f.name for f in attrs.fields(model) if f.name != "raw"]
        return model.__name__, names[0], many
    record = result_record(ep)
    attrs_by_okx = {okx: name for name, okx, _ in record._okx_fields}
    for field, _typ, conv in _RESULT_TABLE.rows().get(ep.key, ()):
        if field in attrs_by_okx and conv in ("str", "dec", "int", "bool"):
            return record.__name__, attrs_by_okx[field], True
    return record.__name__, "raw", True


def entry(ep: Any, params: object) -> list[str]:
    """The markdown lines of one endpoint's example."""
    from okx_sync.rest.named import group_attr, method_name
    from okx_sync.rest.params import batch_keyword

    target = f"client.{group_attr(ep.group)}.{method_name(ep)}"
    if isinstance(params, list):
        kwargs = [(batch_keyword(ep), _snake_keys(params))]
    else:
        kwargs = [(k, _snake_keys(v)) for k, v in _snake_names(ep, params)]
    model, field, many = _read(ep)
    code = [_call(target, kwargs)]
    if many:
        code += ["for row in result:", f"    print(row.{field})"]
    else:
        code.append(f"print(result.{field})")
    returns = f"list[{model}]" if many else model
    where = "simulator" if ep.key in _sim_routes() else "mock"
    return [
        f"### {target}",
        "",
        f"`{ep.method} {ep.path}` returns `{returns}`; tested on: {where}.",
        "",
        "```python",
        *code,
        "```",
        "",
        "Sends: `" + json.dumps(params, separators=(",", ":"), ensure_ascii=False) + "`",
        "",
    ]


def _snake_names(ep: Any, params: dict[str, Any]) -> list[tuple[str, Any]]:
    from okx_sync.rest.params import params_for

    spec = params_for(ep)
    return [(spec.by_okx[k].snake, v) for k, v in params.items()]


def render(git_dir: str, rev: str) -> dict[str, str]:
    """File name -> text of every docs/examples/<group>.md."""
    _setup()
    from okx_sync.rest.named import GROUP_CLASSES

    commit = git(git_dir, "rev-parse", rev).strip()
    examples = request_examples(git_dir, rev)
    common = _common_values(examples)
    files: dict[str, str] = {}
    for attr, cls in GROUP_CLASSES.items():
        lines = [
            f"# client.{attr}: an example per endpoint",
            "",
            "Generated by `python scripts/gen_endpoint_examples.py`; do not edit. Every",
            "snippet runs in `tests/integration/test_endpoint_examples.py` (on the simulator where it",
            "serves the endpoint, else on a `MockTransport` answering the OKX docs' example",
            "answer), which checks the request it sends (the `Sends:` line, OKX names) and",
            "the type it returns. Values: the OKX docs' request example (mirror",
            f"github.com/qiuham/crypto-api-docs, commit `{commit[:12]}`); a value it lacks",
            "comes from the docs' other examples. Of an `ordId`/`clOrdId` pair the",
            "snippets give the client order id. `client` is an `okx_sync.Client`.",
            "",
        ]
        for ep in sorted(cls.endpoints, key=lambda e: (e.path, e.method)):
            params = example_params(ep, examples.get(f"{ep.method} {ep.path}", []), common)
            lines += entry(ep, params)
        files[f"{attr}.md"] = "\n".join(lines).rstrip("\n") + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) docs/examples/*.md; the exit status."""
    args = sys.argv[1:] if argv is None else argv
    git_dir, rev = mirror_args(args)
    files = render(git_dir, rev)
    if "--check" in args:
        present = {p.name for p in OUT.glob("*.md")} if OUT.exists() else set()
        bad = sorted(
            {
                n
                for n, t in files.items()
                if not (OUT / n).exists() or (OUT / n).read_text("utf-8") != t
            }
            | (present - set(files))
        )
        for n in bad:
            print(
                f"{OUT / n} is out of date; run python scripts/gen_endpoint_examples.py",
                file=sys.stderr,
            )
        return 1 if bad else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for n, t in files.items():
        (OUT / n).write_text(t, "utf-8")
    print(f"wrote {len(files)} files to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
