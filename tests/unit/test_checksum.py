"""Checksum vectors from okx-v5-facts.md §5.3 and the recorded docs examples."""

from __future__ import annotations

import json

import pytest

from okx_sync.checksum import book_checksum, checksum_of_string, checksum_string, interleaved


@pytest.mark.parametrize(
    "bids,asks,text,value",
    [
        (
            [["3366.1", "7"], ["3366", "6"]],
            [["3366.8", "9"], ["3368", "8"]],
            "3366.1:7:3366.8:9:3366:6:3368:8",
            -1881014294,
        ),
        (
            [["3366.1", "7"]],
            [["3366.8", "9"], ["3368", "8"], ["3372", "8"]],
            "3366.1:7:3366.8:9:3368:8:3372:8",
            831078360,
        ),
    ],
)
def test_doc_vectors(bids: list, asks: list, text: str, value: int) -> None:
    assert checksum_string(bids, asks) == text
    assert book_checksum(bids, asks) == value


def test_only_top_25_levels_count() -> None:
    bids = [[str(100 - i), "1"] for i in range(30)]
    asks = [[str(101 + i), "1"] for i in range(30)]
    assert checksum_string(bids, asks) == checksum_string(bids[:25], asks[:25])
    assert checksum_string(bids, asks).count(":") == 25 * 4 - 1


def test_signed_32_bit() -> None:
    assert checksum_of_string("") == 0
    assert -(2**31) <= checksum_of_string("x" * 100) < 2**31


def test_recorded_docs_examples(realdata) -> None:
    data = json.loads(
        realdata.path("docs-examples", "checksum_and_signature_examples.json").read_text()
    )
    checked = 0
    for ex in data["checksum_examples"]:
        if "check_string" in ex and "bids" in ex and ex.get("reproduces"):
            assert checksum_string(ex["bids"], ex["asks"]) == ex["check_string"]
            assert book_checksum(ex["bids"], ex["asks"]) == ex["computed"]
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize(
    ("bids", "asks", "depth", "order"),
    [
        ([1, 2, 3], [10, 20, 30], 25, [1, 10, 2, 20, 3, 30]),
        ([1, 2, 3], [10], 25, [1, 10, 2, 3]),
        ([1], [10, 20, 30], 25, [1, 10, 20, 30]),
        ([], [10, 20], 25, [10, 20]),
        ([1, 2, 3, 4], [10, 20, 30], 2, [1, 10, 2, 20]),
        ([1, 2, 3, 4], [10], 3, [1, 10, 2, 3]),
        ((1, 2), (10, 20, 30), 25, [1, 10, 2, 20, 30]),
    ],
)
def test_interleaved_order_of_any_items(bids: list, asks: list, depth: int, order: list) -> None:
    assert interleaved(bids, asks, depth) == order
