"""One timer thread for the simulator (cancel-all-after, delayed closes, fault expiry).

``Timers.schedule(delay, fn)`` runs ``fn`` on the thread ``okx-sim-timers`` after
``delay_s`` seconds of the injected clock's monotonic time (polled, so a FakeClock
that is advanced by a test also fires timers). A callback's exception is logged and
never kills the thread. ``close()`` stops and joins it; pending timers are dropped.

Thread safety: ``schedule``/``cancel``/``close`` may be called from any thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable

from ..clock import Clock

__all__ = ["Timers", "TimerHandle"]

log = logging.getLogger("okx_sync.sim.timers")


class TimerHandle:
    """A scheduled callback; ``cancel()`` prevents it from running (idempotent)."""

    __slots__ = ("due", "fn", "cancelled")

    def __init__(self, due: float, fn: Callable[[], None]) -> None:
        self.due = due
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback (no effect once it ran)."""
        self.cancelled = True


class Timers:
    """A heap of callbacks served by one named thread."""

    def __init__(self, clock: Clock, *, poll: float = 0.02, name: str = "okx-sim-timers") -> None:
        self._clock = clock
        self._poll = poll
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def schedule(self, delay_s: float, fn: Callable[[], None]) -> TimerHandle:
        """Run ``fn`` after ``delay_s`` seconds; returns a handle to cancel it."""
        handle = TimerHandle(self._clock.monotonic() + max(0.0, delay_s), fn)
        with self._cond:
            if self._closed:
                handle.cancelled = True
                return handle
            heapq.heappush(self._heap, (handle.due, next(self._seq), handle))
            self._cond.notify()
        return handle

    def pending(self) -> int:
        """Number of timers not yet run or cancelled."""
        with self._cond:
            return sum(1 for _, _, h in self._heap if not h.cancelled)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                now = self._clock.monotonic()
                due: list[TimerHandle] = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                if not due:
                    wait = self._poll
                    if self._heap:
                        wait = min(wait, max(0.0, self._heap[0][0] - now))
                    self._cond.wait(wait)
                    continue
            for handle in due:
                if handle.cancelled:
                    continue
                try:
                    handle.fn()
                except Exception:
                    log.exception("simulator timer callback failed")

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and join it (idempotent)."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
