"""The gate's counters and the ``RequestGate.stats()`` snapshot they assemble into.

``BucketStats`` counts, per bucket, admissions, waits, penalties and timeouts
and decides the slow-wait INFO line (at most one per bucket per window);
``GateStats`` counts the same for the whole gate and assembles the snapshot
from its parts (the backend's window figures, the account limit's state).
Counters are local to this process whatever the backend. Not thread-safe: the
gate updates and reads them under its lock.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from .charges import MONTH_S, Charge
from .notes import Note

__all__ = ["BucketStats", "GateStats"]


class BucketStats:
    """One bucket's description (key, kind, rule, limit, window) and counters."""

    __slots__ = (
        "key",
        "kind",
        "rule",
        "limit",
        "window_s",
        "admitted",
        "admitted_cost",
        "total_wait_s",
        "max_wait_s",
        "penalties",
        "throttled",
        "timeouts",
        "slow_logged_at",
    )

    def __init__(self, charge: Charge) -> None:
        self.key = charge.key
        self.kind = charge.kind
        self.rule = charge.rule
        self.limit = charge.limit
        self.window_s = charge.window_s
        self.admitted = self.admitted_cost = self.penalties = self.throttled = self.timeouts = 0
        self.total_wait_s = self.max_wait_s = 0.0
        self.slow_logged_at = -math.inf  # when a slow wait on it was last logged

    def count_admission(self, cost: int, waited: float) -> None:
        """One admission of ``cost`` tokens after ``waited`` seconds."""
        self.admitted += 1
        self.admitted_cost += cost
        self.total_wait_s += waited
        self.max_wait_s = max(self.max_wait_s, waited)

    def slow_wait_note(self, waited: float, now: float, headroom: float) -> Note | None:
        """The INFO line for a call this bucket held ``waited`` seconds, unless one was
        logged less than a window ago."""
        if now - self.slow_logged_at < self.window_s:
            return None
        self.slow_logged_at = now
        window = f"{self.window_s:g} s" if self.window_s < MONTH_S else "month"
        return (
            logging.INFO,
            f"request gate: a call waited {waited:.3g} s for bucket {self.key} "
            f"(rule {self.rule}, published limit {self.limit} per {window}, "
            f"run at {headroom:g} of it); more calls on this bucket wait "
            "the same way, logged again after a window",
            {
                "bucket": self.key,
                "rule": self.rule,
                "limit": self.limit,
                "window_s": self.window_s,
                "waited_s": round(waited, 6),
            },
        )

    def snapshot(self, figures: dict[str, Any]) -> dict[str, Any]:
        """The bucket's stats entry: key, kind, the window's ``figures``, the counters."""
        return {
            "key": self.key,
            "kind": self.kind,
            **figures,
            "admitted": self.admitted,
            "admitted_cost": self.admitted_cost,
            "total_wait_s": round(self.total_wait_s, 6),
            "max_wait_s": round(self.max_wait_s, 6),
            "penalties": self.penalties,
            "throttled": self.throttled,
            "timeouts": self.timeouts,
        }


class GateStats:
    """Whole-gate counters: admissions, timeouts, total and longest wait."""

    __slots__ = ("admitted", "timeouts", "total_wait_s", "max_wait_s")

    def __init__(self) -> None:
        self.admitted = self.timeouts = 0
        self.total_wait_s = self.max_wait_s = 0.0

    def count_admission(self, waited: float) -> None:
        """One admission after ``waited`` seconds."""
        self.admitted += 1
        self.total_wait_s += waited
        self.max_wait_s = max(self.max_wait_s, waited)

    def snapshot(
        self,
        *,
        in_flight: int,
        waiting: int,
        config: Any,
        account: dict[str, Any],
        buckets: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """The ``RequestGate.stats()`` dict (see there) from the gate's parts."""
        return {
            "in_flight": in_flight,
            "max_concurrent": config.max_concurrent,
            "waiting": waiting,
            "admitted": self.admitted,
            "timeouts": self.timeouts,
            "total_wait_s": round(self.total_wait_s, 6),
            "max_wait_s": round(self.max_wait_s, 6),
            "rate_limits": config.rate_limits,
            "headroom": config.headroom,
            "account_order_limit": account,
            "buckets": buckets,
        }
