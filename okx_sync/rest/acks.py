"""Match an order-entry reply to its request, item by item. Pure.

Place/amend/cancel (single and batch, REST and WebSocket) must be answered with
exactly one item per order sent (a single order is a batch of one). A reply
with fewer items, more items, or items that belong to no order sent is not a
success and not an "OK, use the first": :func:`order_reply` turns it into an
:class:`~okx_sync.errors.OrderError` that says, per order sent, what is known
(:class:`ItemOutcome`), and lists the reply items no order claimed.

Matching (:func:`match_acks`): an order sent with a ``clOrdId`` (else an
``ordId``) that no other order of the request shares is matched to the one
reply item carrying the same value; two reply items carrying it leave the
order unmatched, even by position (which of them is true cannot be told).
The other orders still unmatched are matched by position, only when the
reply has exactly as many items as the request, and only to an unclaimed
item whose ``clOrdId`` is empty or the order's own and whose ``ordId`` does
not contradict the order's.
An order left unmatched is MISSING: OKX may or may not have acted on it
(outcome unknown: resolve it by clOrdId before re-sending).

Used by :func:`okx_sync.rest.envelope.interpret` (REST: named methods and
``client.request``) and by WebSocket order entry (``okx_sync.ws.orders``).
Thread safety: pure functions and immutable values, safe from any thread.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ..errors import OrderError
from ..models.order import OrderAck

__all__ = ["ItemOutcome", "AckMatch", "match_acks", "order_reply", "describe_ack"]

_KEYS = ("clOrdId", "ordId")


def _text(item: Any, key: str) -> str:
    if not isinstance(item, Mapping):
        return ""
    value = item.get(key)
    return "" if value is None else str(value)


@attrs.frozen(kw_only=True)
class ItemOutcome:
    """What a reply says about one order of the request.

    ``index`` (its position in the request), ``cl_ord_id`` / ``ord_id`` (as
    sent; None when not sent), ``ack`` (the matched reply item as an
    :class:`~okx_sync.models.order.OrderAck`, whatever its sCode; None when
    the reply has no item for this order), ``reply_index`` (that item's
    position in the reply, or None). ``outcome_unknown`` is True when
    ``ack`` is None: OKX may or may not have acted on the order — resolve it
    by clOrdId (``Reconciler.resolve_order``) before re-sending.
    Thread safety: immutable.
    """

    index: int
    cl_ord_id: str | None
    ord_id: str | None
    ack: OrderAck | None
    reply_index: int | None = None

    @property
    def outcome_unknown(self) -> bool:
        """True when the reply carried no item for this order."""
        return self.ack is None

    def describe(self) -> str:
        """One line: ``"#0 clOrdId=a1: sCode 0"`` or ``"...: missing (outcome unknown)"``."""
        who = f"#{self.index}"
        if self.cl_ord_id:
            who += f" clOrdId={self.cl_ord_id}"
        if self.ord_id:
            who += f" ordId={self.ord_id}"
        if self.ack is None:
            return f"{who}: missing (outcome unknown)"
        return f"{who}: {describe_ack(self.ack)}"


def describe_ack(ack: OrderAck) -> str:
    """``"sCode 51000 msg"`` (+ the ordId the ack names). Pure."""
    text = f"sCode {ack.s_code if ack.s_code is not None else '-'}"
    if ack.s_msg:
        text += f" {ack.s_msg}"
    if ack.ord_id:
        text += f" ordId={ack.ord_id}"
    return text


@attrs.frozen(kw_only=True)
class AckMatch:
    """The result of :func:`match_acks`.

    ``outcomes``: one :class:`ItemOutcome` per order of the request, in request
    order. ``unmatched``: the reply items no order claimed (as ``OrderAck``;
    a reply item that is not an object becomes an ``OrderAck`` built from an
    empty mapping). ``acks``: every reply item, in reply order. ``complete``
    is True when every order has its item and no item is left over.
    Thread safety: immutable.
    """

    outcomes: tuple[ItemOutcome, ...]
    unmatched: tuple[OrderAck, ...]
    acks: tuple[OrderAck, ...]

    @property
    def complete(self) -> bool:
        """Every order answered by exactly one item, and no item left over."""
        return not self.unmatched and all(o.ack is not None for o in self.outcomes)

    @property
    def missing(self) -> tuple[ItemOutcome, ...]:
        """The orders the reply has no item for (outcome unknown)."""
        return tuple(o for o in self.outcomes if o.ack is None)


def _compatible(request: Any, reply: Mapping[str, Any]) -> bool:
    cl_ord_id = _text(reply, "clOrdId")
    if cl_ord_id and cl_ord_id != _text(request, "clOrdId"):
        return False
    ord_id, sent = _text(reply, "ordId"), _text(request, "ordId")
    return not (ord_id and sent and ord_id != sent)


def _key(request: Any) -> tuple[str, str] | None:
    for field in _KEYS:
        value = _text(request, field)
        if value:
            return field, value
    return None


def match_acks(requests: Sequence[Any], data: Sequence[Any]) -> AckMatch:
    """Match the reply items ``data`` to the orders ``requests`` (OKX params). Pure.

    ``requests``: the OKX params of each order sent (mappings with ``clOrdId``
    and/or ``ordId``; other entries match by position only). ``data``: the
    reply's ``data`` items. See the module docstring for the rules. Never raises.
    """
    reqs = list(requests)
    replies = list(data)
    acks = tuple(OrderAck.from_okx(d if isinstance(d, Mapping) else {}) for d in replies)
    owner: list[int | None] = [None] * len(replies)
    matched: list[int | None] = [None] * len(reqs)
    keys = [_key(r) for r in reqs]
    shared = Counter(k for k in keys if k is not None)
    ambiguous: set[int] = set()  # two reply items name this order: neither is trusted
    for i, key in enumerate(keys):
        if key is None or shared[key] > 1:
            continue
        field, value = key
        hits = [j for j, d in enumerate(replies) if owner[j] is None and _text(d, field) == value]
        if len(hits) == 1:
            matched[i], owner[hits[0]] = hits[0], i
        elif hits:
            ambiguous.add(i)
    if len(replies) == len(reqs):
        for i, request in enumerate(reqs):
            reply = replies[i]
            if (
                matched[i] is None
                and i not in ambiguous
                and owner[i] is None
                and isinstance(reply, Mapping)
                and _compatible(request, reply)
            ):
                matched[i], owner[i] = i, i
    outcomes = tuple(
        ItemOutcome(
            index=i,
            cl_ord_id=_text(r, "clOrdId") or None,
            ord_id=_text(r, "ordId") or None,
            ack=None if (j := matched[i]) is None else acks[j],
            reply_index=matched[i],
        )
        for i, r in enumerate(reqs)
    )
    unmatched = tuple(a for j, a in enumerate(acks) if owner[j] is None)
    return AckMatch(outcomes=outcomes, unmatched=unmatched, acks=acks)


def order_reply(
    requests: Sequence[Any], code: str, msg: str, data: Sequence[Any], /, **kw: Any
) -> tuple[list[Any], OrderError | None]:
    """Check an order-entry reply with top-level ``code`` "0", "1" or "2" against its request.

    Returns ``(items, None)`` when ``code`` is "0" and every order has exactly
    one item (``items``: the reply items in REQUEST order, so a reordered reply
    lines up with what was sent). Otherwise returns ``(list(data), error)``:
    an :class:`~okx_sync.errors.OrderError` with ``code``, ``items`` (every
    reply item), ``outcomes`` and ``unmatched`` (see :func:`match_acks`); for
    code "0" its ``msg`` says how the reply fell short. ``kw`` goes to the
    error (``method``, ``path``, ``http_status``, ``request_id``; ``data``
    defaults to the reply's ``data``).
    Pure; never raises.
    """
    found = match_acks(requests, data)
    if code == "0" and found.complete:
        return [data[o.reply_index] for o in found.outcomes if o.reply_index is not None], None
    if code == "0":
        msg = _shortfall(len(found.outcomes), len(found.acks), found)
    error = OrderError(
        code,
        msg,
        items=found.acks,
        outcomes=found.outcomes,
        unmatched=found.unmatched,
        **{"data": data, **kw},
    )
    return list(data), error


def _shortfall(sent: int, received: int, found: AckMatch) -> str:
    """The message of an OrderError for a code-"0" reply that does not match its request."""
    parts = [f"the reply has {received} item(s) for {sent} order(s)"]
    if found.missing:
        parts.append(f"{len(found.missing)} order(s) missing (outcome unknown)")
    if found.unmatched:
        parts.append(f"{len(found.unmatched)} unmatched extra item(s)")
    return "order reply does not match the request: " + ", ".join(parts)
