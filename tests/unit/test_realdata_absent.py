"""Without ``../shared`` (the recorded real-exchange data beside the checkout) the tests and
the benchmark that read it skip, naming the missing path; they do not error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import REALDATA, REPO, realdata_path

BENCH = REPO / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import book_apply  # noqa: E402


def test_a_missing_recording_skips_the_test_with_its_path() -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        realdata_path("no-such-source", "missing.json")
    reason = str(skipped.value)
    assert str(REALDATA / "no-such-source" / "missing.json") in reason
    assert "../shared is not beside this checkout" in reason


def test_book_apply_benchmark_skips_without_the_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "OKX.ws.1.0"
    assert book_apply.main(["--data", str(missing), "--rounds", "1"]) == 0
    assert f"skipped: recording not found: {missing}" in capsys.readouterr().out
    assert book_apply.DEFAULT_DATA == REALDATA / "cryptofeed" / "OKX.ws.1.0"
