"""Drill ``shared_rate_limit`` (runbook §2): four processes, one account, one gate in Redis.

Needs a Redis server: ``DrillLab.gate_redis_url`` (``drill_lab()`` reads
``OKX_GATE_REDIS_URL``); without one the drill is skipped with that reason.
The buckets live under a namespace of their own (``drill-<pid>-<time>``).

``PROCESSES`` worker processes each build a client through the lab's factory
with ``RequestGateConfig(backend=RedisGateBackend(url), recovery_windows=1)``
and no retries, on the simulator's live key, and call ``GET
/api/v5/market/ticker`` (OKX: 20 per 2 s per IP; the simulator enforces it; all
four share the IP). The workers are forked from a ``forkserver`` that has
imported the client once (``spawn`` where there is none: each worker then
imports it again, about a second of start-up per worker on a busy machine).

1. **gated** — the four processes together make ``GATED_CALLS`` calls (more
   than the limit: four gates that did not share the window would send them
   within one window) from two threads each: no 429, and no window of the
   published length holds more responses than the limit (each process alone
   would allow 0.9 x 20).
2. **storm** — the simulator answers 429 for ``STORM_S``; one process makes
   one call and sees the 429 (its gate penalises the shared bucket); then all
   four call again: none of them is admitted before the hold that one process
   started has passed, and none sees a 429.

Thread safety: a routine runs on the drill's thread; the workers are processes.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from typing import Any

from ...errors import APIError, OkxError, is_rate_limit_error
from ..ports import MarketLoadClient
from .base import Drill, DrillLab, DrillRun, DrillSkipped

__all__ = ["DRILL"]

PATH = "/api/v5/market/ticker"
INST_ID = "BTC-USDT"
PROCESSES = 4
THREADS = 2
GATED_CALLS = 24  # 6 per process: 1.2 x the limit, so unshared gates would meet 429s
AFTER_CALLS = 1  # per process after the storm: its first call must wait out the hold
STORM_S = 0.5
_ANSWER_S = 120.0
# One Redis call's deadline in the drill's workers. The backend's default (50 ms) suits a
# colocated Redis in production; the drill runs four client processes, the simulator and
# redis-server on whatever machine runs it, where a loaded scheduler alone can exceed 50 ms.
REDIS_TIMEOUT_S = 1.0
# What each worker imports before it is forked (forkserver): the client and its gate.
_PRELOAD = ("okx_sync.client", "okx_sync.gate.redis_backend", "redis")


def _worker(factory: Any, creds: tuple[str, str, str], options: dict[str, Any], pipe: Any) -> None:
    """One worker process: a client, ``"ready"`` on ``pipe``, then commands from ``pipe``
    until ``None``."""
    from ...gate import RedisGateBackend, RequestGateConfig
    from ...retry import RetryPolicy

    backend = RedisGateBackend(
        options.pop("redis_url"), namespace=options.pop("namespace"), timeout_s=REDIS_TIMEOUT_S
    )
    gate = RequestGateConfig(backend=backend, recovery_windows=1.0)  # a short drill
    client = factory(*creds, gate=gate, retry=RetryPolicy.none(), **options)
    try:
        client.market  # noqa: B018 - builds the endpoint group before the load is timed
        pipe.send("ready")
        while True:
            command = pipe.recv()
            if command is None:
                return
            kind, count = command
            if kind == "probe":
                pipe.send(_probe(client))
            else:
                pipe.send(_load(client, count))
    finally:
        client.close()
        pipe.close()


def _probe(client: MarketLoadClient) -> dict[str, Any]:
    try:
        client.market.get_ticker(inst_id=INST_ID)
    except APIError as exc:
        at = time.monotonic()
        held = max((b.held_for_s for b in client.gate_stats().buckets), default=0.0)
        return {"at": at, "rate_limited": is_rate_limit_error(exc), "held_s": held}
    return {"at": time.monotonic(), "rate_limited": False, "held_s": 0.0}


def _load(client: MarketLoadClient, calls: int) -> dict[str, Any]:
    lock = threading.Lock()
    state: dict[str, Any] = {"left": calls, "ok": [], "errors": []}

    def work() -> None:
        while True:
            with lock:
                if state["left"] <= 0:
                    return
                state["left"] -= 1
            try:
                client.market.get_ticker(inst_id=INST_ID)
            except OkxError as exc:
                with lock:
                    state["errors"].append((is_rate_limit_error(exc), f"{exc}"[:200]))
            else:
                with lock:
                    state["ok"].append(time.monotonic())

    threads = [threading.Thread(target=work, name=f"drill-shared-{i}") for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(_ANSWER_S)
    return {"ok": state["ok"], "errors": state["errors"]}


def _context() -> Any:
    """``forkserver`` (the client imported once, then each worker forked from it) where
    the platform has it, else ``spawn``. Never ``fork``: this process runs threads."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # What the process's forkserver imports when it starts (no effect once it runs):
    # ``__main__`` as by default, then the client.
    context.set_forkserver_preload(["__main__", *_PRELOAD])
    return context


def prepare(lab: DrillLab) -> None:
    """Start the forkserver now (``run_drills``, before the first drill): it imports the
    client while the drills before this one run. Only with a Redis server (else the
    drill is skipped) and where there is a forkserver; returns at once."""
    if lab.gate_redis_url and "forkserver" in multiprocessing.get_all_start_methods():
        _context()
        from multiprocessing import forkserver

        forkserver.ensure_running()


class _Workers:
    """The worker processes and their pipes (closed by ``close``)."""

    def __init__(self, run: DrillRun, redis_url: str) -> None:
        creds = run.credentials()
        namespace = f"drill-{os.getpid()}-{time.time_ns()}"
        assert run.sim is not None  # the drill runs on a simulator (sim_options)
        options = {"base_url": run.sim.rest_url, "redis_url": redis_url, "namespace": namespace}
        context = _context()
        self.pipes: list[Any] = []
        self.procs: list[Any] = []
        for _ in range(PROCESSES):
            mine, theirs = context.Pipe()
            proc = context.Process(
                target=_worker,
                args=(
                    run.lab.client_factory,
                    (creds.api_key, creds.secret_key, creds.passphrase),
                    dict(options),
                    theirs,
                ),
                daemon=True,
            )
            proc.start()
            theirs.close()
            self.pipes.append(mine)
            self.procs.append(proc)

    def ready(self) -> None:
        """Wait until every worker has built its client (its ``"ready"``)."""
        self._answers(self.pipes)

    def ask(self, command: tuple[str, int], which: list[int] | None = None) -> list[Any]:
        chosen = [self.pipes[i] for i in (which or range(len(self.pipes)))]
        for pipe in chosen:
            pipe.send(command)
        return self._answers(chosen)

    @staticmethod
    def _answers(pipes: list[Any]) -> list[Any]:
        answers = []
        for pipe in pipes:
            if not pipe.poll(_ANSWER_S):
                raise TimeoutError(f"a worker process did not answer within {_ANSWER_S:g} s")
            answers.append(pipe.recv())
        return answers

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(None)
            except OSError:
                pass
        for proc in self.procs:
            proc.join(30)
            if proc.is_alive():
                proc.terminate()
                proc.join(10)
        for pipe in self.pipes:
            pipe.close()


def _peak(times: list[float], window: float) -> int:
    times = sorted(times)
    best = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def routine(run: DrillRun) -> None:
    """The drill (see the module docstring)."""
    from ...rest.endpoints import registry

    url = run.lab.gate_redis_url
    if not url:
        raise DrillSkipped("needs a Redis server: set OKX_GATE_REDIS_URL (DrillLab.gate_redis_url)")
    endpoint = registry().get("GET", PATH)
    assert endpoint is not None and endpoint.window_s is not None
    limit, window = int(endpoint.limit), float(endpoint.window_s)
    run.figure("limit", f"{limit}/{window:g}s")
    run.step(f"starting {PROCESSES} worker processes on one account, one Redis")
    started = time.monotonic()
    workers = run.own(_Workers(run, url))
    workers.ready()
    run.figure("start_s", time.monotonic() - started)  # until every worker has its client

    run.step(f"gated: {GATED_CALLS} ticker calls from {PROCESSES} processes x {THREADS} threads")
    answers = workers.ask(("load", GATED_CALLS // PROCESSES))
    ok = [t for a in answers for t in a["ok"]]
    errors = [e for a in answers for e in a["errors"]]
    seen = sum(1 for limited, _ in errors if limited)
    peak = _peak(ok, window)
    run.figure("gated_429s", seen, key=True)
    run.figure("gated_peak_per_window", peak, key=True)
    run.check(
        "gated: four processes together meet no 429",
        seen == 0 and not errors and len(ok) == GATED_CALLS,
        f"{len(ok)}/{GATED_CALLS} ok, {seen} x 429, {len(errors)} errors "
        f"({errors[:1]}); at most {peak} responses in a {window:g} s window (limit {limit})",
        required=True,
    )
    run.check("gated: the aggregate stays within the limit", peak <= limit, f"peak {peak}")

    run.step(f"storm: the simulator answers 429 for {STORM_S:g} s; one process calls")
    assert run.sim is not None
    run.sim.faults.rate_limit_storm(STORM_S)
    (probe,) = workers.ask(("probe", 1), which=[0])
    run.figure("storm_hold_s", probe["held_s"], key=True)
    run.check(
        "storm: one process sees the 429 and its gate holds the shared bucket",
        probe["rate_limited"] and probe["held_s"] > 0,
        f"429 seen: {probe['rate_limited']}, bucket held {probe['held_s']:.3g} s",
        required=True,
    )
    hold_end = probe["at"] + probe["held_s"]
    answers = workers.ask(("load", AFTER_CALLS))
    firsts = [min(a["ok"]) for a in answers if a["ok"]]
    errors = [e for a in answers for e in a["errors"]]
    early = sum(1 for t in firsts if t < hold_end - 0.05)
    run.figure("slowed_processes", len(firsts) - early, key=True)
    run.check(
        "storm: all four processes wait out the hold one of them started",
        len(firsts) == PROCESSES and early == 0,
        f"{len(firsts)} processes answered, {early} admitted before the hold ended; "
        f"first answers {[round(t - probe['at'], 3) for t in sorted(firsts)]} s after the 429",
    )
    run.check(
        "storm: no process meets a 429 after the hold",
        not errors,
        f"{len(errors)} errors {errors[:1]}",
    )


DRILL = Drill(
    name="shared_rate_limit",
    title="4 processes, one account, one Redis gate: no 429; one 429 slows all",
    runbook="§2",
    routine=routine,
    sim_options={"auto_tick": False, "ws": False, "control": False},
    prepare=prepare,
)
