"""Server-side rate limits, enforced per the endpoint table (facts §2).

Each endpoint in :func:`okx_sync.rest.endpoints.registry` has ``limit`` per
``window_s`` keyed by its ``rule`` (``IP``, ``UID``, ``UID+instId;OPTION:UID+instFamily``
...). :class:`RateLimiter` keeps sliding windows (timestamps of admitted requests in
the last ``window_s``) per (endpoint, key) and refuses a request that would exceed
one (the caller answers HTTP 429 + 50011). Batch endpoints count orders per key; a
batch carrying exactly one order is charged to the single-order endpoint. The
account order limit (``account_order_limit`` new + amended orders per 2 s, spot
exempt, facts §2.3) is checked beside it (50061). WS order operations share the
REST buckets.

Only admitted requests are counted. Thread safety: ``check`` is atomic under a lock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..clock import Clock
from ..rest.endpoints import Endpoint, EndpointRegistry, registry

__all__ = ["RateLimiter", "RATE_LIMITED", "ACCOUNT_LIMITED", "SINGLE_OF_BATCH"]

RATE_LIMITED = "50011"
ACCOUNT_LIMITED = "50061"
ACCOUNT_WINDOW_S = 2.0

# batch path -> the single-order path a one-order batch is charged to (facts §2.1)
SINGLE_OF_BATCH = {ep.path: ep.single_order_twin for ep in registry() if ep.single_order_twin}

InstInfo = Callable[[str], "tuple[str, str] | None"]  # instId -> (instType, instFamily)


class RateLimiter:
    """Sliding-window limits per endpoint rule plus the account order limit."""

    def __init__(
        self,
        clock: Clock,
        registry: EndpointRegistry,
        *,
        account_order_limit: int = 1000,
        inst_info: InstInfo | None = None,
        enabled: bool = True,
    ) -> None:
        self._clock = clock
        self._registry = registry
        self._inst_info = inst_info or (lambda _i: None)
        self._lock = threading.Lock()
        self._hits: dict[tuple[Any, ...], deque[tuple[float, int]]] = {}
        self.account_order_limit = account_order_limit
        self.enabled = enabled

    def _key_for(self, ep: Endpoint, ip: str, uid: str, item: Mapping[str, Any]) -> tuple[Any, ...]:
        rule = ep.rule
        inst_id = str(item.get("instId") or "")
        info = self._inst_info(inst_id) if inst_id else None
        if ";OPTION:" in rule:
            plain, option = rule.split(";OPTION:", 1)
            rule = option if info is not None and info[0] == "OPTION" else plain
        if rule == "UID|IP":
            rule = "UID" if uid else "IP"
        parts: list[Any] = [ep.method, ep.path]
        for token in rule.split("+"):
            if token == "IP":
                parts.append(("ip", ip))
            elif token in ("UID", "MasterUID"):
                parts.append(("uid", uid))
            elif token == "instFamily":
                family = info[1] if info is not None else str(item.get("instFamily") or "")
                parts.append(("instFamily", family))
            elif token:
                parts.append((token, str(item.get(token) or "")))
        return tuple(parts)

    def _count(
        self, key: tuple[Any, ...], now: float, window: float
    ) -> tuple[deque[tuple[float, int]], int]:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        while hits and hits[0][0] <= now - window:
            hits.popleft()
        return hits, sum(c for _, c in hits)

    def check(
        self,
        ep: Endpoint,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
        *,
        ip: str,
        uid: str = "",
    ) -> str | None:
        """Admit (and count) a request, or return the refusing code (50011 / 50061)."""
        if not self.enabled:
            return None
        items: list[Mapping[str, Any]]
        if isinstance(params, Mapping):
            items = [params]
        elif params is None:
            items = [{}]
        else:
            items = [p for p in params if isinstance(p, Mapping)] or [{}]
        charged = ep
        if ep.batch and len(items) == 1 and ep.path in SINGLE_OF_BATCH:
            single = self._registry.get(ep.method, SINGLE_OF_BATCH[ep.path])
            if single is not None:
                charged = single
        costs: dict[tuple[Any, ...], int] = {}
        for item in items:
            key = self._key_for(charged, ip, uid, item)
            costs[key] = costs.get(key, 0) + (1 if charged.batch else 0)
        if not charged.batch:
            costs = dict.fromkeys(costs, 1)
        account_cost = 0
        if ep.counts_account_orders and uid:
            for item in items:
                info = self._inst_info(str(item.get("instId") or ""))
                if info is None or info[0] not in ("SPOT", "MARGIN"):
                    account_cost += 1
        window = charged.window_s or 2.0
        now = self._clock.monotonic()
        with self._lock:
            pending: list[tuple[deque[tuple[float, int]], int]] = []
            for key, cost in costs.items():
                hits, used = self._count(key, now, window)
                if used + cost > charged.limit:
                    return RATE_LIMITED
                pending.append((hits, cost))
            if account_cost:
                hits, used = self._count(("account-orders", uid), now, ACCOUNT_WINDOW_S)
                if used + account_cost > self.account_order_limit:
                    return ACCOUNT_LIMITED
                pending.append((hits, account_cost))
            for hits, cost in pending:
                hits.append((now, cost))
        return None

    def reset(self) -> None:
        """Forget every counted request."""
        with self._lock:
            self._hits.clear()
