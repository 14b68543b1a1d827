"""Where the gate's rate-window state lives: the interfaces and the local backend.

Two nouns:

- a **backend** (``GateBackend``) is configuration, given as
  ``RequestGateConfig(backend=...)``: ``LocalGateBackend()`` (the default) or
  ``RedisGateBackend(url)`` (:mod:`okx_sync.gate.redis_backend`). Its
  ``attach(config, clock, scope)`` builds the state one gate draws on;
- a **bucket store** (``BucketStore``) is that state. ``RequestGate`` touches
  window state only through its methods, keyed by bucket key (a string) and
  given ``now`` (the gate clock's monotonic time): open a bucket, resize it,
  try to admit one call on all its buckets at once (``try_admit``: all or
  nothing, one atomic step), release, penalise, snapshot.

The gate's queue, parking, HTTP slots, statistics and account-limit protocol
stay local to the gate whatever the store.

``LocalGateBackend`` keeps one :class:`~okx_sync.gate.window.Window` per
bucket in a process-wide registry keyed by scope: every gate of the process
with the same scope value draws on the same windows (UID-scoped buckets and
the account order bucket: same API key; IP-scoped buckets: the same host, so
every gate). Windows are shared only between gates on the same clock object;
the first gate to open a bucket fixes its headroom, burst and penalty figures.
A scope's windows live while a gate attached to it is open (bounded by the
open gates and the buckets they opened).

Thread safety: the gate calls its store under its own lock; the local store
also takes the registry's lock for every call (gate lock, then registry lock,
never the other way round), because other gates share its windows.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from ..clock import Clock
from .window import Window

__all__ = [
    "GateBackend",
    "GateScope",
    "BucketStore",
    "BackendDown",
    "LocalGateBackend",
    "LocalBucketStore",
    "Blocked",
    "scope_of",
    "key_digest",
    "uid_scoped",
]


class BackendDown(Exception):
    """The shared store could not be reached and its policy says fail (internal: the
    gate turns it into ``RequestStateError(stage="gate", dispatched=False)``)."""


Blocked = dict[str, float]
"""Buckets that held a call: bucket key -> earliest time (gate clock) it may change."""


class BucketStore(Protocol):
    """The rate-window state one gate draws on (see the module docstring).

    Thread safety: called under the gate's lock, one call at a time per gate.
    """

    def open(self, key: str, limit: int, window_s: float) -> None:
        """Make bucket ``key`` (``limit`` per ``window_s``) known unless it is."""

    def set_limit(self, key: str, limit: int) -> None:
        """Resize bucket ``key`` to a new published limit (no-op when unknown)."""

    def try_admit(
        self, items: Sequence[tuple[str, int, int]], now: float
    ) -> tuple[int | None, Blocked]:
        """Admit one call of ``(key, cost, reserved)`` items on all buckets or none:
        ``(entry id, {})`` when admitted, ``(None, blocked)`` when not. ``reserved``
        are tokens kept for local waiters ahead. Raises ``BackendDown``."""

    def release(self, keys: Sequence[str], entry: int, now: float) -> None:
        """End admission ``entry`` on ``keys`` at ``now`` (idempotent; never raises)."""

    def penalise(self, key: str, now: float, retry_after_s: float | None) -> tuple[float, float]:
        """Hold the bucket after a throttled answer: ``(hold_s, rate_factor)``,
        ``hold_s`` 0 when it was already held (an echo). Never raises."""

    def snapshot(self, key: str, now: float) -> dict[str, Any]:
        """The bucket's window figures (JSON-serialisable). Never raises."""

    def set_uid(self, uid: str) -> None:
        """The account's uid became known: UID-scoped buckets use it from now on."""

    def account_share(self) -> Any:
        """The shared account-limit record (``SharedAccountLimit``), or None."""

    def stats(self) -> dict[str, Any]:
        """Backend figures for ``gate_stats().backend`` (JSON-serialisable)."""

    def drain_notes(self) -> list[Any]:
        """Log lines decided under the gate lock, to emit after it is released."""

    def close(self) -> None:
        """Detach from the shared state (idempotent)."""


class GateBackend(Protocol):
    """A backend configuration: builds a ``BucketStore`` for one gate."""

    def attach(self, config: Any, clock: Clock, scope: GateScope) -> BucketStore:
        """The store one gate with ``config`` on ``clock`` for ``scope`` draws on."""


@attrs.frozen
class GateScope:
    """Who a gate counts for: ``uid`` (the account: its uid, else a digest of the API
    key, never the key) and ``ip_label`` (the host). Thread safety: immutable."""

    uid: str
    ip_label: str


_UID_PRINCIPALS = ("UID", "MasterUID")


def uid_scoped(key: str) -> bool:
    """True when bucket ``key`` is scoped by the account (``[UID...]``, ``[MasterUID...]``,
    ``[UID|IP]``), False when by the IP (``[IP]`` and rules without a principal)."""
    _, _, scope = key.rpartition("[")
    return scope.startswith(_UID_PRINCIPALS)


def scope_of(key: str, scope: GateScope) -> str:
    """The principal value bucket ``key`` is counted under: ``uid:...`` or ``ip:...``."""
    return f"uid:{scope.uid}" if uid_scoped(key) else f"ip:{scope.ip_label}"


def key_digest(api_key: str | None) -> str:
    """A stable, non-reversible name for an API key (the key itself never leaves)."""
    if not api_key:
        return "anonymous"
    return "k" + hashlib.sha256(api_key.encode()).hexdigest()[:24]


# ---------------------------------------------------------------------- local registry
class _Group:
    """The windows of one (clock, principal value): shared by the gates attached."""

    __slots__ = ("windows", "users")

    def __init__(self) -> None:
        self.windows: dict[str, Window] = {}
        self.users = 0


class _Registry:
    """Process-wide windows by (clock, principal value); one lock for all of them.

    Bounded: a group lives while a store attached to it is open."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.groups: dict[tuple[int, str], _Group] = {}
        self.clocks: dict[int, Clock] = {}  # keeps each keyed clock alive (no id reuse)
        self.entry_ids = itertools.count(1)

    def join(self, clock: Clock, principal: str) -> _Group:
        with self.lock:
            key = (id(clock), principal)
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = _Group()
                self.clocks[id(clock)] = clock
            group.users += 1
            return group

    def leave(self, clock: Clock, principal: str) -> None:
        with self.lock:
            key = (id(clock), principal)
            group = self.groups.get(key)
            if group is None:
                return
            group.users -= 1
            if group.users <= 0:
                del self.groups[key]
                if not any(k[0] == id(clock) for k in self.groups):
                    self.clocks.pop(id(clock), None)


_REGISTRY = _Registry()  # the one process-wide registry the local backend shares by scope


@attrs.frozen
class LocalGateBackend:
    """The in-process backend (the default): every gate of this process with the same
    scope shares its buckets (module docstring). Thread safety: immutable; the
    stores it builds are used under their gate's lock."""

    def attach(self, config: Any, clock: Clock, scope: GateScope) -> LocalBucketStore:
        """A store over the process registry for one gate."""
        return LocalBucketStore(config, clock, scope)


class LocalBucketStore:
    """``BucketStore`` over the process-wide registry of :class:`Window` objects.

    ``share`` < 1 runs every bucket at that fraction of its published rate (the
    Redis backend's fallback, whose windows are shared under their own ``tag``
    by the Redis-backed gates of the process); ``private`` keeps the windows
    to this store. Thread safety: see the module docstring."""

    def __init__(
        self,
        config: Any,
        clock: Clock,
        scope: GateScope,
        *,
        share: float = 1.0,
        private: bool = False,
        tag: str = "",
    ) -> None:
        self._config = config
        self._clock = clock
        self._scope = scope
        self._share = share
        self._tag = tag
        self._lock = threading.Lock() if private else _REGISTRY.lock
        self._ids = itertools.count(1) if private else _REGISTRY.entry_ids
        self._private = private
        self._groups: dict[str, _Group] = {}
        self._specs: dict[str, tuple[int, float]] = {}
        self._closed = False

    # -- internals
    def _group(self, principal: str) -> _Group:
        group = self._groups.get(principal)
        if group is None:
            shared = not (self._private or self._closed)
            group = _REGISTRY.join(self._clock, principal) if shared else _Group()
            self._groups[principal] = group
        return group

    def _window(self, key: str) -> Window:
        """The window of ``key`` (created on first use; registry lock held)."""
        group = self._groups_for(key)
        window = group.windows.get(key)
        if window is None:
            limit, window_s = self._specs[key]
            limit, window_s = scaled_limit(limit, window_s, self._share)
            window = group.windows[key] = Window(limit, window_s, self._config)
        return window

    def _groups_for(self, key: str) -> _Group:
        return self._group(self._tag + scope_of(key, self._scope))

    # -- BucketStore
    def open(self, key: str, limit: int, window_s: float) -> None:
        """See ``BucketStore.open``."""
        if key not in self._specs:
            self._specs[key] = (int(limit), float(window_s))
            self._groups_for(key)  # join outside the registry lock

    def set_limit(self, key: str, limit: int) -> None:
        """See ``BucketStore.set_limit``."""
        spec = self._specs.get(key)
        if spec is None:
            return
        self._specs[key] = (int(limit), spec[1])
        with self._lock:
            new_limit, _ = scaled_limit(int(limit), spec[1], self._share)
            self._window(key).set_limit(new_limit)

    def try_admit(
        self, items: Sequence[tuple[str, int, int]], now: float
    ) -> tuple[int | None, Blocked]:
        """See ``BucketStore.try_admit``."""
        with self._lock:
            blocked: Blocked = {}
            for key, cost, reserved in items:
                window = self._window(key)
                if not window.fits(now, cost, reserved):
                    change = window.next_change(now, cost, reserved)
                    if window.in_flight and not self._private:
                        # another gate's release wakes none of ours: re-check when its
                        # release could free room at the earliest
                        change = min(change, now + window.span_s)
                    blocked[key] = change
            if blocked:
                return None, blocked
            entry = next(self._ids)
            for key, cost, _ in items:
                self._window(key).admit(now, cost, entry)
            return entry, {}

    def release(self, keys: Sequence[str], entry: int, now: float) -> None:
        """See ``BucketStore.release``."""
        with self._lock:
            for key in keys:
                if key in self._specs:
                    self._window(key).release(entry, now)

    def penalise(self, key: str, now: float, retry_after_s: float | None) -> tuple[float, float]:
        """See ``BucketStore.penalise``."""
        with self._lock:
            window = self._window(key)
            if not window.penalise(now, retry_after_s):
                return 0.0, window.factor(now)
            return window.hold_until_s - now, window.factor0

    def snapshot(self, key: str, now: float) -> dict[str, Any]:
        """See ``BucketStore.snapshot``."""
        with self._lock:
            return self._window(key).snapshot(now)

    def set_uid(self, uid: str) -> None:
        """Keeps the API-key scope: in one process, one key is one account."""

    def account_share(self) -> None:
        """No shared account-limit record in the local backend."""
        return None

    def stats(self) -> dict[str, Any]:
        """``{"backend": "local", "health": "local"}``."""
        return {"backend": "local", "health": "local"}

    def drain_notes(self) -> list[Any]:
        """Nothing to log."""
        return []

    def close(self) -> None:
        """Leave the shared groups (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if not self._private:
            for principal in self._groups:  # permits released later still count
                _REGISTRY.leave(self._clock, principal)


def scaled_limit(limit: int, window_s: float, share: float) -> tuple[int, float]:
    """``limit`` per ``window_s`` run at ``share`` of its rate, never above it: the
    limit shrinks while it stays >= 1, then the window stretches. Pure."""
    if share >= 1.0:
        return limit, window_s
    scaled = limit * share
    if scaled >= 1.0:
        return max(1, math.floor(scaled + 1e-9)), window_s
    return 1, window_s / scaled
