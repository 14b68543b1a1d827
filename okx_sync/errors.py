"""The one exception tree of okx_sync.

::

    OkxError                         root of everything okx_sync raises on purpose
    ├── ValidationError (ValueError) bad input refused before anything was sent
    │   └── InstrumentRuleError      px/sz breaks the instrument's tickSz/lotSz/minSz/maxLmtSz
    ├── APIError                     a response arrived and it says failure
    │   └── OrderError               order entry failed (code "1"/"2") or its reply does not
    │                                carry one item per order: per-order outcomes
    ├── RequestStateError            no usable response; ``stage`` + ``dispatched`` say
    │                                whether the request may have reached OKX
    ├── SafeModeError                order placement/amend refused because safe mode is on
    ├── WSError                      WebSocket failures
    │   ├── WSAuthError              login refused (60005, 60007, 60009, 60024, 60032, 4001 ...)
    │   ├── WSSubscribeError         an error event answered a subscribe/unsubscribe
    │   ├── WSTimeoutError           no acknowledgement within the timeout
    │   └── WSClosedError            the client is closed / not started
    └── OrderBookError               a local order book can no longer be trusted
        ├── OrderBookSequenceError   prevSeqId did not chain
        ├── OrderBookChecksumError   CRC32 of the top 25 levels did not match
        ├── OrderBookNotReadyError   update before snapshot
        ├── OrderBookDataError       a malformed push (bad level, number, field or shape)
        └── OrderBookCrossedError    an update left the book crossed (best bid >= best ask)

Decision helpers: :func:`is_rate_limit_error`, :func:`is_auth_error`,
:func:`is_time_skew_error`.

Exceptions are plain data holders: immutable after construction, safe to pass
between threads. Their text never contains credentials or signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "OkxError",
    "ValidationError",
    "InstrumentRuleError",
    "APIError",
    "OrderError",
    "RequestStateError",
    "SafeModeError",
    "WSError",
    "WSAuthError",
    "WSSubscribeError",
    "WSTimeoutError",
    "WSClosedError",
    "WSQueueFullError",
    "OrderBookError",
    "OrderBookSequenceError",
    "OrderBookChecksumError",
    "OrderBookNotReadyError",
    "OrderBookDataError",
    "OrderBookCrossedError",
    "is_rate_limit_error",
    "is_auth_error",
    "is_time_skew_error",
    "RATE_LIMIT_CODES",
    "AUTH_CODES",
    "TIME_SKEW_CODES",
]

# Codes that mean "throttled or overloaded, nothing was executed" (facts §2.6, §3.4).
RATE_LIMIT_CODES = frozenset(
    {"50011", "50061", "50040", "50013", "51113", "58102", "60014", "60023"}
)
# REST 501xx auth codes and the WS login codes (facts §3.2, §3.5).
AUTH_CODES = frozenset(
    {f"501{n:02d}" for n in range(0, 23)}
    | {"60004", "60005", "60006", "60007", "60009", "60024", "60032", "63999", "4001"}
)
TIME_SKEW_CODES = frozenset({"50102", "50112", "60004", "60006"})


class OkxError(Exception):
    """Root of every error okx_sync raises deliberately.

    Thread safety: immutable once raised (attributes are set by the constructor
    and are read-only by contract: code must not assign to them afterwards);
    safe to share between threads. Every subclass pickles with its
    attributes (``__reduce__`` restores ``args`` and the attributes without
    calling the subclass constructor).
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's default pickling calls cls(*self.args), which fails for
        # subclasses whose constructors take other arguments than the message.
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))


def _restore_error(cls: type[OkxError], args: tuple[Any, ...], state: dict[str, Any]) -> OkxError:
    """Rebuild a pickled :class:`OkxError` (see ``OkxError.__reduce__``)."""
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class ValidationError(OkxError, ValueError):
    """Bad input refused before anything was sent (nothing reached OKX).

    Thread safety: immutable once raised; safe to share between threads.
    """


class InstrumentRuleError(ValidationError):
    """An order's price or size breaks an instrument rule (tickSz, lotSz, minSz, maxLmtSz).

    ``inst_id``, ``rule`` (the OKX field name, e.g. ``"tickSz"``), ``value`` and
    ``limit`` say which rule and by how much. Nothing was sent.

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(self, message: str, *, inst_id: str, rule: str, value: str, limit: str) -> None:
        super().__init__(message)
        self.inst_id = inst_id
        self.rule = rule
        self.value = value
        self.limit = limit


class APIError(OkxError):
    """A response arrived from OKX and it says failure.

    Raised for a non-zero ``code`` in the envelope or a non-2xx HTTP status.

    Attributes: ``code`` (str, OKX error code, "" when the body had none),
    ``msg``, ``http_status``, ``request_id`` (``x-request-id`` header or None),
    ``method``, ``path``, ``data`` (the envelope's ``data`` list, or []).

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(
        self,
        code: str,
        msg: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        method: str = "",
        path: str = "",
        data: Sequence[Any] | None = None,
    ) -> None:
        self.code = str(code)
        self.msg = msg
        self.http_status = http_status
        self.request_id = request_id
        self.method = method
        self.path = path
        self.data = list(data or [])
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"OKX error {self.code or '-'}: {self.msg or '(no message)'}"]
        if self.method or self.path:
            parts.append(f"[{self.method} {self.path}]")
        if self.http_status is not None:
            parts.append(f"http={self.http_status}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class OrderError(APIError):
    """Order entry failed or was answered inconsistently; says what happened to each order.

    Raised for top-level code "1" (all failed) or "2" (partial), and for a
    place/amend/cancel reply (code "0" included) that does not carry exactly
    one item per order sent: fewer items, more items, or items no order can
    be matched to (by clOrdId/ordId, else position). ``code`` is the reply's
    top-level code (it may be "0" for such a reply; ``msg`` then says how the
    reply fell short).

    ``items``: every reply item, in reply order (``OrderAck`` objects when
    built by okx_sync, each with ``s_code``, ``s_msg``, ``sub_code``,
    ``cl_ord_id``, ``ord_id``, ``tag``). ``failed`` and ``succeeded`` split
    them; ``cl_ord_ids`` lists every clOrdId involved (sent or answered).

    ``outcomes``: one entry per order SENT, in request order (an
    ``ItemOutcome`` from okx_sync.rest.acks when built by okx_sync; empty when
    the error was built without its request): ``index``, ``cl_ord_id``,
    ``ord_id`` (as sent), ``ack`` (the matched item, or None: MISSING) and
    ``outcome_unknown``. ``unmatched``: reply items no order claimed (unmatched
    extra items). ``missing``: the outcomes without an item; ``outcome_unknown``
    is True when there is one — OKX may or may not have acted on those orders:
    resolve them by clOrdId (``Reconciler.resolve_order``; ``okx_sync.
    is_outcome_unknown(err)`` is True) before re-sending.

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(
        self,
        code: str,
        msg: str,
        *,
        items: Sequence[Any] = (),
        outcomes: Sequence[Any] = (),
        unmatched: Sequence[Any] = (),
        **kw: Any,
    ) -> None:
        self.items = tuple(items)
        self.outcomes = tuple(outcomes)
        self.unmatched = tuple(unmatched)
        super().__init__(code, msg, **kw)

    @property
    def failed(self) -> tuple[Any, ...]:
        """Items whose sCode is not "0"."""
        return tuple(i for i in self.items if str(_field(i, "s_code", "sCode")) != "0")

    @property
    def succeeded(self) -> tuple[Any, ...]:
        """Items whose sCode is "0" (accepted by OKX)."""
        return tuple(i for i in self.items if str(_field(i, "s_code", "sCode")) == "0")

    @property
    def missing(self) -> tuple[Any, ...]:
        """The ``outcomes`` of orders the reply has no item for (outcome unknown)."""
        return tuple(o for o in self.outcomes if getattr(o, "ack", None) is None)

    @property
    def outcome_unknown(self) -> bool:
        """True when some order sent has no item in the reply (see ``missing``)."""
        return bool(self.missing)

    @property
    def cl_ord_ids(self) -> tuple[str, ...]:
        """Every clOrdId involved: those sent (``outcomes``), then those answered
        (``items``); empty strings dropped, each once."""
        sent = (getattr(o, "cl_ord_id", "") for o in self.outcomes)
        answered = (_field(i, "cl_ord_id", "clOrdId") for i in self.items)
        return tuple(dict.fromkeys(str(x) for x in (*sent, *answered) if x))

    def _describe(self) -> str:
        base = super()._describe()
        outcomes = getattr(self, "outcomes", ())
        if outcomes:
            lines = [o.describe() if hasattr(o, "describe") else repr(o) for o in outcomes]
            lines += [
                f"unmatched extra item {_who(i)}={_field(i, 's_code', 'sCode')}"
                for i in getattr(self, "unmatched", ())
            ]
            return f"{base} orders: " + "; ".join(lines)
        details = "; ".join(
            f"{_who(i)}={_field(i, 's_code', 'sCode')} {_field(i, 's_msg', 'sMsg') or ''}".rstrip()
            for i in getattr(self, "items", ())
        )
        return f"{base} items: {details}" if details else base


def _who(item: Any) -> str:
    return str(_field(item, "cl_ord_id", "clOrdId") or _field(item, "ord_id", "ordId") or "?")


class RequestStateError(OkxError):
    """No usable response: the caller must know whether OKX may have acted.

    ``stage``: ``"gate"`` (never left the request gate), ``"http"`` (transport),
    ``"ws"`` (WebSocket order entry). ``dispatched``: False when no byte of the
    request can have reached OKX; True when it may have (read timeout, reset
    after send) — for order entry the outcome is then UNKNOWN: resolve it by
    clOrdId (see ``Reconciler.resolve_order``) before re-sending.
    ``cl_ord_ids`` lists the clOrdIds of the orders involved. The underlying
    exception is chained as ``__cause__``.

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(
        self,
        message: str,
        *,
        stage: str,
        dispatched: bool,
        method: str = "",
        path: str = "",
        cl_ord_ids: Sequence[str] = (),
    ) -> None:
        self.stage = stage
        self.dispatched = dispatched
        self.method = method
        self.path = path
        self.cl_ord_ids = tuple(cl_ord_ids)
        text = f"{message} [stage={stage} dispatched={dispatched}"
        if method or path:
            text += f" {method} {path}"
        if self.cl_ord_ids:
            text += f" clOrdIds={','.join(self.cl_ord_ids)}"
        super().__init__(text + "]")


class SafeModeError(OkxError):
    """Order placement or amend refused before sending: safe mode is on.

    ``reason`` is the reason given to ``enter_safe_mode``. Cancels, queries and
    reduce-only closes are not affected.

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class WSError(OkxError):
    """Base class of WebSocket errors.

    Thread safety: immutable once raised; safe to share between threads.
    """


class WSAuthError(WSError):
    """WebSocket login refused; the reconnect loop stops (retrying cannot help).

    ``code`` and ``msg`` come from OKX's error event or close frame.

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(self, code: str, msg: str) -> None:
        self.code = str(code)
        self.msg = msg
        super().__init__(f"WS login failed: {self.code} {msg}")


class WSSubscribeError(WSError):
    """OKX answered a subscribe/unsubscribe with an error event.

    ``code``, ``msg`` and ``arg`` (the rejected argument, when known).

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(self, code: str, msg: str, arg: Any = None) -> None:
        self.code = str(code)
        self.msg = msg
        self.arg = arg
        super().__init__(f"WS subscribe error {self.code}: {msg} arg={arg!r}")


class WSTimeoutError(WSError, TimeoutError):
    """No acknowledgement arrived within the timeout.

    Thread safety: immutable once raised; safe to share between threads.
    """


class WSClosedError(WSError):
    """The WebSocket client is closed or not started.

    Thread safety: immutable once raised; safe to share between threads.
    """


class WSQueueFullError(WSError):
    """A handler queue under ``overflow="drop"`` was full: messages were dropped.

    One is reported (to ``on_error`` handlers) per drop episode: ``path`` is
    the dispatch path (``"typed"`` or ``"raw"``), ``dropped`` how many
    messages the episode dropped and ``since`` the monotonic time (the
    client's clock) of its first drop. Pushes were lost: reconcile what they
    carried (``Reconciler``, see the RUNBOOK) or use ``overflow="block"``.

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(self, path: str, dropped: int, since: float) -> None:
        self.path = path
        self.dropped = int(dropped)
        self.since = float(since)
        super().__init__(
            f"WS {path} handler queue full: {self.dropped:,} message(s) dropped "
            f"(overflow=drop); reconcile, or use overflow=block"
        )


class OrderBookError(OkxError):
    """A local order book can no longer be trusted; reset and resubscribe.

    Thread safety: immutable once raised; safe to share between threads.
    """


class OrderBookSequenceError(OrderBookError):
    """An update's prevSeqId does not equal the stored seqId (a gap).

    ``expected`` (stored seqId), ``got`` (the update's prevSeqId), ``seq_id``.

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(self, expected: int | None, got: int, seq_id: int, *, inst_id: str = "") -> None:
        self.expected = expected
        self.got = got
        self.seq_id = seq_id
        self.inst_id = inst_id
        super().__init__(
            f"order book gap {inst_id}: expected prevSeqId={expected}, got {got} (seqId={seq_id})"
        )


class OrderBookChecksumError(OrderBookError):
    """The CRC32 of the merged book does not match the pushed checksum.

    ``expected`` (pushed), ``got`` (computed), ``check_string``.

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(self, expected: int, got: int, check_string: str, *, inst_id: str = "") -> None:
        self.expected = expected
        self.got = got
        self.check_string = check_string
        self.inst_id = inst_id
        super().__init__(f"order book checksum mismatch {inst_id}: expected {expected}, got {got}")


class OrderBookNotReadyError(OrderBookError):
    """An update arrived before any snapshot.

    Thread safety: immutable once raised; safe to share between threads.
    """


class OrderBookDataError(OrderBookError):
    """A push is malformed: not a dict, ``data`` not a list, an unknown ``action``, a
    level that is not a list of at least two strings, a price or size that is not a
    finite number (or is negative), a non-numeric ``ts``, ``seqId`` or ``prevSeqId``.

    Nothing of the push was stored. ``inst_id``; ``field`` names what was wrong
    (``"bids"``, ``"asks"``, ``"ts"``, ``"seqId"``, ``"action"``, ``"data"``...).

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(self, message: str, *, inst_id: str = "", field: str = "") -> None:
        self.inst_id = inst_id
        self.field = field
        super().__init__(message)


class OrderBookCrossedError(OrderBookError):
    """An update left a book that was not crossed with best bid >= best ask.

    ``bid`` and ``ask`` are the best prices as received (strings).

    Thread safety: immutable once raised (attributes are set by the constructor and
    are read-only by contract); safe to share between threads.
    """

    def __init__(self, bid: str, ask: str, *, inst_id: str = "") -> None:
        self.bid = bid
        self.ask = ask
        self.inst_id = inst_id
        super().__init__(f"order book crossed {inst_id}: best bid {bid} >= best ask {ask}")


def _field(item: Any, attr: str, key: str) -> Any:
    if isinstance(item, dict):
        return item.get(key, "")
    return getattr(item, attr, "")


def _code_of(err: BaseException) -> str:
    return str(getattr(err, "code", "") or "")


def is_rate_limit_error(err: BaseException) -> bool:
    """True for throttling: HTTP 429 or codes 50011, 50061, 50040, 50013, 51113, 58102, 60014, 60023.

    Thread safety: pure function.
    """
    if getattr(err, "http_status", None) == 429:
        return True
    return _code_of(err) in RATE_LIMIT_CODES


def is_auth_error(err: BaseException) -> bool:
    """True for authentication failures: HTTP 401, codes 501xx, WS login codes.

    Thread safety: pure function.
    """
    if isinstance(err, WSAuthError):
        return True
    if getattr(err, "http_status", None) == 401:
        return True
    return _code_of(err) in AUTH_CODES


def is_time_skew_error(err: BaseException) -> bool:
    """True when the request timestamp was refused: 50102, 50112, WS 60004/60006.

    Fix with ``client.sync_time()``. Thread safety: pure function.
    """
    return _code_of(err) in TIME_SKEW_CODES
