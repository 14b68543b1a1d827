"""Running drills: one simulator per drill, and the summary table.

``run_drill(drill, lab=...)`` starts a fresh simulator through the lab's
``simulator_factory`` with the drill's options (or, with ``live_env``, none:
OKX's demo environment), runs the routine, closes what it opened, and checks
that every ``okx-`` thread it started has ended. ``run_drills(names, ...)``
runs several in order. ``okx-sync drill`` (:mod:`okx_sync.cli.drill`) is the
command line; :func:`okx_sync.testing.drill_lab` gives the standard lab.

Thread safety: each call runs its drills on the calling thread; concurrent
calls do not share state (each drill has its own simulator on its own ports).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from ...validators import seconds
from .base import Drill, DrillFailed, DrillLab, DrillResult, DrillRun, DrillSkipped

__all__ = [
    "run_drill",
    "run_drills",
    "format_table",
    "LIVE_ENV_VARS",
    "live_env_problem",
    "THREAD_JOIN_S",
]

log = logging.getLogger("okx_sync.ops.drills")

LIVE_ENV_VARS = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
THREAD_JOIN_S = 3.0  # how long a drill's threads may take to end after it closed them


def _okx_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("okx-")}


def run_drill(
    drill: Drill,
    *,
    lab: DrillLab,
    live_env: Mapping[str, str] | None = None,
    seed: int = 7,
    progress: Callable[[str], None] | None = None,
    thread_join_s: float = THREAD_JOIN_S,
) -> DrillResult:
    """Run one drill and return its result (never raises for a failing drill).

    ``live_env``: run against OKX's demo environment with the keys in this
    mapping (``OKX_API_KEY``, ``OKX_SECRET_KEY``, ``OKX_PASSPHRASE``); a drill
    that is not ``live_safe`` is skipped. Otherwise a simulator seeded with
    ``seed`` (``lab.simulator_factory``) serves the drill; ``lab.client_factory``
    builds its clients. ``progress`` receives each step line. ``thread_join_s``:
    how long the ``okx-`` threads the drill started may take to end once it is
    closed; one still alive then fails the ``threads joined`` check. Raises
    ``ValueError`` for a simulator run with a lab that has no ``simulator_factory``,
    ``ValidationError`` (a ``ValueError``) unless ``thread_join_s`` is a finite number
    >= 0.
    """
    thread_join_s = seconds(thread_join_s, name="thread_join_s")
    live = live_env is not None
    if live and not drill.live_safe:
        return DrillResult(
            name=drill.name,
            passed=True,
            skipped="needs the simulator's fault injection (not run with --live)",
            live=True,
        )
    if not live and lab.simulator_factory is None:
        raise ValueError("run_drill needs lab.simulator_factory unless live_env is given")
    before = _okx_threads()
    started = time.monotonic()
    error = ""
    sim = None
    run = DrillRun(drill.name, lab=lab, live_env=live_env, progress=progress)
    try:
        if lab.simulator_factory is not None and not live:
            sim = lab.simulator_factory(seed=seed, **dict(drill.sim_options))
            run.sim = sim
        try:
            drill.routine(run)
        except DrillFailed:
            pass  # the failed check is recorded; later steps depended on it
        except DrillSkipped as exc:
            return DrillResult(name=drill.name, passed=True, skipped=str(exc), live=live)
        finally:
            run.close()
    except Exception as exc:  # an unexpected failure is a drill result, not a crash
        error = f"{type(exc).__name__}: {exc}"
        run.step(f"ERROR {error}")
    finally:
        if sim is not None:
            sim.close()
    # Live, a simulator in this process is someone else's stand-in for OKX: its
    # per-connection threads are not the drill's to join.
    leftover = _wait_threads_gone(before, thread_join_s, ignore="okx-sim" if live else None)
    run.check(
        "threads joined",
        not leftover,
        f"{len(leftover)} left: {', '.join(sorted(leftover))}" if leftover else "none left",
    )
    return run.result(time.monotonic() - started, error)


def _wait_threads_gone(
    before: set[threading.Thread], timeout_s: float, ignore: str | None
) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        extra = [
            t
            for t in _okx_threads() - before
            if t.is_alive() and not (ignore and t.name.startswith(ignore))
        ]
        if not extra or time.monotonic() >= deadline:
            return [t.name for t in extra]
        time.sleep(0.02)


def run_drills(
    names: Iterable[str],
    *,
    drills: Mapping[str, Drill],
    lab: DrillLab,
    live_env: Mapping[str, str] | None = None,
    seed: int = 7,
    on_start: Callable[[int, int, Drill], None] | None = None,
    on_done: Callable[[int, int, DrillResult], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[DrillResult]:
    """Run the named drills in order; returns their results.

    First (not with ``live_env``) it calls the ``prepare(lab)`` of every chosen drill
    that has one (see :class:`~okx_sync.ops.drills.base.Drill`).
    ``on_start(i, n, drill)`` / ``on_done(i, n, result)`` report progress
    (1-based ``i``). Raises ``KeyError`` for an unknown name (before running any).
    """
    chosen = [drills[name] for name in names]
    if live_env is None:
        for drill in chosen:
            if drill.prepare is not None:
                _prepare(drill, lab)
    results = []
    for i, drill in enumerate(chosen, 1):
        if on_start is not None:
            on_start(i, len(chosen), drill)
        result = run_drill(drill, lab=lab, live_env=live_env, seed=seed, progress=progress)
        if on_done is not None:
            on_done(i, len(chosen), result)
        results.append(result)
    return results


def _prepare(drill: Drill, lab: DrillLab) -> None:
    """Start what ``drill`` prepares; a failure is left for the drill itself to meet."""
    assert drill.prepare is not None
    try:
        drill.prepare(lab)
    except Exception as exc:  # only a head start: the drill's own run reports the problem
        log.debug("drill %s: prepare failed: %r", drill.name, exc)


def format_table(results: Sequence[DrillResult]) -> str:
    """The summary table: drill, result, time, key figures; failed checks listed below."""
    rows = [("drill", "result", "time", "key figures")]
    for r in results:
        figures = r.skipped if r.skipped else r.key_figures()
        rows.append((r.name, r.result, f"{r.duration_s:.1f}s", figures))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}"
        for row in rows
    ]
    lines.insert(1, "-" * min(100, max(len(line) for line in lines)))
    for r in results:
        for check in r.failed_checks():
            lines.append(f"  {r.name}: FAILED {check.name}: {check.detail}")
        if r.error:
            lines.append(f"  {r.name}: ERROR {r.error}")
    passed = sum(1 for r in results if r.passed and not r.skipped)
    skipped = sum(1 for r in results if r.skipped)
    failed = len(results) - passed - skipped
    total = sum(r.duration_s for r in results)
    tail = f"{passed} passed, {failed} failed"
    if skipped:
        tail += f", {skipped} skipped"
    lines.append(f"{tail} in {total:.1f}s")
    return "\n".join(lines)


def live_env_problem(env: Mapping[str, str]) -> str:
    """Why ``--live`` must not run with ``env`` ("" when it may): missing keys, or CI."""
    missing = [name for name in LIVE_ENV_VARS if not env.get(name)]
    if missing:
        return f"--live needs {', '.join(missing)} in the environment (OKX demo-trading key)"
    if env.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return "--live never runs in CI (CI is set)"
    return ""
