"""PrometheusSink: exposition with labels and types, served on 127.0.0.1 and scraped over HTTP."""

from __future__ import annotations

import sys
import threading
import urllib.request
from typing import Any

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from okx_sync.book import BookErrorCounts  # noqa: E402
from okx_sync.clock import FakeClock  # noqa: E402
from okx_sync.errors import ValidationError  # noqa: E402
from okx_sync.gate.stats import AccountLimitStats, GateStats  # noqa: E402
from okx_sync.ops.health import HealthMonitor  # noqa: E402
from okx_sync.ops.prometheus import PrometheusSink  # noqa: E402
from okx_sync.ops.reporter import StatsSnapshot, collect_snapshot  # noqa: E402
from okx_sync.rest.stats import RestStats  # noqa: E402
from tests.stats_support import (  # noqa: E402
    book_stats,
    bucket_stats,
    gate_stats,
    rest_stats,
    ws_stats,
)


class _Source:
    def __init__(self, snapshot: Any) -> None:
        self.name = getattr(snapshot, "name", "")
        self.snapshot = snapshot

    def stats(self) -> Any:
        return self.snapshot


class _Client:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        wall = clock.time()
        self.ws = [
            _Source(
                ws_stats(
                    name="public",
                    url="ws://127.0.0.1:1/ws/v5/public",
                    last_recv=wall - 2,
                    reconnects=2,
                    messages=120,
                    typed_queue_len=95,
                    typed_queue_cap=100,
                    typed_mode="pool",
                )
            ),
            _Source(
                ws_stats(
                    name="private",
                    url="ws://127.0.0.1:1/ws/v5/private",
                    connected=False,
                    last_recv=None,
                    messages=3,
                )
            ),
        ]
        self.books = [_Source(book_stats(errors=BookErrorCounts(checksum=1)))]

    def stats(self) -> RestStats:
        return rest_stats(
            requests=7,
            time_offset_ms=1,
            failures_by_code={"50011": 3, "http_429": 1, "http:dispatched": 2},
        )

    def gate_stats(self) -> GateStats:
        account = AccountLimitStats(
            limit=1000, source="default", loaded_age_s=None, load_failures=2, last_error=""
        )
        return gate_stats(
            in_flight=1,
            admitted=9,
            account_order_limit=account,
            buckets=(
                bucket_stats(
                    "account orders [UID]", "account", tokens=0, admitted=4, current_rate=450.0
                ),
                bucket_stats("GET /api/v5/market/ticker [IP]", tokens=19, admitted=1),
            ),
        )

    def ws_clients(self) -> list[Any]:
        return self.ws

    def managed_books(self) -> list[Any]:
        return self.books


def _snapshot() -> StatsSnapshot:
    return collect_snapshot(_Client(FakeClock()), monitor=HealthMonitor())


def _scrape(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no sample {sample}{labels}")


def test_endpoint_scraped_over_http_and_parsed() -> None:
    registry = prometheus_client.CollectorRegistry()
    sink = PrometheusSink(port=0, registry=registry)
    try:
        assert sink.port and sink.url == f"http://127.0.0.1:{sink.port}/metrics"
        assert "okx_sync_health" not in _scrape(sink.url)  # nothing before the first snapshot
        sink.emit(_snapshot())
        fam = _scrape(sink.url)
    finally:
        sink.close()
    assert [t.name for t in threading.enumerate() if t.name == "okx-metrics-http"] == []

    # health: client down (private not connected); parts labelled by component
    assert fam["okx_sync_health"].type == "gauge"
    assert _value(fam, "okx_sync_health", "okx_sync_health", component="client") == 2
    assert (
        _value(fam, "okx_sync_health", "okx_sync_health", component="ws public") == 1
    )  # queue at 95%
    assert (
        _value(fam, "okx_sync_health", "okx_sync_health", component="gate") == 1
    )  # account bucket empty

    # WS: gauges and counters, labelled by ws name and endpoint kind
    assert fam["okx_sync_ws_typed_queue_len"].type == "gauge"
    assert (
        _value(
            fam,
            "okx_sync_ws_typed_queue_len",
            "okx_sync_ws_typed_queue_len",
            ws="public",
            kind="public",
        )
        == 95
    )
    assert fam["okx_sync_ws_reconnects"].type == "counter"
    assert _value(fam, "okx_sync_ws_reconnects", "okx_sync_ws_reconnects_total", ws="public") == 2
    assert (
        _value(
            fam, "okx_sync_ws_messages", "okx_sync_ws_messages_total", ws="private", kind="private"
        )
        == 3
    )
    assert _value(fam, "okx_sync_ws_connected", "okx_sync_ws_connected", ws="private") == 0
    assert _value(fam, "okx_sync_ws_connected", "okx_sync_ws_connected", ws="public") == 1
    assert (
        _value(fam, "okx_sync_ws_last_recv_age_s", "okx_sync_ws_last_recv_age_s", ws="public") == 2
    )
    assert "okx_sync_ws_typed_mode" not in fam  # strings are not metrics

    # gate: top level, nested dict flattened, and one series per bucket key
    assert _value(fam, "okx_sync_gate_admitted", "okx_sync_gate_admitted_total") == 9
    assert (
        _value(
            fam,
            "okx_sync_gate_account_order_limit_limit",
            "okx_sync_gate_account_order_limit_limit",
        )
        == 1000
    )
    assert fam["okx_sync_gate_account_order_limit_load_failures"].type == "counter"
    bucket = "account orders [UID]"
    assert (
        _value(
            fam,
            "okx_sync_gate_bucket_tokens",
            "okx_sync_gate_bucket_tokens",
            bucket=bucket,
            kind="account",
        )
        == 0
    )
    assert (
        _value(
            fam,
            "okx_sync_gate_bucket_current_rate",
            "okx_sync_gate_bucket_current_rate",
            bucket=bucket,
        )
        == 450
    )
    assert len(fam["okx_sync_gate_bucket_admitted"].samples) == 2

    # REST and books
    assert _value(fam, "okx_sync_rest_requests", "okx_sync_rest_requests_total") == 7
    assert _value(fam, "okx_sync_rest_time_offset_ms", "okx_sync_rest_time_offset_ms") == 1
    # failures by code: one counter, the code as a label (not one metric per code)
    failures = fam["okx_sync_rest_failures_by_code"]
    assert failures.type == "counter"
    assert {s.labels["code"]: s.value for s in failures.samples} == {
        "50011": 3,
        "http_429": 1,
        "http:dispatched": 2,
    }
    assert {s.name for s in failures.samples} == {"okx_sync_rest_failures_by_code_total"}
    assert not [name for name in fam if name.startswith("okx_sync_rest_failures_by_code_")]
    labels = {"book": "books:BTC-USDT", "channel": "books", "inst_id": "BTC-USDT"}
    assert _value(fam, "okx_sync_book_ready", "okx_sync_book_ready", **labels) == 1
    assert (
        _value(
            fam, "okx_sync_book_errors_checksum", "okx_sync_book_errors_checksum_total", **labels
        )
        == 1
    )


def test_registry_only_and_close_unregisters() -> None:
    registry = prometheus_client.CollectorRegistry()
    sink = PrometheusSink(registry=registry, namespace="bot")
    assert sink.port is None and sink.url is None
    sink.emit(_snapshot())
    assert (
        registry.get_sample_value("bot_ws_messages_total", {"ws": "public", "kind": "public"})
        == 120
    )
    sink.close()
    sink.close()  # idempotent
    assert (
        registry.get_sample_value("bot_ws_messages_total", {"ws": "public", "kind": "public"})
        is None
    )


def test_bad_port_and_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="port"):
        PrometheusSink(port=70000, registry=prometheus_client.CollectorRegistry())
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"okx_sync\[metrics\]"):
        PrometheusSink(registry=object())
