"""README command 1: ``python -m okx_sync demo`` runs the tour on its own and exits 0."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import threading

from okx_sync.cli import demo


def test_python_m_okx_sync_demo_in_a_subprocess():
    proc = subprocess.run(
        [sys.executable, "-m", "okx_sync", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for heading in ("REST", "WebSocket market data", "Orders (REST entry, private WS updates)"):
        assert f"\n{heading}\n" in out
    assert "managed book in sync" in out
    assert "orders push       live" in out
    assert "orders push canceled" in out
    assert "client: ok" in out
    assert out.rstrip().splitlines()[-1].startswith("Done in ")
    assert proc.stderr == ""  # the library's logs stay out of the tour's output


def test_demo_json_reports_what_happened():
    before = {t for t in threading.enumerate() if t.name.startswith("okx-")}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = demo.main(["--json", "--seed", "3"])
    assert rc == 0
    report = json.loads(out.getvalue())
    assert report["ok"] is True
    assert report["rest"]["instruments"]["SPOT"] >= 1
    assert report["ws"]["ticker_pushes"] >= 3 and report["ws"]["book_in_sync"] is True
    assert report["order"]["states"][0] == "live" and report["order"]["states"][-1] == "canceled"
    assert report["rest_stats"]["failures"] == 0
    assert report["health"]["status"] == "ok"
    left = {t for t in threading.enumerate() if t.name.startswith("okx-")} - before
    assert not [t.name for t in left if t.is_alive()]


def test_demo_reports_a_failed_step_and_exits_one(monkeypatch):
    from okx_sync.ops.drills import base

    def refuse(client, inst_id, **kw):
        raise RuntimeError("no price today")

    monkeypatch.setattr(base, "passive_limit", refuse)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = demo.main(["--json"])
    assert rc == 1
    report = json.loads(out.getvalue())
    assert report["ok"] is False and report["error"] == "RuntimeError: no price today"
    assert "WebSocket market data" in report["lines"]  # the steps before it ran


def test_demo_refuses_an_instrument_the_simulator_does_not_list():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert demo.main(["--inst-id", "NOPE-USDT"]) == 2
    assert "BTC-USDT" in err.getvalue()
