"""OrderBookStore refuses what it cannot trust: malformed pushes (OrderBookDataError),
updates that cross the book (OrderBookCrossedError); and merges huge updates outside the
readers' lock with the same result as the in-place merge."""

from __future__ import annotations

import copy
import random
import threading
from decimal import Decimal
from typing import Any

import pytest

from okx_sync.book import OrderBookStore
from okx_sync.book.side import Side
from okx_sync.checksum import book_checksum
from okx_sync.errors import (
    OrderBookChecksumError,
    OrderBookCrossedError,
    OrderBookDataError,
    OrderBookError,
)
from okx_sync.models import BookLevel

D = Decimal
INST = "BTC-USDT"


def push(action: str | None, bids: Any = (), asks: Any = (), **fields: Any) -> dict[str, Any]:
    """A ``books`` push; ``[px, sz]`` levels get the ``"0", numOrders`` tail."""
    item = {
        "bids": [
            lvl if not isinstance(lvl, list) or len(lvl) != 2 else [*lvl, "0", "1"] for lvl in bids
        ],
        "asks": [
            lvl if not isinstance(lvl, list) or len(lvl) != 2 else [*lvl, "0", "1"] for lvl in asks
        ],
        "ts": "1700000000000",
        **fields,
    }
    msg: dict[str, Any] = {"arg": {"channel": "books", "instId": INST}, "data": [item]}
    if action is not None:
        msg["action"] = action
    return msg


def ready_store(**kw: Any) -> OrderBookStore:
    store = OrderBookStore("books", INST, **kw)
    store.apply(
        push("snapshot", [["100", "1"], ["99", "2"]], [["101", "1"], ["102", "2"]], seqId=1)
    )
    return store


BAD_LEVELS = {
    "size not a number": ["100", "abc", "0", "1"],
    "size NaN": ["100", "NaN", "0", "1"],
    "size nan lower": ["100", "nan", "0", "1"],
    "size infinite": ["100", "inf", "0", "1"],
    "size overflows": ["100", "1e400", "0", "1"],
    "size negative": ["100", "-1", "0", "1"],
    "size empty": ["100", "", "0", "1"],
    "size not a string": ["100", 1, "0", "1"],
    "size bytes": ["100", b"1", "0", "1"],
    "price not a number": ["abc", "1", "0", "1"],
    "price NaN": ["NaN", "1", "0", "1"],
    "price infinite": ["Infinity", "1", "0", "1"],
    "price negative": ["-5", "1", "0", "1"],
    "price not a string": [100, "1", "0", "1"],
    "price None": [None, "1", "0", "1"],
    "long price not a number": ["1234567890123456abc", "1", "0", "1"],
    "long price signalling NaN": ["sNaN0000000000000000", "1", "0", "1"],
    "long price negative": ["-1234567890.1234567", "1", "0", "1"],
    "level a string": "100",
    "level two chars": "12",
    "level a number": 5,
    "level a dict": {"px": "100", "sz": "1"},
    "level too short": ["100"],
    "level empty": [],
}


@pytest.mark.parametrize("action", ["snapshot", "update"])
@pytest.mark.parametrize("name", sorted(BAD_LEVELS))
def test_a_malformed_level_is_refused_never_stored(name: str, action: str) -> None:
    store = ready_store()
    bad = BAD_LEVELS[name]
    msg = push(action, [["98", "1"], bad], [["103", "1"]], seqId=2, prevSeqId=1)
    original = copy.deepcopy(msg)
    with pytest.raises(OrderBookDataError) as info:
        store.apply(msg)
    assert info.value.inst_id == INST and isinstance(info.value, OrderBookError)
    assert msg == original  # the caller's message is not modified
    stats = store.stats()
    assert stats.errors.malformed == 1 and stats.errors.total == 1
    assert not store.ready and stats.resets == 1
    # readers see an empty book, never the bad level (nor a raw InvalidOperation)
    assert store.best_bid() is None and store.best_ask() is None
    assert store.snapshot().bids == () and store.checksum_string() == ""
    # the next snapshot brings it back
    store.apply(push("snapshot", [["100", "1"]], [["101", "1"]], seqId=5))
    assert store.ready and store.best_bid() == BookLevel(D("100"), D("1"), 1)


def test_a_snapshot_with_size_abc_is_not_accepted_as_in_sync() -> None:
    # today's bug: accepted as ready, best_bid() later raised decimal.InvalidOperation
    store = OrderBookStore("books", INST)
    with pytest.raises(OrderBookDataError) as info:
        store.apply(push("snapshot", [["100", "abc"]], [["101", "1"]], seqId=1))
    assert info.value.field == "bids" and "abc" in str(info.value)
    assert not store.ready and store.best_bid() is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ts", "abc"),
        ("ts", "12.5"),
        ("ts", 1700000000000.5),
        ("ts", ["1"]),
        ("seqId", "12"),
        ("seqId", 12.0),
        ("seqId", None),
        ("prevSeqId", "1"),
        ("checksum", "abc"),
        ("checksum", 1.5),
    ],
)
def test_bad_ts_seq_id_prev_seq_id_or_checksum_is_refused(field: str, value: Any) -> None:
    store = ready_store()
    msg = push("update", [["98", "1"]], seqId=2, prevSeqId=1)
    msg["data"][0][field] = value
    if value is None:  # a present-but-null seqId is "absent": accepted
        store.apply(msg)
        assert store.ready and store.seq_id == 1
        return
    with pytest.raises(OrderBookDataError) as info:
        store.apply(msg)
    assert info.value.field == field
    assert not store.ready and store.stats().errors.malformed == 1


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda m: m.update(action="delete"), id="unknown action"),
        pytest.param(lambda m: m.update(action=["update"]), id="action not a string"),
        pytest.param(lambda m: m.update(data={"bids": []}), id="data a dict"),
        pytest.param(lambda m: m.update(data="[]"), id="data a string"),
        pytest.param(lambda m: m.pop("data"), id="data missing"),
        pytest.param(lambda m: m.update(data=["item"]), id="item a string"),
        pytest.param(lambda m: m.update(data=[None]), id="item None"),
        pytest.param(lambda m: m["data"][0].update(bids="98:1"), id="bids a string"),
        pytest.param(lambda m: m["data"][0].update(asks={"98": "1"}), id="asks a dict"),
        pytest.param(lambda m: m.update(arg="books"), id="arg a string"),
    ],
)
def test_a_malformed_push_is_refused(mutate: Any) -> None:
    store = ready_store()
    msg = push("update", [["98", "1"]], seqId=2, prevSeqId=1)
    mutate(msg)
    with pytest.raises(OrderBookDataError):
        store.apply(msg)
    assert not store.ready and store.stats().errors.malformed == 1


@pytest.mark.parametrize("message", [None, "push", ["push"], 5, b"{}"])
def test_a_message_that_is_not_an_object_is_refused(message: Any) -> None:
    store = ready_store()
    with pytest.raises(OrderBookDataError) as info:
        store.apply(message)
    assert info.value.field == "push"
    assert not store.ready and store.stats().errors.malformed == 1


def test_valid_edge_values_are_accepted() -> None:
    store = ready_store()
    store.apply(push("update", [["98", "0.000"], ["99", "1e-8"], ["0", "1"]], seqId=2, prevSeqId=1))
    assert [lvl.px for lvl in store.snapshot().bids] == [D("100"), D("99"), D("0")]
    store.apply(push("update", [["99", "-0"]], seqId=3, prevSeqId=2))  # a spelling of zero
    assert [lvl.px for lvl in store.snapshot().bids] == [D("100"), D("0")]
    spread = OrderBookStore("sprd-books5", "BTC-USDT_BTC-USDT-SWAP")
    spread.apply({"arg": {"channel": "sprd-books5", "sprdId": "BTC-USDT_BTC-USDT-SWAP"},
                  "data": [{"bids": [["-2.5", "1", "1"]], "asks": [["-1.5", "1", "1"]],
                            "ts": "1"}]})  # fmt: skip
    assert spread.best_bid() == BookLevel(D("-2.5"), D("1"), 1)
    with pytest.raises(OrderBookDataError):  # negative prices: spreads only
        store.apply(push("update", [["-2.5", "1"]], seqId=4, prevSeqId=3))


# ----------------------------------------------------------------------------- crossed


def test_an_update_that_crosses_the_book_is_refused() -> None:
    store = ready_store()
    with pytest.raises(OrderBookCrossedError) as info:
        store.apply(push("update", [["101.5", "1"]], [], seqId=2, prevSeqId=1))
    assert (info.value.bid, info.value.ask, info.value.inst_id) == ("101.5", "101", INST)
    stats = store.stats()
    assert stats.errors.crossed == 1 and not store.ready and store.best_bid() is None


def test_a_locked_book_counts_as_crossed() -> None:
    store = ready_store()
    with pytest.raises(OrderBookCrossedError):
        store.apply(push("update", [], [["100", "3"]], seqId=2, prevSeqId=1))


def test_best_prices_may_move_without_crossing() -> None:
    store = ready_store()
    store.apply(
        push("update", [["100", "0"], ["100.5", "1"]], [["101", "0"]], seqId=2, prevSeqId=1)
    )
    assert store.best_bid().px == D("100.5") and store.best_ask().px == D("102")  # type: ignore[union-attr]


def test_a_crossed_snapshot_is_okx_state_kept_until_the_book_uncrosses() -> None:
    # pre-open (call auction): OKX's best ask may be below its best bid
    store = OrderBookStore("books", INST)
    store.apply(
        push("snapshot", [["101", "1"], ["99", "1"]], [["100", "1"], ["102", "1"]], seqId=1)
    )
    assert store.ready and store.stats().crossed_snapshots == 1
    store.apply(push("update", [["101.5", "1"]], seqId=2, prevSeqId=1))  # still crossed: kept
    assert store.best_bid().px == D("101.5")  # type: ignore[union-attr]
    # the auction ends: uncrossed; from then on a crossing update is refused again
    store.apply(push("update", [["101.5", "0"], ["101", "0"]], seqId=3, prevSeqId=2))
    assert store.best_bid().px == D("99") and store.best_ask().px == D("100")  # type: ignore[union-attr]
    with pytest.raises(OrderBookCrossedError):
        store.apply(push("update", [["100", "1"]], seqId=4, prevSeqId=3))
    assert store.stats().errors.crossed == 1


def test_a_verified_checksum_vouches_for_a_crossed_update() -> None:
    from okx_sync.checksum import book_checksum

    store = ready_store()
    bids = [["101.5", "1", "0", "1"], ["100", "1", "0", "1"], ["99", "2", "0", "1"]]
    asks = [["101", "1", "0", "1"], ["102", "2", "0", "1"]]
    store.apply(push("update", [["101.5", "1"]], seqId=2, prevSeqId=1,
                     checksum=book_checksum(bids, asks)))  # fmt: skip
    assert store.ready and store.stats().verified == 1
    wrong = ready_store()  # and a wrong checksum is a checksum error, not a crossing
    with pytest.raises(OrderBookChecksumError):
        wrong.apply(push("update", [["101.5", "1"]], seqId=2, prevSeqId=1, checksum=12345))


def test_crossing_check_off_by_option_and_on_books_elp() -> None:
    off = ready_store(verify_uncrossed=False)
    off.apply(push("update", [["101.5", "1"]], seqId=2, prevSeqId=1))
    assert off.ready and off.best_bid().px == D("101.5")  # type: ignore[union-attr]
    elp = OrderBookStore("books-elp", INST)  # invalid ELP parts may cross: off by default
    snap = push("snapshot", [["100", "1"]], [["101", "1"]], seqId=1)
    snap["arg"]["channel"] = "books-elp"
    elp.apply(snap)
    update = push("update", [["101.5", "1"]], seqId=2, prevSeqId=1)
    update["arg"]["channel"] = "books-elp"
    elp.apply(update)
    assert elp.ready
    on = OrderBookStore("books-elp", INST, verify_uncrossed=True)
    on.apply(snap)
    with pytest.raises(OrderBookCrossedError):
        on.apply(update)


# ----------------------------------------------------------------------------- large updates


def random_book(rng: random.Random, n: int, base: int, sign: int) -> list[list[str]]:
    pxs = sorted({base + sign * rng.randint(1, 20 * n) / 100 for _ in range(n)}, reverse=sign < 0)
    return [[f"{px:.2f}", str(rng.randint(1, 9)), "0", "1"] for px in pxs]


def random_update(
    rng: random.Random, book: list[list[str]], k: int, base: int, sign: int
) -> list[Any]:
    out: list[Any] = []
    for _ in range(k):
        r = rng.random()
        if r < 0.3 and book:  # change or delete a stored level, sometimes respelled
            px = rng.choice(book)[0]
            if rng.random() < 0.2:
                px += "0"
            out.append([px, rng.choice(["0", "0.0", "3", "4"]), "0", "2"])
        else:  # new level (maybe repeated in this update: last wins)
            px = f"{base + sign * rng.randint(1, 40 * k) / 100:.2f}"
            out.append([px, rng.choice(["1", "2", "0"]), "0", "1"])
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_huge_update_merges_like_small_ones(seed: int) -> None:
    rng = random.Random(seed)
    bids = random_book(rng, 400, 50000, -1)
    asks = random_book(rng, 400, 50001, +1)
    snap = push("snapshot", bids, asks, seqId=1)
    up_bids = random_update(rng, bids, 3000, 50000, -1)
    up_asks = random_update(rng, asks, 3000, 50001, +1)
    if seed == 3:  # one price too long for float keys: the store turns to Decimal keys
        up_bids.append(["49000.123456789012345", "1", "0", "1"])
    whole = OrderBookStore("books", INST)
    whole.apply(snap)
    whole.apply(push("update", up_bids, up_asks, seqId=2, prevSeqId=1))
    chunked = OrderBookStore("books", INST)
    chunked.apply(snap)
    seq = 1
    for i in range(0, 3001, 20):  # 20 levels a push: merged in place
        chunked.apply(push("update", up_bids[i : i + 20], up_asks[i : i + 20],
                           seqId=seq + 1, prevSeqId=seq))  # fmt: skip
        seq += 1
    assert whole.snapshot().raw["bids"] == chunked.snapshot().raw["bids"]
    assert whole.snapshot().raw["asks"] == chunked.snapshot().raw["asks"]
    assert whole.checksum_string() == chunked.checksum_string()
    assert whole.stats().updates == 1 and not whole.stats().errors.total
    # and it is still a working book: small updates go on merging correctly
    best = whole.snapshot(1).raw["bids"][0][0]
    whole.apply(push("update", [[best, "0"]], seqId=3, prevSeqId=2))
    chunked.apply(push("update", [[best, "0"]], seqId=seq + 1, prevSeqId=seq))
    assert whole.snapshot().raw == {**chunked.snapshot().raw, "seqId": 3}


@pytest.mark.parametrize("seed", [4, 5])
def test_checksums_stay_verified_through_every_kind_of_merge(seed: int) -> None:
    # The store keeps each level's "px:sz" check text in step with its merges (in
    # place, the bulk merge, the switch to Decimal keys): a text out of step would
    # fail the next verification. A store that does not verify computes the book.
    rng = random.Random(seed)
    bids = random_book(rng, 300, 50000, -1)
    asks = random_book(rng, 300, 50001, +1)
    reference = OrderBookStore("books", INST, verify_checksum=False)
    store = OrderBookStore("books", INST)

    def apply_both(msg: dict[str, Any]) -> None:
        reference.apply(msg)
        top = reference.snapshot(25).raw
        msg["data"][0]["checksum"] = book_checksum(top["bids"], top["asks"])
        store.apply(msg)
        assert store.checksum_string() == reference.checksum_string()
        assert store.snapshot().raw == reference.snapshot().raw

    apply_both(push("snapshot", bids, asks, seqId=1))
    for seq, k in enumerate([5, 30, 3000, 10, 8, 1], start=1):  # 3000 a side: the bulk merge
        up_bids = random_update(rng, bids, k, 50000, -1)
        up_asks = random_update(rng, asks, k, 50001, +1)
        if seq == 4:  # a price too long for float keys: Decimal keys from here on
            up_bids.append(["49000.123456789012345", "1", "0", "1"])
        apply_both(push("update", up_bids, up_asks, seqId=seq + 1, prevSeqId=seq))
    stats = store.stats()
    assert stats.verified == stats.applied == 7 and not stats.errors.total


def test_a_huge_update_with_a_bad_level_is_refused_whole() -> None:
    store = ready_store()
    levels = [[f"{90 - i / 1000:.3f}", "1"] for i in range(3000)]
    levels[2500] = [levels[2500][0], "abc"]
    with pytest.raises(OrderBookDataError) as info:
        store.apply(push("update", levels, seqId=2, prevSeqId=1))
    assert info.value.field == "bids"
    assert not store.ready and store.best_bid() is None
    assert store.stats().errors.malformed == 1


def test_a_huge_update_is_merged_while_readers_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # While the merge of a huge update runs, another thread reads the book (the old
    # one) without waiting for the merge to end.
    store = ready_store()
    merged = Side.merged
    seen: list[Any] = []

    def merged_while_reading(side: Any, *args: Any, **kw: Any) -> Any:
        reader = threading.Thread(target=lambda: seen.append(store.best_bid()), daemon=True)
        reader.start()
        reader.join(10)  # a reader blocked by the merge would still be waiting
        assert not reader.is_alive(), "a reader waited for the merge"
        return merged(side, *args, **kw)

    monkeypatch.setattr(Side, "merged", merged_while_reading)
    levels = [[f"{90 - i / 1000:.3f}", "1"] for i in range(3000)]
    store.apply(push("update", levels, seqId=2, prevSeqId=1))
    assert seen == [BookLevel(D("100"), D("1"), 1)]  # the book before the push
    assert store.stats().bids == 3002 and store.best_bid().px == D("100")  # type: ignore[union-attr]
