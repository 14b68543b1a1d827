"""OrderBookStore under concurrency: one thread applies the real stream, four threads read."""

from __future__ import annotations

import threading
from decimal import Decimal

from test_book_realdata import cryptofeed_books

from okx_sync.book import OrderBookStore
from okx_sync.checksum import book_checksum
from okx_sync.models import OrderBook

LOOPS = 15
READERS = 4


def check_consistent(snap: OrderBook, states: set[int]) -> None:
    bids = [lvl.px for lvl in snap.bids]
    asks = [lvl.px for lvl in snap.asks]
    assert bids == [Decimal(lvl[0]) for lvl in snap.raw["bids"]]
    assert all(a > b for a, b in zip(bids, bids[1:], strict=False)), "bids not strictly descending"
    assert all(a < b for a, b in zip(asks, asks[1:], strict=False)), "asks not strictly ascending"
    assert bids[0] < asks[0], "crossed book"
    # a reader sees the book exactly as it was after some push, never half-merged
    assert book_checksum(snap.raw["bids"], snap.raw["asks"]) in states


def test_readers_see_consistent_books_while_the_stream_applies() -> None:
    from conftest import realdata_path

    frames = cryptofeed_books(realdata_path("cryptofeed", "OKX.ws.1.0"))["BTC-USDT"]
    states = {frame["data"][0]["checksum"] for frame in frames}  # each verified on apply
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(frames[0])
    done = threading.Event()
    failures: list[BaseException] = []
    reads = [0] * READERS

    def writer() -> None:
        try:
            for _ in range(LOOPS):
                for frame in frames:
                    store.apply(frame)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            done.set()

    def reader(n: int) -> None:
        try:
            while not done.is_set() or reads[n] == 0:
                check_consistent(store.snapshot(), states)
                check_consistent(store.snapshot(depth=25), states)
                # two calls may straddle a push: each alone must be a real level
                assert store.best_bid() is not None and store.best_ask() is not None
                reads[n] += 1
        except BaseException as exc:
            failures.append(exc)
            done.set()

    threads = [threading.Thread(target=writer, name="okx-test-book-writer")]
    threads += [
        threading.Thread(target=reader, args=(n,), name=f"okx-test-book-reader-{n}")
        for n in range(READERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures
    assert all(reads), reads
    stats = store.stats()
    assert stats.verified == 1 + LOOPS * len(frames)
    assert not stats.errors.total
