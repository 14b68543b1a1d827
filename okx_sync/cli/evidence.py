"""``okx-sync evidence``: print the evidence snapshot of :mod:`okx_sync.ops.evidence` as JSON.

Which client: the configured environment by default (``--live`` / ``--env``:
``Client.from_env()``), or the embedded simulator with ``--sim``. The probes,
the exit codes and the one stderr line for an unreachable host are described
in :mod:`okx_sync.ops.evidence`.

Thread safety: a command-line entry point; run it on one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ..errors import OkxError
from ..ops.evidence import collect_evidence, run_probes
from .console import cli_logging, common_options

__all__ = ["main", "build_parser", "unreachable_line"]


def build_parser() -> argparse.ArgumentParser:
    """The ``okx-sync evidence`` argument parser."""
    p = argparse.ArgumentParser(
        prog="okx-sync evidence",
        description=(
            "Print an evidence snapshot (JSON): versions, redacted configuration, clock "
            "offset, gate and REST stats, recent errors. Default: the client configured by "
            "the OKX_* environment variables (OKX_API_KEY, OKX_SECRET_KEY, OKX_PASSPHRASE, "
            "OKX_DEMO, OKX_BASE_URL); --sim: the embedded simulator."
        ),
        parents=[common_options()],
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--live",
        "--env",
        dest="sim",
        action="store_false",
        help="use the configured environment (OKX_* variables; the default); --live as for "
        "doctor and book",
    )
    where.add_argument("--sim", action="store_true", help="use the embedded simulator")
    p.set_defaults(sim=False)
    p.add_argument(
        "--no-probe",
        dest="probe",
        action="store_false",
        help="send nothing: no clock sync, no account-limit query",
    )
    p.add_argument("--errors", type=int, default=20, help="recent errors to include (default 20)")
    p.add_argument("--indent", type=int, default=2, help="JSON indent (0: one line)")
    p.add_argument("--seed", default="0", help="simulator seed with --sim (default 0)")
    return p


def _root_cause(exc: BaseException) -> str:
    """The innermost cause of ``exc`` as text (``[Errno 111] Connection refused``)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = exc.__cause__ or exc.__context__
        if nxt is None:
            break
        exc = nxt
    return str(exc) or type(exc).__name__


def unreachable_line(base_url: str, exc: BaseException) -> str:
    """The one stderr line for a host that could not be reached. Pure."""
    host = urlsplit(base_url).hostname or base_url
    return (
        f"okx-sync evidence: could not reach {host} ({base_url}): {_root_cause(exc)}. "
        "Offline? `okx-sync evidence --sim` shows the evidence of the embedded simulator; "
        "OKX_BASE_URL chooses another REST host."
    )


def _run(client: Any, args: argparse.Namespace, source: str) -> int:
    with cli_logging(args.verbose):
        probes, unreachable = run_probes(client) if args.probe else ({}, None)
    evidence = collect_evidence(client, last_errors=max(0, args.errors))
    evidence["source"] = source
    evidence["probes"] = probes
    print(json.dumps(evidence, indent=args.indent or None, sort_keys=False))
    if unreachable is not None:
        print(unreachable_line(client.base_url, unreachable), file=sys.stderr)
    return 0 if all(v == "ok" for v in probes.values()) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``okx-sync evidence [--live | --env | --sim] [--no-probe] [--errors N] [--indent N]``.

    Prints the evidence JSON on stdout; returns 0 (probes ok), 1 (a probe
    failed; evidence printed anyway) or 2 (bad usage / bad configuration).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    from ..client import Client

    if args.sim:
        from ..sim import Simulator
        from ..testing import sim_client

        with Simulator(seed=args.seed, auto_tick=False, ws=False) as sim:
            with sim_client(sim) as client:
                return _run(client, args, f"simulator {sim.rest_url}")
    try:
        client = Client.from_env()
    except OkxError as exc:
        print(f"okx-sync evidence: bad OKX_* configuration: {exc}", file=sys.stderr)
        return 2
    with client:
        return _run(client, args, f"environment {client.base_url}")
