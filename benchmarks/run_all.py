"""okx_sync side by side with python-okx and ccxt: one run, one machine, one local simulator.

Starts the simulator once, in its own process (``python -m okx_sync sim --json
--no-rate-limits``), then measures every case in interleaved rounds and reports medians:

- REST: a ticker, a balance and a place+cancel order pair through okx_sync (its typed
  API and ``Client.request``), a bare ``requests.Session`` making the same signed calls
  (the floor), python-okx (``domain=`` the simulator) and ccxt (REST URL overridden);
  calls/s and ratios to the floor (``rest_overhead.compare``).
- WebSocket: the simulator's books + trades flood, recorded once from the simulator and
  replayed at wire speed by a server process (ws:// and wss:// with a self-signed
  certificate) into okx_sync's WSClient (inline and pool), a bare websocket-client loop
  (the floor; ``ws_throughput``), python-okx's public WS client (wss:// only) and ccxt's
  ``watch_order_book`` + ``watch_trades``; messages/s and ratios to the floor.
- Order book: the real recorded stream through ``OrderBookStore`` (checksums verified)
  and ccxt's order book class (``book_apply.compare``).
- Gate: achieved rate vs published limit per rule, 429s seen (``gate_precision.run_rule``
  against ``okx_sync/testing/limit_server.py``).
- Threads: 1, 4, 16, 64 threads sharing one okx_sync Client vs one python-okx / ccxt
  instance per thread; aggregate calls/s and errors; once as fast as the simulator
  answers, once with ``THREAD_RTT_S`` (1 ms) added to each answer, a colocated round trip.
- Latency (``latency.py``): WS push latency (server send stamp to handler entry) at 25 /
  50 / 90 % of each client's own maximum rate, p50/p99/p99.9, ws:// and wss://; REST
  per-call p50/p99 over the raw ``http.client`` floor at 1 and 16 threads; WS vs REST
  order entry; RSS under a simulator flood (``--memory-seconds``, default 60) and bytes
  per book level. CDFs in ``results_latency.png``.
- Start-up (``startup.py``): whole ``python -c`` processes, import + client and + first
  signed call, interleaved, median.

Writes ``benchmarks/results.md`` (tables, machine, date, how it was measured) and
``benchmarks/results.png`` (the ratios) and ``results_latency.png`` (latency CDFs). A
peer that is not installed or cannot be pointed at the local servers is listed as
skipped with the reason.

    pip install -e '.[bench]' && python benchmarks/run_all.py [--quick] [--only rest,ws]
        [--rounds 5] [--readme] [--memory-seconds 60] [--latency-parts ws,rest,orders,memory]

Exit status 0 when the run completed (targets met or not: the table says which).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _path in (str(REPO), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import book_apply  # noqa: E402
import latency  # noqa: E402
import rest_overhead  # noqa: E402
import startup  # noqa: E402

INST, SYMBOL = "BTC-USDT", "BTC/USDT"
ORDER = {"instId": INST, "tdMode": "cash", "side": "buy", "ordType": "limit", "sz": "0.001"}
THREADS = (1, 4, 16, 64)
SECTIONS = ("rest", "ws", "book", "gate", "gate_shared", "threads", "latency", "startup")
Call = Callable[[], Any]
Close = Callable[[], None]


# --------------------------------------------------------------------------- results
@dataclass
class Target:
    """One acceptance target: what was compared, the measured ratio and the goal."""

    text: str
    value: float
    goal: float | None  # None: a figure reported beside the targets, not one of them
    at_most: bool = False  # True: met when value <= goal (latencies, start-up, memory)

    @property
    def met(self) -> bool:
        if self.goal is None:
            return True
        return self.value <= self.goal if self.at_most else self.value >= self.goal


@dataclass
class Section:
    """One measured case: a Markdown table, notes, targets and the ratios to chart."""

    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    chart: dict[str, dict[str, float]] = field(default_factory=dict)  # group -> label -> value
    chart_label: str = "ratio"
    chart_goal: float | None = None  # a dashed line: the target, where it is on this scale
    cdfs: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # panel -> label -> us

    def markdown(self) -> str:
        lines = [f"## {self.title}", ""]
        lines += [f"| {' | '.join(self.header)} |", f"|{'|'.join('---' for _ in self.header)}|"]
        lines += [f"| {' | '.join(row)} |" for row in self.rows]
        lines += [""] + [f"- {note}" for note in self.notes]
        lines += [f"- skipped: **{name}** — {why}" for name, why in self.skipped.items()]
        return "\n".join(lines).rstrip() + "\n"


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "-"


# --------------------------------------------------------------------------- simulator
class SimProcess:
    """``python -m okx_sync sim --json --no-rate-limits`` in its own process (its own GIL)."""

    def __init__(self, seed: int = 1) -> None:
        cmd = [sys.executable, "-m", "okx_sync", "sim", "--json", "--no-rate-limits"]
        self.proc = subprocess.Popen(
            [*cmd, "--seed", str(seed), "--idle-timeout", "600"],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator did not start (exit {self.proc.wait(10)})")
        self.info: dict[str, Any] = json.loads(line)
        live = self.info["live"]
        self.key = (live["api_key"], live["secret_key"], live["passphrase"])

    @property
    def rest_url(self) -> str:
        return str(self.info["rest_url"])

    def cpu_seconds(self) -> float:
        """CPU time the simulator process has used (user + system), from /proc."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


# --------------------------------------------------------------------------- REST clients
Ops = dict[str, Call]  # case -> one call (ticker, balance, place+cancel)


def _checked(reply: dict[str, Any]) -> list[Any]:
    if reply.get("code") != "0":
        raise RuntimeError(f"code {reply.get('code')}: {reply.get('msg')}")
    return list(reply["data"])


def okx_sync_ops(sim: SimProcess, typed: bool, max_concurrent: int = 10) -> tuple[Ops, Close]:
    import okx_sync

    gate = okx_sync.RequestGateConfig(rate_limits=False, max_concurrent=max_concurrent)
    client = okx_sync.Client(*sim.key, base_url=sim.rest_url, gate=gate)
    if typed:
        trade = client.trade

        def pair() -> None:
            ack = trade.place_order(inst_id=INST, td_mode="cash", side="buy", ord_type="limit",
                                    px=_order_px(sim), sz=ORDER["sz"])  # fmt: skip
            trade.cancel_order(inst_id=INST, ord_id=ack.ord_id)

        ops: Ops = {
            "ticker": lambda: client.market.get_ticker(inst_id=INST),
            "balance": client.account.get_balance,
            "place+cancel": pair,
        }
    else:
        request = client.request

        def raw_pair() -> None:
            ord_id = request("POST", "/api/v5/trade/order", {**ORDER, "px": _order_px(sim)})
            request("POST", "/api/v5/trade/cancel-order", {"instId": INST, **_id(ord_id)})

        ops = {
            "ticker": lambda: request("GET", "/api/v5/market/ticker", {"instId": INST}),
            "balance": lambda: request("GET", "/api/v5/account/balance"),
            "place+cancel": raw_pair,
        }
    return ops, client.close


def _id(data: list[dict[str, Any]]) -> dict[str, str]:
    return {"ordId": data[0]["ordId"]}


_PX: dict[str, str] = {}


def _order_px(sim: SimProcess) -> str:
    """A buy price half the last trade: the order rests until it is cancelled."""
    if "px" not in _PX:
        import requests

        reply = requests.get(f"{sim.rest_url}/api/v5/market/ticker", params={"instId": INST})
        _PX["px"] = str(round(float(_checked(reply.json())[0]["last"]) / 2))
    return _PX["px"]


def requests_ops(sim: SimProcess) -> tuple[Ops, Close]:
    """The floor: a bare ``requests.Session`` signing each call (fresh timestamp)."""
    import requests

    from okx_sync.auth import Credentials, rest_auth_headers

    key, secret, passphrase = sim.key
    creds = Credentials(api_key=key, secret_key=secret, passphrase=passphrase)
    session = requests.Session()

    def call(method: str, path: str, query: dict[str, str] | None = None, body: Any = None) -> Any:
        target = f"{path}?{urlencode(query)}" if query else path
        data = json.dumps(body, separators=(",", ":")) if body is not None else ""
        headers = rest_auth_headers(creds, int(time.time() * 1000), method, target, data)
        headers["Content-Type"] = "application/json"
        reply = session.request(method, sim.rest_url + target, data=data or None, headers=headers)
        return _checked(reply.json())

    def pair() -> None:
        data = call("POST", "/api/v5/trade/order", body={**ORDER, "px": _order_px(sim)})
        call("POST", "/api/v5/trade/cancel-order", body={"instId": INST, **_id(data)})

    ops: Ops = {
        "ticker": lambda: call("GET", "/api/v5/market/ticker", {"instId": INST}),
        "balance": lambda: call("GET", "/api/v5/account/balance"),
        "place+cancel": pair,
    }
    return ops, session.close


def python_okx_ops(sim: SimProcess) -> tuple[Ops, Close]:
    from okx.Account import AccountAPI
    from okx.MarketData import MarketAPI
    from okx.Trade import TradeAPI

    kw = {"flag": "0", "domain": sim.rest_url, "debug": False}
    market, account, trade = (api(*sim.key, **kw) for api in (MarketAPI, AccountAPI, TradeAPI))

    def pair() -> None:
        data = _checked(trade.place_order(px=_order_px(sim), **ORDER))
        _checked(trade.cancel_order(instId=INST, **_id(data)))

    ops: Ops = {
        "ticker": lambda: _checked(market.get_ticker(INST)),
        "balance": lambda: _checked(account.get_account_balance()),
        "place+cancel": pair,
    }

    def close() -> None:
        for api in (market, account, trade):
            api.close()

    return ops, close


def ccxt_ops(sim: SimProcess) -> tuple[Ops, Close]:
    """ccxt's implicit (raw) OKX methods: the thinnest ccxt path for the same signed calls."""
    import ccxt

    ex = ccxt.okx(
        {"apiKey": sim.key[0], "secret": sim.key[1], "password": sim.key[2]}
        | {"enableRateLimit": False}
    )
    ex.urls["api"] = {"rest": sim.rest_url}

    def pair() -> None:
        data = _checked(ex.privatePostTradeOrder({**ORDER, "px": _order_px(sim)}))
        _checked(ex.privatePostTradeCancelOrder({"instId": INST, **_id(data)}))

    ops: Ops = {
        "ticker": lambda: _checked(ex.publicGetMarketTicker({"instId": INST})),
        "balance": lambda: _checked(ex.privateGetAccountBalance()),
        "place+cancel": pair,
    }
    return ops, lambda: None


REST_CLIENTS: dict[str, Callable[[SimProcess], tuple[Ops, Close]]] = {
    "okx_sync (Client.request)": lambda sim: okx_sync_ops(sim, typed=False),
    "okx_sync (typed API)": lambda sim: okx_sync_ops(sim, typed=True),
    "requests.Session (floor)": requests_ops,
    "python-okx": python_okx_ops,
    "ccxt (implicit API)": ccxt_ops,
}
FLOOR, PEERS = "requests.Session (floor)", ("python-okx", "ccxt")
SAME_WORK, TYPED = "okx_sync (Client.request)", "okx_sync (typed API)"


def bench_rest(sim: SimProcess, calls: int, rounds: int) -> Section:
    section = Section(
        "REST: calls/s, 1 thread (median of rounds)",
        ["case", "client", "calls/s", "client CPU/call", "vs floor", "vs python-okx", "vs ccxt"]
        + ["spread"],
        chart_label="calls/s relative to a bare requests.Session",
    )
    typed: list[str] = []
    for case in ("ticker", "balance", "place+cancel"):
        factories = {name: _op_factory(make, sim, case) for name, make in REST_CLIENTS.items()}
        n = max(1, calls // 2) if case == "place+cancel" else calls
        result = rest_overhead.compare(factories, n, rounds)
        med: dict[str, float] = result["medians"]
        section.skipped.update(result["skipped"])
        peer = {p: next((v for k, v in med.items() if k.startswith(p)), None) for p in PEERS}
        for name, value in med.items():
            samples = result["samples"][name]
            section.rows.append(
                [case, name, f"{value:,.0f}", f"{result['cpu_us'][name]:,.0f} µs"]
                + [_ratio(value, med.get(FLOOR))]
                + [_ratio(value, peer[p]) for p in PEERS]
                + [f"{min(samples):,.0f}..{max(samples):,.0f}"]
            )
        if FLOOR in med:
            section.chart[case] = {k: v / med[FLOOR] for k, v in med.items()}
        for p in PEERS:
            base = peer[p]
            if base and SAME_WORK in med:
                section.targets.append(
                    Target(f"REST {case}: okx_sync vs {p}", med[SAME_WORK] / base, 1.5)
                )
            if base and TYPED in med:
                typed.append(f"{case} {med[TYPED] / base:.2f}x {p}")
    section.notes += [
        f"{calls} calls per round per client ({calls // 2} pairs for place+cancel), rounds "
        "interleaved; a place+cancel pair counts as one call. client CPU/call: CPU time of the "
        "benchmark process (all its threads) per call; the simulator's is not included.",
        f"The targets compare `{SAME_WORK}` with the peers: the same work (a signed call, the "
        "parsed JSON back). okx_sync's typed API also builds models (`Ticker`, `Balance` with "
        "Decimal fields, `OrderAck`) and checks orders against the instrument rules; its "
        "ratios: " + ", ".join(typed) + ".",
        "ccxt uses its implicit methods (`publicGetMarketTicker`, `privatePostTradeOrder`, ...): "
        "the same signed calls without ccxt's unified parsing, ccxt at its fastest.",
        "The floor is what the issue names: a bare `requests.Session`, signing each call. "
        "okx_sync is above it because its fast path hands the prepared request straight to "
        "requests' connection pool, skipping `Session.request`'s per-call merging of "
        "environment, proxy and cookie settings (`benchmarks/rest_overhead.py` also shows "
        "urllib3 and http.client).",
    ]
    return section


def _op_factory(
    make: Callable[[SimProcess], tuple[Ops, Close]], sim: SimProcess, case: str
) -> Callable[[], tuple[Call, Close]]:
    """What ``rest_overhead.compare`` builds a client with: ``make(sim)``'s ``case`` op."""

    def build() -> tuple[Call, Close]:
        ops, close = make(sim)
        return ops[case], close

    return build


# --------------------------------------------------------------------------- threads
def _thread_run(calls: list[Call], seconds: float, sim: SimProcess) -> tuple[float, int, float]:
    """All ``calls`` (one per thread) in a loop for ``seconds``: calls/s, errors, server CPU."""
    from okx_sync.testing.limit_server import hammer

    done = [0] * len(calls)
    errors = [0] * len(calls)

    def one(thread: int, _i: int) -> None:
        try:
            calls[thread]()
            done[thread] += 1
        except Exception:  # noqa: BLE001 - counted: errors are a result here
            errors[thread] += 1

    cpu0, t0 = sim.cpu_seconds(), time.perf_counter()
    hammer(one, threads=len(calls), duration_s=seconds)
    wall = time.perf_counter() - t0
    return sum(done) / wall, sum(errors), (sim.cpu_seconds() - cpu0) / wall


def http_client_ops(sim: SimProcess) -> tuple[Ops, Close]:
    """Python's floor for one connection: a raw ``http.client`` keep-alive GET of the
    ticker (10 s timeout like every client here), JSON decoded; nothing else."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(sim.rest_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    target = f"/api/v5/market/ticker?{urlencode({'instId': INST})}"

    def ticker() -> list[Any]:
        conn.request("GET", target)
        return _checked(json.loads(conn.getresponse().read()))

    return {"ticker": ticker}, conn.close


# What the simulator adds to every ticker answer in the second thread section: a
# colocated round trip to OKX (from a client in the same region it is 1-3 ms).
THREAD_RTT_S = 0.001


@contextmanager
def answer_delay(sim: SimProcess, seconds: float, path: str) -> Iterator[None]:
    """The simulator holds every answer on ``path`` for ``seconds`` (its ``slow_responses``
    fault, through the control endpoint) inside the block; its faults are cleared after."""
    import requests

    control = sim.info["control_url"]
    body = {"delay_s": seconds, "seconds": 3600, "path": path}
    requests.post(f"{control}/faults/slow_responses", json=body, timeout=10).raise_for_status()
    try:
        yield
    finally:
        requests.post(f"{control}/faults/clear", json={}, timeout=10).raise_for_status()


def bench_threads(sim: SimProcess, seconds: float, rounds: int) -> list[Section]:
    """1-64 threads on one shared okx_sync Client vs a peer instance per thread, measured
    twice on the same clients: answers as fast as the simulator makes them, then with
    ``THREAD_RTT_S`` added to each (``answer_delay``; the 64-vs-4 target is taken there)."""
    shared: list[Close] = []
    skipped: dict[str, str] = {}

    def one_client(max_concurrent: int) -> Callable[[int], list[Call]]:
        def build(n: int) -> list[Call]:
            ops, close = okx_sync_ops(sim, typed=False, max_concurrent=max_concurrent)
            shared.append(close)
            return [ops["ticker"]] * n

        return build

    def per_thread(make: Callable[[SimProcess], tuple[Ops, Close]]) -> Callable[[int], list[Call]]:
        def build(n: int) -> list[Call]:
            built = [make(sim) for _ in range(n)]
            shared.extend(close for _ops, close in built)
            return [ops["ticker"] for ops, _close in built]

        return build

    makers = {
        _OURS: one_client(max(THREADS)),
        "okx_sync (1 shared Client, max_concurrent=10)": one_client(10),
        "python-okx (1 per thread)": per_thread(python_okx_ops),
        "ccxt (1 per thread)": per_thread(ccxt_ops),
        _FLOOR: per_thread(http_client_ops),
    }
    calls: dict[tuple[str, int], list[Call]] = {}
    for name, make in makers.items():
        for n in THREADS:
            try:
                calls[name, n] = make(n)
                calls[name, n][0]()
            except ImportError as exc:
                skipped[name] = f"not installed ({exc.name}); pip install -e '.[bench]'"
            except Exception as exc:  # noqa: BLE001 - reported, the others still run
                skipped[name] = f"cannot be pointed at the simulator: {exc!r:.120}"
    calls = {k: v for k, v in calls.items() if k[0] not in skipped}
    try:
        fast = _thread_samples(calls, seconds, rounds, sim)
        with answer_delay(sim, THREAD_RTT_S, "/api/v5/market/ticker"):
            delayed = _thread_samples(calls, seconds, rounds, sim)
    finally:
        for close in shared:
            close()
    return [
        _thread_section(list(makers), samples, skipped, seconds, rounds, rtt_s)
        for samples, rtt_s in ((fast, 0.0), (delayed, THREAD_RTT_S))
    ]


_OURS = "okx_sync (1 shared Client)"
_FLOOR = "http.client floor (1 connection per thread, unsigned)"
ThreadSamples = dict[tuple[str, int], list[tuple[float, int, float]]]


def _thread_samples(
    calls: dict[tuple[str, int], list[Call]], seconds: float, rounds: int, sim: SimProcess
) -> ThreadSamples:
    """Every (client, thread count) once per round, rounds interleaved."""
    samples: ThreadSamples = {k: [] for k in calls}
    for _ in range(rounds):
        for key, thread_calls in calls.items():
            samples[key].append(_thread_run(thread_calls, seconds, sim))
    return samples


def _thread_section(
    names: list[str],
    samples: ThreadSamples,
    skipped: dict[str, str],
    seconds: float,
    rounds: int,
    rtt_s: float,
) -> Section:
    """The table, targets and notes of one thread measurement (``rtt_s``: the delay the
    simulator added to each answer, 0 for none)."""
    rtt = f"{rtt_s * 1000:g} ms added to each answer" if rtt_s else "no network delay"
    tag = f"threads ({rtt_s * 1000:g} ms per answer)" if rtt_s else "threads (no delay)"
    section = Section(
        f"Threads, {rtt}: ticker calls/s, all threads together (median of rounds)",
        ["threads", "client", "calls/s", "errors", "vs python-okx", "vs ccxt", "sim CPU"],
        skipped=dict(skipped),
        chart_label="aggregate calls/s",
    )
    med = {k: statistics.median(s[0] for s in v) for k, v in samples.items()}
    for n in THREADS:
        peer = {p: next((v for (k, m), v in med.items() if m == n and k.startswith(p)), None)
                for p in PEERS}  # fmt: skip
        for name in names:
            if (name, n) not in med:
                continue
            value, runs = med[name, n], samples[name, n]
            section.rows.append(
                [str(n), name, f"{value:,.0f}", str(sum(r[1] for r in runs))]
                + [_ratio(value, peer[p]) for p in PEERS]
                + [f"{statistics.median(r[2] for r in runs):.0%}"]
            )
            section.chart.setdefault(name, {})[str(n)] = value

    def scaling(name: str) -> float:
        return book_apply.paired_ratio(
            [r[0] for r in samples[name, 64]], [r[0] for r in samples[name, 4]]
        )

    if (_OURS, 4) in med and (_OURS, 64) in med:
        errors_64 = sum(r[1] for r in samples[_OURS, 64])
        section.targets.append(Target(f"{tag}: okx_sync errors at 64 threads = 0", -errors_64, 0))
        section.targets.append(
            Target(
                f"{tag}: okx_sync calls/s at 64 threads vs at 4",
                scaling(_OURS),
                1 if rtt_s else None,
            )
        )
    section.notes += [
        f"{seconds:g} s per run, {rounds} interleaved rounds; errors summed over the rounds.",
        f"okx_sync: one Client shared by every thread, `RequestGateConfig(rate_limits=False, "
        f"max_concurrent={max(THREADS)})` so its connection pool holds {max(THREADS)} "
        "connections (the targets use this row); with the default max_concurrent=10 the "
        "other threads queue in the gate. python-okx and ccxt: one instance (one "
        "connection) per thread. Every okx_sync row calls `Client.request` (parsed JSON back, "
        "like the peers).",
        "sim CPU: the simulator process's CPU time per wall second; near 100% the server "
        "(one process, one GIL, a thread per connection) is what limits the aggregate.",
    ]
    if rtt_s:
        section.notes.append(
            f"The same clients as the section above. The simulator now holds each ticker "
            f"answer {rtt_s * 1000:g} ms (its `slow_responses` fault) before sending it, as a "
            "colocated round trip to OKX would: each call waits on the network, as it does "
            "against the exchange, and more threads can overlap those waits. The 64-vs-4 "
            "target is taken here."
        )
    else:
        section.notes.append(
            "No delay: on loopback the two processes (this one and the simulator, one GIL "
            "each) already use most of the 2 cores at 4 threads, so more threads have no "
            "waiting to overlap and can only add GIL hand-offs (a context switch at every "
            "blocking call). The 64-vs-4 figure is reported here, not a target; the next "
            "section, with a network delay, has the target."
        )
    if (_FLOOR, 4) in med and (_FLOOR, 64) in med and (_OURS, 4) in med and (_OURS, 64) in med:
        section.notes.append(
            f"64 threads vs 4 in this run (median of per-round ratios): okx_sync "
            f"{scaling(_OURS):.2f}x, the raw http.client floor {scaling(_FLOOR):.2f}x."
        )
    return section


# --------------------------------------------------------------------------- WebSocket
def record_flood(sim: SimProcess, count: int) -> list[bytes]:
    """Frames the simulator pushes on books + trades for INST: the snapshot, then a
    ``POST /flood`` of ``count`` rounds, read by a plain websocket-client connection."""
    import requests
    import websocket
    from ws_throughput import SUBSCRIBE, as_bytes

    ws = websocket.create_connection(sim.info["ws_public_url"], skip_utf8_validation=True)
    ws.settimeout(10)
    ws.send(json.dumps({"id": "1", "op": "subscribe", "args": SUBSCRIBE}))
    frames: list[bytes] = []
    while not frames:
        text = ws.recv()
        if json.loads(text).get("action") == "snapshot":
            frames.append(as_bytes(text))
    body = {"inst_id": INST, "count": count // 2, "channels": ["books", "trades"]}
    flood = threading.Thread(
        target=requests.post,
        args=(f"{sim.info['control_url']}/flood",),
        kwargs={"json": body, "timeout": 300},
        name="okx-bench-flood",
    )
    flood.start()
    ws.settimeout(2)
    try:
        while len(frames) < count:
            text = ws.recv()
            frame = as_bytes(text)
            if b'"event"' not in frame[:40]:  # acks come from the replay server itself
                frames.append(frame)
    except websocket.WebSocketTimeoutException:
        pass
    flood.join()
    ws.close()
    return frames


def serve_replay(path: str, tls: bool) -> None:
    """Child process: replay the frames in ``path`` (one per line) to every subscriber;
    print ``{"url", "cert_path", "count"}``, serve until stdin closes."""
    import logging

    from ws_throughput import ReplayServer

    from okx_sync.sim.tls import make_server_context

    # A client that hangs up without the closing handshake once it has read the stream is
    # not an error here; the websockets server would log a traceback for each.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    frames = Path(path).read_bytes().split(b"\n")
    context, cert = make_server_context() if tls else (None, None)
    server = ReplayServer(frames, ssl_context=context)
    print(json.dumps({"url": server.url, "cert_path": cert, "count": server.count}), flush=True)
    sys.stdin.read()
    server.close()


@contextmanager
def replay_process(frames_path: str, tls: bool) -> Iterator[dict[str, Any]]:
    cmd = [sys.executable, __file__, "--serve-replay", frames_path] + (["--tls"] if tls else [])
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the replay server did not start")
        yield json.loads(line)
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(15)


def _rate(state: dict[str, Any], count: int) -> Callable[[], bool]:
    """A counter for message arrivals: True once ``count`` have arrived (times noted)."""

    def tick() -> bool:
        n = state["n"] = state.get("n", 0) + 1
        if n == 1:
            state["t0"] = time.perf_counter()
        if n == count:
            state["t1"] = time.perf_counter()
            return True
        return False

    return tick


def python_okx_ws(url: str, count: int) -> float:
    """python-okx's ``WsPublicAsync``: its callback gets the raw text; json.loads it (a user
    has to) and count the pushes."""
    from okx.websocket.WsPublicAsync import WsPublicAsync
    from ws_throughput import SUBSCRIBE

    async def run() -> float:
        ws = WsPublicAsync(url)
        state: dict[str, Any] = {}
        tick, done = _rate(state, count), asyncio.Event()

        def callback(message: str) -> None:
            if "data" in json.loads(message) and tick():
                done.set()

        consumer = await ws.start()
        if ws.websocket is None:
            raise RuntimeError(f"python-okx could not connect to {url}")
        await ws.subscribe(SUBSCRIBE, callback)
        await asyncio.wait_for(done.wait(), 120)
        consumer.cancel()
        await ws.stop()
        return (count - 1) / (state["t1"] - state["t0"])

    return asyncio.run(run())


def ccxt_ws(url: str, count: int, rest_url: str, cafile: str | None) -> float:
    """ccxt.pro okx: ``watch_order_book`` and ``watch_trades`` loops (markets loaded from the
    simulator); a push counts once ccxt's ``handle_message`` has applied it."""
    import ccxt.pro

    async def run() -> float:
        ex = ccxt.pro.okx({"enableRateLimit": False} | ({"cafile": cafile} if cafile else {}))
        ex.urls["api"] = {"rest": rest_url, "ws": url.rsplit("/", 1)[0]}
        state: dict[str, Any] = {}
        tick, done = _rate(state, count), asyncio.Event()
        handle = ex.handle_message

        def counted(client: Any, message: Any) -> Any:
            out = handle(client, message)
            if isinstance(message, dict) and "data" in message and tick():
                done.set()
            return out

        ex.handle_message = counted
        try:
            await ex.load_markets()

            async def watch(method: Callable[[str], Any]) -> None:
                while not done.is_set():
                    await method(SYMBOL)

            tasks = [
                asyncio.ensure_future(watch(m)) for m in (ex.watch_order_book, ex.watch_trades)
            ]
            finished = asyncio.ensure_future(done.wait())
            await asyncio.wait([finished, *tasks], timeout=120, return_when="FIRST_COMPLETED")
            for task in (finished, *tasks):
                if task.done() and not task.cancelled() and task.exception():
                    raise task.exception()  # type: ignore[misc]
                task.cancel()
            if not done.is_set():
                raise RuntimeError(f"only {state.get('n', 0)} of {count} pushes arrived")
        finally:
            await ex.close()
        return (count - 1) / (state["t1"] - state["t0"])

    return asyncio.run(run())


_trusting = latency.trusting


def bench_ws(sim: SimProcess, messages: int, rounds: int) -> Section:
    section = Section(
        "WebSocket: books + trades flood, messages/s (median of rounds)",
        ["transport", "client", "msg/s", "vs bare loop", "spread"],
        chart_label="messages/s relative to the bare websocket-client loop",
        chart_goal=0.8,
    )
    frames = record_flood(sim, messages)
    floor = WS_FLOOR
    with tempfile.NamedTemporaryFile(suffix=".frames", delete=False) as fh:
        fh.write(b"\n".join(frames))
    try:
        for tls in (False, True):
            transport = "wss://" if tls else "ws://"
            with replay_process(fh.name, tls) as replay:
                contenders = _ws_contenders(replay, sim.rest_url)
                if not tls:
                    del contenders["python-okx WsPublicAsync"]
                    section.skipped["python-okx WsPublicAsync (ws://)"] = (
                        "its WS client always passes an SSL context, so it only connects to "
                        "wss:// — measured on the wss:// rows"
                    )
                with _trusting(replay["cert_path"]):
                    samples = _ws_rounds(contenders, rounds, section.skipped, transport)
            med = {k: statistics.median(v) for k, v in samples.items()}
            for name, value in med.items():
                spread = f"{min(samples[name]):,.0f}..{max(samples[name]):,.0f}"
                section.rows.append(
                    [transport, name, f"{value:,.0f}", _ratio(value, med.get(floor)), spread]
                )
            if floor in med:
                section.chart[transport] = {k: v / med[floor] for k, v in med.items()}
            inline = med.get("okx_sync WSClient inline")
            if inline and floor in med:
                section.targets.append(
                    Target(
                        f"WS {transport}: okx_sync inline vs bare loop", inline / med[floor], 0.8
                    )
                )
            for name, value in med.items():
                if inline and name.startswith(PEERS):
                    peer = name.split()[0]
                    section.targets.append(
                        Target(f"WS {transport}: okx_sync inline vs {peer}", inline / value, 1.0)
                    )
    finally:
        os.unlink(fh.name)
    avg = sum(len(f) for f in frames) / max(1, len(frames))
    section.notes += [
        f"stream: {len(frames):,} frames (average {avg:,.0f} bytes) recorded from the "
        f"simulator's flood (`POST /flood`, books updates + trades for {INST}, starting with "
        "the snapshot), then replayed at wire speed by a server in its own process: the "
        "simulator generates ~11k rounds/s, slower than the clients measured, so replaying its "
        "output makes the client, not the generator, the bottleneck.",
        "bare loop: websocket-client `recv()` + `json.loads` per frame "
        "(`skip_utf8_validation=True`). okx_sync: typed handlers for `books` and `trades` (a "
        "model per item). python-okx: its callback gets text; it json.loads it. ccxt: its own "
        "order book (nonce-checked) and trade cache, counted as each push is handled.",
        "wss://: a self-signed certificate made at start-up (`okx_sync.sim.tls`), trusted via "
        "`SSL_CERT_FILE` (websocket-client, python-okx) and ccxt's `cafile`.",
        "Reading: python-okx receives through `websockets` (asyncio) and okx_sync through its "
        "own reader (`okx_sync/ws/frames.py`; websocket-client only connects and sends): both "
        "cut frames out of large buffered reads. The bare websocket-client loop makes three "
        "`recv()` calls and builds an ABNF frame object per frame; on ~250-byte frames that "
        "frame layer is most of its cost per message, which is why a client doing more work "
        "per message (typed models) can be faster than this floor.",
    ]
    return section


WS_FLOOR = "bare websocket-client loop (floor)"


def _ws_contenders(replay: dict[str, Any], rest_url: str) -> dict[str, Callable[[], float]]:
    """Each contender reads the replay server's whole stream once and returns messages/s."""
    from ws_throughput import bare, wsclient

    from okx_sync.ws.dispatch import DispatchConfig, DispatchMode

    url, cert, count = replay["url"], replay["cert_path"], replay["count"]
    pool = DispatchConfig(queue_size=10_000, workers=1)
    inline = DispatchConfig(mode=DispatchMode.INLINE)
    return {
        WS_FLOOR: lambda: bare(url, count),
        "okx_sync WSClient inline": lambda: wsclient(url, count, inline),
        "okx_sync WSClient pool (1 worker)": lambda: wsclient(url, count, pool),
        "python-okx WsPublicAsync": lambda: python_okx_ws(url, count),
        "ccxt.pro watch_order_book + watch_trades": lambda: ccxt_ws(url, count, rest_url, cert),
    }


def _ws_rounds(
    contenders: dict[str, Callable[[], float]], rounds: int, skipped: dict[str, str], transport: str
) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in list(contenders.items()):
            try:
                samples[name].append(run())
            except ImportError as exc:
                skipped[f"{name} ({transport})"] = f"not installed ({exc.name})"
                contenders.pop(name)
            except Exception as exc:  # noqa: BLE001 - reported, the others still run
                skipped[f"{name} ({transport})"] = f"failed against the replay server: {exc!r:.160}"
                contenders.pop(name)
    return {name: values for name, values in samples.items() if values and name in contenders}


# --------------------------------------------------------------------------- order book
def bench_book(rounds: int, replays: int) -> Section:
    section = Section(
        "Order book: real recorded `books` stream applied, messages/s (median of rounds)",
        ["mode", "client", "msg/s", "vs ccxt", "spread"],
        chart_label="okx_sync OrderBookStore relative to ccxt's OrderBook",
    )
    if not book_apply.DEFAULT_DATA.exists():
        section.skipped["order book"] = f"recording not found: {book_apply.DEFAULT_DATA}"
        return section
    recorded = book_apply.load_books(book_apply.DEFAULT_DATA)
    for mode, messages, goal in (
        ("recorded checksums, all verified", recorded, book_apply.TARGETS["checksum"]),
        ("checksum 0 + seqId chain", book_apply.as_2026(recorded), book_apply.TARGETS["sequence"]),
    ):
        rates, reason = book_apply.compare(messages, rounds, replays)
        if reason:
            section.skipped["ccxt OrderBook"] = reason
        med = {k: statistics.median(v) for k, v in rates.items()}
        for name, value in med.items():
            spread = f"{min(rates[name]):,.0f}..{max(rates[name]):,.0f}"
            vs = (
                f"{book_apply.paired_ratio(rates[name], rates['ccxt']):.2f}x"
                if "ccxt" in med
                else "-"
            )
            section.rows.append([mode, name, f"{value:,.0f}", vs, spread])
        if "ccxt" in med:
            ratio = book_apply.paired_ratio(rates["okx_sync"], rates["ccxt"])
            section.chart[mode] = {"okx_sync / ccxt": ratio}
            section.targets.append(Target(f"book ({mode}): okx_sync vs ccxt", ratio, goal))
    section.notes.append(
        f"{book_apply.DEFAULT_DATA.name}: {len(recorded)} real OKX `books` pushes (3 instruments), "
        f"{rounds} rounds of {replays} replays, okx_sync and ccxt back to back in each round "
        "(who goes first alternates); vs ccxt = median of the per-round ratios. okx_sync "
        "verifies every checksum (and the seqId chain in the second mode); ccxt's OrderBook is "
        "driven as ccxt.pro's okx handler drives it."
    )
    return section


# --------------------------------------------------------------------------- gate
def bench_gate(seconds: float, rounds: int) -> Section:
    import logging

    import gate_precision

    section = Section(
        "Gate: achieved rate vs OKX's published limit, 16 threads",
        ["rule", "published", "achieved/s", "ratio", "429s", "key"],
        chart_label="achieved / published limit",
        chart_goal=0.8,
    )
    logging.getLogger("okx_sync").setLevel(logging.ERROR)  # throttling warnings are expected
    worst = float("inf")
    rejected = 0
    for scenario in gate_precision.scenarios():
        result = gate_precision._median_of(
            [gate_precision.run_rule(scenario, seconds, 16, 0.005) for _ in range(rounds)]
        )
        rejected += result["rejected"]
        for label, rate, ratio, _peak in result["rows"]:
            worst = min(worst, ratio)
            published = f"{scenario.limit}/{scenario.window_s:g}s"
            section.rows.append(
                [
                    scenario.name,
                    published,
                    f"{rate:.2f}",
                    f"{ratio:.3f}",
                    str(result["rejected"]),
                    label,
                ]  # fmt: skip
            )
            ratios = section.chart.setdefault(scenario.name, {})
            ratios["achieved / published"] = min(ratio, ratios.get("achieved / published", ratio))
    if section.rows:
        section.targets.append(Target("gate: worst rule achieved/published", worst, 0.8))
        section.targets.append(Target("gate: 429s seen (all rules) = 0", -rejected, 0))
    section.notes.append(
        f"`gate_precision.run_rule` per rule: the gate (headroom 0.9) in front of "
        f"`okx_sync/testing/limit_server.py`, which enforces OKX's published limits over sliding windows "
        f"with 0..5 ms arrival jitter; >= {seconds:g} s per rule (two windows at least), "
        f"{rounds} round(s) per rule, achieved = steady rate over whole windows. The storm "
        "case is in `python benchmarks/gate_precision.py`."
    )
    return section


def bench_gate_shared(seconds: float, quick: bool) -> Section:
    import logging

    import gate_shared

    section = Section(
        f"Gate shared through Redis: {gate_shared.PROCESSES} processes x "
        f"{gate_shared.THREADS} threads, one account",
        ["case", "rule", "published", "achieved/published", "peak per window", "429s"],
        chart_label="achieved / published limit",
        chart_goal=0.8,
    )
    from redis_support import redis_server_path

    if redis_server_path() is None:
        section.skipped["gate_shared"] = "redis-server not found on PATH"
        return section
    logging.getLogger("okx_sync").setLevel(logging.ERROR)  # throttling lines are expected
    figures = gate_shared.run(seconds, quick)
    worst, rejected = float("inf"), 0
    for case, results in (("shared", figures["shared"]), ("outage, share 0.25", figures["outage"])):
        for result in results:
            s = result["scenario"]
            if case == "shared":
                rejected += result["rejected"]
            for label, ratio, peak in result["rows"]:
                if case == "shared":
                    worst = min(worst, ratio)
                    section.chart.setdefault(s.name, {})["achieved / published"] = ratio
                section.rows.append(
                    [
                        case,
                        f"{s.name} ({label})",
                        f"{s.limit}/{s.window_s:g}s",
                        f"{ratio:.3f}",
                        str(peak),
                        str(result["rejected"]),
                    ]  # fmt: skip
                )
    local = figures["local"]
    section.rows.append(
        ["local backend per process", "IP", "", "", "", f"{local['rejected']} of {local['sent']}"]
    )
    p50, p99 = gate_shared.added_latency_ms(figures)
    section.targets.append(Target("gate shared: worst rule achieved/published", worst, 0.8))
    section.targets.append(Target("gate shared: 429s seen (all rules) = 0", -rejected, 0))
    section.targets.append(
        Target(
            "gate shared: 0.2 ms / added latency p50 (Redis over local)", 0.2 / max(p50, 1e-6), 1
        )
    )
    section.notes.append(
        f"Added latency per call (acquire + release, loopback Redis, no bucket binding): "
        f"p50 {p50:.3f} ms, p99 {p99:.3f} ms. `python benchmarks/gate_shared.py`: the limit "
        "server of `okx_sync/testing/limit_server.py`, a real redis-server, 4 spawned processes on one "
        'API key; outage rows: redis-server stopped, `on_error="local"`, '
        "`fallback_share=0.25` (peak per window must stay <= the published limit)."
    )
    return section


# --------------------------------------------------------------------------- latency
def _us(value: float) -> str:
    return f"{value:,.0f} µs" if value >= 100 else f"{value:,.1f} µs"


def bench_latency(
    sim: SimProcess, quick: bool, rounds: int, parts: list[str], memory_s: float
) -> list[Section]:
    """The latency sections (``benchmarks/latency.py``): WS push latency, REST round trip
    added by the library, WS vs REST order entry, memory."""
    out: list[Section] = []
    if "ws" in parts:
        out.append(_ws_push_section(sim, 1.0 if quick else 3.0, 5_000 if quick else 30_000))
    if "rest" in parts:
        out.append(_rest_latency_section(200 if quick else 1_000, max(1, min(rounds, 3))))
    if "orders" in parts:
        out.append(_order_entry_section(sim, 50 if quick else 300))
    if "memory" in parts:
        out.append(_memory_section(sim, memory_s))
    return out


def _ws_push_section(sim: SimProcess, seconds: float, max_count: int) -> Section:
    section = Section(
        "Latency: WS push, server send to handler entry",
        ["transport", "client", "max msg/s", "load", "achieved msg/s", "p50", "p99", "p99.9"],
    )
    results, section.skipped = latency.ws_push(sim.rest_url, seconds=seconds, max_count=max_count)
    for transport, clients in results.items():
        for name, res in clients.items():
            for load in latency.LOADS:
                rate, p50, p99, p999 = res.row(load)
                section.rows.append(
                    [transport, name, f"{res.max_rate:,.0f}", f"{load:.0%}", f"{rate:,.0f}"]
                    + [_us(p50), _us(p99), _us(p999)]
                )
            section.cdfs.setdefault(f"{transport} at 50 % of each client's max", {})[name] = (
                res.runs[0.5][1]
            )
        at_half = {name: res.row(0.5)[2] for name, res in clients.items()}
        inline = at_half.get(latency.WS_INLINE)
        if not inline:
            continue
        for peer in (latency.WS_PYOKX, latency.WS_CCXT):
            if peer in at_half:
                section.targets.append(
                    Target(
                        f"WS {transport} p99 at 50 %: okx_sync inline / {peer}",
                        inline / at_half[peer],
                        1.0,
                        at_most=True,
                    )  # fmt: skip
                )
        for pool in (latency.WS_POOL1, latency.WS_POOL4):
            if pool in at_half:
                section.targets.append(
                    Target(
                        f"WS {transport} p99 at 50 %: {pool} / inline",
                        at_half[pool] / inline,
                        2.0,
                        at_most=True,
                    )  # fmt: skip
                )
    section.notes += [
        "A server in its own process (`latency.py --serve-stamp`) streams `trades` pushes, each "
        "stamped with `time.time_ns()` (its tradeId) just before it is written; all pushes due "
        "go out in one write and the server sleeps between writes (at least "
        f"{latency.MIN_SLEEP_S * 1000:g} ms: above ~2k/s pushes arrive in bursts, as a busy feed "
        "sends them, and the server does not spin on a core the client needs). The client "
        "takes `time.time_ns()` at its handler's entry. "
        "max msg/s: each client's own rate on a wire-speed stream; the paced runs at 25/50/90 "
        f"% of it last ~{seconds:g} s, the first {latency.WARMUP:.0%} left out.",
        "okx_sync: a typed `trades` handler (a `Trade` model per push), inline on the reader or "
        "in a pool (1 / 4 workers). python-okx: `WsPublicAsync`'s callback (time taken on "
        "entry). ccxt.pro: `watch_trades` returning to the awaiting caller.",
        "Both ends share 2 cores with each other and the rest of the machine: at 90 % of a "
        "client's maximum the server and the client compete for CPU, so p99.9 there shows "
        "scheduling as much as the client. The CDFs are in `results_latency.png`.",
    ]
    return section


def _rest_latency_section(calls: int, rounds: int) -> Section:
    section = Section(
        "Latency: REST round trip added by the library (per call, loopback server)",
        [
            "case",
            "threads",
            "client",
            "p50",
            "p99",
            "calls/s",
            "p50 over floor",
            "p99 over floor",
            "calls/s vs floor",
        ],  # fmt: skip
    )
    results, section.skipped = latency.rest_latency(calls, rounds)
    floor_name = latency.REST_FLOOR
    for (case, threads), rows in results.items():
        floor = rows.get(floor_name)
        for name, row in rows.items():
            over = [_us(row.p50 - floor.p50), _us(row.p99 - floor.p99)] if floor else ["-", "-"]
            section.rows.append(
                [case, str(threads), name, _us(row.p50), _us(row.p99), f"{row.rate:,.0f}"]
                + over
                + [_ratio(row.rate, floor.rate if floor else None)]
            )
        if not floor:
            continue
        ours, peer = rows.get(latency.REST_REQUEST), rows.get(latency.REST_PYOKX)
        if ours and peer and case == "GET balance":
            mine, theirs = ours.p50 - floor.p50, peer.p50 - floor.p50
            section.targets.append(
                Target(
                    f"REST signed GET, {threads} thread(s): okx_sync overhead / python-okx's "
                    "(p50 over the http.client floor)",
                    max(0.0, mine) / theirs if theirs > 0 else float("inf"),
                    0.5,
                    at_most=True,
                )  # fmt: skip
            )
        if ours and case == "GET balance" and threads == 1:
            section.targets.append(
                Target(
                    "REST signed GET, 1 thread: okx_sync calls/s vs raw http.client",
                    ours.rate / floor.rate,
                    0.8,
                )  # fmt: skip
            )
    section.notes += [
        "A loopback HTTP/1.1 keep-alive server in its own process (`latency.py --serve-rest`: "
        "stdlib, Nagle off) answers fixed OKX envelopes (an order ack on trade/order and "
        "cancel-order, a balance otherwise). Per call: `perf_counter_ns` around it; p50/p99 "
        f"per run, median of {rounds} interleaved round(s). The floor: a raw `http.client` "
        "keep-alive connection sending pre-signed headers, json.loads of the answer.",
        "okx_sync runs with `RequestGateConfig(rate_limits=False)` (the request gate's "
        "admission, signing, envelope and stats still run); named methods: "
        "`account.get_balance(ccy=...)` (a `Balance` model) and `trade.place_order(..., "
        "validate=False)` + `cancel_order` (`OrderAck` models). 16 threads: okx_sync shares "
        "one Client; python-okx, ccxt and the floor have one instance / connection per thread; "
        "the one-process server is then part of every figure.",
    ]
    return section


def _order_entry_section(sim: SimProcess, orders: int) -> Section:
    section = Section(
        "Latency: order entry, WS `ws.place_order` vs REST `trade.place_order` (simulator)",
        ["path", "orders", "p50", "p99"],
    )
    try:
        lat = latency.order_entry(sim, orders)
    except Exception as exc:  # noqa: BLE001 - reported
        section.skipped["order entry"] = f"failed: {exc!r:.160}"
        return section
    for name, values in lat.items():
        section.rows.append([name, str(len(values)), _us(latency.pct(values, 0.5)),
                             _us(latency.pct(values, 0.99))])  # fmt: skip
    ws, rest = (latency.pct(v, 0.5) for v in lat.values())
    section.targets.append(Target("order entry p50: WS / REST", ws / rest, None))
    section.cdfs["order entry (simulator)"] = lat
    section.notes.append(
        "One Client against the simulator (its own process, rate limits off); a WS and a REST "
        "placement alternate, each order cancelled afterwards (untimed); the first 5 of each "
        "are warm-up. Both include the simulator's matching and answer; the difference is "
        "the transport."
    )
    return section


def _memory_section(sim: SimProcess, seconds: float) -> Section:
    section = Section("Memory: one Client under a simulator flood", ["measure", "value"])
    try:
        mem = latency.memory(sim, seconds)
    except Exception as exc:  # noqa: BLE001 - reported
        section.skipped["memory under flood"] = f"failed: {exc!r:.160}"
        mem = None
    if mem:
        growth = mem["end"] / mem["warm"]
        section.rows += [
            ["flood duration", f"{mem['seconds']:g} s"],
            ["RSS after warm-up (first 25 %)", f"{mem['warm'] / 2**20:,.1f} MiB"],
            ["RSS at the end", f"{mem['end'] / 2**20:,.1f} MiB"],
            ["growth after warm-up", f"{(growth - 1) * 100:+.1f} %"],
            ["book pushes applied / resyncs", f"{mem['pushes']:,} / {mem['resyncs']}"],
        ]
        section.targets.append(
            Target(
                f"memory: RSS end / after warm-up ({mem['seconds']:g} s flood)",
                growth,
                1.05,
                at_most=True,
            )  # fmt: skip
        )
    per_level = latency.bytes_per_level()
    for name, value in per_level.items():
        section.rows.append([f"bytes per book level: {name}", f"{value:,.0f}"])
    if len(per_level) == 2:
        ours, theirs = per_level.values()
        section.targets.append(Target("bytes per book level: okx_sync / ccxt", ours / theirs, None))
    section.notes += [
        f"One Client, its public WS with {len(latency.BOOKS)} managed books "
        "(`ws.order_book(inst, channel)`, 5 instruments on `books` and `books5`) and its private "
        "WS (logged in, `orders` channel), while the simulator floods `books` updates "
        "(`POST /flood`, 500 rounds per call, instruments in turn) for the stated duration "
        "(`--memory-seconds`; run_all's default is short: growth over minutes needs a longer "
        "run). RSS from /proc/self/status of the benchmark process, sampled each second: "
        "its level includes what the sections before it loaded (ccxt, python-okx, recorded "
        "frames); the growth is the figure.",
        "bytes per level: tracemalloc of one 400-level-a-side book (okx_sync: a snapshot push "
        "applied to `OrderBookStore`; ccxt: the levels stored in `OrderBook` as ccxt.pro's "
        "handler stores them), divided by 800.",
    ]
    return section


def bench_startup(runs: int) -> Section:
    section = Section(
        "Start-up: whole processes, wall time (median of interleaved runs)",
        ["process", "median", "spread"],
    )
    med, samples, skipped = startup.measure(runs)
    section.skipped.update(skipped)
    for label, value in med.items():
        spread = f"{min(samples[label]):.3f}..{max(samples[label]):.3f} s"
        section.rows.append([label, f"{value:.3f} s", spread])
    ours, peer = (
        med.get(f"{startup.OURS}: import + client"),
        med.get(f"{startup.PEER}: import + client"),
    )
    if ours and peer:
        section.targets.append(
            Target(
                "start-up: okx_sync import + Client / python-okx's", ours / peer, 1.0, at_most=True
            )  # fmt: skip
        )
    section.notes.append(
        f"{runs} runs of each process, interleaved (the order rotates each round), after one "
        "warm-up run each; bytecode caches written for every library (`PYTHONPYCACHEPREFIX`), "
        "so no one compiles its sources at start. import + client: `okx_sync.Client(key, "
        "secret, passphrase)`, python-okx `TradeAPI(...)`, "
        "`ccxt.okx({...})`; + first signed call: one `GET /api/v5/trade/orders-pending` against a "
        "loopback server. `python -X importtime -c \"import okx_sync; okx_sync.Client('k', "
        "'s', 'p')\"` shows okx_sync's share."
    )
    return section


def write_cdf_chart(path: Path, sections: list[Section]) -> str | None:
    """Latency CDFs (one panel per ``cdfs`` entry, log time axis); why not drawn, or None."""
    panels = [(name, lines) for s in sections for name, lines in s.cdfs.items() if lines]
    if not panels:
        return "no latency measured"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib not installed ({exc.name}); pip install -e '.[bench]'"
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.6 * len(panels)), squeeze=False)
    for ax, (name, lines) in zip(axes[:, 0], panels, strict=True):
        for label, values in lines.items():
            xs = sorted(max(v, 0.1) for v in values)
            if xs:
                ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], label=label)
        ax.set_xscale("log")
        ax.set_xlabel("latency (µs, log)", fontsize=7)
        ax.set_ylabel("share of pushes / calls", fontsize=7)
        ax.set_title(name, fontsize=9)
        for q in (0.5, 0.99):
            ax.axhline(q, color="grey", linewidth=0.6, linestyle=":")
        ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# --------------------------------------------------------------------------- report
def versions() -> str:
    out = []
    for dist in ("okx_sync", "python-okx", "ccxt", "requests", "websocket-client", "websockets"):
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    return ", ".join(out)


def summary(sections: list[Section]) -> str:
    lines = ["| target | measured | goal | |", "|---|---|---|---|"]
    for section in sections:
        for t in section.targets:
            if t.goal is None:
                measured, goal = f"{t.value:.2f}x", "(not a target)"
            elif t.goal == 0:
                measured, goal = f"{-t.value:g}", "0"
            else:
                measured = f"{t.value:.2f}x"
                goal = f"{'<=' if t.at_most else '>='} {t.goal:g}x"
            status = "reported" if t.goal is None else "met" if t.met else "**MISSED**"
            lines.append(f"| {t.text} | {measured} | {goal} | {status} |")
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, sections: list[Section], seconds: float, argv: list[str]) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        "# okx_sync benchmarks: side by side with python-okx and ccxt",
        "",
        f"Generated by `python benchmarks/run_all.py {' '.join(argv)}`".rstrip() + f" on {now}, "
        f"in {seconds / 60:.1f} min.",
        "",
        "```",
        book_apply.machine_info(),
        versions(),
        "```",
        "",
        "How: the simulator (`okx_sync.sim`) runs in its own process (`python -m okx_sync sim "
        "--json --no-rate-limits`): in-process it would share the GIL with the clients being "
        "measured, and each call's figure would include the server's Python time. Its rate "
        "limits are off and okx_sync runs with `RequestGateConfig(rate_limits=False)`, so every "
        "client does the same work (OKX's 20 req/2 s on the ticker would otherwise be what is "
        "measured); the gate section measures the limits on their own. Every case runs in "
        "interleaved rounds (each client once per round) and the median is shown. The machine "
        "is shared: read the ratios, which come from one run, more than the absolute figures.",
        "",
        "## Targets",
        "",
        summary(sections),
    ]
    text = "\n".join(head) + "\n" + "\n".join(s.markdown() for s in sections)
    path.write_text(text)
    return text


def write_chart(path: Path, sections: list[Section]) -> str | None:
    """One panel per section; returns why no chart was drawn, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib not installed ({exc.name}); pip install -e '.[bench]'"
    drawn = [s for s in sections if s.chart]
    if not drawn:
        return "nothing measured"
    fig, axes = plt.subplots(len(drawn), 1, figsize=(11, 3.6 * len(drawn)), squeeze=False)
    for ax, section in zip(axes[:, 0], drawn, strict=True):
        groups = list(section.chart)
        labels = list(dict.fromkeys(k for g in groups for k in section.chart[g]))
        if section.title.startswith("Threads"):
            for group in groups:
                counts = list(section.chart[group])
                ax.plot(counts, [section.chart[group][c] for c in counts], marker="o", label=group)
            ax.set_xlabel("threads")
            ax.set_ylim(bottom=0)
        else:
            width = 0.8 / max(1, len(labels))
            for i, label in enumerate(labels):
                at = [(g, section.chart[name][label]) for g, name in enumerate(groups)
                      if label in section.chart[name]]  # fmt: skip
                xs = [g + i * width for g, _ in at]
                bars = ax.bar(xs, [v for _, v in at], width, label=label)
                ax.bar_label(bars, fmt="%.2f", fontsize=6)
            ax.set_xticks([g + width * (len(labels) - 1) / 2 for g in range(len(groups))])
            ax.set_xticklabels(
                groups, fontsize=7, rotation=35 if len(groups) > 6 else 0, ha="right"
                if len(groups) > 6 else "center"
            )  # fmt: skip
            ax.axhline(1.0, color="grey", linewidth=0.8)
            if section.chart_goal is not None:
                ax.axhline(section.chart_goal, color="red", linestyle="--", linewidth=0.8)
        ax.set_title(section.title, fontsize=9)
        ax.set_ylabel(section.chart_label, fontsize=7)
        if len(labels) > 1 or section.title.startswith("Threads"):
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def update_readme(summary_table: str, when: str) -> None:
    """Replace the block between the README's benchmark markers with the targets table."""
    readme = REPO / "README.md"
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        print(f"README.md has no {start} ... {end} block; not updated")
        return
    head, rest = text.split(start, 1)
    _old, tail = rest.split(end, 1)
    block = f"{start}\nLatest run ({when}, see `benchmarks/results.md`):\n\n{summary_table}{end}"
    readme.write_text(head + block + tail)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; write results.md and results.png. Returns 0 when the run completed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"subset of {SECTIONS}")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case (median)")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--out", type=Path, default=HERE, help="where results.md/png go")
    parser.add_argument("--readme", action="store_true", help="put the targets table in README")
    parser.add_argument(
        "--latency-parts", default="ws,rest,orders,memory", help="parts of the latency section"
    )
    parser.add_argument(
        "--memory-seconds", type=float, default=60.0, help="flood duration of the memory check"
    )
    parser.add_argument("--serve-replay", help=argparse.SUPPRESS)
    parser.add_argument("--tls", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_replay:
        serve_replay(args.serve_replay, args.tls)
        return 0
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    quick = args.quick
    rounds = 2 if quick else args.rounds
    started = time.perf_counter()
    print(book_apply.machine_info(), flush=True)
    sections: list[Section] = []
    sim = SimProcess()
    try:
        steps: dict[str, Callable[[], Section | list[Section]]] = {
            "rest": lambda: bench_rest(sim, 100 if quick else 400, rounds),
            "ws": lambda: bench_ws(sim, 4000 if quick else 30_000, rounds),
            "book": lambda: bench_book(3 * rounds, 2 if quick else 4),
            "threads": lambda: bench_threads(sim, 0.5 if quick else 1.0, rounds),
            "gate": lambda: bench_gate(2.0 if quick else 5.0, 1),
            "gate_shared": lambda: bench_gate_shared(2.0 if quick else 4.0, quick),
            "latency": lambda: bench_latency(
                sim, quick, rounds, args.latency_parts.split(","), args.memory_seconds
            ),
            "startup": lambda: bench_startup(3 if quick else 9),
        }
        for name in SECTIONS:
            if name not in wanted:
                continue
            t0 = time.perf_counter()
            print(f"{name} ...", flush=True)
            made = steps[name]()
            for section in made if isinstance(made, list) else [made]:
                sections.append(section)
                print(section.markdown(), flush=True)
            print(f"({name}: {time.perf_counter() - t0:.0f} s)\n", flush=True)
    finally:
        sim.close()
    elapsed = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    markdown_path, chart_path = args.out / "results.md", args.out / "results.png"
    write_markdown(
        markdown_path, sections, elapsed, list(argv if argv is not None else sys.argv[1:])
    )
    why_not = write_chart(chart_path, sections)
    cdf_path = args.out / "results_latency.png"
    if write_cdf_chart(cdf_path, sections) is None:
        print(f"wrote {cdf_path}")
    print("targets:\n" + summary(sections))
    print(
        f"wrote {markdown_path}" + (f"; no chart: {why_not}" if why_not else f" and {chart_path}")
    )
    if args.readme:
        update_readme(summary(sections), datetime.date.today().isoformat())
    print(f"total {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
