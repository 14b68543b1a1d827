"""The layer rules that hold by construction, checked on the package's AST (imports inside
functions and under ``TYPE_CHECKING`` count): only ``okx_sync/cli/`` prints, and ``ops``
imports neither the client nor the simulator (they are injected: ``ops/ports.py``,
``okx_sync.testing.drill_lab``)."""

from __future__ import annotations

import ast
from pathlib import Path

import okx_sync

PACKAGE = Path(okx_sync.__file__).resolve().parent


def _modules(under: Path) -> list[tuple[str, ast.Module]]:
    return [
        (str(p.relative_to(PACKAGE.parent)), ast.parse(p.read_text(encoding="utf-8")))
        for p in sorted(under.rglob("*.py"))
    ]


def _imported(path: str, tree: ast.Module) -> set[str]:
    """Every okx_sync module ``tree`` imports (relative imports resolved), at any depth."""
    parts = Path(path).with_suffix("").parts
    package = parts[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
    return out


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


def test_ops_imports_neither_client_nor_sim():
    bad = {}
    for path, tree in _modules(PACKAGE / "ops"):
        hits = {
            name
            for name in _imported(path, tree)
            if name in ("okx_sync.client", "okx_sync.sim", "okx_sync.testing", "okx_sync.cli")
            or name.startswith(("okx_sync.client.", "okx_sync.sim.", "okx_sync.testing."))
            or name == "okx_sync.Client"
        }
        if hits:
            bad[path] = sorted(hits)
    assert bad == {}


def test_the_import_scan_sees_function_level_imports():
    tree = ast.parse("def f():\n    from ..client import Client\n")
    assert "okx_sync.client" in _imported("okx_sync/ops/x.py", tree)
