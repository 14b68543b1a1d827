"""Write okx_sync/compat/okx_surface.tsv: python-okx's REST surface, observed. Dev-time only.

Usage: python scripts/gen_compat_okx.py [--check]

Needs an installed python-okx (the ``test`` extra). Nothing of python-okx's code is
copied: its classes are introspected (module, class, public methods, parameters and
defaults with :mod:`inspect`) and every method is *called* against a recording HTTP
server on 127.0.0.1 to observe the request it makes:

- call A: required parameters get a sentinel, the others keep their defaults. A
  parameter whose wire key is missing from the POST body here is sent only when
  its value differs from the default (``?`` in the table).
- call B: every parameter gets its own sentinel; where each sentinel lands gives
  the wire key (query or body key, ``*`` for a parameter that *is* the body, ``-``
  for one that is never sent) and the wire order.

A method whose request does not fit this model (a sentinel changed on the way,
an unexpected error) stops the script with a list of such methods.

Columns: module, class, method, http method, path, body (``query`` for GET; POST:
``object``, ``list1`` for an object wrapped in a one-element list, ``param`` when one
parameter is the body), signature (``name`` or ``name=<python literal>``,
``|``-separated in order), wire (``|``-separated in wire order: ``key<param``,
``key<param?`` (sent only when not the default), ``*<a/b`` (the body: the first of
``a``, ``b`` that is not None), ``-<param`` (never sent)). The first line is a comment naming
the python-okx version. With ``--check`` nothing is written; the exit status is 1
when the file differs from what the installed python-okx gives.
"""

from __future__ import annotations

import http.server
import importlib
import inspect
import json
import pkgutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "okx_sync" / "compat" / "okx_surface.tsv"
# python-okx modules that hold no REST API class
SKIP_MODULES = {"okx.consts", "okx.utils", "okx.exceptions", "okx.okxclient"}
COLUMNS = ("module", "class", "method", "http", "path", "body", "signature", "wire")
_ENVELOPE = b'{"code":"0","msg":"","data":[]}'


# -- discovery ---------------------------------------------------------------------------
def rest_modules() -> Iterator[Any]:
    """python-okx's REST modules (``okx.Trade``, ``okx.Finance.Savings``...), sorted."""
    import okx

    names = sorted(
        m.name
        for m in pkgutil.walk_packages(okx.__path__, "okx.")
        if not m.ispkg and m.name not in SKIP_MODULES and ".websocket" not in m.name
    )
    for name in names:
        yield importlib.import_module(name)


def rest_methods() -> Iterator[tuple[str, str, str, Any]]:
    """``(module, class, method, function)`` for every public method of every python-okx
    REST class (a class defined in the module that derives from ``OkxClient``), sorted."""
    from okx.okxclient import OkxClient

    for mod in rest_modules():
        short = mod.__name__.removeprefix("okx.")
        classes = sorted(
            (name, cls)
            for name, cls in vars(mod).items()
            if isinstance(cls, type)
            and cls.__module__ == mod.__name__
            and issubclass(cls, OkxClient)
        )
        for cls_name, cls in classes:
            for meth, fn in sorted(vars(cls).items()):
                if not meth.startswith("_") and inspect.isfunction(fn):
                    yield short, cls_name, meth, fn


# -- the recording server ----------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Recorder

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.seen.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(_ENVELOPE)))
        self.end_headers()
        self.wfile.write(_ENVELOPE)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Recorder(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that answers every request with a code-0 envelope and
    records ``(method, target, body)``; ``with Recorder() as rec: rec.url``; ``take()``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, bytes]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, name="okx-compat-recorder")

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(5)

    def take(self) -> list[tuple[str, str, bytes]]:
        """The requests recorded since the last ``take``."""
        with self.lock:
            out, self.seen = self.seen, []
        return out


def wire_of(method: str, target: str, body: bytes) -> tuple[str, str, list[tuple[str, str]], Any]:
    """``(method, path, query pairs in order, parsed JSON body or None)`` of one request."""
    parts = urlsplit(target)
    query = parse_qsl(parts.query, keep_blank_values=True)
    return method, parts.path, query, (json.loads(body) if body else None)


def sentinel(name: str) -> str:
    """The value given to parameter ``name`` when probing (letters, digits, ``_`` only)."""
    return f"s_{name}"


# -- observation -------------------------------------------------------------------------
def _probe(rec: Recorder, api: Any, meth: str, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    rec.take()
    getattr(api, meth)(**kwargs)
    seen = rec.take()
    if len(seen) != 1:
        raise ValueError(f"made {len(seen)} requests, expected 1")
    return wire_of(*seen[0])


def observe(rec: Recorder, api: Any, meth: str, fn: Any) -> dict[str, str]:
    """One table row for ``api.meth`` (``fn``; ``api`` a python-okx object whose domain is
    ``rec.url``), observed through ``rec``. Raises ``ValueError`` when the request does
    not fit the table's model."""
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.name != "self"]
    for p in params:
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise ValueError(f"parameter {p.name} is {p.kind.description}")
    required = {p.name: sentinel(p.name) for p in params if p.default is p.empty}
    http_b, path_b, query_b, body_b = _probe(
        rec, api, meth, {p.name: sentinel(p.name) for p in params}
    )
    try:
        http_a, path_a, query_a, body_a = _probe(rec, api, meth, required)
    except ValueError as exc:  # python-okx refused the defaults: see "fallbacks" below
        refused: Exception | None = exc
        http_a, path_a, body_a = http_b, path_b, None
    else:
        refused = None
    if (http_a, path_a) != (http_b, path_b):
        raise ValueError(f"request line depends on arguments: {path_a} vs {path_b}")
    by_value = {sentinel(p.name): p.name for p in params}
    wire: list[str] = []
    placed: set[str] = set()
    shape = "object"
    if http_b == "GET":
        if body_b is not None:
            raise ValueError("GET with a body")
        pairs, shape = query_b, "query"
    elif isinstance(body_b, dict):
        if query_b:
            raise ValueError("POST with a query string")
        pairs = list(body_b.items())
    elif isinstance(body_b, list) and len(body_b) == 1 and isinstance(body_b[0], dict):
        pairs, shape = list(body_b[0].items()), "list1"
        body_a = body_a[0] if isinstance(body_a, list) and body_a else body_a
    else:  # the body is one parameter's value (or the first of several given)
        name = by_value.get(body_b) if isinstance(body_b, str) else None
        if name is None:
            raise ValueError(f"POST body {body_b!r:.80} is not a dict nor one parameter")
        names = [name]
        if refused is not None:  # the others that stand in for it when it is None
            for p in params:
                if p.name != name and p.default is None:
                    if _probe(rec, api, meth, {p.name: sentinel(p.name)})[3] == sentinel(p.name):
                        names.append(p.name)
            if len(names) == 1:
                raise ValueError(f"refused its defaults: {refused}")
        pairs, shape = [], "param"
        wire.append(f"*<{'/'.join(names)}")
        placed.update(names)
    if refused is not None and shape != "param":
        raise ValueError(f"refused its defaults: {refused}")
    if shape == "query":  # keys sent with the defaults only (python-okx replaced its params
        seen_b = {k for k, _ in query_b}  # when another was given): sent always, first
        extra = [(k, v) for k, v in query_a if k not in seen_b]
        pairs = extra + pairs
    for key, value in pairs:
        name = by_value.get(value) if isinstance(value, str) else None
        if name is None or name in placed:
            raise ValueError(f"wire key {key!r} carries {value!r:.80}, not one parameter")
        placed.add(name)
        optional = http_b == "POST" and isinstance(body_a, dict) and key not in body_a
        default = sig.parameters[name].default
        if http_b == "POST" and not optional and name not in required:
            if body_a.get(key) != default:
                raise ValueError(f"{key!r} sent as {body_a.get(key)!r} by default, not {default!r}")
        wire.append(f"{key}<{name}{'?' if optional else ''}")
    unsent = [p.name for p in params if p.name not in placed]
    wire.extend(f"-<{name}" for name in unsent)
    signature = []
    for p in params:
        if p.default is p.empty:
            signature.append(p.name)
        else:
            text = repr(p.default)
            if "|" in text or "\t" in text:
                raise ValueError(f"default of {p.name} cannot go in the table: {text}")
            signature.append(f"{p.name}={text}")
    return {
        "http": http_b,
        "body": shape,
        "path": path_b,
        "signature": "|".join(signature),
        "wire": "|".join(wire),
    }


def render() -> str:
    """The table's text for the installed python-okx. Raises ``SystemExit`` naming every
    method whose request could not be modelled."""
    import okx

    lines = [
        f"# python-okx {okx.__version__}: generated by scripts/gen_compat_okx.py",
        "\t".join(COLUMNS),
    ]
    problems: list[str] = []
    apis: dict[tuple[str, str], Any] = {}
    with Recorder() as rec:
        for module, cls_name, meth, fn in rest_methods():
            api = apis.get((module, cls_name))
            if api is None:
                cls = getattr(importlib.import_module(f"okx.{module}"), cls_name)
                api = apis[module, cls_name] = cls("k", "s", "p", flag="1", domain=rec.url)
            try:
                row = observe(rec, api, meth, fn)
            except Exception as exc:  # noqa: BLE001 - collected and reported together
                problems.append(f"{module}.{cls_name}.{meth}: {type(exc).__name__}: {exc}")
                rec.take()
                continue
            cells = [module, cls_name, meth, *(row[c] for c in COLUMNS[3:])]
            lines.append("\t".join(cells))
        for api in apis.values():
            api.close()
    if problems:
        raise SystemExit("cannot model these methods:\n  " + "\n  ".join(problems))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Generate (or with --check, verify) the table; returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    import logging

    logging.disable(logging.WARNING)
    text = render()
    if "--check" in args:
        current = TABLE.read_text("utf-8") if TABLE.exists() else ""
        if current != text:
            print(f"{TABLE} is out of date; run python scripts/gen_compat_okx.py", file=sys.stderr)
            return 1
        return 0
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text(text, "utf-8")
    print(f"wrote {TABLE}: {len(text.splitlines()) - 2} methods")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
