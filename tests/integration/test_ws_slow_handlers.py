"""Issue 18: a handler never kills the link, and dropped pushes are never silent.

Against okx_sync.sim, under a 0.5 s ping / 0.5 s pong heartbeat (a dead link is declared
1 s after the last message read): a handler holding on for > 1 s must cost neither a
reconnect nor a push, whatever the dispatch mode; with ``overflow=Overflow.DROP`` every drop
episode reaches ``on_error`` as a ``WSQueueFullError`` and one WARNING.
Handlers block on an Event the test releases; progress is read from the client's own
stamps (``last_recv``, ``last_ping``), never from a sleep.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from okx_sync import WSClient, WSQueueFullError
from okx_sync.models.ws import BookUpdate
from okx_sync.sim import Simulator
from okx_sync.testing import wait_until
from okx_sync.testing.ws_servers import unpaced_limiter, ws_options, ws_threads
from okx_sync.ws.dispatch import DispatchConfig, DispatchMode, Overflow

BTC_BOOKS = {"channel": "books", "instId": "BTC-USDT"}
HELD_S = 1.25  # longer than ping_interval_s + pong_timeout_s (1 s): the old false "dead link"


@pytest.fixture
def sim():
    with Simulator(seed=18, book_interval_s=0.02, tick_interval_s=0.02) as s:
        yield s
    assert not ws_threads(), ws_threads()


class Records(logging.Handler):
    """Collects okx_sync.ws records; ``seen`` is set on the first one ``pred`` accepts."""

    def __init__(self, pred) -> None:
        super().__init__(logging.DEBUG)
        self.pred = pred
        self.records: list[logging.LogRecord] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.pred(record):
            self.seen.set()

    def matching(self) -> list[logging.LogRecord]:
        return [r for r in self.records if self.pred(r)]


@pytest.fixture
def ws_log():
    holder: dict[str, Records] = {}

    def install(pred) -> Records:
        rec = Records(pred)
        logger = logging.getLogger("okx_sync.ws")
        logger.addHandler(rec)
        old = logger.level
        logger.setLevel(logging.DEBUG)
        holder["rec"], holder["old"] = rec, old  # type: ignore[assignment]
        return rec

    yield install
    if "rec" in holder:
        logger = logging.getLogger("okx_sync.ws")
        logger.removeHandler(holder["rec"])
        logger.setLevel(holder["old"])  # type: ignore[arg-type]


class BlockingBooks:
    """A ``books`` handler that blocks on its third update until released."""

    def __init__(self) -> None:
        self.items: list[BookUpdate] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.entered_at = 0.0

    def __call__(self, item: BookUpdate) -> None:
        self.items.append(item)
        if len(self.items) == 3:
            self.entered_at = time.time()
            self.entered.set()
            assert self.release.wait(30)

    def __enter__(self) -> BlockingBooks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()  # never leave a thread blocked, whatever failed

    def assert_no_gap(self) -> None:
        """One snapshot, then updates whose prevSeqId chain is unbroken: nothing lost."""
        assert self.items[0].is_snapshot
        assert not any(u.is_snapshot for u in self.items[1:])
        for prev, cur in zip(self.items, self.items[1:], strict=False):
            assert cur.prev_seq_id == prev.seq_id, (prev.seq_id, cur.prev_seq_id)


def client(sim, **kw) -> WSClient:
    return WSClient(
        sim.ws_public_url,
        connect_limiter=unpaced_limiter(),
        **ws_options(ping_interval_s=0.5, pong_timeout_s=0.5, **kw),
    )


def test_default_pool_keeps_the_link_while_a_handler_blocks(sim):
    handler = BlockingBooks()
    disconnects: list[str] = []
    ws = client(sim)  # default typed dispatch: a pool of one worker
    ws.on("books", handler)
    ws.on_disconnect(disconnects.append)
    with ws, handler:
        ws.subscribe_and_wait(BTC_BOOKS)
        assert handler.entered.wait(5)
        assert handler.release.is_set() is False
        # the reader keeps reading while the worker is held: well past the 1 s bound
        assert wait_until(
            lambda: disconnects or (ws.stats().last_recv or 0) >= handler.entered_at + HELD_S,
            timeout_s=20,
        )
        assert not disconnects, disconnects
        handler.release.set()
        queued = ws.stats().typed_queue_len
        assert wait_until(lambda: ws.stats().typed_queue_len == 0 and len(handler.items) > 3)
        st = ws.stats()
        assert st.typed_mode == "pool" and st.reconnects == 0 and st.connects == 1
        assert st.typed_dropped == 0 and not disconnects
    assert queued > 0  # pushes waited in the queue meanwhile, and were all delivered
    handler.assert_no_gap()


def test_inline_stall_keeps_the_link_and_warns_once_naming_the_handler(sim, ws_log):
    handler = BlockingBooks()
    disconnects: list[str] = []
    records = ws_log(lambda r: "held the reader" in r.getMessage())
    ws = client(sim, typed_dispatch=DispatchConfig(mode=DispatchMode.INLINE))
    ws.on("books", handler)
    ws.on_disconnect(disconnects.append)
    with ws, handler:
        ws.subscribe_and_wait(BTC_BOOKS)
        assert handler.entered.wait(5)
        # the heartbeat keeps pinging (keep-alive) but does not call the link dead
        assert wait_until(
            lambda: disconnects or (ws.stats().last_ping or 0) >= handler.entered_at + HELD_S,
            timeout_s=20,
        )
        assert not disconnects, disconnects
        assert not records.seen.is_set()  # reported when the handler returns
        handler.release.set()
        assert records.seen.wait(5)
        n = len(handler.items)
        assert wait_until(lambda: len(handler.items) >= n + 5)  # pushes flow again
        st = ws.stats()
        assert st.typed_mode == "inline" and st.reconnects == 0 and st.connects == 1
        assert wait_until(lambda: (ws.stats().last_pong or 0) >= handler.entered_at + HELD_S)
    assert not disconnects
    [warning] = records.matching()
    assert warning.levelno == logging.WARNING
    assert warning.handler == "on('books') BlockingBooks"  # type: ignore[attr-defined]
    assert warning.held_s >= HELD_S  # type: ignore[attr-defined]
    text = warning.getMessage()
    assert "on('books') BlockingBooks held the reader for" in text and "pool" in text
    handler.assert_no_gap()


def test_drop_episode_reaches_on_error_and_logs_one_warning(sim, ws_log):
    handler = BlockingBooks()
    errors: list[BaseException] = []
    reported = threading.Event()
    records = ws_log(lambda r: "handler queue full" in r.getMessage())

    def on_error(exc: BaseException) -> None:
        errors.append(exc)
        if isinstance(exc, WSQueueFullError):
            reported.set()

    ws = client(sim, typed_dispatch=DispatchConfig(queue_size=4, overflow=Overflow.DROP))
    ws.on("books", handler)
    ws.on_error(on_error)
    with ws, handler:
        ws.subscribe_and_wait(BTC_BOOKS)
        assert handler.entered.wait(5)
        assert wait_until(lambda: ws.stats().typed_dropped >= 5)
        assert not reported.is_set()  # the episode goes on while the queue stays full
        handler.release.set()
        assert reported.wait(5)  # the pool caught up: the episode is reported
        dropped = ws.stats().typed_dropped
        st = ws.stats()
        assert st.reconnects == 0
    [err] = [e for e in errors if isinstance(e, WSQueueFullError)]
    assert err.path == "typed" and err.dropped == dropped and err.since > 0
    assert "reconcile" in str(err)
    [warning] = records.matching()
    assert warning.levelno == logging.WARNING
    assert warning.dropped == dropped and warning.path == "typed"  # type: ignore[attr-defined]
    assert "reconcile" in warning.getMessage()
    assert "WSQueueFullError" in st.last_error or "queue full" in st.last_error
