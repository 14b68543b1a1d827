"""WebSocket order entry (facts §6.5): the order methods of ``WSClient``.

``place_order``, ``cancel_order``, ``amend_order`` and their batch versions take
the keywords of the REST named methods (``build_params``), validate with the
instrument cache, run the order-entry guards (safe mode; again right before
sending), load the account order limit when it is due (through the Client's
REST core, as REST order entry does), draw on the same request-gate buckets
as REST order entry, send one op with an ``id`` on the live private connection
and block until OKX's reply with that ``id``.
Only a private connection (or one whose URL names no service) takes orders: on a
``/public`` or ``/business`` one every method raises ``ValidationError`` before
anything is sent. Spread orders (``OrderEntry.spread``, :mod:`okx_sync.ws.spread_orders`:
ops ``sprd-order``, ``sprd-amend-order``, ``sprd-cancel-order``, ``sprd-mass-cancel``)
take the same path, on a ``/business`` connection only. An amend or cancel names its
order by exactly one of ``ord_id`` / ``cl_ord_id`` (``build_params``, as over REST).
Answers become ``OrderAck``s (in request order), ``OrderError`` or ``APIError``
exactly as over REST — a reply that does not carry exactly one item per order
sent (missing, extra or unmatchable items) is an ``OrderError`` whose
``outcomes`` mark each missing order outcome-unknown (the same
``okx_sync.rest.acks.order_reply`` as REST); no answer becomes ``RequestStateError(stage="ws")`` whose ``dispatched``
says whether the request may have reached OKX.

``OrderEntry`` is a part ``WSClient`` holds (given the client's connection
wait, request ids, gate, instrument cache and clock; it keeps the guards). Thread safety: every method may be
called from any thread; concurrent calls are correlated by their own ``id``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..clock import Clock
from ..errors import (
    APIError,
    RequestStateError,
    ValidationError,
    WSClosedError,
    WSTimeoutError,
)
from ..guards import Guard, check_guards, release_all, run_guards, with_guard, without_guard
from ..models.order import OrderAck
from ..rest.acks import order_reply
from ..rest.endpoints import Endpoint, registry
from ..rest.envelope import ORDER_ERROR_CODES
from ..rest.params import build_params
from ..validators import count, seconds
from .connection import Connection
from .protocol import order_frame, service_of_url
from .spread_orders import SpreadOrders
from .stats import Counters

__all__ = ["OrderEntry", "WS_ORDER_OPS"]

log = logging.getLogger("okx_sync.ws")

#: method -> (WS op, REST path of the same action, batch?) (facts §6.5, §2.1:
#: WS and REST order entry share the same rate buckets): the registry's ``Endpoint.ws_op``,
#: the method named as the REST endpoint (``place_order``, ``cancel_batch_orders``...).
WS_ORDER_OPS: Mapping[str, tuple[str, str, bool]] = {
    ep.name: (ep.ws_op, ep.path, ep.batch) for ep in registry() if ep.ws_op
}

#: ``answer(op, code, msg, data)``: the result of an op whose reply is not one ack per
#: order (``sprd-mass-cancel``); raises for a reply it cannot read.
Answer = Callable[[str, str, str, list[Any]], Any]


def _check_service(op: str, endpoint: Endpoint, url: str) -> None:
    """Facts §4.1: order ops go to ``/private`` only, spread (``sprd-*``) ops to
    ``/business`` only; ``ValidationError`` before anything is sent otherwise."""
    service = service_of_url(url)
    if endpoint.group == "spread":
        if service != "business":
            raise ValidationError(
                f"WS {op}: spread orders go to the business WebSocket, not this "
                f"{service or 'unnamed'} connection ({url}); use client.ws_business(); "
                "nothing was sent"
            )
    elif service in ("public", "business"):
        raise ValidationError(
            f"WS {op}: the {service} connection ({url}) does not take orders; "
            "use the private one (client.ws_private()); nothing was sent"
        )


class OrderRequest:
    """One order op waiting for its reply (filled by the reader; ``lost`` when the socket ended)."""

    __slots__ = ("req_id", "op", "cl_ord_ids", "done", "reply", "lost")

    def __init__(self, req_id: str, op: str, cl_ord_ids: Sequence[str]) -> None:
        self.req_id = req_id
        self.op = op
        self.cl_ord_ids = tuple(cl_ord_ids)
        self.done = threading.Event()
        self.reply: dict[str, Any] | None = None
        self.lost = ""


class OrderEntry:
    """WS order entry of one ``WSClient`` (a part the client holds; see the module docstring).

    ``live_conn(deadline)`` returns the live connection (or raises
    ``WSClosedError``/``WSTimeoutError``); ``next_id(prefix)`` a request id
    unique in the client; ``counters``: the client's ``stats.Counters`` (``op_waiters``);
    ``account_limit_refresh``: see ``set_account_limit_refresh``. ``spread``: the
    spread ops (``spread_orders.SpreadOrders``).
    """

    def __init__(
        self,
        *,
        name: str,
        url: str,
        clock: Clock,
        gate: Any,
        instruments: Any,
        order_timeout_s: float,
        live_conn: Callable[[float], Connection],
        next_id: Callable[[str], str],
        counters: Counters,
        account_limit_refresh: Callable[..., None] | None = None,
    ) -> None:
        self.name = name
        self._counters = counters  # op_waiters: callers blocked on an answer now
        self.url = url
        self._lock = threading.Lock()
        self._clock = clock
        self._gate = gate
        self._instruments = instruments
        self._order_timeout_s = order_timeout_s
        self._guards: tuple[Guard, ...] = ()  # order-entry guards (safe mode); replaced
        self._wait_conn = live_conn
        self._next_id = next_id
        #: Called before a placement/amend; None: never.
        self._account_limit_refresh = account_limit_refresh
        #: The ``sprd-*`` ops (business connections), on the same path as the others.
        self.spread = SpreadOrders(self._order)

    def add_guard(self, fn: Guard) -> None:
        """Run ``fn(endpoint, params)`` before every WS order-entry request; it may raise to refuse.

        Same contract as ``RestCore.add_guard`` (:data:`okx_sync.guards.Guard`):
        ``endpoint`` is the REST registry endpoint of the same action
        (``POST /api/v5/trade/order`` for op ``order`` ...), ``params`` its OKX
        params (a list for batches); a returned callable is called once when
        the request has finished. Runs once before the request gate (a check)
        and again after admission, right before the order is sent, on the
        calling thread, with no okx_sync lock held; what it raises reaches the
        caller and nothing is sent. ``client.enter_safe_mode`` refuses WS
        place/amend through this hook. Thread-safe.
        """
        with self._lock:
            self._guards = with_guard(self._guards, fn)

    def remove_guard(self, fn: Guard) -> None:
        """Remove a guard added with ``add_guard`` (no error when absent). Thread-safe."""
        with self._lock:
            self._guards = without_guard(self._guards, fn)

    def set_account_limit_refresh(self, fn: Callable[..., None] | None) -> None:
        """Call ``fn(gate_timeout_s=seconds)`` before every WS placement/amend (None: stop).

        ``client.ws_private()`` (and the other factories) pass the REST core's
        ``refresh_account_limit``, so WS order entry loads the account order
        limit before its first order and every ``refresh_account_limit_s``
        exactly as REST order entry does (one load at a time, shared by both: the
        protocol is ``gate.account_limit.refresh``, :mod:`okx_sync.gate.account_limit`);
        ``gate_timeout_s`` is the order's ``timeout_s``, which bounds the load's gate
        wait, the order's own and the wait for the reply together. ``fn`` must
        not raise for a failed load. Thread-safe.
        """
        self._account_limit_refresh = fn

    def place_order(
        self, *, timeout_s: float | None = None, exp_time: int | None = None, **params: Any
    ) -> OrderAck:
        """Place one order over the private WebSocket (op ``order``) and wait for OKX's reply.

        ``params`` are the keywords of REST ``place_order`` (``inst_id``,
        ``td_mode``, ``side``, ``ord_type``, ``sz``, ``px``, ``cl_ord_id``...);
        ``instIdCode`` is looked up in the instrument cache. ``exp_time``: Unix
        ms after which OKX must not process it. Returns the ``OrderAck``.

        Raises ``ValidationError`` (bad params, or this is a public/business
        connection, which cannot take orders; nothing sent), ``OrderError``
        (OKX refused the order: sCode/sMsg on ``items``; or the reply did not
        carry exactly one item for it: ``outcomes``, ``unmatched``, and
        ``outcome_unknown`` True when its item is missing), ``APIError`` (other
        error code), ``RequestStateError(stage="gate", dispatched=False)``
        (not admitted by the request gate), ``RequestStateError(stage="ws")``:
        ``dispatched=False`` when nothing was sent, ``dispatched=True`` when the
        connection dropped or no reply came within ``timeout_s`` after sending —
        the outcome is then UNKNOWN: resolve it by ``cl_ord_ids`` before re-sending.
        """
        return self._order("place_order", params, timeout_s, exp_time)[0]

    def place_batch_orders(
        self,
        orders: Sequence[Mapping[str, Any]],
        *,
        timeout_s: float | None = None,
        exp_time: int | None = None,
    ) -> list[OrderAck]:
        """Place up to 20 orders (op ``batch-orders``); one ``OrderAck`` per order, in
        the order given (matched by clOrdId, else position, however OKX orders them).

        Raises as ``place_order``; a partial success raises ``OrderError``
        whose ``succeeded``/``failed`` split the items; a reply with a missing,
        extra or unmatchable item raises ``OrderError`` whose ``outcomes`` say,
        per order, its ack or "missing (outcome unknown)", and whose
        ``unmatched`` lists the extra items.
        """
        return self._order("place_batch_orders", {"orders": orders}, timeout_s, exp_time)

    def cancel_order(self, *, timeout_s: float | None = None, **params: Any) -> OrderAck:
        """Cancel one order (op ``cancel-order``): ``inst_id`` and ``ord_id`` or ``cl_ord_id``.

        Raises as ``place_order``. ``sCode "0"`` only means OKX accepted the
        cancel; the final state comes from the orders channel.
        """
        return self._order("cancel_order", params, timeout_s, None)[0]

    def cancel_batch_orders(
        self, orders: Sequence[Mapping[str, Any]], *, timeout_s: float | None = None
    ) -> list[OrderAck]:
        """Cancel up to 20 orders (op ``batch-cancel-orders``). Raises as ``place_order``."""
        return self._order("cancel_batch_orders", {"orders": orders}, timeout_s, None)

    def amend_order(
        self, *, timeout_s: float | None = None, exp_time: int | None = None, **params: Any
    ) -> OrderAck:
        """Amend one order (op ``amend-order``): ``inst_id``, ``ord_id``/``cl_ord_id``,
        ``new_sz`` and/or ``new_px``, optional ``req_id``, ``cxl_on_fail``. Raises as ``place_order``.
        """
        return self._order("amend_order", params, timeout_s, exp_time)[0]

    def amend_batch_orders(
        self,
        orders: Sequence[Mapping[str, Any]],
        *,
        timeout_s: float | None = None,
        exp_time: int | None = None,
    ) -> list[OrderAck]:
        """Amend up to 20 orders (op ``batch-amend-orders``). Raises as ``place_order``."""
        return self._order("amend_batch_orders", {"orders": orders}, timeout_s, exp_time)

    def _inst_id_code(self, item: Mapping[str, Any]) -> int:
        code = item.get("instIdCode")
        if code not in (None, ""):
            if isinstance(code, str) and code.isdigit():
                code = int(code)
            return count(code, name="inst_id_code", minimum=0)
        inst_id = item.get("instId")
        if not inst_id:
            raise ValidationError("WS order entry needs inst_id")
        if self._instruments is None:
            raise ValidationError(
                f"cannot resolve the instIdCode of {inst_id}: this WSClient has no instrument "
                "cache (use client.ws_private(), or pass instruments=)"
            )
        resolved = self._instruments.inst_id_code(str(inst_id))
        if resolved is None:
            raise ValidationError(f"OKX has not assigned an instIdCode to {inst_id}")
        return int(resolved)

    def _order(
        self,
        method: str,
        kwargs: Mapping[str, Any],
        timeout: float | None,
        exp_time: int | None,
        answer: Answer | None = None,
    ) -> Any:
        """Validate, gate, guard, send one op and turn its reply into the result: the
        ``OrderAck``s (``answer`` None) or ``answer(op, code, msg, data)``."""
        op, path, batch = WS_ORDER_OPS[method]
        endpoint = registry().get("POST", path)
        assert endpoint is not None
        _check_service(op, endpoint, self.url)
        built = build_params(endpoint, kwargs)
        items: list[dict[str, Any]] = built if isinstance(built, list) else [built]
        if batch and len(items) > 20:
            raise ValidationError(f"{method}: at most 20 orders per batch, got {len(items)}")
        spread = endpoint.group == "spread"
        validate = None if spread else getattr(self._instruments, "validate", None)
        if validate is not None and not method.startswith("cancel"):
            for item in items:
                validate(item, amend=method.startswith("amend"))
        wire = [dict(item) if spread else self._with_code(item) for item in items]
        cl_ord_ids = [str(i["clOrdId"]) for i in items if i.get("clOrdId")]
        limit = self._order_timeout_s if timeout is None else seconds(timeout, name="timeout")
        deadline = self._clock.monotonic() + limit
        gate_params = built if batch else items[0]
        # A check before the gate: a call refused anyway (safe mode) does not queue.
        check_guards(self._guards, endpoint, gate_params)
        refresh = self._account_limit_refresh
        if refresh is not None and endpoint.counts_account_orders:
            refresh(gate_timeout_s=limit)
        wait = max(0.0, deadline - self._clock.monotonic())  # ``timeout_s`` bounds it all
        permit = (
            self._gate.acquire(endpoint, gate_params, timeout_s=wait, concurrency=False)
            if self._gate is not None
            else None
        )
        try:
            # Again after admission, right before sending: safe mode may have come on
            # while this order waited in the gate or for the account-limit load.
            releases = run_guards(self._guards, endpoint, gate_params)
            try:
                code, msg, data = self._send_order(
                    op, endpoint, gate_params, wire, cl_ord_ids, exp_time, deadline, limit
                )
            finally:
                if releases:
                    release_all(releases)
        finally:
            if permit is not None:
                permit.release()
        if answer is not None:
            return answer(op, code, msg, data)
        # The same item-by-item check as REST (okx_sync.rest.acks): one item per order.
        ordered, error = order_reply(wire, code, msg, data, method="WS", path=op)
        if error is not None:
            raise error
        return [OrderAck.from_okx(d) for d in ordered]

    def _with_code(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """``item`` with ``instIdCode`` (from the cache) in place of ``instId``."""
        w = dict(item)
        w["instIdCode"] = self._inst_id_code(item)
        w.pop("instId", None)
        return w

    def _send_order(
        self,
        op: str,
        endpoint: Any,
        gate_params: Any,
        wire: list[dict[str, Any]],
        cl_ord_ids: list[str],
        exp_time: int | None,
        deadline: float,
        limit: float,
    ) -> tuple[str, str, list[Any]]:
        """Send ``wire`` as one op and wait for its reply; ``(code, msg, data)`` of a reply
        with code 0/1/2, else raises (``APIError``, ``RequestStateError``)."""
        try:
            conn = self._wait_conn(deadline)
        except (WSClosedError, WSTimeoutError) as exc:
            raise RequestStateError(
                f"WS {op} not sent: {exc}",
                stage="ws",
                dispatched=False,
                method="WS",
                path=op,
                cl_ord_ids=cl_ord_ids,
            ) from exc
        req_id = self._next_id("o")
        text = order_frame(req_id, op, wire, exp_time_ms=exp_time)
        req = OrderRequest(req_id, op, cl_ord_ids)
        conn.pending[req_id] = req
        try:
            conn.send(text)
        except WSClosedError as exc:
            conn.pending.pop(req_id, None)
            raise RequestStateError(
                f"WS {op} send failed: {exc}",
                stage="ws",
                dispatched=exc.__cause__ is not None,
                method="WS",
                path=op,
                cl_ord_ids=cl_ord_ids,
            ) from exc
        log.debug(
            "ws %s: %s sent (id %s, clOrdId %s)",
            self.name,
            op,
            req_id,
            ",".join(cl_ord_ids) or "-",
            extra={"ws": self.name, "op": op, "id": req_id, "cl_ord_ids": cl_ord_ids},
        )
        self._counters.bump("op_waiters")
        try:
            req.done.wait(max(0.0, deadline - self._clock.monotonic()))
        finally:
            self._counters.bump("op_waiters", -1)
        conn.pending.pop(req_id, None)
        reply = req.reply
        if reply is None:
            why = req.lost or f"no reply within {limit:g} s"
            log.warning(
                "ws %s: %s outcome unknown (id %s, clOrdId %s): %s",
                self.name,
                op,
                req_id,
                ",".join(cl_ord_ids) or "-",
                why,
                extra={
                    "ws": self.name,
                    "op": op,
                    "id": req_id,
                    "cl_ord_ids": cl_ord_ids,
                    "reason": why,
                },
            )
            raise RequestStateError(
                f"WS {op}: {why}; outcome unknown",
                stage="ws",
                dispatched=True,
                method="WS",
                path=op,
                cl_ord_ids=cl_ord_ids,
            )
        code = str(reply.get("code", ""))
        raw_data = reply.get("data")
        data: list[Any] = raw_data if isinstance(raw_data, list) else []
        if self._gate is not None:
            self._gate.observe(endpoint, gate_params, http_status=None, code=code, data=data)
        msg = str(reply.get("msg", ""))
        if code not in ("0", *ORDER_ERROR_CODES):
            raise APIError(code, msg, method="WS", path=op, data=data)
        return code, msg, data
