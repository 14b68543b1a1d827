"""Running drills: one simulator per drill, the summary table, and ``okx-sync drill``.

``run_drill(drill)`` starts a fresh :class:`~okx_sync.sim.Simulator` with the
drill's options (or, with ``live=True``, none: OKX's demo environment), runs
the routine, closes what it opened, and checks that every ``okx-`` thread it
started has ended. ``run_drills(names)`` runs several in order. ``main(argv)``
is the command line (see :func:`build_parser`).

Thread safety: each call runs its drills on the calling thread; concurrent
calls do not share state (each drill has its own simulator on its own ports).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

from ..console import cli_logging
from .base import Drill, DrillFailed, DrillResult, DrillRun

__all__ = [
    "run_drill",
    "run_drills",
    "format_table",
    "build_parser",
    "main",
    "LIVE_ENV_VARS",
    "live_env_problem",
]

LIVE_ENV_VARS = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
_THREAD_JOIN_S = 3.0


def _okx_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("okx-")}


def run_drill(
    drill: Drill,
    *,
    live_env: Mapping[str, str] | None = None,
    seed: int = 7,
    progress: Callable[[str], None] | None = None,
) -> DrillResult:
    """Run one drill and return its result (never raises for a failing drill).

    ``live_env``: run against OKX's demo environment with the keys in this
    mapping (``OKX_API_KEY``, ``OKX_SECRET_KEY``, ``OKX_PASSPHRASE``); a drill
    that is not ``live_safe`` is skipped. Otherwise a simulator seeded with
    ``seed`` serves the drill. ``progress`` receives each step line.
    """
    live = live_env is not None
    if live and not drill.live_safe:
        return DrillResult(
            name=drill.name,
            passed=True,
            skipped="needs the simulator's fault injection (not run with --live)",
            live=True,
        )
    before = _okx_threads()
    started = time.monotonic()
    error = ""
    sim = None
    run = DrillRun(drill.name, live_env=live_env, progress=progress)
    try:
        if not live:
            from ...sim import Simulator

            sim = Simulator(seed=seed, **dict(drill.sim_options))
            run.sim = sim
        try:
            drill.routine(run)
        except DrillFailed:
            pass  # the failed check is recorded; later steps depended on it
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
    leftover = _wait_threads_gone(before, ignore="okx-sim" if live else None)
    run.check(
        "threads joined",
        not leftover,
        f"{len(leftover)} left: {', '.join(sorted(leftover))}" if leftover else "none left",
    )
    return run.result(time.monotonic() - started, error)


def _wait_threads_gone(before: set[threading.Thread], ignore: str | None) -> list[str]:
    deadline = time.monotonic() + _THREAD_JOIN_S
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
    live_env: Mapping[str, str] | None = None,
    seed: int = 7,
    on_start: Callable[[int, int, Drill], None] | None = None,
    on_done: Callable[[int, int, DrillResult], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[DrillResult]:
    """Run the named drills in order; returns their results.

    ``on_start(i, n, drill)`` / ``on_done(i, n, result)`` report progress
    (1-based ``i``). Raises ``KeyError`` for an unknown name (before running any).
    """
    chosen = [drills[name] for name in names]
    results = []
    for i, drill in enumerate(chosen, 1):
        if on_start is not None:
            on_start(i, len(chosen), drill)
        result = run_drill(drill, live_env=live_env, seed=seed, progress=progress)
        if on_done is not None:
            on_done(i, len(chosen), result)
        results.append(result)
    return results


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


def build_parser(drills: Mapping[str, Drill]) -> argparse.ArgumentParser:
    """The ``okx-sync drill`` argument parser."""
    names = ", ".join(drills)
    p = argparse.ArgumentParser(
        prog="okx-sync drill",
        description=(
            "Run the runbook drills (§7): each injects a real fault into the embedded "
            "OKX simulator, drives the client through it and checks the recovery with "
            f"figures. Drills: {names}. Exit code 0 when every drill passed, 1 otherwise."
        ),
    )
    p.add_argument("names", nargs="*", default=["all"], metavar="NAME", help="drill(s) or all")
    p.add_argument("--list", action="store_true", help="list the drills and exit")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every step and check")
    p.add_argument(
        "--live",
        action="store_true",
        help=(
            "run the live-safe drills against OKX's DEMO environment "
            "(x-simulated-trading: 1) with OKX_API_KEY/OKX_SECRET_KEY/OKX_PASSPHRASE "
            "from the environment; never in CI"
        ),
    )
    return p


class _Progress:
    """Progress on stderr: in place on a terminal, plain lines otherwise."""

    def __init__(self, stream: IO[str], verbose: bool) -> None:
        self.stream = stream
        self.verbose = verbose
        self.tty = stream.isatty()
        self.prefix = ""

    def start(self, i: int, n: int, drill: Drill) -> None:
        self.prefix = f"[{i}/{n}] {drill.name}"
        self._line(f"{self.prefix}: {drill.title}", final=not self.tty)

    def step(self, text: str) -> None:
        if self.verbose:
            self._line(f"{self.prefix}: {text}", final=True)
        elif self.tty:
            self._line(f"{self.prefix}: {text}", final=False)

    def done(self, i: int, n: int, result: DrillResult) -> None:
        self._line(f"[{i}/{n}] {result.name}: {result.result} ({result.duration_s:.1f}s)", True)

    def _line(self, text: str, final: bool) -> None:
        if self.tty:
            width = max(20, shutil.get_terminal_size().columns - 1)
            self.stream.write("\r\033[K" + text[:width] + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def main(argv: Sequence[str] | None, drills: Mapping[str, Drill]) -> int:
    """``okx-sync drill [NAME|all ...] [--live] [--json] [--list] [-v]``; returns the exit
    code: 0 all passed, 1 a drill failed, 2 usage error or ``--live`` refused."""
    parser = build_parser(drills)
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.list:
        for drill in drills.values():
            live = "live-safe" if drill.live_safe else "sim only"
            print(f"{drill.name:<16} {drill.runbook:<5} {live:<9}  {drill.title}")
        return 0
    names: list[str] = []
    for name in args.names:
        if name == "all":
            names.extend(n for n in drills if n not in names)
        elif name not in drills:
            print(
                f"okx-sync drill: unknown drill {name!r} (choose from {', '.join(drills)}, all)",
                file=sys.stderr,
            )
            return 2
        elif name not in names:
            names.append(name)
    live_env: dict[str, str] | None = None
    if args.live:
        problem = live_env_problem(os.environ)
        if problem:
            print(f"okx-sync drill: {problem}", file=sys.stderr)
            return 2
        live_env = dict(os.environ)
        from ...auth import redact_key

        print(
            "LIVE: OKX demo trading (x-simulated-trading: 1), key "
            f"{redact_key(live_env['OKX_API_KEY'])}; only live-safe drills run",
            file=sys.stderr,
        )
    progress = _Progress(sys.stderr, args.verbose)
    with cli_logging(args.verbose):
        results = run_drills(
            names,
            drills=drills,
            live_env=live_env,
            seed=args.seed,
            on_start=progress.start,
            on_done=progress.done,
            progress=progress.step,
        )
    if args.json:
        out: dict[str, Any] = {
            "passed": all(r.passed for r in results),
            "live": args.live,
            "drills": [r.to_dict() for r in results],
        }
        print(json.dumps(out, indent=2, default=str))
    else:
        print(format_table(results))
    return 0 if all(r.passed for r in results) else 1
