"""Measuring the clock offset to OKX server time through the REST call path.

:class:`ServerTime` sends ``GET /api/v5/public/time`` through a
:class:`~okx_sync.rest.call.CallRunner` and stores the offset (server ts - the
midpoint of the round trip, :func:`okx_sync.timesync.offset_from_round_trip`) in
the :class:`~okx_sync.timesync.TimeSync` every signature reads.

Thread safety: one measurement at a time (``TimeSync.sync_lock``); any thread.
"""

from __future__ import annotations

import logging

from ..errors import APIError, OkxError
from ..retry import RetryPolicy
from ..timesync import TimeSync, offset_from_round_trip
from .call import CallRunner
from .endpoints import EndpointRegistry

__all__ = ["ServerTime", "TIME_PATH"]

_log = logging.getLogger("okx_sync.rest")

TIME_PATH = "/api/v5/public/time"


class ServerTime:
    """Measures and re-measures the clock offset of ``time_sync`` with ``runner``.

    ``measure`` raises like any REST call, or ``APIError`` when the answer carries
    no usable ``ts``; a failure is recorded in ``time_sync`` (``last_error``).
    Thread safety: ``measure`` is called with ``time_sync.sync_lock`` held;
    ``resync`` takes it; both from any thread.
    """

    def __init__(self, runner: CallRunner, endpoints: EndpointRegistry, time_sync: TimeSync):
        self._runner = runner
        self._registry = endpoints
        self._time = time_sync

    def measure(self, policy: RetryPolicy | None = None) -> int:
        """Measure the offset (ms) now, store and return it (``policy`` overrides the retry
        policy). The caller holds ``time_sync.sync_lock``."""
        try:
            return self._measure_offset_once(policy)
        except OkxError as exc:
            self._time.note_failure(f"{type(exc).__name__}: {exc}")
            raise

    def _measure_offset_once(self, policy: RetryPolicy | None) -> int:
        endpoint = self._registry.get("GET", TIME_PATH)
        call = self._runner.prepare("GET", TIME_PATH, endpoint, None)
        res = self._runner.run(call, None, allow_resync=False, policy=policy)
        try:
            server_ms = int(res.data[0]["ts"])
        except (IndexError, KeyError, TypeError, ValueError):
            raise APIError(
                "",
                f"server time response has no usable ts: {res.data!r:.200}",
                method="GET",
                path=TIME_PATH,
                data=res.data,
            ) from None
        offset = offset_from_round_trip(res.sent_ms, server_ms, res.received_ms)
        self._time.set_offset(offset)
        _log.info("clock offset to OKX: %d ms", offset, extra={"time_offset_ms": offset})
        return offset

    def resync(self, since: float) -> None:
        """Re-measure the offset unless another thread did after ``since`` (monotonic)."""
        with self._time.sync_lock:
            synced_at = self._time.synced_at
            if synced_at is not None and synced_at >= since:
                return
            self.measure()
