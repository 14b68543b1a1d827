"""``okx-sync drill [NAME|all ...] [--live] [--json] [--list] [-v]``: run the runbook drills.

Builds the standard :func:`okx_sync.testing.drill_lab` (a fresh simulator per
drill, ``okx_sync.Client``), runs :func:`okx_sync.ops.drills.run_drills` and
prints the summary table (``--json``: the results). Progress goes to stderr.

Thread safety: a command-line entry point; run it on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from ..ops.drills import DRILLS
from ..ops.drills.base import Drill, DrillResult
from ..ops.drills.runner import format_table, live_env_problem, run_drills
from .console import cli_logging, common_options

__all__ = ["main", "build_parser"]


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
        parents=[
            common_options(
                json_help="print the results as JSON", verbose_help="print every step and check"
            )
        ],
    )
    p.add_argument("names", nargs="*", default=["all"], metavar="NAME", help="drill(s) or all")
    p.add_argument("--list", action="store_true", help="list the drills and exit")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
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


def main(argv: Sequence[str] | None = None, drills: Mapping[str, Drill] = DRILLS) -> int:
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
        from ..auth import redact_key

        print(
            "LIVE: OKX demo trading (x-simulated-trading: 1), key "
            f"{redact_key(live_env['OKX_API_KEY'])}; only live-safe drills run",
            file=sys.stderr,
        )
    progress = _Progress(sys.stderr, args.verbose)
    from ..testing import drill_lab

    with cli_logging(args.verbose):
        results = run_drills(
            names,
            drills=drills,
            lab=drill_lab(),
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
