"""No test sleeps to synchronise, and none sleeps then asserts that nothing happened.

A test waits on what the code exposes: an ``Event``/``Condition``, a counter in
``stats()``, a :class:`~okx_sync.clock.FakeClock` advance, or a predicate polled by
:func:`okx_sync.testing.wait_until` (the one place a test waits by polling, with a
deadline). This test reads every module under tests/ and fails on any other
``sleep(...)`` call (``time.sleep``, a bare ``sleep``, ``anything.sleep``) outside
``ALLOWED``: a short list of functions whose sleep *is* the input under test, each
with its reason.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

# (test file's name, the function holding the sleep as Outer.inner) -> why it may sleep
ALLOWED: dict[tuple[str, str], str] = {
    ("test_clock.py", "test_no_notify_is_lost_when_it_races_a_poll_timeout"): (
        "a test of the clock's own polling: the notify must land around FakeClock's 1 ms "
        "poll boundary, which only real elapsed time can place"
    ),
    ("test_clock.py", "test_a_sleep_counts_from_the_callers_last_reading.run"): (
        "FakeClock.sleep itself under test (fake time: it blocks until advanced)"
    ),
    ("test_ws_dispatch.py", "Recorder.__call__"): (
        "a slow handler: its run time is the input the dispatch tests vary"
    ),
    ("test_ws_flow.py", "test_drop_policy_counts_and_memory_stays_flat.slow"): (
        "a slow handler: the queue must overflow so drops are counted"
    ),
    ("test_ws_flow.py", "test_disconnect_policy_reconnects_and_resubscribes.slow"): (
        "a slow handler: the queue must overflow so the disconnect policy acts"
    ),
    ("test_ws_flow.py", "test_pool_keeps_per_instrument_order_in_parallel.handler"): (
        "a handler that sometimes takes longer, so workers overtake each other"
    ),
    (
        "test_gate_client.py",
        "test_concurrent_first_orders_send_one_load_and_do_not_wait_behind_it.claim_then_switch",
    ): (
        "a delay injected into the code under test between the claim and the load's "
        "admission (a thread switch there is the race the test covers)"
    ),
}


def sleep_calls(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """(qualified name of the enclosing function, line) of every ``sleep(...)`` call."""

    def visit(node: ast.AST, scope: tuple[str, ...]) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield from visit(child, (*scope, child.name))
                continue
            if isinstance(child, ast.Call):
                func = child.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name == "sleep":
                    yield ".".join(scope) or "<module>", child.lineno
            yield from visit(child, scope)

    yield from visit(tree, ())


@functools.cache
def _found() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        for where, line in sleep_calls(ast.parse(path.read_text(encoding="utf-8"))):
            found.setdefault((path.name, where), []).append(line)  # names are unique
    return found


def test_no_test_sleeps_outside_the_allowlist() -> None:
    offenders = [
        f"{name}:{lines[0]} in {where}"
        for (name, where), lines in _found().items()
        if (name, where) not in ALLOWED
    ]
    assert offenders == [], (
        "sleeping in a test: wait on an event, a stats counter, a FakeClock advance or "
        "okx_sync.testing.wait_until instead:\n" + "\n".join(offenders)
    )


def test_every_allowlist_entry_still_sleeps() -> None:
    found = _found()
    stale = [key for key in ALLOWED if key not in found]
    assert stale == [], f"ALLOWED names functions that no longer sleep: {stale}"


def test_the_checker_finds_every_spelling_of_sleep() -> None:
    source = (
        "import time\n"
        "from time import sleep\n"
        "def test_a():\n"
        "    time.sleep(0.1)\n"
        "class Helper:\n"
        "    def wait(self):\n"
        "        def inner():\n"
        "            sleep(1)\n"
        "        clock.sleep(2)\n"
        "time.monotonic()\n"
    )
    assert list(sleep_calls(ast.parse(source))) == [
        ("test_a", 4),
        ("Helper.wait.inner", 8),
        ("Helper.wait", 9),
    ]
