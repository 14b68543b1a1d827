"""README's "API at a glance" lists exactly ``okx_sync.__all__``: every exported name is
documented there, and every documented name is exported (and importable)."""

from __future__ import annotations

import re
from pathlib import Path

import okx_sync

README = Path(__file__).resolve().parents[2] / "README.md"
_ENTRY = re.compile(r"^- `([A-Za-z_][A-Za-z_0-9]*)` — \S")


def _documented() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## API at a glance\n")
    end = text.index("\n## ", start + 1)
    return [m.group(1) for line in text[start:end].splitlines() if (m := _ENTRY.match(line))]


def test_every_exported_name_is_documented_and_every_documented_name_exported() -> None:
    documented = _documented()
    assert len(documented) == len(set(documented)), "a name is listed twice"
    exported = set(okx_sync.__all__)
    assert sorted(exported - set(documented)) == [], "exported but not in README's API list"
    assert sorted(set(documented) - exported) == [], "in README's API list but not exported"
    for name in documented:
        assert getattr(okx_sync, name) is not None


def test_the_stats_snapshot_types_are_exported() -> None:
    from okx_sync.book import StoreStats
    from okx_sync.gate.stats import BucketStats, GateStats
    from okx_sync.ops.dead_man import DeadManStats
    from okx_sync.rest.stats import RestStats
    from okx_sync.ws.book_stats import BookStats
    from okx_sync.ws.stats import WSStats

    assert (okx_sync.RestStats, okx_sync.GateStats, okx_sync.BucketStats) == (
        RestStats,
        GateStats,
        BucketStats,
    )
    assert (okx_sync.BookStats, okx_sync.DeadManStats, okx_sync.WSStats) == (
        BookStats,
        DeadManStats,
        WSStats,
    )
    assert okx_sync.StoreStats is StoreStats
