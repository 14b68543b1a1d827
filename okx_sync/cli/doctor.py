"""``okx-sync doctor``: run :func:`okx_sync.ops.doctor.run_checks`, then print ``client.health()``.

Where: the embedded simulator by default (a fresh one, its live key); with
``--live`` the configured environment (``Client.from_env()``: ``OKX_API_KEY``,
``OKX_SECRET_KEY``, ``OKX_PASSPHRASE``, ``OKX_DEMO``, ``OKX_BASE_URL``,
``OKX_WS_PUBLIC_URL`` / ``OKX_WS_PRIVATE_URL``; every check only reads).
Without credentials the signed checks are skipped. ``--json`` prints one
object. Exit code 0 when nothing failed, 1 otherwise, 2 for usage errors.

Thread safety: a command-line entry point; run it on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import OkxError
from ..ops.doctor import Finding, run_checks
from .console import cli_logging, common_options

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``okx-sync doctor`` argument parser."""
    p = argparse.ArgumentParser(
        prog="okx-sync doctor",
        description=(
            "Check clock skew, credentials, the account rate limit, REST latency and the WS "
            "ping round trip, then print client.health(). Against the embedded simulator by "
            "default; --live uses the configured environment (OKX_* variables; reads only)."
        ),
        parents=[common_options(json_help="print the findings as one JSON object")],
    )
    p.add_argument("--live", action="store_true", help="check the configured OKX environment")
    p.add_argument("--samples", type=int, default=5, help="REST / WS round trips (default 5)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``okx-sync doctor``; returns 0 when no check failed, 1 otherwise, 2 for usage
    errors (bad options, bad environment)."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    if args.samples < 1:
        print("okx-sync doctor: --samples must be >= 1", file=sys.stderr)
        return 2
    from ..auth import Credentials, redact_key
    from ..client import Client

    def show(finding: Finding) -> None:
        if not args.json:
            print(f"  {finding.name:<19} {finding.status:<5} {finding.detail}", flush=True)

    with cli_logging(args.verbose):
        sim = None
        try:
            if args.live:
                try:
                    client = Client.from_env()
                except OkxError as exc:
                    print(f"okx-sync doctor: {exc}", file=sys.stderr)
                    return 2
                creds = Credentials.from_parts(
                    os.environ.get("OKX_API_KEY") or None,
                    os.environ.get("OKX_SECRET_KEY") or None,
                    os.environ.get("OKX_PASSPHRASE") or None,
                )
                where = f"{'OKX demo' if client.demo else 'OKX'} at {client.base_url}"
            else:
                from ..sim import Simulator
                from ..testing import sim_client

                sim = Simulator(seed=7)
                client = sim_client(sim)
                creds = sim.credentials.live
                where = f"the embedded simulator at {sim.rest_url}"
            with client:
                key = redact_key(creds.api_key) if creds else "no key"
                if not args.json:
                    print(f"okx-sync doctor: {where} ({key})", flush=True)
                opened: list[Any] = []
                try:
                    findings = run_checks(
                        client,
                        has_credentials=creds is not None,
                        samples=args.samples,
                        report=show,
                        opened=opened,
                    )
                    health = client.health()  # with the WS clients of the checks running
                finally:
                    for ws in opened:
                        ws.close()
        finally:
            if sim is not None:
                sim.close()
    failed = [f for f in findings if f.status == "fail"]
    if args.json:
        print(
            json.dumps(
                {
                    "where": where,
                    "ok": not failed,
                    "findings": [f.to_dict() for f in findings],
                    "health": health.to_dict(),
                },
                default=str,
            )
        )
    else:
        from ..ops.health import format_health

        print("health (client.health())")
        for line in format_health(health).splitlines():
            print(f"  {line}")
        print("all checks passed" if not failed else f"{len(failed)} check(s) failed")
    return 1 if failed else 0
