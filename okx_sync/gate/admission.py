"""``Admission``: who may go now. The gate's lock, HTTP slots, waiters and rate windows.

``acquire`` admits a call at once when nobody is queued and every budget has
room (FIFO has no one to be fair to); otherwise the call becomes a ``Waiter``
in the ``WaitQueue`` and parks on its own lock until a grant scan admits it,
its deadline passes or the gate closes. A grant scan runs whenever something
changes: a release, a penalty, a new account limit, a waiter's timed wake-up
(the earliest time a bucket that held someone may change). The thread that
admits a waiter does its bookkeeping (windows, stats, the permit) before waking
it, so a woken waiter returns without taking the lock again.

Window state is reached only through the ``GateBackend``; per-bucket counters
live in ``BucketCounters``; log lines are collected as notes and emitted after
the lock is released.

Thread safety: every public method takes the one ``threading.Lock``; no lock
is held while a waiter parks or while a line is logged.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import attrs

from ..clock import Clock
from ..errors import RequestStateError
from .account_limit import AccountLimit
from .backend import BackendDown, BucketStore
from .charges import ACCOUNT_BUCKET_KEY, Charge
from .config import RequestGateConfig
from .notes import Note, emit, penalty_note, timeout_note
from .permit import Permit
from .queue import Waiter, WaitQueue
from .stats import BucketCounters, GateCounters, GateStats

__all__ = ["Admission"]


class Admission:
    """The admission state of one gate (module docstring). ``account`` is told when
    a load of the account limit is admitted or times out, and sizes the account
    bucket. Thread-safe."""

    def __init__(
        self,
        config: RequestGateConfig,
        clock: Clock,
        backend: BucketStore,
        account: AccountLimit,
    ) -> None:
        self._config = config
        self._clock = clock
        self._windows = backend
        self._account = account
        self._lock = threading.Lock()
        self._queue = WaitQueue()
        self._stats = GateCounters()
        self._buckets: dict[str, BucketCounters] = {}  # per key, in step with the backend's
        self._in_flight = 0
        self._next_wake = math.inf
        self._closed = False

    def acquire(
        self,
        charges: Sequence[Charge],
        *,
        slot: bool,
        cancel_lane: bool,
        loads: bool,
        timeout_s: float,
        method: str,
        path: str,
    ) -> Permit:
        """Block until ``charges`` (and an HTTP slot when ``slot``) are granted, at most
        ``timeout_s`` seconds. Raises ``RequestStateError(stage="gate", dispatched=False)``
        on timeout or when closed (nothing charged)."""
        notes: list[Note] = []
        try:
            self._lock.acquire()
            try:
                now = self._clock.monotonic()
                if self._closed:
                    raise RequestStateError(
                        "client closed", stage="gate", dispatched=False, method=method, path=path
                    )
                keyed = [(self._open(charge), charge.cost) for charge in charges]
                if not self._queue and (not slot or self._in_flight < self._config.max_concurrent):
                    try:
                        entry, _ = self._windows.try_admit([(k, c, 0) for k, c in keyed], now)
                    except BackendDown as exc:
                        self._stats.timeouts += 1
                        raise _down_error(exc, method, path) from exc
                    if entry is not None:
                        if slot:
                            self._in_flight += 1
                        permit = self._new_permit(keyed, slot, now, now, loads, entry)
                        self._lock.release()
                        return permit
            except BaseException:
                self._lock.release()
                raise
            waiter = Waiter(keyed, slot, now, loads)
            return self._wait(waiter, cancel_lane, timeout_s, method, path, notes)
        finally:
            notes.extend(self._windows.drain_notes())
            emit(notes)

    def _wait(
        self,
        waiter: Waiter,
        cancel_lane: bool,
        limit: float,
        method: str,
        path: str,
        notes: list[Note],
    ) -> Permit:
        """Queue ``waiter`` and wait until it is admitted. Entered with the lock held;
        returns or raises with it released."""
        locked = True
        now = waiter.start
        deadline = now + limit
        self._queue.add(waiter, cancel_lane)
        try:
            while True:
                if not waiter.granted:  # else admitted by another thread's _grant
                    self._grant(now)
                if waiter.granted:
                    break
                if self._closed:
                    raise RequestStateError(
                        "client closed while waiting in the request gate",
                        stage="gate",
                        dispatched=False,
                        method=method,
                        path=path,
                    )
                now = self._clock.monotonic()
                if now >= deadline:
                    raise self._timeout_error(waiter, limit, method, path, notes)
                wake = min(deadline, self._next_wake)
                self._lock.release()
                locked = False
                waiter.park(self._clock, max(0.0, wake - now))
                if waiter.granted:  # set by _admit (under the lock) before the wake-up
                    break
                self._lock.acquire()
                locked = True
                now = self._clock.monotonic()
        except BaseException:
            if not locked:
                self._lock.acquire()
                locked = True
            if waiter.granted and waiter.permit is not None:
                waiter.permit._released = True
                self._release_locked(waiter.permit)
            elif self._queue.remove(waiter):
                self._grant(self._clock.monotonic())
            self._queue.wake_all()
            raise
        finally:
            if locked:
                self._lock.release()
        if waiter.error is not None:
            raise _down_error(waiter.error, method, path) from waiter.error
        notes.extend(waiter.slow_notes)  # written by the admitting thread before the wake-up
        assert waiter.permit is not None  # granted implies a permit
        return waiter.permit

    def _timeout_error(
        self, waiter: Waiter, limit: float, method: str, path: str, notes: list[Note]
    ) -> RequestStateError:
        self._stats.timeouts += 1
        if waiter.slot and self._in_flight >= self._config.max_concurrent:
            waiter.slot_blocked = True  # (a waiter behind a full cap may not have been scanned)
        for key in waiter.blocked_on:
            self._buckets[key].timeouts += 1
        what = waiter.held_by(self._config.max_concurrent)
        if waiter.loads_account_limit:
            self._account.load_not_admitted(notes)
        notes.append(timeout_note(method, path, limit, what))
        return RequestStateError(
            f"not admitted by the request gate within {limit:g} s (waiting for {what})",
            stage="gate",
            dispatched=False,
            method=method,
            path=path,
        )

    def _open(self, charge: Charge) -> str:
        """The bucket key of ``charge``, opened in the backend on first use (lock held)."""
        if charge.key not in self._buckets:
            if charge.kind == "account":  # sized by the limit in force now
                charge = attrs.evolve(charge, limit=self._account.limit)
            self._windows.open(charge.key, charge.limit, charge.window_s)
            self._buckets[charge.key] = BucketCounters(charge)
        return charge.key

    def _grant(self, now: float) -> None:
        """Admit every queued waiter that may go now (``WaitQueue.grant``) and set the
        next timed wake-up; wake everyone when it moved earlier. Lock held."""
        if not self._queue:
            self._next_wake = math.inf
            return
        slots = self._config.max_concurrent - self._in_flight
        next_wake = self._queue.grant(
            now, slots, self._windows, lambda w, entry: self._admit(w, now, entry), self._fail
        )
        earlier = next_wake < self._next_wake
        self._next_wake = next_wake
        if earlier:
            self._queue.wake_all()

    def _fail(self, waiter: Waiter, exc: BackendDown) -> None:
        """A queued waiter the shared store could not serve: wake it to raise (lock held)."""
        self._stats.timeouts += 1
        waiter.error = exc
        waiter.granted = True
        waiter.wake()

    def _admit(self, waiter: Waiter, now: float, entry: int) -> None:
        """Admit a queued waiter: count it, build its permit, wake it (lock held)."""
        if waiter.slot:
            self._in_flight += 1
        waited = now - waiter.start
        if waited > self._config.slow_wait_log_s:
            for key in waiter.waited_for:
                note = self._buckets[key].slow_wait_note(waited, now, self._config.headroom)
                if note is not None:
                    waiter.slow_notes.append(note)
        waiter.permit = self._new_permit(
            waiter.charges, waiter.slot, waiter.start, now, waiter.loads_account_limit, entry
        )
        waiter.granted = True
        waiter.wake()

    def _new_permit(
        self,
        keyed: Sequence[tuple[str, int]],
        slot: bool,
        start: float,
        now: float,
        loads: bool,
        entry: int,
    ) -> Permit:
        """The bookkeeping of one admission (slot already counted by the caller, the
        buckets by the store under ``entry``)."""
        waited = now - start
        entries = []
        for key, cost in keyed:
            entries.append((key, entry))
            self._buckets[key].count_admission(cost, waited)
        if loads:
            self._account.load_admitted(now)
        self._stats.count_admission(waited)
        return Permit(self, waited, slot=slot, entries=entries, admitted_at=now)

    def _release(self, permit: Permit) -> None:
        """``Permit.release``: free its slot and windows, grant again (idempotent)."""
        with self._lock:
            if not permit._released:  # checked under the lock: two releasers free it once
                permit._released = True
                self._release_locked(permit)
            notes = self._windows.drain_notes()
        emit(notes)

    def _release_locked(self, permit: Permit) -> None:
        now = self._clock.monotonic()
        if permit._entries:
            self._windows.release(permit.keys, permit._entries[0][1], now)
        if permit._slot:
            self._in_flight -= 1
        self._grant(now)

    # ------------------------------------------------------------------ news for everyone
    def penalise(
        self,
        charges: Sequence[Charge],
        http_status: int | None,
        code: str,
        retry_after_s: float | None,
    ) -> None:
        """Hold the buckets of ``charges`` after a throttled answer (a WARNING per bucket
        newly held; one already held counts the echo only), then grant and wake all."""
        notes: list[Note] = []
        with self._lock:
            now = self._clock.monotonic()
            for charge in charges:
                key = self._open(charge)
                self._buckets[key].throttled += 1
                hold_s, factor = self._windows.penalise(key, now, retry_after_s)
                if hold_s > 0:
                    self._buckets[key].penalties += 1
                    notes.append(penalty_note(key, http_status, code, hold_s, factor))
            self._grant(now)
            self._queue.wake_all()
            notes.extend(self._windows.drain_notes())
        emit(notes)

    def resize_account_bucket(self) -> None:
        """Size the account order bucket to the account limit in force; grant, wake all."""
        with self._lock:
            stats = self._buckets.get(ACCOUNT_BUCKET_KEY)
            if stats is not None:
                stats.limit = self._account.limit
                self._windows.set_limit(ACCOUNT_BUCKET_KEY, stats.limit)
            self._grant(self._clock.monotonic())
            self._queue.wake_all()

    def set_uid(self, uid: str) -> None:
        """The account's uid is known: the store scopes UID buckets by it."""
        with self._lock:
            self._windows.set_uid(uid)
            notes = self._windows.drain_notes()
        emit(notes)

    def close(self) -> None:
        """Refuse new calls and wake every waiter (they raise). Idempotent."""
        with self._lock:
            self._closed = True
            self._queue.wake_all()
            self._windows.close()

    # ------------------------------------------------------------------ inspection
    @property
    def in_flight(self) -> int:
        """HTTP requests admitted and not yet released."""
        with self._lock:
            return self._in_flight

    def keys(self) -> list[str]:
        """Keys of the buckets opened so far, sorted."""
        with self._lock:
            return sorted(self._buckets)

    def snapshot(self, account: dict[str, Any]) -> GateStats:
        """The ``RequestGate.stats()`` snapshot, with ``account`` as its account entry."""
        with self._lock:
            now = self._clock.monotonic()
            buckets = [
                self._buckets[key].snapshot(self._windows.snapshot(key, now))
                for key in sorted(self._buckets)
            ]
            snapshot = self._stats.snapshot(
                in_flight=self._in_flight,
                waiting=len(self._queue),
                config=self._config,
                account=account,
                buckets=buckets,
                backend=self._windows.stats(),
            )
            notes = self._windows.drain_notes()
        emit(notes)
        return snapshot


def _down_error(exc: BackendDown, method: str, path: str) -> RequestStateError:
    """The caller's error when the shared gate store could not admit it."""
    return RequestStateError(
        f"request gate: {exc}; nothing was sent",
        stage="gate",
        dispatched=False,
        method=method,
        path=path,
    )
