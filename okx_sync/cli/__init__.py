"""The ``okx-sync`` command line (also ``python -m okx_sync``).

Every command-line entry point, argument parser and ``print`` of okx_sync lives
in this package (``okx_sync/cli/``); the library (``ops``, ``sim``, the
clients) returns data and never prints. This module only routes:
``okx-sync COMMAND [ARGS...]`` calls ``okx_sync.cli.COMMAND``'s ``main(argv)``
and exits with its return code. It is also the one layer that may import both
``Client`` and the simulator: the commands build them and pass them to ``ops``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "COMMANDS"]

# command -> (module:function, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("okx_sync.cli.demo:main", "start the embedded simulator and run a short tour"),
    "sim": ("okx_sync.cli.sim:main", "serve the local OKX simulator and print its URLs"),
    "drill": ("okx_sync.cli.drill:main", "run the runbook drills against the simulator"),
    "evidence": ("okx_sync.cli.evidence:main", "print an evidence snapshot (JSON)"),
    "doctor": ("okx_sync.cli.doctor:main", "check clock skew, credentials, limits, latency, WS"),
    "book": ("okx_sync.cli.book:main", "live top-of-book view of one instrument"),
    "bench": ("okx_sync.cli.bench:main", "run the side-by-side benchmarks"),
}


def _usage() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = ["usage: okx-sync COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "okx-sync COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Route to a sub-command; returns its exit code (2 for usage errors)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0 if args else 2
    if args[0] in {"--version", "version"}:
        from .._version import __version__

        print(f"okx_sync {__version__}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        print(f"okx-sync: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    target, _ = COMMANDS[name]
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("okx_sync"):
            print(
                f"okx-sync {name}: not available in this build ({exc.name} missing)",
                file=sys.stderr,
            )
            return 2
        raise
    code = getattr(module, func_name)(args[1:])
    return int(code or 0)
