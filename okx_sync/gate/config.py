"""``RequestGateConfig``: how the request gate admits calls (frozen, validated data).

Pure: no I/O, no clock. The other parts of :mod:`okx_sync.gate` read it; only
``cap_hold`` computes anything (the cap on a server-given hold).
"""

from __future__ import annotations

from typing import Any

import attrs

from ..errors import ValidationError
from ..validators import count, field, flag, real, seconds
from .backend import LocalGateBackend

__all__ = ["RequestGateConfig"]

_seconds = field(seconds, positive=True)
_fraction = field(real, low=0.0, high=1.0, low_open=True)
_flag = field(flag)


def _backend(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not callable(getattr(value, "attach", None)):
        raise ValidationError(
            f"{attribute.name} must be LocalGateBackend() or RedisGateBackend(...), "
            f"got {type(value).__name__}"
        )


@attrs.frozen(kw_only=True)
class RequestGateConfig:
    """How the gate admits calls. Frozen; validated when built: ValidationError (a
    ``ValueError``) for a string, bool, NaN, infinity or out-of-range value, or a float
    where an int is required (:mod:`okx_sync.validators`).

    - ``max_concurrent``: HTTP requests in flight at once per Client.
    - ``rate_limits``: False keeps only the concurrency cap (no buckets, no
      penalties, no account-limit loading).
    - ``headroom``: run buckets at this fraction of OKX's published limit.
    - ``wait_timeout_s``: seconds a call may wait for admission before
      ``RequestStateError(stage="gate")``, over all its attempts (the REST
      core's retries share one budget); a per-call ``gate_timeout_s``
      (``client.request(..., gate_timeout_s=)``, ``RestCore.call``/``request``)
      overrides it, and WS order entry waits at most its order ``timeout_s``.
    - ``account_order_limit``: the account new+amend limit per 2 s to start
      with; None = OKX's base 1000. A successful ``account-rate-limit`` load
      replaces it.
    - ``refresh_account_limit_s``: how often the client reloads that limit.
    - ``account_limit_retry_s``: after a failed load, wait this long before the
      next attempt, doubling per failure (at most 300 s); meanwhile orders use
      the limit already known.
    - ``penalty_factor``: after a throttling hold, a bucket restarts at this
      fraction of its capacity (a second penalty multiplies again).
    - ``recovery_windows``: windows it takes to climb back linearly to the
      full capacity after a hold.
    - ``burst_fraction``: share of a bucket's capacity that may go out back to
      back; beyond it admissions are spaced evenly (``span / capacity`` apart),
      so a throttling storm meets few requests in flight.
    - ``max_hold_s``: the longest a server-given hold (``Retry-After`` on a
      throttled answer) may hold a bucket; a negative, ``NaN``, infinite or
      larger value holds exactly this long (one hostile header never parks a
      cancel bucket for hours). The REST core caps the retry wait it honours
      to the same value.
    - ``lead_trader``: the account is a copy-trading lead trader: its
      lead-instrument limits apply too (place/amend, single or batch: 4 per
      2 s per instrument, one budget; ``order-algo``: 1 per 2 s).
    - ``slow_wait_log_s``: a call admitted after waiting longer than this
      logs one INFO line (``okx_sync.gate``) per bucket that held it, at most
      once per bucket per rate window, naming the bucket, its rule and the
      published limit: a loop the gate slows down is explained in the log.

    - ``backend``: where the rate windows live. ``LocalGateBackend()`` (the
      default): in this process, shared by every ``Client`` of the process
      with the same scope (same API key for UID rules, every Client for IP
      rules). ``RedisGateBackend(url, ...)``
      (:mod:`okx_sync.gate.redis_backend`): in Redis, shared by every process
      and host using the same namespace. The concurrency cap stays per Client.

    - ``enabled``: False turns the whole gate off — no concurrency cap, no
      buckets, no penalties, no account-limit loading (``rate_limits`` reads
      False then): every call is sent at once. Only for a program with its own
      limiter in front of the client: without one, OKX answers 429/50011 and
      may ban the IP or account. ``RequestGate`` logs a WARNING when built so.

    Thread safety: immutable.
    """

    enabled: bool = attrs.field(default=True, validator=_flag)
    max_concurrent: int = attrs.field(default=10, validator=field(count))
    rate_limits: bool = attrs.field(default=True, validator=_flag)
    headroom: float = attrs.field(default=0.9, validator=_fraction)
    wait_timeout_s: float = attrs.field(default=30.0, validator=_seconds)
    account_order_limit: int | None = attrs.field(
        default=None, validator=field(count, optional=True)
    )
    refresh_account_limit_s: float = attrs.field(default=3600.0, validator=_seconds)
    account_limit_retry_s: float = attrs.field(default=5.0, validator=_seconds)
    penalty_factor: float = attrs.field(default=0.5, validator=_fraction)
    recovery_windows: float = attrs.field(
        default=5.0, validator=field(real, low=0.0, low_open=True)
    )
    burst_fraction: float = attrs.field(default=0.5, validator=_fraction)
    lead_trader: bool = attrs.field(default=False, validator=_flag)
    slow_wait_log_s: float = attrs.field(default=1.0, validator=_seconds)
    max_hold_s: float = attrs.field(default=10.0, validator=_seconds)
    backend: Any = attrs.field(factory=LocalGateBackend, validator=_backend)

    def __attrs_post_init__(self) -> None:
        if not self.enabled:  # a gate that is off loads and enforces no rate limit either
            object.__setattr__(self, "rate_limits", False)

    def cap_hold(self, seconds: float | None) -> float | None:
        """A server-given hold in seconds, capped to ``max_hold_s`` (None stays None;
        negative, ``NaN`` and infinite values become the cap). Pure."""
        if seconds is None:
            return None
        if not 0 <= seconds <= self.max_hold_s:  # NaN fails both comparisons
            return self.max_hold_s
        return float(seconds)
