"""The gate's counters and the ``RequestGate.stats()`` snapshot they assemble into.

``BucketCounters`` counts, per bucket, admissions, waits, penalties and timeouts
and decides the slow-wait INFO line (at most one per bucket per window);
``GateCounters`` counts the same for the whole gate and assembles the frozen
:class:`GateStats` snapshot from its parts (the backend's window figures as
:class:`BucketStats`, the account limit's state as :class:`AccountLimitStats`).
Counters are local to this process whatever the backend. Thread safety: the
counters are not thread-safe (the gate updates and reads them under its lock);
the snapshots are immutable.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import attrs

from .charges import MONTH_S, Charge
from .notes import Note

__all__ = ["GateStats", "BucketStats", "AccountLimitStats", "BucketCounters", "GateCounters"]


@attrs.frozen(kw_only=True)
class BucketStats:
    """One rate bucket in a :class:`GateStats` (``gate_stats().buckets``).

    ``key``, ``kind`` (``endpoint``, ``account``, ``extra``...), the published
    ``limit`` per ``window_s``, the gate's ``capacity`` per ``span_s``,
    ``published_rate`` and ``current_rate`` (what the gate allows now, per
    second), ``rate_factor``, ``held_for_s`` (held after throttling),
    ``tokens`` (room now), ``used``, ``in_flight``; ``shared`` (Redis backend
    only: True while the figures come from Redis; None with the local
    backend); then this process's counters ``admitted``, ``admitted_cost``,
    ``total_wait_s``, ``max_wait_s``, ``penalties``, ``throttled``,
    ``timeouts``. Thread safety: immutable.
    """

    key: str
    kind: str
    limit: int
    window_s: float
    capacity: int
    span_s: float
    published_rate: float
    current_rate: float
    rate_factor: float
    held_for_s: float
    tokens: int
    used: int
    in_flight: int
    shared: bool | None = None
    admitted: int
    admitted_cost: int
    total_wait_s: float
    max_wait_s: float
    penalties: int
    throttled: int
    timeouts: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field (``shared`` only when not None)."""
        out = attrs.asdict(self)
        if self.shared is None:
            del out["shared"]
        return out


@attrs.frozen(kw_only=True)
class AccountLimitStats:
    """The account new+amend order limit in force (``gate_stats().account_order_limit``):
    ``limit`` per 2 s, ``source`` (``default``, ``config``, ``okx``...), ``loaded_age_s``
    (None before a load), ``load_failures`` and ``last_error``. Thread safety: immutable."""

    limit: int
    source: str
    loaded_age_s: float | None
    load_failures: int
    last_error: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return attrs.asdict(self)


def _buckets(value: Any) -> tuple[BucketStats, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class GateStats:
    """A frozen snapshot of the request gate (``client.gate_stats()``, ``RequestGate.stats()``).

    ``in_flight``, ``max_concurrent``, ``waiting``, ``admitted``, ``timeouts``,
    ``total_wait_s``, ``max_wait_s``, ``rate_limits``, ``headroom``;
    ``account_order_limit`` (an :class:`AccountLimitStats`); ``buckets`` (one
    :class:`BucketStats` per bucket, by key); ``backend`` (the backend's own
    figures: ``backend``, ``health``... a dict, its shape depends on the
    backend); ``enabled`` (False: the gate is off, nothing above counts).
    ``to_dict()`` is the JSON-serialisable dict. Thread safety: immutable.
    """

    in_flight: int
    max_concurrent: int
    waiting: int
    admitted: int
    timeouts: int
    total_wait_s: float
    max_wait_s: float
    rate_limits: bool
    headroom: float
    account_order_limit: AccountLimitStats
    buckets: tuple[BucketStats, ...] = attrs.field(converter=_buckets)
    backend: Mapping[str, Any]
    enabled: bool

    def bucket(self, key: str) -> BucketStats | None:
        """The bucket ``key`` (e.g. ``gate.ACCOUNT_BUCKET_KEY``), or None."""
        return next((b for b in self.buckets if b.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field (records as dicts, buckets as a list)."""
        return {
            "in_flight": self.in_flight,
            "max_concurrent": self.max_concurrent,
            "waiting": self.waiting,
            "admitted": self.admitted,
            "timeouts": self.timeouts,
            "total_wait_s": self.total_wait_s,
            "max_wait_s": self.max_wait_s,
            "rate_limits": self.rate_limits,
            "headroom": self.headroom,
            "account_order_limit": self.account_order_limit.to_dict(),
            "buckets": [b.to_dict() for b in self.buckets],
            "backend": _plain(self.backend),
            "enabled": self.enabled,
        }


def _plain(value: Any) -> Any:
    """``value`` with nested mappings copied into dicts (the backend's figures)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


class BucketCounters:
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

    def snapshot(self, figures: Mapping[str, Any]) -> BucketStats:
        """The bucket's :class:`BucketStats`: key, kind, the window's ``figures``, the counters."""
        return BucketStats(
            key=self.key,
            kind=self.kind,
            **figures,
            admitted=self.admitted,
            admitted_cost=self.admitted_cost,
            total_wait_s=round(self.total_wait_s, 6),
            max_wait_s=round(self.max_wait_s, 6),
            penalties=self.penalties,
            throttled=self.throttled,
            timeouts=self.timeouts,
        )


class GateCounters:
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
        account: Mapping[str, Any],
        buckets: list[BucketStats],
        backend: Mapping[str, Any],
    ) -> GateStats:
        """The ``RequestGate.stats()`` snapshot (see there) from the gate's parts."""
        return GateStats(
            in_flight=in_flight,
            max_concurrent=config.max_concurrent,
            waiting=waiting,
            admitted=self.admitted,
            timeouts=self.timeouts,
            total_wait_s=round(self.total_wait_s, 6),
            max_wait_s=round(self.max_wait_s, 6),
            rate_limits=config.rate_limits,
            headroom=config.headroom,
            account_order_limit=AccountLimitStats(**account),
            buckets=buckets,
            backend=_plain(backend),
            enabled=config.enabled,
        )
