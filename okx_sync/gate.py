"""The request gate: concurrency cap + sliding-window rate buckets, shared by every thread.

Every REST call (and WS order entry) asks the gate for a permit before it is
sent. ``acquire`` blocks until every budget the call draws on has room, or
raises ``RequestStateError(stage="gate", dispatched=False)`` when it cannot be
admitted within the timeout or the gate is closed: nothing was sent.

Budgets a call draws on:

- one HTTP in-flight slot (``max_concurrent``; WS order entry skips it);
- the endpoint's rate bucket, keyed by the endpoint's OKX rule (``IP``,
  ``UID``, ``UID+instId``, ``UID+instId;OPTION:UID+instFamily``, ...) with the
  scope values read from the call's params; batch endpoints charge one token
  per order, per instrument, and a batch of exactly one order is charged to the
  single-order endpoint (as OKX does);
- for new orders and amends, the account order bucket (default 1000 orders /
  2 s, updated from ``GET /api/v5/trade/account-rate-limit``);
- the endpoint's secondary limits (``Endpoint.extra_limits``, registry data):
  those that apply to everyone always (convert estimate-quote / trade, fiat
  quote, create-rfq); the isElpTakerAccess one (50 orders / 2 s per
  instrument, shared by ``trade/order`` and ``trade/batch-orders``, REST and
  WS) only for orders with ``isElpTakerAccess`` true; the copy-trading
  lead-instrument ones only with ``RequestGateConfig(lead_trader=True)``.

How a bucket counts. A bucket with published limit ``L`` per ``W`` seconds
runs ``capacity = ceil(headroom * L)`` admissions per ``span = W * capacity /
(headroom * L)`` seconds (``span >= W``), so its long-run rate is
``headroom * L / W`` and no window of ``W`` seconds ever holds more than
``capacity <= L``. It is a sliding-window log, not a refilling token bucket: an
admission occupies the bucket while the request is in flight and for ``span``
seconds after ``Permit.release()`` (the response arrived). OKX counts arrival
times, and an arrival lies between admission and response, so two admissions
that the gate lets through more than ``span`` apart can never land in one OKX
window, whatever the latency jitter. A permit that is never released is
counted as released ``_INFLIGHT_HOLD_S`` after admission. On top of the log, a
pacer: while the window holds at most ``burst_fraction`` of the capacity
(and the bucket is not recovering from a penalty) calls go back to back;
beyond that admissions are spaced ``span / capacity`` apart, so a saturated
bucket sends evenly instead of in window-sized bursts, and a throttling storm
meets few requests in flight.

Throttling: HTTP 429, code 50011 or 50061 (top level or an item's ``sCode``)
reported through ``observe`` penalise the bucket concerned for every thread:
it admits nothing until ``Retry-After`` (or one window) has passed, then runs at
``penalty_factor`` of its capacity and recovers linearly to the full ceiling
over ``recovery_windows`` windows (adaptive, like botocore's client-side rate
limiter). 50061 penalises the account order bucket, the others the endpoint's
(its secondary-limit buckets included: OKX does not say which limit was hit).

Fairness: waiters are served first come, first served among those competing
for the same budget; a waiter for a full bucket never blocks callers of other
buckets (no head-of-line blocking). Cancels (and ``cancel-all-after``) form
their own lane: they draw only on their own endpoint buckets and are given the
next free in-flight slot before placements and amends.

Thread safety: one gate is shared by all threads of a Client; every public
method may be called from any thread. No lock is held while sleeping (waits go
through ``Clock.wait`` on the gate's condition), and no user code (logging
handlers included) runs while the gate's lock is held.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .clock import SYSTEM_CLOCK, Clock, park
from .errors import RequestStateError, ValidationError
from .rest.endpoints import Endpoint, registry
from .validators import count, field, flag, real, seconds

__all__ = [
    "RequestGateConfig",
    "RequestGate",
    "Permit",
    "Charge",
    "plan_charges",
    "rule_scope",
    "DEFAULT_ACCOUNT_ORDER_LIMIT",
    "ACCOUNT_ORDER_WINDOW_S",
    "ACCOUNT_BUCKET_KEY",
]

log = logging.getLogger("okx_sync.gate")

DEFAULT_ACCOUNT_ORDER_LIMIT = 1000
"""OKX's base sub-account new+amend limit per 2 s (facts §2.3)."""
ACCOUNT_ORDER_WINDOW_S = 2.0
ACCOUNT_BUCKET_KEY = "account orders [UID]"
ACCOUNT_RATE_LIMIT_PATH = "/api/v5/trade/account-rate-limit"
_MONTH_S = 31 * 86400.0  # the one monthly limit: 31 days covers any calendar month
_MAX_PENALTY_HOLD_S = 60.0  # a 429 without Retry-After holds one window, at most this
_INFLIGHT_HOLD_S = 30.0  # an unreleased permit counts as released this long after admission
_ACCOUNT_RETRY_CAP_S = 300.0
_EPS = 1e-9
_MIN_STEP_S = 1e-9

# A batch holding exactly one order is charged to the single-order endpoint (facts §2.1).
_SINGLE_ORDER_TWIN = {
    "/api/v5/trade/batch-orders": "/api/v5/trade/order",
    "/api/v5/trade/cancel-batch-orders": "/api/v5/trade/cancel-order",
    "/api/v5/trade/amend-batch-orders": "/api/v5/trade/amend-order",
}
# Endpoints outside ORDER_ACTIONS that still ride the cancel lane (the dead-man switch).
_CANCEL_LANE_EXTRA = frozenset({"/api/v5/trade/cancel-all-after"})
_PRINCIPALS = frozenset({"IP", "UID", "MasterUID", "UID|IP"})
# BTC-USD-240628-60000-C: underlying, expiry, strike, call/put.
_OPTION_INST_ID = re.compile(r"^([A-Z0-9]+-[A-Z0-9]+)-\d{6}-[0-9.]+-[CP]$")


_seconds = field(seconds, positive=True)
_fraction = field(real, low=0.0, high=1.0, low_open=True)
_flag = field(flag)


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

    Thread safety: immutable.
    """

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

    def cap_hold(self, seconds: float | None) -> float | None:
        """A server-given hold in seconds, capped to ``max_hold_s`` (None stays None;
        negative, ``NaN`` and infinite values become the cap). Pure."""
        if seconds is None:
            return None
        if not 0 <= seconds <= self.max_hold_s:  # NaN fails both comparisons
            return self.max_hold_s
        return float(seconds)


# --------------------------------------------------------------------------- keys


def _param(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    if value in (None, "") and name == "instFamily":
        value = item.get("uly")
        if value in (None, ""):
            parts = str(item.get("instId") or "").split("-")
            value = "-".join(parts[:2]) if len(parts) >= 3 else ""
    return "" if value is None else str(value)


def _is_option(item: Mapping[str, Any]) -> bool:
    if str(item.get("instType") or "").upper() == "OPTION":
        return True
    return bool(_OPTION_INST_ID.match(str(item.get("instId") or "")))


def rule_scope(rule: str, item: Mapping[str, Any] | None) -> str:
    """The concrete scope of ``rule`` for one call (or one batch item).

    ``"UID+instId"`` with ``{"instId": "BTC-USDT"}`` -> ``"UID+instId=BTC-USDT"``;
    ``"UID+instId;OPTION:UID+instFamily"`` switches to the family for options
    (``instType == "OPTION"`` or an option instId); ``"IP"``, ``"UID"``,
    ``"MasterUID"`` and ``"UID|IP"`` have no param part (one Client = one UID and
    one IP); the empty rule is treated as ``"IP"``. A missing param scopes to
    ``""`` (OKX refuses such a call anyway). Pure; never raises.
    """
    item = item or {}
    chosen, _, alternatives = (rule or "IP").partition(";")
    for alternative in alternatives.split(";") if alternatives else ():
        condition, _, alt_rule = alternative.partition(":")
        if condition == "OPTION" and _is_option(item):
            chosen = alt_rule
    parts = chosen.split("+")
    if parts[0] in _PRINCIPALS:
        principal, fields = parts[0], parts[1:]
    else:
        principal, fields = "", parts
    scoped = [f"{name}={_param(item, name)}" for name in fields]
    return "+".join(([principal] if principal else []) + scoped)


@attrs.frozen
class Charge:
    """One budget a call draws on: bucket ``key``, its published ``limit`` per
    ``window_s``, the ``cost`` (tokens) and ``kind`` (``"endpoint"``,
    ``"account"``, or a secondary limit's ``"secondary"`` / ``"lead_trader"``)
    and the ``rule`` its key is scoped by (as declared, e.g. ``"UID+instId"``).
    Thread safety: immutable."""

    key: str
    limit: int
    window_s: float
    cost: int
    kind: str = "endpoint"
    rule: str = ""


def _items(params: Any) -> list[Mapping[str, Any]]:
    if isinstance(params, Mapping):
        return [params]
    if isinstance(params, Sequence) and not isinstance(params, str | bytes):
        return [p for p in params if isinstance(p, Mapping)] or [{}]
    return [{}]


def _order_count(params: Any) -> int:
    if isinstance(params, Sequence) and not isinstance(params, str | bytes | Mapping):
        return max(1, len(params))
    return 1


def plan_charges(
    endpoint: Endpoint,
    params: Any,
    *,
    account_limit: int = DEFAULT_ACCOUNT_ORDER_LIMIT,
    lead_trader: bool = False,
) -> list[Charge]:
    """The budgets a call to ``endpoint`` with ``params`` draws on. Pure.

    ``params`` is a dict, or a list of dicts for batch endpoints. Endpoint
    buckets are keyed ``"METHOD PATH [scope]"``; batch endpoints
    (``cost_unit == "order"``) charge one token per order to the bucket of
    each order's scope, and a batch of exactly one order is charged to the
    single-order endpoint. New orders and amends add the account order
    bucket (``ACCOUNT_BUCKET_KEY``), one token per order. Each of the
    endpoint's ``extra_limits`` that applies (``ExtraLimit.counts``: always,
    per order by a param such as ``isElpTakerAccess``, or ``lead_trader``)
    adds ``"BUCKET [scope]"`` charges the same way (``kind`` ``"secondary"``
    or ``"lead_trader"``).
    Raises ``ValidationError`` when one call needs more tokens than a published
    limit allows (OKX would refuse it; nothing is sent).
    """
    orders = _order_count(params)
    items = _items(params)
    ep = endpoint
    if ep.batch and orders == 1 and ep.path in _SINGLE_ORDER_TWIN:
        ep = registry().get(ep.method, _SINGLE_ORDER_TWIN[ep.path]) or ep
    window = ep.window_s if ep.window_s else _MONTH_S
    costs: dict[str, int] = {}
    for item in items if ep.batch else items[:1]:
        scope = rule_scope(ep.rule, item)
        costs[scope] = costs.get(scope, 0) + 1
    charges = [
        Charge(f"{ep.method} {ep.path} [{scope}]", ep.limit, window, cost, rule=ep.rule or "IP")
        for scope, cost in costs.items()
    ]
    for extra in ep.extra_limits:
        extra_costs: dict[str, int] = {}
        for item in items if ep.batch else items[:1]:
            if extra.counts(item, lead_trader=lead_trader):
                scope = rule_scope(extra.rule, item)
                extra_costs[scope] = extra_costs.get(scope, 0) + 1
        charges += [
            Charge(
                f"{extra.bucket} [{scope}]",
                extra.limit,
                extra.window_s,
                cost if extra.cost_unit == "order" else 1,
                extra.kind,
                extra.rule,
            )
            for scope, cost in extra_costs.items()
        ]
    if endpoint.counts_account_orders:
        charges.append(
            Charge(
                ACCOUNT_BUCKET_KEY,
                account_limit,
                ACCOUNT_ORDER_WINDOW_S,
                orders,
                "account",
                "UID (new and amended orders)",
            )
        )
    for charge in charges:
        if charge.cost > charge.limit:
            raise ValidationError(
                f"{endpoint.method} {endpoint.path}: {charge.cost} orders in one call exceed "
                f"the published limit of {charge.limit} per {charge.window_s:g} s ({charge.key})"
            )
    return charges


# --------------------------------------------------------------------------- buckets


class _Bucket:
    """A sliding-window log for one budget. Only touched under the gate's lock."""

    def __init__(self, charge: Charge, config: RequestGateConfig) -> None:
        self.key = charge.key
        self.kind = charge.kind
        self.rule = charge.rule
        self.window_s = charge.window_s
        self.slow_logged_at = -math.inf  # when a slow wait on it was last logged
        self.headroom = config.headroom
        self.penalty_factor = config.penalty_factor
        self.burst_fraction = config.burst_fraction
        self.cap_hold = config.cap_hold
        self.next_paced = -math.inf  # pacer: earliest next admission once the bucket is hot
        self.recovery_s = config.recovery_windows * charge.window_s
        self.limit = 0
        self.capacity = 0
        self.span_s = charge.window_s
        self.set_limit(charge.limit)
        self._log: deque[tuple[float, int]] = deque()  # (counted-from time, cost), sorted
        self._log_sum = 0
        self._inflight: dict[int, tuple[float, int]] = {}
        self._inflight_sum = 0
        self.hold_until = -math.inf
        self.factor0 = 1.0  # capacity fraction right after the hold; 1 = not penalised
        self.admitted = 0
        self.admitted_cost = 0
        self.total_wait = 0.0
        self.max_wait = 0.0
        self.penalties = 0
        self.throttled = 0
        self.timeouts = 0

    def set_limit(self, limit: int) -> None:
        self.limit = int(limit)
        scaled = self.limit * self.headroom
        self.capacity = max(1, math.ceil(scaled - _EPS))
        self.span_s = self.window_s * self.capacity / scaled

    # -- accounting
    def _prune(self, now: float) -> None:
        if self._inflight:
            for eid, (start, cost) in list(self._inflight.items()):
                if start + _INFLIGHT_HOLD_S <= now:
                    del self._inflight[eid]
                    self._inflight_sum -= cost
                    self._append(start + _INFLIGHT_HOLD_S, cost)
        span = self.span_s
        while self._log and self._log[0][0] + span <= now:
            self._log_sum -= self._log.popleft()[1]

    def _append(self, ts: float, cost: int) -> None:
        if self._log and self._log[-1][0] > ts:
            ts = self._log[-1][0]
        self._log.append((ts, cost))
        self._log_sum += cost

    def used(self, now: float) -> int:
        self._prune(now)
        return self._log_sum + self._inflight_sum

    def _pace_start(self, now: float, cap: int, cost: int, reserved: int) -> float:
        """Earliest time the pacer lets a call of ``cost`` go.

        Work-conserving: waiters queued ahead but blocked on another budget
        (``reserved``) keep their share of the capacity, not the pacing slot.
        """
        busy = self.used(now) + reserved
        burst = max(1, math.floor(cap * self.burst_fraction + _EPS))
        if busy + cost <= burst and self.factor0 >= 1.0:
            return now  # cool bucket: back to back
        return self.next_paced

    def admit(self, now: float, cost: int, eid: int, waited: float) -> None:
        cap = max(1, self.cap(now))
        self.next_paced = max(self.next_paced, now) + cost * self.span_s / cap
        self._inflight[eid] = (now, cost)
        self._inflight_sum += cost
        self.admitted += 1
        self.admitted_cost += cost
        self.total_wait += waited
        self.max_wait = max(self.max_wait, waited)

    def release(self, eid: int, now: float) -> None:
        entry = self._inflight.pop(eid, None)
        if entry is not None:
            self._inflight_sum -= entry[1]
            self._append(now, entry[1])

    # -- adaptive ceiling
    def factor(self, now: float) -> float:
        if self.factor0 >= 1.0:
            return 1.0
        if now < self.hold_until:
            return 0.0
        value = self.factor0 + (1.0 - self.factor0) * (now - self.hold_until) / self.recovery_s
        if value >= 1.0:
            self.factor0 = 1.0
            return 1.0
        return value

    def cap(self, now: float) -> int:
        if now < self.hold_until:
            return 0
        factor = self.factor(now)
        if factor >= 1.0:
            return self.capacity
        return max(1, math.floor(self.capacity * factor + _EPS))

    def fits(self, now: float, cost: int, reserved: int) -> bool:
        cap = self.cap(now)
        if cap <= 0:
            return False
        busy = self.used(now) + reserved
        # A call larger than the ceiling (but within the published limit) goes alone.
        if not (busy + cost <= cap or (busy == 0 and cost > cap)):
            return False
        return self._pace_start(now, cap, cost, reserved) <= now + _EPS

    def next_change(self, now: float, cost: int, reserved: int) -> float:
        """Earliest time at which ``fits`` may turn true without a release."""
        if now < self.hold_until:
            return self.hold_until
        cap = self.cap(now)
        candidates: list[float] = []
        allowed = cap - cost if cost <= cap else 0
        excess = self.used(now) + reserved - allowed
        if excess > 0:
            freed = 0
            for ts, item_cost in self._log:
                freed += item_cost
                if freed >= excess:
                    candidates.append(ts + self.span_s)
                    break
            if self._inflight:
                oldest = min(start for start, _ in self._inflight.values())
                candidates.append(oldest + _INFLIGHT_HOLD_S)
        pace_at = self._pace_start(now, cap, cost, reserved)
        if pace_at > now + _EPS:
            candidates.append(pace_at)
        if self.factor0 < 1.0 and cap < self.capacity:
            step = ((cap + 1) / self.capacity - self.factor0) / (1.0 - self.factor0)
            candidates.append(self.hold_until + step * self.recovery_s + _EPS)
        return max(min(candidates, default=math.inf), now + _MIN_STEP_S)

    def penalise(self, now: float, retry_after: float | None) -> bool:
        """Hold, then restart at a reduced rate. False when already holding (an echo)."""
        self.throttled += 1
        capped = self.cap_hold(retry_after)
        explicit = capped if capped is not None and capped > 0 else 0.0
        if now < self.hold_until:
            if explicit:
                self.hold_until = max(self.hold_until, now + explicit)
            return False
        hold = explicit or min(self.window_s, _MAX_PENALTY_HOLD_S)
        floor = 1.0 / (2 * self.capacity)
        self.factor0 = max(floor, self.factor(now) * self.penalty_factor)
        self.hold_until = now + hold
        # After the hold: one probe, then the reduced rate, evenly spaced (no burst).
        self.next_paced = self.hold_until
        self.penalties += 1
        return True

    def snapshot(self, now: float) -> dict[str, Any]:
        used = self.used(now)
        cap = self.cap(now)
        return {
            "key": self.key,
            "kind": self.kind,
            "limit": self.limit,
            "window_s": self.window_s,
            "capacity": self.capacity,
            "span_s": round(self.span_s, 6),
            "published_rate": round(self.limit / self.window_s, 6),
            "current_rate": round(cap / self.span_s, 6),
            "rate_factor": round(self.factor(now), 4),
            "held_for_s": round(max(0.0, self.hold_until - now), 6),
            "tokens": max(0, cap - used),
            "used": used,
            "in_flight": self._inflight_sum,
            "admitted": self.admitted,
            "admitted_cost": self.admitted_cost,
            "total_wait_s": round(self.total_wait, 6),
            "max_wait_s": round(self.max_wait, 6),
            "penalties": self.penalties,
            "throttled": self.throttled,
            "timeouts": self.timeouts,
        }


# --------------------------------------------------------------------------- permits


class Permit:
    """Admission to send one request; ``release()`` (or ``with``) ends it.

    Release as soon as the response (or the WS reply) has arrived, or the send
    failed: the rate buckets count the call until then, and its concurrency
    slot is freed. ``wait_s`` is how long the call waited in the gate,
    ``admitted_at`` the gate clock's time of admission, ``keys`` the buckets
    it drew on. Thread safety: release is idempotent and may be called from
    any thread.
    """

    __slots__ = ("_gate", "_released", "_slot", "_entries", "wait_s", "admitted_at")

    def __init__(
        self,
        gate: RequestGate | None,
        wait_s: float,
        *,
        slot: bool = True,
        entries: Sequence[tuple[_Bucket, int]] = (),
        admitted_at: float = 0.0,
    ) -> None:
        self._gate = gate
        self._released = False
        self._slot = slot
        self._entries = tuple(entries)
        self.wait_s = wait_s
        self.admitted_at = admitted_at

    @property
    def keys(self) -> tuple[str, ...]:
        """Keys of the rate buckets this permit drew on."""
        return tuple(bucket.key for bucket, _ in self._entries)

    def release(self) -> None:
        """End the call: free the slot, start the buckets' window countdown (idempotent)."""
        if self._gate is None:
            self._released = True
        elif not self._released:
            self._gate._release(self)

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Permit(keys={self.keys!r}, wait_s={self.wait_s:.6f}, released={self._released})"


class _Waiter:
    __slots__ = (
        "charges",
        "slot",
        "start",
        "granted",
        "permit",
        "blocked_on",
        "slot_blocked",
        "waited_for",
        "slow_notes",
        "loads_account_limit",
        "lock",
    )

    def __init__(
        self,
        charges: list[tuple[_Bucket, int]],
        slot: bool,
        start: float,
        loads: bool,
    ) -> None:
        # Its own lock, held from the start: the thread that admits it (or has news
        # for it) releases it, and the waiter parks by acquiring it. Woken alone
        # when admitted (no herd); a release before it parks is not lost.
        self.lock = threading.Lock()
        self.lock.acquire()
        self.charges = charges
        self.slot = slot
        self.start = start
        self.loads_account_limit = loads
        self.granted = False
        self.permit: Permit | None = None
        self.blocked_on: list[_Bucket] = []
        self.slot_blocked = False
        # every bucket that held it back at some point, and the slow-wait lines to log
        self.waited_for: dict[_Bucket, None] = {}
        self.slow_notes: list[tuple[int, str, dict[str, Any]]] = []


# --------------------------------------------------------------------------- the gate


class RequestGate:
    """Admits requests under a concurrency cap and OKX's rate limits.

    ``acquire(endpoint, params, timeout=...)`` returns a ``Permit``;
    ``observe(...)`` is told every response so the gate can react to
    throttling and learn the account order limit. ``close()`` wakes every
    waiter with a gate-stage error. See the module docstring for the rules.

    Thread safety: all methods are thread-safe.
    """

    def __init__(
        self, config: RequestGateConfig | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.config = config or RequestGateConfig()
        self._clock = clock
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._in_flight = 0
        self._cancel_queue: deque[_Waiter] = deque()
        self._queue: deque[_Waiter] = deque()
        self._slotless_waiting = 0  # queued waiters that need no slot (WS order entry)
        self._next_wake = math.inf
        self._closed = False
        self._admitted = 0
        self._timeouts = 0
        self._max_wait = 0.0
        self._total_wait = 0.0
        self._entry_ids = 0
        self._buckets: dict[str, _Bucket] = {}
        configured = self.config.account_order_limit
        self._account_limit = configured or DEFAULT_ACCOUNT_ORDER_LIMIT
        self._account_limit_source = "config" if configured else "default"
        self._account_limit_loaded_at: float | None = None
        self._account_claim: int | None = None  # the load on its way (a claim id), if any
        self._account_claim_ids = itertools.count(1)
        self._account_next_try = -math.inf
        self._account_retry_s = self.config.account_limit_retry_s
        self._account_failures = 0
        self._account_last_error = ""

    # ------------------------------------------------------------------ admission
    def acquire(
        self,
        endpoint: Endpoint | None,
        params: Any = None,
        *,
        method: str = "",
        path: str = "",
        timeout_s: float | None = None,
        concurrency: bool = True,
    ) -> Permit:
        """Block until the call may be sent; FIFO among waiters for the same budgets.

        ``endpoint`` None (a path missing from the registry) draws only on the
        concurrency cap. ``params`` (dict, or list of dicts for batches) scopes
        the buckets and sets the batch cost. ``timeout_s`` defaults to
        ``config.wait_timeout_s``. ``concurrency=False`` (WS order entry) draws
        on the buckets but not on the HTTP in-flight cap.

        Raises ``RequestStateError(stage="gate", dispatched=False)`` on timeout
        or when the gate is closed, and ``ValidationError`` when one call needs
        more tokens than the published limit; nothing was charged or sent.
        """
        method = method or (endpoint.method if endpoint else "")
        path = path or (endpoint.path if endpoint else "")
        limit = self.config.wait_timeout_s if timeout_s is None else max(0.0, float(timeout_s))
        charges = self._plan(endpoint, params)
        lane_cancel = endpoint is not None and (
            endpoint.order_action == "cancel" or endpoint.path in _CANCEL_LANE_EXTRA
        )
        loads = (
            self.config.rate_limits
            and endpoint is not None
            and endpoint.method == "GET"
            and endpoint.path == ACCOUNT_RATE_LIMIT_PATH
        )
        notes: list[tuple[int, str, dict[str, Any]]] = []
        try:
            self._lock.acquire()
            try:
                now = self._clock.monotonic()
                if self._closed:
                    raise RequestStateError(
                        "client closed", stage="gate", dispatched=False, method=method, path=path
                    )
                buckets = [(self._bucket(charge), charge.cost) for charge in charges]
                if (
                    not self._queue
                    and not self._cancel_queue
                    and (not concurrency or self._in_flight < self.config.max_concurrent)
                    and all(bucket.fits(now, cost, 0) for bucket, cost in buckets)
                ):
                    # Nobody waiting and room everywhere: admitted at once, without
                    # queueing (FIFO has no one to be fair to).
                    if concurrency:
                        self._in_flight += 1
                    permit = self._new_permit(buckets, concurrency, now, now, loads)
                    self._lock.release()
                    return permit
            except BaseException:
                self._lock.release()
                raise
            waiter = _Waiter(buckets, concurrency, now, loads)
            return self._wait(waiter, lane_cancel, limit, method, path, notes)
        finally:
            self._emit_later(notes)

    def _wait(
        self,
        waiter: _Waiter,
        lane_cancel: bool,
        limit: float,
        method: str,
        path: str,
        notes: list[tuple[int, str, dict[str, Any]]],
    ) -> Permit:
        """Queue ``waiter`` and wait until it is admitted. Entered with the gate
        lock held (once); returns or raises with it released.

        A waiter parks on its own lock, not on the gate's: the thread that
        admits it has already done the bookkeeping, so once woken it returns
        without taking the gate lock again (with many threads that
        re-acquisition was a second queue behind every release).
        """
        locked = True
        now = waiter.start
        deadline = now + limit
        queue = self._cancel_queue if lane_cancel else self._queue
        queue.append(waiter)
        if not waiter.slot:
            self._slotless_waiting += 1
        try:
            while True:
                if not waiter.granted:  # else admitted by another thread's _grant
                    self._grant(now)
                if waiter.granted:
                    break
                if self._closed:
                    raise RequestStateError(
                        "client closed while waiting in the request gate",
                        stage="gate",
                        dispatched=False,
                        method=method,
                        path=path,
                    )
                now = self._clock.monotonic()
                if now >= deadline:
                    raise self._timeout_error(waiter, limit, method, path, notes)
                wake = min(deadline, self._next_wake)
                self._lock.release()
                locked = False
                # A wake-up released before we park is kept by the lock: not lost.
                park(self._clock, waiter.lock, max(0.0, wake - now))
                if waiter.granted:  # set by _admit (under the gate lock) before its release
                    break
                self._lock.acquire()
                locked = True
                now = self._clock.monotonic()
        except BaseException:
            if not locked:
                self._lock.acquire()
                locked = True
            if waiter.granted and waiter.permit is not None:
                waiter.permit._released = True
                self._release_locked(waiter.permit._slot, waiter.permit._entries)
            elif waiter in queue:
                queue.remove(waiter)
                if not waiter.slot:
                    self._slotless_waiting -= 1
                self._grant(self._clock.monotonic())
            self._wake_all()
            raise
        finally:
            if locked:
                self._lock.release()
        assert waiter.permit is not None
        notes.extend(waiter.slow_notes)  # written by the admitting thread before the wake-up
        return waiter.permit

    def _timeout_error(
        self,
        waiter: _Waiter,
        limit: float,
        method: str,
        path: str,
        notes: list[tuple[int, str, dict[str, Any]]],
    ) -> RequestStateError:
        self._timeouts += 1
        if waiter.slot and self._in_flight >= self.config.max_concurrent:
            waiter.slot_blocked = True  # (a waiter behind a full cap may not have been scanned)
        blocking = [bucket.key for bucket in waiter.blocked_on]
        for bucket in waiter.blocked_on:
            bucket.timeouts += 1
        if waiter.slot_blocked:
            blocking.append(f"concurrency cap {self.config.max_concurrent}")
        what = ", ".join(blocking) or "earlier waiters"
        if waiter.loads_account_limit:
            self._account_failure_locked("account-rate-limit call not admitted by the gate")
            notes.append(self._account_note("account-rate-limit call not admitted by the gate"))
        notes.append(
            (
                logging.WARNING,
                f"request gate timeout: {method} {path} not admitted within {limit:g} s "
                f"(waiting for {what})",
                {"method": method, "path": path, "waited_s": limit, "blocked_on": what},
            )
        )
        return RequestStateError(
            f"not admitted by the request gate within {limit:g} s (waiting for {what})",
            stage="gate",
            dispatched=False,
            method=method,
            path=path,
        )

    def _plan(self, endpoint: Endpoint | None, params: Any) -> list[Charge]:
        if endpoint is None or not self.config.rate_limits:
            return []
        with self._cond:
            account_limit = self._account_limit
        return plan_charges(
            endpoint, params, account_limit=account_limit, lead_trader=self.config.lead_trader
        )

    def _bucket(self, charge: Charge) -> _Bucket:
        bucket = self._buckets.get(charge.key)
        if bucket is None:
            if charge.kind == "account":
                charge = attrs.evolve(charge, limit=self._account_limit)
            bucket = self._buckets[charge.key] = _Bucket(charge, self.config)
        return bucket

    def _grant(self, now: float) -> None:
        """Admit every waiter that may go now, in order; compute the next wake time.

        Called with the lock held. Cancel-lane waiters come first. A waiter that
        does not fit reserves its cost on its buckets, and a bucket that could
        not fit a waiter stays closed to later waiters (FIFO per budget); other
        buckets are unaffected. Admitted waiters are woken one by one (not the
        whole queue: with 64 threads on a cap of 10 that herd cost more than the
        calls); everyone is woken when the next timed change moved earlier.
        """
        if not self._queue and not self._cancel_queue:
            self._next_wake = math.inf
            return
        slots = self.config.max_concurrent - self._in_flight
        reserved: dict[_Bucket, int] = {}
        blocked: set[_Bucket] = set()
        next_wake = math.inf
        slotless_ahead = self._slotless_waiting
        for queue in (self._cancel_queue, self._queue):
            if slots <= 0 and not slotless_ahead:
                break  # (see below) this queue and the next must wait for a release
            keep: list[_Waiter] = []
            while queue:
                if slots <= 0 and not slotless_ahead:
                    # No slot left and every waiter from here on needs one: none of
                    # them can go before a release, which grants again. (Scanning
                    # them would cost O(waiters) per release under the lock.)
                    break
                waiter = queue.popleft()
                if not waiter.slot:
                    slotless_ahead -= 1
                waiter.blocked_on = []
                waiter.slot_blocked = False
                for bucket, cost in waiter.charges:
                    held = reserved.get(bucket, 0)
                    if bucket in blocked:
                        waiter.blocked_on.append(bucket)
                    elif not bucket.fits(now, cost, held):
                        waiter.blocked_on.append(bucket)
                        blocked.add(bucket)
                        next_wake = min(next_wake, bucket.next_change(now, cost, held))
                ok = not waiter.blocked_on
                if ok and waiter.slot and slots <= 0:
                    ok = False
                    waiter.slot_blocked = True
                if ok:
                    if waiter.slot:
                        slots -= 1
                        self._in_flight += 1
                    else:
                        self._slotless_waiting -= 1
                    self._admit(waiter, now)
                else:
                    for bucket, cost in waiter.charges:
                        reserved[bucket] = reserved.get(bucket, 0) + cost
                    waiter.waited_for.update(dict.fromkeys(waiter.blocked_on))
                    keep.append(waiter)
            queue.extendleft(reversed(keep))  # the skipped ones, in their order, in front
        earlier = next_wake < self._next_wake
        self._next_wake = next_wake
        if earlier:
            self._wake_all()

    def _admit(self, waiter: _Waiter, now: float) -> None:
        waited = now - waiter.start
        if waited > self.config.slow_wait_log_s:
            self._slow_wait_notes(waiter, waited, now)
        waiter.permit = self._new_permit(
            waiter.charges, waiter.slot, waiter.start, now, waiter.loads_account_limit
        )
        waiter.granted = True
        self._wake(waiter)

    def _new_permit(
        self,
        charges: Sequence[tuple[_Bucket, int]],
        slot: bool,
        start: float,
        now: float,
        loads_account_limit: bool,
    ) -> Permit:
        """The bookkeeping of one admission (slot already counted by the caller)."""
        waited = now - start
        entries: list[tuple[_Bucket, int]] = []
        for bucket, cost in charges:
            self._entry_ids += 1
            bucket.admit(now, cost, self._entry_ids, waited)
            entries.append((bucket, self._entry_ids))
        if loads_account_limit:
            # A load is on its way: nobody else needs to start one until it reports back
            # (a user's own call claims it here; the REST core's refresh claimed it already).
            if self._account_claim is None:
                self._account_claim = next(self._account_claim_ids)
            self._account_next_try = max(self._account_next_try, now + self._account_retry_s)
        self._admitted += 1
        self._total_wait += waited
        self._max_wait = max(self._max_wait, waited)
        return Permit(self, waited, slot=slot, entries=entries, admitted_at=now)

    def _slow_wait_notes(self, waiter: _Waiter, waited: float, now: float) -> None:
        """The INFO lines for a waiter admitted after a slow wait: one per bucket that held
        it, unless that bucket's slow wait was logged less than a window ago (lock held)."""
        for bucket in waiter.waited_for:
            if now - bucket.slow_logged_at < bucket.window_s:
                continue
            bucket.slow_logged_at = now
            window = f"{bucket.window_s:g} s" if bucket.window_s < _MONTH_S else "month"
            waiter.slow_notes.append(
                (
                    logging.INFO,
                    f"request gate: a call waited {waited:.3g} s for bucket {bucket.key} "
                    f"(rule {bucket.rule}, published limit {bucket.limit} per {window}, "
                    f"run at {self.config.headroom:g} of it); more calls on this bucket wait "
                    "the same way, logged again after a window",
                    {
                        "bucket": bucket.key,
                        "rule": bucket.rule,
                        "limit": bucket.limit,
                        "window_s": bucket.window_s,
                        "waited_s": round(waited, 6),
                    },
                )
            )

    @staticmethod
    def _wake(waiter: _Waiter) -> None:
        """Release ``waiter``'s lock (under the gate lock, so only one releaser at a
        time; a lock already released and not yet re-taken by its waiter stays so)."""
        if waiter.lock.locked():
            waiter.lock.release()

    def _release(self, permit: Permit) -> None:
        with self._cond:
            if not permit._released:  # checked under the lock: two releasers free it once
                permit._released = True
                self._release_locked(permit._slot, permit._entries)

    def _release_locked(self, slot: bool, entries: Sequence[tuple[_Bucket, int]]) -> None:
        now = self._clock.monotonic()
        for bucket, eid in entries:
            bucket.release(eid, now)
        if slot:
            self._in_flight -= 1
        self._grant(now)

    # ------------------------------------------------------------------ feedback
    def observe(
        self,
        endpoint: Endpoint | None,
        params: Any = None,
        *,
        http_status: int | None,
        code: str,
        retry_after_s: float | None = None,
        data: list[Any] | None = None,
    ) -> None:
        """Tell the gate how a response ended. Call after every response.

        HTTP 429 or code 50011 (top level or any item's ``sCode``) penalises
        the call's endpoint (and secondary-limit) buckets; 50061 penalises the
        account order bucket (see the module docstring). A successful
        ``GET /api/v5/trade/account-rate-limit`` sets the account order limit
        from ``data[0]["accRateLimit"]``; a failed one is logged as a warning
        and retried later with backoff, keeping the limit already known.
        Never raises for odd input (it is feedback, not validation).
        """
        if endpoint is None:
            return
        code = str(code or "")
        if not self.config.rate_limits:
            return
        if endpoint.method == "GET" and endpoint.path == ACCOUNT_RATE_LIMIT_PATH:
            self._observe_account_limit(http_status, code, data)
        item_codes = {
            str(item.get("sCode") or "") for item in data or () if isinstance(item, Mapping)
        }
        hit_endpoint = (http_status == 429 and code != "50061") or "50011" in (item_codes | {code})
        hit_account = "50061" in (item_codes | {code})
        if not (hit_endpoint or hit_account):
            return
        try:
            charges = self._plan(endpoint, params)
        except ValidationError:
            return
        notes: list[tuple[int, str, dict[str, Any]]] = []
        with self._cond:
            now = self._clock.monotonic()
            for charge in charges:
                if (charge.kind == "account" and hit_account) or (
                    charge.kind != "account" and hit_endpoint  # OKX does not say which limit
                ):
                    bucket = self._bucket(charge)
                    if bucket.penalise(now, retry_after_s):
                        notes.append(
                            (
                                logging.WARNING,
                                f"rate limit hit (http {http_status}, code {code or '-'}): "
                                f"bucket {bucket.key} held {bucket.hold_until - now:.3g} s, "
                                f"then restarts at {bucket.factor0:.2g} of its rate",
                                {
                                    "bucket": bucket.key,
                                    "http_status": http_status,
                                    "code": code,
                                    "hold_s": round(bucket.hold_until - now, 6),
                                    "rate_factor": round(bucket.factor0, 4),
                                },
                            )
                        )
            self._grant(now)
            self._wake_all()
        self._emit_later(notes)

    # ------------------------------------------------------------------ account limit
    def _observe_account_limit(self, http_status: int | None, code: str, data: Any) -> None:
        ok = code == "0" and (http_status is None or 200 <= http_status < 300)
        value: int | None = None
        if ok:
            try:
                value = int(str(data[0]["accRateLimit"]))
            except (LookupError, TypeError, ValueError):
                value = None
        if value is not None and value > 0:
            self.set_account_order_limit(value)
            return
        reason = "no usable accRateLimit" if ok else f"http={http_status} code={code or '-'}"
        self.account_limit_load_failed(reason)

    def set_account_order_limit(self, limit: int, *, source: str = "account-rate-limit") -> None:
        """Set the account new+amend limit per 2 s (from ``accRateLimit``).

        Resizes the account order bucket at once and restarts the refresh
        interval. Raises ValueError for a non-positive limit.
        """
        if limit <= 0:
            raise ValueError(f"account order limit must be > 0, got {limit}")
        with self._cond:
            before = self._account_limit
            self._account_limit = int(limit)
            self._account_limit_source = source
            self._account_limit_loaded_at = self._clock.monotonic()
            self._account_claim = None
            self._account_next_try = -math.inf  # next load: after refresh_account_limit_s
            self._account_retry_s = self.config.account_limit_retry_s
            self._account_last_error = ""
            bucket = self._buckets.get(ACCOUNT_BUCKET_KEY)
            if bucket is not None:
                bucket.set_limit(self._account_limit)
            self._grant(self._clock.monotonic())
            self._wake_all()
        if before != limit:
            log.info(
                "account order limit set to %d per 2 s (was %d, from %s)",
                int(limit),
                before,
                source,
                extra={"limit": int(limit), "previous": before, "source": source},
            )

    def account_limit_load_failed(self, reason: str) -> None:
        """Record a failed account-limit load: log a warning, back off, keep the known limit.

        ``observe`` calls this for a failed ``account-rate-limit`` response (a
        claimed load that got no response at all is reported by
        ``release_account_limit_claim``). Ends any claim; the next load is due
        only after the backoff.
        """
        with self._cond:
            self._account_failure_locked(reason)
            note = self._account_note(reason)
        self._emit_later([note])

    def _account_failure_locked(self, reason: str) -> None:
        now = self._clock.monotonic()
        self._account_failures += 1
        self._account_last_error = reason
        self._account_claim = None
        self._account_next_try = now + self._account_retry_s
        cap = max(self.config.account_limit_retry_s, _ACCOUNT_RETRY_CAP_S)
        self._account_retry_s = min(self._account_retry_s * 2, cap)

    def _account_note(self, reason: str) -> tuple[int, str, dict[str, Any]]:
        """The warning for a failed load (emitted by the caller after the lock is released)."""
        retry_in = self._account_next_try - self._clock.monotonic()
        return (
            logging.WARNING,
            f"account order limit load failed ({reason}); keeping the "
            f"{self._account_limit_source} limit {self._account_limit} per 2 s",
            {"reason": reason, "limit": self._account_limit, "retry_in_s": round(retry_in, 3)},
        )

    def account_limit_refresh_due(self) -> bool:
        """True when the account order limit should be loaded now (a query, not a claim).

        Due when never loaded, or older than ``refresh_account_limit_s``, unless
        a load is on its way (claimed with ``claim_account_limit_refresh``, or a
        ``GET /api/v5/trade/account-rate-limit`` admitted by the gate whose
        answer has not been observed) or the gate is backing off after a failed
        load. Asking twice is harmless; to start a load, claim it instead. A
        load admitted but never reported back counts as failed once its retry
        delay has passed. Always False when ``rate_limits`` is off.
        """
        if not self.config.rate_limits:
            return False
        notes: list[tuple[int, str, dict[str, Any]]] = []
        with self._cond:
            due = self._account_due_locked(self._clock.monotonic(), notes)
        self._emit_later(notes)
        return due

    def claim_account_limit_refresh(self) -> int | None:
        """Claim the next account-limit load when one is due; returns a claim id or None.

        Atomic: of several threads asking at once, exactly one gets the claim
        (the others get None and go on with the limit already known, so no
        order waits behind a load it did not start). The holder loads
        ``GET /api/v5/trade/account-rate-limit``; its answer reaches the gate
        through ``observe`` (which ends the claim), and the holder must then
        call ``release_account_limit_claim`` (in a ``finally``), which counts
        the load as failed when nothing reported its outcome. None when not
        due (see ``account_limit_refresh_due``) or ``rate_limits`` is off.
        Never raises.
        """
        if not self.config.rate_limits:
            return None
        notes: list[tuple[int, str, dict[str, Any]]] = []
        with self._cond:
            now = self._clock.monotonic()
            claim: int | None = None
            if self._account_due_locked(now, notes):
                claim = self._account_claim = next(self._account_claim_ids)
                # The holder reports back in a finally; should it not (a thread that
                # died), the claim lapses after it could have waited in the gate and
                # its retry delay.
                lapse = now + self.config.wait_timeout_s + self._account_retry_s
                self._account_next_try = max(self._account_next_try, lapse)
        self._emit_later(notes)
        return claim

    def release_account_limit_claim(self, claim: int, reason: str) -> None:
        """End the load claimed as ``claim``: when its outcome was not reported
        (no answer observed, not refused by the gate), count it as failed with
        ``reason`` (warning logged, backoff). A no-op when the outcome is known
        already, or a newer load superseded it. Never raises.
        """
        notes: list[tuple[int, str, dict[str, Any]]] = []
        with self._cond:
            if self._account_claim == claim:
                self._account_failure_locked(reason)
                notes.append(self._account_note(reason))
        self._emit_later(notes)

    def _account_due_locked(self, now: float, notes: list[tuple[int, str, dict[str, Any]]]) -> bool:
        loaded = self._account_limit_loaded_at
        if loaded is not None and now - loaded < self.config.refresh_account_limit_s:
            return False
        if now >= self._account_next_try and self._account_claim is not None:
            self._account_failure_locked("previous load got no response")
            notes.append(self._account_note("previous load got no response"))
        return now >= self._account_next_try and self._account_claim is None

    @property
    def account_order_limit(self) -> int:
        """The account new+amend limit per 2 s currently enforced."""
        with self._cond:
            return self._account_limit

    # ------------------------------------------------------------------ inspection
    @property
    def in_flight(self) -> int:
        """HTTP requests currently admitted and not yet released."""
        with self._cond:
            return self._in_flight

    def stats(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot.

        Top level: ``in_flight``, ``max_concurrent``, ``waiting``, ``admitted``,
        ``timeouts``, ``total_wait_s``, ``max_wait_s``, ``rate_limits``,
        ``headroom``, ``account_order_limit`` (limit, source, age, failures).
        ``buckets``: one dict per bucket with ``key``, ``kind``, ``limit``,
        ``window_s``, ``capacity``, ``span_s``, ``published_rate``,
        ``current_rate`` (what the gate allows now, per second),
        ``rate_factor``, ``held_for_s``, ``tokens`` (room now), ``used``,
        ``in_flight``, ``admitted``, ``admitted_cost``, ``total_wait_s``,
        ``max_wait_s``, ``penalties``, ``throttled``, ``timeouts``.
        """
        with self._cond:
            now = self._clock.monotonic()
            loaded = self._account_limit_loaded_at
            return {
                "in_flight": self._in_flight,
                "max_concurrent": self.config.max_concurrent,
                "waiting": len(self._queue) + len(self._cancel_queue),
                "admitted": self._admitted,
                "timeouts": self._timeouts,
                "total_wait_s": round(self._total_wait, 6),
                "max_wait_s": round(self._max_wait, 6),
                "rate_limits": self.config.rate_limits,
                "headroom": self.config.headroom,
                "account_order_limit": {
                    "limit": self._account_limit,
                    "source": self._account_limit_source,
                    "loaded_age_s": None if loaded is None else round(now - loaded, 3),
                    "load_failures": self._account_failures,
                    "last_error": self._account_last_error,
                },
                "buckets": [self._buckets[key].snapshot(now) for key in sorted(self._buckets)],
            }

    def buckets(self) -> list[str]:
        """Keys of the buckets created so far, sorted (a snapshot)."""
        with self._cond:
            return sorted(self._buckets)

    def close(self) -> None:
        """Refuse new calls and wake every waiter (they raise a gate-stage error).

        Permits already granted may still be released. Idempotent.
        """
        with self._cond:
            self._closed = True
            self._wake_all()

    def _wake_all(self) -> None:
        """Wake every queued waiter (state changed for all: close, penalty, new limit)."""
        for queue in (self._cancel_queue, self._queue):
            for waiter in queue:
                self._wake(waiter)

    @staticmethod
    def _emit_later(notes: list[tuple[int, str, dict[str, Any]]]) -> None:
        for level, message, extra in notes:
            log.log(level, message, extra=extra)
        notes.clear()
