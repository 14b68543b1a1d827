"""``okx-sync sim`` (serve CLI), the TLS option and ``okx_sync.testing.sim_client``."""

from __future__ import annotations

import json
import os
import queue
import shlex
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from okx_sync import Client
from okx_sync.cli import main as cli_main
from okx_sync.cli.sim import env_lines
from okx_sync.cli.sim import main as serve_main
from okx_sync.sim import Simulator, tls
from okx_sync.sim.testing import RawRest, RawWS
from okx_sync.testing import sim_client
from tests.conftest import REPO


def test_serve_prints_endpoints_and_credentials(capsys):
    assert serve_main(["--seed", "5", "--run-for", "0.05", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rest_url"].startswith("http://127.0.0.1:")
    assert info["ws_public_url"].endswith("/ws/v5/public")
    assert info["live"]["api_key"] != info["demo"]["api_key"]
    assert info["demo"]["header"] == "x-simulated-trading: 1"
    assert "BTC-USDT" in info["instruments"]


def test_cli_routes_sim(capsys):
    assert cli_main(["sim", "--run-for", "0.05", "--instruments", "BTC-USDT,SWAP"]) == 0
    out = capsys.readouterr().out
    assert "rest_url" in out and "live key:" in out and "BTC-USDT-SWAP" in out


def test_serve_rejects_unknown_instrument(capsys):
    assert serve_main(["--instruments", "DOGE-EUR", "--run-for", "0"]) == 2
    assert "unknown simulator instrument" in capsys.readouterr().err


def test_same_seed_same_credentials():
    with Simulator(seed=8, auto_tick=False, ws=False, control=False) as a:
        creds_a = a.credentials
    with Simulator(seed=8, auto_tick=False, ws=False, control=False) as b:
        assert b.credentials == creds_a
    assert "secret" not in repr(creds_a).lower() or creds_a.live.secret_key not in repr(creds_a)
    assert creds_a.live.secret_key not in repr(creds_a)


@pytest.mark.skipif(not tls.tls_available(), reason="neither cryptography nor openssl available")
def test_tls_rest_and_wss():
    with Simulator(seed=2, auto_tick=False, tls=True, control=False) as sim:
        assert sim.rest_url.startswith("https://") and sim.ws_public_url.startswith("wss://")
        rest = RawRest(sim.rest_url, sim.credentials.live, verify=sim.cert_path)
        assert rest.get("/api/v5/account/balance").json()["code"] == "0"
        rest.close()
        ws = RawWS(
            sim.ws_public_url, sslopt={"ca_certs": sim.cert_path, "cert_reqs": ssl.CERT_REQUIRED}
        )
        ws.send_text("ping")
        assert ws.wait_for(lambda m: m == "pong") == "pong"
        ws.close()
        import urllib.request

        with urllib.request.urlopen(
            sim.rest_url + "/api/v5/public/time", context=sim.client_ssl_context()
        ) as resp:
            assert json.loads(resp.read())["code"] == "0"


@pytest.mark.skipif(not tls.shutil.which("openssl"), reason="no openssl command")
def test_certificate_with_openssl_fallback(tmp_path, monkeypatch):
    def no_cryptography(cert_path, key_path):
        raise ImportError("cryptography")

    monkeypatch.setattr(tls, "_with_cryptography", no_cryptography)
    cert, key = tls.make_certificate(str(tmp_path))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)


def test_client_points_at_the_simulator():
    pytest.importorskip("okx_sync.client")
    with Simulator(seed=3, auto_tick=False, control=False) as sim:
        client = sim_client(sim)
        try:
            assert client.request("GET", "/api/v5/public/time")[0]["ts"]
            bal = client.request("GET", "/api/v5/account/balance", {"ccy": "USDT"})
            assert bal[0]["details"][0]["cashBal"] == "100000"
        finally:
            client.close()
        demo = sim_client(sim, demo=True)
        try:
            assert demo.request("GET", "/api/v5/account/config")[0]["uid"] == sim.demo_uid
        finally:
            demo.close()


def test_sim_client_passes_the_ws_urls_only_when_the_ws_server_runs():
    with Simulator(seed=3, auto_tick=False, control=False) as sim:
        assert sim.ws_urls() == {
            "public": sim.ws_public_url,
            "private": sim.ws_private_url,
            "business": sim.ws_business_url,
        }
        with sim_client(sim) as client:
            ws = client.ws_public()
            assert ws.url == sim.ws_public_url
    with Simulator(seed=3, auto_tick=False, control=False, ws=False) as sim:
        assert sim.ws_urls() == {}
        with sim_client(sim) as client:  # OKX's own WS hosts stay (nothing to override)
            assert client.ws_public().url.startswith("wss://")


def _listening_sockets() -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket this process holds (Linux /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A = LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            raw = bytes.fromhex(addr_hex)
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # host order
            found.add((socket.inet_ntop(family, raw), int(port_hex, 16)))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_nothing_listens_beyond_loopback():
    before = _listening_sockets()
    with Simulator(seed=1, auto_tick=False) as sim:
        opened = _listening_sockets() - before
        urls = [sim.rest_url, sim.ws_public_url, sim.ws_private_url, sim.control_url]
    ports = {urlsplit(u).port for u in urls}
    assert {urlsplit(u).hostname for u in urls} == {"127.0.0.1"}
    assert opened == {("127.0.0.1", port) for port in ports}  # REST, WS, control: nothing else
    assert len(opened) == 3


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "::1", "192.168.1.10", "example.com"])
def test_simulator_refuses_a_non_loopback_host(host):
    with pytest.raises(ValueError, match="loopback only"):
        Simulator(seed=1, auto_tick=False, host=host)


def test_localhost_binds_ipv4_loopback():
    with Simulator(seed=1, auto_tick=False, host="localhost") as sim:
        urls = [sim.rest_url, sim.ws_business_url, sim.control_url]
        assert {urlsplit(u).hostname for u in urls} == {"127.0.0.1"}
        rest = RawRest(sim.rest_url)
        assert rest.get("/api/v5/public/time").json()["code"] == "0"
        rest.close()


def _read_env_block(proc: subprocess.Popen[str], deadline_s: float) -> list[str]:
    """stdout lines of ``okx-sync sim --env`` up to its ``# serving`` line (a reader
    thread feeds a queue so every wait has a deadline)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    out: list[str] = []
    while True:
        line = lines.get(timeout=deadline_s)
        assert line is not None, f"sim exited early: {out} {proc.stderr and proc.stderr.read()}"
        out.append(line)
        if line.startswith("# serving"):
            return out


@pytest.mark.parametrize("which", ["live", "demo"])
def test_sim_env_lines_drive_client_from_env(which):
    # okx-sync sim --env in its own process; its export lines, parsed as a shell
    # would, are the whole environment Client.from_env() gets; a signed call succeeds.
    argv = [sys.executable, "-m", "okx_sync", "sim", "--seed", "11", "--run-for", "60"]
    argv += ["--env"] if which == "live" else ["--env", "demo"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        block = _read_env_block(proc, 30.0)
        exports = [ln for ln in block if not ln.startswith("#")]
        assert exports and all(ln.startswith("export OKX_") for ln in exports)
        parsed = dict(shlex.split(ln.removeprefix("export "))[0].split("=", 1) for ln in exports)
        assert set(parsed) == {
            "OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE", "OKX_DEMO",
            "OKX_BASE_URL", "OKX_WS_PUBLIC_URL", "OKX_WS_PRIVATE_URL", "OKX_WS_BUSINESS_URL",
        }  # fmt: skip
        assert parsed["OKX_DEMO"] == ("1" if which == "demo" else "0")
        with Simulator(seed=11, auto_tick=False, ws=False, control=False) as same_seed:
            creds = same_seed.credentials  # the keys and accounts the command serves
        key = creds.demo if which == "demo" else creds.live
        assert (parsed["OKX_API_KEY"], parsed["OKX_PASSPHRASE"]) == (key.api_key, key.passphrase)
        with Client.from_env(parsed) as client:
            assert client.base_url == parsed["OKX_BASE_URL"]
            config = client.account.get_account_config()  # signed; demo: the demo header
            assert config.uid == (creds.demo_uid if which == "demo" else creds.live_uid)
            bal = client.request("GET", "/api/v5/account/balance", {"ccy": "USDT"})
            assert bal[0]["details"][0]["cashBal"] == "100000"
    finally:
        proc.terminate()  # SIGTERM: the command stops serving and exits 0
        assert proc.wait(timeout=30) == 0


def test_env_lines_quote_for_the_shell():
    lines = env_lines({"OKX_PASSPHRASE": "a b'$(x)", "OKX_DEMO": "0"})
    assert lines[1] == "export OKX_DEMO=0"
    assert shlex.split(lines[0]) == ["export", "OKX_PASSPHRASE=a b'$(x)"]


def test_sim_env_refuses_tls(capsys):
    assert serve_main(["--env", "--tls", "--run-for", "0"]) == 2
    assert "--env cannot be combined with --tls" in capsys.readouterr().err
