"""The offset between OKX server time and the local wall clock. No I/O.

OKX refuses signed requests whose timestamp is too far from its own clock
(50102, facts §1.2). :class:`TimeSync` keeps the measured offset and gives
timestamps that carry it; the REST core measures it with
``GET /api/v5/public/time`` (``Client.sync_time``) and WS login uses the same
``now_ms``.

Offset = server time minus the midpoint of the request's round trip
(:func:`offset_from_round_trip`).
"""

from __future__ import annotations

import threading
from typing import Any

from .clock import Clock
from .errors import ValidationError

__all__ = [
    "TimeSync",
    "offset_from_round_trip",
    "next_sync_due",
    "MIN_SYNC_INTERVAL_S",
    "MAX_MANUAL_OFFSET_S",
]

#: The shortest periodic re-sync interval a ``Client`` accepts (``time_sync_interval_s``).
MIN_SYNC_INTERVAL_S = 10.0
#: After a failed periodic re-sync, the next try comes after at most this many seconds.
SYNC_RETRY_S = 60.0
#: The largest offset ``set_manual`` accepts, in seconds either way (one day).
MAX_MANUAL_OFFSET_S = 86_400.0


def offset_from_round_trip(sent_ms: float, server_ms: int, received_ms: float) -> int:
    """Server time minus the local midpoint of the round trip, in ms (rounded).

    ``sent_ms``/``received_ms`` are local wall-clock times around the request.
    Pure; raises ``ValueError`` when ``received_ms < sent_ms``.
    """
    if received_ms < sent_ms:
        raise ValueError("round trip ends before it starts")
    return round(server_ms - (sent_ms + received_ms) / 2.0)


def next_sync_due(synced_at: float | None, failed_at: float | None, interval_s: float) -> float:
    """When (monotonic s) the next periodic re-sync is due. Pure.

    ``interval_s`` after the last successful sync (``synced_at``; any sync
    counts: by hand, after a refused timestamp, or periodic), at once when
    never synced; after a failure newer than the last success, ``min(interval_s,
    SYNC_RETRY_S)`` after the failure (``failed_at``).
    """
    if failed_at is not None and (synced_at is None or failed_at >= synced_at):
        return failed_at + min(interval_s, SYNC_RETRY_S)
    if synced_at is None:
        return float("-inf")
    return synced_at + interval_s


class TimeSync:
    """Holds the clock offset (ms) and stamps requests with ``now_ms()``.

    ``offset_ms`` starts at 0 (trust the local clock) until ``set_offset`` is
    called. ``synced_at`` is the clock's monotonic time of the last update
    (None before the first), so concurrent callers can tell whether someone
    else already re-synced after their own request went out. ``syncs`` counts
    measurements, ``failures`` the failed ones (``note_failure``), whose last
    text is ``last_error`` (cleared by the next success). ``source`` says where
    the offset came from: None (never set), ``"okx"`` (measured) or ``"manual"``
    (``set_manual``: the user's own time source).

    Thread safety: all methods are safe from any thread; ``sync_lock`` lets
    the REST core run one measurement at a time.
    """

    def __init__(self, clock: Clock, offset_ms: int = 0) -> None:
        self._clock = clock
        self._offset_ms = int(offset_ms)
        self._synced_at: float | None = None
        self._syncs = 0
        self._failures = 0
        self._last_error = ""
        self._last_error_at: float | None = None
        self._source: str | None = None
        self._lock = threading.Lock()
        self.sync_lock = threading.Lock()

    @property
    def offset_ms(self) -> int:
        """Server time minus local wall time, in milliseconds."""
        return self._offset_ms

    @property
    def synced_at(self) -> float | None:
        """Monotonic time of the last ``set_offset`` (None when never synced)."""
        return self._synced_at

    def set_offset(self, offset_ms: int) -> None:
        """Store a measured offset (ms) and stamp ``synced_at``."""
        with self._lock:
            self._offset_ms = int(offset_ms)
            self._synced_at = self._clock.monotonic()
            self._syncs += 1
            self._last_error = ""
            self._source = "okx"

    def set_manual(self, offset_ms: int) -> None:
        """Use ``offset_ms`` (server minus local wall time, ms) from the caller's own time
        source: stamps ``synced_at`` (a periodic re-sync is due ``interval`` after it) and
        sets ``source`` to ``"manual"``; ``syncs`` (measurements) is unchanged.

        Raises ValidationError for a non-int (a bool or float too) or an offset beyond
        ±:data:`MAX_MANUAL_OFFSET_S` (in ms: ±86,400,000). Thread-safe.
        """
        if isinstance(offset_ms, bool) or not isinstance(offset_ms, int):
            raise ValidationError(f"offset_ms must be an int (ms), got {offset_ms!r}")
        if abs(offset_ms) > MAX_MANUAL_OFFSET_S * 1000:
            raise ValidationError(
                f"offset_ms must be within ±{MAX_MANUAL_OFFSET_S * 1000:.0f} ms (one day), "
                f"got {offset_ms}"
            )
        with self._lock:
            self._offset_ms = offset_ms
            self._synced_at = self._clock.monotonic()
            self._source = "manual"

    def note_failure(self, error: str) -> None:
        """Record a failed measurement (``error``: a one-line description, no secret)."""
        with self._lock:
            self._failures += 1
            self._last_error = error
            self._last_error_at = self._clock.monotonic()

    @property
    def failed_at(self) -> float | None:
        """Monotonic time of the last failed measurement (None when none failed)."""
        return self._last_error_at

    @property
    def last_error(self) -> str:
        """The last failed measurement since the last success ("" when none)."""
        return self._last_error

    @property
    def source(self) -> str | None:
        """Where the offset came from: None (never set), ``"okx"`` or ``"manual"``."""
        return self._source

    def snapshot(self) -> dict[str, Any]:
        """``offset_ms``, ``source``, ``age_s`` (None before the first sync), ``syncs``,
        ``failures``, ``last_error`` and ``last_error_age_s`` (JSON-serialisable)."""
        now = self._clock.monotonic()
        with self._lock:
            synced, failed_at = self._synced_at, self._last_error_at
            out: dict[str, Any] = {
                "offset_ms": self._offset_ms,
                "source": self._source,
                "age_s": None if synced is None else round(max(0.0, now - synced), 3),
                "syncs": self._syncs,
                "failures": self._failures,
                "last_error": self._last_error,
            }
        out["last_error_age_s"] = (
            None if failed_at is None or not out["last_error"] else round(now - failed_at, 3)
        )
        return out

    def local_ms(self) -> float:
        """The local wall clock in milliseconds (no offset)."""
        return self._clock.time() * 1000.0

    def now_ms(self) -> int:
        """The estimated OKX server time in milliseconds (wall clock + offset)."""
        return int(self._clock.time() * 1000.0) + self._offset_ms

    def __repr__(self) -> str:
        return f"TimeSync(offset_ms={self._offset_ms}, synced={self._synced_at is not None})"
