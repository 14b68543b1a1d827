"""One rate budget as a sliding-window log with a pacer and an adaptive ceiling. Pure.

A ``Window`` with published limit ``L`` per ``W`` seconds runs ``capacity =
ceil(headroom * L)`` admissions per ``span = W * capacity / (headroom * L)``
seconds (``span >= W``), so its long-run rate is ``headroom * L / W`` and no
window of ``W`` seconds ever holds more than ``capacity <= L``. It is a
sliding-window log, not a refilling token bucket: an admission occupies the
window while the request is in flight and for ``span`` seconds after its
release (the response arrived). OKX counts arrival times, and an arrival lies
between admission and response, so two admissions more than ``span`` apart can
never land in one OKX window, whatever the latency jitter. An admission never
released is counted as released ``INFLIGHT_HOLD_S`` after it was admitted.

Pacer: while the window holds at most ``burst_fraction`` of the capacity (and
it is not recovering from a penalty) calls go back to back; beyond that
admissions are spaced ``span / capacity`` apart, so a saturated budget sends
evenly instead of in window-sized bursts.

Penalty: ``penalise`` admits nothing until the hold (``Retry-After``, capped to
``max_hold_s``, else one window, at most 60 s) has passed, then runs at
``penalty_factor`` of the ceiling and recovers linearly to the full ceiling over
``recovery_windows`` windows; a penalty during a hold is an echo (not
compounded).

Every method takes ``now`` (seconds, monotonic) from the caller: no clock, no
lock, no I/O. Not thread-safe: the caller serialises access (the local backend
does it under the gate's lock).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Protocol


class WindowSettings(Protocol):
    """What a window reads from the gate's configuration (``RequestGateConfig`` has it);
    a protocol, so this pure module imports nothing of the package above it."""

    @property
    def headroom(self) -> float: ...
    @property
    def penalty_factor(self) -> float: ...
    @property
    def burst_fraction(self) -> float: ...
    @property
    def recovery_windows(self) -> float: ...
    def cap_hold(self, seconds: float | None) -> float | None: ...


__all__ = ["Window", "INFLIGHT_HOLD_S", "MAX_PENALTY_HOLD_S"]

MAX_PENALTY_HOLD_S = 60.0  # a 429 without Retry-After holds one window, at most this
INFLIGHT_HOLD_S = 30.0  # an unreleased admission counts as released this long after it
_EPS = 1e-9
_MIN_STEP_S = 1e-9


class Window:
    """The sliding-window log of one budget (see the module docstring).

    ``limit`` per ``window_s`` as published; ``config`` gives headroom,
    burst fraction, penalty factor, recovery and the hold cap. Admissions are
    identified by the caller's entry ids. Not thread-safe.
    """

    def __init__(self, limit: int, window_s: float, config: WindowSettings) -> None:
        self.window_s = window_s
        self.headroom = config.headroom
        self.penalty_factor = config.penalty_factor
        self.burst_fraction = config.burst_fraction
        self._cap_hold = config.cap_hold
        self.recovery_s = config.recovery_windows * window_s
        self.next_paced = -math.inf  # pacer: earliest next admission once the window is hot
        self.limit = 0
        self.capacity = 0
        self.span_s = window_s
        self.set_limit(limit)
        self._log: deque[tuple[float, int]] = deque()  # (counted-from time, cost), sorted
        self._log_sum = 0
        self._inflight: dict[int, tuple[float, int]] = {}
        self._inflight_sum = 0
        self.hold_until_s = -math.inf
        self.factor0 = 1.0  # capacity fraction right after the hold; 1 = not penalised

    def set_limit(self, limit: int) -> None:
        """Resize to a new published limit (capacity and span follow; the log stays)."""
        self.limit = int(limit)
        scaled = self.limit * self.headroom
        self.capacity = max(1, math.ceil(scaled - _EPS))
        self.span_s = self.window_s * self.capacity / scaled

    # -- accounting
    def _prune(self, now: float) -> None:
        if self._inflight:
            for eid, (start, cost) in list(self._inflight.items()):
                if start + INFLIGHT_HOLD_S <= now:
                    del self._inflight[eid]
                    self._inflight_sum -= cost
                    self._append(start + INFLIGHT_HOLD_S, cost)
        span = self.span_s
        while self._log and self._log[0][0] + span <= now:
            self._log_sum -= self._log.popleft()[1]

    def _append(self, ts: float, cost: int) -> None:
        if self._log and self._log[-1][0] > ts:
            ts = self._log[-1][0]
        self._log.append((ts, cost))
        self._log_sum += cost

    def used(self, now: float) -> int:
        """Tokens counted at ``now``: in flight plus released less than a span ago."""
        self._prune(now)
        return self._log_sum + self._inflight_sum

    @property
    def in_flight(self) -> int:
        """Tokens admitted and not yet released (nor lapsed)."""
        return self._inflight_sum

    def _pace_start(self, now: float, cap: int, cost: int, reserved: int) -> float:
        """Earliest time the pacer lets a call of ``cost`` go.

        Work-conserving: waiters queued ahead but blocked on another budget
        (``reserved``) keep their share of the capacity, not the pacing slot.
        """
        busy = self.used(now) + reserved
        burst = max(1, math.floor(cap * self.burst_fraction + _EPS))
        if busy + cost <= burst and self.factor0 >= 1.0:
            return now  # cool window: back to back
        return self.next_paced

    def admit(self, now: float, cost: int, eid: int) -> None:
        """Count admission ``eid`` of ``cost`` tokens (in flight from ``now``)."""
        cap = max(1, self.cap(now))
        self.next_paced = max(self.next_paced, now) + cost * self.span_s / cap
        self._inflight[eid] = (now, cost)
        self._inflight_sum += cost

    def release(self, eid: int, now: float) -> None:
        """Admission ``eid`` ended at ``now``: it counts for one more span (unknown id: no-op)."""
        entry = self._inflight.pop(eid, None)
        if entry is not None:
            self._inflight_sum -= entry[1]
            self._append(now, entry[1])

    # -- adaptive ceiling
    def factor(self, now: float) -> float:
        """The fraction of the capacity allowed at ``now`` (0 while held, 1 when recovered)."""
        if self.factor0 >= 1.0:
            return 1.0
        if now < self.hold_until_s:
            return 0.0
        value = self.factor0 + (1.0 - self.factor0) * (now - self.hold_until_s) / self.recovery_s
        if value >= 1.0:
            self.factor0 = 1.0
            return 1.0
        return value

    def cap(self, now: float) -> int:
        """The ceiling at ``now`` in tokens (0 while held)."""
        if now < self.hold_until_s:
            return 0
        factor = self.factor(now)
        if factor >= 1.0:
            return self.capacity
        return max(1, math.floor(self.capacity * factor + _EPS))

    def fits(self, now: float, cost: int, reserved: int) -> bool:
        """True when ``cost`` more tokens may go at ``now``, with ``reserved`` tokens kept
        for waiters ahead; a call larger than the ceiling (within the limit) goes alone."""
        cap = self.cap(now)
        if cap <= 0:
            return False
        busy = self.used(now) + reserved
        if not (busy + cost <= cap or (busy == 0 and cost > cap)):
            return False
        return self._pace_start(now, cap, cost, reserved) <= now + _EPS

    def next_change(self, now: float, cost: int, reserved: int) -> float:
        """Earliest time at which ``fits`` may turn true without a release (> ``now``)."""
        if now < self.hold_until_s:
            return self.hold_until_s
        cap = self.cap(now)
        candidates: list[float] = []
        allowed = cap - cost if cost <= cap else 0
        excess = self.used(now) + reserved - allowed
        if excess > 0:
            freed = 0
            for ts, item_cost in self._log:
                freed += item_cost
                if freed >= excess:
                    candidates.append(ts + self.span_s)
                    break
            if self._inflight:
                oldest = min(start for start, _ in self._inflight.values())
                candidates.append(oldest + INFLIGHT_HOLD_S)
        pace_at = self._pace_start(now, cap, cost, reserved)
        if pace_at > now + _EPS:
            candidates.append(pace_at)
        if self.factor0 < 1.0 and cap < self.capacity:
            step = ((cap + 1) / self.capacity - self.factor0) / (1.0 - self.factor0)
            candidates.append(self.hold_until_s + step * self.recovery_s + _EPS)
        return max(min(candidates, default=math.inf), now + _MIN_STEP_S)

    def penalise(self, now: float, retry_after_s: float | None) -> bool:
        """Hold, then restart at a reduced rate. False when already holding (an echo; a
        longer explicit ``retry_after_s`` still extends the hold)."""
        capped = self._cap_hold(retry_after_s)
        explicit = capped if capped is not None and capped > 0 else 0.0
        if now < self.hold_until_s:
            if explicit:
                self.hold_until_s = max(self.hold_until_s, now + explicit)
            return False
        hold = explicit or min(self.window_s, MAX_PENALTY_HOLD_S)
        floor = 1.0 / (2 * self.capacity)
        self.factor0 = max(floor, self.factor(now) * self.penalty_factor)
        self.hold_until_s = now + hold
        # After the hold: one probe, then the reduced rate, evenly spaced (no burst).
        self.next_paced = self.hold_until_s
        return True

    def snapshot(self, now: float) -> dict[str, Any]:
        """The window's figures at ``now`` (JSON-serialisable; see ``RequestGate.stats``)."""
        used = self.used(now)
        cap = self.cap(now)
        return {
            "limit": self.limit,
            "window_s": self.window_s,
            "capacity": self.capacity,
            "span_s": round(self.span_s, 6),
            "published_rate": round(self.limit / self.window_s, 6),
            "current_rate": round(cap / self.span_s, 6),
            "rate_factor": round(self.factor(now), 4),
            "held_for_s": round(max(0.0, self.hold_until_s - now), 6),
            "tokens": max(0, cap - used),
            "used": used,
            "in_flight": self._inflight_sum,
        }
