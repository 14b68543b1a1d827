"""``okx-sync sim`` / ``python -m okx_sync sim``: serve the simulator standalone.

Prints the URLs and both credentials (this is a local test exchange; the keys
exist only in this process), then serves until interrupted (Ctrl-C) or for
``--run-for`` seconds. ``--json`` prints one JSON object instead of text; ``--env``
prints ready-to-paste ``export OKX_...=`` lines (shell-quoted) for ``Client.from_env()``,
``okx-sync doctor --live`` and the examples' ``--live`` (``--env demo``: the demo key).
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    p = argparse.ArgumentParser(
        prog="okx-sync sim", description="Serve the local OKX simulator (127.0.0.1 only)."
    )
    p.add_argument("--seed", default="0", help="seed for everything random (default 0)")
    p.add_argument("--checksum", choices=("crc32", "zero"), default="crc32")
    p.add_argument(
        "--instruments", default="", help="comma-separated instIds or types (default: all)"
    )
    p.add_argument(
        "--tick-interval", type=float, default=0.05, help="market-maker step period, s (0.05)"
    )
    p.add_argument("--book-interval", type=float, default=0.1, help="book publish period, s (0.1)")
    p.add_argument("--idle-timeout", type=float, default=30.0, help="WS idle close after, s (30)")
    p.add_argument("--account-order-limit", type=int, default=1000)
    p.add_argument("--no-rate-limits", action="store_true", help="do not enforce rate limits")
    p.add_argument("--tls", action="store_true", help="https/wss with a self-signed certificate")
    p.add_argument("--run-for", type=float, default=None, help="stop after this many seconds")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the endpoints as one JSON object")
    out.add_argument(
        "--env",
        nargs="?",
        const="live",
        choices=("live", "demo"),
        help="print `export OKX_...=` lines for Client.from_env (the live key, or demo)",
    )
    return p


def env_lines(env: dict[str, str]) -> list[str]:
    """``export NAME=value`` lines, each value quoted for a POSIX shell. Pure."""
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    from ..sim import Simulator

    seed: int | str = int(args.seed) if args.seed.lstrip("-").isdigit() else args.seed
    instruments = [i.strip() for i in args.instruments.split(",") if i.strip()] or None
    if args.env and args.tls:
        print(
            "okx-sync sim: --env cannot be combined with --tls "
            "(no OKX_* variable carries the self-signed certificate)",
            file=sys.stderr,
        )
        return 2
    try:
        sim = Simulator(
            seed=seed,
            instruments=instruments,
            checksum=args.checksum,
            tick_interval_s=args.tick_interval,
            book_interval_s=args.book_interval,
            idle_timeout_s=args.idle_timeout,
            account_order_limit=args.account_order_limit,
            rate_limits=not args.no_rate_limits,
            tls=args.tls,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"okx-sync sim: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    with sim:
        info = {
            "rest_url": sim.rest_url,
            "ws_public_url": sim.ws_public_url,
            "ws_private_url": sim.ws_private_url,
            "ws_business_url": sim.ws_business_url,
            "control_url": sim.control_url,
            "control_token": sim.control_token,
            "cert_path": sim.cert_path,
            "live": {
                "api_key": sim.credentials.live.api_key,
                "secret_key": sim.credentials.live.secret_key,
                "passphrase": sim.credentials.live.passphrase,
                "uid": sim.credentials.live_uid,
            },
            "demo": {
                "api_key": sim.credentials.demo.api_key,
                "secret_key": sim.credentials.demo.secret_key,
                "passphrase": sim.credentials.demo.passphrase,
                "uid": sim.credentials.demo_uid,
                "header": "x-simulated-trading: 1",
            },
            "instruments": sorted(sim.exchange.specs),
        }
        if args.json:
            print(json.dumps(info), flush=True)
        elif args.env:
            print("# OKX simulator (local, loopback only): paste these lines into a shell")
            print("\n".join(env_lines(sim.env(demo=args.env == "demo"))))
            print("# serving until Ctrl-C", flush=True)
        else:
            print("OKX simulator (local, loopback only)")
            for name in (
                "rest_url",
                "ws_public_url",
                "ws_private_url",
                "ws_business_url",
                "control_url",
            ):
                print(f"  {name:<16} {info[name]}")
            print(f"  {'control_token':<16} {sim.control_token} (in control_url; keep it private)")
            if sim.cert_path:
                print(f"  {'cert_path':<16} {sim.cert_path}")
            for env in ("live", "demo"):
                c = info[env]
                assert isinstance(c, dict)
                print(
                    f"  {env} key: api_key={c['api_key']} secret_key={c['secret_key']} "
                    f"passphrase={c['passphrase']} uid={c['uid']}"
                )
            print("  demo requests need the header x-simulated-trading: 1")
            print(f"  instruments: {', '.join(info['instruments'])}")  # type: ignore[arg-type]
            print("Ctrl-C to stop.", flush=True)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait(args.run_for)
        except KeyboardInterrupt:
            pass
    return 0
