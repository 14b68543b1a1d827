"""The runbook drills: ``okx-sync drill all`` runs once for this module; each drill is a test.

The one expensive step (every drill against its own simulator, ~17 s, mostly
waiting out rate windows) is the real command line, ``python -m okx_sync drill
all --json``, started in a process of its own when the module starts; the
per-drill tests at the end read its result and assert the figures that make the
drill meaningful. Meanwhile the tests before them cover the runner itself (exit
codes, failures, errors, --live refusals and the demo-only guarantee) with
cheap drills of their own, in this process (its own simulators, gates and
threads: nothing is shared with the drills' process).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import okx_sync
from okx_sync.cli import drill as drill_cli
from okx_sync.ops.drills import DRILLS, Drill, DrillLab, run_drill, run_drills
from okx_sync.ops.drills.base import DrillRun
from okx_sync.ops.drills.runner import live_env_problem
from okx_sync.sim import Simulator
from okx_sync.testing import drill_lab
from okx_sync.ws.config import WSConfig

pytestmark = pytest.mark.timeout(180)


def run_cli(argv, drill_map=None):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = drill_cli.main(argv) if drill_map is None else drill_cli.main(argv, drill_map)
    return rc, out.getvalue(), err.getvalue()


# -- the runner on drills of its own (cheap) -----------------------------------------------
CHEAP = {"ws": False, "control": False, "auto_tick": False}


def _passing(run: DrillRun) -> None:
    client = run.client()
    run.figure("server_time", client.market.get_ticker(inst_id="BTC-USDT").inst_id, key=True)
    run.check("ticker read", True, "ok")


def _failing(run: DrillRun) -> None:
    run.figure("wanted", 1, key=True)
    run.check("something that did not recover", False, "2 != 1")


def _crashing(run: DrillRun) -> None:
    run.check("first step", True)
    raise RuntimeError("routine blew up")


def _leaking(run: DrillRun) -> None:
    stop = threading.Event()
    run.own(type("Stopper", (), {"close": staticmethod(stop.set)})())
    threading.Thread(target=lambda: stop.wait(0.5), name="okx-drill-leak", daemon=True).start()
    run.check("started a thread that outlives close()", True)


FAKE = {
    "passing": Drill("passing", "a drill that passes", "§0", _passing, sim_options=CHEAP),
    "failing": Drill("failing", "a drill that fails", "§0", _failing, sim_options=CHEAP),
    "crashing": Drill("crashing", "a drill that raises", "§0", _crashing, sim_options=CHEAP),
}


def test_failing_drill_exits_one_and_names_the_check():
    rc, out, _ = run_cli(["passing", "failing"], FAKE)
    assert rc == 1
    lines = out.splitlines()
    assert lines[0].split() == ["drill", "result", "time", "key", "figures"]
    assert any(line.startswith("passing ") and " PASS " in line for line in lines)
    assert any(line.startswith("failing ") and " FAIL " in line for line in lines)
    assert "failing: FAILED something that did not recover: 2 != 1" in out
    assert "1 passed, 1 failed" in out


def test_unexpected_exception_is_an_error_result_not_a_crash():
    rc, out, _ = run_cli(["crashing", "--json"], FAKE)
    assert rc == 1
    r = json.loads(out)["drills"][0]
    assert r["result"] == "ERROR" and r["error"] == "RuntimeError: routine blew up"


def test_threads_left_running_fail_the_drill():
    result = run_drill(Drill("leaking", "x", "§0", _leaking, sim_options=CHEAP), lab=drill_lab())
    # the thread ends once close() stops it, within the runner's join bound: no failure
    assert result.passed
    never = threading.Event()

    def leak_forever(run: DrillRun) -> None:
        threading.Thread(target=never.wait, name="okx-drill-stuck", daemon=True).start()
        run.check("started", True)

    stuck = Drill("stuck", "x", "§0", leak_forever, sim_options=CHEAP)
    try:  # a short join bound: the thread never ends by itself, so any bound fails it
        result = run_drill(stuck, lab=drill_lab(), thread_join_s=0.2)
    finally:
        never.set()
    assert not result.passed
    assert [c.name for c in result.failed_checks()] == ["threads joined"]
    assert "okx-drill-stuck" in result.failed_checks()[0].detail
    assert result.duration_s >= 0.2  # it waited out the bound before failing the check
    with pytest.raises(ValueError, match="thread_join_s"):
        run_drill(stuck, lab=drill_lab(), thread_join_s=-1.0)


def test_run_drills_prepares_every_chosen_drill_first_and_survives_a_failing_prepare():
    """``prepare(lab)`` of every chosen drill runs before the first routine (what
    shared_rate_limit uses to start its forkserver early); one that raises is only a
    lost head start; with ``live_env`` nothing is prepared."""
    events = []

    def prepare(lab: DrillLab) -> None:
        events.append(("prepare", lab))

    def routine(run: DrillRun) -> None:
        events.append(("run", run.name))
        run.check("ran", True)

    def broken(lab: DrillLab) -> None:
        raise RuntimeError("no forkserver here")

    lab = drill_lab()
    chosen = {
        "first": Drill("first", "x", "§0", routine, sim_options=CHEAP),
        "second": Drill("second", "x", "§0", routine, sim_options=CHEAP, prepare=prepare),
        "third": Drill("third", "x", "§0", routine, sim_options=CHEAP, prepare=broken),
    }
    results = run_drills(list(chosen), drills=chosen, lab=lab)
    assert [r.passed for r in results] == [True, True, True]
    assert events == [("prepare", lab), ("run", "first"), ("run", "second"), ("run", "third")]
    events.clear()
    run_drills(["second"], drills=chosen, lab=lab, live_env={})
    assert ("prepare", lab) not in events


def test_usage_errors_and_list():
    assert run_cli(["no_such_drill"])[0] == 2
    rc, out, _ = run_cli(["--list"])
    assert rc == 0
    assert [line.split()[0] for line in out.splitlines()] == list(DRILLS)


def test_live_refuses_without_keys_or_in_ci(monkeypatch):
    for var in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE", "CI"):
        monkeypatch.delenv(var, raising=False)
    rc, _, err = run_cli(["auth", "--live"])
    assert rc == 2 and "OKX_API_KEY, OKX_SECRET_KEY, OKX_PASSPHRASE" in err
    keys = {"OKX_API_KEY": "k", "OKX_SECRET_KEY": "s", "OKX_PASSPHRASE": "p"}
    assert live_env_problem(keys) == ""
    assert "CI" in live_env_problem({**keys, "CI": "true"})
    for name, value in {**keys, "CI": "true"}.items():
        monkeypatch.setenv(name, value)
    rc, _, err = run_cli(["auth", "--live"])
    assert rc == 2 and "never runs in CI" in err


def test_live_uses_demo_trading_only_and_skips_sim_only_drills():
    """``--live`` against a simulator standing in for OKX (OKX_BASE_URL): the simulator's
    demo key works only with x-simulated-trading: 1, so passing proves the header; a
    drill that needs fault injection is skipped, not run."""
    with Simulator(seed=3, ws=False, control=False, auto_tick=False) as sim:
        demo = sim.credentials.demo
        env = {
            "OKX_API_KEY": demo.api_key,
            "OKX_SECRET_KEY": demo.secret_key,
            "OKX_PASSPHRASE": demo.passphrase,
            "OKX_BASE_URL": sim.rest_url,
            "OKX_DEMO": "0",  # ignored: --live forces demo
        }
        run = DrillRun("probe", lab=drill_lab(), live_env=env)
        try:
            client = run.client()
            assert client.demo is True
            assert client.account.get_balance() is not None  # accepted as a demo request
        finally:
            run.close()
        result = run_drill(DRILLS["rate_limit"], lab=drill_lab(), live_env=env)
        assert result.passed and result.live, result.failed_checks()
        assert result.figures["gated_429s"] == 0 and "storm_penalties" not in result.figures
        skipped = run_drill(DRILLS["book_gap"], lab=drill_lab(), live_env=env)
        assert skipped.result == "SKIP" and skipped.passed and not skipped.checks


def test_run_ws_builds_the_named_service_and_owns_it():
    """``run.ws(kind, client)`` calls ``client.ws_<kind>`` (no attribute probe) and closes
    what it built at the end; an unknown service is refused."""
    with Simulator(seed=4, auto_tick=False, control=False) as sim:
        run = DrillRun("probe", lab=drill_lab(), sim=sim)
        try:
            client = run.client()
            business = run.ws("business", client, config=WSConfig(name="probe-business"))
            assert business.url == sim.ws_business_url and business.name == "probe-business"
            public = run.ws("public", client)
            assert public.url == sim.ws_public_url
            public.start()
            assert public.running
            with pytest.raises(ValueError, match="unknown WS service 'ws_public'"):
                run.ws("ws_public", client)
        finally:
            run.close()
        assert not public.running


def test_shared_rate_limit_is_skipped_without_a_redis_server():
    from okx_sync.ops.drills import DRILLS
    from okx_sync.testing import drill_lab

    result = run_drill(DRILLS["shared_rate_limit"], lab=drill_lab({}))
    assert result.result == "SKIP" and "OKX_GATE_REDIS_URL" in result.skipped


# -- every drill, from the run started with the module (drill_all_process) ----------------
@pytest.fixture(scope="module", autouse=True)
def drill_all_process(request, tmp_path_factory):
    """``python -m okx_sync drill all --json`` in the background, started with the module
    when one of its tests needs the result (``drill_all``), its stdout and stderr going to
    files (a full pipe would stall a drill); the shared-gate drill gets a real
    redis-server (``OKX_GATE_REDIS_URL``) when one can be started, else it reports itself
    skipped. Yields ``(process, stdout path, stderr path)``; killed at the end of the
    module if still running."""
    wanted = any(
        "drill_all" in item.fixturenames
        for item in request.session.items
        if item.module is request.module
    )
    if not wanted:
        yield None
        return
    from redis_support import RedisServer, redis_server_path

    server = RedisServer().start() if redis_server_path() else None
    env = dict(os.environ)
    env.pop("OKX_GATE_REDIS_URL", None)
    if server is not None:
        env["OKX_GATE_REDIS_URL"] = server.url
    root = str(Path(okx_sync.__file__).resolve().parents[1])  # this checkout's okx_sync
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    out_path = tmp_path_factory.mktemp("drill_all") / "stdout.json"
    err_path = out_path.with_name("stderr.txt")
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "okx_sync", "drill", "all", "--json"],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        yield proc, out_path, err_path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        if server is not None:
            server.stop()


@pytest.fixture(scope="module")
def drill_all(drill_all_process):
    """The exit code, the results by drill name and the progress (stderr) of the run."""
    proc, out_path, err_path = drill_all_process
    rc = proc.wait(170)
    out, err = out_path.read_text(), err_path.read_text()
    assert out, f"no JSON on stdout (exit code {rc}): {err[-2000:]}"
    report = json.loads(out)
    return rc, {d["name"]: d for d in report["drills"]}, err


def test_drill_all_passes_and_exits_zero(drill_all):
    rc, results, err = drill_all
    failed = {n: [c for c in r["checks"] if not c["ok"]] or r["error"] for n, r in results.items()
              if not r["passed"]}  # fmt: skip
    assert rc == 0, failed
    assert list(results) == list(DRILLS)
    # progress went to stderr, one start and one end line per drill
    assert err.count("[1/7]") == 2 and "[7/7] auth: PASS" in err


@pytest.mark.parametrize("name", list(DRILLS))
def test_each_drill_passes_with_its_figures(drill_all, name):
    _, results, _ = drill_all
    r = results[name]
    if name == "shared_rate_limit" and r["result"] == "SKIP":
        pytest.skip(r["skipped"])  # no redis-server on this machine
    assert r["result"] == "PASS", [c for c in r["checks"] if not c["ok"]] or r["error"]
    assert r["checks"] and all(c["ok"] for c in r["checks"])
    assert r["key_figures"], "every drill shows key figures in the table"
    f = r["figures"]
    if name == "rate_limit":
        assert f["gated_429s"] == 0
        assert f["storm_penalties"] == 1
        assert 1 <= f["storm_429s_seen"] <= 4
        assert f["storm_admitted_during_hold"] == 0
        assert f["storm_caller_errors"] == 0
        assert f["unguarded_429s"] > 0
        assert f["rate_after_recovery_per_s"] >= 0.5 * f["normal_rate_per_s"]
    elif name == "shared_rate_limit":
        assert f["gated_429s"] == 0 and f["gated_peak_per_window"] <= 20
        assert f["storm_hold_s"] > 0 and f["slowed_processes"] == 4
    elif name == "ws_disconnect":
        assert f["connections_dropped"] == 2
        assert f["drift_found"] == 2 and f["drift_after"] == 0
        assert f["book_resyncs"] >= 1
    elif name == "handler_backlog":
        assert f["block_dropped"] == 0 and f["block_high_water"] <= 8
        assert f["drop_dropped"] > 0 and f["drop_high_water"] <= 8
        assert f["drop_delivered"] + f["drop_dropped"] == f["drop_received"]
        assert f["drop_episodes_reported"] >= 1  # drops are never silent (issue 18)
        assert f["disconnect_overflow_disconnects"] >= 1
    elif name == "book_gap":
        assert (f["gap_resyncs"], f["checksum_resyncs"], f["reset_resyncs"]) == (1, 1, 0)
        assert f["rest_checks"] >= 2
    elif name == "unknown_order":
        assert f["lost_50004_sends"] == 1 and f["lost_50004_orders_on_exchange"] == 1
        assert f["lost_connection_sends"] == 1
        assert f["missing_ack_sends"] == 1 and f["missing_ack_orders_on_exchange"] == 1
        assert f["not_executed_sends"] == 2 and f["not_executed_orders_on_exchange"] == 1
        assert f["plain_retries"] == 0
    elif name == "auth":
        assert f["skew_rest_code"] == "50102"
        assert abs(f["sync_offset_ms"] + 120_000) < 5000
        assert f["auto_resyncs"] == 1
        assert f["auto_ws_login_resyncs"] == 1
        assert f["passphrase_rest_code"] == "50105" and f["passphrase_ws_code"] == "60024"
        assert f["environment_rest_code"] == "50101"
