"""One account, four processes: does a request gate shared through Redis keep them inside
OKX's limits together, and what does it cost per call?

Setup: the limit server (``okx_sync/testing/limit_server.py``: OKX's published limits enforced
over sliding windows of arrival times, 429/50011 or 50061 beyond them), a real
``redis-server`` on a free loopback port (``tests/redis_support.py``), and
``PROCESSES`` (4) worker processes with ``THREADS`` (8) threads each, all on one
API key (one UID) and one IP, sending through a ``RequestGate`` exactly as the
REST core does (``GateDriver``: acquire -> send -> release -> observe).

1. **shared** — every process on ``RedisGateBackend``: for every rule of the
   registry (``gate_precision.scenarios()``) the aggregate achieved rate over
   the published limit and the 429s. Targets: 0 429s, every rule >= 0.8x.
2. **local** — the same load on one IP rule with ``LocalGateBackend`` in each
   process: each process believes it owns the whole limit; 429s follow.
3. **latency** — one process, one thread, calls on distinct instruments (no
   bucket ever binds): acquire + release time per call, local vs Redis; the
   added latency p50/p99, beside a bare PING (interleaved call by call). Target:
   p50 <= 0.2 ms on loopback Redis.
4. **outage** — redis-server stopped, ``on_error="local"`` with
   ``fallback_share=0.25``: the four processes' aggregate rate on an IP and a
   UID rule stays <= the published limit (most calls in any window <= limit).

Usage: python benchmarks/gate_shared.py [--seconds 5] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import gate_precision  # noqa: E402
from redis_support import RedisServer, redis_server_path  # noqa: E402

from okx_sync.errors import RequestStateError  # noqa: E402
from okx_sync.gate import (  # noqa: E402
    LocalGateBackend,
    RedisGateBackend,
    RequestGate,
    RequestGateConfig,
)
from okx_sync.rest.endpoints import registry  # noqa: E402
from okx_sync.testing.limit_server import GateDriver, LimitServer, hammer, window_max  # noqa: E402

PROCESSES = 4
THREADS = 8
API_KEY = "bench-shared-key"
SPAWN = multiprocessing.get_context("spawn")


def _backend(spec: dict[str, Any]) -> Any:
    if spec["kind"] == "local":
        return LocalGateBackend()
    options = {k: v for k, v in spec.items() if k not in ("kind", "url")}
    return RedisGateBackend(spec["url"], **options)


def _worker(commands: Any, results: Any) -> None:
    """A worker process: runs the commands it is sent until ``None``."""
    logging.getLogger("okx_sync").setLevel(logging.ERROR)  # throttling lines are expected
    scenarios = gate_precision.scenarios()
    while True:
        command = commands.get()
        if command is None:
            return
        kind, args = command
        if kind == "load":
            results.put(_load(scenarios[args["scenario"]], args))
        elif kind == "latency":
            results.put(_latency(args))


def _load(scenario: gate_precision.Scenario, args: dict[str, Any]) -> dict[str, Any]:
    gate = RequestGate(RequestGateConfig(backend=_backend(args["backend"])), api_key=API_KEY)
    driver = GateDriver(gate, args["url"], api_key=API_KEY)
    lock = threading.Lock()
    seen = {"429": 0, "sent": 0}

    def call(thread: int, i: int) -> None:
        endpoint, params = scenario.calls[(thread + i) % len(scenario.calls)]
        try:
            outcome = driver.send(endpoint, params)
        except RequestStateError as exc:
            if exc.stage != "gate":
                raise
            return
        with lock:
            seen["sent"] += 1
            if outcome.http_status == 429 or outcome.code in ("50011", "50061"):
                seen["429"] += 1

    errors = hammer(call, threads=THREADS, duration_s=args["duration"], on_stop=gate.close)
    return {**seen, "errors": [repr(e) for e in errors], "backend": dict(gate.stats().backend)}


def _latency(args: dict[str, Any]) -> dict[str, Any]:
    """Acquire + release per call, local and Redis interleaved call by call (the machine's
    load hits both alike), and a bare Redis PING beside them (the loopback round trip)."""
    import redis

    cancel = registry().get("POST", "/api/v5/trade/cancel-order")  # UID+instId, no account
    gates = {
        name: RequestGate(RequestGateConfig(backend=_backend(spec)), api_key=API_KEY)
        for name, spec in args["backends"].items()
    }
    ping = redis.Redis.from_url(args["backends"]["redis"]["url"])
    out: dict[str, list[float]] = {name: [] for name in [*gates, "ping"]}
    for i in range(args["calls"]):
        params = {"instId": f"I{i % 500}-USDT"}  # 500 buckets in turn: none ever binds
        for name, gate in gates.items():
            started = time.perf_counter()
            gate.acquire(cancel, params).release()
            out[name].append(time.perf_counter() - started)
        started = time.perf_counter()
        ping.ping()
        out["ping"].append(time.perf_counter() - started)
    for gate in gates.values():
        gate.close()
    ping.close()
    return {name: samples[500:] for name, samples in out.items()}  # after opening the buckets


class Workers:
    """``PROCESSES`` worker processes taking commands; ``run`` sends one to each and
    collects every answer."""

    def __init__(self, count: int = PROCESSES) -> None:
        self.results = SPAWN.Queue()
        self.commands = [SPAWN.Queue() for _ in range(count)]
        self.procs = [
            SPAWN.Process(target=_worker, args=(q, self.results), daemon=True)
            for q in self.commands
        ]
        for proc in self.procs:
            proc.start()

    def run(self, kind: str, args: dict[str, Any], count: int | None = None) -> list[Any]:
        targets = self.commands[: count or len(self.commands)]
        for q in targets:
            q.put((kind, args))
        return [self.results.get(timeout=600) for _ in targets]

    def close(self) -> None:
        for q in self.commands:
            q.put(None)
        for proc in self.procs:
            proc.join(timeout=30)


def _rows(scenario: gate_precision.Scenario, server: LimitServer) -> list[tuple[str, float, int]]:
    groups: dict[str, list[tuple[float, int]]] = {}
    for arrival in server.accepted():
        label = scenario.group(arrival)
        if label is not None:
            groups.setdefault(label, []).append(
                (arrival.t, arrival.orders if scenario.per_order else 1)
            )
    published = scenario.limit / scenario.window_s
    return [
        (
            label,
            gate_precision.steady_rate(events, scenario.window_s) / published,
            window_max(events, scenario.window_s),
        )
        for label, events in sorted(groups.items())
    ]


def _duration(scenario: gate_precision.Scenario, seconds: float) -> float:
    spans = [b["span_s"] for b in gate_precision._probe_spans(scenario)]
    return max(seconds, 2 * max(spans + [scenario.window_s]) + 1)


def run_load(
    workers: Workers, scenario_index: int, backend: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """One scenario from every worker at once; the server's view of it."""
    scenario = gate_precision.scenarios()[scenario_index]
    with LimitServer(arrival_jitter_s=0.002) as server:
        args = {
            "scenario": scenario_index,
            "backend": backend,
            "url": server.url,
            "duration": _duration(scenario, seconds),
        }
        answers = workers.run("load", args)
        return {
            "scenario": scenario,
            "rows": _rows(scenario, server),
            "rejected": server.total_rejected(),
            "sent": sum(a["sent"] for a in answers),
            "errors": [e for a in answers for e in a["errors"]],
            "health": sorted({a["backend"].get("health", "") for a in answers}),
        }


def _index(name: str) -> int:
    for i, scenario in enumerate(gate_precision.scenarios()):
        if scenario.name == name:
            return i
    raise KeyError(name)


def run(seconds: float = 5.0, quick: bool = False) -> dict[str, Any]:
    """Every part; returns the figures (``main`` prints them)."""
    if redis_server_path() is None:
        raise RuntimeError("redis-server not found on PATH (apt-get install redis-server)")
    figures: dict[str, Any] = {"shared": [], "local": None}
    redis = RedisServer().start()
    workers = Workers()
    try:
        shared = {"kind": "redis", "url": redis.url, "namespace": "bench", "timeout_s": 0.5}
        names = [s.name for s in gate_precision.scenarios()]
        if quick:
            names = [n for n in names if n in ("IP", "UID", "UID+instId", "account new+amend")]
        for name in names:
            redis.flush()
            figures["shared"].append(run_load(workers, _index(name), shared, seconds))
        figures["local"] = run_load(workers, _index("IP"), {"kind": "local"}, seconds)
        redis.flush()
        samples = workers.run(
            "latency",
            {
                "calls": 1000 if quick else 3000,
                "backends": {"local": {"kind": "local"}, "redis": shared},
            },
            count=1,
        )[0]
        figures["latency"] = {name: sorted(values) for name, values in samples.items()}
        redis.stop()
        fallback = {
            "kind": "redis",
            "url": redis.url,
            "namespace": "bench",
            "on_error": "local",
            "fallback_share": 0.25,
            "timeout_s": 0.05,
        }
        figures["outage"] = [
            run_load(workers, _index(name), fallback, seconds) for name in ("IP", "UID")
        ]
    finally:
        workers.close()
        redis.stop()
    return figures


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def added_latency_ms(figures: dict[str, Any]) -> tuple[float, float]:
    """Redis minus local acquire+release time per call, p50 and p99, in ms."""
    lat = figures["latency"]
    return (
        _pct(lat["redis"], 0.50) - _pct(lat["local"], 0.50),
        _pct(lat["redis"], 0.99) - _pct(lat["local"], 0.99),
    )


def report(figures: dict[str, Any]) -> list[str]:
    """The figures as text lines."""
    lines = [f"shared (RedisGateBackend), {PROCESSES} processes x {THREADS} threads, one account:"]
    lines.append(f"  {'rule':28} {'published':>10} {'ratio':>7} {'peak/window':>12} {'429s':>5}")
    for result in figures["shared"]:
        s = result["scenario"]
        for label, ratio, peak in result["rows"]:
            lines.append(
                f"  {s.name:28} {f'{s.limit}/{s.window_s:g}s':>10} {ratio:7.3f} "
                f"{peak:>12} {result['rejected']:>5}  {label}"
            )
    local = figures["local"]
    lines.append(
        f"local backend in each process, rule IP: {local['rejected']} 429s of "
        f"{local['sent']} calls sent"
    )
    p50, p99 = added_latency_ms(figures)
    lat = figures["latency"]
    lines.append(
        f"acquire+release per call: local p50 {_pct(lat['local'], 0.5):.3f} ms "
        f"p99 {_pct(lat['local'], 0.99):.3f} ms; redis p50 {_pct(lat['redis'], 0.5):.3f} ms "
        f"p99 {_pct(lat['redis'], 0.99):.3f} ms; added p50 {p50:.3f} ms, p99 {p99:.3f} ms "
        f"(a bare PING: p50 {_pct(lat['ping'], 0.5):.3f} ms, p99 {_pct(lat['ping'], 0.99):.3f} ms)"
    )
    for result in figures["outage"]:
        s = result["scenario"]
        for label, ratio, peak in result["rows"]:
            lines.append(
                f"outage (on_error=local, share 0.25), rule {s.name}: ratio {ratio:.3f}, "
                f"peak {peak} per {s.window_s:g} s (limit {s.limit}), 429s "
                f"{result['rejected']}, health {result['health']}  {label}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="four rules only, fewer samples")
    args = parser.parse_args()
    figures = run(args.seconds, args.quick)
    for line in report(figures):
        print(line)
    worst = min(r[1] for result in figures["shared"] for r in result["rows"])
    rejected = sum(result["rejected"] for result in figures["shared"])
    print(
        f"targets: 429s {rejected} (goal 0); worst ratio {worst:.3f} (goal >= 0.8); "
        f"added p50 {added_latency_ms(figures)[0]:.3f} ms (goal <= 0.2)"
    )


if __name__ == "__main__":
    main()
