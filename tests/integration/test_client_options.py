"""Client options a production user needs: own time offset, app version/commit in
evidence, User-Agent, background-error callback, gate off."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from okx_sync import Client, FakeClock
from okx_sync.errors import ValidationError
from okx_sync.rest.transport import Request
from okx_sync.testing import MockTransport
from okx_sync.testing.mock_transport import json_response

KEY, SECRET, PASS = "key-1234", "secret", "pass"


def ok(data: list[Any] | None = None) -> Any:
    return json_response({"code": "0", "msg": "", "data": data or [{}]})


def recording() -> tuple[MockTransport, list[Request]]:
    seen: list[Request] = []

    def answer(req: Request) -> Any:
        seen.append(req)
        return ok()

    return MockTransport(answer), seen


def test_set_time_offset_ms_signs_with_it_and_shows_manual_source() -> None:
    transport, seen = recording()
    clock = FakeClock()
    with Client(KEY, SECRET, PASS, transport=transport, clock=clock) as client:
        assert client.stats().time_sync.source is None
        client.set_time_offset_ms(-1500)
        assert client.time_offset_ms == -1500
        assert client.now_ms() == int(clock.time() * 1000) - 1500
        client.account.get_balance()
        stamp = seen[-1].headers["OK-ACCESS-TIMESTAMP"]
        sent_ms = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000
        assert sent_ms == pytest.approx(clock.time() * 1000 - 1500, abs=1)
        ts = client.stats().time_sync
        assert ts.source == "manual" and ts.offset_ms == -1500 and ts.syncs == 0
        clock_ev = client.evidence()["clock"]
        assert clock_ev["source"] == "manual" and clock_ev["offset_ms"] == -1500
        assert clock_ev["measured"] is False and clock_ev["age_s"] == 0


@pytest.mark.parametrize("bad", [1.5, True, "100", None, 86_400_001, -86_400_001])
def test_set_time_offset_ms_refuses_non_int_and_absurd_offsets(bad: Any) -> None:
    with Client(transport=MockTransport(lambda r: ok()), clock=FakeClock()) as client:
        with pytest.raises(ValidationError):
            client.set_time_offset_ms(bad)
        assert client.time_offset_ms == 0


def test_app_version_and_commit_are_in_evidence() -> None:
    with Client(
        transport=MockTransport(lambda r: ok()),
        clock=FakeClock(),
        app_version="2.3.1",
        app_commit="0123abc",
    ) as client:
        ev = client.evidence()
    assert ev["app"] == {"version": "2.3.1", "commit": "0123abc"}
    with Client(transport=MockTransport(lambda r: ok()), clock=FakeClock()) as client:
        assert client.evidence()["app"] == {"version": None, "commit": None}


@pytest.mark.parametrize("bad", ["", "x\nInjected: 1", 123, "é", "x" * 129])
def test_app_version_and_commit_must_be_short_printable_text(bad: Any) -> None:
    for key in ("app_version", "app_commit"):
        with pytest.raises(ValidationError, match=key):
            Client(transport=MockTransport(lambda r: ok()), **{key: bad})


def test_disabled_gate_admits_everything_at_once_and_loads_no_account_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from okx_sync import RequestGateConfig
    from okx_sync.errors import RequestStateError
    from okx_sync.gate import RequestGate

    config = RequestGateConfig(enabled=False, max_concurrent=1)
    assert config.rate_limits is False  # off means off: no buckets, no limit loading
    with caplog.at_level("WARNING", logger="okx_sync.gate"):
        gate = RequestGate(config, clock=FakeClock())
    assert any("DISABLED" in r.getMessage() for r in caplog.records)
    held = [gate.acquire(None, timeout_s=0) for _ in range(50)]  # cap 1, none waits
    assert all(p.wait_s == 0 for p in held)
    for permit in held:
        permit.release()
    gate.close()
    with pytest.raises(RequestStateError) as info:
        gate.acquire(None)
    assert info.value.stage == "gate" and not info.value.dispatched

    transport, seen = recording()
    with Client(KEY, SECRET, PASS, transport=transport, clock=FakeClock(), gate=config) as client:
        client.trade.place_order(
            inst_id="BTC-USDT", td_mode="cash", side="buy", ord_type="market", sz="1",
            validate=False,
        )  # fmt: skip
        stats = client.gate_stats()
        assert client.evidence()["config"]["gate"]["enabled"] is False
    assert [r.target for r in seen] == ["/api/v5/trade/order"]  # no account-rate-limit load
    assert stats.enabled is False and stats.buckets == () and stats.admitted == 0


def test_enabled_gate_with_the_same_cap_makes_the_second_call_wait() -> None:
    from okx_sync import RequestGateConfig
    from okx_sync.errors import RequestStateError
    from okx_sync.gate import RequestGate

    gate = RequestGate(RequestGateConfig(max_concurrent=1), clock=FakeClock())
    first = gate.acquire(None)
    with pytest.raises(RequestStateError):
        gate.acquire(None, timeout_s=0)
    first.release()
    assert gate.stats().enabled is True
    gate.close()
