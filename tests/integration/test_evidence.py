"""client.evidence() and ``okx-sync evidence`` against okx_sync.sim: contents, error records,
WS stats, redaction, the environment / --sim choice and exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from okx_sync import WSClient
from okx_sync.cli import evidence as evidence_cli
from okx_sync.errors import APIError, RequestStateError
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client
from tests.conftest import REPO

ERROR_FIELDS = {
    "class",
    "code",
    "msg",
    "request_id",
    "stage",
    "dispatched",
    "method",
    "path",
    "latency_s",
    "retry_index",
}


@pytest.fixture
def sim():
    with Simulator(seed=23, auto_tick=False) as s:
        yield s


def test_evidence_holds_versions_config_clock_stats_errors_and_ws(sim):
    creds = sim.credentials.live
    with sim_client(sim) as client:
        client.sync_time()
        with pytest.raises(APIError):
            client.trade.get_order(inst_id="BTC-USDT", ord_id="1")  # 51603
        sim.faults.lose_order_response("timeout", hold_s=0.05)
        with pytest.raises(RequestStateError):
            client.trade.place_order(
                inst_id="BTC-USDT",
                td_mode="cash",
                side="buy",
                ord_type="limit",
                sz="0.01",
                px="1000",
            )
        ws = client._ws_wiring.register(WSClient(sim.ws_public_url))
        with ws:
            ws.subscribe_and_wait({"channel": "tickers", "instId": "BTC-USDT"})
            client.enter_safe_mode(reason="evidence test")
            ev = client.evidence(last_errors=5)
        text = json.dumps(ev)  # JSON-serialisable as returned

    assert ev["okx_sync_version"] and ev["python"]["version"].startswith("3.")
    cfg = ev["config"]
    assert cfg["base_url"] == sim.rest_url and cfg["demo"] is False
    assert cfg["credentials"] == "****" + creds.api_key[-4:]
    assert cfg["gate"]["max_concurrent"] == 10 and cfg["retry"]["max_retries"] == 3
    assert cfg["timeout_s"] == 10.0
    assert ev["clock"]["measured"] and ev["clock"]["age_s"] >= 0
    assert ev["clock"]["measured_at"] == pytest.approx(ev["generated_at"], abs=60)
    assert ev["safe_mode"]["active"] and ev["safe_mode"]["reason"] == "evidence test"
    assert ev["gate"]["buckets"] and ev["rest"]["failures"] >= 2
    assert "last_errors" not in ev["rest"]

    errors = ev["errors"]
    assert 2 <= len(errors) <= 5
    for err in errors:
        assert ERROR_FIELDS <= set(err)
    not_found = next(e for e in errors if e["code"] == "51603")
    assert not_found["class"] == "APIError" and not_found["request_id"]
    assert not_found["stage"] == "response" and not_found["path"] == "/api/v5/trade/order"
    lost = next(e for e in errors if e["class"] == "RequestStateError")
    assert lost["stage"] == "http" and lost["dispatched"] is True and lost["method"] == "POST"
    assert lost["latency_s"] is not None and lost["retry_index"] == 0

    assert len(ev["ws"]) == 1
    ws_stats = ev["ws"][0]
    assert ws_stats["kind"] == "public" and ws_stats["connected"] and ws_stats["subscribe_ok"] == 1
    assert ev["books"] == [] and ev["health"]["component"] == "client"
    assert ev["collect_errors"] == []
    # no secret anywhere
    assert creds.secret_key not in text and creds.passphrase not in text
    assert creds.api_key not in text


def test_evidence_holds_managed_book_stats(sim):
    with sim_client(sim) as client:
        ws = client._ws_wiring.register(WSClient(sim.ws_public_url))
        with ws:
            book = ws.order_book("BTC-USDT")
            assert book.wait_ready(10)
            ev = client.evidence()
            json.dumps(ev)
            book.close()
    assert len(ev["books"]) == 1
    stats = ev["books"][0]
    assert stats["inst_id"] == "BTC-USDT" and stats["channel"] == "books"
    assert stats["in_sync"] is True and stats["resyncs"] == 0 and stats["ready"] is True
    assert stats["name"] == "books:BTC-USDT"
    part = next(p for p in ev["health"]["components"] if p["component"] == "book books:BTC-USDT")
    assert part["status"] == "ok"


def test_last_errors_bounds(sim):
    with sim_client(sim) as client:
        for _ in range(3):
            with pytest.raises(APIError):
                client.trade.get_order(inst_id="BTC-USDT", ord_id="1")
        assert len(client.evidence(last_errors=2)["errors"]) == 2
        assert client.evidence(last_errors=0)["errors"] == []
        with pytest.raises(ValueError):
            client.evidence(last_errors=-1)


def test_cli_sim_prints_json(capsys):
    assert evidence_cli.main(["--sim", "--indent", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"].startswith("simulator")
    assert out["probes"] == {"sync_time": "ok", "account_rate_limit": "ok"}
    assert out["clock"]["measured"] and out["config"]["credentials"].startswith("****")


def test_cli_uses_the_configured_environment(sim, monkeypatch, capsys):
    creds = sim.credentials.live
    monkeypatch.setenv("OKX_API_KEY", creds.api_key)
    monkeypatch.setenv("OKX_SECRET_KEY", creds.secret_key)
    monkeypatch.setenv("OKX_PASSPHRASE", creds.passphrase)
    monkeypatch.setenv("OKX_BASE_URL", sim.rest_url)
    monkeypatch.setenv("OKX_DEMO", "0")
    assert evidence_cli.main([]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == f"environment {sim.rest_url}"
    assert out["config"]["base_url"] == sim.rest_url
    assert creds.secret_key not in json.dumps(out)

    assert evidence_cli.main(["--no-probe"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["probes"] == {} and out["clock"]["measured"] is False

    # --live (as for doctor and book) and --env name the same default
    for flag in ("--live", "--env"):
        assert evidence_cli.main([flag, "--no-probe"]) == 0, flag
        out = json.loads(capsys.readouterr().out)
        assert out["source"] == f"environment {sim.rest_url}", flag
    assert evidence_cli.main(["--live", "--sim"]) == 2  # one or the other
    capsys.readouterr()


def test_cli_live_through_the_router(sim, monkeypatch, capsys):
    from okx_sync import cli

    monkeypatch.setenv("OKX_BASE_URL", sim.rest_url)
    monkeypatch.setenv("OKX_DEMO", "0")
    for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["evidence", "--live", "--indent", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == f"environment {sim.rest_url}" and out["probes"] == {"sync_time": "ok"}


def test_cli_exit_codes(monkeypatch, capsys):
    for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OKX_BASE_URL", "http://127.0.0.1:1")  # nothing listens: probe fails
    monkeypatch.setenv("OKX_DEMO", "0")
    assert evidence_cli.main(["--errors", "3"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["probes"]["sync_time"].startswith("RequestStateError")
    assert out["errors"] and out["errors"][-1]["dispatched"] is False
    monkeypatch.setenv("OKX_DEMO", "maybe")
    assert evidence_cli.main([]) == 2
    assert "OKX_DEMO" in capsys.readouterr().err
    assert evidence_cli.main(["--bogus"]) == 2


def test_okx_sync_evidence_command_help():
    done = subprocess.run(
        [sys.executable, "-m", "okx_sync", "evidence", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0 and "--sim" in done.stdout


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKX_")}
    env.update(PYTHONPATH=str(REPO), **extra)
    return env


def test_offline_evidence_says_once_which_host_and_how_to_use_sim():
    # Nothing listens on 127.0.0.1:1. A real process, so Python's last-resort log
    # handler would print the library's per-attempt warnings if they got through.
    # The quiet and the verbose run go side by side (each waits out the retries' backoff).
    env = _clean_env(OKX_BASE_URL="http://127.0.0.1:1")
    with ThreadPoolExecutor(max_workers=2) as pool:
        done_f, verbose_f = (
            pool.submit(
                subprocess.run,
                [sys.executable, "-m", "okx_sync", "evidence", *args],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
            )
            for args in (["--indent", "0"], ["-v"])
        )
        done, verbose = done_f.result(), verbose_f.result()
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("okx-sync evidence: could not reach 127.0.0.1 (http://127.0.0.1:1)")
    assert "Connection refused" in lines[0] and "okx-sync evidence --sim" in lines[0]
    evidence = json.loads(done.stdout)  # the evidence is still printed, failures recorded
    assert evidence["probes"]["sync_time"].startswith("RequestStateError: could not connect")
    assert evidence["errors"] and all(e["dispatched"] is False for e in evidence["errors"])
    assert verbose.returncode == 1 and verbose.stderr.count("retry_index=") >= 2  # -v: all


def test_offline_evidence_unresolvable_host_skips_the_keyed_probe(monkeypatch, capsys, caplog):
    # A *.invalid name never resolves; the resolver is replaced so no query leaves the host.
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setenv("OKX_BASE_URL", "https://okx-sync-test.invalid")
    monkeypatch.setenv("OKX_DEMO", "0")
    for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE"):
        monkeypatch.setenv(name, "k-" + name.lower())
    assert evidence_cli.main(["--indent", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "okx-sync evidence: could not reach okx-sync-test.invalid "
        "(https://okx-sync-test.invalid): [Errno -2] Name or service not known. Offline? "
        "`okx-sync evidence --sim` shows the evidence of the embedded simulator; "
        "OKX_BASE_URL chooses another REST host."
    ]
    probes = json.loads(captured.out)["probes"]
    assert probes["account_rate_limit"] == "skipped: host unreachable"  # no second retry run
    assert not [r for r in caplog.records if r.name.startswith("okx_sync")]  # nothing leaked
