"""REST call overhead: signed GET calls/s through okx_sync.Client vs its peers and the floors.

Runs a loopback HTTP/1.1 keep-alive server in a separate process (stdlib, with
``disable_nagle_algorithm = True`` so replies are not held ~40 ms by delayed
ACKs) answering every request with a fixed OKX envelope, then measures, side by
side in one run, one thread making ``GET /api/v5/account/balance?ccy=BTC``:

- ``okx_sync``: ``Client.request`` — validation, request gate (concurrency cap;
  rate buckets off, or OKX's 10 req/2 s limit on this endpoint would be what is
  measured), signing with a fresh timestamp, envelope parsing, per-attempt log
  record check, stats;
- ``python-okx`` (httpx) and ``ccxt`` (requests) when installed — signed;
- the floors, sending a fixed pre-signed header set: a bare ``requests.Session``
  (default and ``trust_env=False``), a urllib3 connection pool, and a raw
  ``http.client`` keep-alive connection (the floor for Python).

Rounds are interleaved (every client once per round) and the median of the
rounds is reported, with ratios vs python-okx and vs http.client. The target:
okx_sync >= 1.5x python-okx (the fastest peer).

    python benchmarks/rest_overhead.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import logging
import socketserver
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

PATH = "/api/v5/account/balance"
QUERY = {"ccy": "BTC"}
TARGET_RATIO = 1.5
BODY = json.dumps(
    {"code": "0", "msg": "", "data": [{"totalEq": "1000.5", "details": [{"ccy": "BTC"}]}]}
).encode()
KEY, SECRET, PASSPHRASE = "bench-key-0000000000000000", "bench-secret", "bench-pass"


# --------------------------------------------------------------------------- server process
class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    bodies: dict[str, bytes] = {}  # path -> answer (a subclass sets some); else BODY

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = self.bodies.get(self.path.split("?", 1)[0], BODY)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def serve() -> None:
    """Serve until stdin closes; print the port first."""
    server = _Server(("127.0.0.1", 0), _Handler)
    print(server.server_address[1], flush=True)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()


# --------------------------------------------------------------------------- clients
Call = Callable[[], Any]


def _signed_headers() -> dict[str, str]:
    from okx_sync.auth import Credentials, rest_auth_headers

    creds = Credentials(api_key=KEY, secret_key=SECRET, passphrase=PASSPHRASE)
    headers = rest_auth_headers(creds, int(time.time() * 1000), "GET", f"{PATH}?ccy=BTC")
    return {"Content-Type": "application/json", **headers}


def make_okx_sync(base: str) -> tuple[Call, Callable[[], None]]:
    import okx_sync

    client = okx_sync.Client(
        KEY,
        SECRET,
        PASSPHRASE,
        base_url=base,
        gate=okx_sync.RequestGateConfig(rate_limits=False),
    )
    assert client.stats().fast_path  # the default PooledTransport
    return (lambda: client.request("GET", PATH, QUERY)), client.close


def make_requests(base: str, trust_env: bool) -> tuple[Call, Callable[[], None]]:
    import requests

    session = requests.Session()
    session.trust_env = trust_env
    url, headers = f"{base}{PATH}?ccy=BTC", _signed_headers()
    return (lambda: session.get(url, headers=headers).json()["data"]), session.close


def make_urllib3(base: str) -> tuple[Call, Callable[[], None]]:
    import urllib3

    pool = urllib3.connection_from_url(base, maxsize=1)
    target, headers = f"{PATH}?ccy=BTC", _signed_headers()
    return (lambda: json.loads(pool.request("GET", target, headers=headers).data)["data"]), (
        pool.close
    )


def make_http_client(base: str) -> tuple[Call, Callable[[], None]]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    target, headers = f"{PATH}?ccy=BTC", _signed_headers()

    def call() -> Any:
        conn.request("GET", target, headers=headers)
        return json.loads(conn.getresponse().read())["data"]

    return call, conn.close


def make_python_okx(base: str) -> tuple[Call, Callable[[], None]]:
    from okx.Account import AccountAPI

    api = AccountAPI(KEY, SECRET, PASSPHRASE, flag="0", domain=base, debug=False)
    call = lambda: api.get_account_balance("BTC")["data"]  # noqa: E731
    if call()[0]["totalEq"] != "1000.5":
        raise RuntimeError("python-okx did not reach the loopback server")
    return call, api.close


def make_ccxt(base: str) -> tuple[Call, Callable[[], None]]:
    import ccxt

    exchange = ccxt.okx(
        {"apiKey": KEY, "secret": SECRET, "password": PASSPHRASE, "enableRateLimit": False}
    )
    exchange.urls["api"] = {"rest": base}
    call = lambda: exchange.privateGetAccountBalance(dict(QUERY))["data"]  # noqa: E731
    if call()[0]["totalEq"] != "1000.5":
        raise RuntimeError("ccxt did not reach the loopback server")
    return call, lambda: None


# --------------------------------------------------------------------------- measuring
def measure(call: Call, calls: int) -> float:
    """Calls per second over ``calls`` sequential calls."""
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return calls / (time.perf_counter() - start)


def compare(
    factories: dict[str, Callable[[], tuple[Call, Callable[[], None]]]], calls: int, rounds: int
) -> dict[str, Any]:
    """Build every client (a factory returns ``(call, close)``), warm each up, then run
    interleaved rounds of ``calls`` sequential calls; returns the medians (calls/s), the
    samples, the median CPU time of this process per call (``cpu_us``) and, per client
    that could not be built or warmed up, the reason it was skipped."""
    clients: dict[str, tuple[Call, Callable[[], None]]] = {}
    skipped: dict[str, str] = {}
    for name, factory in factories.items():
        try:
            clients[name] = factory()
            clients[name][0]()  # warm up: connect, first-call imports
        except ImportError as exc:
            skipped[name] = f"not installed ({exc.name}); pip install -e '.[bench]'"
        except Exception as exc:  # noqa: BLE001 - reported, the others still run
            skipped[name] = f"cannot be pointed at the server: {exc!r:.120}"
    samples: dict[str, list[float]] = {name: [] for name in clients}
    cpu: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(rounds):
        for name, (call, _close) in clients.items():
            cpu0 = time.process_time()
            samples[name].append(measure(call, calls))
            cpu[name].append((time.process_time() - cpu0) / calls * 1e6)
    for _call, close in clients.values():
        close()
    return {
        "medians": {n: statistics.median(v) for n, v in samples.items()},
        "samples": samples,
        "cpu_us": {n: statistics.median(v) for n, v in cpu.items()},
        "skipped": skipped,
    }


@contextmanager
def server_process(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``python *args`` (a server that prints its port, then serves until stdin closes)
    in its own process; yields ``http://127.0.0.1:PORT``."""
    proc = subprocess.Popen(
        [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}"
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(10)


def run(calls: int, rounds: int) -> dict[str, Any]:
    """Start the server, measure every client, return the medians and skip reasons."""
    logging.basicConfig(level=logging.WARNING)
    with server_process(__file__, "--serve") as base:
        factories: dict[str, Callable[[], tuple[Call, Callable[[], None]]]] = {
            "okx_sync Client": lambda: make_okx_sync(base),
            "python-okx (httpx)": lambda: make_python_okx(base),
            "ccxt (requests)": lambda: make_ccxt(base),
            "requests.Session": lambda: make_requests(base, True),
            "requests.Session trust_env=False": lambda: make_requests(base, False),
            "urllib3 connection pool": lambda: make_urllib3(base),
            "http.client keep-alive": lambda: make_http_client(base),
        }
        return compare(factories, calls, rounds)


def report(result: dict[str, Any], calls: int, rounds: int) -> bool:
    """Print the table and the target line; True when the target is met (or unmeasurable)."""
    medians: dict[str, float] = result["medians"]
    peer = medians.get("python-okx (httpx)")
    floor = medians.get("http.client keep-alive")
    print(f"signed GET {PATH}?ccy=BTC, 1 thread, {calls} calls x {rounds} rounds (median)")
    print(f"{'client':36} {'calls/s':>9} {'vs python-okx':>14} {'vs http.client':>15}")
    for name, value in sorted(medians.items(), key=lambda kv: -kv[1]):
        vs_peer = f"{value / peer:.2f}x" if peer else "-"
        vs_floor = f"{value / floor:.2f}x" if floor else "-"
        spread = f"  [{min(result['samples'][name]):.0f}..{max(result['samples'][name]):.0f}]"
        print(f"{name:36} {value:9.0f} {vs_peer:>14} {vs_floor:>15}{spread}")
    for name, reason in result["skipped"].items():
        print(f"{name:36} skipped: {reason}")
    ours = medians.get("okx_sync Client", 0.0)
    peers = {n: v for n, v in medians.items() if n.startswith(("python-okx", "ccxt"))}
    if not peers:
        print("target: no peer installed, ratio not measured")
        return True
    best_name, best = max(peers.items(), key=lambda kv: kv[1])
    ratio = ours / best
    verdict = "MET" if ratio >= TARGET_RATIO else "NOT MET"
    print(f"target okx_sync >= {TARGET_RATIO}x fastest peer ({best_name}): {ratio:.2f}x {verdict}")
    return ratio >= TARGET_RATIO


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 (the figures are the output, not a pass/fail)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round per client")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    report(run(args.calls, args.rounds), args.calls, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
