"""The request gate: concurrency cap + sliding-window rate buckets, shared by every thread.

Every REST call (and WS order entry) asks the gate for a permit before it is
sent. ``RequestGate.acquire`` blocks until every budget the call draws on has
room, or raises ``RequestStateError(stage="gate", dispatched=False)`` when it
cannot be admitted within the timeout or the gate is closed: nothing was sent.

Budgets a call draws on (``charges.plan_charges``):

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

How a bucket counts (``window.Window``): a bucket with published limit ``L``
per ``W`` seconds runs ``capacity = ceil(headroom * L)`` admissions per ``span
= W * capacity / (headroom * L)`` seconds, as a sliding-window log: an
admission occupies the bucket while the request is in flight and for ``span``
seconds after ``Permit.release()``, so two admissions more than ``span`` apart
never land in one OKX window whatever the latency jitter; an unreleased permit
counts as released 30 s after admission. A pacer lets ``burst_fraction`` of the
capacity go back to back and spaces the rest ``span / capacity`` apart.

Throttling: HTTP 429, code 50011 or 50061 (top level or an item's ``sCode``)
reported through ``observe`` penalise the bucket concerned for every thread:
it admits nothing until ``Retry-After`` (capped to ``max_hold_s``; else one
window) has passed, then runs at ``penalty_factor`` of its capacity and
recovers linearly to the full ceiling over ``recovery_windows`` windows
(adaptive, like botocore's client-side rate limiter). 50061 penalises the
account order bucket, the others the endpoint's (its secondary-limit buckets
included: OKX does not say which limit was hit).

Fairness (``queue``): waiters are served first come, first served among those
competing for the same budget; a waiter for a full bucket never blocks callers
of other buckets (no head-of-line blocking). Cancels (and
``cancel-all-after``) form their own lane: they draw only on their own
endpoint buckets and are given the next free in-flight slot before placements
and amends.

The account order limit (``account_limit.AccountLimit``, ``RequestGate.account_limit``)
holds the limit in force and the whole load protocol: due after
``refresh_account_limit_s``, claimed by exactly one thread
(``AccountLimit.refresh(load)``, called by REST order entry and, through the
``Client``, WS order entry), answered through ``observe``, backed off after a
failure.

Where the windows live (``RequestGateConfig(backend=...)``, ``backend``):
``LocalGateBackend()`` (default) keeps them in this process, shared by every
gate (every ``Client``) of the process with the same scope: the IP buckets by
all, the UID buckets and the account order bucket by the gates of one API key.
``RedisGateBackend(url)`` (``redis_backend``, ``redis_lua``) keeps them in
Redis for every process and host on the account: one atomic Lua call per
admission on the server's clock, shared penalties, a shared account limit,
and a fail or local-fallback policy when Redis is unreachable. The concurrency
cap, the queue and the counters stay per gate either way.

Parts, one idea per module: ``config`` (``RequestGateConfig``), ``charges``
(pure planning), ``window`` (pure bucket arithmetic, ``now`` passed in),
``backend`` (``GateBackend`` and ``BucketStore``, the interfaces to window
state, and ``LocalGateBackend``), ``redis_backend`` and ``redis_lua``, ``queue`` (lanes, grant scan, parking), ``admission``
(the lock, slots and waiting), ``account_limit``, ``stats``, ``notes`` (log
lines), ``permit`` and ``gate`` (``RequestGate``, the coordinator).

Thread safety: one gate is shared by all threads of a Client (and its windows
by the gates of its scope, above); every public
method may be called from any thread. A queued waiter parks on its own lock
(``clock.park``), released by the thread that admits it or has news for every
waiter (close, penalty, new limit); no gate lock is held while it waits, and no
user code (logging handlers included) runs while a gate lock is held.
"""

from __future__ import annotations

from .account_limit import ACCOUNT_RATE_LIMIT_PATH, AccountLimit
from .backend import BucketStore, GateBackend, LocalGateBackend
from .charges import (
    ACCOUNT_BUCKET_KEY,
    ACCOUNT_ORDER_WINDOW_S,
    DEFAULT_ACCOUNT_ORDER_LIMIT,
    Charge,
    plan_charges,
    rule_scope,
)
from .config import RequestGateConfig
from .gate import RequestGate
from .permit import Permit
from .redis_backend import RedisGateBackend
from .stats import AccountLimitStats, BucketStats, GateStats

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
    "ACCOUNT_RATE_LIMIT_PATH",
    "AccountLimit",
    "GateBackend",
    "LocalGateBackend",
    "RedisGateBackend",
    "BucketStore",
    "GateStats",
    "BucketStats",
    "AccountLimitStats",
]
