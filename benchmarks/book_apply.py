"""Order-book apply throughput: okx_sync.OrderBookStore vs ccxt's OrderBook, side by side.

Replays the real OKX ``books`` stream recorded by cryptofeed
(``../shared/realdata/cryptofeed/OKX.ws.1.0``: 290 pushes, 3 instruments, one
store per instrument), decoded once up front, through:

- okx_sync: ``OrderBookStore("books", inst_id).apply(message)``;
- ccxt: ``ccxt.async_support.base.ws.order_book.OrderBook`` driven the way
  ccxt.pro's okx ``handle_order_book`` drives it (new book per snapshot, one
  ``store(float(px), float(sz))`` per level, the ``prevSeqId``/nonce check,
  ``int(ts)``), without verification. ``float()`` stands in for ccxt's slower
  ``safe_float`` so the baseline is its data structure at its best.

Two modes:
  (a) recorded: every push carries its real checksum; okx_sync verifies all of them.
  (b) 2026: the same pushes with ``checksum: 0`` (as OKX sends since June 2026)
      and a synthetic ``seqId``/``prevSeqId`` chain per instrument, so okx_sync
      runs its sequence check (and ccxt its nonce check) on every update.

Before timing, each mode's warm-up replay is checked (``check_verified``): in (a)
every push was verified, in (b) every push was unverified, each store ended on its
instrument's last seqId and a broken prevSeqId chain is refused; a failed check
raises instead of reporting a rate.

Targets (issue 23), okx_sync's rate over ccxt's in one run: (a) >= 1.3x; (b) >= 2.0x.

Usage: python benchmarks/book_apply.py [--rounds 7] [--replays 20] [--data PATH]
Prints machine info, per-round medians in messages/s and the ratios.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from okx_sync import OrderBookStore  # noqa: E402
from okx_sync.errors import OrderBookSequenceError  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "realdata" / "cryptofeed" / "OKX.ws.1.0"
#: okx_sync / ccxt apply rate each mode must reach (issue 23): (a) every checksum
#: verified, (b) checksum 0 with the seqId chain.
TARGETS = {"checksum": 1.3, "sequence": 2.0}


def load_books(path: Path) -> list[dict[str, Any]]:
    """Decoded ``books`` pushes from a cryptofeed recording (``<t>: {json}`` = received)."""
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            stamp, sep, body = line.partition(": ")
            if not sep or " " in stamp:  # connect/sent lines carry "url <- t"
                continue
            msg = json.loads(body)
            if msg.get("arg", {}).get("channel") == "books" and "data" in msg:
                out.append(msg)
    return out


def as_2026(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same pushes with checksum 0 and a seqId/prevSeqId chain per instrument."""
    out = copy.deepcopy(messages)
    last: dict[str, int] = {}
    for n, msg in enumerate(out, start=1):
        inst = msg["arg"]["instId"]
        item = msg["data"][0]
        item["checksum"] = 0
        seq = 1000 + 3 * n
        item["prevSeqId"] = -1 if msg["action"] == "snapshot" else last[inst]
        item["seqId"] = last[inst] = seq
    return out


def new_store(inst_id: str) -> OrderBookStore:
    """The store the benchmark times (default checks: sequence and checksum)."""
    return OrderBookStore("books", inst_id)


def expected_checks(messages: list[dict[str, Any]]) -> str:
    """What OrderBookStore must verify on this stream: ``"checksum"`` when every push
    carries a non-zero checksum (mode a), ``"sequence"`` when none does and every push
    carries ``seqId``/``prevSeqId`` (mode b). Raises ``ValueError`` for a mixed stream."""
    items = [item for msg in messages for item in msg["data"]]
    if items and all(item.get("checksum") for item in items):
        return "checksum"
    if items and not any(item.get("checksum") for item in items):
        if all("seqId" in item and "prevSeqId" in item for item in items):
            return "sequence"
    raise ValueError("stream is neither fully checksummed nor a checksum-0 seqId chain")


def _fail(text: str) -> None:
    raise RuntimeError(f"okx_sync runner: {text}")


def check_verified(
    messages: list[dict[str, Any]], stores: dict[str, OrderBookStore], checks: str
) -> None:
    """Raise ``RuntimeError`` unless the replay did what the mode claims.

    ``checksum``: every push applied was verified (a silently skipped check would
    otherwise report a speed it did not earn). ``sequence``: every push was
    unverified (checksum 0), each store ended on its instrument's last ``seqId``,
    and a store built the same way refuses a broken ``prevSeqId`` chain.
    """
    for inst, store in stores.items():
        stats = store.stats()
        if not stats.applied or stats.errors.total:
            _fail(f"{inst}: errors or nothing applied: {stats.to_dict()}")
        if checks == "checksum" and stats.verified != stats.applied:
            _fail(f"{inst}: {stats.verified} of {stats.applied} pushes verified")
        if checks == "sequence" and stats.unverified != stats.applied:
            _fail(f"{inst}: {stats.unverified} of {stats.applied} pushes unverified")
    if checks != "sequence":
        return
    last = {m["arg"]["instId"]: m["data"][-1]["seqId"] for m in messages}
    for inst, store in stores.items():
        if store.seq_id != last[inst]:
            _fail(f"{inst}: ended on seqId {store.seq_id}, the stream on {last[inst]}")
    first = messages[0]["arg"]["instId"]
    snap = next(m for m in messages if m["arg"]["instId"] == first)
    update = copy.deepcopy(
        next(m for m in messages if m["arg"]["instId"] == first and m["action"] == "update")
    )
    update["data"][0]["prevSeqId"] += 1
    probe = new_store(first)
    probe.apply(snap)
    try:
        probe.apply(update)
    except OrderBookSequenceError:
        return
    _fail("a broken prevSeqId chain was accepted: the sequence is not checked")


def okx_sync_runner(messages: list[dict[str, Any]]) -> Callable[[], None]:
    inst_ids = sorted({m["arg"]["instId"] for m in messages})
    checks = expected_checks(messages)
    last: dict[str, OrderBookStore] = {}

    def run() -> None:
        # Fresh stores every replay: nothing parsed in one pass helps the next,
        # as in one live pass over the stream.
        stores = {inst: new_store(inst) for inst in inst_ids}
        for msg in messages:
            stores[msg["arg"]["instId"]].apply(msg)
        last.update(stores)

    run()  # warm up and prove the stream applies with every check the mode claims
    check_verified(messages, last, checks)
    return run


def ccxt_runner(messages: list[dict[str, Any]]) -> Callable[[], None]:
    from ccxt.async_support.base.ws.order_book import OrderBook

    books: dict[str, Any] = {}

    def store_deltas(side: Any, deltas: list[list[str]]) -> None:
        for delta in deltas:
            side.store(float(delta[0]), float(delta[1]))

    def run() -> None:
        for msg in messages:
            inst = msg["arg"]["instId"]
            for item in msg["data"]:
                if msg["action"] == "snapshot":
                    book = books[inst] = OrderBook({}, 400)
                else:
                    book = books[inst]
                store_deltas(book["asks"], item["asks"])
                store_deltas(book["bids"], item["bids"])
                prev = item.get("prevSeqId")
                if prev is not None and prev != -1 and book["nonce"] != prev:
                    raise RuntimeError("ccxt baseline: invalid nonce")
                book["nonce"] = item.get("seqId")
                book["timestamp"] = int(item["ts"])

    run()
    return run


def measure(run: Callable[[], None], n_messages: int, replays: int) -> float:
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(replays):
        run()
    return n_messages * replays / (time.perf_counter() - t0)


def compare(
    messages: list[dict[str, Any]], rounds: int, replays: int, with_ccxt: bool = True
) -> tuple[dict[str, list[float]], str | None]:
    """Messages/s per round for okx_sync (and ccxt when ``with_ccxt``), rounds interleaved
    so both see the same machine load; plus why ccxt was skipped (None when it ran)."""
    runners = {"okx_sync": okx_sync_runner(messages)}
    reason = None
    if with_ccxt:
        try:
            runners["ccxt"] = ccxt_runner(messages)
        except ImportError as exc:
            reason = f"ccxt OrderBook not importable ({exc})"
    rates: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for round_ in range(rounds):
        # who goes first alternates: neither always runs on the cache the other left
        for name in names if round_ % 2 == 0 else names[::-1]:
            rates[name].append(measure(runners[name], len(messages), replays))
    return rates, reason


def paired_ratio(values: Sequence[float], base: Sequence[float]) -> float:
    """Median over rounds of ``values[i] / base[i]`` (the two measured in the same round).

    Each round measures both back to back, so a ratio of one round compares them
    under the same machine load; the median of those is steadier on a shared
    machine than a ratio of the two medians (which may come from different moments).
    """
    return statistics.median(a / b for a, b in zip(values, base, strict=True))


def machine_info() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "load ?"
    return (
        f"machine: {platform.system()} {platform.machine()}, {cpu}, "
        f"{os.cpu_count()} cpus, {load}\n"
        f"python: {platform.python_implementation()} {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--replays", type=int, default=6, help="stream replays per round")
    args = parser.parse_args(argv)

    print(machine_info())
    if not args.data.exists():
        print(f"skipped: recording not found: {args.data}")
        return 0
    recorded = load_books(args.data)
    n_levels = sum(len(m["data"][0]["bids"]) + len(m["data"][0]["asks"]) for m in recorded)
    print(f"stream: {args.data.name}: {len(recorded)} books pushes, {n_levels} levels")
    try:
        import ccxt

        ccxt_reason = None
        print(f"ccxt: {ccxt.__version__}")
    except ImportError as exc:
        ccxt_reason = f"ccxt not importable ({exc}); pip install '.[bench]'"
    print(f"rounds: {args.rounds} x {args.replays} replays, median messages/s\n")

    ok = True
    for label, messages, target, checks in (
        ("(a) recorded checksums, all verified", recorded, TARGETS["checksum"], "checksum"),
        (
            "(b) checksum 0 + seqId chain (2026 feed)",
            as_2026(recorded),
            TARGETS["sequence"],
            "sequence",
        ),
    ):
        if expected_checks(messages) != checks:  # the label must say what is measured
            raise RuntimeError(f"{label}: the stream is not a {checks}-checked stream")
        rates, reason = compare(messages, args.rounds, args.replays, ccxt_reason is None)
        ccxt_reason = ccxt_reason or reason
        med = {name: statistics.median(values) for name, values in rates.items()}
        print(label)
        for name, value in med.items():
            spread = f"min {min(rates[name]):,.0f} max {max(rates[name]):,.0f}"
            print(f"  {name:9s} {value:12,.0f} msg/s   ({spread})")
        if "ccxt" in med:
            ratio = paired_ratio(rates["okx_sync"], rates["ccxt"])
            verdict = "meets" if ratio >= target else "MISSES"
            ok = ok and ratio >= target
            print(
                f"  okx_sync/ccxt (median of per-round ratios) = {ratio:.2f}x (target >= {target}x: {verdict})\n"
            )
        else:
            print(f"  ccxt skipped: {ccxt_reason}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
