"""OrderBookStore against real recorded OKX books (../shared/realdata, INDEX.md §1-§7)."""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from okx_sync.book import OrderBookStore
from okx_sync.errors import (
    OrderBookChecksumError,
    OrderBookCrossedError,
    OrderBookNotReadyError,
)


def cryptofeed_books(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The ``books`` pushes of cryptofeed's OKX.ws.1.0, per instId, in received order.

    Received frames are ``<time>: {json}``; sent frames and the connect line
    start with the URL (``wss://... <- <time>: ...``).
    """
    by_inst: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        stamp, _, body = line.partition(": ")
        if stamp.startswith("wss://") or not body.startswith("{"):
            continue
        frame = json.loads(body)
        arg = frame.get("arg", {})
        if arg.get("channel") == "books" and "data" in frame:
            by_inst[arg["instId"]].append(frame)
    return dict(by_inst)


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def stream() -> dict[str, list[dict[str, Any]]]:
    from conftest import realdata_path

    return cryptofeed_books(realdata_path("cryptofeed", "OKX.ws.1.0"))


def replay(inst_id: str, frames: list[dict[str, Any]]) -> OrderBookStore:
    store = OrderBookStore("books", inst_id)
    for frame in frames:
        store.apply(frame)
    return store


def test_all_290_recorded_checksums_verify(stream: dict[str, list[dict[str, Any]]]) -> None:
    counts = {}
    for inst_id, frames in stream.items():
        store = replay(inst_id, frames)
        stats = store.stats()
        assert not stats.errors.total, stats
        assert stats.unverified == 0 and stats.snapshots == 1
        counts[inst_id] = stats.verified
        snap = store.snapshot()
        assert store.best_bid() is not None and store.best_ask() is not None
        assert store.best_bid().px < store.best_ask().px  # type: ignore[union-attr]
        assert len(snap.raw["bids"]) == stats.bids and len(snap.raw["asks"]) == stats.asks
    assert counts == {"BTC-USD-220527": 99, "UNI-USD-SWAP": 93, "BTC-USDT": 98}


def test_a_dropped_update_fails_the_next_checksum(
    stream: dict[str, list[dict[str, Any]]],
) -> None:
    # Every first update of each instrument, and every update of BTC-USDT (400-level
    # book), when dropped, makes the very next push fail its checksum.
    for inst_id, frames in stream.items():
        drops = range(1, len(frames) - 1) if inst_id == "BTC-USDT" else [1]
        for drop in drops:
            store = replay(inst_id, frames[:drop])
            with pytest.raises(OrderBookChecksumError):
                store.apply(frames[drop + 1])
            assert not store.ready
        with pytest.raises(OrderBookNotReadyError):
            store.apply(frames[-1])


@pytest.mark.parametrize("inst_id", ["BTC-USDT", "UNI-USD-SWAP"])
def test_a_reformatted_price_fails_the_checksum(
    stream: dict[str, list[dict[str, Any]]], inst_id: str
) -> None:
    frames = stream[inst_id]
    store = replay(inst_id, frames[:5])
    px, *rest = store.snapshot(depth=1).raw["bids"][0]
    respelled = px + "0" if "." in px else px + ".0"  # "0.1" -> "0.10": same number
    # the next push re-sends the best bid unchanged but for the price's spelling
    frame = copy.deepcopy(frames[5])
    frame["data"][0]["bids"].append([respelled, *rest])
    with pytest.raises(OrderBookChecksumError) as info:
        store.apply(frame)
    assert f"{respelled}:{rest[0]}" in info.value.check_string
    # as recorded, the same push verifies
    assert replay(inst_id, frames[:6]).stats().verified == 6


def test_okcoin_snapshot_then_update(realdata: Any) -> None:
    frames = jsonl(
        realdata.path("gocryptotrader", "okcoin_books_BTC-USD_snapshot_then_update.jsonl")
    )
    store = replay("BTC-USD", frames)
    assert store.stats().verified == 2
    assert store.best_ask() is not None and str(store.best_ask().px) == "30382.61"  # type: ignore[union-attr]


def test_gocryptotrader_okx_snapshot(realdata: Any) -> None:
    frames = jsonl(
        realdata.path("gocryptotrader", "okx_books_snapshot_2022-08-06_with_placeholder.jsonl")
    )
    store = OrderBookStore("books", "%v")  # the Go placeholder is the recorded instId
    store.apply(frames[0])
    assert store.stats().verified == 1


def test_arkin_snapshot_with_seq_id_and_lone_update(realdata: Any) -> None:
    frames = jsonl(realdata.path("arkin", "okex_books_from_rust_tests.jsonl"))
    snapshot = next(f for f in frames if f["action"] == "snapshot")
    update = next(f for f in frames if f["action"] == "update")
    store = OrderBookStore("books", "ETH-USD-240628-1400-P")
    store.apply(snapshot)
    assert store.seq_id == 7966474 and store.stats().verified == 1
    lone = OrderBookStore("books", "STX-USDT-SWAP")
    with pytest.raises(OrderBookNotReadyError):
        lone.apply(update)


def test_okj_sequence_chain_and_bbo(realdata: Any) -> None:
    frames = jsonl(realdata.path("okj-probe-doc", "okj_v5_frames_trimmed.jsonl"))
    xrp = [f for f in frames if f.get("arg", {}).get("instId") == "XRP-JPY"]
    # quoted frames are cut to 3 levels: their checksums cannot reproduce
    with pytest.raises(OrderBookChecksumError):
        OrderBookStore("books", "XRP-JPY").apply(xrp[0])
    store = OrderBookStore("books", "XRP-JPY", verify_checksum=False)
    for frame in xrp:
        store.apply(frame)
    assert store.seq_id == 4588911
    assert [lvl[0] for lvl in store.snapshot().raw["asks"]] == ["252.52", "252.54", "252.77"]
    bbo = next(f for f in frames if f.get("arg", {}).get("channel") == "bbo-tbt")
    top = OrderBookStore("bbo-tbt", "BTC-JPY")
    top.apply(bbo)
    assert top.seq_id == 27270896 and top.ready
    assert str(top.best_bid().px) == "13615496"  # type: ignore[union-attr]


def test_docs_example_checksum_is_fake_but_chain_holds(realdata: Any) -> None:
    snap = json.loads(realdata.path("nautilus", "ws_books_snapshot.json").read_text())
    update = json.loads(realdata.path("nautilus", "ws_books_update.json").read_text())
    with pytest.raises(OrderBookChecksumError) as info:
        OrderBookStore("books", "BTC-USDT").apply(snap)
    assert (info.value.expected, info.value.got) == (-855196043, -2102840145)
    store = OrderBookStore("books", "BTC-USDT", verify_checksum=False)
    store.apply(snap)
    store.apply(update)
    assert store.seq_id == 123457 and store.stats().updates == 1


def test_ccxt_recorded_books5(realdata: Any) -> None:
    data = json.loads(realdata.path("ccxt", "ws_okx_fixture_messages_extract.json").read_text())
    pushes = [
        m
        for case in data["cases"]
        for m in case["messages"]
        if isinstance(m, dict) and m.get("arg", {}).get("channel") == "books5" and "data" in m
    ]
    stores: dict[str, OrderBookStore] = {}
    for msg in pushes:
        inst_id = msg["arg"]["instId"]
        store = stores.setdefault(inst_id, OrderBookStore("books5", inst_id))
        store.apply(msg)
        snap = store.snapshot()
        assert snap.seq_id == msg["data"][0]["seqId"]
        assert (
            snap.raw["bids"] == msg["data"][0]["bids"]
            and snap.raw["asks"] == msg["data"][0]["asks"]
        )
    assert pushes and all(s.stats().unverified == s.stats().applied for s in stores.values())


def zeroed(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The frames as OKX sends them since 2026-06: checksum 0 (nothing vouches for a book)."""
    out = copy.deepcopy(frames)
    for frame in out:
        for item in frame["data"]:
            item["checksum"] = 0
    return out


def test_recorded_books_never_trip_the_data_or_crossing_checks(
    stream: dict[str, list[dict[str, Any]]],
) -> None:
    for inst_id, frames in stream.items():
        store = OrderBookStore("books", inst_id)
        for frame in zeroed(frames):
            store.apply(frame)
            top = store.snapshot(1)
            assert top.best_bid is not None and top.best_ask is not None
            assert top.best_bid.px < top.best_ask.px
        stats = store.stats()
        assert not stats.errors.total, stats
        assert stats.unverified == len(frames) and stats.crossed_snapshots == 0


def test_without_checksums_the_crossing_check_catches_dropped_updates(
    stream: dict[str, list[dict[str, Any]]],
) -> None:
    # BTC-USDT: drop each update in turn; some drops leave a stale level that the
    # next update's new best price crosses, which only the crossing check can see now
    frames = zeroed(stream["BTC-USDT"])
    caught = 0
    for drop in range(1, len(frames) - 1):
        store = replay("BTC-USDT", frames[:drop])
        try:
            store.apply(frames[drop + 1])
        except OrderBookCrossedError as exc:
            caught += 1
            assert exc.inst_id == "BTC-USDT" and not store.ready
    assert caught == 17  # of 96 drops: the next update crosses a stale level
