"""Issue 19's size rule, executable: no class in the library (the simulator excluded) spans
more than 400 lines (ARCHITECTURE.md: a class past ~300 lines is usually two ideas).

Classes still being split on other branches of issue 19 are listed in ``PENDING``; an
entry that is no longer needed fails the test too, so the list only shrinks (remove the
entry in the merge that lands the split).
"""

from __future__ import annotations

import ast
from pathlib import Path

import okx_sync
from tests.source_support import parse_file

PACKAGE = Path(okx_sync.__file__).resolve().parent
MAX_LINES = 400

# "module:Class" still being split on another branch of issue 19 (exempt until then)
PENDING: frozenset[str] = frozenset()  # empty: every split landed


def class_sizes(package: Path = PACKAGE) -> dict[str, int]:
    """``{"module:Class": lines}`` for every class of the package outside ``sim/``
    (nested classes included, by their own name), from the class line to its last line."""
    out: dict[str, int] = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if rel.parts[0] == "sim":
            continue
        module = ".".join(rel.with_suffix("").parts)
        for node in ast.walk(parse_file(path)):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                out[f"{module}:{node.name}"] = node.end_lineno - node.lineno + 1
    return out


def test_no_class_is_over_400_lines():
    sizes = class_sizes()
    too_big = {name: size for name, size in sizes.items() if size > MAX_LINES}
    assert {k: v for k, v in too_big.items() if k not in PENDING} == {}, (
        f"classes over {MAX_LINES} lines: split them by idea"
    )
    stale = sorted(name for name in PENDING if sizes.get(name, 0) <= MAX_LINES)
    assert stale == [], "these are split now: remove them from PENDING"


def test_the_size_check_sees_classes(tmp_path):
    """The walk finds top-level and nested classes, skips sim/, and counts whole spans."""
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "big.py").write_text("class Sim:\n" + "    x = 1\n" * 500)
    (tmp_path / "a.py").write_text("class A:\n    class B:\n        y = 2\n    z = 3\n")
    assert class_sizes(tmp_path) == {"a:A": 4, "a:B": 2}
