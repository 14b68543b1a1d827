"""The gate's waiters: two FIFO lanes, the grant scan, parking on a per-waiter lock.

A call that cannot be admitted at once becomes a ``Waiter`` in a
``WaitQueue``: the cancel lane (cancels, ``cancel-all-after``) or the main
lane. ``WaitQueue.grant`` scans the cancel lane first, then the main lane, and
admits (through the gate's callback) every waiter that fits now, in order. A
waiter that does not fit reserves its cost on its buckets, and a bucket that
could not fit a waiter stays closed to later waiters: first come, first served
among waiters for the same budget, while a waiter for a full bucket never
blocks callers of other buckets (no head-of-line blocking). Cancel-lane waiters
get the next free in-flight slot before placements and amends; waiters that
need no slot (WS order entry) pass a full concurrency cap.

Parking: each waiter owns a ``threading.Lock`` taken at creation; it parks by
acquiring it again (``clock.park``, so a FakeClock drives it in tests) and
whoever admits it, or has news for every waiter, releases it. A release that
comes before the waiter parks is kept by the lock, so no wake-up is lost, and
an admitted waiter is woken alone (no herd).

Thread safety: ``WaitQueue`` and the waiters' fields are guarded by the gate's
lock; ``Waiter.park`` is called without it, by the waiting thread only.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..clock import Clock, park
from .backend import BackendDown
from .notes import Note
from .permit import Permit

if TYPE_CHECKING:
    from .backend import BucketStore

__all__ = ["Waiter", "WaitQueue"]


class Waiter:
    """One queued call: its charges (``(bucket key, cost)``), whether it needs an
    HTTP slot, when it started waiting, and what the grant scans found."""

    __slots__ = (
        "charges",
        "slot",
        "start",
        "loads_account_limit",
        "granted",
        "permit",
        "blocked_on",
        "slot_blocked",
        "waited_for",
        "slow_notes",
        "lock",
        "error",
    )

    def __init__(
        self, charges: list[tuple[str, int]], slot: bool, start: float, loads: bool
    ) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()  # held from the start: parking acquires it again
        self.charges = charges
        self.slot = slot
        self.start = start
        self.loads_account_limit = loads
        self.granted = False
        self.permit: Permit | None = None  # set by the admitting thread before the wake-up
        self.blocked_on: list[str] = []  # bucket keys that held it in the last scan
        self.slot_blocked = False
        self.waited_for: dict[str, None] = {}  # every bucket that held it at some point
        self.slow_notes: list[Note] = []  # slow-wait lines, written by the admitting thread
        self.error: BackendDown | None = None  # set when the shared store could not serve it

    def park(self, clock: Clock, timeout_s: float) -> bool:
        """Wait (no gate lock held) until woken or ``timeout_s`` passes; True when woken."""
        return park(clock, self.lock, timeout_s)

    def wake(self) -> None:
        """Release the waiter's lock (under the gate lock, so one releaser at a time; a
        lock already released and not yet re-taken by its waiter stays so)."""
        if self.lock.locked():
            self.lock.release()

    def held_by(self, max_concurrent: int) -> str:
        """What held it back, for a timeout message: bucket keys, the concurrency cap."""
        blocking = list(self.blocked_on)
        if self.slot_blocked:
            blocking.append(f"concurrency cap {max_concurrent}")
        return ", ".join(blocking) or "earlier waiters"


class WaitQueue:
    """The cancel lane and the main lane, FIFO each (see the module docstring)."""

    def __init__(self) -> None:
        self._cancel: deque[Waiter] = deque()
        self._main: deque[Waiter] = deque()
        self._slotless = 0  # queued waiters that need no slot (WS order entry)

    def __len__(self) -> int:
        return len(self._cancel) + len(self._main)

    def __iter__(self) -> Iterator[Waiter]:
        yield from self._cancel
        yield from self._main

    def add(self, waiter: Waiter, cancel_lane: bool) -> None:
        """Queue ``waiter`` at the end of its lane."""
        (self._cancel if cancel_lane else self._main).append(waiter)
        if not waiter.slot:
            self._slotless += 1

    def remove(self, waiter: Waiter) -> bool:
        """Take a waiter out (it gave up); False when it is not queued."""
        for lane in (self._cancel, self._main):
            if waiter in lane:
                lane.remove(waiter)
                if not waiter.slot:
                    self._slotless -= 1
                return True
        return False

    def wake_all(self) -> None:
        """Wake every queued waiter (state changed for all: close, penalty, new limit)."""
        for waiter in self:
            waiter.wake()

    def grant(
        self,
        now: float,
        slots: int,
        backend: BucketStore,
        admit: Callable[[Waiter, int], None],
        fail: Callable[[Waiter, BackendDown], None],
    ) -> float:
        """Admit, in order, every waiter that may go at ``now`` with ``slots`` free HTTP
        slots, calling ``admit(waiter, entry)`` for each (which counts it in the slots
        before the next one is tried; the store counted it in the buckets). A waiter
        the store cannot serve (``BackendDown``) leaves through ``fail(waiter, exc)``,
        and so does every later one of this scan that would need the store. Returns
        the earliest time a bucket that held a waiter may change without a release
        (inf: none)."""
        reserved: dict[str, int] = {}
        blocked: set[str] = set()
        next_wake = math.inf
        slotless_ahead = self._slotless
        down: BackendDown | None = None
        for lane in (self._cancel, self._main):
            keep: list[Waiter] = []
            while lane:
                if slots <= 0 and not slotless_ahead:
                    # No slot left and every waiter from here on needs one: none of
                    # them can go before a release, which grants again. (Scanning
                    # them would cost O(waiters) per release under the lock.)
                    break
                waiter = lane.popleft()
                if not waiter.slot:
                    slotless_ahead -= 1
                waiter.blocked_on = [key for key, _ in waiter.charges if key in blocked]
                waiter.slot_blocked = False
                entry: int | None = None
                if not waiter.blocked_on:
                    if waiter.slot and slots <= 0:
                        waiter.slot_blocked = True
                    elif down is None:
                        items = [(key, cost, reserved.get(key, 0)) for key, cost in waiter.charges]
                        try:
                            entry, held = backend.try_admit(items, now)
                        except BackendDown as exc:
                            down = exc
                        else:
                            waiter.blocked_on = list(held)
                            blocked.update(held)
                            next_wake = min(next_wake, *held.values(), math.inf)
                    if down is not None and not waiter.slot_blocked:
                        if not waiter.slot:
                            self._slotless -= 1
                        fail(waiter, down)
                        continue
                if entry is not None:
                    if waiter.slot:
                        slots -= 1
                    else:
                        self._slotless -= 1
                    admit(waiter, entry)
                else:
                    for key, cost in waiter.charges:
                        reserved[key] = reserved.get(key, 0) + cost
                    waiter.waited_for.update(dict.fromkeys(waiter.blocked_on))
                    keep.append(waiter)
            lane.extendleft(reversed(keep))  # the skipped ones, in their order, in front
        return next_wake
