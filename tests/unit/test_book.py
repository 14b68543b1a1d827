"""OrderBookStore: merge, ordering, sequence and checksum rules (facts §5.1-§5.3)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import attrs
import pytest

import okx_sync
from okx_sync.book import (
    INCREMENTAL_CHANNELS,
    SNAPSHOT_CHANNELS,
    BookErrorCounts,
    OrderBookStore,
    StoreStats,
)
from okx_sync.checksum import book_checksum
from okx_sync.errors import (
    OrderBookChecksumError,
    OrderBookCrossedError,
    OrderBookDataError,
    OrderBookError,
    OrderBookNotReadyError,
    OrderBookSequenceError,
    ValidationError,
)
from okx_sync.models import BookLevel, OrderBook
from okx_sync.models.ws import BookUpdate, push_parser


def push(
    action: str | None,
    bids: list[list[str]] = (),  # type: ignore[assignment]
    asks: list[list[str]] = (),  # type: ignore[assignment]
    *,
    channel: str = "books",
    inst_id: str = "BTC-USDT",
    **fields: Any,
) -> dict[str, Any]:
    """A push as OKX sends it; levels given as [px, sz] get the "0", numOrders tail."""
    item = {
        "bids": [lvl if len(lvl) > 2 else [*lvl, "0", "1"] for lvl in bids],
        "asks": [lvl if len(lvl) > 2 else [*lvl, "0", "1"] for lvl in asks],
        "ts": "1700000000000",
        **fields,
    }
    id_field = "sprdId" if channel.startswith("sprd-") else "instId"
    msg: dict[str, Any] = {"arg": {"channel": channel, id_field: inst_id}, "data": [item]}
    if action is not None:
        msg["action"] = action
    return msg


D = Decimal


def prices(levels: list[list[str]]) -> list[str]:
    return [lvl[0] for lvl in levels]


def test_public_names_and_error_tree() -> None:
    assert okx_sync.OrderBookStore is OrderBookStore
    for err in (
        OrderBookSequenceError,
        OrderBookChecksumError,
        OrderBookNotReadyError,
        OrderBookDataError,
        OrderBookCrossedError,
    ):
        assert issubclass(err, OrderBookError)
        assert getattr(okx_sync, err.__name__) is err


def test_doc_checksum_vectors_through_merge() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(
        push(
            "snapshot",
            [["3366.1", "7"], ["3366", "6"]],
            [["3366.8", "9"], ["3368", "8"]],
            checksum=-1881014294,
        )
    )
    assert store.checksum_string() == "3366.1:7:3366.8:9:3366:6:3368:8"
    # delete bid 3366, add ask 3372: the second published vector
    store.apply(push("update", [["3366", "0"]], [["3372", "8"]], checksum=831078360))
    assert store.checksum_string() == "3366.1:7:3366.8:9:3368:8:3372:8"
    assert store.stats().verified == 2
    assert store.stats().unverified == 0


def test_checksum_mismatch_raises_with_details_and_resets() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(push("snapshot", [["100", "1"]], [["101", "1"]]))
    with pytest.raises(OrderBookChecksumError) as info:
        store.apply(push("update", [["100", "2"]], checksum=12345))
    err = info.value
    assert err.expected == 12345
    assert err.check_string == "100:2:101:1"
    assert err.got == book_checksum([["100", "2"]], [["101", "1"]])
    assert not store.ready and store.snapshot().raw["bids"] == []
    assert store.stats().errors.checksum == 1
    with pytest.raises(OrderBookNotReadyError):
        store.apply(push("update", [["100", "3"]]))


def test_checksum_zero_or_missing_is_not_provided() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(push("snapshot", [["100", "1"]], [["101", "1"]], checksum=0))
    store.apply(push("update", [["99", "1"]]))  # no checksum field at all
    store.apply(push("update", [["98", "1"]], checksum="0"))
    stats = store.stats()
    assert (stats.verified, stats.unverified, stats.applied) == (0, 3, 3)
    assert prices(store.snapshot().raw["bids"]) == ["100", "99", "98"]


def test_verify_checksum_off_accepts_wrong_checksum() -> None:
    store = OrderBookStore("books", "BTC-USDT", verify_checksum=False)
    store.apply(push("snapshot", [["100", "1"]], [["101", "1"]], checksum=1))
    assert store.ready and store.stats().unverified == 1


def test_docs_sequence_chain_including_no_change_and_reset() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(push("snapshot", [["100", "1"]], [["101", "1"]], prevSeqId=-1, seqId=10))
    store.apply(push("update", [["99", "1"]], prevSeqId=10, seqId=15))
    store.apply(push("update", prevSeqId=15, seqId=15))  # no change, empty sides
    store.apply(push("update", [["98", "1"]], prevSeqId=15, seqId=3))  # maintenance reset
    store.apply(push("update", [["97", "1"]], prevSeqId=3, seqId=5))
    assert store.seq_id == 5
    stats = store.stats()
    assert stats.updates == 4 and stats.sequence_resets == 1
    assert not stats.errors.total
    assert prices(store.snapshot().raw["bids"]) == ["100", "99", "98", "97"]


def test_gap_raises_sequence_error_and_resets() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(push("snapshot", [["100", "1"]], [["101", "1"]], prevSeqId=-1, seqId=10))
    with pytest.raises(OrderBookSequenceError) as info:
        store.apply(push("update", [["99", "1"]], prevSeqId=11, seqId=12))
    assert (info.value.expected, info.value.got, info.value.seq_id) == (10, 11, 12)
    assert "BTC-USDT" in str(info.value)
    assert not store.ready and store.seq_id is None
    stats = store.stats()
    assert stats.errors.sequence == 1 and stats.resets == 1
    # a new snapshot recovers
    store.apply(push("snapshot", [["90", "1"]], [["91", "1"]], prevSeqId=-1, seqId=20))
    assert store.ready and store.seq_id == 20


def test_verify_sequence_off_accepts_gap() -> None:
    store = OrderBookStore("books", "BTC-USDT", verify_sequence=False)
    store.apply(push("snapshot", [["100", "1"]], [["101", "1"]], prevSeqId=-1, seqId=10))
    store.apply(push("update", [["99", "1"]], prevSeqId=11, seqId=12))
    assert store.ready and store.seq_id == 12


def test_update_before_snapshot_is_not_ready() -> None:
    store = OrderBookStore("books-l2-tbt", "BTC-USDT")
    with pytest.raises(OrderBookNotReadyError):
        store.apply(push("update", [["99", "1"]], channel="books-l2-tbt", prevSeqId=1, seqId=2))
    assert store.stats().errors.not_ready == 1
    assert store.best_bid() is None and store.best_ask() is None


def test_numeric_not_text_ordering_and_deletes() -> None:
    store = OrderBookStore("books", "X-USDT")
    store.apply(
        push(
            "snapshot",
            [["100", "1"], ["10", "1"], ["9.5", "1"]],
            [["100.5", "1"], ["101", "1"]],
            inst_id="X-USDT",
        )
    )
    store.apply(
        push(
            "update",
            [["11", "2"], ["9.75", "3"], ["10", "0"], ["1000", "0"]],  # 1000: absent, no-op
            [["100.25", "1"], ["1000", "1"], ["100.5", "0.0"]],  # "0.0" is a delete too
            inst_id="X-USDT",
        )
    )
    snap = store.snapshot()
    assert prices(snap.raw["bids"]) == ["100", "11", "9.75", "9.5"]
    assert prices(snap.raw["asks"]) == ["100.25", "101", "1000"]  # "1000" < "101" as text
    assert store.best_bid() == BookLevel(Decimal("100"), Decimal("1"), 1)
    assert store.best_ask() == BookLevel(Decimal("100.25"), Decimal("1"), 1)


def test_size_change_replaces_level_keeping_all_fields() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(push("snapshot", [["100", "1", "0", "3"]], [["101", "1", "0", "2"]]))
    store.apply(push("update", [["100", "4", "0", "7"]]))
    assert store.snapshot().raw["bids"] == [["100", "4", "0", "7"]]


def test_reformatted_price_is_the_same_level_with_the_new_string() -> None:
    store = OrderBookStore("books", "A-USDT")
    store.apply(push("snapshot", [["0.1", "5"]], [["0.2", "5"]], inst_id="A-USDT"))
    store.apply(push("update", [["0.10", "6"]], inst_id="A-USDT"))
    assert store.snapshot().raw["bids"] == [["0.10", "6", "0", "1"]]
    assert store.checksum_string() == "0.10:6:0.2:5"
    store.apply(push("update", [["0.100", "0"]], inst_id="A-USDT"))
    assert store.snapshot().raw["bids"] == []


def test_prices_too_long_for_float_keys_stay_exact() -> None:
    # 0.1 and 0.10000000000000001 are the same double; they are distinct prices.
    long_px = "0.10000000000000001"
    store = OrderBookStore("books", "A-USDT")
    store.apply(push("snapshot", [["0.1", "5"], ["0.09", "1"]], [["0.2", "5"]], inst_id="A-USDT"))
    store.apply(push("update", [[long_px, "7"]], inst_id="A-USDT"))
    assert prices(store.snapshot().raw["bids"]) == [long_px, "0.1", "0.09"]
    store.apply(push("update", [["0.1", "0"], ["0.095", "2"]], inst_id="A-USDT"))
    assert prices(store.snapshot().raw["bids"]) == [long_px, "0.095", "0.09"]
    # a snapshot that needs exact keys from the start
    store.apply(push("snapshot", [[long_px, "1"], ["0.1", "1"]], [["0.2", "1"]], inst_id="A-USDT"))
    assert prices(store.snapshot().raw["bids"]) == [long_px, "0.1"]


def test_unsorted_or_duplicated_snapshot_is_normalised() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(
        push("snapshot", [["99", "1"], ["100", "1"], ["98", "0"], ["99", "2"]], [["101", "1"]])
    )
    assert store.snapshot().raw["bids"] == [["100", "1", "0", "1"], ["99", "2", "0", "1"]]


def test_spread_book_negative_prices_and_sprd_id() -> None:
    store = OrderBookStore("sprd-books-l2-tbt", "BTC-USDT_BTC-USDT-SWAP")
    arg = {"channel": "sprd-books-l2-tbt", "sprdId": "BTC-USDT_BTC-USDT-SWAP"}
    snap = {
        "arg": arg,
        "action": "snapshot",
        "data": [
            {
                "asks": [["1.9", "1.1", "3"], ["2.5", "0.9", "1"]],
                "bids": [["1.8", "0.165", "1"], ["0", "23.49", "1"], ["-0.1", "1", "1"]],
                "ts": "1724391380926",
                "checksum": 0,
                "prevSeqId": -1,
                "seqId": 1724294007352168320,
            }
        ],
    }
    store.apply(snap)
    store.apply(
        {
            "arg": arg,
            "action": "update",
            "data": [
                {
                    "asks": [],
                    "bids": [["-3.9", "4.921", "1"], ["-0.05", "2", "1"], ["0", "0", "0"]],
                    "ts": "1724391380936",
                    "checksum": 0,
                    "prevSeqId": 1724294007352168320,
                    "seqId": 1724294007352168321,
                }
            ],
        }
    )
    assert prices(store.snapshot().raw["bids"]) == ["1.8", "-0.05", "-0.1", "-3.9"]
    assert store.seq_id == 1724294007352168321
    assert store.ts == 1724391380936


def test_channel_sets_are_the_documented_ones() -> None:
    assert SNAPSHOT_CHANNELS == {"books5", "bbo-tbt", "sprd-books5", "sprd-bbo-tbt"}
    assert INCREMENTAL_CHANNELS == {
        "books",
        "books-elp",
        "books-rpi",
        "books-l2-tbt",
        "books50-l2-tbt",
        "sprd-books-l2-tbt",
    }


def book_id(channel: str) -> str:
    return "BTC-USDT_BTC-USDT-SWAP" if channel.startswith("sprd-") else "BTC-USDT"


@pytest.mark.parametrize("channel", sorted(SNAPSHOT_CHANNELS))
def test_snapshot_channels_replace_the_book_every_push(channel: str) -> None:
    inst = book_id(channel)
    store = OrderBookStore(channel, inst)
    assert not store.incremental
    kw = {"channel": channel, "inst_id": inst}
    store.apply(push(None, [["100", "1"], ["99", "1"]], [["101", "1"]], seqId=7, **kw))
    # even an "update" action replaces: every push of these channels is the whole book
    store.apply(push("update", [["98", "2"]], [["102", "1"]], seqId=9, prevSeqId=3, **kw))
    snap = store.snapshot()
    assert prices(snap.raw["bids"]) == ["98"] and prices(snap.raw["asks"]) == ["102"]
    assert store.seq_id == 9 and store.stats().snapshots == 2
    assert store.stats().updates == 0 and not store.stats().errors.total
    assert store.stats().unverified == 2  # books5 / bbo-tbt carry no checksum


@pytest.mark.parametrize("channel", sorted(INCREMENTAL_CHANNELS))
def test_incremental_channels_merge_updates_and_check_them(channel: str) -> None:
    inst = book_id(channel)
    kw = {"channel": channel, "inst_id": inst}
    store = OrderBookStore(channel, inst)
    assert store.incremental
    bids, asks = [["100", "1"], ["99", "1"]], [["101", "1"], ["102", "1"]]
    store.apply(
        push(
            "snapshot",
            bids,
            asks,
            prevSeqId=-1,
            seqId=10,
            checksum=book_checksum(bids, asks),
            **kw,
        )
    )
    merged_bids, merged_asks = [["100", "3"], ["98.5", "2"]], [["101", "1"], ["102", "1"]]
    store.apply(
        push(
            "update",
            [["99", "0"], ["100", "3"], ["98.5", "2"]],
            prevSeqId=10,
            seqId=12,
            checksum=book_checksum(merged_bids, merged_asks),
            **kw,
        )
    )
    snap = store.snapshot()
    assert prices(snap.raw["bids"]) == ["100", "98.5"]
    assert prices(snap.raw["asks"]) == ["101", "102"]
    assert snap.raw["bids"][0][1] == "3"
    stats = store.stats()
    assert (stats.snapshots, stats.updates, stats.verified) == (1, 1, 2)
    with pytest.raises(OrderBookSequenceError):  # a gap
        store.apply(push("update", [["97", "1"]], prevSeqId=13, seqId=14, **kw))
    assert not store.ready
    with pytest.raises(OrderBookNotReadyError):
        store.apply(push("update", [["97", "1"]], prevSeqId=12, seqId=14, **kw))


def test_incremental_push_without_action_is_a_snapshot() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(push(None, [["100", "1"]], [["101", "1"]]))
    assert store.ready and store.stats().snapshots == 1


def test_push_for_another_book_is_refused_untouched() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(push("snapshot", [["100", "1"]], [["101", "1"]]))
    with pytest.raises(ValidationError):
        store.apply(push("update", [["99", "1"]], inst_id="ETH-USDT"))
    with pytest.raises(ValidationError):
        store.apply(push("update", [["99", "1"]], channel="books5"))
    assert store.ready and prices(store.snapshot().raw["bids"]) == ["100"]


@pytest.mark.parametrize(
    "level",
    [["abc", "1", "0", "1"], ["nan", "1", "0", "1"], ["100", "", "0", "1"], ["100"], 5],
)
def test_malformed_level_raises_order_book_error_and_resets(level: Any) -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(push("snapshot", [["100", "1"]], [["101", "1"]]))
    msg = push("update")
    msg["data"][0]["bids"] = [level]
    with pytest.raises(OrderBookError) as info:
        store.apply(msg)
    assert type(info.value) is OrderBookDataError
    assert not store.ready and store.stats().errors.malformed == 1


def test_bad_construction_and_depth() -> None:
    with pytest.raises(ValidationError):
        OrderBookStore("tickers", "BTC-USDT")
    with pytest.raises(ValidationError):
        OrderBookStore("books", "")
    with pytest.raises(ValidationError):
        OrderBookStore("books", "BTC-USDT").snapshot(depth=-1)


def test_snapshot_is_a_deep_copy_with_depth_and_message_is_not_modified() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    msg = push("snapshot", [["100", "1"], ["99", "2"], ["98", "3"]], [["101", "1"]], seqId=4)
    original = copy.deepcopy(msg)
    store.apply(msg)
    assert msg == original
    msg["data"][0]["bids"][0][1] = "999"  # the caller reuses its message
    snap = store.snapshot(depth=2)
    # the model REST returns (GET /api/v5/market/books), with the store's identity
    assert isinstance(snap, OrderBook)
    assert (snap.inst_id, snap.seq_id, snap.ts) == ("BTC-USDT", 4, 1700000000000)
    assert snap.bids == (BookLevel(D("100"), D("1"), 1), BookLevel(D("99"), D("2"), 1))
    assert snap.asks == (BookLevel(D("101"), D("1"), 1),)
    assert snap.best_bid == snap.bids[0] and snap.best_ask == snap.asks[0]
    assert snap.raw == {  # the wire item, exact strings, as a REST books item
        "bids": [["100", "1", "0", "1"], ["99", "2", "0", "1"]],
        "asks": [["101", "1", "0", "1"]],
        "ts": "1700000000000",
        "seqId": 4,
    }
    rest = OrderBook.from_okx(snap.raw, inst_id="BTC-USDT")  # one shape with REST
    assert (rest.bids, rest.asks, rest.seq_id, rest.ts) == (
        snap.bids,
        snap.asks,
        snap.seq_id,
        snap.ts,
    )
    snap.raw["bids"][0][1] = "0"
    snap.raw["bids"].clear()
    assert store.snapshot().raw["bids"][0] == ["100", "1", "0", "1"]
    assert store.snapshot(depth=0).raw["bids"] == []


# The dict stats() returned before it was typed: to_dict() keeps it (keys and order).
OLD_STATS_KEYS = [
    "channel", "inst_id", "ready", "seq_id", "bids", "asks", "applied", "snapshots", "updates",
    "verified", "unverified", "resets", "sequence_resets", "crossed_snapshots", "errors",
]  # fmt: skip
OLD_ERROR_KEYS = ["sequence", "checksum", "not_ready", "malformed", "crossed"]


def test_reset_and_stats() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(push("snapshot", [["100", "1"]], [["101", "1"]], seqId=3))
    store.reset()
    assert not store.ready and store.seq_id is None and store.ts is None
    stats = store.stats()
    assert stats == StoreStats(
        channel="books",
        inst_id="BTC-USDT",
        ready=False,
        seq_id=None,
        bids=0,
        asks=0,
        applied=1,
        snapshots=1,
        updates=0,
        verified=0,
        unverified=1,
        resets=1,
        sequence_resets=0,
        crossed_snapshots=0,
        errors=BookErrorCounts(),
    )
    assert stats.to_dict() == {
        "channel": "books",
        "inst_id": "BTC-USDT",
        "ready": False,
        "seq_id": None,
        "bids": 0,
        "asks": 0,
        "applied": 1,
        "snapshots": 1,
        "updates": 0,
        "verified": 0,
        "unverified": 1,
        "resets": 1,
        "sequence_resets": 0,
        "crossed_snapshots": 0,
        "errors": {"sequence": 0, "checksum": 0, "not_ready": 0, "malformed": 0, "crossed": 0},
    }
    assert "BTC-USDT" in repr(store)


def test_stats_is_a_frozen_snapshot_whose_dict_has_the_old_shape() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    store.apply(push("snapshot", [["100", "1"], ["99", "2"]], [["101", "1"]], seqId=3))
    with pytest.raises(OrderBookSequenceError):
        store.apply(push("update", [["98", "1"]], prevSeqId=7, seqId=8))
    store.apply(push("snapshot", [["100", "1"]], [["101", "1"], ["102", "1"]], seqId=9))
    stats = store.stats()
    assert okx_sync.StoreStats is StoreStats and isinstance(stats.errors, BookErrorCounts)
    assert (stats.ready, stats.seq_id, stats.bids, stats.asks) == (True, 9, 1, 2)
    assert (stats.snapshots, stats.resets) == (2, 1)
    assert stats.errors == BookErrorCounts(sequence=1) and stats.errors.total == 1
    d = stats.to_dict()
    assert list(d) == OLD_STATS_KEYS and list(d["errors"]) == OLD_ERROR_KEYS
    assert d["errors"] == {**dict.fromkeys(OLD_ERROR_KEYS, 0), "sequence": 1}
    assert (d["seq_id"], d["bids"], d["asks"], d["ready"]) == (9, 1, 2, True)
    assert json.loads(json.dumps(d)) == d
    d["errors"]["sequence"] = 5  # a copy: the snapshot is untouched
    assert stats.errors.sequence == 1 and stats.to_dict()["errors"]["sequence"] == 1
    for record, field in ((stats, "applied"), (stats, "errors"), (stats.errors, "sequence")):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(record, field, 0)
        assert not hasattr(record, "__dict__")  # slotted
    store.reset()  # a snapshot is a copy of one moment, not a live view
    assert stats.ready and stats.resets == 1 and store.stats().resets == 2


def test_best_levels_and_snapshot_types_ready_or_not() -> None:
    store = OrderBookStore("books", "BTC-USDT")
    empty = store.snapshot()
    assert empty == OrderBook(inst_id="BTC-USDT") and empty.seq_id is None and empty.ts is None
    assert store.best_bid() is None and store.best_ask() is None
    store.apply(push("snapshot", [["100", "1", "0", "7"]], [["101.5", "2.25", "0", "3"]], seqId=9))
    bid, ask = store.best_bid(), store.best_ask()
    assert isinstance(bid, BookLevel) and isinstance(ask, BookLevel)
    assert (bid.px, bid.sz, bid.orders) == (D("100"), D("1"), 7)
    assert (ask.px, ask.sz, ask.orders) == (D("101.5"), D("2.25"), 3)
    snap = store.snapshot()
    assert snap.best_bid == bid and snap.best_ask == ask and snap.seq_id == 9
    store.reset()  # not ready: the same empty shape again
    assert store.snapshot() == OrderBook(inst_id="BTC-USDT") and store.best_bid() is None
    # spread books send [px, sz, numOrders]
    sprd = OrderBookStore("sprd-books5", "BTC-USDT_BTC-USDT-SWAP")
    sprd.apply(
        push(
            None,
            [["-5", "10", "2"]],
            [["-4.5", "3", "1"]],
            channel="sprd-books5",
            inst_id="BTC-USDT_BTC-USDT-SWAP",
        )
    )
    assert sprd.best_bid() == BookLevel(D("-5"), D("10"), 2)
    assert sprd.snapshot().inst_id == "BTC-USDT_BTC-USDT-SWAP"


def updates_of(msg: dict[str, Any]) -> list[BookUpdate]:
    """What ``ws.on(channel, fn)`` hands ``fn`` for this push: one BookUpdate per item."""
    build = push_parser(msg["arg"]["channel"])
    assert build is not None
    return [build(msg["arg"], item, msg.get("action")) for item in msg["data"]]


def test_apply_takes_the_typed_book_update_too() -> None:
    pushes = [
        push("snapshot", [["100", "1"], ["99", "2"]], [["101", "1"]], seqId=1, prevSeqId=-1),
        push("update", [["99", "0"], ["98", "5"]], [["100.5", "1"]], seqId=2, prevSeqId=1),
        push("update", [], [["101", "0"]], seqId=3, prevSeqId=2),
    ]
    by_dict, by_model = OrderBookStore("books", "BTC-USDT"), OrderBookStore("books", "BTC-USDT")
    for msg in pushes:
        by_dict.apply(msg)
        for update in updates_of(msg):
            assert isinstance(update, BookUpdate)
            by_model.apply(update)
    assert by_model.snapshot() == by_dict.snapshot()
    assert by_model.snapshot().raw == by_dict.snapshot().raw
    assert by_model.stats() == by_dict.stats()
    # the same checks as for the dict: a gap raises and resets
    (gap,) = updates_of(push("update", [["97", "1"]], seqId=9, prevSeqId=7))
    with pytest.raises(OrderBookSequenceError):
        by_model.apply(gap)
    assert not by_model.ready and by_model.stats().errors.sequence == 1
    # an update of another instrument or channel is refused before touching the book
    by_model.apply(updates_of(pushes[0])[0])
    for other in (
        push("update", [["1", "1"]], inst_id="ETH-USDT", seqId=2, prevSeqId=1),
        push("snapshot", [["1", "1"]], channel="books5"),
    ):
        with pytest.raises(ValidationError):
            by_model.apply(updates_of(other)[0])
    assert by_model.ready and by_model.seq_id == 1
    # snapshot-only channel: every BookUpdate replaces the book
    top = OrderBookStore("books5", "BTC-USDT")
    for msg in (push(None, [["5", "1"]], [["6", "1"]], channel="books5"),
                push(None, [["4", "1"]], [["7", "1"]], channel="books5")):  # fmt: skip
        top.apply(updates_of(msg)[0])
    assert top.best_bid() == BookLevel(D("4"), D("1"), 1) and len(top.snapshot().bids) == 1
