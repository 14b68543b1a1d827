"""``okx-sync bench``: run the side-by-side benchmarks (okx_sync vs python-okx and ccxt).

The benchmarks live in the source repository (``benchmarks/run_all.py`` and the
scripts it reuses), not in the wheel: they need the peers (``pip install -e
'.[bench]'``), the repository's test helpers and the real recorded data next to
it. This command finds ``benchmarks/run_all.py`` in a source checkout — the
directory above the installed package (an editable install), or the current
directory — and runs it with the same Python and the given arguments
(``okx-sync bench --quick``, ``okx-sync bench --only rest,ws``; ``--help`` lists
them). From a wheel it says where to get them and returns 2.

Thread safety: a command-line entry point; it starts one child process and waits.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "find_run_all"]

_RELATIVE = Path("benchmarks") / "run_all.py"

NOT_FOUND = (
    "okx-sync bench: the benchmarks ship with the okx_sync source repository, not with the "
    "installed package (no {path} found next to {package} or in {cwd}).\n"
    "Run them from a source checkout:\n"
    "    pip install -e '.[bench]' && python benchmarks/run_all.py\n"
    "(or `okx-sync bench` from inside the checkout)."
)


def find_run_all(
    package_dir: Path | None = None, cwd: Path | None = None
) -> tuple[Path | None, list[Path]]:
    """Where ``benchmarks/run_all.py`` is: the source tree above ``package_dir`` (default:
    this installed ``okx_sync``), else ``cwd``. Returns ``(path or None, places looked at)``.
    Pure apart from reading the file system."""
    package_dir = package_dir or Path(__file__).resolve().parents[1]
    cwd = cwd or Path.cwd()
    looked = [package_dir.parent / _RELATIVE, cwd / _RELATIVE]
    for candidate in looked:
        if candidate.is_file():
            return candidate, looked
    return None, looked


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``benchmarks/run_all.py`` with ``argv``; its exit code, or 2 when there is none."""
    args = list(sys.argv[1:] if argv is None else argv)
    script, looked = find_run_all()
    if script is None:
        print(
            NOT_FOUND.format(
                path=_RELATIVE, package=looked[0].parents[1], cwd=looked[1].parents[1]
            ),
            file=sys.stderr,
        )
        return 2
    return subprocess.call([sys.executable, str(script), *args], cwd=script.parents[1])
