"""``okx-sync demo`` / ``python -m okx_sync demo``: a short tour against the embedded simulator.

Starts :class:`~okx_sync.sim.Simulator` on 127.0.0.1 and runs
:func:`okx_sync.ops.demo.run_tour` with one :class:`~okx_sync.Client` pointed
at it, printing each step (``--json``: one JSON object instead). Exits 0 on its
own within a few seconds; 1 when a step failed (the error is printed), 2 for a
bad option.

Thread safety: a command-line entry point; run it on one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from ..ops.demo import INST_ID, run_tour
from .console import cli_logging, common_options

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``okx-sync demo`` argument parser."""
    p = argparse.ArgumentParser(
        prog="okx-sync demo",
        description=(
            "Start the embedded OKX simulator (127.0.0.1) and take a short tour: REST calls, "
            "a WS ticker stream and order book, an order placed and cancelled with its "
            "private updates. Prints what it did and exits."
        ),
        parents=[common_options(json_help="print one JSON object of what happened")],
    )
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument("--inst-id", default=INST_ID, help=f"spot instrument (default {INST_ID})")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``okx-sync demo``; returns 0 when the tour completed, 1 when a step failed,
    2 for a bad option."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    from ..sim import Simulator
    from ..testing import sim_client

    lines: list[str] = []

    def say(text: str) -> None:
        lines.append(text)
        if not args.json:
            print(text, flush=True)

    started = time.monotonic()
    with cli_logging(args.verbose):
        try:
            with Simulator(seed=args.seed) as sim:
                spot = sorted(i for i, s in sim.exchange.specs.items() if s.inst_type == "SPOT")
                if args.inst_id not in spot:
                    print(
                        f"okx-sync demo: --inst-id must be a spot instrument of the simulator: "
                        f"{', '.join(spot)}",
                        file=sys.stderr,
                    )
                    return 2
                say(
                    f"okx_sync demo: a tour against the embedded OKX simulator "
                    f"(seed {args.seed}, loopback only)"
                )
                say(f"  REST {sim.rest_url}   WS {sim.ws_public_url.rsplit('/', 1)[0]}/...")
                with sim_client(sim) as client:
                    result = run_tour(client, args.inst_id, say).data
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            if args.json:
                print(json.dumps({"ok": False, "error": message, "lines": lines}))
            else:
                print(f"demo failed: {message}", file=sys.stderr)
            return 1
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({"ok": True, **result, "lines": lines}, default=str))
    else:
        print(
            f"Done in {elapsed:.1f} s. Next: okx-sync drill all | okx-sync doctor | okx-sync book {args.inst_id}"
        )
    return 0
