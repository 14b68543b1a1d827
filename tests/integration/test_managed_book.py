"""ManagedOrderBook against okx_sync.sim: sync, resync on gap / checksum / dropped connection,
REST cross-check, callbacks, dispatch independence, concurrent reads, close.

The simulator runs with ``auto_tick=False``: the market moves only when a test
calls ``sim.tick()``, so "equal to the simulator's own book" is checked at the
same seqId (``sim.exchange.book(inst_id)`` is the published book, exactly what a
correct client holds at that seqId).
"""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from okx_sync import FakeClock, OrderBookStore, WSClient
from okx_sync.book import BookErrorCounts
from okx_sync.errors import (
    OrderBookSequenceError,
    ValidationError,
    WSClosedError,
    WSError,
    WSSubscribeError,
)
from okx_sync.models import BookLevel, OrderBook
from okx_sync.ops.health import HealthMonitor
from okx_sync.ops.reporter import collect_snapshot
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client, wait_until
from okx_sync.testing.ws_servers import ws_options, ws_threads
from okx_sync.ws.dispatch import DispatchConfig
from okx_sync.ws.managed_book import ManagedOrderBook, ResyncPolicy
from okx_sync.ws.policies import BackoffPolicy, ConnectRateLimiter

INST = "BTC-USDT"
ARG = {"channel": "books", "instId": INST}
NO_BOOK_ERRORS = BookErrorCounts()


def book_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("okx-book-")]


@pytest.fixture
def sim():
    with Simulator(seed=21, auto_tick=False) as s:
        yield s
    assert not ws_threads(), ws_threads()  # every okx- thread, not only the books'


def make_ws(sim: Simulator, **kw: Any) -> WSClient:
    kw.setdefault("backoff", BackoffPolicy(initial=0.02, maximum=0.2))
    kw.setdefault("ping_interval_s", 5.0)
    kw.setdefault("pong_timeout_s", 2.0)
    # the simulator does not limit new connections: skip the process-wide 3/s pacing
    kw.setdefault("connect_limiter", ConnectRateLimiter(rate=100))
    return WSClient(sim.ws_public_url, **ws_options(**kw))


@pytest.fixture
def ws(sim):
    client = make_ws(sim).start()
    yield client
    for book in client.managed_books():
        book.close()
    client.close()


def advance(sim: Simulator, inst: str = INST) -> int:
    """Tick the market until the published book of ``inst`` changes; its new seqId."""
    before = sim.exchange.book(inst).seq_id
    for _ in range(500):
        sim.tick()
        seq = sim.exchange.book(inst).seq_id
        if seq != before:
            return seq
    raise AssertionError("the simulated book did not change")


def assert_equals_sim(book: ManagedOrderBook, sim: Simulator, inst: str = INST) -> None:
    """Wait until the book has reached the simulator's published seqId, then compare."""
    target = sim.exchange.book(inst).seq_id
    assert wait_until(lambda: book.in_sync and book.seq_id == target), book.stats()
    view = sim.exchange.book(inst)
    snap = book.snapshot()
    assert isinstance(snap, OrderBook) and snap.inst_id == inst
    assert snap.seq_id == view.seq_id == target and snap.ts == view.ts
    assert snap.raw["bids"] == view.bids  # the exact wire strings
    assert snap.raw["asks"] == view.asks
    assert snap.bids == tuple(level(lv) for lv in view.bids)
    assert book.best_bid() == level(view.bids[0]) == snap.best_bid
    assert book.best_ask() == level(view.asks[0]) == snap.best_ask


def level(wire: list[str]) -> BookLevel:
    return BookLevel(Decimal(wire[0]), Decimal(wire[1]), int(wire[3]))


class Recorder:
    """Collects callback calls (any thread)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, *args: Any) -> None:
        with self.lock:
            self.calls.append(args)
            self.threads.add(threading.current_thread().name)


# --------------------------------------------------------------------------- sync


def test_syncs_and_follows_updates(sim, ws):
    book = ws.order_book(INST)
    assert isinstance(book, ManagedOrderBook)
    assert book.wait_ready(5)
    assert_equals_sim(book, sim)
    for _ in range(5):
        advance(sim)
        assert_equals_sim(book, sim)
    stats = book.stats()
    assert stats.resyncs == 0 and stats.resubscribes == 0 and stats.last_error == ""
    assert stats.snapshots == 1 and stats.updates >= 5 and stats.verified >= 6
    assert stats.errors == NO_BOOK_ERRORS
    json.dumps(stats.to_dict())


def test_subscribes_on_start_when_built_before(sim):
    ws = make_ws(sim)
    book = ws.order_book(INST)
    assert not book.in_sync and book.best_bid() is None
    assert book.snapshot() == OrderBook(inst_id=INST)  # empty, no seq_id while out of sync
    assert ws.desired_subscriptions() == [ARG]
    ws.start()
    try:
        assert book.wait_ready(5)
        assert_equals_sim(book, sim)
    finally:
        book.close()
        ws.close()


# --------------------------------------------------------------------------- acceptance: faults


def test_seq_gap_ends_in_one_resync_and_the_sims_book(sim, ws):
    resyncs, errors = Recorder(), Recorder()
    acks: list[str] = []  # the simulator's answers for the book's arg, in order
    ws.on_error(errors)
    ws.on_event(lambda e: acks.append(e["event"]) if e.get("arg") == ARG else None)
    book = ws.order_book(INST)
    book.on_resync(resyncs)
    assert book.wait_ready(5)
    assert_equals_sim(book, sim)
    assert wait_until(lambda: bool(acks))  # on_event runs on the typed pool (the default)
    assert acks == ["subscribe"]

    sim.faults.seq_gap(INST)
    advance(sim)  # computed, never sent
    advance(sim)  # arrives with prevSeqId != stored seqId
    assert_equals_sim(book, sim)
    assert wait_until(lambda: len(resyncs.calls) == 1)
    stats = book.stats()
    assert stats.resyncs == 1 and stats.resubscribes == 1
    assert stats.errors.sequence == 1 and stats.snapshots == 2
    assert "OrderBookSequenceError" in stats.last_error
    assert stats.last_resync_s is not None
    ((got_book, exc),) = resyncs.calls
    assert got_book is book and isinstance(exc, OrderBookSequenceError)
    assert resyncs.threads == {f"okx-book-books-{INST}"}
    assert wait_until(lambda: any(isinstance(e[0], OrderBookSequenceError) for e in errors.calls))
    # resubscribe = unsubscribe + subscribe: the simulator acknowledged an unsubscribe of
    # the book's arg before the new subscribe (it answers in the order it received them)
    assert wait_until(lambda: len(acks) == 3)
    assert acks == ["subscribe", "unsubscribe", "subscribe"]
    # the resubscription stays desired; the stream goes on verified
    assert ws.desired_subscriptions() == [ARG]
    for _ in range(3):
        advance(sim)
        assert_equals_sim(book, sim)
    assert book.resyncs == 1


def test_bad_checksum_ends_in_one_resync_and_the_sims_book(sim, ws):
    book = ws.order_book(INST)
    assert book.wait_ready(5)
    sim.faults.bad_checksum(INST)
    advance(sim)
    assert_equals_sim(book, sim)
    stats = book.stats()
    assert stats.resyncs == 1 and stats.resubscribes == 1
    assert stats.errors.checksum == 1 and stats.errors.sequence == 0
    assert "OrderBookChecksumError" in book.last_error
    advance(sim)
    assert_equals_sim(book, sim)
    assert book.resyncs == 1


@pytest.mark.parametrize(
    ("kind", "error", "counter"),
    [
        ("size", "OrderBookDataError", "malformed"),
        ("price", "OrderBookDataError", "malformed"),
        ("crossed", "OrderBookCrossedError", "crossed"),
    ],
)
def test_a_malformed_or_crossing_update_ends_in_one_resync_and_the_sims_book(
    sim, ws, kind, error, counter
):
    resyncs = Recorder()
    book = ws.order_book(INST)
    book.on_resync(resyncs)
    assert book.wait_ready(5)
    sim.faults.malformed_book(INST, kind)
    advance(sim)  # carries a level no client may store; the published book is fine
    assert_equals_sim(book, sim)
    stats = book.stats()
    assert stats.resyncs == 1 and stats.resubscribes == 1
    assert stats.errors.to_dict()[counter] == 1 and stats.errors.total == 1
    assert error in book.last_error
    assert wait_until(lambda: len(resyncs.calls) == 1)
    assert type(resyncs.calls[0][1]).__name__ == error
    advance(sim)
    assert_equals_sim(book, sim)
    assert book.resyncs == 1


def test_dropped_connection_ends_in_one_resync_and_the_sims_book(sim, ws):
    resyncs = Recorder()
    book = ws.order_book(INST)
    book.on_resync(resyncs)
    assert book.wait_ready(5)
    advance(sim)
    assert_equals_sim(book, sim)

    assert sim.faults.drop_ws(kind="public") == 1
    assert wait_until(lambda: ws.stats().reconnects == 1 and book.resyncs == 1)
    assert_equals_sim(book, sim)
    assert wait_until(lambda: len(resyncs.calls) == 1)
    ((_, exc),) = resyncs.calls
    assert isinstance(exc, WSError) and "disconnected" in str(exc)
    stats = book.stats()
    assert stats.resyncs == 1
    assert stats.resubscribes == 0  # the client's reconnect resubscribed it
    assert stats.snapshots == 2
    assert stats.errors == NO_BOOK_ERRORS
    for _ in range(3):
        advance(sim)
        assert_equals_sim(book, sim)
    assert book.resyncs == 1


def test_sequence_reset_is_not_a_resync(sim, ws):
    book = ws.order_book(INST)
    assert book.wait_ready(5)
    sim.faults.seq_reset(INST)
    advance(sim)
    assert_equals_sim(book, sim)
    advance(sim)
    assert_equals_sim(book, sim)
    stats = book.stats()
    assert stats.resyncs == 0 and stats.sequence_resets == 1


def test_subscription_refused_for_now_is_retried(sim, ws):
    sim.faults.reject_subscription("books", INST, code="64007", count=1)  # internal error
    book = ws.order_book(INST, policy=ResyncPolicy(retry_initial=0.05, snapshot_timeout_s=2.0))
    assert book.wait_ready(5)
    assert "WSSubscribeError" in book.last_error
    # the book thread counts the resubscribe once its send returned; the snapshot it
    # asked for may have made the book ready before that
    assert wait_until(lambda: book.stats().resubscribes == 1)
    assert book.resyncs == 0 and book.stats().resubscribes == 1
    assert ws.desired_subscriptions() == [ARG]
    assert_equals_sim(book, sim)


class ParkingClock(FakeClock):
    """Manual fake time (it never passes by itself) that reports when a book thread waits
    with no deadline at all: nothing scheduled, neither a retry nor a snapshot timeout."""

    def __init__(self) -> None:
        super().__init__(auto_advance=False)
        self.parked = threading.Event()

    def wait(self, cond: threading.Condition, timeout: float | None) -> bool:
        if timeout is None and threading.current_thread().name.startswith("okx-book-"):
            self.parked.set()
        return super().wait(cond, timeout)


@pytest.mark.parametrize("rejection", [None, "60013"])
def test_rejected_arg_stops_the_book_at_once(sim, ws, rejection):
    """OKX rejects the arg itself (60018 unknown instrument, the simulator's own answer;
    60013 invalid args, forced): no retry, no resubscribe, wait_ready raises the code."""
    if rejection is None:
        inst, code = "NOPE-USDT", "60018"
        assert inst not in sim.exchange.specs
    else:
        inst, code = INST, rejection
        sim.faults.reject_subscription("books", INST, code=rejection, count=None)
    clock = ParkingClock()
    policy = ResyncPolicy(snapshot_timeout_s=0.01, retry_initial=0.01, retry_max=0.01)
    book = ws.order_book(inst, clock=clock, policy=policy)
    with pytest.raises(WSSubscribeError) as info:
        book.wait_ready(30)  # fake seconds that never pass: only the rejection ends this
    arg = {"channel": "books", "instId": inst}
    assert info.value.code == code and info.value.arg == arg
    assert code in book.last_error and "WSSubscribeError" in book.last_error
    assert book.stats().rejected == code and f"rejected {code}" in repr(book)
    assert not book.in_sync and book.best_bid() is None
    # the book's thread has nothing scheduled (a retry or snapshot timeout would be a deadline)
    assert clock.parked.wait(5)
    # exactly one subscribe reached the simulator; the client counted one error, dropped the arg
    (conn,) = sim.ws_connections()
    assert conn["ops_received"] == {"subscribe": 1}
    stats = ws.stats()
    assert stats.subscribe_error == 1 and stats.subscriptions_dropped == 1
    assert ws.desired_subscriptions() == [] and book.stats().resubscribes == 0
    with pytest.raises(WSSubscribeError):  # every later wait too, at once
        book.wait_ready(30)
    book.close()
    with pytest.raises(WSClosedError):
        book.wait_ready(30)


def test_plain_store_fed_by_ws_on_books(sim):
    """The README's line: ws.on("books", store.apply) — typed BookUpdates into a store."""
    store = OrderBookStore("books", INST)
    errors: list[BaseException] = []
    ws = make_ws(sim)
    ws.on("books", store.apply)
    ws.on_error(errors.append)
    with ws.start():
        ws.subscribe_and_wait(ARG)
        for _ in range(3):
            advance(sim)
        target = sim.exchange.book(INST).seq_id
        assert wait_until(lambda: store.seq_id == target), store.stats()
        view = sim.exchange.book(INST)
        snap = store.snapshot()
        assert snap.seq_id == view.seq_id and snap.raw["bids"] == view.bids
        assert snap.raw["asks"] == view.asks and store.best_bid() == level(view.bids[0])
        stats = store.stats()
        assert stats.snapshots == 1 and stats.updates >= 3 and stats.resets == 0
        assert ws.stats().handler_errors == 0 and errors == []


def test_snapshot_timeout_resubscribes(sim, ws):
    book = ws.order_book(INST, policy=ResyncPolicy(snapshot_timeout_s=0.3))
    assert book.wait_ready(5)
    # someone else removes the subscription behind the book's back; then the
    # connection drops and the reconnect does not resubscribe it: no snapshot
    ws.unsubscribe_and_wait(ARG)
    assert ws.desired_subscriptions() == []
    sim.faults.drop_ws(kind="public")
    assert wait_until(lambda: book.resyncs == 1)
    advance(sim)
    assert_equals_sim(book, sim)  # after the snapshot timeout the book resubscribed
    stats = book.stats()
    assert stats.resyncs == 1
    # sent on the live connection (or, had the reconnect been slower than the
    # timeout, put back into the desired set for the reconnect to send)
    assert stats.resubscribes in (0, 1)
    assert ws.desired_subscriptions() == [ARG]


# --------------------------------------------------------------------------- REST cross-check


def test_rest_cross_check_after_resync(sim, ws):
    client = sim_client(sim)
    try:
        book = ws.order_book(INST, rest_check=client)
        assert book.wait_ready(5)
        assert book.stats().rest_check.checked == 0  # only after a resync
        sim.faults.seq_gap(INST)
        advance(sim)
        advance(sim)
        assert_equals_sim(book, sim)
        assert wait_until(lambda: book.stats().rest_check.checked == 1)
        check = book.stats().rest_check
        assert check.enabled and check.mismatches == 0 and check.errors == 0
        diff = check.last_difference
        assert diff["ok"] and diff["tolerance"] == 0.0  # same seqId: must be equal
        assert diff["rest_seq_id"] == diff["local_seq_id"] == sim.exchange.book(INST).seq_id
        assert diff["local_bid"] == sim.exchange.book(INST).bids[0][0]
        assert diff["bid_diff"] == 0.0 and diff["ask_diff"] == 0.0
        json.dumps(book.stats().to_dict())
    finally:
        client.close()


class FakeMarket:
    def __init__(self, sim: Simulator, bid_shift: str = "0", fail: bool = False) -> None:
        self.sim = sim
        self.bid_shift = Decimal(bid_shift)
        self.fail = fail
        self.calls = 0

    def get_order_book(self, *, inst_id: str, sz: int) -> OrderBook:
        self.calls += 1
        if self.fail:
            raise WSError("REST is down")
        view = self.sim.exchange.book(inst_id)
        bid = [str(Decimal(view.bids[0][0]) + self.bid_shift), *view.bids[0][1:]]
        return OrderBook.from_okx(
            {"bids": [bid], "asks": view.asks[:sz], "ts": str(view.ts), "seqId": view.seq_id - 1},
            inst_id=inst_id,
        )


class FakeRest:
    def __init__(self, market: FakeMarket) -> None:
        self.market = market


def test_rest_cross_check_reports_mismatch_and_failure(sim, ws):
    market = FakeMarket(sim, bid_shift="-600")  # 1 % below at ~60000
    book = ws.order_book(INST, rest_check=FakeRest(market), rest_tolerance=0.001)
    assert book.wait_ready(5)
    sim.faults.bad_checksum(INST)
    advance(sim)
    assert wait_until(lambda: book.stats().rest_check.checked == 1)
    check = book.stats().rest_check
    assert check.mismatches == 1
    diff = check.last_difference
    assert not diff["ok"] and diff["tolerance"] == 0.001 and diff["ask_diff"] == 0.0
    assert 0.009 < diff["bid_diff"] < 0.011

    market.fail = True
    sim.faults.bad_checksum(INST)
    advance(sim)
    assert wait_until(lambda: book.stats().rest_check.errors == 1)
    check = book.stats().rest_check
    assert check.checked == 1 and "REST is down" in check.last_error
    assert book.resyncs == 2 and market.calls == 2


# --------------------------------------------------------------------------- callbacks


def test_on_update_runs_on_the_book_thread_outside_locks(sim, ws):
    seen: list[tuple[str, bool, int | None]] = []
    done = threading.Event()
    book = ws.order_book(INST)

    @book.on_update
    def changed(b: ManagedOrderBook) -> None:
        free = b._cond.acquire(blocking=False) and b.store._lock.acquire(blocking=False)
        if free:
            b.store._lock.release()
            b._cond.release()
        b.stats()  # reading from the callback must not deadlock
        seen.append((threading.current_thread().name, free, b.seq_id))
        if b.seq_id == sim.exchange.book(INST).seq_id:
            done.set()

    assert book.wait_ready(5)
    advance(sim)
    assert done.wait(5)
    assert {name for name, _, _ in seen} == {f"okx-book-books-{INST}"}
    assert all(free for _, free, _ in seen)


def test_inline_callbacks_run_on_the_reader(sim, ws):
    rec = Recorder()
    book = ws.order_book(INST, callbacks="inline")
    book.on_update(rec)
    assert book.wait_ready(5)
    before = len(rec.calls)
    advance(sim)
    advance(sim)
    assert_equals_sim(book, sim)
    assert wait_until(lambda: len(rec.calls) >= before + 2)  # every push
    assert rec.threads == {"okx-ws-public-reader"}


def test_callback_exceptions_are_counted_and_reported(sim, ws):
    errors = Recorder()
    ws.on_error(errors)
    book = ws.order_book(INST)

    def broken(_b: ManagedOrderBook, *_: Any) -> None:
        raise RuntimeError("callback bug")

    book.on_update(broken)
    book.on_resync(broken)
    assert book.wait_ready(5)
    sim.faults.seq_gap(INST)
    advance(sim)
    advance(sim)
    assert_equals_sim(book, sim)
    assert wait_until(lambda: book.stats().callback_errors >= 2)
    # counted before the error handlers run: wait for the handler
    assert wait_until(lambda: any(isinstance(e[0], RuntimeError) for e in errors.calls))
    assert ws.stats().handler_errors >= 2
    book.off(broken)
    assert book.stats().callback_errors >= 2
    advance(sim)
    assert_equals_sim(book, sim)  # the book thread survived


def test_book_is_fed_inline_whatever_the_dispatch_mode(sim):
    ws = make_ws(sim, typed_dispatch=DispatchConfig(workers=1, queue_size=1000)).start()
    release = threading.Event()
    handled: list[Any] = []

    def slow(item: Any) -> None:
        release.wait(10)
        handled.append(item)

    ws.on("books", slow)
    try:
        book = ws.order_book(INST)
        assert book.wait_ready(5)
        for _ in range(5):
            advance(sim)
            assert_equals_sim(book, sim)  # while the typed handler is stuck
        assert len(handled) == 0
    finally:
        release.set()
        for b in ws.managed_books():
            b.close()
        ws.close()


# --------------------------------------------------------------------------- reads, lifecycle


def test_concurrent_reads_see_consistent_books(sim, ws):
    book = ws.order_book(INST)
    assert book.wait_ready(5)
    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def reader() -> None:
        while not stop.is_set():
            snap = book.snapshot(10)
            reads[0] += 1
            bids = [lv.px for lv in snap.bids]
            asks = [lv.px for lv in snap.asks]
            if snap.seq_id is None:  # out of sync
                if bids or asks:
                    problems.append("levels while out of sync")
                continue
            if bids != sorted(bids, reverse=True) or asks != sorted(asks):
                problems.append(f"unsorted at {snap.seq_id}")
            if bids and asks and bids[0] >= asks[0]:
                problems.append(f"crossed at {snap.seq_id}")
            book.best_bid()
            book.best_ask()

    threads = [threading.Thread(target=reader, name=f"reader-{i}") for i in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(30):
            if i == 10:
                sim.faults.seq_gap(INST)
                advance(sim)  # never sent: nothing to wait for
            if i == 20:
                sim.faults.bad_checksum(INST)
            advance(sim)
            assert_equals_sim(book, sim)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    assert not problems, problems[:5]
    assert reads[0] > 0 and book.resyncs == 2


def test_books5_snapshot_channel(sim, ws):
    book = ws.order_book(INST, "books5")
    assert book.wait_ready(5)
    for _ in range(3):
        advance(sim)
    view = sim.exchange.book(INST)
    assert wait_until(lambda: book.snapshot().raw["bids"] == view.bids[:5])
    assert book.snapshot().raw["asks"] == view.asks[:5]
    assert book.resyncs == 0


def test_close_unsubscribes_detaches_and_joins(sim, ws):
    book = ws.order_book(INST)
    assert book.wait_ready(5)
    with pytest.raises(ValidationError, match="already manages"):
        ws.order_book(INST)
    assert ws.managed_books() == [book]
    assert f"okx-book-books-{INST}" in book_threads()
    assert book.close() is True
    assert book.close() is True  # idempotent
    assert book.closed and not book.in_sync and book.best_bid() is None
    assert ws.managed_books() == [] and ws.desired_subscriptions() == []
    assert ws._handlers.push_listeners == ()  # detached: pushes are decoded lazily again
    assert not book_threads()
    with pytest.raises(WSClosedError):
        book.wait_ready(0.1)
    assert book.stats().closed is True
    # the key is free again
    again = ws.order_book(INST)
    assert again.wait_ready(5)
    assert_equals_sim(again, sim)
    again.close()


def test_book_survives_ws_restart(sim, ws):
    runs_on: list[threading.Thread] = []
    book = ws.order_book(INST)
    book.on_update(lambda _b: runs_on.append(threading.current_thread()))
    assert book.wait_ready(5)
    # the snapshot may have been applied before on_update was registered: tick for an update
    sim.tick()
    assert wait_until(lambda: bool(runs_on))
    first_thread = runs_on[-1]
    assert f"okx-book-books-{INST}" in book_threads()
    assert ws.close() is True
    assert not ws_threads(), ws_threads()  # ws.close() joined the book's thread too
    assert not first_thread.is_alive()
    assert not book.in_sync and book.best_bid() is None
    assert ws.managed_books() == [book] and not book.closed  # the book stays open
    advance(sim)
    ws.start()
    assert book_threads() == [f"okx-book-books-{INST}"]  # started again with the client
    assert book.wait_ready(5)
    assert_equals_sim(book, sim)
    runs_on.clear()
    advance(sim)
    assert_equals_sim(book, sim)
    # callbacks run on the restarted thread
    assert wait_until(lambda: bool(runs_on))
    assert runs_on[-1] is not first_thread and runs_on[-1].is_alive()
    assert runs_on[-1].name == f"okx-book-books-{INST}"


def test_ws_close_joins_the_books_threads_within_the_bound(sim):
    ws = make_ws(sim).start()
    books = [ws.order_book(INST), ws.order_book("ETH-USDT", "books5")]
    check = ws.order_book("BTC-USDT-SWAP", rest_check=FakeRest(FakeMarket(sim)))
    assert all(b.wait_ready(5) for b in [*books, check])
    assert len(book_threads()) == 3
    t0 = time.monotonic()
    assert ws.close(timeout_s=2.0) is True
    assert time.monotonic() - t0 < 2.5
    assert not ws_threads(), ws_threads()
    assert ws.close() is True  # idempotent
    for b in [*books, check]:
        assert b.close() is True


def test_book_opened_before_start_starts_its_thread_with_the_client(sim):
    ws = make_ws(sim)
    book = ws.order_book(INST)
    assert not ws_threads()  # nothing runs before ws.start()
    ws.start()
    try:
        assert book_threads() == [f"okx-book-books-{INST}"]
        assert book.wait_ready(5)
    finally:
        book.close()
        ws.close()
    assert not ws_threads()


def test_listing_for_client_stats_and_health(sim, ws):
    client = sim_client(sim)
    try:
        client._ws_wiring.register(ws)  # what the Client's WS factories do
        book = ws.order_book(INST)
        other = ws.order_book("ETH-USDT")
        assert client.managed_books() == [book, other]
        assert book.wait_ready(5) and other.wait_ready(5)
        snap = collect_snapshot(client, monitor=HealthMonitor())
        names = [b["name"] for b in snap.books]
        assert names == [f"books:{INST}", "books:ETH-USDT"]
        assert all(b["in_sync"] for b in snap.books)
        parts = {p.component: p for p in snap.health.components}
        assert parts[f"book books:{INST}"].ok
        json.dumps(snap.to_dict())
        other.close()
        assert client.managed_books() == [book]  # closed books are left out
    finally:
        client.close()
