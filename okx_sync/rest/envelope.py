"""Turn one HTTP response into OKX ``data`` or the error it stands for. Pure.

OKX answers ``{"code": "0", "msg": "", "data": [...]}``; a non-zero ``code``
or a non-2xx status is a failure (facts §1.3). The body is parsed whatever the
status: a 429 or 401 carries the OKX code that says what happened.

Order entry (place/amend/cancel/close, single and batch) answers top-level
code ``"1"`` (every item failed) or ``"2"`` (a batch partly succeeded) with one
item per order: those become an :class:`~okx_sync.errors.OrderError` carrying
every item as an :class:`~okx_sync.models.order.OrderAck`, successes included,
so a partial batch is never half-reported. Place/amend/cancel replies (single
and batch) are also matched to the request item by item when ``order_items``
is given (:func:`okx_sync.rest.acks.order_reply`): a code-"0" reply with a
missing, extra or unmatchable item is an ``OrderError`` too, and a complete
one is returned in request order.

:func:`interpret` never raises and does no I/O: it returns an :class:`Outcome`
whose ``error`` the caller raises. Thread safety: pure functions and immutable
values, safe from any thread.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from ..errors import APIError, OrderError
from ..models.order import OrderAck
from .acks import order_reply

__all__ = ["Outcome", "Headers", "interpret", "parse_retry_after", "ORDER_ERROR_CODES"]

# Top-level codes of order-entry responses that carry per-item results (facts §1.3).
ORDER_ERROR_CODES = frozenset({"1", "2"})

_BODY_SNIPPET = 200


class Headers(Protocol):
    """Case-insensitive response headers (requests, urllib3 and http.client all qualify)."""

    def get(self, name: str, /) -> Any:
        """The header's value, or None."""
        ...


class Outcome:
    """What one response means: ``data`` on success, else ``error`` (not raised).

    ``code``/``msg`` are OKX's (``""`` when the body had none), ``request_id``
    is the ``x-request-id`` header or None, ``retry_after_s`` the parsed
    ``Retry-After`` header in seconds or None. ``unusable`` names why the body
    is no OKX envelope at all (``"not_json"``, ``"too_deep"``, ``"not_envelope"``,
    ``"no_code"``), ``""`` when it is one. Thread safety: immutable by
    convention (plain slots, never mutated after :func:`interpret`).
    """

    __slots__ = (
        "http_status",
        "code",
        "msg",
        "data",
        "request_id",
        "retry_after_s",
        "error",
        "unusable",
    )

    def __init__(
        self,
        http_status: int,
        code: str,
        msg: str,
        data: list[Any],
        request_id: str | None,
        retry_after_s: float | None,
        error: APIError | None,
        unusable: str = "",
    ) -> None:
        self.unusable = unusable
        self.http_status = http_status
        self.code = code
        self.msg = msg
        self.data = data
        self.request_id = request_id
        self.retry_after_s = retry_after_s
        self.error = error

    @property
    def ok(self) -> bool:
        """True when the response is a success (``error`` is None)."""
        return self.error is None

    def __repr__(self) -> str:
        return (
            f"Outcome(http_status={self.http_status}, code={self.code!r}, msg={self.msg!r}, "
            f"request_id={self.request_id!r}, items={len(self.data)})"
        )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or None.

    Accepts delta-seconds (``"2"``, ``"0.5"``) and, when ``now`` (Unix seconds)
    is given, an HTTP date (one already past gives 0). A delta that names no
    usable hold — negative, ``NaN``, infinite — gives ``math.inf``: the caller caps every hold
    (``RequestGateConfig.max_hold_s``), so a hostile header means "the cap".
    Unparsable values give None (no header).
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        if now is None:
            return None
        try:
            # a date already past asks for no wait
            return max(0.0, parsedate_to_datetime(text).timestamp() - now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not 0 <= seconds < math.inf:  # NaN, negative, infinite
        return math.inf
    return seconds


def interpret(
    status: int,
    headers: Headers,
    body: bytes,
    *,
    method: str,
    path: str,
    order_entry: bool = False,
    order_items: Sequence[Any] | None = None,
    now: float | None = None,
) -> Outcome:
    """Decide what a response means.

    ``headers`` must be case-insensitive (requests/urllib3/http.client all
    are). ``order_entry`` selects :class:`OrderError` for top-level codes
    "1"/"2". ``order_items`` (the OKX params of each order sent, for the
    endpoints that answer one item per order: ``Endpoint.acks_each_order``)
    matches a code "0"/"1"/"2" reply to them (:func:`~okx_sync.rest.acks.order_reply`):
    ``data`` comes back in request order, a reply that does not carry exactly
    one item per order becomes an ``OrderError`` whose ``outcomes`` say, per
    order, what is known. ``now`` (Unix seconds) lets an HTTP-date ``Retry-After`` be read.
    Never raises: a body that is not an OKX envelope (not JSON, nested
    deeper than the parser's recursion limit, not an object, no ``code``)
    becomes an ``APIError`` with code ``""``, a message naming the problem and
    ``Outcome.unusable`` set.
    """
    request_id = headers.get("x-request-id") or None
    retry_after = parse_retry_after(headers.get("retry-after"), now=now)
    ok_status = 200 <= status < 300
    unusable = ""
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope, unusable, what = None, "not_json", "a non-JSON body"
    except RecursionError:
        envelope, unusable, what = None, "too_deep", "a JSON body nested too deep to parse"
    if not isinstance(envelope, dict):
        if not unusable:
            unusable, what = "not_envelope", "a JSON body that is not an envelope"
        snippet = " ".join(body[:_BODY_SNIPPET].decode("utf-8", "replace").split())
        msg = f"HTTP {status} with {what}" + (f": {snippet}" if snippet else "")
        bad = APIError("", msg, http_status=status, request_id=request_id, method=method, path=path)
        return Outcome(status, "", msg, [], request_id, retry_after, bad, unusable)

    raw_code = envelope.get("code")
    code = "" if raw_code is None else str(raw_code)
    msg = str(envelope.get("msg") or "")
    raw_data = envelope.get("data")
    data: list[Any] = (
        raw_data if isinstance(raw_data, list) else ([] if raw_data is None else [raw_data])
    )
    kw: dict[str, Any] = {
        "http_status": status,
        "request_id": request_id,
        "method": method,
        "path": path,
        "data": data,
    }
    if order_items is not None and (code in ORDER_ERROR_CODES or (ok_status and code == "0")):
        data, order_error = order_reply(order_items, code, msg, data, **kw)
        return Outcome(status, code, msg, data, request_id, retry_after, order_error)
    if ok_status and code == "0":
        return Outcome(status, code, msg, data, request_id, retry_after, None)

    if not code:
        unusable = "no_code"
        msg = msg or f"HTTP {status}: the response has no OKX code"
    elif not msg and not ok_status:
        msg = f"HTTP {status}"
    error: APIError
    if order_entry and code in ORDER_ERROR_CODES:
        items = [OrderAck.from_okx(d) for d in data if isinstance(d, Mapping)]
        error = OrderError(code, msg, items=items, **kw)
    else:
        error = APIError(code, msg, **kw)
    return Outcome(status, code, msg, data, request_id, retry_after, error, unusable)
