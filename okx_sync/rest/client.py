"""The one REST call path: validate -> guards -> gate -> sign -> send -> envelope -> retry.

Every REST call okx_sync makes — ``Client.request``, the named methods of the
endpoint groups, the clock sync and the account-limit refresh — goes through
:meth:`RestCore.call` / :meth:`RestCore.request`:

1. **validate** before anything is sent (``ValidationError``): the path is an
   ``/api/v5/`` path without a query string, GET params are scalars, POST
   params are JSON-serialisable, a private endpoint has credentials.
2. **guards** (``add_guard``) run with the endpoint and params and may refuse
   (safe mode uses this); they run again before every send (step 4).
3. **account-limit refresh**: before a call that counts toward the account's
   new+amend limit, when the limit is due and the gate hands this thread the
   claim (one load at a time; other threads' orders go on meanwhile), fetch
   ``GET /api/v5/trade/account-rate-limit`` through this same path (failure
   logs a WARNING and does not block the order).
4. per attempt: **gate** admission (``RequestGate.acquire``; the call's gate
   budget, ``wait_timeout_s`` or the per-call ``gate_timeout_s``, bounds its total
   gate wait over all attempts and the account-limit load), the **guards**
   again (a refusal decided meanwhile stops the send; their releases come
   when the send has finished), **sign** with a
   fresh timestamp (wall clock + measured offset), **send**, read the
   **envelope**, tell the gate (``observe``), log one record, count stats.
5. **retry** when :class:`~okx_sync.retry.RetryPolicy` says so, sleeping
   through the injected clock with no permit held; re-sync the clock once on
   50102/50112.

Where each step lives: validation and encoding in :mod:`okx_sync.rest.prepare`
(pure), the attempt loop (gate budget, attempts, retry decisions, re-sync on a
skewed clock) in :mod:`okx_sync.rest.call`, the clock-offset measurement in
:mod:`okx_sync.rest.server_time`; ``RestCore`` composes them with the transport
and loads the account limit.

Thread safety: one ``RestCore`` is shared by every thread of a ``Client``;
``call``/``request``/``sync_time``/``stats`` may run concurrently from any
thread. Guards run on the calling thread with no okx_sync lock held.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from typing import Any

import requests

from ..auth import Credentials
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ValidationError
from ..gate import ACCOUNT_RATE_LIMIT_PATH, RequestGate
from ..guards import (
    Guard,
    GuardRelease,
    check_guards,
    release_all,
    run_guards,
    with_guard,
    without_guard,
)
from ..retry import RetryPolicy
from ..timesync import TimeSync
from ..validators import count, flag, instance, seconds, short_text
from .call import NO_RETRY, AttemptResult, CallRunner, GateBudget
from .endpoints import Endpoint, EndpointRegistry, registry
from .prepare import (
    API_PREFIX,
    base_headers,
    check_base_url,
    check_gate_timeout,
    check_method,
    check_path,
    user_agent_header,
)
from .server_time import TIME_PATH, ServerTime
from .stats import RestCounters, RestStats, TimeSyncStats
from .transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    PooledTransport,
    SessionTransport,
    Transport,
    build_transport,
)

__all__ = [
    "RestCore",
    # the guard helpers live in okx_sync.guards; re-exported for existing imports
    "Guard",
    "GuardRelease",
    "run_guards",
    "check_guards",
    "release_all",
    # request preparation lives in rest.prepare, clock sync in rest.server_time
    "check_base_url",
    "check_gate_timeout",
    "API_PREFIX",
    "TIME_PATH",
]


class RestCore:
    """The signed, gated, retried REST call path shared by every thread of a Client.

    Built by :class:`okx_sync.Client`; named endpoint methods use
    ``client._rest.call(endpoint, params)``. ``transport`` (any
    :class:`~okx_sync.rest.transport.Transport`, e.g.
    ``okx_sync.testing.MockTransport``) is used as given and stays the
    caller's to close; otherwise one is built once by
    :func:`~okx_sync.rest.transport.build_transport`: a ``SessionTransport`` on
    ``session``, or a ``PooledTransport`` whose pool holds
    ``gate.config.max_concurrent`` connections; that one is closed by
    :meth:`close` (``max_response_bytes`` bounds the transports built here). Raises
    ``ValidationError`` at construction for a ``session`` that is no
    ``requests.Session``, for both
    ``session`` and ``transport``, or a ``transport`` without a callable ``send``,
    or a ``user_agent`` that is not 1..256 printable ASCII characters.

    ``User-Agent``: ``okx_sync/<version>``, or the ``User-Agent`` a given
    ``session`` carries when it is not requests' default (read at construction);
    ``user_agent`` is appended to it after a space (:func:`user_agent_header`).

    Raises from calls: ``ValidationError`` (bad input, nothing sent),
    ``APIError``/``OrderError`` (OKX said failure; ``OrderError`` also when a
    place/amend/cancel reply does not carry exactly one item per order sent —
    its ``outcomes`` mark the missing ones outcome-unknown), ``RequestStateError``
    (no usable response; ``stage``/``dispatched``), or whatever a guard raises.
    A place/amend/cancel reply that matches its request returns its ``data``
    in request order (``okx_sync.rest.acks``).

    Thread safety: all public methods are safe from any thread.
    """

    def __init__(
        self,
        *,
        base_url: str,
        credentials: Credentials | None,
        gate: RequestGate,
        retry: RetryPolicy | None = None,
        demo: bool = False,
        timeout_s: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
        session: requests.Session | None = None,
        transport: Transport | None = None,
        time_sync: TimeSync | None = None,
        rng: random.Random | None = None,
        endpoints: EndpointRegistry | None = None,
        max_errors: int = 50,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        user_agent: str | None = None,
    ) -> None:
        seconds(timeout_s, name="timeout_s", positive=True)
        user_agent = short_text(user_agent, name="user_agent", max_len=256, optional=True)
        flag(demo, name="demo")
        count(max_errors, name="max_errors")
        instance(retry, name="retry", kind=RetryPolicy, optional=True)
        count(max_response_bytes, name="max_response_bytes")
        instance(session, name="session", kind=requests.Session, optional=True)
        self.base_url = check_base_url(base_url)
        self._creds = credentials
        self._gate = gate
        self._time = time_sync or TimeSync(clock)
        self._registry = endpoints or registry()
        self._transport: Transport
        self._owned: PooledTransport | SessionTransport | None = None
        if transport is not None:
            if session is not None:
                raise ValidationError("pass either session or transport, not both")
            if not callable(getattr(transport, "send", None)):
                raise ValidationError(
                    f"transport must have a send(request) method, got {type(transport).__name__}"
                )
            self._transport = transport
        else:
            self._transport = self._owned = build_transport(
                self.base_url,
                session=session,
                pool_size=gate.config.max_concurrent,
                max_bytes=max_response_bytes,
            )
        self._stats = RestCounters(max_errors=max_errors)
        self._guard_lock = threading.Lock()
        self._closed = False
        self.demo = demo
        self._calls = CallRunner(
            gate=gate,
            transport=self._transport,
            credentials=credentials,
            time_sync=self._time,
            clock=clock,
            rng=rng or random.Random(),
            stats=self._stats,
            retry=retry or RetryPolicy(),
            timeout_s=float(timeout_s),
            headers=base_headers(demo, user_agent_header(session, user_agent)),
            resync=self.resync,
            refresh_account_limit=self._refresh_account_limit,
        )
        self._server_time = ServerTime(self._calls, self._registry, self._time)

    # -- public ---------------------------------------------------------------------
    @property
    def time_sync(self) -> TimeSync:
        """The clock offset holder used for every signature."""
        return self._time

    @property
    def gate(self) -> RequestGate:
        """The request gate every attempt passes."""
        return self._gate

    @property
    def transport(self) -> Transport:
        """The transport every attempt goes through (chosen at construction)."""
        return self._transport

    @property
    def has_credentials(self) -> bool:
        """True when private endpoints can be signed."""
        return self._creds is not None

    def add_guard(self, fn: Guard) -> None:
        """Run ``fn(endpoint, params)`` before every send; it may raise to refuse.

        Once before the gate (a check) and then after each gate admission,
        right before that attempt is sent (see :data:`Guard`); what it raises
        reaches the caller and that attempt sends nothing. ``endpoint`` is None
        for paths not in the registry. Guards run in the order added, on the
        calling thread, with no okx_sync lock held. When ``fn`` returns a
        callable, it is called once after that send finished.
        """
        with self._guard_lock:
            self._calls.guards = with_guard(self._calls.guards, fn)

    def remove_guard(self, fn: Guard) -> None:
        """Remove a guard added with ``add_guard`` (no error when absent)."""
        with self._guard_lock:
            self._calls.guards = without_guard(self._calls.guards, fn)

    def call(
        self,
        endpoint: Endpoint,
        params: Any = None,
        *,
        timeout_s: float | None = None,
        headers: Mapping[str, str] | None = None,
        gate_timeout_s: float | None = None,
    ) -> list[Any]:
        """Call a registry endpoint with OKX-named ``params``; returns ``data``.

        GET params go in the query string, POST params are the JSON body (a
        dict, or a list for batch endpoints). ``timeout_s`` (seconds) overrides
        the client's per-attempt HTTP timeout; ``headers`` adds request headers
        (e.g. ``expTime``; the signing headers cannot be overridden).
        ``gate_timeout_s`` (seconds, >= 0) overrides ``RequestGateConfig.wait_timeout_s``
        for this call: the total time the call may wait in the request gate,
        over all its attempts (a retry does not start from zero) and the
        account-limit load it may trigger; beyond it the call raises
        ``RequestStateError(stage="gate", dispatched=False)`` (that attempt
        sent nothing). Raises as described on the class.
        """
        budget = check_gate_timeout(gate_timeout_s)
        call = self._calls.prepare(endpoint.method, endpoint.path, endpoint, params, headers)
        return self._calls.run(call, timeout_s, gate_timeout_s=budget).data

    def request(
        self,
        method: str,
        path: str,
        params: Any = None,
        *,
        timeout_s: float | None = None,
        headers: Mapping[str, str] | None = None,
        gate_timeout_s: float | None = None,
    ) -> list[Any]:
        """Call any ``/api/v5/`` path; the registry supplies limits and order-entry facts
        when it knows the path (unknown paths are signed when credentials exist).
        ``timeout_s``, ``headers`` and ``gate_timeout_s`` as in :meth:`call`.

        Raises ``ValidationError`` for a method other than GET/POST, a path
        that is not an ``/api/v5/`` path or a bad ``gate_timeout_s``, and as
        described on the class.
        """
        return self._request(method, path, params, timeout_s, headers, gate_timeout_s, False).data

    def envelope(self, method: str, path: str, params: Any = None) -> dict[str, Any]:
        """Like :meth:`request`, but return OKX's whole answer ``{"code", "msg", "data"}``
        (as parsed, extra keys kept) for an OKX error code too, instead of raising.

        The call goes through the same gate, guards, signing and retry policy; only
        the last attempt's answer is returned. Top-level None values of a POST body
        are sent as JSON ``null`` (python-okx does). For ``okx_sync.compat.okx``.

        Raises ``ValidationError`` (nothing sent), ``RequestStateError`` (no answer:
        ``stage``/``dispatched``), ``APIError`` only when the answer is not an OKX
        envelope (not JSON), or what a guard raises. Thread-safe.
        """
        res = self._request(method, path, params, None, None, None, True)
        assert res.envelope is not None
        return res.envelope

    def _request(
        self,
        method: str,
        path: str,
        params: Any,
        timeout_s: float | None,
        headers: Mapping[str, str] | None,
        gate_timeout_s: float | None,
        keep_envelope: bool,
    ) -> AttemptResult:
        method = check_method(method)
        check_path(path)
        budget = check_gate_timeout(gate_timeout_s)
        endpoint = self._registry.get(method, path)
        call = self._calls.prepare(method, path, endpoint, params, headers, keep_envelope)
        return self._calls.run(call, timeout_s, gate_timeout_s=budget)

    def sync_time(self, *, retries: bool = True) -> int:
        """Measure the offset (ms) to OKX server time with ``GET /api/v5/public/time``.

        offset = server ts - midpoint of the successful attempt's round trip;
        every later signature uses it. Returns the offset. ``retries=False``:
        one attempt, no retry policy (the periodic re-sync: bounded by one HTTP
        timeout). Raises like any call, or ``APIError`` when the answer carries
        no usable ``ts``; a failure is recorded in ``time_sync`` (``last_error``).
        """
        with self._time.sync_lock:
            return self._server_time.measure(None if retries else NO_RETRY)

    def stats(self) -> RestStats:
        """REST counters, latency percentiles (s), the last errors and the clock offset
        (``time_sync``, without a periodic re-sync: ``interval_s`` 0) as a frozen
        :class:`~okx_sync.rest.stats.RestStats`. Thread-safe."""
        return self._stats.snapshot(
            time_sync=TimeSyncStats(**self._time.snapshot()),
            fast_path=isinstance(self._transport, PooledTransport),
        )

    def recent_errors(self) -> list[dict[str, Any]]:
        """The last failed attempts (class, code, msg, request_id, stage, dispatched,
        method, path, latency_s, retry_index, ...), oldest first."""
        return self._stats.recent_errors()

    def close(self) -> None:
        """Close the transport when this core built it (a given one stays open).
        Idempotent. The gate is closed by its owner (the Client)."""
        if self._closed:
            return
        self._closed = True
        if self._owned is not None:
            self._owned.close()

    def __repr__(self) -> str:
        key = repr(self._creds) if self._creds else "None"
        return f"RestCore(base_url={self.base_url!r}, demo={self.demo}, credentials={key})"

    def resync(self, since: float) -> None:
        """Re-measure the clock offset unless someone did after ``since`` (this core's
        ``clock.monotonic()``): for a request refused for its timestamp and sent at
        ``since``. WS login uses it (``WSClient(resync_time=...)``). Raises like
        ``sync_time``. Thread-safe: one measurement at a time."""
        self._server_time.resync(since)

    # -- account order limit -----------------------------------------------------------
    def refresh_account_limit(self, *, gate_timeout_s: float | None = None) -> None:
        """Reload the account new+amend limit when it is due and no other thread is loading it.

        Called before every REST order call that counts toward the account
        limit, and by WS order entry of the ``WSClient``s a ``Client`` builds
        (``set_account_limit_refresh``): one mechanism for both, run by
        ``gate.account_limit.refresh`` (:mod:`okx_sync.gate.account_limit`): when
        the limit is due, exactly one thread claims the load and its order waits
        for that one GET attempt; the others go on with the limit already known
        (they never wait behind it). The answer reaches the gate through
        ``observe``; a load that got no answer (transport failure, refused by a
        guard...) counts as failed.
        ``gate_timeout_s``: how long the load may wait in the request gate
        (default ``wait_timeout_s``). Never raises for a failed load (logged at
        WARNING); the order goes ahead. Thread-safe.
        """
        wait = check_gate_timeout(gate_timeout_s)
        self._refresh_account_limit(
            GateBudget(self._gate.config.wait_timeout_s if wait is None else wait)
        )

    def _refresh_account_limit(self, budget: GateBudget) -> None:
        """``refresh_account_limit`` on the calling order's gate budget (the load's gate
        wait counts toward the order's): ``gate.account_limit.refresh`` runs the
        protocol, this core only sends the one GET."""
        if not self._closed:
            self._gate.account_limit.refresh(lambda: self._load_account_limit(budget))

    def _load_account_limit(self, budget: GateBudget) -> None:
        endpoint = self._registry.get("GET", ACCOUNT_RATE_LIMIT_PATH)
        call = self._calls.prepare("GET", ACCOUNT_RATE_LIMIT_PATH, endpoint, None)
        # the order is waiting: one attempt, on the order's gate budget
        self._calls.run(call, None, policy=NO_RETRY, budget=budget)
