"""How long readers of an OrderBookStore wait while one huge push is applied.

A store gets a 400-level snapshot, then one ``books`` update with ``--levels``
new bid levels (default 100,000), priced below the best bid and spread between
the stored ones, so every level is an insert somewhere in the stored list. Meanwhile
one reader thread calls ``store.best_bid()`` in a loop and records how long each
call took. Reported per run: the time ``apply`` took, the reader's longest wait
(the lock hold, plus at most one GIL switch interval, 5 ms by default), and how
many reads completed during the apply. Then the same with a ``--levels``-level
snapshot (built from scratch).

Each run then checks the store: every new level was inserted, bids best first.

Usage: python benchmarks/book_lock.py [--levels 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from okx_sync import OrderBookStore  # noqa: E402

INST = "BENCH-USDT"


def push(action: str, bids: list[list[str]], asks: list[list[str]], prev: int, seq: int) -> Any:
    """A ``books`` push with a seqId chain and no checksum (as OKX sends since 2026-06)."""
    item = {"bids": bids, "asks": asks, "ts": "1700000000000", "checksum": 0}
    item.update(prevSeqId=prev, seqId=seq)
    return {"arg": {"channel": "books", "instId": INST}, "action": action, "data": [item]}


def level(px: float, decimals: int = 2) -> list[str]:
    """A wire level at ``px``, size 1, one order."""
    return [f"{px:.{decimals}f}", "1", "0", "1"]


def snapshot_push(n: int) -> Any:
    """``n`` bids from 50000 down in steps of 0.25, ``n`` asks from 50001 up."""
    bids = [level(50000.0 - i / 4) for i in range(n)]
    asks = [level(50001.0 + i / 4) for i in range(n)]
    return push("snapshot", bids, asks, -1, 1)


def update_push(levels: int) -> Any:
    """About ``levels`` new bids spread between the 400 stored ones (none equal to one)."""
    step = 100.0 / (levels + 1)
    prices = (50000.0 - (i + 1) * step for i in range(levels))
    bids = [level(px, 6) for px in prices if (px * 4) % 1]  # skip the stored quarters
    return push("update", bids, [], 1, 2)


def timed_apply(store: OrderBookStore, message: Any) -> tuple[float, float, int]:
    """Apply ``message`` while a reader loops: (apply s, reader's longest wait s, reads)."""
    started = threading.Event()
    done = threading.Event()
    waits: list[float] = []

    def reader() -> None:
        clock = time.perf_counter
        while not done.is_set():
            t0 = clock()
            store.best_bid()
            waits.append(clock() - t0)
            started.set()

    thread = threading.Thread(target=reader, name="bench-book-reader", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the reader did not start")
    waits.clear()
    t0 = time.perf_counter()
    store.apply(message)
    took = time.perf_counter() - t0
    done.set()
    thread.join(10)
    return took, max(waits, default=0.0), len(waits)


def run_update(levels: int) -> tuple[float, float, int]:
    """One timed huge update on a fresh 400-level book."""
    store = OrderBookStore("books", INST)
    store.apply(snapshot_push(400))
    update = update_push(levels)
    result = timed_apply(store, update)
    stats = store.stats()
    if stats.bids != 400 + len(update["data"][0]["bids"]) or not store.ready or stats.errors.total:
        raise RuntimeError(f"the update was not applied as expected: {stats}")
    bids = [lvl.px for lvl in store.snapshot().bids]
    if bids != sorted(bids, reverse=True):
        raise RuntimeError("bids are not best first after the update")
    return result


def run_snapshot(levels: int) -> tuple[float, float, int]:
    """One timed ``levels``-per-side snapshot on a store holding a 400-level book."""
    store = OrderBookStore("books", INST)
    store.apply(snapshot_push(400))
    result = timed_apply(store, snapshot_push(levels))
    if store.stats().bids != levels:
        raise RuntimeError("the snapshot was not applied")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, switch interval {sys.getswitchinterval() * 1e3:g} ms")
    for label, fn in (
        (f"one update of {args.levels:,} new bid levels into a 400-level book", run_update),
        (f"one snapshot of {args.levels:,} levels a side", run_snapshot),
    ):
        rows = [fn(args.levels) for _ in range(args.runs)]
        print(label)
        for took, wait, reads in rows:
            print(
                f"  apply {took * 1e3:9.1f} ms   reader max wait {wait * 1e3:8.1f} ms   reads {reads}"
            )
        print(
            f"  median: apply {statistics.median(r[0] for r in rows) * 1e3:.1f} ms, "
            f"reader max wait {statistics.median(r[1] for r in rows) * 1e3:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
