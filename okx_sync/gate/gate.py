"""``RequestGate``: the coordinator over the gate's parts (see the package docstring).

It plans what a call draws on (``plan_charges``), hands admission to
``Admission`` (lock, slots, lanes, the rate windows behind a ``GateBackend``),
routes the answers it is told about (throttling to ``Admission.penalise``,
account-limit loads to ``AccountLimit``) and keeps the public method names the
callers use.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import RequestStateError, ValidationError
from ..rest.endpoints import Endpoint
from .account_limit import AccountLimit
from .admission import Admission
from .backend import GateScope, key_digest
from .charges import Charge, plan_charges, rides_cancel_lane, throttle_hits
from .config import RequestGateConfig
from .permit import Permit
from .stats import GateStats

__all__ = ["RequestGate", "ACCOUNT_CONFIG_PATH"]

ACCOUNT_CONFIG_PATH = "/api/v5/account/config"

_log = logging.getLogger("okx_sync.gate")


class RequestGate:
    """Admits requests under a concurrency cap and OKX's rate limits.

    ``acquire(endpoint, params, timeout=...)`` returns a ``Permit``;
    ``observe(...)`` is told every response so the gate can react to
    throttling and learn the account order limit. ``account_limit`` (an
    :class:`~okx_sync.gate.account_limit.AccountLimit`) runs the load protocol
    of that limit; order entry calls its ``refresh(load)``. ``close()`` wakes
    every waiter with a gate-stage error. The rules are in the
    :mod:`okx_sync.gate` package docstring. With ``RequestGateConfig(enabled=False)``
    it admits every call at once (a WARNING at construction); only ``close()``
    still refuses.

    Thread safety: all methods are thread-safe; no lock is held while a waiter
    parks or while a log line is emitted.
    """

    def __init__(
        self,
        config: RequestGateConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        api_key: str | None = None,
    ) -> None:
        self.config = config or RequestGateConfig()
        self._clock = clock
        self._bypass_closed = False
        if not self.config.enabled:
            _log.warning(
                "request gate DISABLED (RequestGateConfig(enabled=False)): no concurrency cap, "
                "no rate limits; calls go out as fast as the program sends them — your own "
                "limiter must keep within OKX's limits (429/50011, risk of an IP or account ban)"
            )
        backend = self.config.backend
        scope = GateScope(
            uid=key_digest(api_key),
            ip_label=getattr(backend, "ip_label", None) or socket.gethostname(),
        )
        store = backend.attach(self.config, clock, scope)
        self._store = store
        self.account_limit = AccountLimit(
            self.config, clock, self._account_limit_changed, shared=store.account_share()
        )
        self._admission = Admission(self.config, clock, store, self.account_limit)

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
        With the gate disabled: a permit at once (only a closed gate refuses).
        """
        if not self.config.enabled:
            if self._bypass_closed:
                raise RequestStateError(
                    "client closed",
                    stage="gate",
                    dispatched=False,
                    method=method or (endpoint.method if endpoint else ""),
                    path=path or (endpoint.path if endpoint else ""),
                )
            return Permit(None, 0.0, slot=False, admitted_at=self._clock.monotonic())
        return self._admission.acquire(
            self._plan(endpoint, params),
            slot=concurrency,
            cancel_lane=rides_cancel_lane(endpoint),
            loads=self.config.rate_limits and AccountLimit.is_load(endpoint),
            timeout_s=self.config.wait_timeout_s
            if timeout_s is None
            else max(0.0, float(timeout_s)),
            method=method or (endpoint.method if endpoint else ""),
            path=path or (endpoint.path if endpoint else ""),
        )

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
        account order bucket (``throttle_hits``). An ``account-rate-limit``
        answer goes to ``account_limit.observe_answer`` (a new limit, or a
        failed load with backoff). Nothing happens with ``rate_limits`` off.
        Never raises for odd input (it is feedback, not validation).
        """
        if endpoint is None or not self.config.rate_limits:
            return
        code = str(code or "")
        if AccountLimit.is_load(endpoint):
            self.account_limit.observe_answer(http_status, code, data)
        if endpoint.path == ACCOUNT_CONFIG_PATH and code == "0":
            self._learn_uid(data)
        hit_endpoint, hit_account = throttle_hits(http_status, code, data)
        if not (hit_endpoint or hit_account):
            return
        try:
            charges = self._plan(endpoint, params)
        except ValidationError:
            return
        hit = [c for c in charges if (hit_account if c.kind == "account" else hit_endpoint)]
        self._admission.penalise(hit, http_status, code, retry_after_s)

    def _learn_uid(self, data: list[Any] | None) -> None:
        """``account/config`` answered: UID-scoped buckets use the account's uid."""
        try:
            uid = str(data[0]["uid"]) if data else ""
        except (LookupError, TypeError):
            return
        if uid:
            self._admission.set_uid(uid)

    def _plan(self, endpoint: Endpoint | None, params: Any) -> list[Charge]:
        if endpoint is None or not self.config.rate_limits:
            return []
        return plan_charges(
            endpoint,
            params,
            account_limit=self.account_limit.limit,
            lead_trader=self.config.lead_trader,
        )

    # ------------------------------------------------------------------ account limit
    def _account_limit_changed(self) -> None:
        self._admission.resize_account_bucket()

    def set_account_order_limit(self, limit: int, *, source: str = "account-rate-limit") -> None:
        """Set the account new+amend limit per 2 s (``account_limit.set``): the account
        bucket is resized at once, the refresh interval restarts. Raises ValueError
        for a non-positive limit."""
        self.account_limit.set(limit, source=source)

    def account_limit_load_failed(self, reason: str) -> None:
        """Record a failed load by other means (``account_limit.load_failed``): WARNING,
        backoff, the known limit stays. Never raises."""
        self.account_limit.load_failed(reason)

    def account_limit_refresh_due(self) -> bool:
        """True when a load of the account limit should start now (``account_limit.due``;
        a query, not a claim). Never raises."""
        return self.account_limit.due()

    def claim_account_limit_refresh(self) -> int | None:
        """Claim the next load when due (``account_limit.claim``): a claim id for exactly
        one of racing threads, else None. Never raises."""
        return self.account_limit.claim()

    def release_account_limit_claim(self, claim: int, reason: str) -> None:
        """End a claimed load (``account_limit.release_claim``): one that reported no
        outcome counts as failed with ``reason``. Never raises."""
        self.account_limit.release_claim(claim, reason)

    @property
    def account_order_limit(self) -> int:
        """The account new+amend limit per 2 s currently enforced."""
        return self.account_limit.limit

    # ------------------------------------------------------------------ inspection
    @property
    def in_flight(self) -> int:
        """HTTP requests currently admitted and not yet released."""
        return self._admission.in_flight

    def stats(self) -> GateStats:
        """A frozen :class:`~okx_sync.gate.stats.GateStats` snapshot (``to_dict()`` for JSON).

        Top level: ``in_flight``, ``max_concurrent``, ``waiting``, ``admitted``,
        ``timeouts``, ``total_wait_s``, ``max_wait_s``, ``rate_limits``,
        ``headroom``, ``account_order_limit`` (limit, source, age, failures).
        ``buckets``: one ``BucketStats`` per bucket with ``key``, ``kind``, ``limit``,
        ``window_s``, ``capacity``, ``span_s``, ``published_rate``,
        ``current_rate`` (what the gate allows now, per second),
        ``rate_factor``, ``held_for_s``, ``tokens`` (room now), ``used``,
        ``in_flight``, ``admitted``, ``admitted_cost``, ``total_wait_s``,
        ``max_wait_s``, ``penalties``, ``throttled``, ``timeouts``; ``backend``
        (the backend's figures); ``enabled`` (False: the gate is off, nothing
        above counts).
        """
        return self._admission.snapshot(self.account_limit.snapshot())

    def buckets(self) -> list[str]:
        """Keys of the buckets created so far, sorted (a snapshot)."""
        return self._admission.keys()

    def close(self) -> None:
        """Refuse new calls and wake every waiter (they raise a gate-stage error).

        Permits already granted may still be released. Idempotent.
        """
        self._bypass_closed = True
        self._admission.close()
