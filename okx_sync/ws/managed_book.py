"""``ManagedOrderBook``: an order book that keeps itself in sync over a ``WSClient``.

``ws.order_book(inst_id, channel="books")`` returns one. It subscribes, feeds
its :class:`~okx_sync.book.OrderBookStore` inline on the WS reader thread
(whatever the client's handler dispatch mode: the book never lags behind a
slow handler and is never reordered), and automates the runbook's recovery
(§5: reset, resubscribe, wait for the snapshot, compare best bid/ask with REST):

- on any :class:`~okx_sync.errors.OrderBookError` (sequence gap, checksum
  mismatch, update before snapshot, malformed push — ``OrderBookDataError`` —,
  an update that crossed the book — ``OrderBookCrossedError``) it marks itself out of
  sync at once, resets, and resubscribes (unsubscribe + subscribe, sent from
  the reader without waiting) for a fresh snapshot; updates arriving before
  that snapshot are skipped (counted as ``skipped``);
- when the connection drops it marks itself out of sync and waits for the
  snapshot that follows the client's reconnect and resubscribe;
- when no snapshot arrives within ``ResyncPolicy.snapshot_timeout_s`` (or OKX
  refuses the subscription for now: 60014 too frequent, 64007 internal error)
  it resubscribes again, backing off after refusals;
- when OKX rejects the arg itself (60018 unknown instrument, other argument
  errors: ``ws.protocol.ARG_REJECTION_CODES``) it stops: no retry, no
  resubscribe; :meth:`ManagedOrderBook.wait_ready` raises the
  ``WSSubscribeError`` with its code and ``last_error`` names it;
- after each resync, optionally, it compares its best bid/ask with
  ``GET /api/v5/market/books`` (``rest_check=client``) and reports the result
  in :meth:`ManagedOrderBook.stats` (``rest_check``).

Threads: one per book, ``okx-book-<channel>-<instId>``, runs the user
callbacks (``on_update`` coalesced, ``on_resync``) and the resubscribe retries;
a short-lived ``okx-book-<channel>-<instId>-check`` thread makes the REST
cross-check. They run while the book's WSClient is started: ``ws.start()``
starts them (a book opened on a started client starts them at once),
``ws.close()`` stops and joins them with the client's own threads, and
``book.close()`` joins them for good. User callbacks never run under an
okx_sync lock; their exceptions are caught, counted (``callback_errors``) and
reported through the WSClient's error handlers (``ws.on_error``).

A book survives ``ws.close()`` / ``ws.start()``: it stays open (and listed by
``ws.managed_books()``), is out of sync while the client is not running, and
resyncs from the snapshot of the next connection; callbacks due while the
client was closed run once its threads are back.

The book sees its client only through the small :class:`BookFeed` protocol
(a ``WSClient`` gives its books a private adapter): this module never imports ``ws.client``, so a
book can be driven by a fake feed in tests, without sockets.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import attrs

from ..book import BOOK_CHANNELS, INCREMENTAL_CHANNELS, OrderBookStore
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import OrderBookError, ValidationError, WSClosedError, WSError, WSSubscribeError
from ..lifecycle import Owned
from ..models.market import BookLevel, OrderBook
from ..validators import field, flag, instance, one_of, real, seconds
from .protocol import is_arg_rejection

__all__ = [
    "ManagedOrderBook",
    "ResyncPolicy",
    "CrossCheck",
    "compare_best",
    "BookRouter",
    "BookFeed",
]

log = logging.getLogger("okx_sync.ws.book")

F = TypeVar("F", bound=Callable[..., Any])
BookKey = tuple[str, str]

_CALLBACK_MODES = ("thread", "inline")
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


@attrs.frozen(kw_only=True)
class CrossCheck:
    """One REST cross-check: local best bid/ask against ``GET /api/v5/market/books``.

    Prices are ``Decimal`` (None for an empty side); ``bid_diff``/``ask_diff``
    the relative differences ``|rest - local| / local`` (None when a side is
    empty on either end); ``tolerance`` the one applied (0 when both carried
    the same ``seqId``: they must then be equal); ``ok`` the verdict.
    Thread safety: immutable.
    """

    ok: bool
    local_seq_id: int | None
    rest_seq_id: int | None
    local_bid: Decimal | None
    local_ask: Decimal | None
    rest_bid: Decimal | None
    rest_ask: Decimal | None
    bid_diff: float | None
    ask_diff: float | None
    tolerance: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: prices as strings."""
        out = attrs.asdict(self)
        for key in ("local_bid", "local_ask", "rest_bid", "rest_ask"):
            if out[key] is not None:
                out[key] = str(out[key])
        return out


def _rel_diff(local: Decimal | None, rest: Decimal | None) -> float | None:
    if local is None or rest is None:
        return None
    if local == rest:
        return 0.0
    if not local:
        return float("inf")
    return float(abs(rest - local) / abs(local))


def compare_best(
    local: tuple[int | None, Decimal | None, Decimal | None],
    rest: tuple[int | None, Decimal | None, Decimal | None],
    tolerance: float,
) -> CrossCheck:
    """Compare ``(seq_id, best_bid_px, best_ask_px)`` of the local book and of REST.

    Same ``seq_id`` on both: the prices must be equal. Otherwise each side's
    relative difference must be at most ``tolerance``; a side empty on one
    end only is a mismatch. Pure.
    """
    lseq, lbid, lask = local
    rseq, rbid, rask = rest
    tol = 0.0 if lseq is not None and lseq == rseq else float(tolerance)
    bid_diff = _rel_diff(lbid, rbid)
    ask_diff = _rel_diff(lask, rask)
    ok = (lbid is None) == (rbid is None) and (lask is None) == (rask is None)
    ok = ok and all(d is None or d <= tol for d in (bid_diff, ask_diff))
    return CrossCheck(
        ok=ok,
        local_seq_id=lseq,
        rest_seq_id=rseq,
        local_bid=lbid,
        local_ask=lask,
        rest_bid=rbid,
        rest_ask=rask,
        bid_diff=bid_diff,
        ask_diff=ask_diff,
        tolerance=tol,
    )


def _px(level: BookLevel | None) -> Decimal | None:
    """Price of a level (None for an empty side)."""
    return None if level is None else level.px


def _key_of(arg: Mapping[str, Any]) -> BookKey:
    """The book key of a push's or subscription's ``arg``."""
    return (str(arg.get("channel")), str(arg.get("instId") or arg.get("sprdId")))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class BookFeed(Protocol):
    """What a managed book needs of the WS client it rides on; a ``WSClient`` gives its
    books a private adapter implementing it (the hooks stay off the client's public names).

    The book and its :class:`BookRouter` use nothing else of the client:

    - ``name``: for log lines and errors; ``running``: True while the client is
      started and its connection loop has not stopped for good;
    - ``book_router``: the :class:`BookRouter` of this feed's books (one per
      feed, built by the feed with ``BookRouter(self)``; the feed calls its
      ``resume()`` when it starts and ``suspend(timeout)`` when it closes);
    - ``subscribe(arg)`` / ``unsubscribe(arg)``: keep ``arg`` desired or drop it
      (sent when connected, resubscribed on every connect);
      ``resubscribe_nowait(arg)``: send unsubscribe then subscribe without
      waiting (safe on the reader thread), False when not connected;
    - ``add_push_listener(fn)``: call ``fn(msg)`` inline on the reader, in order,
      for every decoded push; ``on_connect(fn)`` (``fn()`` when a connection is
      ready and resubscribed), ``on_disconnect(fn)`` (``fn(reason)``),
      ``on_error(fn)`` (``fn(exc)``; a refused subscription arrives as a
      ``WSSubscribeError`` carrying its ``arg``); ``off(fn)`` removes ``fn``
      from all of them (matched by identity);
    - ``report_error(exc, handler=None)``: pass a book callback's exception to
      the feed's error handlers (never raises);
    - ``adopt_sibling(child, kind=, label=)``: have whoever owns the feed (the
      ``Client`` that built it) close ``child`` too; a no-op for an unowned
      feed; raises ``ValidationError`` when that owner is closed.

    Thread safety: every member may be called from any thread, also from the
    feed's own reader thread inside a push listener.
    """

    @property
    def name(self) -> str: ...

    @property
    def running(self) -> bool: ...

    @property
    def book_router(self) -> BookRouter: ...

    def subscribe(self, args: Mapping[str, Any]) -> None: ...

    def unsubscribe(self, args: Mapping[str, Any]) -> None: ...

    def resubscribe_nowait(self, args: Mapping[str, Any]) -> bool: ...

    def add_push_listener(self, fn: Callable[[dict[str, Any]], Any]) -> None: ...

    def on_connect(self, fn: Callable[[], Any]) -> Any: ...

    def on_disconnect(self, fn: Callable[[str], Any]) -> Any: ...

    def on_error(self, fn: Callable[[BaseException], Any]) -> Any: ...

    def off(self, fn: Callable[..., Any]) -> None: ...

    def report_error(self, exc: BaseException, *, handler: str | None = None) -> None: ...

    def adopt_sibling(self, child: Any, *, kind: str, label: str) -> None: ...


class ManagedOrderBook(Owned):
    """An order book of one ``(channel, inst_id)`` that resyncs itself (module doc).

    Build it with ``ws.order_book(inst_id, channel="books", **options)``
    (``ManagedOrderBook(ws, inst_id, channel, ...)`` is the same). Options
    (keyword-only): ``verify_sequence`` / ``verify_checksum`` (True) and
    ``verify_uncrossed`` (None: on except for ``books-elp``), passed to the
    :class:`~okx_sync.book.OrderBookStore`, ``policy`` (:class:`ResyncPolicy`), ``callbacks``
    (``"thread"``: ``on_update`` runs on the book's thread, coalesced — a slow
    callback sees the latest book, never a backlog; ``"inline"``: on the WS
    reader after every applied push — keep it short), ``rest_check`` (an
    ``okx_sync.Client``, or anything with ``market.get_order_book(inst_id=, sz=)``
    returning an ``OrderBook``; None: no cross-check), ``rest_tolerance``
    (relative, 0.001), ``clock``.

    The subscription is sent at once (or on ``ws.start()``); use
    :meth:`wait_ready` to wait for the first snapshot.

    Raises ``ValidationError`` for an unknown channel, an empty ``inst_id``,
    bad options, or when ``ws`` already manages this book (close it first),
    or when the ``Client`` that built ``ws`` is closed. ``client.close()``
    closes the books of the WS clients it built (before those clients).

    Thread safety: every method may be called from any thread. Reads
    (:meth:`best_bid`, :meth:`best_ask`, :meth:`snapshot`, :meth:`stats`) see
    the book as it was between two pushes; while the book is not in sync they
    return None / empty sides. ``close()`` from a callback does not join the
    calling thread.
    """

    def __init__(
        self,
        ws: BookFeed,
        inst_id: str,
        channel: str = "books",
        *,
        verify_sequence: bool = True,
        verify_checksum: bool = True,
        verify_uncrossed: bool | None = None,
        policy: ResyncPolicy | None = None,
        callbacks: str = "thread",
        rest_check: Any = None,
        rest_tolerance: float = 0.001,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if channel not in BOOK_CHANNELS:
            raise ValidationError(
                f"not an order book channel: {channel!r} (expected one of {sorted(BOOK_CHANNELS)})"
            )
        if not isinstance(inst_id, str) or not inst_id:
            raise ValidationError(f"inst_id must be a non-empty string, got {inst_id!r}")
        one_of(callbacks, name="callbacks", choices=_CALLBACK_MODES)
        instance(policy, name="policy", kind=ResyncPolicy, optional=True)
        flag(verify_sequence, name="verify_sequence")
        flag(verify_checksum, name="verify_checksum")
        tolerance = real(rest_tolerance, name="rest_tolerance", low=0.0)
        spread = channel.startswith("sprd-")
        if rest_check is not None:
            if spread:
                raise ValidationError("rest_check: GET /api/v5/market/books has no spread books")
            if not callable(getattr(getattr(rest_check, "market", None), "get_order_book", None)):
                raise ValidationError(
                    "rest_check needs an object with market.get_order_book (an okx_sync.Client)"
                )
        self._ws = ws
        self._store = OrderBookStore(
            channel,
            inst_id,
            verify_sequence=verify_sequence,
            verify_checksum=verify_checksum,
            verify_uncrossed=verify_uncrossed,
        )
        self._channel = channel
        self._inst_id = inst_id
        self._arg = {"channel": channel, ("sprdId" if spread else "instId"): inst_id}
        self._incremental = channel in INCREMENTAL_CHANNELS
        self._policy = policy or ResyncPolicy()
        self._inline = callbacks == "inline"
        self._rest = rest_check
        self._tolerance = tolerance
        self._clock = clock

        self._cond = threading.Condition(threading.Lock())
        # sync state (written under _cond; _awaiting is read lock-free by the reader)
        self._awaiting = True  # waiting for a snapshot: updates are skipped
        self._in_sync = False
        self._closed = False
        self._reader: threading.Thread | None = None  # reader that delivered the last snapshot
        self._retry_at: float | None = None
        self._failures = 0
        self._connects = 0  # connections seen ready (on_connect)
        self._lost_at: float | None = None
        self._resync_open = False
        # counters
        self._resyncs = 0
        self._resubscribes = 0
        self._skipped = 0  # reader only
        self._callback_errors = 0
        self._last_error = ""
        self._rejected: WSSubscribeError | None = None  # OKX refused the arg itself: final
        self._last_resync_s: float | None = None
        # work for the book thread
        self._reports: list[BaseException] = []
        self._dirty = False
        self._check_pending = False
        # callbacks (tuples, replaced under _cond, read lock-free)
        self._update_fns: tuple[Callable[[ManagedOrderBook], Any], ...] = ()
        self._resync_fns: tuple[Callable[[ManagedOrderBook, BaseException], Any], ...] = ()
        # REST cross-check
        self._check_thread: threading.Thread | None = None
        self._check_again = False
        self._checked = 0
        self._mismatches = 0
        self._check_errors = 0
        self._last_check: CrossCheck | None = None
        self._last_check_error = ""

        self._thread_name = f"okx-book-{channel}-{inst_id}"
        self._thread: threading.Thread | None = None  # runs while the WSClient is started
        self._gen = 0  # the running thread's generation; a stale one ends
        self._threads_on = False
        self._retry_at = clock.monotonic() + self._policy.snapshot_timeout_s
        router = ws.book_router
        # the Client that built ws closes this book too
        ws.adopt_sibling(self, kind="book", label=f"order book {channel}:{inst_id} on WS {ws.name}")
        # raises ValidationError for a duplicate; routes pushes from now on and starts
        # the book's thread when the client is started
        try:
            router.add(self)
        except BaseException:
            self._owned_closed()
            raise
        try:
            ws.subscribe(self._arg)
        except BaseException:
            self.close()
            raise
        log.info(
            "order book %s %s opened on ws %s",
            channel,
            inst_id,
            ws.name,
            extra={"ws": ws.name, "channel": channel, "inst_id": inst_id},
        )

    # ------------------------------------------------------------------ identity / state
    @property
    def channel(self) -> str:
        """The channel (e.g. ``"books"``)."""
        return self._channel

    @property
    def inst_id(self) -> str:
        """The instId (sprdId for spread channels)."""
        return self._inst_id

    @property
    def ws(self) -> BookFeed:
        """The :class:`BookFeed` this book rides on (a ``WSClient``'s private adapter)."""
        return self._ws

    @property
    def store(self) -> OrderBookStore:
        """The underlying store, for reading (``checksum_string()``...). Do not ``apply`` to it."""
        return self._store

    @property
    def in_sync(self) -> bool:
        """True while the book holds a verified snapshot and every update since, and the
        WSClient is running."""
        return self._in_sync and self._ws.running

    @property
    def resyncs(self) -> int:
        """How many times the book lost sync (book error, dropped connection) and resynced
        or is resyncing."""
        return self._resyncs

    @property
    def last_error(self) -> str:
        """``"Type: message"`` of the last error that cost the book its sync (or a refused
        subscription: ``"WSSubscribeError: WS subscribe error 60018: ..."``), ``""`` when
        none."""
        return self._last_error

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    @property
    def seq_id(self) -> int | None:
        """``seqId`` of the last applied push (None when not in sync)."""
        return self._store.seq_id if self.in_sync else None

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("in sync" if self.in_sync else "out of sync")
        if self._rejected is not None and not self._closed:
            state = f"rejected {self._rejected.code}"
        return (
            f"ManagedOrderBook({self._channel} {self._inst_id} {state} "
            f"resyncs={self._resyncs} ws={self._ws.name!r})"
        )

    # ------------------------------------------------------------------ reading
    def best_bid(self) -> BookLevel | None:
        """The best bid (:class:`~okx_sync.models.BookLevel`); None when the side is empty
        or the book is not in sync. Thread safety: any thread."""
        if not self.in_sync:
            return None
        return self._store.best_bid()

    def best_ask(self) -> BookLevel | None:
        """The best ask (:class:`~okx_sync.models.BookLevel`); None when the side is empty
        or the book is not in sync. Thread safety: any thread."""
        if not self.in_sync:
            return None
        return self._store.best_ask()

    def snapshot(self, depth: int | None = None) -> OrderBook:
        """A consistent copy of the book: the :class:`~okx_sync.models.OrderBook` of
        :meth:`OrderBookStore.snapshot` (``inst_id``, ``seq_id``, ``ts``, ``bids``,
        ``asks``; ``raw`` holds the exact wire levels).

        Not in sync: both sides empty, ``seq_id`` and ``ts`` None. Raises
        ``ValidationError`` for a bad ``depth``. Thread safety: any thread.
        """
        snap = self._store.snapshot(depth)
        if not self.in_sync:
            return OrderBook(inst_id=self._inst_id)
        return snap

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Block until the book is in sync; True when it is, False after ``timeout_s`` s.

        Raises ``WSSubscribeError`` (its ``code``, ``msg`` and ``arg``) at once
        when OKX rejected the book's subscription with a code retrying cannot fix
        (60018 unknown instrument or channel, 60012/60013 bad args, 64003 fee
        tier too low...; ``ws.protocol.ARG_REJECTION_CODES``): the book then
        stops, sends nothing more, and stays out of sync until closed.
        Raises ``WSClosedError`` when the book is (or gets) closed. Thread
        safety: any thread except the WS reader (it delivers the snapshot).
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

    def stats(self) -> dict[str, Any]:
        """JSON-serialisable counters: the store's :meth:`OrderBookStore.stats` fields
        (``ready``, ``seq_id``, ``errors`` by kind...), plus ``in_sync``, ``resyncs``,
        ``resubscribes`` (unsubscribe + subscribe pairs the book sent; when
        disconnected it leaves the subscription to the next connect), ``skipped`` (updates dropped while waiting for a
        snapshot), ``last_error``, ``rejected`` (the code with which OKX rejected the
        subscription for good, e.g. ``"60018"``; None), ``last_resync_s`` (out of sync -> in sync),
        ``callback_errors``, ``closed``, ``ws`` (the client's name) and
        ``rest_check`` (``enabled``, ``checked``, ``mismatches``, ``errors``,
        ``last_difference`` — a :meth:`CrossCheck.to_dict` or None —,
        ``last_error``). Thread safety: any thread.
        """
        out = self._store.stats()
        in_sync = self.in_sync
        with self._cond:
            last = self._last_check
            out.update(
                {
                    "ws": self._ws.name,
                    "in_sync": in_sync,
                    "resyncs": self._resyncs,
                    "resubscribes": self._resubscribes,
                    "skipped": self._skipped,
                    "last_error": self._last_error,
                    "rejected": None if self._rejected is None else self._rejected.code,
                    "last_resync_s": self._last_resync_s,
                    "callback_errors": self._callback_errors,
                    "closed": self._closed,
                    "rest_check": {
                        "enabled": self._rest is not None,
                        "checked": self._checked,
                        "mismatches": self._mismatches,
                        "errors": self._check_errors,
                        "last_difference": None if last is None else last.to_dict(),
                        "last_error": self._last_check_error,
                    },
                }
            )
        return out

    # ------------------------------------------------------------------ callbacks
    def on_update(self, fn: F) -> F:
        """Call ``fn(book)`` after the book changed (see ``callbacks`` for the thread).

        Returns ``fn`` (usable as a decorator). Raises ``ValidationError`` when
        ``fn`` is not callable.
        """
        self._check_callable(fn)
        with self._cond:
            self._update_fns = (*self._update_fns, fn)
        return fn

    def on_resync(self, fn: F) -> F:
        """Call ``fn(book, error)`` on the book's thread each time the book lost sync.

        ``error`` is the :class:`~okx_sync.errors.OrderBookError` that was
        detected, or a ``WSError`` naming the lost connection. The book is
        already resyncing; ``on_update`` fires again once it is back in sync.
        Returns ``fn``. Raises ``ValidationError`` when ``fn`` is not callable.
        """
        self._check_callable(fn)
        with self._cond:
            self._resync_fns = (*self._resync_fns, fn)
        return fn

    def off(self, fn: Callable[..., Any]) -> None:
        """Remove ``fn`` from ``on_update`` and ``on_resync``."""
        with self._cond:
            self._update_fns = tuple(f for f in self._update_fns if f is not fn)
            self._resync_fns = tuple(f for f in self._resync_fns if f is not fn)

    @staticmethod
    def _check_callable(fn: Any) -> None:
        if not callable(fn):
            raise ValidationError(f"callback must be callable, got {fn!r}")

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            with self._cond:
                self._callback_errors += 1
            self._ws.report_error(exc, handler=f"order book {getattr(fn, '__name__', fn)!s}")

    # ------------------------------------------------------------------ lifecycle
    def close(self, timeout_s: float = 2.0) -> bool:
        """Stop routing pushes to the book, unsubscribe, stop and join its threads.

        Idempotent. Returns True when every thread of the book ended within
        ``timeout_s``. The book reads as not in sync afterwards. Never raises
        for a closed or disconnected WSClient.
        """
        with self._cond:
            if self._closed:
                first = False
            else:
                first = True
                self._closed = True
                self._in_sync = False
                self._cond.notify_all()
        if first:
            self._owned_closed()
            self._ws.book_router.remove(self)
            self._unsubscribe()
            self._store.reset()
            log.info(
                "order book %s %s closed",
                self._channel,
                self._inst_id,
                extra={"ws": self._ws.name, "channel": self._channel, "inst_id": self._inst_id},
            )
        return self._stop_threads(timeout_s)

    def _start_threads(self) -> None:
        """Start the book's thread (the WSClient started; router lock held). Idempotent."""
        with self._cond:
            if self._closed or self._threads_on:
                return
            self._threads_on = True
            self._gen += 1
            thread = threading.Thread(
                target=self._run, args=(self._gen,), name=self._thread_name, daemon=True
            )
            self._thread = thread
            self._cond.notify_all()
        thread.start()

    def _stop_threads(self, timeout: float) -> bool:
        """Stop the book's threads and join them within ``timeout_s`` (not the calling one).

        True when none is left running. Called by ``close()`` and when the WSClient closes.
        """
        with self._cond:
            if self._threads_on:
                self._threads_on = False
                self._gen += 1  # the running thread sees it is stale and ends
            self._cond.notify_all()
            threads = (self._thread, self._check_thread)
        deadline = self._clock.monotonic() + timeout
        ok = True
        me = threading.current_thread()
        for thread in threads:
            if thread is None or thread is me:
                continue
            thread.join(max(0.0, deadline - self._clock.monotonic()))
            ok = ok and not thread.is_alive()
        return ok

    def _unsubscribe(self) -> None:
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

    def __enter__(self) -> ManagedOrderBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reader hot path
    def _on_push(self, msg: Mapping[str, Any]) -> None:
        """One push for this book (WS reader thread, no okx_sync lock held)."""
        snapshot = not self._incremental or msg.get("action") != "update"
        if self._awaiting and not snapshot:
            self._skipped += 1
            return
        try:
            self._store.apply(msg)
        except OrderBookError as exc:
            self._lose_sync(exc, resubscribe=self._incremental)
            return
        if snapshot:
            self._snapshot_applied()
        if self._update_fns:
            if self._inline:
                for fn in self._update_fns:
                    self._call(fn, self)
            elif not self._dirty:
                with self._cond:
                    self._dirty = True
                    self._cond.notify_all()

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
                self._check_pending = self._rest is not None
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
            self._resubscribe()

    def _resubscribe(self) -> None:
        """Send unsubscribe + subscribe without waiting (any thread, the reader included)."""
        if self._closed or self._rejected is not None:
            return
        connects = self._connects
        try:
            sent = self._ws.resubscribe_nowait(self._arg)
        except WSError as exc:
            self._refused(exc)
            return
        if self._closed:  # close() ran meanwhile: do not leave the subscription behind
            self._unsubscribe()
            return
        now = self._clock.monotonic()
        with self._cond:
            if sent:
                self._resubscribes += 1
                if self._awaiting:
                    self._retry_at = now + self._policy.snapshot_timeout_s
            elif self._connects == connects:
                self._retry_at = None  # the next connect subscribes it; _on_connect re-arms
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

    def _refused(self, exc: BaseException) -> None:
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
    def _on_disconnect(self, reason: str) -> None:
        self._lose_sync(WSError(f"WS {self._ws.name} disconnected: {reason}"), resubscribe=False)

    def _on_connect(self) -> None:
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

    # ------------------------------------------------------------------ the book's thread
    def _run(self, gen: int) -> None:
        cond = self._cond
        while True:
            with cond:
                while True:
                    if self._closed or self._gen != gen:
                        return
                    now = self._clock.monotonic()
                    waiting = self._awaiting and self._rejected is None
                    retry = waiting and self._retry_at is not None and now >= self._retry_at
                    dirty = self._dirty and bool(self._update_fns)
                    if retry or dirty or self._reports or self._check_pending:
                        break
                    self._dirty = False
                    due = self._retry_at if waiting else None
                    self._clock.wait(cond, None if due is None else max(0.0, due - now))
                reports, self._reports = self._reports, []
                self._dirty = False
                check, self._check_pending = self._check_pending, False
                if retry:
                    self._retry_at = None
                resync_fns = self._resync_fns
                update_fns = self._update_fns
            if retry:
                self._resubscribe()
            for exc in reports:
                if isinstance(exc, OrderBookError):
                    self._ws.report_error(exc)
                for on_resync in resync_fns:
                    self._call(on_resync, self, exc)
            if check:
                self._start_check()
            if dirty and not self._inline:
                for on_update in update_fns:
                    self._call(on_update, self)

    # ------------------------------------------------------------------ REST cross-check
    def _start_check(self) -> None:
        with self._cond:
            if self._closed or not self._threads_on:
                return
            if self._check_thread is not None and self._check_thread.is_alive():
                self._check_again = True
                return
            thread = threading.Thread(
                target=self._check_loop, name=f"{self._thread_name}-check", daemon=True
            )
            self._check_thread = thread
        thread.start()

    def _check_loop(self) -> None:
        while True:
            self._rest_check()
            with self._cond:
                if self._closed or not self._threads_on or not self._check_again:
                    return
                self._check_again = False

    def _rest_check(self) -> None:
        """Compare best bid/ask with ``GET /api/v5/market/books`` (the check thread)."""
        try:
            book = self._rest.market.get_order_book(inst_id=self._inst_id, sz=1)
            rest = (
                getattr(book, "seq_id", None),
                _px(getattr(book, "best_bid", None)),
                _px(getattr(book, "best_ask", None)),
            )
        except Exception as exc:  # any failure of the check is reported, never raised
            with self._cond:
                self._check_errors += 1
                self._last_check_error = _describe(exc)
            log.warning(
                "order book %s %s: REST cross-check failed: %s",
                self._channel,
                self._inst_id,
                _describe(exc),
                extra={"channel": self._channel, "inst_id": self._inst_id, "error": _describe(exc)},
            )
            return
        snap = self._store.snapshot(1)
        if not self.in_sync or (snap.seq_id is None and not snap.bids and not snap.asks):
            return  # lost sync again meanwhile (the store was reset): the next resync checks
        local = (snap.seq_id, _px(snap.best_bid), _px(snap.best_ask))
        result = compare_best(local, rest, self._tolerance)
        with self._cond:
            self._checked += 1
            self._last_check = result
            if not result.ok:
                self._mismatches += 1
        extra = {"channel": self._channel, "inst_id": self._inst_id, **result.to_dict()}
        log.log(
            logging.INFO if result.ok else logging.WARNING,
            "order book %s %s: REST cross-check %s: local seqId %s bid %s ask %s, "
            "REST seqId %s bid %s ask %s (tolerance %g)",
            self._channel,
            self._inst_id,
            "ok" if result.ok else "MISMATCH",
            result.local_seq_id,
            result.local_bid,
            result.local_ask,
            result.rest_seq_id,
            result.rest_bid,
            result.rest_ask,
            result.tolerance,
            extra=extra,
        )


class BookRouter:
    """Routes one feed's pushes to its managed books (internal; ``ws.book_router``).

    Registers one push listener (inline on the reader) and the connect,
    disconnect and error handlers the books need on the client while at
    least one book is open, and detaches them when the last book closes.
    Thread safety: all methods may be called from any thread; routing reads
    a dict that is replaced, never mutated.
    """

    def __init__(self, ws: BookFeed) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self._books: dict[BookKey, ManagedOrderBook] = {}
        self._attached = False
        self._active = False  # the WSClient is started: books run their threads
        # bound once: ws.off() matches handlers by identity
        self._route_fn = self._route
        self._connect_fn = self._connected
        self._disconnect_fn = self._disconnected
        self._error_fn = self._error

    def add(self, book: ManagedOrderBook) -> None:
        """Route ``book``'s pushes to it. Raises ``ValidationError`` when its key is taken."""
        key = (book.channel, book.inst_id)
        ws = self._ws
        with self._lock:
            if key in self._books:
                raise ValidationError(
                    f"WS {ws.name} already manages the {key[0]} book of {key[1]} "
                    "(see ws.managed_books(); close it first)"
                )
            self._books = {**self._books, key: book}
            if self._active:
                book._start_threads()
            if not self._attached:
                self._attached = True
                ws.add_push_listener(self._route_fn)
                ws.on_connect(self._connect_fn)
                ws.on_disconnect(self._disconnect_fn)
                ws.on_error(self._error_fn)

    def remove(self, book: ManagedOrderBook) -> None:
        """Stop routing to ``book``; detach from the client when it was the last one."""
        key = (book.channel, book.inst_id)
        with self._lock:
            if self._books.get(key) is not book:
                return
            books = dict(self._books)
            del books[key]
            self._books = books
            if not books and self._attached:
                self._attached = False
                for fn in (self._route_fn, self._connect_fn, self._disconnect_fn, self._error_fn):
                    self._ws.off(fn)

    def books(self) -> list[ManagedOrderBook]:
        """The open books, oldest first."""
        return list(self._books.values())

    def resume(self) -> None:
        """The WSClient is starting: start every book's thread (and those of books added
        later, until ``suspend``)."""
        with self._lock:
            self._active = True
            for book in self._books.values():
                book._start_threads()

    def suspend(self, timeout_s: float) -> bool:
        """The WSClient closed: stop every book's threads and join them within ``timeout_s``.

        The books stay open and routed. True when every thread ended in time.
        """
        with self._lock:
            self._active = False
            books = list(self._books.values())
        share = timeout_s / max(1, len(books))
        return all([book._stop_threads(share) for book in books])

    # WS reader thread: keep it short
    def _route(self, msg: Mapping[str, Any]) -> None:
        book = self._books.get(_key_of(msg["arg"]))
        if book is not None:
            book._on_push(msg)

    def _connected(self) -> None:
        for book in list(self._books.values()):
            book._on_connect()

    def _disconnected(self, reason: str) -> None:
        for book in list(self._books.values()):
            book._on_disconnect(reason)

    def _error(self, exc: BaseException) -> None:
        if not isinstance(exc, WSSubscribeError) or not isinstance(exc.arg, Mapping):
            return
        book = self._books.get(_key_of(exc.arg))
        if book is not None:
            book._refused(exc)
