"""Drill ``rate_limit`` (runbook §2, §7): push to 429s; the gate holds, no storm, recovery.

Load: ``THREADS`` threads calling ``GET /api/v5/market/ticker`` (OKX: 20 per
2 s per IP; the simulator enforces it) through one Client.

1. **gated** — the default gate (headroom 0.9): the load meets no 429 (the
   simulator enforces OKX's limit on arrivals); the figures show the rate
   and the most responses in any one window.
2. **storm** — the simulator answers every request 429 + 50011 for
   ``STORM_S``. Checks: the first 429 penalises the bucket once (echoes of
   calls already in flight are not compounded); while the bucket is held the
   gate admits nothing (no retry storm: the simulator receives no request
   from the client during the hold); no caller sees an error (the retries
   wait in the gate and succeed after the hold); the bucket climbs back to
   its full rate (``recovery_windows=0.5`` here so the drill is short) and the
   load runs at the normal rate again (timed over the calls that complete
   after the recovery: the ones waiting in the gate, then ``AFTER_CALLS``
   more), with no further 429.
3. **unguarded** — for contrast, the same load with ``rate_limits=False`` and
   no retries: the 429s the gate prevented.

Live (``--live``): only phase 1, on OKX's demo environment — the gate keeps
the load inside OKX's published limit, so it is safe by construction.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from ...errors import APIError, OkxError, is_rate_limit_error
from ...gate import RequestGateConfig
from ...retry import RetryPolicy
from ..ports import DrillClient
from .base import Drill, DrillRun

__all__ = ["DRILL"]

PATH = "/api/v5/market/ticker"
BUCKET = f"GET {PATH} [IP]"
INST_ID = "BTC-USDT"
THREADS = 4
GATED_CALLS = 24
UNGUARDED_CALLS = 40
STORM_S = 0.5
RECOVERY_WINDOWS = 0.5  # the bucket's climb after the hold: 1 s for the ticker's 2 s window
AFTER_CALLS = 2  # calls taken after the recovery; timed with the THREADS already in flight


class _Load:
    """``threads`` threads calling the ticker until ``calls`` are done or ``stop`` is set;
    counts successes, errors (by kind) and the time of every success."""

    def __init__(self, client: DrillClient, threads: int, calls: int | None) -> None:
        self.client = client
        self.calls = calls
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.issued = 0
        self.ok_times: list[float] = []
        self.errors: list[OkxError] = []
        self.threads = [
            threading.Thread(target=self._work, name=f"drill-rate-load-{i}", daemon=True)
            for i in range(threads)
        ]

    def finish_after(self, calls: int) -> None:
        """Take ``calls`` more calls, then end (the calls in flight complete too)."""
        with self.lock:
            self.calls = self.issued + calls

    def _take(self) -> bool:
        with self.lock:
            if self.stop.is_set() or (self.calls is not None and self.issued >= self.calls):
                return False
            self.issued += 1
            return True

    def _work(self) -> None:
        while self._take():
            try:
                self.client.market.get_ticker(inst_id=INST_ID)
            except OkxError as exc:
                with self.lock:
                    self.errors.append(exc)
            else:
                with self.lock:
                    self.ok_times.append(time.monotonic())

    def start(self) -> _Load:
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def rate_429s(self) -> int:
        with self.lock:
            return sum(1 for e in self.errors if is_rate_limit_error(e))

    def successes_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for t in self.ok_times if start <= t < end)


def _bucket(client: DrillClient) -> dict[str, Any]:
    bucket = client.gate_stats().bucket(BUCKET)
    return {} if bucket is None else bucket.to_dict()


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _gated(run: DrillRun, client: DrillClient, limit: int, window: float) -> None:
    run.step(f"gated: {GATED_CALLS} ticker calls from {THREADS} threads")
    t0 = time.monotonic()
    load = _Load(client, THREADS, GATED_CALLS).start()
    finished = load.join(60.0)
    elapsed = time.monotonic() - t0
    seen = load.rate_429s()
    run.figure("gated_calls", len(load.ok_times))
    run.figure("gated_429s", seen, key=True)
    run.figure("gated_rate_per_s", len(load.ok_times) / elapsed if elapsed else 0.0)
    peak = _max_in_window(load.ok_times, window)
    run.figure("gated_peak_per_window", peak)
    run.check(
        "gated: no 429",
        finished and seen == 0 and not load.errors,
        f"{len(load.ok_times)}/{GATED_CALLS} ok, {seen} x 429, {len(load.errors)} errors; "
        f"at most {peak} responses in a {window:g} s window (limit {limit})",
        required=True,
    )


def _storm(run: DrillRun, client: DrillClient, window: float) -> None:
    sim = run.sim
    assert sim is not None
    before = _bucket(client)
    normal_rate = float(before.get("current_rate", 0.0))
    load = _Load(client, THREADS, None).start()
    try:
        run.wait_until(lambda: len(load.ok_times) >= 3, 10.0)
        run.step(f"storm: every request answers 429 + 50011 for {STORM_S} s")
        served_before = sim.stats()["rest_requests"]
        storm_at = time.monotonic()
        sim.faults.rate_limit_storm(STORM_S)
        # While the bucket is held the gate must admit nothing: sample its admitted count.
        held_samples: list[int] = []
        penalised_at: float | None = None
        deadline = storm_at + 10.0
        while time.monotonic() < deadline:
            b = _bucket(client)
            if b.get("penalties", 0) > before.get("penalties", 0):
                if penalised_at is None:
                    penalised_at = time.monotonic()
                if b["held_for_s"] > 0:
                    held_samples.append(int(b["admitted"]))
                else:
                    break
            time.sleep(0.01)
        hold_end = time.monotonic()
        served_to_hold_end = sim.stats()["rest_requests"] - served_before
        # Recovery: the bucket climbs back to its full rate.
        recovered = run.wait_until(
            lambda: _bucket(client).get("rate_factor", 0.0) >= 1.0, 4 * window + 2.0, 0.02
        )
        recovered_at = time.monotonic()
        # Then the load ends after AFTER_CALLS more calls; the successes from the recovery
        # on (those calls and the ones already waiting in the gate) time its rate again.
        load.finish_after(AFTER_CALLS)
        load.join(30.0)
    finally:
        load.stop.set()
        load.join(30.0)
    after_end = max(load.ok_times, default=recovered_at)  # the last success
    after = _bucket(client)
    throttled = int(after.get("throttled", 0)) - int(before.get("throttled", 0))
    penalties = int(after.get("penalties", 0)) - int(before.get("penalties", 0))
    after_calls = load.successes_between(recovered_at, math.inf)
    rate_after = after_calls / max(1e-9, after_end - recovered_at)
    run.figure("storm_429s_seen", throttled, key=True)
    run.figure("storm_penalties", penalties, key=True)
    run.figure("storm_requests_to_server", served_to_hold_end)
    run.figure(
        "storm_admitted_during_hold", (max(held_samples) - min(held_samples)) if held_samples else 0
    )
    run.figure(
        "storm_hold_s", round(hold_end - penalised_at, 3) if penalised_at is not None else None
    )
    run.figure("storm_caller_errors", len(load.errors), key=True)
    run.figure("recovery_s", round(recovered_at - storm_at, 3) if recovered else None, key=True)
    run.figure("normal_rate_per_s", normal_rate)
    run.figure("rate_after_recovery_per_s", rate_after)
    run.check(
        "storm: the 429 reached the gate",
        penalised_at is not None and throttled >= 1,
        f"{throttled} x 429 observed by the gate",
        required=True,
    )
    run.check(
        "storm: one penalty, echoes not compounded",
        penalties == 1,
        f"{penalties} penalties for {throttled} x 429",
    )
    run.check(
        "storm: at most one 429 per call in flight",
        throttled <= THREADS,
        f"{throttled} x 429 <= {THREADS} callers (no retry storm)",
    )
    run.check(
        "storm: the gate holds (nothing admitted while held)",
        len(held_samples) >= 1 and max(held_samples) == min(held_samples),
        f"admitted stayed {held_samples[0] if held_samples else '?'} over "
        f"{len(held_samples)} samples; the server got {served_to_hold_end} requests from "
        "the storm's start to the hold's end",
    )
    run.check(
        "storm: callers saw no error",
        not load.errors,
        f"{len(load.errors)} errors"
        + (f" (first: {load.errors[0]})" if load.errors else "; retries waited in the gate"),
    )
    run.check(
        "recovery: full rate again",
        recovered and float(after.get("current_rate", 0.0)) >= normal_rate,
        f"rate_factor {after.get('rate_factor')}, current_rate {after.get('current_rate')}"
        f"/s (normal {normal_rate}/s)",
    )
    run.check(
        "recovery: the load runs again without 429",
        throttled == int(_bucket(client).get("throttled", 0)) - int(before.get("throttled", 0))
        and rate_after >= 0.5 * normal_rate,
        f"{rate_after:.1f} calls/s after recovery ({after_calls} calls; normal {normal_rate}/s)",
    )


def _unguarded(run: DrillRun) -> None:
    client = run.client(gate=RequestGateConfig(rate_limits=False), retry=RetryPolicy.none())
    run.step(f"unguarded: {UNGUARDED_CALLS} calls with rate_limits=False and no retries")
    load = _Load(client, THREADS, UNGUARDED_CALLS).start()
    load.join(60.0)
    seen = load.rate_429s()
    run.figure("unguarded_429s", seen, key=True)
    run.check(
        "unguarded: the same load meets 429s (what the gate prevents)",
        seen > 0 and all(isinstance(e, APIError) for e in load.errors),
        f"{seen} x 429 of {UNGUARDED_CALLS} calls",
    )


def routine(run: DrillRun) -> None:
    """The drill (see the module docstring)."""
    from ...rest.endpoints import registry

    endpoint = registry().get("GET", PATH)
    assert endpoint is not None and endpoint.window_s is not None
    limit, window = int(endpoint.limit), float(endpoint.window_s)
    client = run.client(gate=RequestGateConfig(recovery_windows=RECOVERY_WINDOWS))
    run.figure("limit", f"{limit}/{window:g}s")
    _gated(run, client, limit, window)
    if run.live:
        return
    _storm(run, client, window)
    _unguarded(run)


DRILL = Drill(
    name="rate_limit",
    title="push to 429s: the gate holds, no storm, recovery",
    runbook="§2",
    routine=routine,
    live_safe=True,
    sim_options={"auto_tick": False, "ws": False, "control": False},
)
