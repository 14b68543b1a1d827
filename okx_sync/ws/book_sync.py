"""The resync state machine of one managed order book (``ManagedOrderBook``'s sync).

:class:`BookSync` decides and records whether a book is in sync, and acts on the
feed for it (the recovery of the runbook's §5, described in
:mod:`okx_sync.ws.managed_book`): a push is applied to the store or skipped
while a snapshot is awaited; an ``OrderBookError`` or a lost connection marks
the book out of sync, resets the store and (for a book error) resubscribes at
once; a snapshot that does not come within ``ResyncPolicy.snapshot_timeout_s``,
or a refused subscription, is retried with the policy's backoff; a refusal of
the arg itself (``ws.protocol.is_arg_rejection``) is final. It also queues what
the book's thread must do next: the ``on_resync`` reports and the REST
cross-check due after a resync.

It sees the feed through :class:`SyncFeed` (a ``BookFeed`` is one) and shares the
book's lock (``cond``), so a transition and the work it queues are one step.

Thread safety: every method may be called from any thread, the WS reader
included; the ones named "lock held" expect the caller to hold ``cond``, the
others take it. No user code runs here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from ..book import INCREMENTAL_CHANNELS, OrderBookStore
from ..clock import Clock
from ..errors import OrderBookError, WSClosedError, WSError, WSSubscribeError
from ..validators import field, seconds
from .protocol import is_arg_rejection

__all__ = ["BookSync", "ResyncPolicy", "SyncFeed"]

log = logging.getLogger("okx_sync.ws.book")

_MAX_REPORTS = 64  # resync reports kept for on_resync while the book thread is busy

_positive = field(seconds, positive=True)


@attrs.frozen(kw_only=True)
class ResyncPolicy:
    """When a book waiting for a snapshot tries again. Pure; immutable.

    ``snapshot_timeout_s`` (s, 5): after a (re)subscribe or a reconnect, wait this
    long for the snapshot before resubscribing again. ``retry_initial`` /
    ``retry_max`` (s, 0.5 / 30): after OKX refused the subscription or it
    could not be sent, wait ``retry_initial * 2**(failures - 1)``, at most
    ``retry_max``. Raises ``ValidationError`` (a ``ValueError``) for a value that is
    not a positive finite number.
    """

    snapshot_timeout_s: float = attrs.field(default=5.0, validator=_positive)
    retry_initial: float = attrs.field(default=0.5, validator=_positive)
    retry_max: float = attrs.field(default=30.0, validator=_positive)

    def retry_delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th refused/unsent resubscribe in a row (>= 1)."""
        return min(self.retry_max, self.retry_initial * 2.0 ** max(0, min(failures - 1, 32)))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class SyncFeed(Protocol):
    """What the sync state machine needs of the feed (a ``BookFeed`` provides it): its
    ``name`` for log lines, ``running``, ``resubscribe_nowait(arg)`` (False when not
    connected) and ``unsubscribe(arg)``. Thread safety: any thread, the reader included."""

    @property
    def name(self) -> str: ...

    @property
    def running(self) -> bool: ...

    def resubscribe_nowait(self, args: Mapping[str, Any]) -> bool: ...

    def unsubscribe(self, args: Mapping[str, Any]) -> None: ...


class BookSync:
    """Whether one book is in sync, and the transitions that keep it so (module doc).

    Built by ``ManagedOrderBook`` with its feed, store, ``arg`` (the subscription),
    ``policy``, ``clock`` and lock (``cond``); ``cross_check``: queue a REST
    cross-check after each resync. Raises nothing but ``wait_ready``'s errors.
    Thread safety: see the module doc.
    """

    def __init__(
        self,
        ws: SyncFeed,
        store: OrderBookStore,
        arg: Mapping[str, Any],
        *,
        policy: ResyncPolicy,
        clock: Clock,
        cond: threading.Condition,
        cross_check: bool,
    ) -> None:
        self._ws = ws
        self._store = store
        self._channel = store.channel
        self._inst_id = store.inst_id
        self._arg = arg
        self._incremental = store.channel in INCREMENTAL_CHANNELS
        self._policy = policy
        self._clock = clock
        self._cond = cond
        self._cross_check = cross_check
        # sync state (written under _cond; _awaiting is read lock-free by the reader)
        self._awaiting = True  # waiting for a snapshot: updates are skipped
        self._in_sync = False
        self._closed = False
        self._reader: threading.Thread | None = None  # reader that delivered the last snapshot
        self._failures = 0
        self._connects = 0  # connections seen ready (on_connect)
        self._lost_at: float | None = None
        self._resync_open = False
        # counters
        self._resyncs = 0
        self._resubscribes = 0
        self._skipped = 0  # reader only
        self._last_error = ""
        self._rejected: WSSubscribeError | None = None  # OKX refused the arg itself: final
        self._last_resync_s: float | None = None
        # work for the book thread
        self._reports: list[BaseException] = []
        self._check_pending = False
        self._retry_at: float | None = clock.monotonic() + policy.snapshot_timeout_s

    # ------------------------------------------------------------------ state
    @property
    def in_sync(self) -> bool:
        """True while the store holds a verified snapshot and every update since (the
        feed's ``running`` is the book's to add)."""
        return self._in_sync

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    @property
    def resyncs(self) -> int:
        """How many times the book lost sync."""
        return self._resyncs

    @property
    def last_error(self) -> str:
        """``"Type: message"`` of the last error that cost the sync, ``""`` when none."""
        return self._last_error

    @property
    def rejected(self) -> WSSubscribeError | None:
        """The final refusal of the subscription (None while there is none)."""
        return self._rejected

    def counters(self) -> dict[str, Any]:
        """``resyncs``, ``resubscribes``, ``skipped``, ``last_error``, ``rejected`` (the
        code) and ``last_resync_s``, JSON-serialisable. Lock held."""
        return {
            "resyncs": self._resyncs,
            "resubscribes": self._resubscribes,
            "skipped": self._skipped,
            "last_error": self._last_error,
            "rejected": None if self._rejected is None else self._rejected.code,
            "last_resync_s": self._last_resync_s,
        }

    def wait_ready(self, timeout_s: float | None) -> bool:
        """Block until in sync and the feed runs: True, or False after ``timeout_s`` s.

        Raises ``WSSubscribeError`` when the subscription was refused for good and
        ``WSClosedError`` when closed (see ``ManagedOrderBook.wait_ready``).
        """
        deadline = None if timeout_s is None else self._clock.monotonic() + timeout_s
        with self._cond:
            while True:
                if self._closed:
                    raise WSClosedError(f"order book {self._channel} {self._inst_id} is closed")
                rejected = self._rejected
                if rejected is not None:
                    raise WSSubscribeError(rejected.code, rejected.msg, rejected.arg) from rejected
                if self._in_sync and self._ws.running:
                    return True
                left = None if deadline is None else deadline - self._clock.monotonic()
                if left is not None and left <= 0:
                    return False
                # wake up now and then: ws.running has no notification of its own
                self._clock.wait(self._cond, 0.5 if left is None else min(left, 0.5))

    def close(self) -> bool:
        """Mark closed and out of sync, wake every waiter; True the first time only."""
        with self._cond:
            if self._closed:
                return False
            self._closed = True
            self._in_sync = False
            self._cond.notify_all()
            return True

    # ------------------------------------------------------------------ the book's thread
    def retry_due(self, now: float) -> tuple[bool, float | None]:
        """(a resubscribe is due now, when the next one is due — None: nothing awaited
        or the book was rejected). Lock held."""
        due = self._retry_at if self._awaiting and self._rejected is None else None
        return due is not None and now >= due, due

    def has_work(self) -> bool:
        """True when reports or a cross-check wait for the book's thread. Lock held."""
        return bool(self._reports) or self._check_pending

    def take_work(self, retry: bool) -> tuple[list[BaseException], bool]:
        """Hand the book's thread its queued reports and whether a cross-check is due,
        and (``retry``: it will resubscribe now) disarm the retry. Lock held."""
        reports, self._reports = self._reports, []
        check, self._check_pending = self._check_pending, False
        if retry:
            self._retry_at = None
        return reports, check

    # ------------------------------------------------------------------ reader hot path
    def on_push(self, msg: Mapping[str, Any]) -> bool:
        """Apply one push to the store (WS reader thread, no lock held): True when it was
        applied, False when skipped (an update while a snapshot is awaited) or when it
        cost the sync (a book error: reset and resubscribe)."""
        snapshot = not self._incremental or msg.get("action") != "update"
        if self._awaiting and not snapshot:
            self._skipped += 1
            return False
        try:
            self._store.apply(msg)
        except OrderBookError as exc:
            self._lose_sync(exc, resubscribe=self._incremental)
            return False
        if snapshot:
            self._snapshot_applied()
        return True

    def _snapshot_applied(self) -> None:
        now = self._clock.monotonic()
        with self._cond:
            self._reader = threading.current_thread()
            if not self._awaiting or self._closed:
                return
            self._awaiting = False
            self._in_sync = True
            self._retry_at = None
            self._failures = 0
            if self._resync_open:
                self._resync_open = False
                if self._lost_at is not None:
                    self._last_resync_s = round(now - self._lost_at, 6)
                self._check_pending = self._cross_check
            self._cond.notify_all()
        log.info(
            "order book %s %s in sync at seqId %s (resyncs %d)",
            self._channel,
            self._inst_id,
            self._store.seq_id,
            self._resyncs,
            extra={
                "ws": self._ws.name,
                "channel": self._channel,
                "inst_id": self._inst_id,
                "seq_id": self._store.seq_id,
                "resyncs": self._resyncs,
            },
        )

    def _lose_sync(self, exc: BaseException, *, resubscribe: bool) -> None:
        """Mark out of sync, reset, and (``resubscribe``) ask for a fresh snapshot now."""
        now = self._clock.monotonic()
        with self._cond:
            if self._closed:
                return
            lost = not self._awaiting
            self._awaiting = True
            self._in_sync = False
            self._last_error = _describe(exc)
            if lost:
                self._resyncs += 1
                self._lost_at = now
                self._resync_open = True
                if len(self._reports) < _MAX_REPORTS:
                    self._reports.append(exc)
            self._retry_at = now + self._policy.snapshot_timeout_s
            self._cond.notify_all()
        self._store.reset()
        log.warning(
            "order book %s %s out of sync (%s); %s: %s",
            self._channel,
            self._inst_id,
            self._ws.name,
            "resubscribing" if resubscribe else "resync after reconnect",
            _describe(exc),
            extra={
                "ws": self._ws.name,
                "channel": self._channel,
                "inst_id": self._inst_id,
                "error": _describe(exc),
                "resyncs": self._resyncs,
                "resubscribe": resubscribe,
            },
        )
        if resubscribe:
            self.resubscribe()

    def resubscribe(self) -> None:
        """Send unsubscribe + subscribe without waiting (any thread, the reader included)."""
        if self._closed or self._rejected is not None:
            return
        connects = self._connects
        try:
            sent = self._ws.resubscribe_nowait(self._arg)
        except WSError as exc:
            self.refused(exc)
            return
        if self._closed:  # close() ran meanwhile: do not leave the subscription behind
            self.unsubscribe()
            return
        now = self._clock.monotonic()
        with self._cond:
            if sent:
                self._resubscribes += 1
                if self._awaiting:
                    self._retry_at = now + self._policy.snapshot_timeout_s
            elif self._connects == connects:
                self._retry_at = None  # the next connect subscribes it; on_connect re-arms
            elif self._awaiting:  # a connection came up meanwhile: give it its time
                self._retry_at = now + self._policy.snapshot_timeout_s
        log.info(
            "order book %s %s: %s",
            self._channel,
            self._inst_id,
            "resubscribed for a fresh snapshot"
            if sent
            else f"resubscribe deferred (ws {self._ws.name} not connected)",
            extra={"ws": self._ws.name, "channel": self._channel, "inst_id": self._inst_id},
        )

    def refused(self, exc: BaseException) -> None:
        """OKX refused the subscription, or it could not be sent: retry after a backoff.

        A refusal of the arg itself (``is_arg_rejection``: 60018 unknown
        instrument, 60012/60013 bad args, 64003 fee tier...) is final: retrying
        cannot fix it, so the book stops (no retry, no resubscribe, even after a
        reconnect) and :meth:`wait_ready` raises it.
        """
        final = exc if isinstance(exc, WSSubscribeError) and is_arg_rejection(exc.code) else None
        now = self._clock.monotonic()
        with self._cond:
            if self._closed or not self._awaiting or self._rejected is not None:
                return
            self._last_error = _describe(exc)
            if final is not None:
                self._rejected = final
                self._retry_at = None
            else:
                self._failures += 1
                delay = self._policy.retry_delay(self._failures)
                self._retry_at = now + delay
            self._cond.notify_all()
        extra = {
            "ws": self._ws.name,
            "channel": self._channel,
            "inst_id": self._inst_id,
            "error": _describe(exc),
        }
        if final is not None:
            log.error(
                "order book %s %s: subscription rejected, not retrying: %s",
                self._channel,
                self._inst_id,
                _describe(exc),
                extra=extra,
            )
        else:
            log.warning(
                "order book %s %s: subscription failed, retry in %.3g s: %s",
                self._channel,
                self._inst_id,
                delay,
                _describe(exc),
                extra={**extra, "retry_in_s": delay},
            )

    # ------------------------------------------------------------------ connection events
    def on_disconnect(self, reason: str) -> None:
        """The connection dropped: out of sync until the next connection's snapshot."""
        self._lose_sync(WSError(f"WS {self._ws.name} disconnected: {reason}"), resubscribe=False)

    def on_connect(self) -> None:
        """A connection is ready (the client resubscribed the desired set)."""
        now = self._clock.monotonic()
        stale = False
        with self._cond:
            if self._closed:
                return
            self._connects += 1
            if self._awaiting:
                if self._rejected is None:  # a rejected book waits for nothing
                    self._retry_at = now + self._policy.snapshot_timeout_s
                    self._cond.notify_all()
            elif self._reader is None or not self._reader.is_alive():
                stale = True  # restarted after ws.close(): the held book is from a dead connection
        if stale:
            self._lose_sync(WSError(f"WS {self._ws.name} restarted"), resubscribe=False)

    def unsubscribe(self) -> None:
        """Drop the subscription (a failure is logged, never raised)."""
        try:
            self._ws.unsubscribe(self._arg)
        except WSError as exc:
            log.warning(
                "order book %s %s: unsubscribe failed: %s",
                self._channel,
                self._inst_id,
                _describe(exc),
                extra={"channel": self._channel, "inst_id": self._inst_id, "error": str(exc)},
            )
