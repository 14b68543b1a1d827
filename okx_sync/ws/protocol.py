"""OKX V5 WebSocket protocol: URLs, request frames, message classification. Pure.

Everything here builds or inspects JSON text and dicts; nothing does I/O, holds
state between calls or starts a thread, so every function is safe to call from
any thread.

Facts used (``okx-v5-facts.md``): URLs §4.1, login §4.2, subscribe/unsubscribe
§4.3 (one ack per arg, ``id`` echoed), heartbeat §4.4 (text ``ping``/``pong``),
``notice`` 64008 §4.5, push envelope §4.6, WS order ops §6.5, limits §2.7
(64 KB subscribe payload, 480 ops per hour per connection, 3 connections per
second), error and close codes §3.5.
"""

from __future__ import annotations

import enum
import json
import json.scanner
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..auth import Credentials, ws_login_args
from ..errors import AUTH_CODES, ValidationError

__all__ = [
    "WS_HOSTS",
    "WS_SERVICES",
    "ws_url",
    "service_of_url",
    "MAX_FRAME_BYTES",
    "OPS_PER_HOUR",
    "CONNECTIONS_PER_SECOND",
    "NOTICE_RECONNECT_CODE",
    "LOGIN_FATAL_CODES",
    "LOGIN_FATAL_CLOSE_CODES",
    "ARG_REJECTION_CODES",
    "is_arg_rejection",
    "ArgKey",
    "Kind",
    "SubFrame",
    "arg_key",
    "args_text",
    "normalize_args",
    "op_frame",
    "batch_frames",
    "login_frame",
    "order_frame",
    "classify",
    "push_key",
    "is_login_fatal",
    "LOGIN_RESYNC_CODES",
    "parse_close_frame",
    "arg_hint_from_error",
    "match_hint",
    "PING",
    "PONG",
    "dedupe_handoff",
    "fast_push_key",
    "decode_frame",
]

PING = "ping"
PONG = b"pong"

#: The three OKX WebSocket services.
WS_SERVICES = ("public", "private", "business")

#: (service, demo) -> URL (facts §4.1).
WS_HOSTS: Mapping[tuple[str, bool], str] = {
    ("public", False): "wss://ws.okx.com:8443/ws/v5/public",
    ("private", False): "wss://ws.okx.com:8443/ws/v5/private",
    ("business", False): "wss://ws.okx.com:8443/ws/v5/business",
    ("public", True): "wss://wspap.okx.com:8443/ws/v5/public",
    ("private", True): "wss://wspap.okx.com:8443/ws/v5/private",
    ("business", True): "wss://wspap.okx.com:8443/ws/v5/business",
}

#: Total subscribe payload per frame (facts §2.7); a bigger frame is closed with 1009.
MAX_FRAME_BYTES = 64 * 1024
#: subscribe + unsubscribe + login requests per hour per connection (facts §2.7).
OPS_PER_HOUR = 480
#: new connections per second per IP (facts §2.7).
CONNECTIONS_PER_SECOND = 3
#: ``notice`` code announcing a service upgrade (facts §4.5).
NOTICE_RECONNECT_CODE = "64008"

#: Login error codes after which reconnecting cannot help (facts §3.5). 63999 is
#: an OKX internal error and is retried.
LOGIN_FATAL_CODES = frozenset(c for c in AUTH_CODES if c.startswith("6") and c != "63999")
#: Close codes meaning the credentials were refused: 4001 login failed, 4007 key
#: updated or deleted (facts §3.5).
LOGIN_FATAL_CLOSE_CODES = frozenset({4001, 4007})
#: Login error codes that a clock re-sync can fix: 60006 timestamp expired (facts
#: §3.5). The client re-syncs once and logs in again before treating it as fatal.
LOGIN_RESYNC_CODES = frozenset({"60006"})

#: Error codes answering a subscribe that mean "this arg cannot be subscribed here"
#: (facts §3.5): wrong URL/channel/instrument, bad args, login needed, channel on
#: another URL, fee tier too low, incompatible book channels. Anything else (60014
#: too frequent, 64007 internal error...) is transient: the arg stays desired.
ARG_REJECTION_CODES = frozenset(
    {"60008", "60011", "60012", "60013", "60018", "64001", "64002", "64003", "64004"}
)

#: Hashable identity of a subscription argument (sorted items, ``uid`` dropped).
ArgKey = tuple[tuple[str, str], ...]

_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
_COMPACT = (",", ":")


def ws_url(service: str, *, demo: bool = False) -> str:
    """The OKX WebSocket URL of ``service`` ("public", "private" or "business").

    Raises ``ValidationError`` for another service name.
    """
    try:
        return WS_HOSTS[(service, bool(demo))]
    except KeyError:
        raise ValidationError(
            f"unknown WS service {service!r}: expected public, private or business"
        ) from None


def service_of_url(url: str) -> str:
    """``"public"``, ``"private"``, ``"business"`` from a URL path, else ``"ws"``."""
    path = url.split("?", 1)[0].rstrip("/")
    last = path.rsplit("/", 1)[-1]
    return last if last in ("public", "private", "business") else "ws"


def arg_key(arg: Mapping[str, Any]) -> ArgKey:
    """Identity of a subscription arg: its items as strings, sorted, without ``uid``.

    OKX adds ``uid`` to private pushes' ``arg``; acks and pushes of the same
    subscription therefore map to the same key as the arg that was sent.
    """
    return tuple(sorted((str(k), str(v)) for k, v in arg.items() if k != "uid"))


def args_text(args: Sequence[Mapping[str, Any]], limit: int = 3) -> str:
    """Subscription args as log text: ``channel=books,instId=BTC-USDT``, ``; ``-separated,
    the first ``limit`` of them and ``(+N more)``. Pure."""
    shown = ["{" + ",".join(f"{k}={v}" for k, v in a.items()) + "}" for a in args[:limit]]
    more = f" (+{len(args) - limit} more)" if len(args) > limit else ""
    return "; ".join(shown) + more if shown else "(no arg)"


def normalize_args(args: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate subscription args and drop duplicates, keeping the first order.

    Accepts one dict or an iterable of dicts. Each needs a non-empty string
    ``channel``; values must be strings (OKX wire names, e.g. ``instId``).
    Raises ``ValidationError`` naming the bad arg; nothing is sent.
    """
    if isinstance(args, Mapping):
        items: list[Any] = [args]
    else:
        if isinstance(args, str | bytes):
            raise ValidationError("args must be a dict or a list of dicts, not a string")
        items = list(args)
    if not items:
        raise ValidationError("no subscription args given")
    out: list[dict[str, Any]] = []
    seen: set[ArgKey] = set()
    for arg in items:
        if not isinstance(arg, Mapping):
            raise ValidationError(f"subscription arg must be a dict, got {type(arg).__name__}")
        channel = arg.get("channel")
        if not isinstance(channel, str) or not channel:
            raise ValidationError(f"subscription arg needs a 'channel' string: {dict(arg)!r}")
        for k, v in arg.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValidationError(
                    f"subscription arg keys and values must be strings (OKX names): {dict(arg)!r}"
                )
        key = arg_key(arg)
        if key not in seen:
            seen.add(key)
            out.append(dict(arg))
    return out


def _check_id(req_id: str) -> str:
    if not _ID_RE.match(req_id):
        raise ValidationError(f"WS request id must be 1-32 letters/digits, got {req_id!r}")
    return req_id


def op_frame(op: str, args: Sequence[Any], req_id: str | None = None) -> str:
    """JSON text of ``{"id":..., "op": op, "args": args}`` (``id`` omitted when None)."""
    body: dict[str, Any] = {}
    if req_id is not None:
        body["id"] = _check_id(req_id)
    body["op"] = op
    body["args"] = list(args)
    return json.dumps(body, separators=_COMPACT)


@attrs.frozen
class SubFrame:
    """One subscribe/unsubscribe frame: its ``id``, the args it carries and the text.

    Thread safety: immutable.
    """

    req_id: str
    args: tuple[dict[str, Any], ...]
    text: str


def batch_frames(
    op: str,
    args: Sequence[Mapping[str, Any]],
    next_id: Callable[[], str],
    *,
    max_bytes: int = MAX_FRAME_BYTES,
    max_args: int | None = None,
) -> list[SubFrame]:
    """Pack ``args`` into as few ``op`` frames as fit ``max_bytes`` each (UTF-8 size).

    Order is kept. ``next_id`` supplies each frame's ``id``; ``max_args`` caps
    the args per frame (1 isolates each arg). Raises ``ValidationError`` when a
    single arg cannot fit a frame on its own.
    """
    frames: list[SubFrame] = []
    current: list[dict[str, Any]] = []
    current_id = ""
    size = 0
    for arg in args:
        encoded = len(json.dumps(arg, separators=_COMPACT).encode("utf-8"))
        full = max_args is not None and len(current) >= max_args
        if current and not full and size + 1 + encoded <= max_bytes:  # +1: the comma
            current.append(dict(arg))
            size += 1 + encoded
            continue
        if current:
            frames.append(SubFrame(current_id, tuple(current), op_frame(op, current, current_id)))
        current_id = next_id()
        size = len(op_frame(op, [], current_id).encode("utf-8")) + encoded
        if size > max_bytes:
            raise ValidationError(f"subscription arg larger than {max_bytes} bytes: {arg!r}")
        current = [dict(arg)]
    if current:
        frames.append(SubFrame(current_id, tuple(current), op_frame(op, current, current_id)))
    return frames


def login_frame(creds: Credentials, epoch_s: int) -> str:
    """The ``login`` op text for Unix seconds ``epoch_s`` (facts §4.2).

    The text carries the passphrase and a signature: never log it.
    """
    return op_frame("login", [ws_login_args(creds, epoch_s)])


def order_frame(
    req_id: str, op: str, args: Sequence[Mapping[str, Any]], *, exp_time_ms: int | None = None
) -> str:
    """A WS trade op (``order``, ``batch-orders``, ``cancel-order``...) with ``id`` (facts §6.5)."""
    body: dict[str, Any] = {"id": _check_id(req_id), "op": op}
    if exp_time_ms is not None:
        body["expTime"] = str(int(exp_time_ms))
    body["args"] = [dict(a) for a in args]
    return json.dumps(body, separators=_COMPACT)


class Kind(enum.Enum):
    """What a decoded message is."""

    PUSH = "push"  # {"arg":..., "data":[...]}
    EVENT = "event"  # {"event": "subscribe" | "error" | "login" | "notice" | ...}
    REPLY = "reply"  # {"id":..., "op": "order" | ..., "code":..., "data":[...]}
    OTHER = "other"


def classify(msg: Mapping[str, Any]) -> Kind:
    """Classify a decoded message (facts §4.3, §4.6, §6.5)."""
    if "event" in msg:
        return Kind.EVENT
    if "data" in msg and "arg" in msg:
        return Kind.PUSH
    if "op" in msg and "id" in msg:
        return Kind.REPLY
    return Kind.OTHER


def push_key(msg: Mapping[str, Any]) -> tuple[str, str]:
    """The ordering key of a push: ``(channel, instId)`` of its ``arg`` ("" when absent)."""
    arg = msg.get("arg") or {}
    return (arg.get("channel") or "", arg.get("instId") or "")


# OKX's push layout: {"arg":{"channel":...[,"instId":...]...},["action":"...",]"data":[
_PUSH_HEAD_RE = re.compile(
    rb'\{"arg":(\{"channel":"([^"\\]*)"(?:,"instId":"([^"\\]*)")?[^{}]*\}),'
    rb'(?:"action":"[a-z]*",)?"data":\['
)
_INST_ID_RE = re.compile(rb'"instId":"([^"\\]*)"')


def fast_push_key(frame: bytes) -> tuple[str, str] | None:
    """``push_key`` read from the raw text of a push without decoding it, or None.

    Only for frames laid out as OKX sends pushes (``{"arg":{"channel":...},
    ["action":...,]"data":[``); anything else returns None and must be
    decoded (same key either way). Lets a pool worker decode a push instead
    of the reader.
    """
    m = _PUSH_HEAD_RE.match(frame)
    if m is None:
        return None
    inst = m.group(3)
    if inst is None:
        arg = m.group(1)
        if b'"instId"' in arg:
            found = _INST_ID_RE.search(arg)
            if found is None:
                return None
            inst = found.group(1)
        else:
            inst = b""
    return (m.group(2).decode(), inst.decode())


# The C scanner behind json.loads, called directly: skips json.loads' two Python
# layers and whitespace regexes (~1.5 us of a ~3.5 us decode of a 200-byte push).
# Shared like json's own default decoder; it holds the GIL while scanning.
_SCAN = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed


def decode_frame(text: str) -> Any:
    """``json.loads(text)`` for one WebSocket frame, faster on OKX's compact JSON.

    Raises ``ValueError`` (``json.JSONDecodeError``) for invalid JSON, as
    ``json.loads``, and also for JSON the decoder refuses by its limits: nesting
    deeper than the interpreter's recursion limit allows (``RecursionError`` is
    never raised) and integers of over ``sys.get_int_max_str_digits()`` digits.
    """
    try:
        try:
            obj, end = _SCAN(text, 0)
        except StopIteration:
            return json.loads(text)  # raises the proper JSONDecodeError (or handles whitespace)
        if end != len(text):
            return json.loads(text)  # trailing data or whitespace: let json decide
    except RecursionError:
        raise ValueError("JSON nested too deeply to decode") from None
    return obj


def is_arg_rejection(code: str | int | None) -> bool:
    """True when a subscribe error code rejects the arg itself (see ``ARG_REJECTION_CODES``)."""
    return code is not None and str(code) in ARG_REJECTION_CODES


def is_login_fatal(code: str | int | None) -> bool:
    """True when a login error/close code means retrying cannot help.

    Codes 60004-60032 (see ``LOGIN_FATAL_CODES``) and close codes 4001/4007.
    """
    if code is None:
        return False
    text = str(code)
    if text in LOGIN_FATAL_CODES:
        return True
    return text.isdigit() and int(text) in LOGIN_FATAL_CLOSE_CODES


def parse_close_frame(data: bytes) -> tuple[int | None, str]:
    """``(code, reason)`` of a close frame payload (``(None, "")`` when empty)."""
    if len(data) < 2:
        return None, ""
    code = int.from_bytes(data[:2], "big")
    return code, data[2:].decode("utf-8", "replace")


_HINT_RE = re.compile(r"channel:(?P<body>[^ ]+?)\s+doesn't exist")


def arg_hint_from_error(event: Mapping[str, Any]) -> dict[str, str] | None:
    """Best guess of which arg an ``error`` event refers to.

    Uses the event's ``arg`` when OKX sent one; else parses OKX's message
    ``Wrong URL or channel:candle1m,instId:BTC-USD-SWAP doesn't exist...`` into
    ``{"channel": "candle1m", "instId": "BTC-USD-SWAP"}``. None when neither.
    """
    arg = event.get("arg")
    if isinstance(arg, Mapping) and arg.get("channel"):
        return {str(k): str(v) for k, v in arg.items()}
    m = _HINT_RE.search(str(event.get("msg") or ""))
    if not m:
        return None
    parts = m.group("body").split(",")
    hint: dict[str, str] = {"channel": parts[0]}
    for part in parts[1:]:
        k, sep, v = part.partition(":")
        if not sep:
            return None
        hint[k] = v
    return hint


def match_hint(hint: Mapping[str, str], candidates: Iterable[Mapping[str, Any]]) -> list[Any]:
    """The candidates whose items include every item of ``hint``."""
    items = set(hint.items())
    return [c for c in candidates if items <= {(str(k), str(v)) for k, v in c.items()}]


def dedupe_handoff(
    buffered: Sequence[Mapping[str, Any]], last_delivered: Mapping[ArgKey, Any]
) -> list[Mapping[str, Any]]:
    """Pushes buffered on a new connection that the old one had not delivered yet.

    ``buffered``: pushes received on the new connection before it took over,
    in order. ``last_delivered``: per subscription (``arg_key``) the ``data``
    of the last push the old connection delivered. For each subscription, the
    buffered pushes up to and including the last one equal to that ``data``
    are dropped (the old connection delivered them); when none is equal, all
    are kept (no overlap, or the new one starts with a fresh snapshot).
    """
    cut: dict[ArgKey, int] = {}
    keys = [arg_key(m.get("arg") or {}) for m in buffered]
    for i, (key, msg) in enumerate(zip(keys, buffered, strict=True)):
        last = last_delivered.get(key)
        if last is not None and msg.get("data") == last:
            cut[key] = i
    return [
        m for i, (key, m) in enumerate(zip(keys, buffered, strict=True)) if i > cut.get(key, -1)
    ]
