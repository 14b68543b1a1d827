"""WSClient dispatch under load against okx_sync.sim: overflow policies, live switching, ordering.

Every test reads a ``books`` stream, whose prevSeqId/seqId chain proves that nothing
was lost, duplicated or reordered (the simulator's published seqId is the reference).
"""

from __future__ import annotations

import random
import threading
import time
import tracemalloc

import pytest

from okx_sync import WSClient
from okx_sync.sim import Simulator
from okx_sync.testing import wait_until
from okx_sync.testing.ws_servers import unpaced_limiter, ws_threads
from okx_sync.ws.config import WSConfig
from okx_sync.ws.dispatch import DispatchConfig, DispatchMode, Overflow
from okx_sync.ws.policies import HeartbeatPolicy

INSTS = ("BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP", "ETH-USDT-SWAP")


@pytest.fixture
def sim():
    with Simulator(seed=3, auto_tick=False, quiet_interval_s=None) as s:
        yield s
    assert not ws_threads(), ws_threads()


class Chain:
    """Checks one instrument's books chain as it arrives (any thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: dict[str, int] = {}
        self.count: dict[str, int] = {}
        self.errors: list[str] = []

    def add(self, inst: str, prev: int, seq: int) -> None:
        with self.lock:
            last = self.last.get(inst)
            if prev != -1 and last is not None and prev != last:
                self.errors.append(f"{inst}: prev {prev} != last {last}")
            self.last[inst] = seq
            self.count[inst] = self.count.get(inst, 0) + 1

    def caught_up(self, sim, insts=INSTS[:1]) -> bool:
        with self.lock:
            return all(self.last.get(i) == sim.exchange.book(i).seq_id for i in insts)


def books_args(insts):
    return [{"channel": "books", "instId": i} for i in insts]


def test_block_policy_is_lossless_bounded_and_keeps_heartbeat(sim):
    chain = Chain()
    gate = threading.Event()

    def slow(b):
        gate.wait(5)
        chain.add(b.inst_id, b.prev_seq_id, b.seq_id)

    ws = WSClient(
        sim.ws_public_url,
        connect_limiter=unpaced_limiter(),
        config=WSConfig(
            heartbeat=HeartbeatPolicy(ping_interval_s=0.2, pong_timeout_s=0.3),
            typed_dispatch=DispatchConfig(queue_size=8, overflow=Overflow.BLOCK),
        ),
    )
    ws.on("books", slow)
    with ws:
        ws.subscribe_and_wait(books_args(INSTS[:1]))
        flood = threading.Thread(target=sim.flood, args=(INSTS[0], 400))
        flood.start()
        # the handler is stuck: the queue fills, the reader blocks (not dead) for > 0.8 s
        assert wait_until(lambda: ws.stats().typed_queue_len == 8)
        blocked_at = time.time()  # several ping intervals, over 1.5 x ping + pong while blocked:
        assert wait_until(lambda: (ws.stats().last_ping or 0) >= blocked_at + 0.8, timeout_s=10)
        st = ws.stats()
        assert st.typed_queue_len == 8 and st.reconnects == 0 and st.connected
        gate.set()
        flood.join(30)
        assert wait_until(lambda: chain.caught_up(sim), timeout_s=15)
        st = ws.stats()
        assert not chain.errors
        assert st.typed_dropped == 0 and st.reconnects == 0
        assert st.typed_high_water <= 8 and st.typed_queue_cap == 8


def test_close_while_reader_is_blocked(sim):
    stuck = threading.Event()
    ws = WSClient(
        sim.ws_public_url,
        connect_limiter=unpaced_limiter(),
        config=WSConfig(typed_dispatch=DispatchConfig(queue_size=2)),
    )
    ws.on("books", lambda b: stuck.wait(3))
    ws.start()
    ws.subscribe_and_wait(books_args(INSTS[:1]))
    flood = threading.Thread(target=sim.flood, args=(INSTS[0], 50))
    flood.start()
    assert wait_until(lambda: ws.stats().typed_queue_len == 2)
    t0 = time.monotonic()
    ws.close()
    assert time.monotonic() - t0 < 2.5
    stuck.set()  # the handler in flight returns; its worker was told to stop
    assert wait_until(lambda: not ws_threads(), timeout_s=3)
    flood.join(10)


def test_drop_policy_counts_and_memory_stays_flat(sim):
    seen = []

    def slow(b):
        time.sleep(0.002)
        seen.append(b.seq_id)

    ws = WSClient(
        sim.ws_public_url,
        connect_limiter=unpaced_limiter(),
        config=WSConfig(typed_dispatch=DispatchConfig(queue_size=5, overflow=Overflow.DROP)),
    )
    ws.on("books", slow)
    with ws:
        ws.subscribe_and_wait(books_args(INSTS[:1]))
        sim.flood(INSTS[0], 300)
        assert wait_until(lambda: ws.stats().typed_queue_len == 0, timeout_s=15)
        tracemalloc.start()
        try:
            sim.flood(INSTS[0], 300)
            assert wait_until(lambda: ws.stats().typed_queue_len == 0, timeout_s=15)
            base, _ = tracemalloc.get_traced_memory()
            sim.flood(INSTS[0], 900)
            assert wait_until(lambda: ws.stats().typed_queue_len == 0, timeout_s=15)
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        st = ws.stats()
        assert st.typed_dropped > 100
        assert st.typed_high_water <= 5
        assert st.reconnects == 0 and st.connected
        assert after - base < 1_000_000, (base, after)  # 900 more pushes, no growth
        assert seen == sorted(seen)  # what was delivered is still in order


def client_held_bytes() -> int:
    """Bytes allocated (since tracemalloc.start) and still held with okx_sync.ws on the
    stack: what the client holds, not the in-process simulator."""
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, "*/okx_sync/ws/*", all_frames=True)]
    )
    return sum(t.size for t in snap.traces)


def test_block_policy_memory_stays_flat():
    """block, handler stuck, a flood of 2000 pushes: the reader stops reading once the
    pool is full, so the client holds the few queued pushes and no more (the rest waits
    in the socket and the simulator's small send queue)."""
    chain = Chain()
    gate = threading.Event()

    def stuck(b):
        gate.wait(10)
        chain.add(b.inst_id, b.prev_seq_id, b.seq_id)

    with Simulator(seed=3, auto_tick=False, quiet_interval_s=None, ws_queue_size=64) as sim:
        ws = WSClient(
            sim.ws_public_url,
            connect_limiter=unpaced_limiter(),
            config=WSConfig(typed_dispatch=DispatchConfig(queue_size=5, overflow=Overflow.BLOCK)),
        )
        ws.on("books", stuck)
        flood = threading.Thread(target=sim.flood, args=(INSTS[0], 2000))
        with ws:
            ws.subscribe_and_wait(books_args(INSTS[:1]))
            tracemalloc.start(25)
            try:
                flood.start()
                # the reader waits for room (or, were the queue unbounded, the flood ends)
                assert wait_until(
                    lambda: (
                        ws._handlers.typed_path.blocked_since is not None or not flood.is_alive()
                    ),
                    timeout_s=15,
                )
                held = client_held_bytes()
                st = ws.stats()
            finally:
                gate.set()
                tracemalloc.stop()
            flood.join(30)
            assert wait_until(lambda: chain.caught_up(sim), timeout_s=30)
        assert st.typed_queue_len == 5 and st.typed_high_water == 5  # full, never more
        assert held < 200_000, held  # 2000 pushes sent, a handful held
        final = ws.stats()
        assert final.typed_dropped == 0 and final.reconnects == 0 and not chain.errors
        assert chain.count[INSTS[0]] == 2001  # block is lossless: snapshot + every update
    assert not ws_threads(), ws_threads()


def test_disconnect_policy_reconnects_and_resubscribes(sim):
    seen = []
    reconnected = threading.Event()

    def slow(b):
        time.sleep(0.003)
        seen.append(b)

    ws = WSClient(
        sim.ws_public_url,
        connect_limiter=unpaced_limiter(),
        config=WSConfig(typed_dispatch=DispatchConfig(queue_size=5, overflow=Overflow.DISCONNECT)),
    )
    ws.on("books", slow)
    ws.on_reconnect(reconnected.set)
    with ws:
        ws.subscribe_and_wait(books_args(INSTS[:1]))
        flood = threading.Thread(target=sim.flood, args=(INSTS[0], 300))
        flood.start()
        assert reconnected.wait(10)
        flood.join(30)
        st = ws.stats()
        assert st.typed_overflow_disconnects >= 1 and st.typed_dropped >= 1
        assert st.reconnects >= 1 and "overflow=disconnect" in st.last_error
        assert st.typed_high_water <= 5
        # after the reconnect the subscription is back: a fresh snapshot arrives
        n = len(seen)
        sim.tick(3)
        assert wait_until(lambda: ws.stats().connected and len(seen) > n)
        assert any(b.is_snapshot for b in seen[1:])


def test_switching_inline_and_pool_mid_stream_loses_nothing(sim):
    typed = Chain()
    raw = Chain()

    def on_raw(msg):
        if "data" in msg and msg["arg"]["channel"] == "books":  # pushes, not the acks
            item = msg["data"][0]
            raw.add(msg["arg"]["instId"], item["prevSeqId"], item["seqId"])

    ws = WSClient(sim.ws_public_url, connect_limiter=unpaced_limiter())
    ws.on("books", lambda b: typed.add(b.inst_id, b.prev_seq_id, b.seq_id))
    ws.on_raw(on_raw)
    inline = DispatchConfig(mode=DispatchMode.INLINE)
    modes = [
        DispatchConfig(queue_size=64, workers=3),
        inline,
        DispatchConfig(queue_size=16, workers=1),
        DispatchConfig(queue_size=256, workers=2),
        inline,
    ]
    with ws:
        ws.subscribe_and_wait(books_args(INSTS[:2]))
        switches = 0
        while switches <= 10:  # flood rounds until enough switches happened mid-stream
            floods = [threading.Thread(target=sim.flood, args=(i, 1500)) for i in INSTS[:2]]
            for f in floods:
                f.start()
            while any(f.is_alive() for f in floods):
                ws.set_dispatch(typed=modes[switches % 5], raw=modes[(switches + 2) % 5])
                switches += 1
                floods[0].join(0.005)  # pace the switches while the floods run
            for f in floods:
                f.join()
        ws.set_dispatch(
            typed=DispatchConfig(mode=DispatchMode.INLINE),
            raw=DispatchConfig(mode=DispatchMode.INLINE),
        )
        sim.tick(1)
        assert wait_until(
            lambda: typed.caught_up(sim, INSTS[:2]) and raw.caught_up(sim, INSTS[:2]), timeout_s=15
        )
        assert not typed.errors and not raw.errors
        assert typed.count == raw.count
        st = ws.stats()
        assert st.typed_mode == "inline" and st.typed_dropped == 0 and st.raw_dropped == 0
        assert st.reconnects == 0


def test_pool_keeps_per_instrument_order_in_parallel(sim):
    chain = Chain()
    workers = set()
    rng = random.Random(1)

    def handler(b):
        workers.add(threading.current_thread().name)
        if rng.random() < 0.05:
            time.sleep(0.001)
        chain.add(b.inst_id, b.prev_seq_id, b.seq_id)

    ws = WSClient(
        sim.ws_public_url,
        connect_limiter=unpaced_limiter(),
        config=WSConfig(typed_dispatch=DispatchConfig(workers=4, queue_size=128)),
    )
    ws.on("books", handler)
    with ws:
        ws.subscribe_and_wait(books_args(INSTS))
        floods = [threading.Thread(target=sim.flood, args=(i, 400)) for i in INSTS]
        for f in floods:
            f.start()
        for f in floods:
            f.join()
        sim.tick(1)
        assert wait_until(lambda: chain.caught_up(sim, INSTS), timeout_s=15)
    assert not chain.errors
    assert all(chain.count[i] > 400 for i in INSTS)
    assert len(workers) > 1  # instruments really ran on several workers


def test_handler_exception_is_counted_reported_and_thread_goes_on(sim):
    errors = []
    count = [0]

    def flaky(b):
        count[0] += 1
        if count[0] % 3 == 0:
            raise RuntimeError("boom")

    for mode in ("inline", "pool"):
        errors.clear()
        count[0] = 0
        ws = WSClient(
            sim.ws_public_url,
            connect_limiter=unpaced_limiter(),
            config=WSConfig(typed_dispatch=DispatchConfig(mode=DispatchMode(mode))),
        )
        ws.on("books", flaky)
        ws.on_error(errors.append)
        with ws:
            ws.subscribe_and_wait(books_args(INSTS[:1]))
            sim.flood(INSTS[0], 30)
            assert wait_until(lambda: count[0] >= 31, timeout_s=15)
            st = ws.stats()
            assert st.handler_errors == len(errors) >= 10
            assert all(isinstance(e, RuntimeError) for e in errors)
            assert st.connected and st.reconnects == 0


def test_raw_drop_policy_is_bounded_and_counted(sim):
    gate = threading.Event()
    got: list[dict] = []

    def stuck(msg):
        gate.wait(10)
        got.append(msg)

    ws = WSClient(
        sim.ws_public_url,
        connect_limiter=unpaced_limiter(),
        config=WSConfig(raw_dispatch=DispatchConfig(queue_size=2, overflow=Overflow.DROP)),
    )
    ws.on_raw(stuck)
    try:
        with ws:
            ws.subscribe_and_wait(books_args(INSTS[:1]))
            sim.flood(INSTS[0], 100)  # the reader keeps reading: the raw pool drops
            assert wait_until(lambda: ws.stats().raw_dropped > 50)
            st = ws.stats()
            assert st.raw_mode == "pool" and st.raw_queue_cap == 2 and st.raw_queue_len == 2
            assert st.raw_high_water == 2  # full, never more
            assert (st.typed_queue_cap, st.typed_high_water, st.typed_dropped) == (
                10_000,
                0,
                0,
            )  # typed: the default pool, unused
            assert st.reconnects == 0 and st.connected
            gate.set()
            assert wait_until(lambda: ws.stats().raw_queue_len == 0)
            assert len(got) >= 2 and ws.stats().raw_high_water == 2
    finally:
        gate.set()


def test_raw_disconnect_policy_reconnects_and_resubscribes(sim):
    gate = threading.Event()
    snapshots: list[dict] = []
    reconnected = threading.Event()

    def stuck(msg):
        gate.wait(10)
        if msg.get("action") == "snapshot":
            snapshots.append(msg)

    ws = WSClient(
        sim.ws_public_url,
        connect_limiter=unpaced_limiter(),
        config=WSConfig(raw_dispatch=DispatchConfig(queue_size=2, overflow=Overflow.DISCONNECT)),
    )
    ws.on_raw(stuck)
    ws.on_reconnect(reconnected.set)
    try:
        with ws:
            ws.subscribe_and_wait(books_args(INSTS[:1]))
            flood = threading.Thread(target=sim.flood, args=(INSTS[0], 100))
            flood.start()
            # the counter is raised by the dispatcher just before the reader notes the error
            assert wait_until(
                lambda: (
                    ws.stats().raw_overflow_disconnects >= 1
                    and "raw handler queue full" in (ws.stats().last_error or "")
                )
            )
            st = ws.stats()
            assert st.raw_dropped >= 1 and st.raw_high_water == 2
            assert st.typed_overflow_disconnects == 0 and st.typed_dropped == 0
            # while the handler stays stuck every new connection overflows again (its acks
            # find the queue full); once it returns, the reconnect comes through
            gate.set()
            assert reconnected.wait(10)
            assert ws.stats().reconnects >= 1
            flood.join(30)
            # resubscribed: a fresh snapshot reaches on_raw on the new connection
            assert wait_until(lambda: ws.stats().connected and len(snapshots) >= 2)
    finally:
        gate.set()


@pytest.mark.parametrize("mode", ["inline", "pool"])
def test_raw_handler_exception_is_counted_reported_and_thread_goes_on(sim, mode):
    errors: list[BaseException] = []
    pushes = [0]

    def flaky(msg):
        if "data" in msg:
            pushes[0] += 1
            if pushes[0] % 3 == 0:
                raise RuntimeError(f"raw boom {pushes[0]}")

    ws = WSClient(
        sim.ws_public_url,
        connect_limiter=unpaced_limiter(),
        config=WSConfig(raw_dispatch=DispatchConfig(mode=DispatchMode(mode))),
    )
    ws.on_raw(flaky)
    ws.on_error(errors.append)
    with ws:
        ws.subscribe_and_wait(books_args(INSTS[:1]))
        sim.flood(INSTS[0], 30)
        assert wait_until(lambda: pushes[0] >= 31, timeout_s=15)
        assert wait_until(lambda: len(errors) == 10)  # pushes 3, 6, ... 30
        st = ws.stats()
        assert st.handler_errors == len(errors)
        assert all(isinstance(e, RuntimeError) and "raw boom" in str(e) for e in errors)
        assert st.connected and st.reconnects == 0
