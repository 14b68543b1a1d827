"""The signed-call hot path's shortcuts keep its checks: the per-second timestamp text,
the checked-header-name cache, the dot-segment check only when a dot may be there."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from okx_sync.auth import iso_timestamp
from okx_sync.errors import ValidationError
from okx_sync.rest import transport
from okx_sync.rest.prepare import check_path as _check_path


def _reference(epoch_ms: int) -> str:
    dt = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


@pytest.mark.parametrize(
    "sequence",
    [
        [1_607_418_537_715, 1_607_418_537_999, 1_607_418_538_000, 1_607_418_537_001],
        [0, 999, 1000, 86_399_999, 86_400_000],
        [1_765_000_000_123, 1_765_000_000_123, 1_765_000_061_005],
    ],
)
def test_iso_timestamp_matches_the_reference_across_second_changes(sequence: list[int]) -> None:
    assert [iso_timestamp(ms) for ms in sequence] == [_reference(ms) for ms in sequence]


def test_request_head_still_refuses_bad_names_after_good_ones_are_cached() -> None:
    good = {"OK-ACCESS-KEY": "k", "Content-Type": "application/json"}
    head = transport.request_head("GET", "/api/v5/x", "h", good, None)
    assert b"OK-ACCESS-KEY: k\r\n" in head and b"Host: h\r\n" in head
    assert "OK-ACCESS-KEY" in transport._VALID_NAMES
    with pytest.raises(ValueError, match="invalid header name"):
        transport.request_head("GET", "/api/v5/x", "h", {**good, "Bad Name": "v"}, None)
    assert "Bad Name" not in transport._VALID_NAMES
    with pytest.raises(ValueError, match="CR, LF or NUL"):  # values are checked every time
        transport.request_head("GET", "/api/v5/x", "h", {"OK-ACCESS-KEY": "a\r\nb"}, None)


def test_header_name_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "_VALID_NAMES", set())
    for i in range(transport._VALID_NAMES_MAX + 50):
        transport.request_head("GET", "/api/v5/x", "h", {f"X-Name-{i}": "v"}, None)
    assert len(transport._VALID_NAMES) == transport._VALID_NAMES_MAX


@pytest.mark.parametrize(
    "path", ["/api/v5/../x", "/api/v5/%2e%2e/x", "/api/v5/./x", "/api/v5/%2E/x"]
)
def test_dot_segments_are_still_refused(path: str) -> None:
    with pytest.raises(ValidationError, match="segment"):
        _check_path(path)


def test_plain_paths_pass() -> None:
    _check_path("/api/v5/account/balance")
    _check_path("/api/v5/market/index-tickers")
