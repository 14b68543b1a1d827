"""Counters, latency percentiles and the last errors of the REST core. No I/O.

``RestStats`` is fed by the REST call loop (``attempt_ok``/``attempt_failed``
per attempt, ``retried`` per retry, ``call_failed`` per failed call) and read
by ``Client.stats()`` and, later, ``client.evidence()`` (``recent_errors``). Snapshots are JSON-serialisable.

Thread safety: every method is safe from any thread (one short lock; no user
code runs under it).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["RestStats", "percentile"]


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of an ascending list by nearest rank; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[rank]


class RestStats:
    """Thread-safe REST counters.

    - ``requests``/``successes``/``failures``: finished calls (a call may make
      several attempts).
    - ``failures_by_code``: final failures keyed by the OKX code of an
      ``APIError`` (``http_<status>`` when the body had no code); for a
      ``RequestStateError``, ``gate`` (it never left the gate) or
      ``http:dispatched`` / ``http:unsent`` (no response; may have reached OKX /
      nothing was sent); any other error by its class name.
    - ``attempts``, ``retries``, ``resyncs``: HTTP attempts, retries, clock re-syncs.
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

    def snapshot(self) -> dict[str, Any]:
        """All counters, latency percentiles and the recent errors (JSON-serialisable)."""
        with self._lock:
            lat = sorted(self._latencies)
            out: dict[str, Any] = {
                "requests": self.requests,
                "successes": self.successes,
                "failures": self.failures,
                "failures_by_code": dict(self._by_code),
                "limits_hit": dict(self._limits),
                "attempts": self.attempts,
                "retries": self.retries,
                "resyncs": self.resyncs,
                "latency_s": {
                    "samples": len(lat),
                    "p50": round(percentile(lat, 0.50), 6),
                    "p90": round(percentile(lat, 0.90), 6),
                    "p99": round(percentile(lat, 0.99), 6),
                    "max": round(lat[-1], 6) if lat else 0.0,
                },
                "last_errors": [dict(e) for e in self._errors],
            }
        return out
