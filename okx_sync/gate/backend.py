"""Where the gate's rate-window state lives: the narrow interface and the local backend.

``RequestGate`` touches window state only through the ``GateBackend`` methods
below, keyed by bucket key (a string) and given ``now`` by the gate: open a
bucket, resize it, ask whether a cost fits (with tokens reserved for waiters
ahead) and when that may change, admit and release one admission, penalise,
snapshot. ``LocalGateBackend`` keeps one :class:`~okx_sync.gate.window.Window`
per key in this process. A shared backend (several processes on one account)
implements the same methods over shared storage; the gate's queue, parking,
slots, statistics and account-limit protocol stay local either way.

Thread safety: the gate calls a backend with its own lock held, one call at a
time; ``LocalGateBackend`` relies on that and has no lock of its own.
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

from .config import RequestGateConfig
from .window import Window

__all__ = ["GateBackend", "LocalGateBackend"]


class GateBackend(Protocol):
    """The rate-window state the gate draws on, bucket by bucket (see the module docstring).

    Every method may assume the bucket was opened (``open``) first; ``now`` is the
    gate clock's monotonic time. Thread safety: called under the gate's lock.
    """

    def open(self, key: str, limit: int, window_s: float) -> None:
        """Create bucket ``key`` (``limit`` per ``window_s``) unless it exists."""

    def set_limit(self, key: str, limit: int) -> None:
        """Resize bucket ``key`` to a new published limit (no-op when it does not exist)."""

    def fits(self, key: str, now: float, cost: int, reserved: int) -> bool:
        """True when ``cost`` tokens may be admitted now beside ``reserved`` ones."""

    def next_change(self, key: str, now: float, cost: int, reserved: int) -> float:
        """Earliest time ``fits`` may turn true without a release."""

    def admit(self, key: str, now: float, cost: int) -> int:
        """Count one admission of ``cost`` tokens; returns its entry id."""

    def release(self, key: str, entry: int, now: float) -> None:
        """End admission ``entry`` at ``now`` (idempotent)."""

    def penalise(self, key: str, now: float, retry_after_s: float | None) -> tuple[float, float]:
        """Hold the bucket after a throttled answer: returns ``(hold_s, rate_factor)``,
        ``hold_s`` 0 when it was already held (an echo, not compounded)."""

    def snapshot(self, key: str, now: float) -> dict[str, Any]:
        """The bucket's window figures (JSON-serialisable)."""

    def keys(self) -> list[str]:
        """Keys of the buckets opened so far, sorted."""


class LocalGateBackend:
    """``GateBackend`` over in-process :class:`Window` objects (the default).

    Not thread-safe on its own: the gate serialises calls under its lock.
    """

    def __init__(self, config: RequestGateConfig) -> None:
        self._config = config
        self._windows: dict[str, Window] = {}
        self._entry_ids = itertools.count(1)

    def open(self, key: str, limit: int, window_s: float) -> None:
        """See ``GateBackend.open``."""
        if key not in self._windows:
            self._windows[key] = Window(limit, window_s, self._config)

    def set_limit(self, key: str, limit: int) -> None:
        """See ``GateBackend.set_limit``."""
        window = self._windows.get(key)
        if window is not None:
            window.set_limit(limit)

    def fits(self, key: str, now: float, cost: int, reserved: int) -> bool:
        """See ``GateBackend.fits``."""
        return self._windows[key].fits(now, cost, reserved)

    def next_change(self, key: str, now: float, cost: int, reserved: int) -> float:
        """See ``GateBackend.next_change``."""
        return self._windows[key].next_change(now, cost, reserved)

    def admit(self, key: str, now: float, cost: int) -> int:
        """See ``GateBackend.admit``."""
        entry = next(self._entry_ids)
        self._windows[key].admit(now, cost, entry)
        return entry

    def release(self, key: str, entry: int, now: float) -> None:
        """See ``GateBackend.release``."""
        self._windows[key].release(entry, now)

    def penalise(self, key: str, now: float, retry_after_s: float | None) -> tuple[float, float]:
        """See ``GateBackend.penalise``."""
        window = self._windows[key]
        if not window.penalise(now, retry_after_s):
            return 0.0, window.factor(now)
        return window.hold_until_s - now, window.factor0

    def snapshot(self, key: str, now: float) -> dict[str, Any]:
        """See ``GateBackend.snapshot``."""
        return self._windows[key].snapshot(now)

    def keys(self) -> list[str]:
        """See ``GateBackend.keys``."""
        return sorted(self._windows)
