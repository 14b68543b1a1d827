"""docs/coverage.md is generated from the registry and must be current (CI check)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from okx_sync.rest.endpoints import registry
from tests.conftest import REPO


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_coverage_doc_is_current() -> None:
    text = _script("gen_coverage").render()
    current = (REPO / "docs" / "coverage.md").read_text("utf-8")
    assert current == text, "docs/coverage.md is stale: run python scripts/gen_coverage.py"


def test_coverage_lists_every_endpoint_with_method_and_rate() -> None:
    text = (REPO / "docs" / "coverage.md").read_text("utf-8")
    for ep in registry():
        assert f"| `{ep.method} {ep.path}` | `client." in text
        assert ep.rate_text in text


def test_stub_script_check_mode() -> None:
    assert _script("gen_api_stub").main(["--check"]) == 0
    assert _script("gen_coverage").main(["--check"]) == 0
