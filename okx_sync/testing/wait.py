"""``wait_until``: the one place a test waits by polling.

Tests wait on what the code exposes: an ``Event``/``Condition`` where there is
one, a :class:`~okx_sync.clock.FakeClock` advance for timers, and otherwise a
counter or state polled with :func:`wait_until`, which always has a deadline.
``tests/unit/test_no_sleep.py`` fails on any other ``sleep`` in the tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(pred: Callable[[], object], timeout_s: float = 5.0, step_s: float = 0.002) -> bool:
    """Poll ``pred`` every ``step_s`` s until it is true or ``timeout_s`` s passed.

    Returns True as soon as ``pred()`` is true, else ``bool(pred())`` once more
    at the deadline (so a test asserts on it: ``assert wait_until(...)``).
    For state that offers no event to wait on (other threads' counters, a
    server's view); prefer an Event/Condition where there is one.

    Raises ``ValueError`` for a negative ``timeout_s`` or a non-positive
    ``step_s``; whatever ``pred`` raises propagates. Thread safety: keeps no
    state; ``pred`` runs on the calling thread.
    """
    if timeout_s < 0 or step_s <= 0:
        raise ValueError(
            f"wait_until needs timeout_s >= 0 and step_s > 0, got {timeout_s}, {step_s}"
        )
    end = time.monotonic() + timeout_s
    while True:
        if pred():
            return True
        left = end - time.monotonic()
        if left <= 0:
            return bool(pred())
        time.sleep(min(step_s, left))
