"""Periodic clock re-sync: ``Client(time_sync_interval_s=...)`` on thread ``okx-time-sync``.

OKX refuses a signed request whose timestamp is more than 30 s off its own
clock. The client heals a refusal by itself (REST 50102/50112, WS login 60006:
one re-sync each), but a host clock that drifts slowly is better followed
before anything is refused: :class:`TimeSyncTimer` re-measures the offset
whenever the last measurement (by anyone: ``sync_time()``, a re-sync after a
refusal, or this timer) is ``interval_s`` old, and at once when there is none.
When is decided by :func:`okx_sync.timesync.next_sync_due` (pure); this loop
only waits (on the injected clock) and calls.

A failed sync is logged (WARNING for the first of a run of failures, DEBUG
for the rest, INFO when it recovers), recorded in the ``TimeSync`` (``stats()``
and evidence show ``last_error``) and tried again ``min(interval_s, 60)`` s
later. The loop never dies of an exception.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..clock import Clock
from ..errors import OkxError
from ..timesync import SYNC_RETRY_S, TimeSync, next_sync_due

__all__ = ["TimeSyncTimer", "THREAD_NAME"]

_log = logging.getLogger("okx_sync.ops.time_sync")

THREAD_NAME = "okx-time-sync"


class TimeSyncTimer:
    """Calls ``sync()`` every ``interval_s`` seconds of offset age, on one named thread.

    ``sync``: measures and stores the offset in ``time_sync`` (the Client passes
    its REST core's single-attempt ``sync_time``). ``start()`` starts the thread
    (``okx-time-sync``); ``stop()`` asks it to end; ``join(timeout)`` waits for it
    (True when it is gone). ``runs`` counts finished sync attempts and
    ``wait_runs(n, timeout)`` waits (real time) until ``n`` have finished.
    ``on_error(exc)`` is called on the timer's thread with each failed sync (after
    its log line; an exception it raises is logged).

    Raises ``ValueError`` for ``interval_s <= 0`` and ``RuntimeError`` when
    started twice. Thread safety: every method may be called from any thread;
    ``join`` from the timer's own thread returns at once (False).
    """

    def __init__(
        self,
        sync: Callable[[], object],
        time_sync: TimeSync,
        *,
        interval_s: float,
        clock: Clock,
        name: str = THREAD_NAME,
        on_error: Callable[[BaseException], object] | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._sync = sync
        self._time = time_sync
        self._clock = clock
        self._name = name
        self._on_error = on_error
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._runs = 0
        self._failing = 0  # failures in a row
        self._failed_at: float | None = None  # this timer's last failure (monotonic)

    @property
    def runs(self) -> int:
        """Finished sync attempts (successful or not)."""
        return self._runs

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def next_due(self) -> float:
        """Monotonic time of the next sync (``-inf``: at once)."""
        failed = [t for t in (self._time.failed_at, self._failed_at) if t is not None]
        return next_sync_due(self._time.synced_at, max(failed, default=None), self.interval_s)

    def start(self) -> None:
        """Start the thread. Raises ``RuntimeError`` when already started or stopped."""
        with self._cond:
            if self._thread is not None or self._stopping:
                raise RuntimeError("a TimeSyncTimer starts once")
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end (it ends at once unless a sync is in flight). Idempotent."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def join(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` (real time) for the thread to end; True when it has."""
        thread = self._thread
        if thread is None:
            return True
        if thread is threading.current_thread():
            return False
        thread.join(max(0.0, timeout_s))
        return not thread.is_alive()

    def wait_runs(self, n: int, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` (real time) until ``n`` sync attempts have finished."""
        with self._cond:
            return self._cond.wait_for(lambda: self._runs >= n, timeout_s)

    def _loop(self) -> None:
        clock = self._clock
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = clock.monotonic()
                    due = self.next_due()
                    if now >= due:
                        break
                    clock.wait(self._cond, due - now)
            self._run_once()
            with self._cond:
                self._runs += 1
                self._cond.notify_all()

    def _run_once(self) -> None:
        try:
            self._sync()
        except Exception as exc:  # noqa: BLE001 - the loop must survive anything
            text = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, OkxError):  # OkxError: already recorded by the REST core
                self._time.note_failure(text)
            self._failing += 1
            self._failed_at = self._clock.monotonic()
            level = logging.WARNING if self._failing == 1 else logging.DEBUG
            _log.log(
                level,
                "periodic clock re-sync failed (%d in a row), next try in %g s: %s",
                self._failing,
                min(self.interval_s, SYNC_RETRY_S),
                text,
                extra={"time_sync_failures": self._failing},
            )
            if self._on_error is not None:
                try:
                    self._on_error(exc)
                except Exception:  # noqa: BLE001 - the loop must survive anything
                    _log.exception("periodic clock re-sync: on_error raised")
            return
        if self._failing:
            _log.info("periodic clock re-sync works again after %d failures", self._failing)
        self._failing = 0

    def __repr__(self) -> str:
        return f"TimeSyncTimer(interval_s={self.interval_s:g}, running={self.running})"
