"""Injected time: every wait, timer and timestamp in okx_sync goes through a Clock.

``SystemClock`` is the real one. ``FakeClock`` lets tests drive the gate,
heartbeat and backoff logic deterministically, without real sleeps: its
``sleep`` and ``wait`` advance the fake time instead of blocking.

The wall clock (``time()``) is used only for OKX timestamps; intervals and
deadlines use ``monotonic()``.
"""

from __future__ import annotations

import _thread
import threading
import time as _time
from typing import Protocol, runtime_checkable

_LockType = _thread.LockType

__all__ = ["Clock", "SystemClock", "FakeClock", "SYSTEM_CLOCK", "park"]


@runtime_checkable
class Clock(Protocol):
    """What okx_sync needs from time. Implementations must be thread-safe."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    def wait(self, cond: threading.Condition, timeout_s: float | None) -> bool:
        """Wait on ``cond`` (which the caller holds) for a notify or ``timeout_s``.

        Returns what ``Condition.wait`` returns (False on timeout). Like
        ``Condition.wait`` it may return early (and a timed-out wait may have
        consumed a notify): call it in a loop that re-checks the predicate and
        the remaining time.
        """
        ...


class SystemClock:
    """The real clock (``time.monotonic``, ``time.time``, ``time.sleep``).

    Thread safety: stateless, safe from any thread.
    """

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return _time.monotonic()

    def time(self) -> float:
        """Return ``time.time()``."""
        return _time.time()

    def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` (non-positive returns at once)."""
        if seconds > 0:
            _time.sleep(seconds)

    def wait(self, cond: threading.Condition, timeout_s: float | None) -> bool:
        """``cond.wait(timeout)``."""
        return cond.wait(timeout_s)

    def park(self, lock: _LockType, timeout_s: float | None) -> bool:
        """Block until ``lock`` can be taken (another thread released it) or
        ``timeout_s`` passes; True when taken. See :func:`park`."""
        return _acquire(lock, timeout_s)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()


def _acquire(lock: _LockType, timeout: float | None) -> bool:
    if timeout is None:
        return lock.acquire()
    if timeout <= 0:
        return lock.acquire(False)
    return lock.acquire(True, timeout)


def park(clock: Clock, lock: _LockType, timeout_s: float | None) -> bool:
    """Park the calling thread on ``lock`` (a ``threading.Lock`` it holds, used
    as a one-shot wake-up: the waking thread releases it) until it is released
    or ``timeout_s`` passes, in ``clock``'s time; True when woken.

    Cheaper than a ``Condition`` per waiter (no Python-level waiter list: one
    C call each side), and a release that comes first is never lost. Like
    ``wait`` it may return early: loop on the predicate. A clock without a
    ``park`` method of its own waits in real time. Thread safety: any thread.
    """
    own = getattr(clock, "park", None)
    if own is not None:
        return bool(own(lock, timeout_s))
    return _acquire(lock, timeout_s)


class FakeClock:
    """A clock that only moves when told to, for deterministic tests.

    By default (``auto_advance=True``) ``sleep(s)`` and ``wait(cond, timeout)``
    advance the fake time by the requested amount instead of blocking (``wait``
    briefly releases ``cond`` so other threads can run): right for
    single-threaded timing logic.

    With ``auto_advance=False`` time moves only through ``advance``: ``wait``
    blocks (really) for one short poll and returns, so the caller's predicate
    loop sees a notify or the time reaching its deadline, and ``sleep`` blocks
    until the fake time has moved by ``s``. Use
    it to drive several threads step by step. Blocked calls notice an
    ``advance`` within ``poll_s`` real seconds. A timeout counts from the fake
    time the calling thread last saw (its last ``monotonic``/``time``/
    ``advance`` call or the end of its last ``sleep``/``wait``): callers compute
    timeouts from a reading (``wait(cond, due - clock.monotonic())``), and an
    ``advance`` by another thread between that reading and the wait is not
    lost (it would otherwise push the deadline back by the advance).

    Thread safety: all methods may be called from any thread.
    """

    def __init__(
        self,
        start: float = 1_000.0,
        wall_start: float = 1_700_000_000.0,
        *,
        auto_advance: bool = True,
        poll_s: float = 0.002,
    ) -> None:
        self._lock = threading.Lock()
        self._mono = float(start)
        self._wall_offset = float(wall_start) - float(start)
        self.sleeps: list[float] = []
        self.auto_advance = auto_advance
        self._poll_s = poll_s
        self._seen = threading.local()  # .mono: the fake time this thread last saw

    def monotonic(self) -> float:
        """Fake monotonic seconds."""
        with self._lock:
            now = self._mono
        self._seen.mono = now
        return now

    def time(self) -> float:
        """Fake wall-clock seconds (moves with ``monotonic``)."""
        with self._lock:
            now, offset = self._mono, self._wall_offset
        self._seen.mono = now
        return now + offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (must be >= 0)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._mono += seconds
            now = self._mono
        self._seen.mono = now

    def _deadline(self, seconds: float) -> float:
        """Manual mode: ``seconds`` after the fake time this thread last saw."""
        seen: float | None = getattr(self._seen, "mono", None)
        if seen is None:
            return self.monotonic() + seconds
        return seen + seconds

    def set_wall(self, wall: float) -> None:
        """Set the wall clock (e.g. to simulate skew) without moving ``monotonic``."""
        with self._lock:
            self._wall_offset = wall - self._mono

    def sleep(self, seconds: float) -> None:
        """Record the sleep; advance time by it (auto) or block until advanced (manual)."""
        self.sleeps.append(seconds)
        if seconds <= 0:
            return
        if self.auto_advance:
            self.advance(seconds)
            return
        deadline = self._deadline(seconds)
        while self.monotonic() < deadline:
            _time.sleep(self._poll_s)

    def wait(self, cond: threading.Condition, timeout_s: float | None) -> bool:
        """Wait on ``cond`` (held by the caller) in fake time.

        Auto mode: advance time by ``timeout_s`` (if any), yield ``cond`` briefly
        and return False (as a timed-out wait); with no timeout, wait for a
        real notify. Manual mode: False at once when the fake time has reached
        ``timeout_s`` after this thread's last reading; otherwise block for one
        real poll (``poll_s``) and return whether ``cond`` was notified. A
        return is a wake-up, not a verdict (as with ``Condition.wait``): callers
        re-check their predicate and the clock in a loop, which every caller in
        okx_sync does.
        """
        if timeout_s is None:
            return cond.wait()
        if self.auto_advance:
            if timeout_s > 0:
                self.advance(timeout_s)
            cond.wait(0)
            return False
        deadline = self._deadline(timeout_s)
        if self.monotonic() >= deadline:
            return False
        # One real poll, then back to the caller, who re-checks its predicate and
        # the time. Waiting on here until the fake deadline would lose notifies:
        # a timed-out Condition.wait that races a notify consumes it and still
        # reports False (CPython's Condition), so the state change would only be
        # seen once fake time reached the deadline.
        notified = cond.wait(self._poll_s)
        self.monotonic()  # seen: the time it woke at
        return notified

    def park(self, lock: _LockType, timeout_s: float | None) -> bool:
        """:func:`park` in fake time: auto mode advances by ``timeout_s`` and
        takes ``lock`` if it is free; manual mode takes it if free once the
        fake time reached ``timeout_s`` after this thread's last reading, else
        waits one real poll for it. A return is a wake-up, not a verdict."""
        if timeout_s is None:
            return lock.acquire()
        if self.auto_advance:
            if timeout_s > 0:
                self.advance(timeout_s)
            return lock.acquire(False)
        if self.monotonic() >= self._deadline(timeout_s):
            return lock.acquire(False)
        taken = lock.acquire(True, self._poll_s)
        self.monotonic()  # seen: the time it woke at
        return taken

    def __repr__(self) -> str:
        return f"FakeClock(monotonic={self.monotonic():.3f})"
