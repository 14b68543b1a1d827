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

Parts: the resync state machine is :class:`~okx_sync.ws.book_sync.BookSync`
(with :class:`ResyncPolicy`), the book's thread and callbacks
:class:`~okx_sync.ws.book_worker.BookWorker`, the REST cross-check
:class:`~okx_sync.ws.book_check.BookCrossCheck` (with :func:`compare_best`);
``ManagedOrderBook`` composes them over one lock.

The book sees its client only through the small :class:`BookFeed` protocol
(a ``WSClient`` gives its books a private adapter): this module never imports ``ws.client``, so a
book can be driven by a fake feed in tests, without sockets.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import attrs

from ..book import BOOK_CHANNELS, OrderBookStore
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ValidationError, WSSubscribeError
from ..lifecycle import Owned
from ..models.market import BookLevel, OrderBook
from ..validators import flag, instance, one_of, real
from .book_check import BookCrossCheck, CrossCheck, check_rest_source, compare_best
from .book_stats import BookCheckStats, BookStats
from .book_sync import BookSync, ResyncPolicy
from .book_worker import BookWorker

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


def _key_of(arg: Mapping[str, Any]) -> BookKey:
    """The book key of a push's or subscription's ``arg``."""
    return (str(arg.get("channel")), str(arg.get("instId") or arg.get("sprdId")))


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
        check_rest_source(rest_check, spread=spread)
        self._ws = ws
        self._store = store = OrderBookStore(
            channel,
            inst_id,
            verify_sequence=verify_sequence,
            verify_checksum=verify_checksum,
            verify_uncrossed=verify_uncrossed,
        )
        self._channel = channel
        self._inst_id = inst_id
        self._arg = {"channel": channel, ("sprdId" if spread else "instId"): inst_id}
        # one lock for the book, its sync state machine and its cross-check
        self._cond = threading.Condition(threading.Lock())
        self._sync = BookSync(
            ws,
            store,
            self._arg,
            policy=policy or ResyncPolicy(),
            clock=clock,
            cond=self._cond,
            cross_check=rest_check is not None,
        )
        thread_name = f"okx-book-{channel}-{inst_id}"
        self._check = BookCrossCheck(
            rest_check,
            store,
            tolerance=tolerance,
            cond=self._cond,
            in_sync=lambda: self.in_sync,
            active=lambda: not self._sync.closed and self._worker.active,
            thread_name=thread_name,
        )
        self._worker = BookWorker(
            self,
            ws,
            self._sync,
            self._check,
            cond=self._cond,
            clock=clock,
            inline=callbacks == "inline",
            thread_name=thread_name,
        )
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
        return self._sync.in_sync and self._ws.running

    @property
    def resyncs(self) -> int:
        """How many times the book lost sync (book error, dropped connection) and resynced
        or is resyncing."""
        return self._sync.resyncs

    @property
    def last_error(self) -> str:
        """``"Type: message"`` of the last error that cost the book its sync (or a refused
        subscription: ``"WSSubscribeError: WS subscribe error 60018: ..."``), ``""`` when
        none."""
        return self._sync.last_error

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._sync.closed

    @property
    def seq_id(self) -> int | None:
        """``seqId`` of the last applied push (None when not in sync)."""
        return self._store.seq_id if self.in_sync else None

    def __repr__(self) -> str:
        closed, rejected = self._sync.closed, self._sync.rejected
        state = "closed" if closed else ("in sync" if self.in_sync else "out of sync")
        if rejected is not None and not closed:
            state = f"rejected {rejected.code}"
        return (
            f"ManagedOrderBook({self._channel} {self._inst_id} {state} "
            f"resyncs={self._sync.resyncs} ws={self._ws.name!r})"
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
        return self._sync.wait_ready(timeout_s)

    def stats(self) -> BookStats:
        """The book's counters as a frozen :class:`~okx_sync.ws.book_stats.BookStats`
        (``to_dict()`` for JSON), a ``StoreStats``: the fields of the store's
        :meth:`OrderBookStore.stats` (``ready``, ``seq_id``, ``errors`` by kind...),
        plus ``in_sync``, ``resyncs``,
        ``resubscribes`` (unsubscribe + subscribe pairs the book sent; when
        disconnected it leaves the subscription to the next connect), ``skipped`` (updates
        dropped while waiting for a snapshot), ``last_error``, ``rejected`` (the code with
        which OKX rejected the subscription for good, e.g. ``"60018"``; None),
        ``last_resync_s`` (out of sync -> in sync), ``callback_errors``, ``closed``, ``ws``
        (the client's name) and ``rest_check`` (a ``BookCheckStats``: ``enabled``,
        ``checked``, ``mismatches``, ``errors``, ``last_difference`` — a
        :meth:`CrossCheck.to_dict` or None —, ``last_error``). Thread safety: any thread.
        """
        store = self._store.stats()
        in_sync = self.in_sync
        with self._cond:
            return BookStats(
                **attrs.asdict(store, recurse=False),
                ws=self._ws.name,
                in_sync=in_sync,
                **self._sync.counters(),
                callback_errors=self._worker.callback_errors,
                closed=self._sync.closed,
                rest_check=BookCheckStats(**self._check.counters()),
            )

    # ------------------------------------------------------------------ callbacks
    def on_update(self, fn: F) -> F:
        """Call ``fn(book)`` after the book changed (see ``callbacks`` for the thread).

        Returns ``fn`` (usable as a decorator). Raises ``ValidationError`` when
        ``fn`` is not callable.
        """
        self._worker.add_update(fn)
        return fn

    def on_resync(self, fn: F) -> F:
        """Call ``fn(book, error)`` on the book's thread each time the book lost sync.

        ``error`` is the :class:`~okx_sync.errors.OrderBookError` that was
        detected, or a ``WSError`` naming the lost connection. The book is
        already resyncing; ``on_update`` fires again once it is back in sync.
        Returns ``fn``. Raises ``ValidationError`` when ``fn`` is not callable.
        """
        self._worker.add_resync(fn)
        return fn

    def off(self, fn: Callable[..., Any]) -> None:
        """Remove ``fn`` from ``on_update`` and ``on_resync``."""
        self._worker.remove(fn)

    # ------------------------------------------------------------------ lifecycle
    def close(self, timeout_s: float = 2.0) -> bool:
        """Stop routing pushes to the book, unsubscribe, stop and join its threads.

        Idempotent. Returns True when every thread of the book ended within
        ``timeout_s``. The book reads as not in sync afterwards. Never raises
        for a closed or disconnected WSClient.
        """
        if self._sync.close():
            self._owned_closed()
            self._ws.book_router.remove(self)
            self._sync.unsubscribe()
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
        self._worker.start()

    def _stop_threads(self, timeout: float) -> bool:
        """Stop the book's threads and join them within ``timeout`` s (not the calling one).

        True when none is left running. Called by ``close()`` and when the WSClient closes.
        """
        return self._worker.stop(timeout)

    def __enter__(self) -> ManagedOrderBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ feed events
    def _on_push(self, msg: Mapping[str, Any]) -> None:
        """One push for this book (WS reader thread, no okx_sync lock held)."""
        if self._sync.on_push(msg):
            self._worker.updated()

    def _on_connect(self) -> None:
        self._sync.on_connect()

    def _on_disconnect(self, reason: str) -> None:
        self._sync.on_disconnect(reason)

    def _refused(self, exc: BaseException) -> None:
        self._sync.refused(exc)


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
