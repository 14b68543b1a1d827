"""Drill ``handler_backlog`` (runbook §4): a stuck handler; bounded queue; policies as configured.

A ``books`` handler in a worker pool (``queue_size=QUEUE``) is stuck until the
drill releases it while the stream keeps coming (the simulator floods the
book; live, the market does). An inline raw handler counts every ``books``
push that arrived, independently of the typed path. For each overflow policy:

- ``block`` — the queue fills to its capacity and the reader waits: nothing is
  dropped, the connection survives (heartbeat with a blocked reader, no
  reconnect), and after the release the seqId chain is unbroken — every push
  was delivered in order (on the simulator: up to the exchange's published seqId).
- ``drop`` — the queue never exceeds its capacity, pushes beyond it are
  dropped and counted; delivered + dropped = received; the connection survives;
  every drop reaches ``on_error`` in a ``WSQueueFullError`` (one per episode).
- ``disconnect`` — a full queue makes the client give up the connection
  (counted as an overflow disconnect; while the handler stays stuck every new
  connection overflows at once and the client keeps retrying with backoff);
  once the handler recovers, the client reconnects, resubscribes, and a
  fresh snapshot restarts the stream.

Live (``--live``): the same on OKX's demo public ``books`` stream (slower: the
market sets the pace).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ...errors import WSQueueFullError
from ...ws.config import WSConfig
from ...ws.dispatch import DispatchConfig, Overflow
from ...ws.policies import HeartbeatPolicy
from ..ports import DrillClient
from .base import Drill, DrillRun

__all__ = ["DRILL"]

INST_ID = "BTC-USDT"
QUEUE = 8
FLOOD = 200
HOLD_S = 1.0


class _Probe:
    """The stuck handler and the independent raw counter (thread-safe)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.delivered = 0
        self.snapshot_times: list[float] = []
        self.last_seq: int | None = None
        self.chain_breaks: list[str] = []
        self.received = 0

    def typed(self, book: Any) -> None:
        self.release.wait(30.0)
        with self.lock:
            self.delivered += 1
            if book.is_snapshot:
                self.snapshot_times.append(time.monotonic())
                self.last_seq = book.seq_id
                return
            if self.last_seq is not None and book.prev_seq_id != self.last_seq:
                self.chain_breaks.append(f"prevSeqId {book.prev_seq_id} != {self.last_seq}")
            self.last_seq = book.seq_id

    def raw(self, msg: Any) -> None:
        if isinstance(msg, dict) and msg.get("arg", {}).get("channel") == "books":
            with self.lock:
                self.received += len(msg.get("data") or ())


def _pump(run: DrillRun) -> threading.Thread | None:
    """Keep the stream busy: a simulator flood on a helper thread (live: the market)."""
    if run.sim is None:
        return None
    sim = run.sim
    t = threading.Thread(
        target=sim.flood, args=(INST_ID, FLOOD, ("books",)), name="drill-flood", daemon=True
    )
    t.start()
    return t


def _start(run: DrillRun, client: DrillClient, overflow: str) -> tuple[Any, _Probe]:
    probe = _Probe()
    ws = run.ws(
        "public",
        client,
        config=WSConfig(
            name=f"backlog-{overflow}",
            heartbeat=HeartbeatPolicy(ping_interval_s=0.3, pong_timeout_s=0.5),
            typed_dispatch=DispatchConfig(queue_size=QUEUE, overflow=Overflow(overflow)),
        ),
    )
    ws.on("books", probe.typed)
    ws.on_raw(probe.raw)
    ws.start()
    ws.subscribe_and_wait({"channel": "books", "instId": INST_ID})
    return ws, probe


def _finish(run: DrillRun, ws: Any, probe: _Probe, flood: threading.Thread | None) -> Any:
    probe.release.set()
    if flood is not None:
        flood.join(30.0)
    run.wait_until(lambda: ws.stats().typed_queue_len == 0, 10.0)
    return ws.stats()


def _block(run: DrillRun, client: DrillClient, wait_s: float) -> None:
    run.step(f"block: queue {QUEUE}, handler stuck {HOLD_S:g} s under a flood")
    ws, probe = _start(run, client, "block")
    flood = _pump(run)
    full = run.wait_until(lambda: ws.stats().typed_queue_len >= QUEUE, wait_s)
    time.sleep(HOLD_S)  # several heartbeat intervals with the reader blocked
    held = ws.stats()
    st = _finish(run, ws, probe, flood)
    if run.sim is not None:
        target = run.sim.exchange.book(INST_ID).seq_id
        caught_up = run.wait_until(lambda: probe.last_seq == target, 10.0)
    else:
        caught_up = probe.delivered > QUEUE
    run.figure("block_high_water", st.typed_high_water)
    run.figure("block_delivered", probe.delivered)
    run.figure("block_dropped", st.typed_dropped, key=True)
    run.check("block: the queue filled", full, f"queue {held.typed_queue_len}/{QUEUE}")
    run.check(
        "block: bounded at its capacity",
        st.typed_high_water <= QUEUE and st.typed_queue_cap == QUEUE,
        f"high water {st.typed_high_water} <= {QUEUE}",
    )
    run.check(
        "block: the connection survived a blocked reader",
        held.connected and st.connected and st.reconnects == 0,
        f"reconnects {st.reconnects}, connected {st.connected}",
    )
    run.check(
        "block: nothing lost, in order",
        st.typed_dropped == 0 and not probe.chain_breaks and caught_up,
        f"dropped {st.typed_dropped}, chain breaks {len(probe.chain_breaks)}, "
        f"delivered {probe.delivered} up to seqId {probe.last_seq}",
    )
    ws.close()


def _drop(run: DrillRun, client: DrillClient, wait_s: float) -> None:
    run.step(f"drop: queue {QUEUE}, handler stuck under a flood")
    ws, probe = _start(run, client, "drop")
    reports: list[WSQueueFullError] = []
    ws.on_error(lambda e: reports.append(e) if isinstance(e, WSQueueFullError) else None)
    flood = _pump(run)
    dropped = run.wait_until(lambda: ws.stats().typed_dropped >= QUEUE, wait_s)
    if flood is not None:
        flood.join(30.0)  # with drop the reader never waits: the flood ends by itself
    st = _finish(run, ws, probe, None)
    with probe.lock:
        delivered, received = probe.delivered, probe.received
    run.figure("drop_high_water", st.typed_high_water)
    run.figure("drop_dropped", st.typed_dropped, key=True)
    run.figure("drop_delivered", delivered)
    run.figure("drop_received", received)
    run.check("drop: overflow dropped pushes", dropped, f"dropped {st.typed_dropped}")
    run.check(
        "drop: bounded at its capacity",
        st.typed_high_water <= QUEUE,
        f"high water {st.typed_high_water} <= {QUEUE}",
    )
    run.check(
        "drop: every push delivered or counted as dropped",
        delivered + st.typed_dropped == received,
        f"{delivered} delivered + {st.typed_dropped} dropped = {received} received",
    )
    run.check(
        "drop: the connection survived",
        st.connected and st.reconnects == 0,
        f"reconnects {st.reconnects}",
    )
    ws.close()  # reports a drop episode still open
    reported = sum(r.dropped for r in reports)
    run.figure("drop_episodes_reported", len(reports))
    run.check(
        "drop: every drop reported to on_error (WSQueueFullError)",
        bool(reports) and reported == st.typed_dropped,
        f"{len(reports)} episode(s), {reported} reported of {st.typed_dropped} dropped",
    )


def _disconnect(run: DrillRun, client: DrillClient, wait_s: float) -> None:
    run.step(f"disconnect: queue {QUEUE}, handler stuck until the client gives up the connection")
    ws, probe = _start(run, client, "disconnect")
    reconnects: list[float] = []
    ws.on_reconnect(lambda: reconnects.append(time.monotonic()))
    flood = _pump(run)
    overflowed = run.wait_until(lambda: ws.stats().typed_overflow_disconnects >= 1, wait_s)
    _finish(run, ws, probe, flood)  # the handler recovers; the queue drains
    back = run.wait_until(lambda: bool(reconnects) and ws.stats().connected, wait_s)
    if run.sim is not None:
        run.sim.tick(2)  # a few updates after the new snapshot

    def fresh_snapshot() -> bool:
        # The first snapshot is the push the handler was stuck on; any later one came
        # from a resubscription.
        with probe.lock:
            return len(probe.snapshot_times) >= 2

    resumed = run.wait_until(fresh_snapshot, wait_s)
    st = ws.stats()
    run.figure("disconnect_overflow_disconnects", st.typed_overflow_disconnects, key=True)
    run.figure("disconnect_reconnects", st.reconnects)
    run.figure("disconnect_high_water", st.typed_high_water)
    run.check(
        "disconnect: a full queue gives up the connection",
        overflowed and st.typed_overflow_disconnects >= 1,
        f"overflow disconnects {st.typed_overflow_disconnects} ({st.last_error or 'no error'})",
    )
    run.check(
        "disconnect: bounded at its capacity",
        st.typed_high_water <= QUEUE,
        f"high water {st.typed_high_water} <= {QUEUE}",
    )
    run.check(
        "disconnect: reconnected and resubscribed, a fresh snapshot restarts the stream",
        back and resumed and st.connected and st.desired_subscriptions == 1,
        f"reconnects {st.reconnects}, snapshots {len(probe.snapshot_times)}, "
        f"connected {st.connected}",
    )
    ws.close()


def routine(run: DrillRun) -> None:
    """The drill (see the module docstring)."""
    wait_s = 10.0 if run.sim is not None else 30.0
    client = run.client()
    _block(run, client, wait_s)
    _drop(run, client, wait_s)
    _disconnect(run, client, wait_s)


DRILL = Drill(
    name="handler_backlog",
    title="slow handler: bounded queue, overflow policy as configured",
    runbook="§4",
    routine=routine,
    live_safe=True,
    sim_options={"auto_tick": False, "quiet_interval_s": None},
)
