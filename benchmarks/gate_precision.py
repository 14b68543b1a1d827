"""How close does the request gate run to OKX's published limits, without a single 429?

Runs a local server that enforces OKX's limits per rule over a sliding window
of arrival times (``okx_sync/testing/limit_server.py``; it answers 429/50011 or 50061
beyond them, with random arrival jitter) and drives it from 16 threads through
one ``RequestGate`` exactly as the REST core does (acquire -> send -> release
-> observe). For every rate-limit rule of the registry it prints the published
limit, the achieved steady rate, the ratio and the number of 429s. Target:
ratio >= 0.8 and zero 429s for every rule.

Baseline, side by side on the same server: a classic token bucket (burst =
capacity, same long-run rate, as in go-okx) for a few rules.

Then a storm, through the real ``okx_sync.Client`` with retries off: the server
answers every request with 429 for 5 s while 16 threads keep calling four
buckets; it prints, per bucket, how many 429s reached the caller before the
gate slowed down (calls admitted before the gate observed the bucket's first
429, i.e. already in flight; target <= 1), all 429s the callers saw during
the storm (those plus one probe after each hold), and the rate before and
after.

Usage: python benchmarks/gate_precision.py [--seconds 10] [--threads 16]
       [--rules IP,UID,...] [--jitter 0.005] [--no-storm]
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from okx_sync import Client, RetryPolicy
from okx_sync.errors import RequestStateError
from okx_sync.gate import RequestGate, RequestGateConfig, plan_charges
from okx_sync.rest.endpoints import Endpoint, registry
from okx_sync.testing.limit_server import (
    Arrival,
    GateDriver,
    LimitServer,
    StormProbe,
    hammer,
    window_max,
)

R = registry()
# Params that fill every scope field a rule can name.
_PARAMS = {
    "instId": "BTC-USDT",
    "instType": "SPOT",
    "instFamily": "BTC-USD",
    "instIdCode": "10001",
    "ccy": "USDT",
    "tag": "bench",
}
Call = tuple[Endpoint, Any]
Group = Callable[[Arrival], "str | None"]


class Scenario:
    """One budget under test: the calls the threads make, the published limit, and how
    to group the server's arrivals into the budgets the calls are meant to share."""

    def __init__(
        self,
        name: str,
        calls: list[Call],
        limit: int,
        window_s: float,
        group: Group,
        per_order: bool = False,
    ) -> None:
        self.name = name
        self.calls = calls
        self.limit = limit
        self.window_s = window_s
        self.group = group
        self.per_order = per_order


def _ep(method: str, path: str) -> Endpoint:
    endpoint = R.get(method, path)
    assert endpoint is not None, path
    return endpoint


def _by_path_and_inst(path: str) -> Group:
    return lambda a: f"{a.path} {a.items[0].get('instId', '')}" if a.path == path else None


def scenarios() -> list[Scenario]:
    """One scenario per rule in the registry (its endpoint with the highest rate, place
    order preferred), plus option families, per-order batch cost and the account limit."""
    best: dict[str, Endpoint] = {}

    def rank(ep: Endpoint) -> tuple[float, bool]:
        return (ep.limit / (ep.window_s or 1), ep.order_action == "place")

    for ep in R:
        if ep.batch or not ep.window_s or ep.window_s > 10:
            continue
        if ep.rule not in best or rank(ep) > rank(best[ep.rule]):
            best[ep.rule] = ep
    out = []
    for rule in sorted(best):
        ep = best[rule]
        calls: list[Call] = [(ep, dict(_PARAMS))]
        if rule.startswith("UID+instId;OPTION"):
            calls = [(ep, {"instId": "BTC-USDT"}), (ep, {"instId": "ETH-USDT"})]
        window = ep.window_s or 1.0
        out.append(Scenario(rule or "(none)", calls, ep.limit, window, _by_path_and_inst(ep.path)))
    place = _ep("POST", "/api/v5/trade/order")
    out.append(
        Scenario(
            "UID+instFamily (OPTION)",
            [
                (place, {"instId": "BTC-USD-250926-60000-C"}),
                (place, {"instId": "BTC-USD-250926-70000-P"}),
            ],
            place.limit,
            2.0,
            lambda a: "family BTC-USD" if a.path == place.path else None,
        )
    )
    batch = _ep("POST", "/api/v5/trade/batch-orders")
    out.append(
        Scenario(
            "per order (batch of 20)",
            [(batch, [{"instId": "BTC-USDT", "clOrdId": f"b{i}"} for i in range(20)])],
            batch.limit,
            2.0,
            _by_path_and_inst(batch.path),
            per_order=True,
        )
    )
    insts = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT", "DOGE-USDT"]
    out.append(
        Scenario(
            "account new+amend",
            [(batch, [{"instId": inst} for _ in range(20)]) for inst in insts],
            1000,
            2.0,
            lambda a: "account orders" if a.path == batch.path else None,
            per_order=True,
        )
    )
    return out


def steady_rate(events: list[tuple[float, int]], window: float) -> float:
    """Achieved rate once the first window's worth has gone out: whole periods only.

    C = cost arriving in the first ``window``; the rate is m*C divided by the
    time from the first arrival to the arrival that starts period m+1 (the
    largest m the run covers), so a partial period at either end does not bias it.
    """
    events = sorted(events)
    if len(events) < 2:
        return 0.0
    start = events[0][0]
    first = sum(c for t, c in events if t < start + window)
    best = 0.0
    cumulative = 0
    m = 1
    for t, c in events:
        if cumulative >= m * first and t > start:
            best = cumulative / (t - start)
            m = cumulative // first + 1
        cumulative += c
    return best


class TokenBucketBaseline:
    """Baseline: a classic token bucket per key (burst = the gate's capacity, refill at the
    same long-run rate, headroom 0.9), as in go-okx; no penalties, no pacing. Sleeps outside
    its lock. Same acquire/observe/close/stats surface as RequestGate for GateDriver."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill, cap, rate]
        self._closed = False

    def acquire(self, endpoint: Endpoint, params: Any) -> _NoPermit:
        charges = plan_charges(endpoint, params)
        while True:
            with self._lock:
                if self._closed:
                    raise RequestStateError("closed", stage="gate", dispatched=False)
                now = time.monotonic()
                wait = 0.0
                for c in charges:
                    cap = max(1, math.ceil(c.limit * 0.9 - 1e-9))
                    rate = c.limit * 0.9 / c.window_s
                    b = self._buckets.setdefault(c.key, [float(cap), now, cap, rate])
                    b[0] = min(b[2], b[0] + (now - b[1]) * b[3])
                    b[1] = now
                    if b[0] < c.cost:
                        wait = max(wait, (c.cost - b[0]) / b[3])
                if wait == 0.0:
                    for c in charges:
                        self._buckets[c.key][0] -= c.cost
                    return _NoPermit()
            time.sleep(min(wait, 0.05))

    def observe(self, *args: Any, **kwargs: Any) -> None:
        return

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def stats(self) -> dict[str, Any]:
        return {"timeouts": 0}


class _NoPermit:
    def release(self) -> None:
        return


def run_rule(
    scenario: Scenario,
    seconds: float,
    threads: int,
    jitter: float,
    make_gate: Callable[[], Any] = lambda: RequestGate(RequestGateConfig()),
) -> dict[str, Any]:
    with LimitServer(arrival_jitter_s=jitter) as server:
        gate = make_gate()
        driver = GateDriver(gate, server.url)
        spans = [b["span_s"] for b in _probe_spans(scenario)]
        duration = max(seconds, 2 * max(spans + [scenario.window_s]) + 1)
        codes: dict[str, int] = {}
        lock = threading.Lock()

        stop = threading.Event()

        def call(thread: int, i: int) -> None:
            endpoint, params = scenario.calls[(thread + i) % len(scenario.calls)]
            try:
                outcome = driver.send(endpoint, params)
            except RequestStateError as exc:  # 16 callers on a 1-per-5-s bucket: some give up
                if exc.stage != "gate":
                    raise
                return
            if outcome.http_status == 429 or outcome.code in ("50011", "50061"):
                with lock:
                    codes[outcome.code] = codes.get(outcome.code, 0) + 1

        errors = hammer(call, threads=threads, duration_s=duration, stop=stop, on_stop=gate.close)
        groups: dict[str, list[tuple[float, int]]] = {}
        for arrival in server.accepted():
            label = scenario.group(arrival)
            if label is not None:
                cost = arrival.orders if scenario.per_order else 1
                groups.setdefault(label, []).append((arrival.t, cost))
        published = scenario.limit / scenario.window_s
        rows = []
        for label, events in sorted(groups.items()):
            rate = steady_rate(events, scenario.window_s)
            peak = window_max(events, scenario.window_s)
            rows.append((label, rate, rate / published, peak))
        return {
            "scenario": scenario.name,
            "rows": rows,
            "rejected": server.total_rejected(),
            "caller_429": sum(codes.values()),
            "errors": errors,
            "duration": duration,
            "gate_timeouts": gate.stats().timeouts,
        }


def _median_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several rounds: median rate and ratio per key, worst peak and 429s."""
    first = results[0]
    if len(results) == 1:
        return first
    rows = []
    for i, (label, *_rest) in enumerate(first["rows"]):
        same = [r["rows"][i] for r in results if len(r["rows"]) > i]
        rows.append(
            (
                label,
                statistics.median(x[1] for x in same),
                statistics.median(x[2] for x in same),
                max(x[3] for x in same),
            )
        )
    return {
        **first,
        "rows": rows,
        "rejected": max(r["rejected"] for r in results),
        "errors": [e for r in results for e in r["errors"]],
        "gate_timeouts": max(r["gate_timeouts"] for r in results),
    }


def _probe_spans(scenario: Scenario) -> list[dict[str, Any]]:
    """The gate's bucket geometry for the scenario (no traffic: a fresh gate, acquire+release)."""
    gate = RequestGate(RequestGateConfig())
    for endpoint, params in scenario.calls:
        gate.acquire(endpoint, params).release()
    return [b.to_dict() for b in gate.stats().buckets]


def run_storm(threads: int, jitter: float, storm_s: float = 5.0) -> list[dict[str, Any]]:
    """16 threads call four buckets through the real ``Client`` (no retries, so every 429
    reaches the caller); the server answers 429/50011 to everything for ``storm_s``."""
    order = {"tdMode": "cash", "side": "buy", "ordType": "limit", "px": "1", "sz": "1"}
    kinds: list[tuple[str, str, dict[str, Any] | None, int, str | None]] = [
        ("GET", "/api/v5/market/ticker", {"instId": "BTC-USDT"}, 20, None),
        ("GET", "/api/v5/account/balance", None, 10, None),
        ("POST", "/api/v5/trade/order", {"instId": "BTC-USDT", **order}, 60, "BTC-USDT"),
        ("POST", "/api/v5/trade/order", {"instId": "ETH-USDT", **order}, 60, "ETH-USDT"),
    ]
    before_s, after_s = 4.0, 12.0
    with LimitServer(arrival_jitter_s=jitter) as server:
        client = Client(
            "bench-api-key-01",
            "bench-secret",
            "bench-pass",
            base_url=server.url,
            retry=RetryPolicy.none(),
        )
        client.request("GET", "/api/v5/trade/account-rate-limit")  # loaded before the run
        probe = StormProbe(client, [(m, p, params) for m, p, params, _limit, _inst in kinds])
        timer = threading.Timer(before_s, server.throttle, args=(storm_s,))
        timer.name = "okx-bench-storm"
        start = time.monotonic()
        timer.start()
        errors = hammer(
            probe.call,
            threads=threads,
            duration_s=before_s + storm_s + after_s,
            stop=probe.stop,
            on_stop=client.close,
        )
        timer.join()
        assert not errors, errors[:3]
    storm_start, storm_end = start + before_s, start + before_s + storm_s
    rows = []
    for kind, (method, path, params, limit, inst) in enumerate(kinds):

        def mine(a: Arrival, path: str = path, inst: str | None = inst) -> bool:
            return a.path == path and (inst is None or a.items[0].get("instId") == inst)

        arrivals = [a for a in server.arrivals if mine(a)]
        cutoff = probe.first_429.get(StormProbe.key(path, params), float("inf"))
        admitted_429 = probe.caller_429.get(kind, [])
        published = limit / 2.0

        def rate(
            lo: float, hi: float, arrivals: list[Arrival] = arrivals, published: float = published
        ) -> float:
            ok = sum(1 for a in arrivals if lo <= a.t < hi and a.code == "0")
            return ok / (hi - lo) / published

        rows.append(
            {
                "bucket": f"{method} {path} {inst or ''}".rstrip(),
                "before_slowdown": sum(1 for t in admitted_429 if t < cutoff),
                "caller_429": len(admitted_429),
                "rate_before": rate(start + 1, storm_start),
                "rate_after_0_5": rate(storm_end, storm_end + 5),
                "rate_after_7_12": rate(storm_end + 7, storm_end + after_s),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--jitter", type=float, default=0.005, help="max arrival jitter, s")
    parser.add_argument("--rules", default="", help="comma-separated scenario names")
    parser.add_argument("--no-storm", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per rule (median shown)")
    parser.add_argument(
        "--baseline",
        default="UID,UID+instId;OPTION:UID+instFamily,account new+amend",
        help="rules also run through a classic token bucket, side by side ('' = none)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the gate's throttling warnings are expected here
    wanted = {r.strip() for r in args.rules.split(",") if r.strip()}
    print(
        f"gate precision: {args.threads} threads, >= {args.seconds:g} s per rule, "
        f"arrival jitter 0..{args.jitter * 1000:g} ms, headroom 0.9, "
        f"{args.rounds} round(s) per rule (median)"
    )
    header = (
        f"{'rule':34} {'published':>10} {'peak/win':>9} {'achieved/s':>11} {'ratio':>6} {'429s':>5} "
        f"{'gate t/o':>8}  key"
    )
    print(header)
    failures = 0
    for scenario in scenarios():
        if wanted and scenario.name not in wanted:
            continue
        result = _median_of(
            [
                run_rule(scenario, args.seconds, args.threads, args.jitter)
                for _ in range(args.rounds)
            ]
        )
        worst = min((r[2] for r in result["rows"]), default=0.0)
        ok = worst >= 0.8 and result["rejected"] == 0 and not result["errors"]
        failures += not ok
        for label, rate, ratio, peak in result["rows"]:
            published = f"{scenario.limit}/{scenario.window_s:g}s"
            print(
                f"{result['scenario']:34} {published:>10} {peak:>9} {rate:11.2f} {ratio:6.3f} "
                f"{result['rejected']:5d} {result['gate_timeouts']:8d}  {label}"
                + ("" if ok else "   <-- below target")
            )
        if result["errors"]:
            print(f"  errors: {result['errors'][:3]}")
    baseline = [n.strip() for n in args.baseline.split(",") if n.strip()]
    if baseline:
        print()
        print("baseline: classic token bucket (burst = capacity, same long-run rate), same server")
        print(header)
        for scenario in scenarios():
            if scenario.name not in baseline:
                continue
            result = _median_of(
                [
                    run_rule(scenario, args.seconds, args.threads, args.jitter, TokenBucketBaseline)
                    for _ in range(args.rounds)
                ]
            )
            for label, rate, ratio, peak in result["rows"]:
                published = f"{scenario.limit}/{scenario.window_s:g}s"
                print(
                    f"{result['scenario']:34} {published:>10} {peak:>9} {rate:11.2f} "
                    f"{ratio:6.3f} {result['rejected']:5d} {'-':>8}  {label}"
                )
    if not args.no_storm:
        print()
        print(
            "storm (through okx_sync.Client, no retries): every request answered 429/50011 "
            "for 5 s; rates relative to the published limit"
        )
        print(
            f"{'bucket':40} {'429 before slow-down':>20} {'429s in storm':>13} "
            f"{'before':>7} {'after 0-5s':>10} {'after 7-12s':>11}"
        )
        for row in run_storm(args.threads, args.jitter):
            failures += row["before_slowdown"] > 1
            print(
                f"{row['bucket']:40} {row['before_slowdown']:20d} {row['caller_429']:13d} "
                f"{row['rate_before']:7.3f} {row['rate_after_0_5']:10.3f} "
                f"{row['rate_after_7_12']:11.3f}"
            )
    print()
    print("all targets met" if not failures else f"{failures} target(s) missed")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
