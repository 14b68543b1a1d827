"""Every non-GUI example runs against the embedded simulator, ends by itself, says what it did.

Each example is a subprocess (``python examples/NAME.py`` with its defaults, i.e. the
simulator; then each with ``--live`` against a simulator standing in for OKX; then the
refusals of bad options). Every one of them is started in the background by the first
test that needs one, the slowest first, a few at a time, so the module costs about the
time of the slowest run (the dead-man timer's 10 s), not the sum. Each test checks the
exit code, that nothing went to stderr unexpectedly, and the lines the example must
print (regular expressions, in order).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_TIMEOUT = 45.0  # s; an example runs a few seconds, this only bounds a hang
# The runs started first (the longest: most of each is waiting, for OKX's shortest
# dead-man timer, for an expTime, for the run's --seconds), longest first.
SLOW = [
    "safe_mode_and_dead_man --fire",
    "legacy_strategy",
    "managed_order_book",
    "live legacy_strategy",
    "reconcile",
    "live managed_order_book",
    "safe_mode_and_dead_man",
    "live safe_mode_and_dead_man",
]
WORKERS = 4  # runs at a time: 2 cores, but each run mostly waits

# run id ("example" or "example variant") -> (extra args, regular expressions its stdout
# must match, in this order)
EXPECTED: dict[str, tuple[list[str], list[str]]] = {
    "quickstart_rest": (
        [],
        [
            r"^venue: simulator rest=http://127\.0\.0\.1:\d+ control=http://127\.0\.0\.1:\d+/[\w-]{20,}$",
            r"^ticker BTC-USDT: last=\d+(\.\d+)? bid=\d+(\.\d+)? ask=\d+(\.\d+)?$",
            r"^  ask +\d",
            r"^  bid +\d",
            r"^instrument BTC-USDT: tick=0\.1 lot=0\.00000001 min=0\.00001$",
            r"^balance USDT: available 100000$",
            r"^placed ordId=\d+ clOrdId=qs[0-9a-z]+ px=\d+(\.\d)? sz=0\.00001$",
            r"^order state: live$",
            r"^cancelled: state=canceled$",
            r"^REST stats: \d+ requests on simulator$",
        ],
    ),
    "stream_tickers": (
        ["--count", "6"],
        [
            r"^venue: simulator ",
            *[r"^ticker (BTC|ETH)-USDT: last=\d+(\.\d+)? bid=\d+(\.\d+)? ask=\d+(\.\d+)?$"] * 6,
            r"^got \d+ tickers; ws messages=\d+ reconnects=0 handler_errors=0$",
        ],
    ),
    "managed_order_book": (
        ["--seconds", "2"],
        [
            r"^book BTC-USDT in sync at seqId \d+$",
            r"^seqId=\d+ bid \S+ @ \d+(\.\d)?  ask \S+ @ \d+(\.\d)?$",
            r"^injected: sequence gap$",
            r"^resync: OrderBookSequenceError: ",
            r"^seqId=\d+ bid ",
            r"^done: in_sync=True resyncs=1 updates=\d+ snapshots=2 errors=\{'sequence': 1, ",
        ],
    ),
    "private_orders_stream": (
        [],
        [
            r"^placed ordId=\d+$",
            r"^seen: live$",
            r"^seen: canceled$",
            r"^private ws: messages=\d+ connects=1 reconnects=0$",
        ],
    ),
    "ws_order_entry": (
        [],
        [
            r"^refused locally \(tickSz\): BTC-USDT: price \S+ is not a multiple of tickSz 0\.1",
            r"^placed ordId=\d+ in \d+\.\d ms$",
            r"^amended ordId=\d+ sCode=0 to px=\d+\.\d$",
            r"^cancel accepted ordId=\d+ sCode=0$",
            # the simulator, like OKX, prints prices without trailing zeros (56999, 56999.1)
            r"^order now: state=canceled px=\d+(\.\d)?$",
            r"^refused by OKX: sCode=51400 ",
        ],
    ),
    "reconcile": (
        [],
        [
            r"^injected: the next order's answer is lost \(50004\)$",
            r"^order [0-9a-z]+: resolved by query, state=live ordId=\d+ sends=1$",
            r"^  uncertain: APIError: OKX error 50004",
            r"^snapshot in \d+ ms: 1 pending order\(s\), 0 fill\(s\), USDT avail=\d",
            r"^our order in the snapshot: live$",
            r"^resolve ghost[0-9a-z]+: found=False after 2 queries$",
            r"^after cancel: 0 pending order\(s\)$",
        ],
    ),
    "safe_mode_and_dead_man": (
        [],
        [
            r"^dead-man switch armed: timeout=10s refresh every 2(\.0)?s$",
            r"^placed 3 orders; pending: 3$",
            r"^safe mode on \(example: error burst\): drained=True cancelled 3 of 3 pending, "
            r"failed 0$",
            r"^placement refused before sending: SafeModeError$",
            r"^pending after the sweep: 0; refused so far: 1$",
            r"^reconciled: 0 pending, 0 fills$",
            r"^safe mode off: placed ordId=\d+$",
            r"^switch: running=False armed=False refreshes=\d+$",
        ],
    ),
    # the dead-man switch firing: OKX's shortest timer is 10 s, so this run takes ~12 s
    "safe_mode_and_dead_man --fire": (
        ["--fire"],
        [
            r"^safe mode off: placed ordId=\d+$",
            r"^switch stopped without disarming; waiting for OKX's timer\.\.\.$",
            r"^timer fired: order canceled, cancelSource=20$",
            r"^switch: running=False armed=True refreshes=\d+$",
        ],
    ),
    "python_okx_strategy": (
        [],
        [
            r"^venue: simulator rest=http://127\.0\.0\.1:\d+$",
            r"^balance USDT: available 100000$",
            r"^answers: ok=33 rate_limited=0 other=\{\}$",
        ],
    ),
    "legacy_strategy": (
        [],
        [
            r"^quote placed at \d+\.\d$",
            r"^injected: private connection dropped \(1\)$",
            r"^private ws reconnected: reconcile before the next order$",
            r"^reconciled: 1 pending; our quote: (live at \d+(\.\d)?|gone)$",
            r"^injected: amends answer HTTP 500$",
            r"^error: APIError: OKX error 50026",
            r"^safe mode: 3 errors in 10 s; cancelled 1$",
            r"^done: \{'placed': \d+, 'amended': \d+, 'reconciled': 1, 'errors': 3\}; "
            r"safe mode: '3 errors in 10 s'; pending: 0$",
        ],
    ),
}


def _run(
    name: str, args: list[str], extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKX_")}
    env.update(extra_env or {})  # the default run must not need (or touch) real credentials
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=env,
        cwd=EXAMPLES.parent,
        check=False,
    )


def _needed(item: pytest.Item) -> list[str]:
    """The runs (ids as in ``started``) whose results test ``item`` checks."""
    run = getattr(getattr(item, "callspec", None), "params", {}).get("run")
    return {
        "test_example_runs_against_the_simulator": [run],
        "test_ws_order_entry_order_keeps_the_amended_price": ["ws_order_entry"],
        "test_demo_needs_live": ["refuse --demo"],
        "test_live_without_credentials_says_what_is_missing": ["refuse --live"],
        "test_live_flag_uses_the_environment": [f"live {run}"],
        "test_public_example_refuses_a_partial_key": ["refuse partial key"],
    }.get(getattr(item, "originalname", ""), [])


@pytest.fixture(scope="module")
def started(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[Any]]]:
    """The subprocesses of this module that the selected tests check, started in the
    background, ``WORKERS`` at a time, the ``SLOW`` ones first: run id -> its future.
    The simulator runs are named as in ``EXPECTED``, the ``--live`` runs ``"live "`` +
    their ``LIVE`` id, the refusals as in ``REFUSALS``. Tests collect the results.
    """
    import okx_sync.sim  # noqa: F401 - imported here once, not by several threads at once

    jobs: dict[str, Callable[[], Any]] = {}
    for run in EXPECTED:
        jobs[run] = functools.partial(_run, run.split()[0], EXPECTED[run][0])
    for run in LIVE:
        jobs[f"live {run}"] = functools.partial(_live_run, run)
    for run, (name, args, env) in REFUSALS.items():
        jobs[run] = functools.partial(_run, name, args, env)
    mine = [i for i in request.session.items if i.path == request.path]
    needed = {run for item in mine for run in _needed(item)}
    order = sorted(needed, key=lambda run: (SLOW.index(run) if run in SLOW else len(SLOW),
                                            list(jobs).index(run)))  # fmt: skip
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="examples") as pool:
        yield {run: pool.submit(jobs[run]) for run in order}


@pytest.fixture(scope="module")
def runs(started):
    """The simulator runs started: ``EXPECTED``'s id -> future of the CompletedProcess."""
    return {run: started[run] for run in EXPECTED if run in started}


def assert_lines_in_order(stdout: str, patterns: list[str]) -> None:
    lines = stdout.splitlines()
    at = 0
    for pattern in patterns:
        rx = re.compile(pattern)
        for i in range(at, len(lines)):
            if rx.search(lines[i]):
                at = i + 1
                break
        else:
            raise AssertionError(f"no line after line {at} matches {pattern!r}:\n{stdout}")


def test_every_example_is_covered():
    on_disk = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    assert on_disk - {"gui_trader"} == {run.split()[0] for run in EXPECTED}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("run", list(EXPECTED))
def test_example_runs_against_the_simulator(runs, run):
    result = runs[run].result(timeout=RUN_TIMEOUT * len(EXPECTED))
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert_lines_in_order(result.stdout, EXPECTED[run][1])


def test_ws_order_entry_order_keeps_the_amended_price(runs):
    out = runs["ws_order_entry"].result(timeout=RUN_TIMEOUT * len(EXPECTED)).stdout
    amended = re.search(r"^amended ordId=\d+ sCode=0 to px=(\S+)$", out, re.M)
    now = re.search(r"^order now: state=canceled px=(\S+)$", out, re.M)
    assert amended and now, out
    assert Decimal(now.group(1)) == Decimal(amended.group(1)), out


# the runs that must refuse their options: id -> (example, args, environment)
REFUSALS: dict[str, tuple[str, list[str], dict[str, str]]] = {
    "refuse --demo": ("quickstart_rest", ["--demo"], {}),
    "refuse --live": ("quickstart_rest", ["--live"], {}),
    "refuse partial key": (
        "stream_tickers",
        ["--live"],
        {"OKX_API_KEY": "only-the-key", "OKX_BASE_URL": "http://127.0.0.1:1"},
    ),
}


def _refusal(started: dict[str, Future[Any]], run: str) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = started[run].result(timeout=RUN_TIMEOUT * 4)
    return result


@pytest.mark.timeout(120)
def test_demo_needs_live(started):
    result = _refusal(started, "refuse --demo")
    assert result.returncode != 0
    assert "--demo goes with --live" in result.stderr


@pytest.mark.timeout(120)
def test_live_without_credentials_says_what_is_missing(started):
    result = _refusal(started, "refuse --live")
    assert result.returncode != 0
    assert "OKX_API_KEY, OKX_SECRET_KEY, OKX_PASSPHRASE" in result.stderr


# --live: OKX_* point at a simulator standing in for OKX (REST and the three WS URLs), so
# each example talks to "OKX" through the live path: no fault is injected, nothing is
# simulator-only. run -> (args after --live, needs a key, lines its stdout must match)
VENUE = r"^venue: OKX (live|demo) at http://127\.0\.0\.1:\d+$"
LIVE: dict[str, tuple[list[str], bool, list[str]]] = {
    "quickstart_rest": (
        [],
        True,
        [VENUE, r"^placed ordId=\d+", r"^cancelled: state=canceled$",
         r"^REST stats: \d+ requests on OKX live$"],
    ),
    "quickstart_rest --demo": (
        ["--demo"],
        True,
        [VENUE, r"^placed ordId=\d+", r"^cancelled: state=canceled$",
         r"^REST stats: \d+ requests on OKX demo$"],
    ),
    "stream_tickers": (
        ["--count", "6"],
        False,  # public data: no key needed
        [VENUE, *[r"^ticker (BTC|ETH)-USDT: last=\d"] * 6,
         r"^got \d+ tickers; ws messages=\d+ reconnects=0 handler_errors=0$"],
    ),
    "managed_order_book": (
        ["--seconds", "1.5"],
        False,
        [VENUE, r"^book BTC-USDT in sync at seqId \d+$", r"^seqId=\d+ bid ",
         r"^done: in_sync=True resyncs=0 updates=\d+ snapshots=1 "],
    ),
    "private_orders_stream": (
        [],
        True,
        [VENUE, r"^placed ordId=\d+$", r"^seen: live$", r"^seen: canceled$",
         r"^private ws: messages=\d+ connects=1 reconnects=0$"],
    ),
    "ws_order_entry": (
        [],
        True,
        [VENUE, r"^refused locally \(tickSz\)", r"^placed ordId=\d+ in ",
         r"^amended ordId=\d+ sCode=0", r"^cancel accepted", r"^order now: state=canceled",
         r"^refused by OKX: sCode=51400 "],
    ),
    "reconcile": (
        [],
        True,
        [VENUE, r"^order [0-9a-z]+: acknowledged, ordId=\d+ sends=1$",
         r"^snapshot in \d+ ms: 1 pending order\(s\)", r"^our order in the snapshot: live$",
         r"^resolve ghost[0-9a-z]+: found=False after 2 queries$",
         r"^after cancel: 0 pending order\(s\)$"],
    ),
    "safe_mode_and_dead_man": (
        [],
        True,
        [VENUE, r"^dead-man switch armed", r"^placed 3 orders; pending: 3$",
         r"^safe mode on \(example: error burst\): drained=True cancelled 3 of 3 pending",
         r"^placement refused before sending: SafeModeError$", r"^safe mode off: placed",
         r"^switch: running=False armed=False refreshes=\d+$"],
    ),
    "python_okx_strategy --demo": (
        ["--demo"],
        True,
        [VENUE, r"^balance USDT: available \d", r"^answers: ok=33 rate_limited=0 other=\{\}$"],
    ),
    "legacy_strategy": (
        ["--seconds", "2"],
        True,
        [VENUE, r"^quote placed at \d+(\.\d)?$",
         r"^done: \{'placed': 1, 'amended': \d+, 'reconciled': 0, 'errors': 0\}; "
         r"safe mode: 'shutdown'; pending: 0$"],
    ),
}  # fmt: skip


def _live_run(run: str) -> tuple[subprocess.CompletedProcess[str], list[str], int]:
    """Run ``run`` with --live against a fresh simulator; returns the result, the states of
    orders left pending on the simulator, and how many orders it received."""
    from okx_sync.sim import Simulator

    args, needs_key, _ = LIVE[run]
    with Simulator(seed=3) as sim:
        env = {
            "OKX_BASE_URL": sim.rest_url,
            "OKX_WS_PUBLIC_URL": sim.ws_public_url,
            "OKX_WS_PRIVATE_URL": sim.ws_private_url,
            "OKX_WS_BUSINESS_URL": sim.ws_business_url,
        }
        if needs_key:
            creds = sim.credentials.demo if "--demo" in args else sim.credentials.live
            env.update(
                OKX_API_KEY=creds.api_key,
                OKX_SECRET_KEY=creds.secret_key,
                OKX_PASSPHRASE=creds.passphrase,
            )
        result = _run(run.split()[0], ["--live", *args], env)
        orders = list(sim.exchange.orders.values())
        if "--demo" in args:  # the orders went to the account of the key used
            assert all(o.uid == sim.credentials.demo_uid for o in orders)
        left = [o.state for o in orders if o.state in ("live", "partially_filled")]
    return result, left, len(orders)


@pytest.fixture(scope="module")
def live_runs(started):
    """The --live runs started (each with its own simulator): ``LIVE``'s id -> future."""
    return {run: started[f"live {run}"] for run in LIVE if f"live {run}" in started}


def test_every_example_has_a_live_run():
    assert {run.split()[0] for run in LIVE} == {run.split()[0] for run in EXPECTED}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("run", list(LIVE))
def test_live_flag_uses_the_environment(live_runs, run):
    result, left, orders = live_runs[run].result(timeout=RUN_TIMEOUT * len(LIVE))
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert_lines_in_order(result.stdout, LIVE[run][2])
    assert "injected" not in result.stdout  # faults are for the simulator run only
    assert left == []  # every order it placed was cancelled before it exited
    assert (orders > 0) == LIVE[run][1]  # the public-data examples sent no order


@pytest.mark.timeout(120)
def test_public_example_refuses_a_partial_key(started):
    result = _refusal(started, "refuse partial key")
    assert result.returncode != 0
    assert "--live needs OKX_SECRET_KEY, OKX_PASSPHRASE" in result.stderr
