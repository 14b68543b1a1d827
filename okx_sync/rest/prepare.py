"""Request preparation for the REST call path: everything checked and encoded before a send.

Pure (no I/O): the base URL and ``/api/v5/`` path checks, GET query and POST body
encoding (``check_body_value`` refuses floats, NaN and non-JSON values), the
per-call headers, and :class:`PreparedCall` — one validated request, ready to be
signed and sent on each attempt by :class:`okx_sync.rest.call.CallRunner`. Every
check raises ``ValidationError`` before anything is sent.

Thread safety: functions are pure; a ``PreparedCall`` is built and used by one call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .._version import __version__
from ..errors import ValidationError
from ..secret import Secret, reveal
from .endpoints import Endpoint

__all__ = [
    "API_PREFIX",
    "PreparedCall",
    "base_headers",
    "check_base_url",
    "check_body_value",
    "check_gate_timeout",
    "check_method",
    "check_path",
    "encode_body",
    "encode_query",
    "prepare_call",
]

API_PREFIX = "/api/v5/"
_METHODS = frozenset({"GET", "POST"})
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


class PreparedCall:
    """One validated request, ready to be signed and sent on each attempt.

    Built by :func:`prepare_call`; raises ``ValidationError`` (from the encoders) for
    params that cannot be sent. Thread safety: used by the one calling thread."""

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


def check_path(path: Any) -> None:
    """Raise ``ValidationError`` unless ``path`` is an ``/api/v5/`` path without a query
    string, fragment, whitespace, control characters or ``.``/``..`` segments."""
    if not isinstance(path, str) or not path.startswith(API_PREFIX):
        raise ValidationError(f"path must start with {API_PREFIX!r}, got {path!r}")
    if "?" in path or "#" in path:
        raise ValidationError(
            f"path {path!r} must not contain a query string: pass the parameters as params"
        )
    if _BAD_PATH_CHARS.search(path):
        raise ValidationError(f"path {path!r} contains whitespace or control characters")
    if ("." in path or "%" in path) and any(unquote(seg) in (".", "..") for seg in path.split("/")):
        raise ValidationError(f"path {path!r} contains a '.' or '..' segment")


def check_method(method: Any) -> str:
    """``method`` upper-cased; ``ValidationError`` unless it is GET or POST (any case)."""
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise ValidationError(f"method must be GET or POST, got {method!r}")
    return method.upper()


def user_agent_header(session: Any, extra: str | None) -> str:
    """The ``User-Agent`` REST requests carry: the ``session``'s own one (a
    ``requests.Session``) when it set one (anything but requests' default
    ``python-requests/…``), else ``okx_sync/<version>``; then ``extra`` after a space.
    Pure (reads ``session.headers``)."""
    own = session.headers.get("User-Agent") if session is not None else None
    if isinstance(own, bytes):
        own = own.decode("latin-1")
    base = f"okx_sync/{__version__}"
    if isinstance(own, str) and own and not own.startswith("python-requests/"):
        base = own
    return f"{base} {extra}" if extra else base


def base_headers(demo: bool, user_agent: str | None = None) -> dict[str, str]:
    """The headers every request carries (JSON, the User-Agent — ``user_agent`` or
    ``okx_sync/<version>``; demo trading's ``x-simulated-trading: 1`` when ``demo``)."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": user_agent or f"okx_sync/{__version__}",
    }
    if demo:
        headers["x-simulated-trading"] = "1"
    return headers


def prepare_call(
    method: str,
    path: str,
    endpoint: Endpoint | None,
    params: Any,
    headers: Mapping[str, str] | None,
    keep_envelope: bool,
    *,
    has_credentials: bool,
    common_headers: Mapping[str, str],
) -> PreparedCall:
    """Validate and encode one request (``method``/``path`` already checked).

    Signed when the endpoint is private, or (a path the registry does not know)
    when credentials exist. ``headers`` are added to ``common_headers``.
    Raises ``ValidationError`` for a private endpoint without credentials, a
    per-call header that is not ``str`` -> ``str``, sets an ``OK-ACCESS-*``
    (signing) header or holds a line break, and for params :func:`encode_query` /
    :func:`encode_body` refuse.
    """
    if endpoint is not None and endpoint.private and not has_credentials:
        raise ValidationError(
            f"{method} {path} is a private endpoint: credentials are required "
            "(api_key, secret_key, passphrase)"
        )
    signed = endpoint.private if endpoint is not None else has_credentials
    call = PreparedCall(method, path, endpoint, params, signed, keep_envelope)
    if headers:
        for name, value in headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ValidationError(f"header {name!r} must map a str to a str")
            if name.lower().startswith("ok-access-") or "\n" in value or "\r" in value:
                raise ValidationError(f"header {name!r} cannot be set per call")
        call.headers = {**common_headers, **headers}
    else:
        call.headers = common_headers
    return call
