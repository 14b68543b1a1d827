"""Handler dispatch for WebSocket messages: inline or a bounded worker pool.

A ``DispatchPath`` (one for typed handlers, one for raw handlers) takes each
message from the reader thread and either calls the handlers right there
(``inline``: lowest latency, a slow handler slows the reader) or puts it on a
bounded queue served by ``workers`` threads (``pool``). In a pool, messages with
the same key (``(channel, instId)``) always go to the same worker, so their
order is kept; different keys run in parallel.

When the queue is full the path's overflow policy decides (see
``overflow_decision``): ``block`` makes the reader wait for room (it keeps
checking whether it must stop, and the heartbeat sees that it is blocked, not
dead), ``drop`` drops and counts the message, ``disconnect`` counts it and
asks the connection to reconnect. Drops are never silent: ``DropEpisodes``
groups them into episodes and the path reports each one (``on_drops``).

Switching mode while running (``DispatchPath.configure``) never loses,
duplicates or reorders a message: the new mode takes over at the next message
the reader submits, after the old pool has drained.

Thread safety: ``submit`` is called by one reader thread at a time;
``configure``, ``stop`` and the read-only properties may be called from any
thread (including a handler). No lock is held while a handler runs.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import attrs

from ..validators import count, field, instance

__all__ = [
    "DispatchMode",
    "Overflow",
    "DispatchConfig",
    "Admission",
    "SubmitResult",
    "overflow_decision",
    "WorkerPool",
    "DispatchPath",
    "DropEpisodes",
    "DropReport",
    "MODES",
    "OVERFLOW_POLICIES",
]

log = logging.getLogger("okx_sync.ws")


class DispatchMode(enum.StrEnum):
    """Where a dispatch path runs the handlers: ``INLINE`` on the reader thread (lowest
    latency; a slow handler holds the reader), ``POOL`` on bounded worker threads."""

    INLINE = "inline"
    POOL = "pool"


class Overflow(enum.StrEnum):
    """What a full pool does with the next message: ``BLOCK`` the reader until there is
    room, ``DROP`` it (counted, reported), or ``DISCONNECT`` (counted, reconnect)."""

    BLOCK = "block"
    DROP = "drop"
    DISCONNECT = "disconnect"


MODES = tuple(DispatchMode)
OVERFLOW_POLICIES = tuple(Overflow)

# Slice of a blocked reader's wait: how quickly it notices that it must stop.
_BLOCK_SLICE_S = 0.05
# A worker with nothing to do sleeps on its condition with no timeout; the
# reader wakes it when it queues a message for it (one notify per sleep: the
# reader clears the flag as it notifies, so a burst costs one wake-up). A busy
# worker takes up to ``_batch`` messages per lock round trip and never sleeps
# while its queue holds anything, so a flood costs no wake-ups at all.


@attrs.frozen(kw_only=True)
class DispatchConfig:
    """How one dispatch path delivers messages. Frozen; validated when built
    (ValidationError, a ``ValueError``: a mode/overflow that is not the enum, a non-int
    or < 1 size).

    - ``mode``: ``DispatchMode.POOL`` (default: a worker thread calls the handlers, in
      order, and the reader stays free) or ``DispatchMode.INLINE`` (on the reader
      thread: lowest latency; a slow handler holds the reader).
    - ``queue_size``: pool capacity (messages queued or being handled).
    - ``workers``: pool threads; order is kept per key.
    - ``overflow``: ``Overflow.BLOCK`` (default), ``Overflow.DROP`` or ``Overflow.DISCONNECT``.

    Thread safety: immutable.
    """

    mode: DispatchMode = attrs.field(
        default=DispatchMode.POOL, validator=field(instance, kind=DispatchMode)
    )
    queue_size: int = attrs.field(default=10_000, validator=field(count))
    workers: int = attrs.field(default=1, validator=field(count))
    overflow: Overflow = attrs.field(
        default=Overflow.BLOCK, validator=field(instance, kind=Overflow)
    )


class Admission(enum.Enum):
    """What to do with a message offered to a pool."""

    ACCEPT = "accept"
    WAIT = "wait"
    DROP = "drop"
    DISCONNECT = "disconnect"


def overflow_decision(policy: str, queued: int, capacity: int) -> Admission:
    """The overflow policy as a pure decision.

    ``ACCEPT`` while there is room; when full: ``WAIT`` for ``block``,
    ``DROP`` for ``drop``, ``DISCONNECT`` for ``disconnect``.
    """
    if queued < capacity:
        return Admission.ACCEPT
    if policy == "drop":
        return Admission.DROP
    if policy == "disconnect":
        return Admission.DISCONNECT
    return Admission.WAIT


@attrs.frozen(kw_only=True)
class DropReport:
    """One drop episode to report: ``dropped`` messages from ``since`` to ``until``.

    ``log``: write the WARNING for it (rate-limited); ``unlogged_episodes`` /
    ``unlogged_dropped``: episodes (and their drops) reported since the last
    WARNING without one. Thread safety: immutable.
    """

    dropped: int
    since: float
    until: float
    log: bool
    unlogged_episodes: int = 0
    unlogged_dropped: int = 0


class DropEpisodes:
    """When to report drops under ``overflow="drop"`` (a policy: no I/O, time passed in).

    An episode starts with a drop and ends once the reader queues a message
    and the queue is at most half full (the pool has caught up; under a
    steady overload the episode goes on), or when it has lasted
    ``report_every_s`` (a new one starts with the next drop), or at ``flush``
    (the path stops). Each end gives one ``DropReport``; its WARNING is
    written at most once per ``log_every_s``, the reports in between are
    counted into the next one. Raises ``ValueError`` for non-positive periods.

    Thread safety: locks internally (the reader reports, ``flush`` may come
    from any thread); ``open`` is a plain read for the reader's hot path.
    """

    def __init__(self, *, report_every_s: float = 10.0, log_every_s: float = 10.0) -> None:
        if not (report_every_s > 0 and log_every_s > 0):
            raise ValueError("report_every_s and log_every_s must be > 0")
        self.report_every_s = report_every_s
        self.log_every_s = log_every_s
        self._lock = threading.Lock()
        self.open = False
        self._since = 0.0
        self._count = 0
        self._last_log: float | None = None
        self._unlogged_episodes = 0
        self._unlogged_dropped = 0

    def dropped(self, now: float) -> DropReport | None:
        """Count one drop at ``now``; a report when the episode has lasted ``report_every_s``."""
        with self._lock:
            if not self.open:
                self.open, self._since, self._count = True, now, 0
            self._count += 1
            if now - self._since < self.report_every_s:
                return None
            return self._end(now)

    def accepted(self, queued: int, capacity: int, now: float) -> DropReport | None:
        """A message was queued (``queued`` of ``capacity`` now): a report when the episode ends."""
        if not self.open or queued * 2 > capacity:
            return None
        with self._lock:
            return self._end(now) if self.open else None

    def flush(self, now: float) -> DropReport | None:
        """End the open episode, if any (the path stops)."""
        with self._lock:
            return self._end(now) if self.open else None

    def _end(self, now: float) -> DropReport:
        self.open = False
        log_it = self._last_log is None or now - self._last_log >= self.log_every_s
        report = DropReport(
            dropped=self._count,
            since=self._since,
            until=now,
            log=log_it,
            unlogged_episodes=self._unlogged_episodes if log_it else 0,
            unlogged_dropped=self._unlogged_dropped if log_it else 0,
        )
        if log_it:
            self._last_log = now
            self._unlogged_episodes = self._unlogged_dropped = 0
        else:
            self._unlogged_episodes += 1
            self._unlogged_dropped += self._count
        return report


class SubmitResult(enum.Enum):
    """Outcome of ``DispatchPath.submit``."""

    DELIVERED = "delivered"  # handled inline
    QUEUED = "queued"
    DROPPED = "dropped"
    DISCONNECT = "disconnect"  # queue full under the disconnect policy
    STOPPED = "stopped"  # the reader was asked to stop while blocked


# Distinct keys (channel, instId) whose worker a pool remembers; more spread by hash.
_SLOTS_MAX = 4096


class WorkerPool:
    """A bounded, key-ordered queue served by named worker threads.

    ``put`` (reader thread) offers a message; a key keeps the worker it was first
    given, keys taking the workers in turn (the same spread in every process:
    ``hash()`` of a str differs per process, so ``hash(key) % workers`` could put
    every instrument on one worker in one run and spread them in the next; after
    ``_SLOTS_MAX`` distinct keys a new key goes to ``hash(key) % workers``);
    ``drain`` waits until everything queued was handled; ``stop`` discards what is still queued, stops the
    workers and joins them. The capacity counts messages queued *and* being
    handled, so memory stays bounded by ``queue_size``.

    Thread safety: ``put`` from one thread at a time; everything else from any thread.
    """

    def __init__(
        self,
        deliver: Callable[[Any], None],
        *,
        queue_size: int,
        workers: int,
        overflow: str,
        thread_prefix: str,
        on_error: Callable[[BaseException], None],
        monotonic: Callable[[], float],
    ) -> None:
        self._deliver = deliver
        self._cap = queue_size
        self._n = workers
        self._slots: dict[Hashable, int] = {}  # key -> its worker (bounded: _SLOTS_MAX)
        self._overflow = overflow
        self._prefix = thread_prefix
        self._on_error = on_error
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._empty = threading.Condition(self._lock)
        self._work = [threading.Condition(self._lock) for _ in range(workers)]
        self._queues: list[deque[Any]] = [deque() for _ in range(workers)]
        self._sleeping = [False] * workers  # guarded by the lock
        # Items per lock round trip: big enough to amortise locking, small
        # enough that the reader keeps running while a worker works.
        self._batch = max(1, min(64, queue_size // (4 * workers)))
        self._count = 0
        self._high_water = 0
        self._stopping = False
        self._blocked_since: float | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker threads (``<prefix>-0`` ...)."""
        for i in range(self._n):
            t = threading.Thread(
                target=self._run, args=(i,), name=f"{self._prefix}-{i}", daemon=True
            )
            self._threads.append(t)
            t.start()

    @property
    def capacity(self) -> int:
        """The configured ``queue_size``."""
        return self._cap

    @property
    def qsize(self) -> int:
        """Messages queued or being handled now."""
        return self._count

    @property
    def high_water(self) -> int:
        """The largest ``qsize`` seen."""
        return self._high_water

    @property
    def blocked_since(self) -> float | None:
        """Monotonic time the reader started waiting for room, or None."""
        return self._blocked_since

    def put(self, key: Hashable, item: Any, should_stop: Callable[[], bool]) -> SubmitResult:
        """Offer ``item``; the overflow policy decides when the queue is full."""
        i = self._slots.get(key) if self._n > 1 else 0
        if i is None:
            i = len(self._slots) % self._n
            if len(self._slots) < _SLOTS_MAX:
                self._slots[key] = i
            else:
                i = hash(key) % self._n
        with self._lock:
            if self._count >= self._cap or self._stopping:
                result = self._full(should_stop)
                if result is not None:
                    return result
            q = self._queues[i]
            q.append(item)
            self._count += 1
            if self._count > self._high_water:
                self._high_water = self._count
            if self._sleeping[i]:
                self._sleeping[i] = False
                self._work[i].notify()
        return SubmitResult.QUEUED

    def _full(self, should_stop: Callable[[], bool]) -> SubmitResult | None:
        """The queue is full (lock held): None once there is room, else the outcome."""
        if self._stopping:
            return SubmitResult.STOPPED
        decision = overflow_decision(self._overflow, self._count, self._cap)
        if decision is Admission.DROP:
            return SubmitResult.DROPPED
        if decision is Admission.DISCONNECT:
            return SubmitResult.DISCONNECT
        self._blocked_since = self._monotonic()
        try:
            while self._count >= self._cap:
                if self._stopping or should_stop():
                    return SubmitResult.STOPPED
                self._not_full.wait(_BLOCK_SLICE_S)
        finally:
            self._blocked_since = None
        return None

    def drain(self, should_stop: Callable[[], bool], timeout_s: float | None = None) -> bool:
        """Wait until every queued message was handled; False if stopped or timed out."""
        deadline = None if timeout_s is None else self._monotonic() + timeout_s
        with self._lock:
            while self._count > 0:
                if self._stopping or should_stop():
                    return False
                wait = _BLOCK_SLICE_S
                if deadline is not None:
                    left = deadline - self._monotonic()
                    if left <= 0:
                        return False
                    wait = min(wait, left)
                self._empty.wait(wait)
        return True

    def stop(self, timeout_s: float) -> bool:
        """Discard queued messages, stop the workers and join them within ``timeout_s``.

        Returns True when every worker ended. A worker calling ``stop`` does not join itself.
        """
        with self._lock:
            self._stopping = True
            for q in self._queues:
                self._count -= len(q)
                q.clear()
            for c in self._work:
                c.notify_all()
            self._not_full.notify_all()
            self._empty.notify_all()
        deadline = self._monotonic() + timeout_s
        me = threading.current_thread()
        ok = True
        for t in self._threads:
            if t is me:
                continue
            t.join(max(0.0, deadline - self._monotonic()))
            ok = ok and not t.is_alive()
        return ok

    def _run(self, i: int) -> None:
        q = self._queues[i]
        cond = self._work[i]
        deliver = self._deliver
        sleeping = self._sleeping
        while True:
            with self._lock:
                while not q:
                    if self._stopping:
                        return
                    sleeping[i] = True  # put() notifies (once) when it queues for us
                    cond.wait()
                sleeping[i] = False
                n = min(len(q), self._batch)
                items = [q.popleft() for _ in range(n)]
            for item in items:
                try:
                    deliver(item)
                except Exception as exc:  # the deliver function reports handler errors itself
                    self._on_error(exc)
            with self._lock:
                self._count -= n
                if not self._stopping:
                    self._not_full.notify()
                    if self._count == 0:
                        self._empty.notify_all()


class DispatchPath:
    """One dispatch path (typed or raw), inline or pool, switchable while running.

    ``deliver(item)`` is the function that calls the user's handlers for one
    message; it runs on the reader thread (inline) or a worker (pool).
    ``submit`` is the reader's entry point; ``configure`` switches mode or
    pool size, taking effect at the next ``submit`` after the old pool has
    drained. Counters: ``dropped``, ``disconnects``. Under ``overflow="drop"``
    each drop episode (see ``DropEpisodes``) is passed to ``on_drops(path
    name, report)`` on the thread that ends it (the reader, or the caller of
    ``stop``). ``running`` is the handler the path's deliver function is
    calling now (set by that function; read for stall reports).

    Thread safety: ``submit`` from one reader thread at a time; the rest from
    any thread.
    """

    def __init__(
        self,
        name: str,
        deliver: Callable[[Any], None],
        config: DispatchConfig,
        *,
        thread_prefix: str,
        on_error: Callable[[BaseException], None],
        monotonic: Callable[[], float],
        on_drops: Callable[[str, DropReport], None] | None = None,
    ) -> None:
        self.name = name
        self._deliver = deliver
        self._on_drops = on_drops
        self._drops = DropEpisodes()
        self.running: Any = None
        self._prefix = thread_prefix
        self._on_error = on_error
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._config = config
        self._active: WorkerPool | None = None
        self._active_config = config
        self._requested: WorkerPool | None = None
        self._switching_to: WorkerPool | None = None
        self._switch_pending = False
        self._retired_high_water = 0
        self._running = False
        self.pooled = config.mode == "pool"
        self.direct = False
        self.dropped = 0
        self.disconnects = 0

    # -- configuration -------------------------------------------------------------
    @property
    def config(self) -> DispatchConfig:
        """The requested configuration (active once the reader applies it)."""
        return self._config

    #: True when the requested mode is ``pool`` (read on the reader's hot path).
    pooled: bool
    #: True while the reader may call ``deliver`` itself (running, inline, no
    #: switch pending): the hot path then skips ``submit``.
    direct: bool

    def _update_direct(self) -> None:
        self.direct = self._running and self._active is None and not self._switch_pending

    def _new_pool(self, cfg: DispatchConfig) -> WorkerPool | None:
        if cfg.mode != "pool":
            return None
        pool = WorkerPool(
            self._deliver,
            queue_size=cfg.queue_size,
            workers=cfg.workers,
            overflow=cfg.overflow,
            thread_prefix=self._prefix,
            on_error=self._on_error,
            monotonic=self._monotonic,
        )
        pool.start()
        return pool

    def start(self) -> None:
        """Create the configured pool (if any) and its threads. Idempotent."""
        with self._lock:
            if self._running:
                return
            self._running = True
            self._active = self._new_pool(self._config)
            self._active_config = self._config
            self._requested = self._active
            self._switch_pending = False
            self._update_direct()

    def configure(self, config: DispatchConfig) -> None:
        """Switch to ``config``; before ``start`` it only sets the configuration.

        The reader applies it at its next message after draining the old pool,
        so nothing is lost, duplicated or reordered across the switch.
        """
        stale: WorkerPool | None = None
        with self._lock:
            self._config = config
            self.pooled = config.mode == "pool"
            if not self._running:
                return
            previous = self._requested
            if previous is not self._active and previous is not self._switching_to:
                stale = previous  # requested before but never used (the reader is not on it)
            self._requested = self._new_pool(config)
            self._switch_pending = True
            self._update_direct()
        if stale is not None:
            self._retire(stale)

    def _retire(self, pool: WorkerPool) -> None:
        self._retired_high_water = max(self._retired_high_water, pool.high_water)
        pool.stop(2.0)

    def _apply_switch(self, should_stop: Callable[[], bool]) -> WorkerPool | None | bool:
        with self._lock:
            target = self._requested
            target_cfg = self._config
            self._switching_to = target  # configure() must not stop it under our feet
        old = self._active
        if old is not None and old is not target:
            if not old.drain(should_stop):
                with self._lock:
                    self._switching_to = None
                    orphan = target is not None and target is not self._requested
                if orphan:
                    self._retire(target)  # type: ignore[arg-type]
                return False
        with self._lock:
            self._switching_to = None
            self._active = target
            self._active_config = target_cfg
            self._switch_pending = self._requested is not target
            self._update_direct()
        if old is not None and old is not target:
            self._retire(old)
        log.debug(
            "ws %s dispatch switched to %s (%d worker(s))",
            self.name,
            target_cfg.mode,
            target_cfg.workers,
            extra={"path": self.name, "mode": target_cfg.mode, "workers": target_cfg.workers},
        )
        return target

    # -- hot path ------------------------------------------------------------------
    def submit(self, key: Hashable, item: Any, should_stop: Callable[[], bool]) -> SubmitResult:
        """Deliver or queue one message (reader thread). Counts drops and disconnects."""
        pool = self._active
        if self._switch_pending:
            switched = self._apply_switch(should_stop)
            if switched is False:
                return SubmitResult.STOPPED
            pool = switched  # type: ignore[assignment]
        if pool is None:
            if not self._running:
                return SubmitResult.STOPPED
            try:
                self._deliver(item)
            except Exception as exc:
                self._on_error(exc)
            return SubmitResult.DELIVERED
        result = pool.put(key, item, should_stop)
        if result is SubmitResult.QUEUED:
            if self._drops.open:
                self._report(self._drops.accepted(pool.qsize, pool.capacity, self._monotonic()))
        elif result is SubmitResult.DROPPED:
            self.dropped += 1
            self._report(self._drops.dropped(self._monotonic()))
        elif result is SubmitResult.DISCONNECT:
            self.dropped += 1
            self.disconnects += 1
        return result

    def _report(self, report: DropReport | None) -> None:
        if report is not None and self._on_drops is not None:
            try:
                self._on_drops(self.name, report)
            except Exception as exc:
                self._on_error(exc)

    # -- introspection -------------------------------------------------------------
    @property
    def qsize(self) -> int:
        """Messages queued or being handled (old and new pool during a switch)."""
        active, requested = self._active, self._requested
        n = active.qsize if active is not None else 0
        if requested is not None and requested is not active:
            n += requested.qsize
        return n

    @property
    def capacity(self) -> int:
        """The requested pool's ``queue_size``; 0 in inline mode."""
        cfg = self._config
        return cfg.queue_size if cfg.mode == "pool" else 0

    @property
    def high_water(self) -> int:
        """Largest queue length seen by any pool of this path."""
        best = self._retired_high_water
        for pool in (self._active, self._requested):
            if pool is not None:
                best = max(best, pool.high_water)
        return best

    @property
    def blocked_since(self) -> float | None:
        """When the reader started waiting for room in this path's pool, or None."""
        pool = self._active
        return pool.blocked_since if pool is not None else None

    @property
    def mode(self) -> str:
        """The mode currently applied by the reader."""
        return self._active_config.mode

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Stop every pool (queued messages are discarded) and join its workers.

        Returns True when every worker ended within ``timeout_s``. Idempotent;
        ``start`` may be called again afterwards. An open drop episode is
        reported (``on_drops``) first.
        """
        with self._lock:
            pools = {
                id(p): p
                for p in (self._active, self._requested, self._switching_to)
                if p is not None
            }
            self._active = None
            self._requested = None
            self._switch_pending = False
            self._running = False
            self._update_direct()
        self._report(self._drops.flush(self._monotonic()))
        deadline = self._monotonic() + timeout_s
        ok = True
        for pool in pools.values():
            self._retired_high_water = max(self._retired_high_water, pool.high_water)
            ok = pool.stop(max(0.0, deadline - self._monotonic())) and ok
        return ok
