"""RetryPolicy decides (pure): which failures retry, for which methods, how long to wait."""

from __future__ import annotations

import attrs
import pytest

from okx_sync import RetryPolicy
from okx_sync.errors import APIError, OrderError, RequestStateError, ValidationError


def _api(code: str, status: int = 200) -> APIError:
    return APIError(code, "m", http_status=status, method="GET", path="/p")


def _state(stage: str, dispatched: bool) -> RequestStateError:
    return RequestStateError("x", stage=stage, dispatched=dispatched)


POLICY = RetryPolicy(base_delay_s=0.1, multiplier=2.0, max_delay_s=1.0, jitter=0.0, max_retries=3)


@pytest.mark.parametrize(
    "error",
    [
        _api("50011", 429),
        _api("50011"),
        _api("50061"),
        _api("50040"),
        _api("50013", 429),
        _api("51113", 429),
        _api("58102", 429),
        _api("", 429),
        _api("50001", 503),
        _state("http", False),
    ],
)
def test_proven_unexecuted_failures_retry_for_any_method(error: Exception) -> None:
    for idempotent in (True, False):
        assert POLICY.decide(error, idempotent=idempotent, retry_index=0).retry


@pytest.mark.parametrize(
    "error", [_api("50026", 500), _api("", 502), _api("", 504), _state("http", True)]
)
def test_uncertain_failures_retry_only_idempotent_reads(error: Exception) -> None:
    assert POLICY.decide(error, idempotent=True, retry_index=0).retry
    assert not POLICY.decide(error, idempotent=False, retry_index=0).retry


@pytest.mark.parametrize(
    "error",
    [
        _api("51008"),
        _api("50113", 401),
        _api("51000", 400),
        _state("gate", False),
        OrderError("1", "failed", items=[]),
        ValidationError("bad"),
        RuntimeError("x"),
    ],
)
def test_never_retried(error: Exception) -> None:
    assert not POLICY.decide(error, idempotent=True, retry_index=0).retry


def test_read_retries_on_5xx_can_be_switched_off() -> None:
    policy = RetryPolicy(retry_reads_on_5xx=False)
    assert not policy.decide(_api("50026", 500), idempotent=True, retry_index=0).retry
    assert policy.decide(_api("50001", 503), idempotent=True, retry_index=0).retry


def test_time_skew_resyncs_once() -> None:
    first = POLICY.decide(_api("50102", 401), idempotent=False, retry_index=0)
    assert first.retry and first.resync and first.delay_s == 0
    again = POLICY.decide(_api("50112", 401), idempotent=False, retry_index=1, resynced=True)
    assert not again.retry
    assert RetryPolicy.none().decide(_api("50102"), idempotent=True, retry_index=0).resync
    off = RetryPolicy(resync_on_time_skew=False)
    assert not off.decide(_api("50102"), idempotent=True, retry_index=0).retry


def test_exponential_backoff_capped_and_exhausted() -> None:
    err = _api("50011", 429)
    delays = [POLICY.decide(err, idempotent=True, retry_index=i).delay_s for i in range(3)]
    assert delays == pytest.approx([0.1, 0.2, 0.4])
    capped = RetryPolicy(base_delay_s=0.5, max_delay_s=1.0, jitter=0.0, max_retries=10)
    assert capped.decide(err, idempotent=True, retry_index=6).delay_s == 1.0
    last = POLICY.decide(err, idempotent=True, retry_index=3)
    assert not last.retry and "exhausted" in last.reason


def test_jitter_draws_from_the_injected_random_value() -> None:
    policy = RetryPolicy(base_delay_s=1.0, jitter=0.5, max_retries=1)
    err = _api("50001", 503)
    assert policy.decide(err, idempotent=True, retry_index=0, rand=0.0).delay_s == 1.0
    assert policy.decide(err, idempotent=True, retry_index=0, rand=0.999).delay_s == pytest.approx(
        0.5005
    )


def test_retry_after_is_honoured_or_gives_up_when_too_long() -> None:
    err = _api("50001", 503)
    assert POLICY.decide(err, idempotent=True, retry_index=0, retry_after_s=2.5).delay_s == 2.5
    assert POLICY.decide(err, idempotent=True, retry_index=0, retry_after_s=0.01).delay_s == 0.1
    too_long = RetryPolicy(max_retry_after_s=5.0)
    decision = too_long.decide(err, idempotent=True, retry_index=0, retry_after_s=60)
    assert not decision.retry and "too long" in decision.reason
    ignore = RetryPolicy(honour_retry_after=False, jitter=0.0, base_delay_s=0.1)
    assert ignore.decide(err, idempotent=True, retry_index=0, retry_after_s=60).delay_s == 0.1


def test_frozen_and_validated() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        POLICY.max_retries = 9  # type: ignore[misc]
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)
    with pytest.raises(TypeError):
        RetryPolicy(3)  # type: ignore[misc]  # keyword-only
