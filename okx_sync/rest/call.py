"""The attempt loop of the REST call path: one prepared call, gated, signed, sent, retried.

:class:`CallRunner` runs a :class:`~okx_sync.rest.prepare.PreparedCall` for
:class:`~okx_sync.rest.client.RestCore`:

- the guards' check before the gate (a call refused anyway does not queue);
- the account-limit refresh before a call that counts toward the account's
  new+amend limit (``refresh_account_limit``, on the call's gate budget);
- per attempt: **gate** admission on the call's :class:`GateBudget` (its total
  gate wait over all attempts), the **guards** again (their releases come when
  the send has finished), **sign** with a fresh timestamp, **send** through the
  transport, read the **envelope**, tell the gate (``observe``), log one record
  and count it in :class:`~okx_sync.rest.stats.RestCounters`;
- the **retry** decision of :class:`~okx_sync.retry.RetryPolicy`, sleeping
  through the injected clock with no permit held, and one clock re-sync
  (``resync``) on 50102/50112.

Thread safety: one ``CallRunner`` serves every thread of its ``RestCore``;
``run`` may run concurrently from any thread. ``guards`` is replaced, never
mutated (the core's ``add_guard`` holds its lock while replacing it).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import requests

from ..auth import Credentials, rest_auth_headers
from ..clock import Clock
from ..errors import APIError, OkxError, RequestStateError
from ..gate import RequestGate
from ..guards import Guard, GuardRelease, check_guards, release_all, run_guards
from ..retry import RetryPolicy
from ..timesync import TimeSync
from .endpoints import Endpoint
from .envelope import interpret
from .prepare import PreparedCall, prepare_call
from .stats import RestCounters
from .transport import Request, ResponseTooLarge, Transport, TransportError

__all__ = ["CallRunner", "AttemptResult", "GateBudget", "NO_RETRY"]

_log = logging.getLogger("okx_sync.rest")

NO_RETRY = RetryPolicy.none()
_TIMEOUTS = (TimeoutError, requests.exceptions.Timeout)


class AttemptResult:
    """What one attempt produced: ``data`` or ``error`` (+ ``retry_after_s``), and
    the wall-clock ms around the send (for the clock sync). Raises nothing. Thread
    safety: owned by the calling thread."""

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


class GateBudget:
    """How many seconds one call may still wait in the request gate, over all its attempts
    (and the account-limit load it triggers). Used by one thread only."""

    __slots__ = ("remaining",)

    def __init__(self, seconds: float) -> None:
        self.remaining = seconds

    def spend(self, seconds: float) -> None:
        """Take ``seconds`` off what remains (never below 0)."""
        self.remaining = max(0.0, self.remaining - seconds)


class CallRunner:
    """Runs prepared REST calls: gate, guards, sign, send, envelope, retry (module doc).

    Built once by ``RestCore`` with what every attempt uses: the ``gate``, the
    ``transport``, the ``credentials`` (None: nothing is signed), the
    ``time_sync`` whose offset timestamps each signature, the injected ``clock``
    and ``rng`` (retry jitter), the ``stats`` it counts into, the default
    ``retry`` policy and per-attempt ``timeout_s``, the ``headers`` every request
    carries, and two callbacks: ``resync(since)`` (re-measure the clock offset
    unless done after ``since``) and ``refresh_account_limit(budget)``.

    ``run`` raises ``APIError``/``OrderError`` (OKX said failure),
    ``RequestStateError`` (no usable response; ``stage``/``dispatched``) or what
    a guard raises; ``prepare`` raises ``ValidationError``.

    Thread safety: every method may be called from any thread.
    """

    def __init__(
        self,
        *,
        gate: RequestGate,
        transport: Transport,
        credentials: Credentials | None,
        time_sync: TimeSync,
        clock: Clock,
        rng: random.Random,
        stats: RestCounters,
        retry: RetryPolicy,
        timeout_s: float,
        headers: Mapping[str, str],
        resync: Callable[[float], None],
        refresh_account_limit: Callable[[GateBudget], None],
    ) -> None:
        self._gate = gate
        self._transport = transport
        self._creds = credentials
        self._time = time_sync
        self._clock = clock
        self._rng = rng
        self._stats = stats
        self._retry = retry
        self._timeout = timeout_s
        self._headers = headers
        self._resync_fn = resync
        self._refresh_account_limit = refresh_account_limit
        self.guards: tuple[Guard, ...] = ()

    def prepare(
        self,
        method: str,
        path: str,
        endpoint: Endpoint | None,
        params: Any,
        headers: Mapping[str, str] | None = None,
        keep_envelope: bool = False,
    ) -> PreparedCall:
        """:func:`~okx_sync.rest.prepare.prepare_call` with this runner's credentials and
        headers. Raises ``ValidationError``."""
        return prepare_call(
            method,
            path,
            endpoint,
            params,
            headers,
            keep_envelope,
            has_credentials=self._creds is not None,
            common_headers=self._headers,
        )

    def run(
        self,
        call: PreparedCall,
        timeout_s: float | None,
        *,
        allow_resync: bool = True,
        policy: RetryPolicy | None = None,
        gate_timeout_s: float | None = None,
        budget: GateBudget | None = None,
    ) -> AttemptResult:
        """Run ``call`` to its end: its data (``AttemptResult.data``) or its error raised.

        ``timeout_s`` overrides the per-attempt HTTP timeout; ``allow_resync``
        False for the clock sync itself; ``policy`` overrides the retry policy;
        the gate budget is ``budget``, else ``gate_timeout_s``, else the gate's
        ``wait_timeout_s``. A call prepared with ``keep_envelope`` returns OKX's
        answer (``envelope``) instead of raising its error code.
        """
        if budget is None:
            wait = self._gate.config.wait_timeout_s if gate_timeout_s is None else gate_timeout_s
            budget = GateBudget(wait)
        check_guards(self.guards, call.endpoint, call.params)  # refused anyway: do not queue
        return self._run_admitted(call, timeout_s, allow_resync, policy or self._retry, budget)

    def _run_admitted(
        self,
        call: PreparedCall,
        timeout: float | None,
        allow_resync: bool,
        policy: RetryPolicy,
        budget: GateBudget,
    ) -> AttemptResult:
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
                    self._resync_fn(res.sent_mono)
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
        self, call: PreparedCall, retry_index: int, timeout: float, budget: GateBudget
    ) -> AttemptResult:
        res = AttemptResult()
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
            releases = run_guards(self.guards, call.endpoint, call.params)
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
        call: PreparedCall,
        retry_index: int,
        timeout: float,
        res: AttemptResult,
        releases: list[GuardRelease],
    ) -> AttemptResult:
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

    def _unknown_outcome(self, call: PreparedCall, message: str) -> RequestStateError:
        return RequestStateError(
            message,
            stage="http",
            dispatched=True,
            method=call.method,
            path=call.path,
            cl_ord_ids=call.cl_ord_ids,
        )

    def _transport_failure(self, call: PreparedCall, exc: TransportError) -> OkxError:
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
        call: PreparedCall,
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


def _as_envelope(body: bytes) -> dict[str, Any] | None:
    """The parsed body when it is an OKX envelope (a JSON object with ``code``), else None."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and "code" in parsed else None


def _failure_key(err: OkxError) -> str:
    if isinstance(err, RequestStateError):
        if err.stage == "gate":
            return "gate"
        return f"{err.stage}:{'dispatched' if err.dispatched else 'unsent'}"
    if isinstance(err, APIError):
        return err.code or f"http_{err.http_status}"
    return type(err).__name__


def _fields(
    call: PreparedCall,
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
