"""The thread of one managed order book: user callbacks and resubscribe retries.

:class:`BookWorker` holds a book's ``on_update`` / ``on_resync`` callbacks and
runs them: inline on the WS reader (``callbacks="inline"``) or on the book's own
thread ``okx-book-<channel>-<instId>`` (``"thread"``: ``on_update`` coalesced, a
slow callback sees the latest book, never a backlog). The same thread acts on
what the book's :class:`~okx_sync.ws.book_sync.BookSync` decided: a resubscribe
that is due, the ``on_resync`` reports, the REST cross-check
(:class:`~okx_sync.ws.book_check.BookCrossCheck`) after a resync. A callback's
exception is caught, counted (``callback_errors``) and passed to the feed's
``report_error``; it never ends the thread. No okx_sync lock is held while user
code runs.

The thread runs while the book's WSClient is started (``start`` / ``stop``; a
generation number retires a stale thread at once).

Thread safety: every method may be called from any thread; ``stop`` does not
join the calling thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..clock import Clock
from ..errors import OrderBookError, ValidationError
from .book_check import BookCrossCheck
from .book_sync import BookSync

__all__ = ["BookWorker", "ErrorSink"]


class ErrorSink(Protocol):
    """Where a callback's exception (and a book error) is reported: a ``BookFeed``."""

    def report_error(self, exc: BaseException, *, handler: str | None = None) -> None: ...


class BookWorker:
    """Runs one book's callbacks and acts on its sync on the book's thread (module doc).

    ``book`` is the first argument of every callback; ``feed`` receives the
    errors; ``sync``, ``check`` and ``cond`` are the book's (one lock);
    ``inline``: ``on_update`` runs on the reader. Raises ``ValidationError`` when a
    callback added is not callable. Thread safety: any thread.
    """

    def __init__(
        self,
        book: Any,
        feed: ErrorSink,
        sync: BookSync,
        check: BookCrossCheck,
        *,
        cond: threading.Condition,
        clock: Clock,
        inline: bool,
        thread_name: str,
    ) -> None:
        self._book = book
        self._ws = feed
        self._sync = sync
        self._check = check
        self._cond = cond
        self._clock = clock
        self._inline = inline
        self._thread_name = thread_name
        self._callback_errors = 0
        self._dirty = False  # on_update due (callbacks="thread")
        # callbacks (tuples, replaced under _cond, read lock-free)
        self._update_fns: tuple[Callable[[Any], Any], ...] = ()
        self._resync_fns: tuple[Callable[[Any, BaseException], Any], ...] = ()
        self._thread: threading.Thread | None = None  # runs while the WSClient is started
        self._gen = 0  # the running thread's generation; a stale one ends
        self._threads_on = False

    @property
    def active(self) -> bool:
        """True while the book's thread is meant to run (read with ``cond`` held)."""
        return self._threads_on

    @property
    def callback_errors(self) -> int:
        """Exceptions raised by the book's callbacks so far."""
        return self._callback_errors

    # ------------------------------------------------------------------ callbacks
    def add_update(self, fn: Callable[[Any], Any]) -> None:
        """Add an ``on_update`` callback. Raises ``ValidationError`` when not callable."""
        self._check_callable(fn)
        with self._cond:
            self._update_fns = (*self._update_fns, fn)

    def add_resync(self, fn: Callable[[Any, BaseException], Any]) -> None:
        """Add an ``on_resync`` callback. Raises ``ValidationError`` when not callable."""
        self._check_callable(fn)
        with self._cond:
            self._resync_fns = (*self._resync_fns, fn)

    def remove(self, fn: Callable[..., Any]) -> None:
        """Remove ``fn`` from both lists (matched by identity; no error when absent)."""
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

    def updated(self) -> None:
        """The book changed (WS reader, no lock held): run ``on_update`` inline or wake the
        book's thread for it."""
        if not self._update_fns:
            return
        if self._inline:
            for fn in self._update_fns:
                self._call(fn, self._book)
        elif not self._dirty:
            with self._cond:
                self._dirty = True
                self._cond.notify_all()

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        """Start the book's thread (the WSClient started). Idempotent; no-op once closed."""
        with self._cond:
            if self._sync.closed or self._threads_on:
                return
            self._threads_on = True
            self._gen += 1
            thread = threading.Thread(
                target=self._run, args=(self._gen,), name=self._thread_name, daemon=True
            )
            self._thread = thread
            self._cond.notify_all()
        thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Stop the book's threads and join them within ``timeout_s`` (not the calling one).

        True when none is left running. Called by ``close()`` and when the WSClient closes.
        """
        with self._cond:
            if self._threads_on:
                self._threads_on = False
                self._gen += 1  # the running thread sees it is stale and ends
            self._cond.notify_all()
            threads = (self._thread, self._check.thread)
        deadline = self._clock.monotonic() + timeout_s
        ok = True
        me = threading.current_thread()
        for thread in threads:
            if thread is None or thread is me:
                continue
            thread.join(max(0.0, deadline - self._clock.monotonic()))
            ok = ok and not thread.is_alive()
        return ok

    def _run(self, gen: int) -> None:
        cond, sync = self._cond, self._sync
        while True:
            with cond:
                while True:
                    if sync.closed or self._gen != gen:
                        return
                    now = self._clock.monotonic()
                    retry, due = sync.retry_due(now)
                    dirty = self._dirty and bool(self._update_fns)
                    if retry or dirty or sync.has_work():
                        break
                    self._dirty = False
                    self._clock.wait(cond, None if due is None else max(0.0, due - now))
                reports, check = sync.take_work(retry)
                self._dirty = False
                resync_fns = self._resync_fns
                update_fns = self._update_fns
            if retry:
                sync.resubscribe()
            for exc in reports:
                if isinstance(exc, OrderBookError):
                    self._ws.report_error(exc)
                for on_resync in resync_fns:
                    self._call(on_resync, self._book, exc)
            if check:
                self._check.start()
            if dirty and not self._inline:
                for on_update in update_fns:
                    self._call(on_update, self._book)
