"""The demo tour (``okx-sync demo``, :mod:`okx_sync.cli.demo`): the main pieces end to end.

:func:`run_tour` takes one client (the CLI points it at the embedded
simulator on 127.0.0.1) and shows the main pieces working end to end:

1. REST — server time and clock offset, the instrument list, a ticker, the
   order book, the account balance;
2. WebSocket market data — a ``tickers`` stream and a managed ``books`` order
   book (verified by seqId and checksum) on a public connection;
3. orders — a private connection subscribed to ``orders``; a resting limit
   order is placed over REST, its ``live`` update arrives on the stream; it
   is cancelled and the ``canceled`` update arrives;
4. health — ``client.health()`` and a few REST / gate figures.

Each step's line goes to the ``say`` callback as it happens (the CLI prints
it); the :class:`TourResult` holds what happened.

Thread safety: one tour per client at a time; it runs on the calling thread
(the WS handlers it registers run on the WS threads and only signal it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

from ..ws.config import WSConfig
from .ports import DemoClient

__all__ = ["run_tour", "TourResult", "INST_ID"]

INST_ID = "BTC-USDT"
WAIT_S = 10.0


class _OrderUpdates:
    """``orders`` pushes by ordId with their arrival times (thread-safe)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.seen: dict[str, list[tuple[str, float]]] = {}

    def on_order(self, order: Any) -> None:
        with self.cond:
            self.seen.setdefault(order.ord_id or "", []).append(
                (order.state or "", time.monotonic())
            )
            self.cond.notify_all()

    def wait(self, ord_id: str, state: str, timeout: float) -> float | None:
        """Monotonic arrival time of ``state`` for ``ord_id``, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for got, at in self.seen.get(ord_id, ()):
                    if got == state:
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


@attrs.frozen
class TourResult:
    """What the tour did: ``data`` (JSON-safe: ``inst_id``, ``rest``, ``ws``, ``order``,
    ``health``, ``rest_stats``, ``duration_s``) and the ``lines`` it said, in order.
    Thread safety: immutable (``data`` is not to be mutated)."""

    data: dict[str, Any]
    lines: tuple[str, ...]


def run_tour(
    client: DemoClient, inst_id: str = INST_ID, say: Callable[[str], None] | None = None
) -> TourResult:
    """Take the tour with ``client`` (REST, a public and a private WS, one resting order
    placed and cancelled on ``inst_id``, a spot instrument); ``say`` gets each line as
    it happens. Raises what the client raises when a step fails (``RuntimeError`` when a
    WS update does not arrive within 10 s); closes the WS clients and books it opened
    either way, never ``client`` (the caller's)."""
    from .drills.base import passive_limit
    from .health import format_health

    lines: list[str] = []

    def tell(text: str) -> None:
        lines.append(text)
        if say is not None:
            say(text)

    out: dict[str, Any] = {"inst_id": inst_id}
    started = time.monotonic()
    owned: list[Any] = []
    try:
        tell("REST")
        offset = client.sync_time()
        server = client.public.get_system_time()
        server_iso = datetime.fromtimestamp(server.ts / 1000, UTC).isoformat(
            timespec="milliseconds"
        )
        tell(f"  server time       {server_iso} (clock offset {offset:+d} ms)")
        spot = client.instruments("SPOT")
        swaps = client.instruments("SWAP")
        tell(
            f"  instruments       {len(spot)} SPOT, {len(swaps)} SWAP: {', '.join(str(i.inst_id) for i in spot)}"
        )
        ticker = client.market.get_ticker(inst_id=inst_id)
        tell(f"  ticker {inst_id:<10} last {ticker.last}  bid {ticker.bid_px}  ask {ticker.ask_px}")
        book = client.market.get_order_book(inst_id=inst_id, sz=5)
        bid, ask = book.best_bid, book.best_ask
        tell(
            f"  order book        {len(book.bids)}+{len(book.asks)} levels, seqId {book.seq_id}: "
            f"{bid.sz if bid else '-'} @ {bid.px if bid else '-'} / "
            f"{ask.sz if ask else '-'} @ {ask.px if ask else '-'}"
        )
        balance = client.account.get_balance()
        held = {d.ccy: str(d.eq) for d in balance.details if d.ccy}
        tell(f"  balance           {', '.join(f'{c} {v}' for c, v in held.items())}")
        out["rest"] = {
            "server_time": server.ts,
            "clock_offset_ms": offset,
            "instruments": {"SPOT": len(spot), "SWAP": len(swaps)},
            "ticker": {
                "last": str(ticker.last),
                "bid": str(ticker.bid_px),
                "ask": str(ticker.ask_px),
            },
            "book_seq_id": book.seq_id,
            "balance": held,
        }

        tell("WebSocket market data")
        public = client.ws_public(config=WSConfig(name="demo-public"))
        owned.append(public)
        tickers: list[Any] = []
        got_tickers = threading.Event()

        def on_ticker(t: Any) -> None:
            tickers.append(t)
            if len(tickers) >= 3:
                got_tickers.set()

        public.on("tickers", on_ticker)
        public.start()
        t0 = time.monotonic()
        public.subscribe_and_wait({"channel": "tickers", "instId": inst_id})
        managed = public.order_book(inst_id)
        owned.append(managed)
        ready = managed.wait_ready(WAIT_S)
        got_tickers.wait(WAIT_S)
        last = tickers[-1].last if tickers else None
        tell(
            f"  tickers {inst_id:<9} {len(tickers)} pushes in {time.monotonic() - t0:.2f} s, last {last}"
        )
        mb, ma = managed.best_bid(), managed.best_ask()
        tell(
            f"  books {inst_id:<11} managed book {'in sync' if ready else 'NOT in sync'} at seqId "
            f"{managed.seq_id} (seqId chain and CRC32 verified): "
            f"{mb.sz if mb else '-'} @ {mb.px if mb else '-'} / {ma.sz if ma else '-'} @ {ma.px if ma else '-'}"
        )
        if not ready or not tickers:
            raise RuntimeError("the WebSocket market data did not arrive in time")
        book_stats = managed.stats()
        out["ws"] = {
            "ticker_pushes": len(tickers),
            "book_in_sync": ready,
            "book_seq_id": managed.seq_id,
            "book_stats": {"resyncs": book_stats.resyncs, "in_sync": book_stats.in_sync},
        }

        tell("Orders (REST entry, private WS updates)")
        updates = _OrderUpdates()
        private = client.ws_private(config=WSConfig(name="demo-private"))
        owned.append(private)
        private.on("orders", updates.on_order)
        private.start()
        private.subscribe_and_wait({"channel": "orders", "instType": "SPOT"})
        tell("  private WS        logged in, subscribed to orders (SPOT)")
        params = passive_limit(client, inst_id)
        sent = time.monotonic()
        ack = client.trade.place_order(**params)
        answered = time.monotonic()
        tell(
            f"  placed            {params['side']} {params['sz']} {inst_id} @ {params['px']} limit "
            f"-> ordId {ack.ord_id} (REST {_ms(answered - sent)} ms)"
        )
        live_at = updates.wait(ack.ord_id or "", "live", WAIT_S)
        if live_at is None:
            raise RuntimeError("the order's live update did not arrive")
        tell(f"  orders push       live, {_ms(live_at - sent)} ms after sending")
        sent = time.monotonic()
        client.trade.cancel_order(inst_id=inst_id, ord_id=ack.ord_id)
        cancel_answered = time.monotonic()
        gone_at = updates.wait(ack.ord_id or "", "canceled", WAIT_S)
        if gone_at is None:
            raise RuntimeError("the order's canceled update did not arrive")
        tell(
            f"  cancelled         REST {_ms(cancel_answered - sent)} ms; orders push canceled, "
            f"{_ms(gone_at - sent)} ms after sending"
        )
        out["order"] = {
            "ord_id": ack.ord_id,
            "cl_ord_id": ack.cl_ord_id,
            "px": str(params["px"]),
            "sz": str(params["sz"]),
            "states": [s for s, _ in updates.seen.get(ack.ord_id or "", [])],
        }

        tell("Health")
        health = client.health()
        for line in format_health(health).splitlines():
            tell(f"  {line}")
        rest = client.stats()
        gate = client.gate_stats()
        tell(
            f"  REST              {rest.requests} calls, {rest.failures} failures, "
            f"p50 {rest.latency_s.p50 * 1000:.1f} ms; gate admitted {gate.admitted}, "
            f"waited {gate.total_wait_s:.3f} s in all"
        )
        out["health"] = health.to_dict()
        out["rest_stats"] = {
            "requests": rest.requests,
            "successes": rest.successes,
            "failures": rest.failures,
            "retries": rest.retries,
        }
        out["duration_s"] = round(time.monotonic() - started, 3)
        return TourResult(data=out, lines=tuple(lines))
    finally:
        for resource in reversed(owned):
            try:
                resource.close()
            except Exception:  # best effort: report the tour's own error, not this one
                pass
