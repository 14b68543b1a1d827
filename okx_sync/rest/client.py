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
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests

from .._version import __version__
from ..auth import Credentials, rest_auth_headers
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import APIError, OkxError, RequestStateError, ValidationError
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
from ..secret import Secret, reveal
from ..timesync import TimeSync, offset_from_round_trip
from ..validators import count, flag, instance, seconds, short_text
from .endpoints import Endpoint, EndpointRegistry, registry
from .envelope import interpret
from .stats import RestStats
from .transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    PooledTransport,
    Request,
    ResponseTooLarge,
    SessionTransport,
    Transport,
    TransportError,
    build_transport,
)

__all__ = [
    "RestCore",
    "user_agent_header",
    # the guard helpers live in okx_sync.guards; re-exported for existing imports
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
_METHODS = frozenset({"GET", "POST"})
_NO_RETRY = RetryPolicy.none()
_TIMEOUTS = (TimeoutError, requests.exceptions.Timeout)
_BAD_PATH_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")
_SAFE_QUERY_CHARS = ",:-_.~"


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
    value = reveal(value)  # a Secret parameter is sent (and signed) as its value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValidationError(f"GET parameter {key!r}: {value} is not a finite number")
    if isinstance(value, str | int | float | Decimal):
        return str(value)
    raise ValidationError(
        f"GET parameter {key!r} must be a string or number, got {type(value).__name__}"
    )


_MAX_BODY_DEPTH = 8  # OKX bodies: a batch list of orders holding lists of objects


def check_body_value(value: Any, where: str, depth: int = 0) -> None:
    """Refuse what a POST body must not carry, before anything is sent
    (``ValidationError``): a ``float`` (prices and sizes must be exact, as in the
    named methods: pass a ``Decimal`` or a ``str``), a ``Decimal`` NaN/Infinity, a
    value that is not a JSON scalar, object, array or ``Secret`` (sets, bytes, objects), a
    non-string object key, or nesting deeper than 8 levels."""
    if depth > _MAX_BODY_DEPTH:
        raise ValidationError(f"POST params nested deeper than {_MAX_BODY_DEPTH} levels at {where}")
    if value is None or isinstance(value, str | int | Secret):  # bool is an int
        return  # a Secret is sent (and signed) as its value
    if isinstance(value, float):
        raise ValidationError(
            f"{where}: float {value!r} refused; pass a Decimal or a str so the value is exact"
        )
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationError(f"{where}: {value} is not a finite number")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(f"{where}: object key {k!r} is not a string")
            check_body_value(v, f"{where}.{k}" if where else k, depth + 1)
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_body_value(v, f"{where}[{i}]", depth + 1)
        return
    raise ValidationError(f"{where}: unsupported value type {type(value).__name__}")


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
    if isinstance(value, Secret):  # sent (and signed) as its value
        return value.reveal()
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
    when the params are not JSON-serialisable or hold what
    :func:`check_body_value` refuses (floats, Decimal NaN/Infinity, non-JSON values).
    """
    if params is None:
        return "{}"
    if not isinstance(params, Mapping | list | tuple):
        raise ValidationError(f"POST params must be a dict or a list, got {type(params).__name__}")
    check_body_value(params, "")
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
    """What one attempt produced: ``data`` or ``error`` (+ ``retry_after_s``), and
    the wall-clock ms around the send (for the clock sync)."""

    __slots__ = (
        "data",
        "error",
        "retry_after_s",
        "sent_ms",
        "received_ms",
        "sent_mono",
        "envelope",
    )

    def __init__(self) -> None:
        self.data: list[Any] = []
        self.envelope: dict[str, Any] | None = None  # the parsed body, for RestCore.envelope
        self.error: OkxError | None = None
        self.retry_after_s: float | None = None
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


def check_gate_timeout(gate_timeout_s: Any) -> float | None:
    """``gate_timeout_s`` as a float (None stays None); ``ValidationError`` unless it is a
    number >= 0 (not a bool). Shared by the REST call path and WS order entry."""
    if gate_timeout_s is None:
        return None
    if isinstance(gate_timeout_s, bool) or not isinstance(gate_timeout_s, int | float):
        raise ValidationError(f"gate_timeout_s must be a number of seconds, got {gate_timeout_s!r}")
    if not gate_timeout_s >= 0:
        raise ValidationError(f"gate_timeout_s must be >= 0 seconds, got {gate_timeout_s!r}")
    return float(gate_timeout_s)


def user_agent_header(session: requests.Session | None, extra: str | None) -> str:
    """The ``User-Agent`` REST requests carry: the ``session``'s own one when it set one
    (anything but requests' default), else ``okx_sync/<version>``; then ``extra`` after a
    space. Pure (reads ``session.headers``)."""
    own = session.headers.get("User-Agent") if session is not None else None
    if isinstance(own, bytes):
        own = own.decode("latin-1")
    base = own if own and own != requests.utils.default_user_agent() else f"okx_sync/{__version__}"
    return f"{base} {extra}" if extra else base


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
        self._retry = retry or RetryPolicy()
        self._timeout = float(timeout_s)
        self._clock = clock
        self._time = time_sync or TimeSync(clock)
        self._rng = rng or random.Random()
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
        self._stats = RestStats(max_errors=max_errors)
        self._guards: tuple[Guard, ...] = ()
        self._guard_lock = threading.Lock()
        self._closed = False
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": user_agent_header(session, user_agent),
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
            self._guards = with_guard(self._guards, fn)

    def remove_guard(self, fn: Guard) -> None:
        """Remove a guard added with ``add_guard`` (no error when absent)."""
        with self._guard_lock:
            self._guards = without_guard(self._guards, fn)

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
        call = self._prepare(endpoint.method, endpoint.path, endpoint, params, headers)
        return self._run(call, timeout_s, gate_timeout_s=budget).data

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
    ) -> _Result:
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise ValidationError(f"method must be GET or POST, got {method!r}")
        method = method.upper()
        _check_path(path)
        budget = check_gate_timeout(gate_timeout_s)
        endpoint = self._registry.get(method, path)
        call = self._prepare(method, path, endpoint, params, headers, keep_envelope)
        return self._run(call, timeout_s, gate_timeout_s=budget)

    def sync_time(self, *, retries: bool = True) -> int:
        """Measure the offset (ms) to OKX server time with ``GET /api/v5/public/time``.

        offset = server ts - midpoint of the successful attempt's round trip;
        every later signature uses it. Returns the offset. ``retries=False``:
        one attempt, no retry policy (the periodic re-sync: bounded by one HTTP
        timeout). Raises like any call, or ``APIError`` when the answer carries
        no usable ``ts``; a failure is recorded in ``time_sync`` (``last_error``).
        """
        with self._time.sync_lock:
            return self._measure_offset(None if retries else _NO_RETRY)

    def stats(self) -> dict[str, Any]:
        """REST counters, latency percentiles (s) and the last errors (JSON-serialisable)."""
        out = self._stats.snapshot()
        out["time_offset_ms"] = self._time.offset_ms
        out["time_sync"] = self._time.snapshot()
        out["fast_path"] = isinstance(self._transport, PooledTransport)
        return out

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
        gate_timeout_s: float | None = None,
        budget: _GateBudget | None = None,
    ) -> _Result:
        if budget is None:
            wait = self._gate.config.wait_timeout_s if gate_timeout_s is None else gate_timeout_s
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
                retry_after_s=res.retry_after_s,
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
            elif decision.delay_s > 0:
                self._clock.sleep(decision.delay_s)
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
                timeout_s=budget.remaining,
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
                    Request(call.method, call.target, call.body, headers, timeout, call.idempotent)
                )
            except TransportError as exc:
                raw = None
                res.error = self._transport_failure(call, exc)
            t1 = clock.monotonic()
            res.received_ms = clock.time() * 1000.0
        finally:
            if releases:
                release_all(releases)
        latency_s = t1 - t0
        if raw is None:
            assert res.error is not None
            self._failed(call, retry_index, res.error, latency_s, None)
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
        retry_after_s = self._gate.config.cap_hold(out.retry_after_s)
        self._gate.observe(
            call.endpoint,
            call.params,
            http_status=out.http_status,
            code=out.code,
            retry_after_s=retry_after_s,
            data=out.data,
        )
        if out.error is None:
            self._stats.attempt_ok(latency_s)
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug(
                    "%s %s ok in %.1f ms",
                    call.method,
                    call.path,
                    latency_s * 1000.0,
                    extra=_fields(
                        call,
                        retry_index,
                        "response",
                        True,
                        latency_s,
                        out.code,
                        "",
                        out.http_status,
                        out.request_id,
                    ),
                )
            res.data = out.data
            return res
        error: OkxError = out.error
        if out.unusable:
            self._stats.limit_hit(f"response_{out.unusable}")
            if call.order_entry and out.http_status != 429:
                # the order may have been placed: its outcome is unknown, not "refused"
                error = self._unknown_outcome(call, f"no usable answer: {out.error.msg}")
                error.__cause__ = out.error
        res.error = error
        res.retry_after_s = retry_after_s
        self._failed(call, retry_index, error, latency_s, retry_after_s)
        return res

    def _unknown_outcome(self, call: _Call, message: str) -> RequestStateError:
        return RequestStateError(
            message,
            stage="http",
            dispatched=True,
            method=call.method,
            path=call.path,
            cl_ord_ids=call.cl_ord_ids,
        )

    def _transport_failure(self, call: _Call, exc: TransportError) -> OkxError:
        """The error for an attempt the transport ended: ``RequestStateError(stage="http")``;
        a body over ``max_response_bytes`` is an ``APIError`` (code ``""``) outside order
        entry (an answer came; it is refused, not retried)."""
        err: OkxError
        if isinstance(exc, ResponseTooLarge):
            self._stats.limit_hit("response_too_large")
            if not call.order_entry:
                err = APIError(
                    "", str(exc), http_status=exc.status, method=call.method, path=call.path
                )
                err.__cause__ = exc
                return err
        elif isinstance(exc.__cause__, _TIMEOUTS):
            self._stats.limit_hit("attempt_deadline")
        err = RequestStateError(
            str(exc),
            stage="http",
            dispatched=exc.dispatched,
            method=call.method,
            path=call.path,
            cl_ord_ids=call.cl_ord_ids,
        )
        err.__cause__ = exc.__cause__ or exc
        return err

    def _failed(
        self,
        call: _Call,
        retry_index: int,
        err: OkxError,
        latency_s: float | None,
        retry_after_s: float | None,
    ) -> None:
        """Log and count one failed attempt."""
        if isinstance(err, RequestStateError):
            stage, dispatched = err.stage, err.dispatched
            code, msg, status, request_id = "", str(err), None, None
        else:
            assert isinstance(err, APIError)
            stage, dispatched = "response", True
            code, msg, status, request_id = err.code, err.msg, err.http_status, err.request_id
        lat = None if latency_s is None else round(latency_s, 6)
        self._stats.attempt_failed(
            latency_s,
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
                "latency_s": lat,
                "retry_index": retry_index,
                "retry_after_s": retry_after_s,
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
    def _measure_offset(self, policy: RetryPolicy | None = None) -> int:
        try:
            return self._measure_offset_once(policy)
        except OkxError as exc:
            self._time.note_failure(f"{type(exc).__name__}: {exc}")
            raise

    def _measure_offset_once(self, policy: RetryPolicy | None) -> int:
        endpoint = self._registry.get("GET", TIME_PATH)
        call = self._prepare("GET", TIME_PATH, endpoint, None)
        res = self._run(call, None, allow_resync=False, policy=policy)
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

    def resync(self, since: float) -> None:
        """Re-measure the clock offset unless someone did after ``since`` (this core's
        ``clock.monotonic()``): for a request refused for its timestamp and sent at
        ``since``. WS login uses it (``WSClient(resync_time=...)``). Raises like
        ``sync_time``. Thread-safe: one measurement at a time."""
        self._resync(since=since)

    def _resync(self, *, since: float) -> None:
        """Re-measure the offset unless another thread did after ``since`` (monotonic)."""
        with self._time.sync_lock:
            synced_at = self._time.synced_at
            if synced_at is not None and synced_at >= since:
                return
            self._measure_offset()

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
            _GateBudget(self._gate.config.wait_timeout_s if wait is None else wait)
        )

    def _refresh_account_limit(self, budget: _GateBudget) -> None:
        """``refresh_account_limit`` on the calling order's gate budget (the load's gate
        wait counts toward the order's): ``gate.account_limit.refresh`` runs the
        protocol, this core only sends the one GET."""
        if not self._closed:
            self._gate.account_limit.refresh(lambda: self._load_account_limit(budget))

    def _load_account_limit(self, budget: _GateBudget) -> None:
        endpoint = self._registry.get("GET", ACCOUNT_RATE_LIMIT_PATH)
        call = self._prepare("GET", ACCOUNT_RATE_LIMIT_PATH, endpoint, None)
        # the order is waiting: one attempt, on the order's gate budget
        self._run(call, None, policy=_NO_RETRY, budget=budget)


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
    if any(unquote(seg) in (".", "..") for seg in path.split("/")):
        raise ValidationError(f"path {path!r} contains a '.' or '..' segment")


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
    latency_s: float | None,
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
        "latency_s": latency_s,
        "retry_index": retry_index,
        "cl_ord_ids": call.cl_ord_ids,
    }
