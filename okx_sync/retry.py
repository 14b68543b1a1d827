"""Retry policy: decides whether and when a failed REST attempt is tried again. Pure.

The policy only decides; the REST call loop (``rest.client.RestCore``) sleeps
through the injected clock and re-sends. Rules (facts §3.4):

- A rejection that proves nothing executed — rate limiting (HTTP 429, 50011,
  50061, 50040, 50013, 51113, 58102) and 50001 (service unavailable) — may be
  retried for any method, order entry included.
- A transport failure before any byte was sent (``dispatched=False``:
  connection refused, DNS, TLS handshake) may be retried for any method.
- Idempotent reads (GET) are also retried on 5xx, 50026 and transport
  failures after sending (read timeout, reset).
- Anything else that may have reached OKX — above all order entry after a
  read timeout — is never retried: the caller gets the error with
  ``dispatched=True`` and resolves the outcome by clOrdId.
- 50102/50112 (timestamp refused): re-sync the clock and re-sign, once per call.
- :class:`~okx_sync.errors.OrderError` (per-item results) is never retried.

Backoff is exponential with jitter; a ``Retry-After`` header is honoured (a
wait longer than ``max_retry_after_s`` gives up instead of blocking a thread).
"""

from __future__ import annotations

import attrs

from .errors import (
    APIError,
    OrderError,
    RequestStateError,
    is_rate_limit_error,
    is_time_skew_error,
)
from .validators import count, field, flag, real, seconds

__all__ = ["RetryPolicy", "RetryDecision", "UNEXECUTED_CODES", "READ_RETRY_CODES"]

# Rejections that prove nothing executed besides rate limiting (facts §3.4).
UNEXECUTED_CODES = frozenset({"50001"})
# Transient server failures worth retrying for idempotent reads only.
READ_RETRY_CODES = frozenset({"50001", "50013", "50026"})


_seconds = field(seconds)
_flag = field(flag)


@attrs.frozen(kw_only=True)
class RetryDecision:
    """The policy's answer: ``retry`` (bool), ``delay_s`` (seconds before the next
    attempt), ``resync`` (re-sync the clock and re-sign first) and ``reason``
    (text for logs). Thread safety: immutable."""

    retry: bool
    delay_s: float = 0.0
    resync: bool = False
    reason: str = ""


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When to retry a failed REST attempt. Frozen; validated when built: ValidationError
    (a ``ValueError``) for a string, bool, NaN, infinity or negative value, a float
    ``max_retries`` or ``jitter`` outside [0, 1] (:mod:`okx_sync.validators`).

    - ``max_retries``: retries after the first attempt (0 disables retries;
      the one time-skew re-sync still happens).
    - ``base_delay_s``, ``multiplier``, ``max_delay_s``: backoff
      ``min(max_delay_s, base_delay_s * multiplier ** retry_index)`` seconds.
    - ``jitter``: fraction of that delay drawn at random (0 = none, 1 = full jitter).
    - ``honour_retry_after``: wait at least the server's ``Retry-After``.
    - ``max_retry_after_s``: give up instead of waiting longer than this.
    - ``retry_reads_on_5xx``: retry GET on HTTP 5xx and 50026/50013.
    - ``resync_on_time_skew``: on 50102/50112 re-sync the clock and re-sign once.

    ``decide`` is pure. Thread safety: immutable, safe to share.
    """

    max_retries: int = attrs.field(default=3, validator=field(count, minimum=0))
    base_delay_s: float = attrs.field(default=0.2, validator=_seconds)
    multiplier: float = attrs.field(default=2.0, validator=field(real, low=0.0))
    max_delay_s: float = attrs.field(default=5.0, validator=_seconds)
    jitter: float = attrs.field(default=0.5, validator=field(real, low=0.0, high=1.0))
    honour_retry_after: bool = attrs.field(default=True, validator=_flag)
    max_retry_after_s: float = attrs.field(default=30.0, validator=_seconds)
    retry_reads_on_5xx: bool = attrs.field(default=True, validator=_flag)
    resync_on_time_skew: bool = attrs.field(default=True, validator=_flag)

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries (the time-skew re-sync still happens)."""
        return cls(max_retries=0)

    def backoff(self, retry_index: int, rand: float) -> float:
        """Delay before retry number ``retry_index + 1``; ``rand`` is uniform in [0, 1)."""
        base = min(self.max_delay_s, self.base_delay_s * self.multiplier**retry_index)
        return base * (1.0 - self.jitter * rand)

    def decide(
        self,
        error: BaseException,
        *,
        idempotent: bool,
        retry_index: int,
        resynced: bool = False,
        retry_after_s: float | None = None,
        rand: float = 0.0,
    ) -> RetryDecision:
        """Decide what to do after attempt ``retry_index`` (0-based) failed with ``error``.

        ``idempotent``: the request is a read (safe to repeat after an
        uncertain failure). ``resynced``: the clock was already re-synced in
        this call. ``retry_after_s``: the response's ``Retry-After`` in seconds.
        ``rand``: a uniform draw in [0, 1) from the caller's injected random
        source. Never raises for any exception type.
        """
        if isinstance(error, OrderError):
            return RetryDecision(retry=False, reason="order entry answered per item")
        if isinstance(error, APIError) and is_time_skew_error(error):
            if self.resync_on_time_skew and not resynced:
                return RetryDecision(retry=True, resync=True, reason="timestamp refused: re-sync")
            return RetryDecision(retry=False, reason="timestamp refused after re-sync")
        why = self._retryable(error, idempotent)
        if not why:
            return RetryDecision(retry=False, reason="not retryable")
        if retry_index >= self.max_retries:
            return RetryDecision(retry=False, reason=f"{why}; retries exhausted")
        delay = self.backoff(retry_index, rand)
        if retry_after_s is not None and self.honour_retry_after:
            if retry_after_s > self.max_retry_after_s:
                return RetryDecision(
                    retry=False, reason=f"{why}; Retry-After {retry_after_s:g}s too long"
                )
            delay = max(delay, retry_after_s)
        return RetryDecision(retry=True, delay_s=delay, reason=why)

    def _retryable(self, error: BaseException, idempotent: bool) -> str:
        """Why ``error`` may be retried ("" when it may not)."""
        if isinstance(error, RequestStateError):
            if error.stage != "http":
                return ""
            if not error.dispatched:
                return "not sent"
            return "read failed after sending (idempotent)" if idempotent else ""
        if not isinstance(error, APIError):
            return ""
        if is_rate_limit_error(error):
            return "rate limited (nothing executed)"
        if error.code in UNEXECUTED_CODES:
            return "service unavailable (nothing executed)"
        if idempotent and self.retry_reads_on_5xx:
            if error.code in READ_RETRY_CODES:
                return f"transient server error {error.code} (idempotent)"
            if error.http_status is not None and error.http_status >= 500:
                return f"HTTP {error.http_status} (idempotent)"
        return ""
