"""The request gate: concurrency cap + (later) rate buckets, shared by every thread.

Every REST call (and WS order entry) asks the gate for a permit before it is
sent. ``acquire`` blocks until the call may go, first come first served, or
raises ``RequestStateError(stage="gate", dispatched=False)`` when it cannot be
admitted within the timeout or the gate is closed: nothing was sent.

Thread safety: one gate is shared by all threads of a Client; every public
method may be called from any thread. No lock is held while sleeping.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import attrs

from .clock import SYSTEM_CLOCK, Clock
from .errors import RequestStateError
from .rest.endpoints import Endpoint

__all__ = ["RequestGateConfig", "RequestGate", "Permit"]


def _positive(_inst: Any, attribute: Any, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen(kw_only=True)
class RequestGateConfig:
    """How the gate admits calls. Frozen; validated when built (ValueError).

    - ``max_concurrent``: requests in flight at once per Client.
    - ``rate_limits``: False keeps only the concurrency cap.
    - ``headroom``: run buckets at this fraction of OKX's published limit.
    - ``wait_timeout``: seconds a call may wait for admission before
      ``RequestStateError(stage="gate")``.
    - ``account_order_limit``: the account new+amend limit per 2 s; None =
      OKX's default (1000) until ``account-rate-limit`` says otherwise.
    - ``refresh_account_limit_s``: how often the client reloads that limit.
    """

    max_concurrent: int = attrs.field(default=10, validator=_positive)
    rate_limits: bool = True
    headroom: float = attrs.field(default=0.9)
    wait_timeout: float = attrs.field(default=30.0, validator=_positive)
    account_order_limit: int | None = None
    refresh_account_limit_s: float = attrs.field(default=3600.0, validator=_positive)

    @headroom.validator
    def _check_headroom(self, _attribute: Any, value: float) -> None:
        if not 0 < value <= 1:
            raise ValueError(f"headroom must be in (0, 1], got {value!r}")


class Permit:
    """Admission to send one request; ``release()`` (or ``with``) frees its slot.

    Thread safety: release is idempotent and may be called from any thread.
    """

    __slots__ = ("_gate", "_released", "wait_s")

    def __init__(self, gate: RequestGate | None, wait_s: float) -> None:
        self._gate = gate
        self._released = False
        self.wait_s = wait_s

    def release(self) -> None:
        """Give the concurrency slot back (idempotent)."""
        if self._released:
            return
        self._released = True
        if self._gate is not None:
            self._gate._release_slot()

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RequestGate:
    """Admits requests FIFO under a concurrency cap.

    ``acquire(endpoint, params, timeout=...)`` returns a ``Permit``;
    ``observe(...)`` is told every response so the gate can react to
    throttling. ``close()`` wakes every waiter with a gate-stage error.

    Thread safety: all methods are thread-safe.
    """

    def __init__(
        self, config: RequestGateConfig | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.config = config or RequestGateConfig()
        self._clock = clock
        self._cond = threading.Condition()
        self._in_flight = 0
        self._queue: deque[object] = deque()
        self._closed = False
        self._admitted = 0
        self._timeouts = 0
        self._max_wait = 0.0
        self._total_wait = 0.0
        self._account_limit = config.account_order_limit if config else None
        self._account_limit_loaded_at: float | None = None

    def acquire(
        self,
        endpoint: Endpoint | None,
        params: Any = None,
        *,
        method: str = "",
        path: str = "",
        timeout: float | None = None,
        concurrency: bool = True,
    ) -> Permit:
        """Block until the call may be sent; FIFO among waiters.

        ``timeout`` defaults to ``config.wait_timeout``. ``concurrency=False``
        (WS order entry) skips the in-flight cap. Raises
        ``RequestStateError(stage="gate", dispatched=False)`` on timeout or
        when the gate is closed.
        """
        method = method or (endpoint.method if endpoint else "")
        path = path or (endpoint.path if endpoint else "")
        limit = self.config.wait_timeout if timeout is None else timeout
        start = self._clock.monotonic()
        deadline = start + limit
        ticket = object()
        with self._cond:
            if self._closed:
                raise RequestStateError(
                    "client closed", stage="gate", dispatched=False, method=method, path=path
                )
            if not concurrency:
                self._admitted += 1
                return Permit(None, 0.0)
            self._queue.append(ticket)
            try:
                while True:
                    if self._closed:
                        raise RequestStateError(
                            "client closed while waiting in the request gate",
                            stage="gate",
                            dispatched=False,
                            method=method,
                            path=path,
                        )
                    if self._queue[0] is ticket and self._in_flight < self.config.max_concurrent:
                        break
                    remaining = deadline - self._clock.monotonic()
                    if remaining <= 0:
                        self._timeouts += 1
                        raise RequestStateError(
                            f"not admitted by the request gate within {limit:g} s",
                            stage="gate",
                            dispatched=False,
                            method=method,
                            path=path,
                        )
                    self._clock.wait(self._cond, remaining)
                self._queue.popleft()
                self._in_flight += 1
                self._admitted += 1
                waited = self._clock.monotonic() - start
                self._total_wait += waited
                self._max_wait = max(self._max_wait, waited)
                self._cond.notify_all()
                return Permit(self, waited)
            except BaseException:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                    self._cond.notify_all()
                raise

    def _release_slot(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def observe(
        self,
        endpoint: Endpoint | None,
        params: Any = None,
        *,
        http_status: int | None,
        code: str,
        retry_after: float | None = None,
        data: list[Any] | None = None,
    ) -> None:
        """Tell the gate how a response ended (throttling reactions live here)."""

    def set_account_order_limit(self, limit: int, *, source: str = "account-rate-limit") -> None:
        """Set the account new+amend limit per 2 s (from ``accRateLimit``)."""
        if limit <= 0:
            raise ValueError(f"account order limit must be > 0, got {limit}")
        with self._cond:
            self._account_limit = int(limit)
            self._account_limit_loaded_at = self._clock.monotonic()

    def account_limit_refresh_due(self) -> bool:
        """True when the account order limit was never loaded or is older than the refresh interval."""
        with self._cond:
            loaded = self._account_limit_loaded_at
            if loaded is None:
                return True
            return self._clock.monotonic() - loaded >= self.config.refresh_account_limit_s

    @property
    def in_flight(self) -> int:
        """Requests currently admitted and not yet released."""
        with self._cond:
            return self._in_flight

    def stats(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot: in-flight count, admissions, waits, timeouts."""
        with self._cond:
            return {
                "in_flight": self._in_flight,
                "max_concurrent": self.config.max_concurrent,
                "waiting": len(self._queue),
                "admitted": self._admitted,
                "timeouts": self._timeouts,
                "total_wait_s": round(self._total_wait, 6),
                "max_wait_s": round(self._max_wait, 6),
                "buckets": [],
            }

    def close(self) -> None:
        """Refuse new calls and wake every waiter (they raise a gate-stage error)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
