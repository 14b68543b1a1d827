"""Start-up: what a trading script pays before its first order, as whole processes.

What is measured: the wall time of a fresh ``python -c ...`` process that

- ``import``: imports the library and builds its client with credentials
  (``okx_sync.Client(key, secret, passphrase)``; python-okx ``okx.Trade.TradeAPI(...)``;
  ``ccxt.okx({...})``);
- ``first call``: the same, then makes one signed ``GET /api/v5/account/balance?ccy=BTC``
  against a loopback server answering a fixed OKX envelope (``rest_overhead.serve``, in
  its own process, started once).

``python -c pass`` is shown as the interpreter's own floor. Every case runs ``runs``
times, interleaved (one process of each case per round, the order rotating), and the
median is reported. Target (issue 23): okx_sync's import + Client no slower than
python-okx's, in the same interleaved run.

    python benchmarks/startup.py [--runs 9]

``python -X importtime -c "import okx_sync; okx_sync.Client('k', 's', 'p')"`` shows
where okx_sync's own time goes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KEY, SECRET, PASSPHRASE = "bench-key-0000000000000000", "bench-secret", "bench-pass"
_CREDS = f"{KEY!r}, {SECRET!r}, {PASSPHRASE!r}"

# case -> (import + client, the first signed call on it; {base} is the server's URL)
CASES: dict[str, tuple[str, str]] = {
    "okx_sync": (
        f"import okx_sync; c = okx_sync.Client({_CREDS}, base_url='{{base}}')",
        "c.request('GET', '/api/v5/trade/orders-pending')",
    ),
    "python-okx": (
        f"from okx.Trade import TradeAPI; "
        f"c = TradeAPI({_CREDS}, False, '0', domain='{{base}}', debug=False)",
        "c.get_order_list()",
    ),
    "ccxt": (
        f"import ccxt; c = ccxt.okx({{{{'apiKey': {KEY!r}, 'secret': {SECRET!r}, "
        f"'password': {PASSPHRASE!r}}}}}); c.urls['api'] = {{{{'rest': '{{base}}'}}}}",
        "c.privateGetTradeOrdersPending()",
    ),
}
FLOOR = "python -c pass"
OURS, PEER = "okx_sync", "python-okx"


def scripts(base: str) -> dict[str, str]:
    """Label -> the ``-c`` program of each measured process."""
    out = {FLOOR: "pass"}
    for name, (build, call) in CASES.items():
        out[f"{name}: import + client"] = build.format(base=base)
        out[f"{name}: + first signed call"] = f"{build}; {call}".format(base=base)
    return out


def available(name: str) -> str | None:
    """None when ``name``'s package imports here, else why not."""
    module = {"okx_sync": "okx_sync", "python-okx": "okx.Trade", "ccxt": "ccxt"}[name]
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, env=_env()
    )
    return None if done.returncode == 0 else f"not installed ({module}); pip install -e '.[bench]'"


# Bytecode caches for every library measured, written by the warm-up runs: a machine
# with PYTHONDONTWRITEBYTECODE set would otherwise compile okx_sync's sources (a
# checkout) on every start while the peers load their installed .pyc files.
PYCACHE = Path(tempfile.gettempdir()) / "okx_sync-bench-pycache"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    for name in ("PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


def wall(program: str) -> float:
    """Seconds a fresh ``python -c program`` process takes, start to exit."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, env=_env())
    elapsed = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{program!r} failed: {done.stderr.decode()[-300:]}")
    return elapsed


def loopback_server() -> Any:
    """``rest_overhead``'s fixed-envelope HTTP server in its own process (a context
    manager yielding its URL)."""
    import rest_overhead

    return rest_overhead.server_process(str(HERE / "rest_overhead.py"), "--serve", env=_env())


def measure(runs: int) -> tuple[dict[str, float], dict[str, list[float]], dict[str, str]]:
    """Median wall seconds per case over ``runs`` interleaved rounds, the samples, and the
    reason per library that was skipped."""
    skipped = {name: why for name in CASES if (why := available(name))}
    with loopback_server() as base:
        programs = {k: v for k, v in scripts(base).items() if k.split(":")[0] not in skipped}
        for program in programs.values():  # warm the OS file cache, compile .pyc files
            wall(program)
        samples: dict[str, list[float]] = {k: [] for k in programs}
        labels = list(programs)
        for r in range(runs):
            shift = r % len(labels)
            for label in labels[shift:] + labels[:shift]:
                samples[label].append(wall(programs[label]))
    return {k: statistics.median(v) for k, v in samples.items()}, samples, skipped


def main(argv: list[str] | None = None) -> int:
    """Print the table and the target line. Returns 0 (the figures are the output)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="interleaved rounds (median)")
    args = parser.parse_args(argv)
    med, samples, skipped = measure(args.runs)
    for label, value in med.items():
        spread = f"{min(samples[label]):.3f}..{max(samples[label]):.3f}"
        print(f"{label:40s} {value:7.3f} s  [{spread}]")
    for name, why in skipped.items():
        print(f"{name:40s} skipped: {why}")
    ours, peer = med.get(f"{OURS}: import + client"), med.get(f"{PEER}: import + client")
    if ours and peer:
        verdict = "met" if ours <= peer else "MISSED"
        print(f"target okx_sync import + Client <= python-okx's: {ours / peer:.2f}x {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
