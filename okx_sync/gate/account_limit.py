"""The account order limit and its whole load protocol, for REST and WS order entry.

OKX limits new and amended orders per account (sub-account) to ``accRateLimit``
per 2 s, published by ``GET /api/v5/trade/account-rate-limit``. ``AccountLimit``
holds the limit in force (config, OKX's default 1000, or the last load) and
decides when to load it again:

- due when never loaded or older than ``refresh_account_limit_s``, unless a
  load is on its way or the last one failed less than the backoff ago
  (``account_limit_retry_s``, doubling per failure, at most 300 s);
- ``refresh(load)`` is what order entry calls before an order that counts
  toward the limit (the REST core for REST orders, and, through the callback a
  ``Client`` gives its ``WSClient``s, for WS orders): of threads calling at
  once exactly one claims the load and runs ``load()`` (one GET through the
  normal call path); the others go on with the limit already known;
- the answer reaches it through the gate's ``observe`` (``observe_answer``):
  a positive ``accRateLimit`` replaces the limit (INFO line when it changed;
  the gate resizes the account bucket through ``on_change``), anything else
  counts as a failure (WARNING line, backoff, the known limit stays);
- a load that ends without an answer (transport failure, refused by a guard,
  not admitted by the gate, a thread that died holding the claim) also counts
  as a failure, once.

Thread safety: every method may be called from any thread; state is guarded
by this object's own lock, which is never held while logging, loading or
calling ``on_change``. The gate may call ``load_admitted`` and
``load_not_admitted`` with its lock held (gate lock, then this one: never the
other way round).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..clock import Clock
from ..rest.endpoints import Endpoint, registry
from .charges import DEFAULT_ACCOUNT_ORDER_LIMIT
from .config import RequestGateConfig
from .notes import Note, emit, log

__all__ = ["AccountLimit", "ACCOUNT_RATE_LIMIT_PATH", "SharedAccountLimit"]

ACCOUNT_RATE_LIMIT_PATH = registry().by_name("get_account_rate_limit").path
_RETRY_CAP_S = 300.0


class SharedAccountLimit(Protocol):
    """The account limit as several processes share it (the Redis backend's record).

    Thread safety: every method may be called from any thread; none raises."""

    def read(self) -> tuple[int, float] | None:
        """The shared limit and its age in seconds, or None (never loaded, unreachable)."""

    def publish(self, limit: int) -> None:
        """Record a limit just loaded (with the shared store's time)."""

    def claim(self, ttl_s: float) -> bool:
        """Claim the next load for ``ttl_s`` seconds; False when another process holds it."""


class AccountLimit:
    """The account new+amend limit per 2 s and its load protocol (module docstring).

    ``on_change()`` is called (no lock held) after the limit was set, so the
    gate resizes its account bucket. With ``shared`` (the Redis backend) a load
    is due only when the shared record is older than ``refresh_account_limit_s``
    too (a fresh one is adopted, source ``"shared"``), a load is claimed in the
    shared store as well (one process loads), and a loaded limit is published.
    ``on_failure(reason)`` (must not raise), when set, is called
    (no lock held) for every failed load, after its WARNING line — at the latest
    with this object's next log line when the gate recorded it (a load the gate
    timed out). Thread-safe.
    """

    def __init__(
        self,
        config: RequestGateConfig,
        clock: Clock,
        on_change: Callable[[], None],
        *,
        shared: SharedAccountLimit | None = None,
    ) -> None:
        self._config = config
        self._shared = shared
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        configured = config.account_order_limit
        self._limit = configured or DEFAULT_ACCOUNT_ORDER_LIMIT
        self._source = "config" if configured else "default"
        self._loaded_at: float | None = None
        self._claim: int | None = None  # the load on its way (a claim id), if any
        self._claim_ids = itertools.count(1)
        self._next_try = -math.inf
        self._retry_s = config.account_limit_retry_s
        self._failures = 0
        self._last_error = ""
        self.on_failure: Callable[[str], object] | None = None
        self._unreported: list[str] = []  # failures not yet given to on_failure

    @staticmethod
    def is_load(endpoint: Endpoint | None) -> bool:
        """True for ``GET /api/v5/trade/account-rate-limit`` (the load itself)."""
        return (
            endpoint is not None
            and endpoint.method == "GET"
            and endpoint.path == ACCOUNT_RATE_LIMIT_PATH
        )

    @property
    def limit(self) -> int:
        """The limit in force (orders per 2 s)."""
        with self._lock:
            return self._limit

    # ------------------------------------------------------------------ the protocol
    def refresh(self, load: Callable[[], object]) -> None:
        """Load the limit when due and no other thread is loading it: claim, run
        ``load()`` (which sends the GET; its answer comes back through the gate's
        ``observe``), then release the claim, counting a load that got no answer
        as failed. Never raises: a failed load is logged (WARNING) and the
        caller's order goes ahead on the known limit."""
        claim = self.claim()
        if claim is None:
            return
        reason = "the load ended without an answer"
        try:
            load()
        except Exception as exc:  # noqa: BLE001 - a failed refresh never blocks the order
            reason = f"{type(exc).__name__}: {exc}"
            log.warning(
                "account order limit refresh failed; the order goes ahead: %s",
                exc,
                extra={"method": "GET", "path": ACCOUNT_RATE_LIMIT_PATH},
            )
        finally:
            self.release_claim(claim, reason)

    def due(self) -> bool:
        """True when a load should start now (a query, not a claim). False while
        ``rate_limits`` is off. A claimed load whose retry delay passed without
        news counts as failed here."""
        if not self._config.rate_limits:
            return False
        notes: list[Note] = []
        with self._lock:
            due = self._due_locked(self._clock.monotonic(), notes)
        self._emit(notes)
        return due and not self._adopt_shared()

    def claim(self) -> int | None:
        """Claim the next load when one is due: a claim id, or None (not due, claimed by
        another thread, or ``rate_limits`` off). Atomic; never raises."""
        if not self._config.rate_limits:
            return None
        if self._shared is not None and not self.due():
            return None
        notes: list[Note] = []
        claim: int | None = None
        with self._lock:
            now = self._clock.monotonic()
            if self._due_locked(now, notes):
                claim = self._claim = next(self._claim_ids)
                # The holder reports back in a finally; should it not (a thread that
                # died), the claim lapses after it could have waited in the gate and
                # its retry delay.
                lapse = now + self._config.wait_timeout_s + self._retry_s
                self._next_try = max(self._next_try, lapse)
        self._emit(notes)
        if claim is not None and self._shared is not None:
            if not self._shared.claim(self._config.wait_timeout_s + self._retry_s):
                with self._lock:  # another process loads it: read its answer later
                    if self._claim == claim:
                        self._claim = None
                        self._next_try = self._clock.monotonic() + self._retry_s
                return None
        return claim

    def _adopt_shared(self) -> bool:
        """Take a fresh limit another process loaded; True when one was adopted."""
        if self._shared is None:
            return False
        record = self._shared.read()
        if record is None:
            return False
        limit, age = record
        if not (limit > 0 and 0 <= age < self._config.refresh_account_limit_s):
            return False
        self._apply(limit, "shared", self._clock.monotonic() - age)
        return True

    def release_claim(self, claim: int, reason: str) -> None:
        """End the load claimed as ``claim``; when its outcome was not reported (no
        answer observed, not refused by the gate), count it as failed with
        ``reason``. A no-op when the outcome is known or a newer load superseded it."""
        notes: list[Note] = []
        with self._lock:
            if self._claim == claim:
                notes.append(self._failure_locked(reason))
        self._emit(notes)

    def load_admitted(self, now: float) -> None:
        """The gate admitted a load: nobody else needs to start one until it reports
        back (a user's own call claims it here; ``refresh`` claimed it already)."""
        with self._lock:
            if self._claim is None:
                self._claim = next(self._claim_ids)
            self._next_try = max(self._next_try, now + self._retry_s)

    def load_not_admitted(self, notes: list[Note]) -> None:
        """The gate timed a load out: count a failure; its WARNING goes to ``notes``."""
        with self._lock:
            notes.append(self._failure_locked("account-rate-limit call not admitted by the gate"))

    def observe_answer(self, http_status: int | None, code: str, data: Any) -> None:
        """A load's answer: set the limit from ``data[0]["accRateLimit"]`` when the
        call succeeded with a positive value, else count a failure. Never raises."""
        ok = code == "0" and (http_status is None or 200 <= http_status < 300)
        value: int | None = None
        if ok:
            try:
                value = int(str(data[0]["accRateLimit"]))
            except (LookupError, TypeError, ValueError):
                value = None
        if value is not None and value > 0:
            self.set(value)
            return
        self.load_failed(
            "no usable accRateLimit" if ok else f"http={http_status} code={code or '-'}"
        )

    def set(self, limit: int, *, source: str = "account-rate-limit") -> None:
        """Set the limit (orders per 2 s) and restart the refresh interval; ends any
        claim and backoff. Raises ValueError for a non-positive limit."""
        if limit <= 0:
            raise ValueError(f"account order limit must be > 0, got {limit}")
        if self._shared is not None and source == "account-rate-limit":
            self._shared.publish(int(limit))
        self._apply(int(limit), source, self._clock.monotonic())

    def _apply(self, limit: int, source: str, loaded_at: float) -> None:
        """Put ``limit`` in force as loaded at ``loaded_at``; resize; log a change."""
        with self._lock:
            before = self._limit
            self._limit = int(limit)
            self._source = source
            self._loaded_at = loaded_at
            self._claim = None
            self._next_try = -math.inf  # next load: after refresh_account_limit_s
            self._retry_s = self._config.account_limit_retry_s
            self._last_error = ""
        self._on_change()
        if before != limit:
            log.info(
                "account order limit set to %d per 2 s (was %d, from %s)",
                int(limit),
                before,
                source,
                extra={"limit": int(limit), "previous": before, "source": source},
            )

    def load_failed(self, reason: str) -> None:
        """Record a failed load: WARNING, backoff, the known limit stays; ends any claim."""
        with self._lock:
            notes = [self._failure_locked(reason)]
        self._emit(notes)

    def snapshot(self) -> dict[str, Any]:
        """Limit, source, age of the last load, failures and the last error (JSON)."""
        with self._lock:
            loaded = self._loaded_at
            age = None if loaded is None else round(self._clock.monotonic() - loaded, 3)
            return {
                "limit": self._limit,
                "source": self._source,
                "loaded_age_s": age,
                "load_failures": self._failures,
                "last_error": self._last_error,
            }

    # ------------------------------------------------------------------ internals
    def _due_locked(self, now: float, notes: list[Note]) -> bool:
        loaded = self._loaded_at
        if loaded is not None and now - loaded < self._config.refresh_account_limit_s:
            return False
        if now >= self._next_try and self._claim is not None:
            notes.append(self._failure_locked("previous load got no response"))
        return now >= self._next_try and self._claim is None

    def _emit(self, notes: list[Note]) -> None:
        """Log ``notes``, then hand the failures recorded since to ``on_failure``."""
        emit(notes)
        with self._lock:
            reasons, self._unreported = self._unreported, []
        hook = self.on_failure
        if hook is not None:
            for reason in reasons:
                hook(reason)

    def _failure_locked(self, reason: str) -> Note:
        now = self._clock.monotonic()
        if self.on_failure is not None and len(self._unreported) < 100:
            self._unreported.append(reason)
        self._failures += 1
        self._last_error = reason
        self._claim = None
        self._next_try = now + self._retry_s
        cap = max(self._config.account_limit_retry_s, _RETRY_CAP_S)
        self._retry_s = min(self._retry_s * 2, cap)
        return (
            logging.WARNING,
            f"account order limit load failed ({reason}); keeping the "
            f"{self._source} limit {self._limit} per 2 s",
            {"reason": reason, "limit": self._limit, "retry_in_s": round(self._next_try - now, 3)},
        )
