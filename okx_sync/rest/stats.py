"""Counters, latency percentiles and the last errors of the REST core. No I/O.

``RestCounters`` is fed by the REST call loop (``attempt_ok``/``attempt_failed``
per attempt, ``retried`` per retry, ``call_failed`` per failed call); its
``snapshot`` is a frozen :class:`RestStats` (what ``Client.stats()`` returns,
with its :class:`LatencyStats` and :class:`TimeSyncStats`); ``to_dict()`` gives
the JSON-serialisable dict ``client.evidence()`` and the stats sinks show.

Thread safety: ``RestCounters`` methods are safe from any thread (one short
lock; no user code runs under it); the snapshots are immutable.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["RestStats", "LatencyStats", "TimeSyncStats", "RestCounters", "percentile"]


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of an ascending list by nearest rank; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[rank]


@attrs.frozen(kw_only=True)
class LatencyStats:
    """REST latency percentiles in seconds over the last timed attempts
    (``samples`` of them; 0.0 when none). Thread safety: immutable."""

    samples: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, latencies: list[float]) -> LatencyStats:
        """The percentiles of ``latencies`` (ascending), rounded to the microsecond."""
        return cls(
            samples=len(latencies),
            p50=round(percentile(latencies, 0.50), 6),
            p90=round(percentile(latencies, 0.90), 6),
            p99=round(percentile(latencies, 0.99), 6),
            max=round(latencies[-1], 6) if latencies else 0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class TimeSyncStats:
    """The clock offset to OKX server time (``client.stats().time_sync``).

    ``offset_ms``; ``source`` (None before any sync, ``"okx"`` measured,
    ``"manual"`` set by ``set_time_offset_ms``); ``age_s`` (None before the
    first sync); ``syncs``; ``failures``; ``last_error`` ("" after a success)
    and ``last_error_age_s``; ``interval_s`` of the periodic re-sync (0: none)
    and ``timer_running``. Thread safety: immutable.
    """

    offset_ms: int
    source: str | None
    age_s: float | None
    syncs: int
    failures: int
    last_error: str
    last_error_age_s: float | None
    interval_s: float = 0.0
    timer_running: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return attrs.asdict(self)


def _errors(value: Any) -> tuple[dict[str, Any], ...]:
    return tuple(dict(e) for e in value)


@attrs.frozen(kw_only=True)
class RestStats:
    """A frozen snapshot of the REST core (``client.stats()``).

    - ``requests``/``successes``/``failures``: finished calls (a call may make
      several attempts).
    - ``failures_by_code``: final failures keyed by the OKX code of an
      ``APIError`` (``http_<status>`` when the body had no code); for a
      ``RequestStateError``, ``gate`` (it never left the gate) or
      ``http:dispatched`` / ``http:unsent`` (no response; may have reached OKX /
      nothing was sent); any other error by its class name.
    - ``limits_hit``: attempts stopped by a bound, by kind (see ``RestCounters``).
    - ``attempts``, ``retries``, ``resyncs``: HTTP attempts, retries, clock re-syncs.
    - ``latency_s``: a :class:`LatencyStats`; ``last_errors``: the last failed
      attempts (dicts, oldest first).
    - ``time_offset_ms`` and ``time_sync`` (a :class:`TimeSyncStats`);
      ``fast_path``: the pooled transport is in use.

    ``to_dict()`` is the JSON-serialisable dict (nested records as dicts).
    Thread safety: immutable (the mappings are private copies; do not mutate).
    """

    requests: int
    successes: int
    failures: int
    failures_by_code: Mapping[str, int]
    limits_hit: Mapping[str, int]
    attempts: int
    retries: int
    resyncs: int
    latency_s: LatencyStats
    last_errors: tuple[dict[str, Any], ...] = attrs.field(converter=_errors)
    time_offset_ms: int
    time_sync: TimeSyncStats
    fast_path: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field (records and tuples as dicts and lists)."""
        return {
            "requests": self.requests,
            "successes": self.successes,
            "failures": self.failures,
            "failures_by_code": dict(self.failures_by_code),
            "limits_hit": dict(self.limits_hit),
            "attempts": self.attempts,
            "retries": self.retries,
            "resyncs": self.resyncs,
            "latency_s": self.latency_s.to_dict(),
            "last_errors": [dict(e) for e in self.last_errors],
            "time_offset_ms": self.time_offset_ms,
            "time_sync": self.time_sync.to_dict(),
            "fast_path": self.fast_path,
        }


class RestCounters:
    """Thread-safe REST counters (what :class:`RestStats` snapshots; its docstring says
    what each counter means).

    - latency percentiles (s) over the last ``latency_samples`` attempts that
      got a response or failed in transport.
    - ``limits_hit``: attempts stopped by a bound, by kind:
      ``attempt_deadline`` (the whole-attempt ``timeout`` passed),
      ``response_too_large`` (body over ``max_response_bytes``), and
      ``response_<why>`` for an answer that is no OKX envelope (``not_json``,
      ``too_deep``, ``not_envelope``, ``no_code``).
    - ``recent_errors()``: the last ``max_errors`` failed attempts as dicts.
    """

    def __init__(self, *, max_errors: int = 50, latency_samples: int = 4096) -> None:
        self._lock = threading.Lock()
        self._latencies: deque[float] = deque(maxlen=latency_samples)
        self._errors: deque[dict[str, Any]] = deque(maxlen=max_errors)
        self._by_code: dict[str, int] = {}
        self._limits: dict[str, int] = {}
        self.requests = 0
        self.successes = 0
        self.failures = 0
        self.attempts = 0
        self.retries = 0
        self.resyncs = 0

    def attempt_ok(self, latency_s: float) -> None:
        """Count a successful attempt, which also ends its call successfully."""
        with self._lock:
            self.attempts += 1
            self.requests += 1
            self.successes += 1
            self._latencies.append(latency_s)

    def attempt_failed(self, latency_s: float | None, error: dict[str, Any]) -> None:
        """Count a failed attempt; ``error`` is a JSON-serialisable description."""
        with self._lock:
            self.attempts += 1
            if latency_s is not None:
                self._latencies.append(latency_s)
            self._errors.append(error)

    def limit_hit(self, kind: str) -> None:
        """Count one attempt stopped by a bound (see ``limits_hit`` in the class doc)."""
        with self._lock:
            self._limits[kind] = self._limits.get(kind, 0) + 1

    def retried(self, *, resync: bool = False) -> None:
        """Count one retry (and a clock re-sync when ``resync``)."""
        with self._lock:
            self.retries += 1
            if resync:
                self.resyncs += 1

    def call_failed(self, failure_key: str) -> None:
        """Count a call that ended in failure, keyed by code (see class doc)."""
        with self._lock:
            self.requests += 1
            self.failures += 1
            self._by_code[failure_key] = self._by_code.get(failure_key, 0) + 1

    def recent_errors(self) -> list[dict[str, Any]]:
        """The last failed attempts, oldest first (copies)."""
        with self._lock:
            return [dict(e) for e in self._errors]

    def snapshot(self, *, time_sync: TimeSyncStats, fast_path: bool) -> RestStats:
        """All counters, latency percentiles and the recent errors as a :class:`RestStats`,
        with the clock's ``time_sync`` and the ``fast_path`` flag."""
        with self._lock:
            lat = sorted(self._latencies)
            return RestStats(
                requests=self.requests,
                successes=self.successes,
                failures=self.failures,
                failures_by_code=dict(self._by_code),
                limits_hit=dict(self._limits),
                attempts=self.attempts,
                retries=self.retries,
                resyncs=self.resyncs,
                latency_s=LatencyStats.of(lat),
                last_errors=self._errors,
                time_offset_ms=time_sync.offset_ms,
                time_sync=time_sync,
                fast_path=fast_path,
            )
