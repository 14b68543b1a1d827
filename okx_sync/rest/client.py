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
   budget, ``wait_timeout`` or the per-call ``gate_timeout``, bounds its total
   gate wait over all attempts and the account-limit load), the **guards**
   again (a refusal decided meanwhile stops the send; their releases come
   when the send has finished), **sign** with a
   fresh timestamp (wall clock + measured offset), **send**, read the
   **envelope**, tell the gate (``observe``), log one record, count stats.
5. **retry** when :class:`~okx_sync.retry.RetryPolicy` says so, sleeping
   through the injected clock with no permit held; re-sync the clock once on
   50102/50112.

Thread safety: one ``RestCore`` is shared by every thread of a ``Client``;
``call``/``request``/``sync_time``/``stats`` may run concurrently from any
thread. Guards run on the calling thread with no okx_sync lock held.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from .._version import __version__
from ..auth import Credentials, rest_auth_headers
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import APIError, OkxError, RequestStateError, ValidationError
from ..gate import RequestGate
from ..retry import RetryPolicy
from ..timesync import TimeSync, offset_from_round_trip
from ..validators import count, flag, instance, seconds
from .endpoints import Endpoint, EndpointRegistry, registry
from .envelope import interpret
from .stats import RestStats
from .transport import Transport, TransportError

__all__ = [
    "RestCore",
    "Guard",
    "GuardRelease",
    "run_guards",
    "check_guards",
    "release_all",
    "check_base_url",
    "check_gate_timeout",
    "API_PREFIX",
    "TIME_PATH",
]

_log = logging.getLogger("okx_sync.rest")

API_PREFIX = "/api/v5/"
TIME_PATH = "/api/v5/public/time"
ACCOUNT_LIMIT_PATH = "/api/v5/trade/account-rate-limit"
_METHODS = frozenset({"GET", "POST"})
_NO_RETRY = RetryPolicy.none()
_BAD_PATH_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")
_SAFE_QUERY_CHARS = ",:-_.~"

GuardRelease = Callable[[], None]
Guard = Callable[[Endpoint | None, Any], GuardRelease | None]
"""A pre-send check: ``guard(endpoint, params)``; raise to refuse the call.

It runs before every send: after the request gate has admitted the attempt
and right before it goes out (each retry again), so a refusal decided while
the call waited in the gate or between retries still stops it. It may return
a ``release`` callable, called exactly once when that send has finished
(answered or failed), so a guard can tell which sends are on the wire (safe
mode waits for them). Before the gate the guards also run once as a check
(their releases called at once), so a call refused anyway does not queue.
"""


def check_guards(guards: Sequence[Guard], endpoint: Endpoint | None, params: Any) -> None:
    """Run ``guards`` as a check only (before the gate): what they raise propagates, the
    releases they return are called at once. Used by the REST core and WS order entry."""
    if guards:
        release_all(run_guards(guards, endpoint, params))


def run_guards(
    guards: Sequence[Guard], endpoint: Endpoint | None, params: Any
) -> list[GuardRelease]:
    """Run ``guards`` in order; return the ``release`` callables they returned.

    When a guard raises, the releases already collected are called before the
    exception propagates. Used by the REST core and by WS order entry.
    Thread safety: runs on the calling thread; no okx_sync lock is held.
    """
    releases: list[GuardRelease] = []
    try:
        for guard in guards:
            release = guard(endpoint, params)
            if release is not None:
                releases.append(release)
    except BaseException:
        release_all(releases)
        raise
    return releases


def release_all(releases: Sequence[GuardRelease]) -> None:
    """Call every guard release; one that raises is logged and the rest still run."""
    for release in releases:
        try:
            release()
        except Exception:  # noqa: BLE001 - a broken release must not hide the call's result
            _log.exception("guard release failed")


def check_base_url(url: str) -> str:
    """Return ``url`` without a trailing slash, or raise ``ValidationError`` naming the problem.

    Accepts ``http(s)://host[:port]`` with an optional trailing ``/`` only.
    """
    if not isinstance(url, str) or not url:
        raise ValidationError(f"malformed base_url {url!r}: expected 'https://host[:port]'")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"malformed base_url {url!r}: {exc}") from None
    problem = ""
    if parts.scheme not in ("http", "https"):
        problem = "scheme must be http or https"
    elif not parts.hostname:
        problem = "no host"
    elif parts.username or parts.password:
        problem = "credentials in the URL are not allowed"
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        problem = "must not contain a path, query or fragment (paths start at /api/v5/)"
    elif port == 0:
        problem = "port 0"
    if problem:
        raise ValidationError(f"malformed base_url {url!r}: {problem}")
    return url.rstrip("/")


def _query_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    raise ValidationError(
        f"GET parameter {key!r} must be a string or number, got {type(value).__name__}"
    )


def encode_query(params: Any) -> str:
    """``k=v&k=v`` in the caller's order; None and "" values are dropped.

    Raises ``ValidationError`` when ``params`` is not a mapping of scalars.
    """
    if params is None:
        return ""
    if not isinstance(params, Mapping):
        raise ValidationError(f"GET params must be a dict, got {type(params).__name__}")
    return "&".join(
        f"{quote(str(k), safe=_SAFE_QUERY_CHARS)}="
        f"{quote(_query_value(str(k), v), safe=_SAFE_QUERY_CHARS)}"
        for k, v in params.items()
        if v is not None and v != ""
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _drop_none(params: Any) -> Any:
    if isinstance(params, Mapping):
        return {k: v for k, v in params.items() if v is not None}
    if isinstance(params, list | tuple):
        return [_drop_none(p) if isinstance(p, Mapping) else p for p in params]
    return params


def encode_body(params: Any, *, keep_null: bool = False) -> str:
    """The exact JSON text sent (and signed) for a POST: compact, ``{}`` when empty.

    Top-level None values are dropped (sent as ``null`` with ``keep_null``, as
    python-okx does); ``Decimal`` becomes its string. Raises ``ValidationError``
    when the params are not JSON-serialisable.
    """
    if params is None:
        return "{}"
    if not isinstance(params, Mapping | list | tuple):
        raise ValidationError(f"POST params must be a dict or a list, got {type(params).__name__}")
    try:
        return json.dumps(
            params if keep_null else _drop_none(params),
            separators=(",", ":"),
            default=_json_default,
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"params are not JSON-serialisable: {exc}") from None


def _cl_ord_ids(params: Any) -> tuple[str, ...]:
    items = params if isinstance(params, list | tuple) else [params]
    out: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            for key in ("clOrdId", "algoClOrdId"):
                value = item.get(key)
                if value:
                    out.append(str(value))
    return tuple(out)


class _Call:
    """One validated request, ready to be signed and sent on each attempt."""

    __slots__ = (
        "method",
        "path",
        "target",
        "body",
        "body_text",
        "endpoint",
        "params",
        "signed",
        "idempotent",
        "order_entry",
        "order_items",
        "cl_ord_ids",
        "headers",
        "keep_envelope",
    )

    def __init__(
        self,
        method: str,
        path: str,
        endpoint: Endpoint | None,
        params: Any,
        signed: bool,
        keep_envelope: bool = False,
    ) -> None:
        self.method = method
        self.path = path
        self.endpoint = endpoint
        self.params = params
        self.signed = signed
        if method == "GET":
            query = encode_query(params)
            self.target = f"{path}?{query}" if query else path
            self.body_text = ""
            self.body: bytes | None = None
        else:
            self.target = path
            # the envelope path serves python-okx's callers, whose None values go as null
            self.body_text = encode_body(params, keep_null=keep_envelope)
            self.body = self.body_text.encode("utf-8")
        self.idempotent = endpoint.idempotent if endpoint is not None else method == "GET"
        self.order_entry = endpoint.enters_orders if endpoint is not None else False
        # place/amend/cancel: the reply is matched to these, item by item (rest.acks)
        self.order_items: list[Any] | None = None
        if endpoint is not None and endpoint.acks_each_order:
            self.order_items = list(params) if isinstance(params, list | tuple) else [params]
        self.cl_ord_ids = _cl_ord_ids(params) if method == "POST" else ()
        self.headers: Mapping[str, str] = {}
        self.keep_envelope = keep_envelope


class _Result:
    """What one attempt produced: ``data`` or ``error`` (+ ``retry_after``), and
    the wall-clock ms around the send (for the clock sync)."""

    __slots__ = ("data", "error", "retry_after", "sent_ms", "received_ms", "sent_mono", "envelope")

    def __init__(self) -> None:
        self.data: list[Any] = []
        self.envelope: dict[str, Any] | None = None  # the parsed body, for RestCore.envelope
        self.error: OkxError | None = None
        self.retry_after: float | None = None
        self.sent_ms = 0.0
        self.received_ms = 0.0
        self.sent_mono = 0.0


class _GateBudget:
    """How many seconds one call may still wait in the request gate, over all its attempts
    (and the account-limit load it triggers). Used by one thread only."""

    __slots__ = ("remaining",)

    def __init__(self, seconds: float) -> None:
        self.remaining = seconds

    def spend(self, seconds: float) -> None:
        self.remaining = max(0.0, self.remaining - seconds)


def check_gate_timeout(gate_timeout: Any) -> float | None:
    """``gate_timeout`` as a float (None stays None); ``ValidationError`` unless it is a
    number >= 0 (not a bool). Shared by the REST call path and WS order entry."""
    if gate_timeout is None:
        return None
    if isinstance(gate_timeout, bool) or not isinstance(gate_timeout, int | float):
        raise ValidationError(f"gate_timeout must be a number of seconds, got {gate_timeout!r}")
    if not gate_timeout >= 0:
        raise ValidationError(f"gate_timeout must be >= 0 seconds, got {gate_timeout!r}")
    return float(gate_timeout)


class RestCore:
    """The signed, gated, retried REST call path shared by every thread of a Client.

    Built by :class:`okx_sync.Client`; named endpoint methods use
    ``client._rest.call(endpoint, params)``. ``transport`` may be injected
    (tests); otherwise one is built on ``session`` (or a new
    ``requests.Session`` whose pool holds ``gate.config.max_concurrent``
    connections).

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
        timeout: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
        session: requests.Session | None = None,
        transport: Transport | None = None,
        time_sync: TimeSync | None = None,
        rng: random.Random | None = None,
        endpoints: EndpointRegistry | None = None,
        max_errors: int = 50,
    ) -> None:
        seconds(timeout, name="timeout", positive=True)
        flag(demo, name="demo")
        count(max_errors, name="max_errors")
        instance(retry, name="retry", kind=RetryPolicy, optional=True)
        self.base_url = check_base_url(base_url)
        self._creds = credentials
        self._gate = gate
        self._retry = retry or RetryPolicy()
        self._timeout = float(timeout)
        self._clock = clock
        self._time = time_sync or TimeSync(clock)
        self._rng = rng or random.Random()
        self._registry = endpoints or registry()
        self._transport = transport or Transport(
            self.base_url, session=session, pool_size=gate.config.max_concurrent
        )
        self._stats = RestStats(max_errors=max_errors)
        self._guards: tuple[Guard, ...] = ()
        self._guard_lock = threading.Lock()
        self._closed = False
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"okx_sync/{__version__}",
        }
        if demo:
            headers["x-simulated-trading"] = "1"
        self._headers = headers
        self.demo = demo

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
        """The HTTP transport (its ``session`` is the requests Session in use)."""
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
            self._guards = (*self._guards, fn)

    def remove_guard(self, fn: Guard) -> None:
        """Remove a guard added with ``add_guard`` (no error when absent)."""
        with self._guard_lock:
            self._guards = tuple(g for g in self._guards if g is not fn)

    def call(
        self,
        endpoint: Endpoint,
        params: Any = None,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        gate_timeout: float | None = None,
    ) -> list[Any]:
        """Call a registry endpoint with OKX-named ``params``; returns ``data``.

        GET params go in the query string, POST params are the JSON body (a
        dict, or a list for batch endpoints). ``timeout`` (seconds) overrides
        the client's per-attempt HTTP timeout; ``headers`` adds request headers
        (e.g. ``expTime``; the signing headers cannot be overridden).
        ``gate_timeout`` (seconds, >= 0) overrides ``RequestGateConfig.wait_timeout``
        for this call: the total time the call may wait in the request gate,
        over all its attempts (a retry does not start from zero) and the
        account-limit load it may trigger; beyond it the call raises
        ``RequestStateError(stage="gate", dispatched=False)`` (that attempt
        sent nothing). Raises as described on the class.
        """
        budget = check_gate_timeout(gate_timeout)
        call = self._prepare(endpoint.method, endpoint.path, endpoint, params, headers)
        return self._run(call, timeout, gate_timeout=budget).data

    def request(
        self,
        method: str,
        path: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        gate_timeout: float | None = None,
    ) -> list[Any]:
        """Call any ``/api/v5/`` path; the registry supplies limits and order-entry facts
        when it knows the path (unknown paths are signed when credentials exist).
        ``timeout``, ``headers`` and ``gate_timeout`` as in :meth:`call`.

        Raises ``ValidationError`` for a method other than GET/POST, a path
        that is not an ``/api/v5/`` path or a bad ``gate_timeout``, and as
        described on the class.
        """
        return self._request(method, path, params, timeout, headers, gate_timeout, False).data

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
        timeout: float | None,
        headers: Mapping[str, str] | None,
        gate_timeout: float | None,
        keep_envelope: bool,
    ) -> _Result:
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise ValidationError(f"method must be GET or POST, got {method!r}")
        method = method.upper()
        _check_path(path)
        budget = check_gate_timeout(gate_timeout)
        endpoint = self._registry.get(method, path)
        call = self._prepare(method, path, endpoint, params, headers, keep_envelope)
        return self._run(call, timeout, gate_timeout=budget)

    def sync_time(self) -> int:
        """Measure the offset (ms) to OKX server time with ``GET /api/v5/public/time``.

        offset = server ts - midpoint of the successful attempt's round trip;
        every later signature uses it. Returns the offset. Raises like any
        call, or ``APIError`` when the answer carries no usable ``ts``.
        """
        with self._time.sync_lock:
            return self._measure_offset()

    def stats(self) -> dict[str, Any]:
        """REST counters, latency percentiles (ms) and the last errors (JSON-serialisable)."""
        out = self._stats.snapshot()
        out["time_offset_ms"] = self._time.offset_ms
        out["fast_path"] = self._transport.fast_path()
        return out

    def recent_errors(self) -> list[dict[str, Any]]:
        """The last failed attempts (class, code, msg, request_id, stage, dispatched,
        method, path, latency_ms, retry_index, ...), oldest first."""
        return self._stats.recent_errors()

    def close(self) -> None:
        """Close the transport (and the session it built). Idempotent.

        The gate is closed by its owner (the Client)."""
        if self._closed:
            return
        self._closed = True
        self._transport.close()

    def __repr__(self) -> str:
        key = repr(self._creds) if self._creds else "None"
        return f"RestCore(base_url={self.base_url!r}, demo={self.demo}, credentials={key})"

    # -- the call loop --------------------------------------------------------------
    def _prepare(
        self,
        method: str,
        path: str,
        endpoint: Endpoint | None,
        params: Any,
        headers: Mapping[str, str] | None = None,
        keep_envelope: bool = False,
    ) -> _Call:
        if endpoint is not None and endpoint.private and self._creds is None:
            raise ValidationError(
                f"{method} {path} is a private endpoint: credentials are required "
                "(api_key, secret_key, passphrase)"
            )
        signed = endpoint.private if endpoint is not None else self._creds is not None
        call = _Call(method, path, endpoint, params, signed, keep_envelope)
        if headers:
            for name, value in headers.items():
                if not isinstance(name, str) or not isinstance(value, str):
                    raise ValidationError(f"header {name!r} must map a str to a str")
                if name.lower().startswith("ok-access-") or "\n" in value or "\r" in value:
                    raise ValidationError(f"header {name!r} cannot be set per call")
            call.headers = {**self._headers, **headers}
        else:
            call.headers = self._headers
        return call

    def _run(
        self,
        call: _Call,
        timeout: float | None,
        *,
        allow_resync: bool = True,
        policy: RetryPolicy | None = None,
        gate_timeout: float | None = None,
        budget: _GateBudget | None = None,
    ) -> _Result:
        if budget is None:
            wait = self._gate.config.wait_timeout if gate_timeout is None else gate_timeout
            budget = _GateBudget(wait)
        check_guards(self._guards, call.endpoint, call.params)  # refused anyway: do not queue
        return self._run_admitted(call, timeout, allow_resync, policy or self._retry, budget)

    def _run_admitted(
        self,
        call: _Call,
        timeout: float | None,
        allow_resync: bool,
        policy: RetryPolicy,
        budget: _GateBudget,
    ) -> _Result:
        if call.endpoint is not None and call.endpoint.counts_account_orders:
            self._refresh_account_limit(budget)
        retry_index = 0
        resynced = not allow_resync  # the clock sync itself must not re-sync
        while True:
            res = self._attempt(call, retry_index, timeout or self._timeout, budget)
            err = res.error
            if err is None:
                return res
            decision = policy.decide(
                err,
                idempotent=call.idempotent,
                retry_index=retry_index,
                resynced=resynced,
                retry_after=res.retry_after,
                rand=self._rng.random(),
            )
            if not decision.retry:
                self._stats.call_failed(_failure_key(err))
                if res.envelope is not None:  # RestCore.envelope: OKX answered, return it
                    return res
                raise err
            if decision.resync:
                resynced = True
                try:
                    self._resync(since=res.sent_mono)
                except OkxError as sync_err:
                    _log.warning(
                        "clock re-sync after %s failed: %s", err.__class__.__name__, sync_err
                    )
                    self._stats.call_failed(_failure_key(err))
                    raise err from sync_err
            elif decision.delay > 0:
                self._clock.sleep(decision.delay)
            self._stats.retried(resync=decision.resync)
            retry_index += 1

    def _attempt(
        self, call: _Call, retry_index: int, timeout: float, budget: _GateBudget
    ) -> _Result:
        res = _Result()
        try:
            permit = self._gate.acquire(
                call.endpoint,
                call.params,
                method=call.method,
                path=call.path,
                timeout=budget.remaining,
            )
        except RequestStateError as exc:
            budget.spend(budget.remaining)
            err = exc
            if call.cl_ord_ids and not exc.cl_ord_ids:
                err = RequestStateError(
                    str(exc).split(" [stage=", 1)[0],
                    stage=exc.stage,
                    dispatched=exc.dispatched,
                    method=call.method,
                    path=call.path,
                    cl_ord_ids=call.cl_ord_ids,
                )
                err.__cause__ = exc
            res.error = err
            self._failed(call, retry_index, err, None, None)
            return res
        budget.spend(permit.wait_s)
        try:  # again after admission, before this (re)send: safe mode may have come on
            releases = run_guards(self._guards, call.endpoint, call.params)
        except BaseException as exc:
            permit.release()
            if isinstance(exc, OkxError):
                self._stats.call_failed(_failure_key(exc))
            raise
        try:
            return self._exchange(call, retry_index, timeout, res, releases)
        finally:
            # The slot is given back once the answer has been handled, not as soon as
            # it arrived: a waiter woken by the release then finds this thread about
            # to return (and park again or go on), instead of fighting it for the GIL
            # while it parses. (Rate windows count from the release: conservative.)
            permit.release()

    def _exchange(
        self,
        call: _Call,
        retry_index: int,
        timeout: float,
        res: _Result,
        releases: list[GuardRelease],
    ) -> _Result:
        """Sign, send and interpret one admitted attempt (the permit is held)."""
        clock = self._clock
        try:
            headers = call.headers
            if call.signed and self._creds is not None:
                headers = {
                    **headers,
                    **rest_auth_headers(
                        self._creds, self._time.now_ms(), call.method, call.target, call.body_text
                    ),
                }
            res.sent_ms = clock.time() * 1000.0
            res.sent_mono = t0 = clock.monotonic()
            try:
                raw = self._transport.send(
                    call.method,
                    call.target,
                    call.body,
                    headers,
                    timeout,
                    idempotent=call.idempotent,
                )
            except TransportError as exc:
                raw = None
                state = RequestStateError(
                    str(exc),
                    stage="http",
                    dispatched=exc.dispatched,
                    method=call.method,
                    path=call.path,
                    cl_ord_ids=call.cl_ord_ids,
                )
                state.__cause__ = exc.__cause__ or exc
                res.error = state
            t1 = clock.monotonic()
            res.received_ms = clock.time() * 1000.0
        finally:
            if releases:
                release_all(releases)
        latency_ms = (t1 - t0) * 1000.0
        if raw is None:
            assert res.error is not None
            self._failed(call, retry_index, res.error, latency_ms, None)
            return res
        if call.keep_envelope:
            res.envelope = _as_envelope(raw.body)
        out = interpret(
            raw.status,
            raw.headers,
            raw.body,
            method=call.method,
            path=call.path,
            order_entry=call.order_entry,
            order_items=call.order_items,
            now=res.received_ms / 1000.0,
        )
        self._gate.observe(
            call.endpoint,
            call.params,
            http_status=out.http_status,
            code=out.code,
            retry_after=out.retry_after,
            data=out.data,
        )
        if out.error is None:
            self._stats.attempt_ok(latency_ms)
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug(
                    "%s %s ok in %.1f ms",
                    call.method,
                    call.path,
                    latency_ms,
                    extra=_fields(
                        call,
                        retry_index,
                        "response",
                        True,
                        latency_ms,
                        out.code,
                        "",
                        out.http_status,
                        out.request_id,
                    ),
                )
            res.data = out.data
            return res
        res.error = out.error
        res.retry_after = out.retry_after
        self._failed(call, retry_index, out.error, latency_ms, out.retry_after)
        return res

    def _failed(
        self,
        call: _Call,
        retry_index: int,
        err: OkxError,
        latency_ms: float | None,
        retry_after: float | None,
    ) -> None:
        """Log and count one failed attempt."""
        if isinstance(err, RequestStateError):
            stage, dispatched = err.stage, err.dispatched
            code, msg, status, request_id = "", str(err), None, None
        else:
            assert isinstance(err, APIError)
            stage, dispatched = "response", True
            code, msg, status, request_id = err.code, err.msg, err.http_status, err.request_id
        lat = None if latency_ms is None else round(latency_ms, 3)
        self._stats.attempt_failed(
            latency_ms,
            {
                "class": type(err).__name__,
                "code": code,
                "msg": msg,
                "http_status": status,
                "request_id": request_id,
                "stage": stage,
                "dispatched": dispatched,
                "method": call.method,
                "path": call.path,
                "latency_ms": lat,
                "retry_index": retry_index,
                "retry_after": retry_after,
                "cl_ord_ids": list(call.cl_ord_ids),
                "ts_ms": int(self._clock.time() * 1000),
            },
        )
        expected = call.endpoint is not None and code in call.endpoint.expected_codes
        level = logging.DEBUG if expected else logging.WARNING
        if _log.isEnabledFor(level):
            _log.log(
                level,
                "%s %s %s (stage=%s, dispatched=%s, retry_index=%d): %s",
                call.method,
                call.path,
                "answered" if expected else "failed",
                stage,
                dispatched,
                retry_index,
                err,
                extra=_fields(
                    call, retry_index, stage, dispatched, lat, code, msg, status, request_id
                ),
            )

    # -- clock sync -------------------------------------------------------------------
    def _measure_offset(self) -> int:
        endpoint = self._registry.get("GET", TIME_PATH)
        call = self._prepare("GET", TIME_PATH, endpoint, None)
        res = self._run(call, None, allow_resync=False)
        try:
            server_ms = int(res.data[0]["ts"])
        except (IndexError, KeyError, TypeError, ValueError):
            raise APIError(
                "",
                f"server time response has no usable ts: {res.data!r:.200}",
                method="GET",
                path=TIME_PATH,
                data=res.data,
            ) from None
        offset = offset_from_round_trip(res.sent_ms, server_ms, res.received_ms)
        self._time.set_offset(offset)
        _log.info("clock offset to OKX: %d ms", offset, extra={"time_offset_ms": offset})
        return offset

    def _resync(self, *, since: float) -> None:
        """Re-measure the offset unless another thread did after ``since`` (monotonic)."""
        with self._time.sync_lock:
            synced_at = self._time.synced_at
            if synced_at is not None and synced_at >= since:
                return
            self._measure_offset()

    # -- account order limit -----------------------------------------------------------
    def refresh_account_limit(self, *, gate_timeout: float | None = None) -> None:
        """Reload the account new+amend limit when it is due and no other thread is loading it.

        Called before every REST order call that counts toward the account
        limit, and by WS order entry of the ``WSClient``s a ``Client`` builds
        (``set_account_limit_refresh``): one mechanism for both. It is due when
        never loaded or older than ``refresh_account_limit_s``;
        ``gate.claim_account_limit_refresh()`` hands the load to exactly one
        thread, whose order waits for that one attempt; the others go on with
        the limit already known (they never wait behind it). The answer reaches
        the gate through ``observe``; the claim is released in a ``finally``
        (``release_account_limit_claim``), which counts a load that got no
        answer (transport failure, refused by a guard...) as failed.
        ``gate_timeout``: how long the load may wait in the request gate
        (default ``wait_timeout``). Never raises for a failed load (logged at
        WARNING); the order goes ahead. Thread-safe.
        """
        wait = check_gate_timeout(gate_timeout)
        self._refresh_account_limit(
            _GateBudget(self._gate.config.wait_timeout if wait is None else wait)
        )

    def _refresh_account_limit(self, budget: _GateBudget) -> None:
        """``refresh_account_limit`` on the calling order's gate budget (the load's gate
        wait counts toward the order's)."""
        if self._closed:
            return
        claim = self._gate.claim_account_limit_refresh()
        if claim is None:
            return
        reason = "the load ended without an answer"
        try:
            endpoint = self._registry.get("GET", ACCOUNT_LIMIT_PATH)
            call = self._prepare("GET", ACCOUNT_LIMIT_PATH, endpoint, None)
            # the order is waiting: one attempt, on the order's gate budget
            self._run(call, None, policy=_NO_RETRY, budget=budget)
        except Exception as exc:  # noqa: BLE001 - a failed refresh never blocks the order
            reason = f"{type(exc).__name__}: {exc}"
            _log.warning(
                "account order limit refresh failed; the order goes ahead: %s",
                exc,
                extra={"method": "GET", "path": ACCOUNT_LIMIT_PATH},
            )
        finally:
            self._gate.release_account_limit_claim(claim, reason)


def _as_envelope(body: bytes) -> dict[str, Any] | None:
    """The parsed body when it is an OKX envelope (a JSON object with ``code``), else None."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and "code" in parsed else None


def _check_path(path: Any) -> None:
    if not isinstance(path, str) or not path.startswith(API_PREFIX):
        raise ValidationError(f"path must start with {API_PREFIX!r}, got {path!r}")
    if "?" in path or "#" in path:
        raise ValidationError(
            f"path {path!r} must not contain a query string: pass the parameters as params"
        )
    if _BAD_PATH_CHARS.search(path):
        raise ValidationError(f"path {path!r} contains whitespace or control characters")


def _failure_key(err: OkxError) -> str:
    if isinstance(err, RequestStateError):
        if err.stage == "gate":
            return "gate"
        return f"{err.stage}:{'dispatched' if err.dispatched else 'unsent'}"
    if isinstance(err, APIError):
        return err.code or f"http_{err.http_status}"
    return type(err).__name__


def _fields(
    call: _Call,
    retry_index: int,
    stage: str,
    dispatched: bool,
    latency_ms: float | None,
    code: str,
    msg: str,
    http_status: int | None,
    request_id: str | None,
) -> dict[str, Any]:
    """The structured ``extra`` of one attempt's log record.

    OKX's ``msg`` is carried as ``okx_msg``: ``msg`` is reserved by
    ``logging.LogRecord`` (it is the format string) and cannot be an ``extra`` key.
    """
    return {
        "method": call.method,
        "path": call.path,
        "request_id": request_id,
        "code": code,
        "okx_msg": msg,
        "http_status": http_status,
        "stage": stage,
        "dispatched": dispatched,
        "latency_ms": latency_ms,
        "retry_index": retry_index,
        "cl_ord_ids": call.cl_ord_ids,
    }
