"""examples/python_okx_strategy.py under a 429 storm: python-okx's own client hands the
50011 envelopes to the strategy; the same strategy on okx_sync.compat.okx (its imports
changed, nothing else) sees none — the shared Client's gate holds and retries them.

Both runs are subprocesses against their own simulator, started together; the python-okx
run is the example with its three ``import okx_sync.compat.okx.X as X`` lines turned
back into ``import okx.X as X``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("okx", reason="python-okx is in the test extra: pip install python-okx")

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "python_okx_strategy.py"
IMPORT = re.compile(r"^import okx_sync\.compat\.okx\.(\w+) as (\w+)$", re.M)
ANSWERS = re.compile(r"^answers: ok=(\d+) rate_limited=(\d+) other=(.*)$", re.M)
LOOPS = 8
STORM_S = 1.0


def _run(script: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKX_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "examples"), str(REPO)])
    return subprocess.run(
        [sys.executable, str(script), "--loops", str(LOOPS), "--storm", str(STORM_S)],
        capture_output=True, text=True, timeout=90, env=env, cwd=REPO, check=False,
    )  # fmt: skip


def _answers(result: subprocess.CompletedProcess[str]) -> tuple[int, int, str]:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    found = ANSWERS.search(result.stdout)
    assert found, result.stdout
    return int(found.group(1)), int(found.group(2)), found.group(3)


@pytest.mark.timeout(200)
def test_the_facade_keeps_429s_from_the_strategy_where_python_okx_does_not(tmp_path):
    source = EXAMPLE.read_text("utf-8")
    assert len(IMPORT.findall(source)) == 3
    original = tmp_path / "python_okx_strategy_original.py"
    original.write_text(IMPORT.sub(r"import okx.\1 as \2", source), "utf-8")
    with ThreadPoolExecutor(max_workers=2) as pool:
        ours_f, theirs_f = pool.submit(_run, EXAMPLE), pool.submit(_run, original)
        ours, theirs = ours_f.result(), theirs_f.result()
    ok, limited, other = _answers(ours)
    # the storm reached okx_sync (its gate logged the hold) and nothing of it the strategy:
    assert "rate limit hit (http 429, code 50011)" in ours.stderr, ours.stderr
    assert (limited, other) == (0, "{}"), ours.stdout
    assert ok == 4 * LOOPS + 1  # ticker, place, get, cancel per loop; the balance
    _, theirs_limited, _ = _answers(theirs)
    assert theirs_limited > 0, theirs.stdout  # python-okx returned 50011 envelopes
    print(f"\n429 envelopes seen by the strategy: python-okx {theirs_limited}, facade {limited}")
