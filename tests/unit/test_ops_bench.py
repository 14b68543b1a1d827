"""``okx-sync bench``: finds benchmarks/run_all.py in a source checkout and runs it; says
clearly that the benchmarks ship with the repository when they are not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from okx_sync import cli
from okx_sync.cli import bench

REPO = Path(__file__).resolve().parents[2]


def test_finds_run_all_in_the_source_checkout() -> None:
    path, looked = bench.find_run_all()
    assert path == REPO / "benchmarks" / "run_all.py"
    assert looked[0] == path


def test_falls_back_to_the_current_directory(tmp_path: Path) -> None:
    script = tmp_path / "checkout" / "benchmarks" / "run_all.py"
    script.parent.mkdir(parents=True)
    script.write_text("")
    path, _ = bench.find_run_all(tmp_path / "site" / "okx_sync", tmp_path / "checkout")
    assert path == script


def test_okx_sync_bench_runs_the_script_with_its_arguments(
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["bench", "--help"]) == 0
    out = capfd.readouterr().out
    assert "run_all.py" in out and "--quick" in out and "--only" in out


def test_from_a_wheel_it_says_where_the_benchmarks_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site-packages" / "okx_sync"
    site.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    find = bench.find_run_all
    monkeypatch.setattr(bench, "find_run_all", lambda: find(site, tmp_path))
    assert bench.main(["--quick"]) == 2
    err = capsys.readouterr().err
    assert "ship with the okx_sync source repository, not with the installed package" in err
    assert "pip install -e '.[bench]' && python benchmarks/run_all.py" in err
