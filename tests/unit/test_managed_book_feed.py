"""ManagedOrderBook against a minimal fake BookFeed: no WSClient, no sockets.

The book sees its client only through ``ws.managed_book.BookFeed``; these tests
drive it with a fake feed that records what the book asks for and delivers
pushes, connects, disconnects and errors by hand.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest

from okx_sync.checksum import book_checksum
from okx_sync.clock import FakeClock
from okx_sync.errors import WSClosedError, WSSubscribeError
from okx_sync.ws.managed_book import BookFeed, BookRouter, ManagedOrderBook, ResyncPolicy

INST = "BTC-USDT"
ARG = {"channel": "books", "instId": INST}
REAL_WAIT_S = 10.0  # real-time bound on waiting for the book's thread


class FakeFeed:
    """The smallest BookFeed: records calls, delivers events on the test's thread."""

    def __init__(self) -> None:
        self.name = "fake"
        self.running = False
        self.book_router = BookRouter(self)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.resubscribed = threading.Event()
        self.reported: list[tuple[BaseException, str | None]] = []
        self.adopted: list[tuple[Any, str]] = []
        self.listeners: dict[str, list[Callable[..., Any]]] = {
            "push": [],
            "connect": [],
            "disconnect": [],
            "error": [],
        }

    # --- the BookFeed members
    def subscribe(self, args: Mapping[str, Any]) -> None:
        self.calls.append(("subscribe", dict(args)))

    def unsubscribe(self, args: Mapping[str, Any]) -> None:
        self.calls.append(("unsubscribe", dict(args)))

    def resubscribe_nowait(self, args: Mapping[str, Any]) -> bool:
        self.calls.append(("resubscribe", dict(args)))
        self.resubscribed.set()
        return self.running

    def add_push_listener(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        self.listeners["push"].append(fn)

    def on_connect(self, fn: Callable[[], Any]) -> Any:
        self.listeners["connect"].append(fn)
        return fn

    def on_disconnect(self, fn: Callable[[str], Any]) -> Any:
        self.listeners["disconnect"].append(fn)
        return fn

    def on_error(self, fn: Callable[[BaseException], Any]) -> Any:
        self.listeners["error"].append(fn)
        return fn

    def off(self, fn: Callable[..., Any]) -> None:
        for fns in self.listeners.values():
            while fn in fns:
                fns.remove(fn)

    def report_error(self, exc: BaseException, *, handler: str | None = None) -> None:
        self.reported.append((exc, handler))

    def adopt_sibling(self, child: Any, *, kind: str, label: str) -> None:
        self.adopted.append((child, kind))

    # --- driving it
    def start(self) -> None:
        self.running = True
        self.book_router.resume()
        for fn in list(self.listeners["connect"]):
            fn()

    def stop(self) -> bool:
        self.running = False
        for fn in list(self.listeners["disconnect"]):
            fn("stopped")
        return self.book_router.suspend(REAL_WAIT_S)

    def push(self, msg: dict[str, Any]) -> None:
        for fn in list(self.listeners["push"]):
            fn(msg)

    def error(self, exc: BaseException) -> None:
        for fn in list(self.listeners["error"]):
            fn(exc)


def _snapshot(seq: int, bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    return {
        "arg": ARG,
        "action": "snapshot",
        "data": [
            {
                "bids": bids,
                "asks": asks,
                "ts": "1700000000000",
                "seqId": seq,
                "prevSeqId": -1,
                "checksum": book_checksum(bids, asks),
            }
        ],
    }


def _update(prev: int, seq: int, bids: list[list[str]], checksum: int) -> dict[str, Any]:
    return {
        "arg": ARG,
        "action": "update",
        "data": [
            {
                "bids": bids,
                "asks": [],
                "ts": "1700000000100",
                "seqId": seq,
                "prevSeqId": prev,
                "checksum": checksum,
            }
        ],
    }


BIDS = [["100.1", "2", "0", "1"], ["100.0", "1", "0", "1"]]
ASKS = [["100.2", "3", "0", "2"]]


def test_wsclient_is_a_book_feed() -> None:
    """The protocol the book is written against is the one WSClient's private feed
    implements (mypy checks the assignment); the hooks stay off WSClient itself."""
    from okx_sync.ws.client import WSClient

    ws = WSClient("ws://127.0.0.1:9/ws/v5/public")  # never started
    try:
        feed: BookFeed = ws._feed
        assert isinstance(feed.book_router, BookRouter)
        assert feed.name == ws.name and not feed.running
        for hook in ("book_router", "add_push_listener", "resubscribe_nowait", "report_error"):
            assert not hasattr(ws, hook)
        book = ws.order_book("BTC-USDT", callbacks="inline")
        assert book.ws is ws._feed and ws.managed_books() == [book]
        assert ws.desired_subscriptions() == [{"channel": "books", "instId": "BTC-USDT"}]
        book.close()
        assert ws.desired_subscriptions() == [] and ws.managed_books() == []
    finally:
        ws.close()


def test_book_registers_with_the_feed_and_detaches_on_close() -> None:
    feed = FakeFeed()
    book = ManagedOrderBook(feed, INST, callbacks="inline", clock=FakeClock())
    assert feed.calls == [("subscribe", ARG)]
    assert feed.adopted == [(book, "book")]
    assert {k: len(v) for k, v in feed.listeners.items()} == {
        "push": 1,
        "connect": 1,
        "disconnect": 1,
        "error": 1,
    }
    assert feed.book_router.books() == [book] and book.ws is feed
    with pytest.raises(ValueError, match="already manages"):
        ManagedOrderBook(feed, INST, clock=FakeClock())
    assert book.close()
    assert feed.calls[-1] == ("unsubscribe", ARG)
    assert feed.book_router.books() == []
    assert all(not fns for fns in feed.listeners.values())
    with pytest.raises(WSClosedError):
        book.wait_ready(0)


def test_snapshot_updates_and_a_gap_through_the_feed() -> None:
    feed = FakeFeed()
    feed.running = True
    book = ManagedOrderBook(feed, INST, callbacks="inline", clock=FakeClock())
    seen: list[int | None] = []
    book.on_update(lambda b: seen.append(b.seq_id))
    try:
        feed.push(_update(1, 2, [["99", "1", "0", "1"]], 0))  # before any snapshot: skipped
        assert book.stats().skipped == 1 and not book.in_sync
        feed.push(_snapshot(10, BIDS, ASKS))
        assert book.wait_ready(0) and book.in_sync
        assert book.best_bid() is not None and book.best_bid().px == Decimal("100.1")
        assert book.best_ask() is not None and book.best_ask().sz == Decimal("3")

        new_bids = [["100.1", "0", "0", "0"]]  # the best bid leaves
        after = [BIDS[1]]
        feed.push(_update(10, 11, new_bids, book_checksum(after, ASKS)))
        assert book.seq_id == 11 and book.best_bid().px == Decimal("100.0")
        assert seen == [10, 11]

        feed.push(_update(7, 12, [["99", "1", "0", "1"]], 0))  # prevSeqId 7 != 11: a gap
        assert not book.in_sync and book.best_bid() is None and book.resyncs == 1
        assert feed.calls[-1] == ("resubscribe", ARG)
        assert "OrderBookSequenceError" in book.last_error

        feed.push(_snapshot(20, BIDS, ASKS))  # the fresh snapshot after the resubscribe
        assert book.in_sync and book.seq_id == 20 and book.resyncs == 1
        feed.running = False  # the feed stopped: the book no longer claims to be in sync
        assert not book.in_sync and book.seq_id is None
    finally:
        book.close()


def test_a_final_refusal_from_the_feed_stops_the_book() -> None:
    feed = FakeFeed()
    book = ManagedOrderBook(feed, INST, clock=FakeClock())
    try:
        feed.error(WSSubscribeError("60018", "doesn't exist", dict(ARG)))
        feed.error(WSSubscribeError("60018", "other book", {"channel": "books", "instId": "X"}))
        with pytest.raises(WSSubscribeError) as info:
            book.wait_ready(0)
        assert info.value.code == "60018" and book.stats().rejected == "60018"
        feed.push(_snapshot(5, BIDS, ASKS))  # even a snapshot does not revive it ...
        feed.start()  # ... nor a connect
        assert ("resubscribe", ARG) not in feed.calls
    finally:
        book.close()
        assert feed.stop()


def test_book_thread_resubscribes_when_no_snapshot_comes_and_reports_resyncs() -> None:
    clock = FakeClock(auto_advance=False)
    feed = FakeFeed()
    book = ManagedOrderBook(feed, INST, policy=ResyncPolicy(snapshot_timeout_s=5.0), clock=clock)
    resynced = threading.Event()
    errors: list[BaseException] = []

    def on_resync(b: ManagedOrderBook, exc: BaseException) -> None:
        errors.append(exc)
        resynced.set()

    book.on_resync(on_resync)
    try:
        feed.start()  # the book's thread starts; the connect arms the snapshot deadline
        assert any(t.name == f"okx-book-books-{INST}" for t in threading.enumerate())
        clock.advance(5.0)  # no snapshot within snapshot_timeout_s: the thread resubscribes
        assert feed.resubscribed.wait(REAL_WAIT_S)

        feed.push(_snapshot(1, BIDS, ASKS))
        assert book.in_sync
        feed.push(_update(1, 2, [["100.1", "5", "0", "1"]], 12345))  # wrong checksum
        assert resynced.wait(REAL_WAIT_S)  # on_resync ran on the book's thread
        assert "checksum" in type(errors[0]).__name__.lower()
        # one resubscribe by the thread (counted before it took the report), one by the reader
        assert book.stats().resubscribes == 2
        # the book error also went to the feed's error handlers
        assert any(type(e) is type(errors[0]) and h is None for e, h in feed.reported)
    finally:
        assert feed.stop()  # suspend joins the book's thread
        assert not any(t.name.startswith("okx-book-") for t in threading.enumerate())
        book.close()
