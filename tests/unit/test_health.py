"""Health evaluation over typed stats snapshots (pure; time passed in explicitly)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from okx_sync.book import BookErrorCounts
from okx_sync.gate import ACCOUNT_BUCKET_KEY, GateStats
from okx_sync.ops.health import (
    DEGRADED,
    DOWN,
    OK,
    Health,
    HealthMonitor,
    HealthThresholds,
    book_counters,
    combine,
    evaluate_book,
    evaluate_gate,
    evaluate_rest,
    evaluate_ws,
    format_health,
    rest_counters,
    ws_counters,
)
from tests.stats_support import WALL, book_stats, bucket_stats, gate_stats, rest_stats, ws_stats

T = HealthThresholds()


def test_thresholds_validate_and_are_frozen() -> None:
    with pytest.raises(ValueError, match="silence_degraded_s"):
        HealthThresholds(silence_degraded_s=50.0, silence_down_s=40.0)
    with pytest.raises(ValueError, match="queue_down_ratio"):
        HealthThresholds(queue_down_ratio=1.5)
    with pytest.raises(ValueError, match="reconnects_degraded"):
        HealthThresholds(reconnects_degraded=0)
    with pytest.raises(ValueError, match="window_s"):
        HealthThresholds(window_s=0)
    with pytest.raises(TypeError):
        HealthThresholds(30.0)  # type: ignore[misc]  # keyword-only
    t = HealthThresholds(silence_degraded_s=5, silence_down_s=9)
    with pytest.raises(AttributeError):
        t.silence_down_s = 1  # type: ignore[misc]


def test_healthy_ws_is_ok() -> None:
    h = evaluate_ws(ws_stats(), now=WALL, thresholds=T, component="ws public")
    assert (h.status, h.reasons, h.ok, h.value) == (OK, (), True, 0)
    assert str(h) == "ws public: ok"


def test_silence_degrades_then_downs() -> None:
    t = HealthThresholds(silence_degraded_s=25, silence_down_s=45)
    assert evaluate_ws(ws_stats(last_recv=WALL - 24.9), now=WALL, thresholds=t).ok
    h = evaluate_ws(ws_stats(last_recv=WALL - 30), now=WALL, thresholds=t)
    assert (h.status, h.reason) == (DEGRADED, "no message for 30 s")
    h = evaluate_ws(ws_stats(last_recv=WALL - 45), now=WALL, thresholds=t)
    assert (h.status, h.reason) == (DOWN, "no message for 45 s")
    assert evaluate_ws(ws_stats(last_recv=None), now=WALL, thresholds=t).ok  # nothing yet


def test_disconnected_and_stopped() -> None:
    h = evaluate_ws(
        ws_stats(connected=False, last_error="WSTimeoutError: no pong"), now=WALL, thresholds=T
    )
    assert (h.status, h.reason) == (DOWN, "not connected (last error: WSTimeoutError: no pong)")
    h = evaluate_ws(
        ws_stats(running=False, connected=False, last_recv=None), now=WALL, thresholds=T
    )
    assert (h.status, h.reason) == (DOWN, "not running")


def test_queue_back_pressure() -> None:
    h = evaluate_ws(ws_stats(typed_queue_len=79), now=WALL, thresholds=T)
    assert h.ok
    h = evaluate_ws(ws_stats(typed_queue_len=95), now=WALL, thresholds=T)
    assert (h.status, h.reason) == (DEGRADED, "typed queue at 95% of capacity (95/100)")
    h = evaluate_ws(ws_stats(typed_queue_len=100), now=WALL, thresholds=T)
    assert h.status == DOWN
    # inline mode (capacity 0) never counts as back-pressure
    h = evaluate_ws(ws_stats(raw_queue_len=5, raw_queue_cap=0), now=WALL, thresholds=T)
    assert h.ok


def test_counter_increases_and_worst_first() -> None:
    inc = {
        "reconnects": 5,
        "subscribe_error": 1,
        "typed_dropped": 3,
        "raw_dropped": 1,
        "handler_errors": 2,
    }
    h = evaluate_ws(ws_stats(last_recv=WALL - 50), now=WALL, thresholds=T, increases=inc)
    assert h.status == DOWN
    assert h.reasons == (
        "no message for 50 s",
        "5 reconnects in 60 s",
        "1 subscribe error in 60 s",
        "4 messages dropped in 60 s",
        "2 handler errors in 60 s",
    )
    h = evaluate_ws(ws_stats(), now=WALL, thresholds=T, increases={"reconnects": 10})
    assert (h.status, h.reason) == (DOWN, "10 reconnects in 60 s")


def gate_with(**account: Any) -> GateStats:
    return gate_stats(
        buckets=(
            bucket_stats(ACCOUNT_BUCKET_KEY, "account", **{"tokens": 10, **account}),
            bucket_stats("GET /api/v5/account/balance [UID]", tokens=3),
        )
    )


def test_gate_rules() -> None:
    assert evaluate_gate(gate_with(), thresholds=T).ok
    h = evaluate_gate(gate_with(tokens=0), thresholds=T)
    assert (h.status, h.reason) == (DEGRADED, "account order bucket exhausted")
    assert evaluate_gate(
        gate_with(tokens=0),
        thresholds=HealthThresholds(account_bucket_exhausted=False),
    ).ok
    h = evaluate_gate(gate_with(held_for_s=1.5), thresholds=T)
    assert h.reason == f"bucket {ACCOUNT_BUCKET_KEY} throttled (held 1.5 s)"
    h = evaluate_gate(gate_with(), thresholds=T, increases={"timeouts": 2})
    assert h.reason == "2 gate timeouts in 60 s"


def test_rest_and_book_rules() -> None:
    assert evaluate_rest(rest_stats(), thresholds=T, increases={"rate_limited": 2}).ok
    h = evaluate_rest(rest_stats(), thresholds=T, increases={"rate_limited": 3, "no_response": 4})
    assert h.reasons == ("3 rate-limit errors in 60 s", "4 requests without response in 60 s")
    assert evaluate_book(book_stats(), thresholds=T).ok
    h = evaluate_book(book_stats(ready=False), thresholds=T, increases={"errors": 1})
    assert h.reasons == ("not ready (waiting for a snapshot)", "1 book error in 60 s")


def test_combine_takes_the_worst_and_prefixes() -> None:
    parts = [
        Health(component="rest", status=OK),
        Health(
            component="ws public",
            status=DEGRADED,
            reasons=("typed queue at 95% of capacity (95/100)",),
        ),
        Health(component="ws private", status=DOWN, reasons=("not connected",)),
    ]
    h = combine("client", parts)
    assert h.status == DOWN
    assert h.reasons == (
        "ws private: not connected",
        "ws public: typed queue at 95% of capacity (95/100)",
    )
    assert h.find("ws public") is parts[1]
    assert h.find("nope") is None
    d = h.to_dict()
    assert d["status"] == "down" and [c["component"] for c in d["components"]] == [
        "rest",
        "ws public",
        "ws private",
    ]
    assert combine("client", []).ok


def test_monitor_counts_reconnects_in_the_window() -> None:
    mon = HealthMonitor(HealthThresholds(window_s=60, reconnects_degraded=3, reconnects_down=5))
    now = 1000.0

    def at(t: float, reconnects: int) -> Health:
        stats = ws_stats(reconnects=reconnects, last_recv=WALL + t - 1)
        return mon.evaluate(now=now + t, wall=WALL + t, ws=[("ws public", stats)])

    assert at(0, 7).ok  # first sight: no history, no increase
    assert at(10, 8).ok
    h = at(20, 10)
    assert (h.status, h.reason) == (DEGRADED, "ws public: 3 reconnects in 60 s")
    h = at(50, 12)
    assert (h.status, h.find("ws public").reason) == (DOWN, "5 reconnects in 60 s")  # type: ignore[union-attr]
    # the base is the newest sample at or before the window's start: t=10 (8) at t=75
    assert at(75, 12).status == DEGRADED
    assert at(81, 12).ok  # base t=20 (10): 2
    assert at(82, 13).status == DEGRADED  # base t=20: 3
    # at t=140 the base is t=75 (12): 1
    assert at(140, 13).ok


@pytest.mark.parametrize("interval", [61.0, 150.0])
def test_monitor_sees_increases_when_samples_are_further_apart_than_the_window(
    interval: float,
) -> None:
    # one evaluation per interval > window_s (150 > two windows, too): each sample is
    # the base of the next one, so 5 reconnects per interval are seen every time
    mon = HealthMonitor(HealthThresholds(window_s=60, reconnects_degraded=3, reconnects_down=10))
    for i in range(4):
        t = i * interval
        stats = ws_stats(reconnects=5 * i, last_recv=WALL + t - 1)
        h = mon.evaluate(now=t, wall=WALL + t, rest=rest_stats(), ws=[("ws public", stats)])
        if i == 0:
            assert h.ok
        else:
            assert (h.status, h.reason) == (DEGRADED, "ws public: 5 reconnects in 60 s"), i
    # quiet again: the next sample sees no increase
    t = 4 * interval
    stats = ws_stats(reconnects=15, last_recv=WALL + t - 1)
    assert mon.evaluate(now=t, wall=WALL + t, ws=[("ws public", stats)]).ok


def test_monitor_forgets_a_source_left_out_of_a_round() -> None:
    mon = HealthMonitor(HealthThresholds(window_s=60))

    def at(t: float, **sources: int) -> Health:
        ws = [(f"ws {n}", ws_stats(reconnects=r, last_recv=WALL + t)) for n, r in sources.items()]
        return mon.evaluate(now=t, wall=WALL + t, ws=ws)

    at(0.0, a=0, b=0)
    at(200.0, a=0)  # b left out of this round
    at(400.0, a=0)  # ... and not in the previous one either: forgotten
    assert at(600.0, a=0, b=9).ok  # b is new again: no history, no increase
    h = at(800.0, a=9, b=9)  # a was kept all along (each round's base is the one before)
    assert h.reason == "ws a: 9 reconnects in 60 s"


def test_monitor_survives_a_replaced_source() -> None:
    mon = HealthMonitor()
    assert mon.evaluate(now=0.0, wall=WALL, ws=[("ws a", ws_stats(reconnects=9))]).ok
    # counters went down (a new client under the same name): counted from zero
    h = mon.evaluate(now=1.0, wall=WALL, ws=[("ws a", ws_stats(reconnects=4))])
    assert h.find("ws a").reason == "4 reconnects in 60 s"  # type: ignore[union-attr]
    assert ws_counters(ws_stats(reconnects=4, raw_dropped=2)) == {
        "reconnects": 4,
        "subscribe_error": 0,
        "typed_dropped": 0,
        "raw_dropped": 2,
        "handler_errors": 0,
    }


def test_monitor_book_errors_by_kind_are_summed() -> None:
    mon = HealthMonitor()
    book = book_stats(errors=BookErrorCounts())
    assert mon.evaluate(now=0.0, books=[("book books:BTC-USDT", book)]).ok
    book = book_stats(errors=BookErrorCounts(sequence=1, checksum=2))
    h = mon.evaluate(now=5.0, books=[("book books:BTC-USDT", book)])
    assert h.reason == "book books:BTC-USDT: 3 book errors in 60 s"


def test_rest_failures_by_code_feed_the_rest_rules() -> None:
    stats = rest_stats(
        failures_by_code={
            "50011": 2,
            "http_429": 1,
            "50113": 1,
            "http:dispatched": 1,
            "gate": 4,
            "51008": 9,
        }
    )
    assert rest_counters(stats) == {"rate_limited": 3.0, "auth_errors": 1.0, "no_response": 1.0}
    mon = HealthMonitor()
    assert mon.evaluate(now=0.0, rest=rest_stats()).ok
    h = mon.evaluate(now=10.0, rest=stats)
    assert (h.status, h.reason) == (DEGRADED, "rest: 3 rate-limit errors in 60 s")
    assert mon.evaluate(now=80.0, rest=stats).ok  # nothing new within the window


def test_format_health_for_the_terminal() -> None:
    parts = [
        Health(component="gate", status=OK),
        Health(
            component="ws public",
            status=DEGRADED,
            reasons=("no message for 30 s", "1 reconnect in 60 s"),
        ),
    ]
    assert format_health(combine("client", parts)) == (
        "client: degraded\n  gate: ok\n  ws public: degraded - no message for 30 s; 1 reconnect in 60 s"
    )


def test_managed_book_rules() -> None:
    stats = book_stats(
        errors=BookErrorCounts(sequence=1, checksum=1), check={"enabled": True, "checked": 4}
    )
    assert book_counters(stats) == {"errors": 2.0, "callback_errors": 0.0, "mismatches": 0.0}
    assert evaluate_book(stats, thresholds=T).ok
    h = evaluate_book(
        attrs.evolve(stats, in_sync=False, ready=False, last_error="seq gap"), thresholds=T
    )
    assert (h.status, h.reason) == (DEGRADED, "out of sync (last error: seq gap)")
    h = evaluate_book(stats, thresholds=T, increases={"callback_errors": 2, "mismatches": 1})
    assert h.reasons == ("2 callback errors in 60 s", "1 REST cross-check mismatch in 60 s")
    assert evaluate_book(attrs.evolve(stats, closed=True), thresholds=T).status == DOWN
    mon = HealthMonitor()
    assert mon.evaluate(now=0.0, books=[("book books:BTC-USDT", stats)]).ok
    later = attrs.evolve(stats, rest_check=attrs.evolve(stats.rest_check, mismatches=1))
    assert mon.evaluate(now=1.0, books=[("book books:BTC-USDT", later)]).reason == (
        "book books:BTC-USDT: 1 REST cross-check mismatch in 60 s"
    )
