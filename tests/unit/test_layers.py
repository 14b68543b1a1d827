"""The layer contract, executable: every okx_sync module has a layer, imports only downward,
and no two modules import each other (directly or around a loop). Checked on the package's
AST, so imports inside functions and under ``TYPE_CHECKING`` count.

Layers, top to bottom (``CONTRACT``; a module may import its own layer and any lower one):

- ``app``: ``cli/``, ``testing/``, ``compat/``, ``__main__`` — the only code that joins the
  client and the simulator, and the only code that prints;
- ``client``: ``client.py`` (with ``client_parts.py``, the parts it is composed of) and the
  package's ``__init__`` (the public names);
- ``ops``: safe mode, reconciliation, drills... — they see the client through
  ``ops/ports.py`` and get the simulator injected (``okx_sync.testing``);
- ``api``: the WS clients (``ws.client``, ``ws.managed_book`` with ``ws.book_sync``,
  ``ws.book_worker``, ``ws.book_check``, ``ws.orders``) and the REST
  endpoint groups (``rest.api``, ``rest.named``);
- ``core``: the REST call path (``rest.client``, ``rest.call``, ``rest.server_time``,
  ``rest.transport``, ``rest.deadline``) and
  the instrument cache;
- ``mechanism``: the request gate, retry policy, WS dispatch and connection, REST counters;
- ``pure``: no I/O, no threads (models, signing, the book, endpoint and parameter data...);
- ``base``: ``errors``.

``sim`` stands apart: it imports only ``sim``, ``pure`` and ``base``, and only ``app``
imports it. A module the contract does not name fails the test: a new module must be placed.
``docs/internals.md``'s module map is checked against the same contract.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import okx_sync
from tests.source_support import parse_file

PACKAGE = Path(okx_sync.__file__).resolve().parent
REPO = PACKAGE.parent

# (layer, modules): names relative to okx_sync ("" is the package itself); "x.*" is x and
# every module under it. Top to bottom.
CONTRACT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("app", ("cli.*", "testing.*", "compat.*", "__main__")),
    ("client", ("", "client", "client_parts")),
    ("ops", ("ops.*",)),
    (
        "api",
        (
            "ws",
            "ws.client",
            "ws.session",
            "ws.subscriptions",
            "ws.handlers",
            "ws.routing",
            "ws.stats",
            "ws.managed_book",
            "ws.book_sync",
            "ws.book_worker",
            "ws.book_check",
            "ws.orders",
            "ws.spread_orders",
            "rest.api",
            "rest.named",
        ),
    ),
    (
        "core",
        (
            "rest",
            "rest.client",
            "rest.call",
            "rest.server_time",
            "rest.transport",
            "rest.deadline",
            "instruments",
        ),
    ),
    (
        "mechanism",
        (
            "gate.*",
            "retry",
            "ws.dispatch",
            "ws.connection",
            "ws.proxy",
            "ws.supervisor",
            "ws.policies",
            "ws.config",
            "rest.stats",
        ),
    ),
    (
        "pure",
        (
            "_version",
            "auth",
            "book.*",
            "checksum",
            "clock",
            "ids",
            "models.*",
            "naming",
            "guards",
            "validators",
            "secret",
            "handler_errors",
            "lifecycle",
            "timesync",
            "rest.endpoints",
            "rest.envelope",
            "rest.prepare",
            "rest.params",
            "rest.acks",
            "rest.order_fields",
            "ws.protocol",
            "ws.frames",
            "ws.book_stats",
        ),
    ),
    ("base", ("errors",)),
    ("sim", ("sim.*",)),
)
ORDER = [layer for layer, _ in CONTRACT if layer != "sim"]  # top to bottom
SIM_MAY_IMPORT = {"sim", "pure", "base"}
MAY_IMPORT_SIM = {"app", "sim"}

# the two cycles other branches of issue 19 remove (ws.client <-> ws.managed_book,
# sim.faults <-> sim.ws); no other may appear meanwhile


# --------------------------------------------------------------------------- the checker


def module_files(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root``, by name relative to it ("" for ``root``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports, at any depth of its AST.

    ``from P import n`` counts as importing ``P.n`` when that is a module, else ``P``;
    relative imports are resolved; a module's import of itself is dropped.
    """
    files = module_files(root)
    top = root.name

    def known(name: str) -> str:
        while name not in files and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in files else ""

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        here = module.split(".") if module else []
        if path.name != "__init__.py":
            here = here[:-1]
        targets: set[str] = set()
        for node in ast.walk(parse_file(path)):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                    target = ".".join([top, *base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                names = [f"{target}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                if name == top or name.startswith(top + "."):
                    targets.add(known(name[len(top) + 1 :]))
        targets.discard(module)
        graph[module] = targets
    return graph


def layer_of(module: str) -> str | None:
    """The contract's layer of ``module`` (relative name), or None when it names none."""
    for layer, patterns in CONTRACT:
        for pattern in patterns:
            if pattern.endswith(".*"):
                stem = pattern[:-2]
                if module == stem or module.startswith(stem + "."):
                    return layer
            elif module == pattern:
                return layer
    return None


def may_import(src: str, dst: str) -> bool:
    """Whether a module of layer ``src`` may import one of layer ``dst``."""
    if src == "sim":
        return dst in SIM_MAY_IMPORT
    if dst == "sim":
        return src in MAY_IMPORT_SIM
    return ORDER.index(dst) >= ORDER.index(src)


def unclassified(graph: dict[str, set[str]]) -> list[str]:
    """The modules the contract does not place."""
    return sorted(m for m in graph if layer_of(m) is None)


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import against the contract, as ``"a (layer) -> b (layer)"``."""
    out = []
    for module, targets in sorted(graph.items()):
        src = layer_of(module)
        for target in sorted(targets):
            dst = layer_of(target)
            if src is not None and dst is not None and not may_import(src, dst):
                out.append(f"{module or '<package>'} ({src}) -> {target or '<package>'} ({dst})")
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: each strongly connected group of two or more modules, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan; the graph is a few hundred nodes deep at most
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


GRAPH = import_graph(PACKAGE)


# --------------------------------------------------------------------------- the contract


def test_every_module_is_placed_in_a_layer():
    assert unclassified(GRAPH) == [], "add the new module to CONTRACT in tests/unit/test_layers.py"


def test_imports_go_downward_only():
    assert violations(GRAPH) == []


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_ops_imports_neither_client_nor_sim():  # the rule ops/ports.py exists for
    bad = {
        m: sorted(t for t in ts if layer_of(t) in ("client", "app", "sim"))
        for m, ts in GRAPH.items()
        if layer_of(m) == "ops"
    }
    assert {m: ts for m, ts in bad.items() if ts} == {}
    assert "ws.client" in GRAPH["ops.ports"]  # the scan sees TYPE_CHECKING imports


# --------------------------------------------------------------------------- the checker fails


def _package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "okx_sync"
    for name, text in {"__init__.py": "", **files}.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return pkg


def test_the_checker_reports_an_upward_import(tmp_path):
    pkg = _package(
        tmp_path,
        {
            "errors.py": "",
            "client.py": "from .errors import OkxError\n",
            # pure -> client, inside a function and under TYPE_CHECKING: both count
            "auth.py": "def f():\n    from .client import Client\n",
            "clock.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    import okx_sync.ops.reporter\n",
            "ops/__init__.py": "",
            "ops/reporter.py": "from ...client import Client\nfrom .. import errors\n",
            "sim/__init__.py": "from ..retry import RetryPolicy\n",
            "retry.py": "",
        },
    )
    graph = import_graph(pkg)
    assert graph["auth"] == {"client"} and graph["ops.reporter"] == {"client", "errors"}
    assert violations(graph) == [
        "auth (pure) -> client (client)",
        "clock (pure) -> ops.reporter (ops)",
        "ops.reporter (ops) -> client (client)",
        "sim (sim) -> retry (mechanism)",
    ]
    assert unclassified(graph) == []


def test_the_checker_reports_cycles_and_unplaced_modules(tmp_path):
    pkg = _package(
        tmp_path,
        {
            "auth.py": "from . import clock\n",
            "clock.py": "from .auth import sign\n",
            "mystery.py": "",
        },
    )
    graph = import_graph(pkg)
    assert cycles(graph) == [["auth", "clock"]]
    assert unclassified(graph) == ["mystery"]
    assert violations(graph) == []  # same layer: allowed, but the cycle is not


# --------------------------------------------------------------------------- printing


def _modules(under: Path) -> list[tuple[str, ast.Module]]:
    return [
        (str(p.relative_to(PACKAGE.parent)), parse_file(p)) for p in sorted(under.rglob("*.py"))
    ]


def test_no_print_outside_cli():
    found = [
        f"{path}:{node.lineno}"
        for path, tree in _modules(PACKAGE)
        if not path.startswith("okx_sync/cli/")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]
    assert found == []


def test_the_cli_does_print():  # the check above looks at the right tree
    assert any(
        isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
        for _, tree in _modules(PACKAGE / "cli")
        for node in ast.walk(tree)
    )


# --------------------------------------------------------------------------- docs


def _module_map() -> list[tuple[list[str], str]]:
    """(modules named in the first column, layer) of each row of the internals module map."""
    text = (REPO / "docs" / "internals.md").read_text(encoding="utf-8")
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("module", "---"):
            continue
        names = [
            re.sub(r"\.?__init__$", "", n.removesuffix("/").removesuffix(".py").replace("/", "."))
            for n in re.findall(r"`([\w/]+(?:\.py|/))`", cells[0])
        ]
        rows.append((names, cells[1]))
    return rows


def test_the_internals_module_map_matches_the_contract():
    rows = _module_map()
    assert len(rows) > 20
    wrong = [
        (name, layer, layer_of(name))
        for names, layer in rows
        for name in names
        if layer_of(name) != layer
    ]
    assert wrong == []
    named = {name for names, _ in rows for name in names}  # a package row covers its modules
    missing = [
        m
        for m, path in module_files(PACKAGE).items()
        if (path.name != "__init__.py" or m == "")
        and not any(m == n or m.startswith(n + ".") for n in named)
    ]
    assert missing == [], "docs/internals.md's module map misses these"
    assert {layer for _, layer in rows} == {layer for layer, _ in CONTRACT}
