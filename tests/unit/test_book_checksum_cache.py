"""The store's cached check-string parts (each level's ``"px:sz"`` text, kept in step by
the merges) and its fast verification path agree with a checksum computed from scratch:
a seeded random walk of snapshots and updates (deletions, re-insertions at the top-25
boundary, sides shorter than 25, respelled prices) where every push carries the checksum
of the book computed independently, and one off-by-anything checksum is refused."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from okx_sync.book import OrderBookStore
from okx_sync.checksum import CHECKSUM_DEPTH, book_checksum
from okx_sync.errors import OrderBookChecksumError

INST = "BTC-USDT"


def push(action: str, bids: list[list[str]], asks: list[list[str]], **fields: Any) -> dict:
    item = {"bids": bids, "asks": asks, "ts": "1700000000000", **fields}
    return {"arg": {"channel": "books", "instId": INST}, "action": action, "data": [item]}


class Model:
    """The book kept the obvious way: price (Decimal) -> level, sorted on every read."""

    def __init__(self, bids: list[list[str]], asks: list[list[str]]) -> None:
        self.bids = {Decimal(lvl[0]): lvl for lvl in bids}
        self.asks = {Decimal(lvl[0]): lvl for lvl in asks}

    def side(self, name: str) -> dict[Decimal, list[str]]:
        return self.bids if name == "bids" else self.asks

    def apply(self, name: str, levels: list[list[str]]) -> None:
        side = self.side(name)
        for lvl in levels:
            if Decimal(lvl[1]) == 0:
                side.pop(Decimal(lvl[0]), None)
            else:
                side[Decimal(lvl[0])] = lvl

    def best_first(self, name: str) -> list[list[str]]:
        side = self.side(name)
        return [side[px] for px in sorted(side, reverse=name == "bids")]

    def checksum(self) -> int:
        return book_checksum(self.best_first("bids"), self.best_first("asks"))


def level(px: Decimal, size: int) -> list[str]:
    return [f"{px:.1f}", str(size), "0", "1"]


def random_snapshot(rng: random.Random) -> tuple[list[list[str]], list[list[str]]]:
    # sometimes a side shorter than CHECKSUM_DEPTH: the unequal interleave path
    n_bids = rng.choice([3, 24, 25, 26, 60])
    n_asks = rng.choice([3, 24, 25, 26, 60])
    bids = [level(Decimal(1000) - Decimal(i) / 2, rng.randint(1, 9)) for i in range(n_bids)]
    asks = [level(Decimal(1001) + Decimal(i) / 2, rng.randint(1, 9)) for i in range(n_asks)]
    return bids, asks


def random_side_update(rng: random.Random, model: Model, name: str) -> list[list[str]]:
    best = model.best_first(name)
    sign = -1 if name == "bids" else 1
    edge = Decimal(1000) if name == "bids" else Decimal(1001)
    out: list[list[str]] = []
    for _ in range(rng.randint(0, 12)):
        r = rng.random()
        if r < 0.25 and best:  # delete a stored level, often the 25th (the boundary)
            i = min(len(best) - 1, CHECKSUM_DEPTH - 1) if rng.random() < 0.4 else None
            lvl = best[i] if i is not None else rng.choice(best)
            out.append([lvl[0], rng.choice(["0", "0.0"]), "0", "0"])
        elif r < 0.45 and best:  # resize a stored level, sometimes respelled ("1000.50")
            px = rng.choice(best)[0]
            out.append([px + ("0" if rng.random() < 0.2 else ""), str(rng.randint(1, 9)), "0", "2"])
        elif r < 0.6:  # re-insert just around the top-25 boundary
            depth = CHECKSUM_DEPTH + rng.randint(-2, 2)
            px = edge + sign * Decimal(depth) / 2
            out.append(level(px, rng.randint(1, 9)))
        elif r < 0.7:  # delete a price that is not there: nothing happens
            out.append(level(edge + sign * Decimal(rng.randint(500, 600)) / 2, 0))
        else:  # a new level anywhere in the first 80, sometimes twice in this update
            px = edge + sign * Decimal(rng.randint(0, 80)) / 2
            out.append(level(px, rng.randint(0, 9)))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_cached_check_parts_match_a_checksum_from_scratch(seed: int) -> None:
    rng = random.Random(seed)
    store = OrderBookStore("books", INST)
    model = Model([], [])
    seq = 0
    for step in range(400):
        seq += 1
        if step == 0 or rng.random() < 0.02:  # a fresh snapshot now and then
            bids, asks = random_snapshot(rng)
            model = Model(bids, asks)
            msg = push("snapshot", bids, asks, seqId=seq, prevSeqId=-1)
        else:
            up_bids = random_side_update(rng, model, "bids")
            up_asks = random_side_update(rng, model, "asks")
            model.apply("bids", up_bids)
            model.apply("asks", up_asks)
            msg = push("update", up_bids, up_asks, seqId=seq, prevSeqId=seq - 1)
        msg["data"][0]["checksum"] = model.checksum()
        if model.best_first("bids") and model.best_first("asks"):
            # the walk keeps bids below asks: the crossed check must never fire
            assert Decimal(model.best_first("bids")[0][0]) < Decimal(model.best_first("asks")[0][0])
        store.apply(msg)  # raises OrderBookChecksumError if the cached parts drifted
        top = store.snapshot(CHECKSUM_DEPTH).raw
        assert book_checksum(top["bids"], top["asks"]) == msg["data"][0]["checksum"]
    stats = store.stats()
    assert stats.verified == stats.applied == 400
    assert not stats.errors.total


@pytest.mark.parametrize("delta", [1, -1, 1 << 32, -(1 << 32)])
def test_a_checksum_off_by_anything_is_refused(delta: int) -> None:
    # including the same CRC32 seen unsigned, or with bits above the 32 OKX signs
    bids = [level(Decimal(1000) - i, 1) for i in range(30)]
    asks = [level(Decimal(1001) + i, 1) for i in range(30)]
    good = book_checksum(bids, asks)
    store = OrderBookStore("books", INST)
    store.apply(push("snapshot", bids, asks, seqId=1, checksum=good))
    update = [["999.0", "5", "0", "1"]]
    bids[1] = update[0]
    right = book_checksum(bids, asks)
    with pytest.raises(OrderBookChecksumError):
        store.apply(push("update", update, [], seqId=2, prevSeqId=1, checksum=right + delta))
    assert not store.ready


def test_the_unsigned_spelling_of_a_negative_checksum_is_refused() -> None:
    for n in range(200):  # find a book whose checksum is negative (signed 32-bit)
        bids = [level(Decimal(1000) - i, 1 + n) for i in range(5)]
        asks = [level(Decimal(1001) + i, 1) for i in range(5)]
        signed = book_checksum(bids, asks)
        if signed < 0:
            break
    assert signed < 0
    store = OrderBookStore("books", INST)
    with pytest.raises(OrderBookChecksumError):
        store.apply(push("snapshot", bids, asks, seqId=1, checksum=signed + (1 << 32)))
    store.apply(push("snapshot", bids, asks, seqId=1, checksum=signed))
    assert store.ready and store.stats().verified == 1
