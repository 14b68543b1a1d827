"""``okx-sync book INST_ID``: a live top-of-book view in the terminal, refreshing in place.

A managed ``books`` order book (verified by seqId and checksum, resynced by
itself) on a public WebSocket connection; every ``--interval`` seconds the
view is redrawn: the best ``--depth`` asks and bids, spread and mid, seqId,
sync state, resyncs and the update rate. On a terminal the frame is redrawn
in place (ANSI); when stdout is not a terminal each frame is printed as plain
lines followed by a blank line. ``--json`` prints one JSON object per frame.

Where: the embedded simulator by default; ``--live`` reads OKX's public
stream (``OKX_DEMO=1``: the demo-trading host; ``OKX_WS_PUBLIC_URL`` overrides
it, see ``Client.from_env``) — public data, no key needed.
Stops after ``--duration`` seconds or ``--count`` frames, or on Ctrl-C.
Exit code 0; 1 when the book never got in sync (at once, with OKX's code, when
OKX rejects the subscription: 60018 for an unknown instrument); 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from ..errors import WSSubscribeError
from ..ws.config import WSConfig
from .console import Screen, cli_logging, common_options

__all__ = ["main", "build_parser", "render"]

READY_S = 15.0


def build_parser() -> argparse.ArgumentParser:
    """The ``okx-sync book`` argument parser."""
    p = argparse.ArgumentParser(
        prog="okx-sync book",
        description="Live top-of-book view of one instrument (managed, self-resyncing book).",
        parents=[common_options(json_help="one JSON object per frame")],
    )
    p.add_argument("inst_id", metavar="INST_ID", help="e.g. BTC-USDT")
    p.add_argument("--depth", type=int, default=5, help="levels per side (default 5)")
    p.add_argument("--interval", type=float, default=0.25, help="refresh period, s (0.25)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--count", type=int, default=None, help="stop after this many frames")
    p.add_argument("--live", action="store_true", help="OKX's public stream (OKX_DEMO=1: demo)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    return p


def _frame(book: Any, depth: int, updates: int, elapsed: float) -> dict[str, Any]:
    snap = book.snapshot(depth)  # an OrderBook: empty sides, no seq_id while out of sync
    in_sync = book.in_sync and (snap.seq_id is not None or bool(snap.bids or snap.asks))
    bid, ask = snap.best_bid, snap.best_ask
    spread = mid = None
    if bid is not None and ask is not None:
        spread, mid = ask.px - bid.px, (ask.px + bid.px) / 2
    return {
        "inst_id": book.inst_id,
        "in_sync": in_sync,
        "seq_id": snap.seq_id if in_sync else None,
        "ts": snap.ts,
        "resyncs": book.resyncs,
        "updates": updates,
        "updates_per_s": round(updates / elapsed, 1) if elapsed >= 0.5 else None,
        # the exact strings OKX sent (no re-formatting of a price)
        "bids": [lvl[:2] for lvl in snap.raw.get("bids", [])],
        "asks": [lvl[:2] for lvl in snap.raw.get("asks", [])],
        "spread": None if spread is None else str(spread),
        "mid": None if mid is None else format(mid.normalize(), "f"),
    }


def render(frame: dict[str, Any], depth: int) -> list[str]:
    """The lines of one frame: header, asks (best last), spread line, bids (best first)."""
    state = "in sync" if frame["in_sync"] else "RESYNCING"
    lines = [
        f"{frame['inst_id']}  {state}  seqId {frame['seq_id']}  resyncs {frame['resyncs']}  "
        f"{'-' if frame['updates_per_s'] is None else frame['updates_per_s']} updates/s",
        f"{'':>4} {'price':>14} {'size':>14}",
    ]
    asks = frame["asks"][:depth]
    for px, sz in reversed(asks):
        lines.append(f"{'ask':>4} {px:>14} {sz:>14}")
    lines.append(
        f"{'':>4} {'spread ' + (frame['spread'] or '-'):>14} {'mid ' + (frame['mid'] or '-'):>14}"
    )
    for px, sz in frame["bids"][:depth]:
        lines.append(f"{'bid':>4} {px:>14} {sz:>14}")
    return lines


def _view(book: Any, args: argparse.Namespace, out: IO[str]) -> int:
    updates = 0
    lock = threading.Lock()
    changed = threading.Event()

    def on_update(_book: Any) -> None:
        nonlocal updates
        with lock:
            updates += 1
        changed.set()

    book.on_update(on_update)
    try:
        ready = book.wait_ready(READY_S)
    except WSSubscribeError as exc:  # 60018 unknown instrument...: retrying cannot help
        print(
            f"okx-sync book: OKX rejected the {book.channel} subscription of {args.inst_id}: "
            f"{exc.code} {exc.msg}",
            file=sys.stderr,
        )
        return 1
    if not ready:
        print(
            f"okx-sync book: {args.inst_id} did not get in sync in {READY_S:g} s", file=sys.stderr
        )
        return 1
    screen = Screen(out)
    started = time.monotonic()
    with lock:
        updates = 0  # count from the first frame on
    frames = 0
    try:
        while True:
            now = time.monotonic()
            with lock:
                count = updates
            frame = _frame(book, args.depth, count, now - started)
            if args.json:
                out.write(json.dumps(frame) + "\n")
                out.flush()
            else:
                screen.draw(render(frame, args.depth))
            frames += 1
            if args.count is not None and frames >= args.count:
                break
            if args.duration is not None and now - started >= args.duration:
                break
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``okx-sync book``; see the module docstring for the exit codes."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    for label, value in (("--depth", args.depth), ("--interval", args.interval)):
        if value <= 0:
            print(f"okx-sync book: {label} must be > 0", file=sys.stderr)
            return 2
    if args.count is not None and args.count < 1:
        print("okx-sync book: --count must be >= 1", file=sys.stderr)
        return 2
    from ..client import Client
    from ..errors import OkxError

    with cli_logging(args.verbose):
        sim = None
        try:
            if args.live:
                try:
                    client = Client.from_env()  # OKX_DEMO=1: the demo-trading hosts
                except OkxError as exc:
                    print(f"okx-sync book: {exc}", file=sys.stderr)
                    return 2
            else:
                from ..sim import Simulator
                from ..testing import sim_client

                sim = Simulator(seed=args.seed)
                if args.inst_id not in sim.exchange.specs:
                    print(
                        "okx-sync book: the simulator lists "
                        f"{', '.join(sorted(sim.exchange.specs))}",
                        file=sys.stderr,
                    )
                    return 2
                client = sim_client(sim)
            with client, client.ws_public(config=WSConfig(name="book-view")) as ws:
                book = ws.order_book(args.inst_id)
                try:
                    return _view(book, args, sys.stdout)
                finally:
                    book.close()
        finally:
            if sim is not None:
                sim.close()
