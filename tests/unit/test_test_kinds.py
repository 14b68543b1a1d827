"""The suite's own layout: a test's kind is the directory its file sits in
(``tests/unit``, ``tests/integration``, ``tests/drills``, ``tests/examples``)."""

from __future__ import annotations

import pytest
from conftest import KINDS, TESTS, kind_of


def test_every_test_file_sits_in_a_kind_directory() -> None:
    files = sorted(TESTS.rglob("test_*.py"))
    assert len(files) > 100
    outside = [str(p.relative_to(TESTS)) for p in files if kind_of(p) is None]
    assert outside == []
    assert {kind_of(p) for p in files} == set(KINDS)
    names = [p.name for p in files]
    assert len(names) == len(set(names)), "test file names are unique across the kinds"


def test_kind_of_is_the_directory_directly_under_tests() -> None:
    assert kind_of(TESTS / "unit" / "test_x.py") == "unit"
    assert kind_of(TESTS / "drills") == "drills"
    assert kind_of(TESTS / "test_x.py") is None  # a stray file: collection fails on it
    assert kind_of(TESTS / "unit" / "deeper" / "test_x.py") is None
    assert kind_of(TESTS.parent / "unit" / "test_x.py") is None


def test_a_test_carries_its_kind_as_a_marker(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("unit") is not None
    assert all(request.node.get_closest_marker(k) is None for k in KINDS if k != "unit")
