"""The simulator imports only okx_sync's pure layers (ARCHITECTURE: "sim may import only the
pure layers, never the clients").

Checked twice: statically over every ``okx_sync/sim/*.py`` (relative and absolute imports,
at any depth of the module), and at run time in a fresh interpreter (what importing every
simulator module actually loads, transitive imports included). No exception: a client
pointed at a simulator is built above both, by ``okx_sync.testing.sim_client``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import okx_sync.sim

SIM_DIR = Path(okx_sync.sim.__file__).parent
PACKAGE_ROOT = SIM_DIR.parent
PURE = frozenset(
    {
        "okx_sync.auth",
        "okx_sync.checksum",
        "okx_sync.clock",
        "okx_sync.rest.endpoints",
        "okx_sync.errors",
        "okx_sync.secret",  # auth accepts a Secret credential; no I/O
    }
)


def _allowed(module: str) -> bool:
    return module in PURE or module == "okx_sync.sim" or module.startswith("okx_sync.sim.")


def _is_package(module: str) -> bool:
    return PACKAGE_ROOT.joinpath(*module.split(".")[1:], "__init__.py").is_file()


def _imports(path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, imported okx_sync module, enclosing class/function names) for ``path``.

    ``from X import a, b``: X when X is a module; each ``X.a`` when X is a package
    (``a`` may be a submodule, or a name taken from the package namespace: both must pass).
    """
    package = "okx_sync.sim"
    found: list[tuple[int, str, tuple[str, ...]]] = []

    def visit(node: ast.AST, scope: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = (*scope, child.name)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == "okx_sync" or alias.name.startswith("okx_sync."):
                        found.append((child.lineno, alias.name, scope))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                if module == "okx_sync" or module.startswith("okx_sync."):
                    if _is_package(module):
                        for alias in child.names:
                            found.append((child.lineno, f"{module}.{alias.name}", scope))
                    else:
                        found.append((child.lineno, module, scope))
            visit(child, inner)

    visit(ast.parse(path.read_text(), filename=str(path)), ())
    return found


def test_sim_modules_exist():
    assert {"simulator.py", "ws.py", "rest.py", "exchange.py"} <= {
        p.name for p in SIM_DIR.glob("*.py")
    }


@pytest.mark.parametrize("path", sorted(SIM_DIR.glob("*.py")), ids=lambda p: p.name)
def test_sim_imports_only_pure_layers(path):
    bad = []
    for line, module, scope in _imports(path):
        if _allowed(module):
            continue
        bad.append(f"{path.name}:{line}: {module} (in {'.'.join(scope) or 'module level'})")
    assert bad == [], "the simulator may import only " + ", ".join(sorted(PURE))


def test_the_checker_sees_forbidden_imports(tmp_path):
    """The AST walk catches each spelling (a checker that sees nothing passes everything)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from ..gate import RequestGate\n"
        "from .. import client\n"
        "from ..rest import client as rc, endpoints\n"
        "import okx_sync.ws.client\n"
        "from okx_sync.retry import RetryPolicy\n"
        "from ..auth import sign\n"
        "from .exchange import Exchange\n"
        "class Simulator:\n"
        "    def client(self):\n"
        "        from ..client import Client\n"
        "    def other(self):\n"
        "        from ..client import Client\n"
    )
    found = [(m, s) for _, m, s in _imports(sample)]
    assert found == [
        ("okx_sync.gate.RequestGate", ()),  # okx_sync.gate is a package
        ("okx_sync.client", ()),
        ("okx_sync.rest.client", ()),
        ("okx_sync.rest.endpoints", ()),
        ("okx_sync.ws.client", ()),
        ("okx_sync.retry", ()),
        ("okx_sync.auth", ()),
        ("okx_sync.sim.exchange", ()),
        ("okx_sync.client", ("Simulator", "client")),
        ("okx_sync.client", ("Simulator", "other")),
    ]
    allowed = [m for m, _ in found if _allowed(m)]
    assert allowed == ["okx_sync.rest.endpoints", "okx_sync.auth", "okx_sync.sim.exchange"]


def test_importing_the_simulator_loads_no_client_code():
    """Transitively: every simulator module imported (and a Simulator built and closed)
    in a fresh interpreter loads nothing of okx_sync beyond the pure layers."""
    names = sorted(f"okx_sync.sim.{p.stem}" for p in SIM_DIR.glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "from okx_sync.sim import Simulator\n"
        "Simulator(seed=1, auto_tick=False).close()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('okx_sync'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    # packages whose __init__ must run to reach a pure module
    packages = {"okx_sync", "okx_sync._version", "okx_sync.rest"}
    assert [m for m in loaded if not (_allowed(m) or m in packages)] == []
