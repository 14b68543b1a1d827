"""HTTP transports for the REST core, behind one seam: :class:`Transport`.

The REST core hands a transport one :class:`Request` (method, target, body,
headers, the attempt's ``timeout_s``) and gets back one :class:`RawResponse`
(status, case-insensitive headers, body bytes) or a :class:`TransportError`.
Which transport a client uses is decided once, when it is built
(:func:`build_transport`); nothing switches per call:

- :class:`PooledTransport` (the default): its own urllib3 connection pool
  (built by a ``requests`` ``HTTPAdapter``, so TLS settings and CA bundles are
  requests' own). The request head is written by :func:`request_head` and
  leaves with the body in one send; the response's header block is read by
  :func:`read_headers` (http.client's ``email``-based parser costs more than
  the rest of a small keep-alive exchange) while status line and body framing
  stay http.client's. This skips the environment proxy lookup, hook dispatch
  and cookie merging that cost requests most of its per-call time.
- :class:`SessionTransport`: a caller's own ``requests.Session`` (proxies,
  adapters, custom TLS, hooks, test doubles such as ``responses`` are all
  honoured), every call through ``Session.request``. Also the default when an
  environment proxy (``HTTPS_PROXY``/``NO_PROXY``) applies to the base URL,
  which the pooled transport does not speak.
- ``okx_sync.testing.MockTransport``: a handler answers each request (tests).

Each real transport knows exactly how far a request got, which the REST core
turns into ``RequestStateError.dispatched``: a failure while opening the
connection (refused, DNS, TLS handshake) is raised as
``TransportError(dispatched=False)``; any failure once a byte may have been
written (reset, read timeout) as ``dispatched=True``.

Every attempt is bounded (ARCHITECTURE principle 10):

- ``Request.timeout_s`` is a deadline for the whole attempt — connect, send,
  status line, headers and body — not a limit per socket read. The pooled
  transport bounds each read by what is left of it (plus
  ``_DEADLINE_SLACK_S``), so a peer trickling one byte at a time is cut off at
  the deadline with ``TransportError(dispatched=True)``. Through
  ``Session.request`` requests reads the status line and headers itself: there
  each read waits at most the time left when the request started, a
  :class:`~okx_sync.rest.deadline.Watchdog` shuts the socket down when the
  deadline passes, and the body is read under the deadline.
- ``max_bytes`` bounds the body, counted on the wire (chunked or
  close-delimited bodies are read in pieces and stopped at the bound; a
  ``Content-Length`` above it is refused before reading) and after gzip /
  deflate decoding (the decoder stops at the bound): beyond it
  :class:`ResponseTooLarge` (a ``TransportError``, ``dispatched=True``,
  carrying the status).

Works with urllib3 1.26 and 2.x (``requests>=2.31`` accepts both): the pooled
transport uses only the pool's ``_get_conn``/``_put_conn`` and the connection's
``sock``/``connect``/``close``, which both have; the connect-error classes are
looked up by name (``NameResolutionError`` is urllib3 2 only — 1.26 reports DNS
failures as ``NewConnectionError``).

Environment proxy settings, CA bundle variables (``REQUESTS_CA_BUNDLE``,
``CURL_CA_BUNDLE``) are read once, by :func:`build_transport`; the pooled
transport sends no cookies (OKX uses none). With ``verify=False`` every request
warns ``urllib3``'s ``InsecureRequestWarning``, on both transports.

Thread safety: ``send`` may be called from many threads at once on either
transport; each call takes its own connection from the pool. ``close`` is
idempotent.
"""

from __future__ import annotations

import http.client
import io
import logging
import queue
import re
import time as _time
import warnings
import zlib
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import attrs
import requests
import requests.adapters
import requests.exceptions
import requests.utils
import urllib3.exceptions
import urllib3.response
from requests.utils import select_proxy
from urllib3.util.connection import is_connection_dropped

from .deadline import Watchdog, capture_socket
from .envelope import Headers

__all__ = [
    "Transport",
    "Request",
    "PooledTransport",
    "SessionTransport",
    "build_transport",
    "TransportError",
    "ResponseTooLarge",
    "RawResponse",
    "DEFAULT_MAX_RESPONSE_BYTES",
]

_log = logging.getLogger("okx_sync.rest")


def _connect_errors(module: Any) -> tuple[type[BaseException], ...]:
    """urllib3 failures that happen while opening a connection: nothing was sent.

    ``NameResolutionError`` exists from urllib3 2.0 on (a subclass of
    ``NewConnectionError`` there); urllib3 1.26, which ``requests>=2.31``
    still accepts, reports a DNS failure as a plain ``NewConnectionError``.
    """
    names = (
        "NewConnectionError",
        "ConnectTimeoutError",
        "NameResolutionError",
        "SSLError",
        "ProxyError",
    )
    return tuple(cls for cls in (getattr(module, n, None) for n in names) if cls is not None)


_CONNECT_ERRORS = _connect_errors(urllib3.exceptions)


_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
# What may go into a request head (RFC 9110 tokens; no controls or spaces in the
# target; no CR/LF/NUL in a value): checked before anything is sent.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
# Header names already checked against _TOKEN (the same few on every call; bounded).
_VALID_NAMES: set[str] = set()
_VALID_NAMES_MAX = 256
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_header(base_url: str) -> str:
    """The ``Host`` value for ``base_url``: host, and port unless the scheme's default."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return host


def request_head(
    method: str, target: str, host: str, headers: Mapping[str, str], body_len: int | None
) -> bytes:
    """An HTTP/1.1 request head (request line, ``Host``, ``headers``,
    ``Content-Length`` when there is a body, blank line) as bytes.

    Raises ``ValueError`` for a method or header name that is not a token, a
    target with spaces or control characters, or a value with CR/LF/NUL.
    """
    if not _TOKEN.fullmatch(method):
        raise ValueError(f"invalid HTTP method {method!r}")
    if _BAD_TARGET.search(target):
        raise ValueError(f"invalid request target {target!r} (spaces or control characters)")
    lines = [f"{method} {target} HTTP/1.1"]
    names = set()
    for name, value in headers.items():
        if name not in _VALID_NAMES:
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            if len(_VALID_NAMES) < _VALID_NAMES_MAX:
                _VALID_NAMES.add(name)
        if _BAD_VALUE.search(value):
            raise ValueError(f"header {name!r} has CR, LF or NUL in its value")
        names.add(name.lower())
        lines.append(f"{name}: {value}")
    if "host" not in names:
        lines.insert(1, f"Host: {host}")
    if body_len is not None and "content-length" not in names:
        lines.append(f"Content-Length: {body_len}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


_ACCEPT_ENCODING = "gzip, deflate"
_MAX_LINE = 65536  # http.client's own limits
_MAX_HEADERS = 100
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""Default bound on one response body (wire and decoded). OKX's largest answers (all
option instruments, a 400-level book) are a few MB at most."""
# Status line + header block on top of the body bound (the wire count covers both).
_HEAD_ALLOWANCE = 1024 * 1024
_READ_CHUNK = 65536
# A socket read may wait this much past the deadline before the timeout is tightened
# (re-setting it costs a syscall; most responses need one or two reads).
_DEADLINE_SLACK_S = 0.05


class LeanHeaders(dict[str, str]):
    """Response headers by lower-case name; ``get``/``[]``/``in`` take any case.
    A repeated header keeps its first value (as ``http.client``'s ``get`` does).
    Thread safety: not mutated after the response is read."""

    def get(self, name: str, default: Any = None) -> Any:
        """A header value by case-insensitive name, or ``default``."""
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    @classmethod
    def of(cls, headers: Mapping[str, str] | None = None) -> LeanHeaders:
        """Headers from any mapping (names lower-cased; a later duplicate is ignored)."""
        out = cls()
        for name, value in (headers or {}).items():
            out.setdefault(name.lower(), value)
        return out


def read_headers(fp: Any) -> LeanHeaders:
    """Read a header block (up to the empty line) from a binary file.

    ``http.client`` parses headers with the ``email`` package, which costs more
    than the rest of a small keep-alive exchange; this reads the same wire
    format: ``name: value`` lines, obsolete line folding joined, at most 100
    headers of at most 64 KiB each (``http.client.HTTPException`` beyond).
    """
    headers = LeanHeaders()
    last = ""
    count = 0
    while True:
        line = fp.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        if line in (b"\r\n", b"\n", b""):
            return headers
        count += 1
        if count > _MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
        text = str(line, "iso-8859-1")
        if text[0] in " \t" and last:  # obsolete folding: continues the previous value
            headers[last] = f"{dict.__getitem__(headers, last)} {text.strip()}"
            continue
        name, sep, value = text.partition(":")
        if not sep:
            raise http.client.HTTPException(f"malformed header line {text[:40]!r}")
        last = name.strip().lower()
        headers.setdefault(last, value.strip())


class _LeanResponse(http.client.HTTPResponse):
    """``http.client.HTTPResponse`` whose header block is read by
    :func:`read_headers`; status line, body framing (length, chunked, close)
    and reading are http.client's own."""

    def begin(self) -> None:
        """Read the status line and headers; set up body framing as http.client does."""
        if self.headers is not None:
            return
        while True:
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            read_headers(self.fp)  # a 100 Continue's headers are skipped
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = read_headers(self.fp)
        encoding = self.headers.get("transfer-encoding")
        self.chunked = bool(encoding) and encoding.lower() == "chunked"
        self.chunk_left = None
        self.will_close = self._check_close()
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if (
            status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
            or 100 <= status < 200
            or self._method == "HEAD"
        ):
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True


def _decode(data: bytes, encoding: str, limit: int) -> bytes:
    """Undo gzip/deflate content encoding, producing at most ``limit`` bytes.

    Other encodings, and data that does not decode, are returned as received.
    Raises :class:`_TooLarge` when the decoded body would exceed ``limit``
    (the decoder stops there: a small bomb never expands in memory).
    """
    enc = encoding.strip().lower()
    if enc in ("gzip", "x-gzip"):
        wbits = [16 + zlib.MAX_WBITS]
    elif enc == "deflate":
        wbits = [zlib.MAX_WBITS, -zlib.MAX_WBITS]  # zlib-wrapped, else raw deflate
    else:
        return data
    for bits in wbits:
        decoder = zlib.decompressobj(bits)
        try:
            out = decoder.decompress(data, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit or decoder.unconsumed_tail:
            raise _TooLarge(f"decoded {enc} body exceeds {limit} bytes")
        return out
    return data


class _TooLarge(Exception):
    """A response body went past the bound (internal; becomes ResponseTooLarge)."""


class _DeadlineReader(io.RawIOBase):
    """The socket as http.client reads it, every read bounded by the attempt's deadline
    and the bytes read in all by ``limit`` (``_TooLarge`` beyond). One attempt only."""

    def __init__(self, sock: Any, deadline: float, limit: int) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline
        self._left = limit
        self._timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wait_for(self._deadline, self)
        if self._left <= 0:
            raise _TooLarge("response exceeds the byte bound on the wire")
        view = memoryview(buffer)
        n = self._sock.recv_into(view[: min(len(view), self._left)])
        self._left -= n
        return n

    def set_timeout(self, seconds: float) -> None:
        self._sock.settimeout(seconds)
        self._timeout = seconds

    @property
    def timeout(self) -> float | None:
        return self._timeout


def wait_for(deadline: float, state: Any, *, start: bool = False) -> None:
    """Before a socket operation: raise ``TimeoutError`` when ``deadline`` (monotonic)
    has passed, else set ``state``'s socket timeout to what is left when the
    current one would overshoot it by more than ``_DEADLINE_SLACK_S`` — or, at the
    ``start`` of an attempt (a pooled socket keeps the last attempt's timeout),
    also when it would fall short by as much."""
    left = deadline - _time.monotonic()
    if left <= 0:
        raise TimeoutError("the attempt's deadline passed")
    current = state.timeout
    if (
        current is None
        or current > left + _DEADLINE_SLACK_S
        or (start and current < left - _DEADLINE_SLACK_S)
    ):
        state.set_timeout(left)


class _DeadlineSocket:
    """What :class:`_LeanResponse` is built on: ``makefile`` returns a buffered
    :class:`_DeadlineReader` over the real socket."""

    def __init__(self, reader: _DeadlineReader) -> None:
        self._reader = reader

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(self._reader, _READ_CHUNK)


def read_body(read: Any, length: int | None, limit: int, deadline: float | None) -> bytes:
    """Read a response body with ``read(amt)`` until it returns ``b""``: at most
    ``limit`` bytes (``_TooLarge`` beyond, also for a ``length`` above it without
    reading), and, when ``deadline`` is given, no read started after it
    (``TimeoutError``)."""
    if length is not None and length > limit:
        raise _TooLarge(f"Content-Length {length} exceeds {limit} bytes")
    parts: list[bytes] = []
    total = 0
    while True:
        if deadline is not None and _time.monotonic() >= deadline:
            raise TimeoutError("the attempt's deadline passed while reading the body")
        chunk = read(_READ_CHUNK)
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > limit:
            raise _TooLarge(f"response body exceeds {limit} bytes")
        parts.append(chunk)


@attrs.frozen(repr=False)
class Request:
    """One HTTP attempt as the REST core hands it to a :class:`Transport`.

    ``method`` (``GET``/``POST``), ``target`` (the path from ``/api/v5/`` on,
    query string included), ``body`` (bytes, or None for none), ``headers``
    (every header the core sets, signing included; the transport adds framing
    and ``Accept-Encoding``), ``timeout_s`` (seconds: the deadline of the whole
    attempt, counted from ``send``), ``idempotent`` (safe to repeat: the pooled
    transport may then skip the stale-connection poll, see
    :func:`take_connection`). Not validated here: the REST core builds it from
    validated input; a transport refuses a head it cannot write with
    ``TransportError(dispatched=False)``. Thread safety: immutable.
    """

    method: str
    target: str
    body: bytes | None
    headers: Mapping[str, str]
    timeout_s: float
    idempotent: bool = False

    def __repr__(self) -> str:  # headers carry the signature and key: never shown
        size = 0 if self.body is None else len(self.body)
        return f"Request({self.method} {self.target}, bytes={size}, timeout_s={self.timeout_s})"


@attrs.frozen(repr=False)
class RawResponse:
    """Status, case-insensitive headers (``get(name)`` in any case, see
    :class:`~okx_sync.rest.envelope.Headers`) and body bytes of one HTTP
    response, already content-decoded. Thread safety: immutable.
    """

    status: int
    headers: Headers
    body: bytes

    def __repr__(self) -> str:
        return f"RawResponse(status={self.status}, bytes={len(self.body)})"


class Transport(Protocol):
    """The seam between the REST core and HTTP: one method.

    ``send(request)`` makes one attempt and returns its :class:`RawResponse`
    (any status: the envelope is the core's business) within
    ``request.timeout_s``, or raises :class:`TransportError` with
    ``dispatched`` saying whether bytes may have reached the server
    (:class:`ResponseTooLarge` for a body over the transport's bound). It must
    be safe to call from many threads at once. Implementations:
    :class:`PooledTransport`, :class:`SessionTransport`,
    ``okx_sync.testing.MockTransport``; a transport a caller hands to
    ``Client(transport=...)`` stays the caller's to close.
    """

    def send(self, request: Request, /) -> RawResponse:
        """Send one attempt; see the class doc."""
        ...


class TransportError(Exception):
    """No response was received. ``dispatched`` says whether bytes may have reached
    the server; the underlying error is chained as ``__cause__``. Internal: the
    REST core turns it into ``RequestStateError(stage="http")``. Thread safety:
    immutable once raised."""

    def __init__(self, message: str, *, dispatched: bool) -> None:
        super().__init__(message)
        self.dispatched = dispatched


class ResponseTooLarge(TransportError):
    """A response arrived but its body is larger than ``max_bytes`` (on the wire or
    once decoded); it was not read beyond the bound. ``status`` is the HTTP status.
    Always ``dispatched=True``. Thread safety: immutable once raised."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, dispatched=True)
        self.status = status


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _reached_server(exc: BaseException) -> bool:
    """For an error raised by ``Session.request``: may the request have been sent?"""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.exceptions.ProxyError | requests.exceptions.InvalidURL):
        return False
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        cur = todo.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, _CONNECT_ERRORS):
            return False
        if isinstance(cur, BaseException):
            todo.extend([getattr(cur, "reason", None), cur.__cause__, cur.__context__])
            todo.extend(a for a in cur.args if isinstance(a, BaseException))
    return True


def _is_urllib3(raw: Any) -> bool:
    """True when ``raw`` (a requests ``Response.raw``) is urllib3's response, which
    can hand over the body still encoded (``decode_content=False``)."""
    base = getattr(urllib3.response, "BaseHTTPResponse", urllib3.response.HTTPResponse)
    return isinstance(raw, base)


def _response_socket(raw: Any) -> Any:
    """The socket under a streamed urllib3 response, when it exposes one."""
    conn = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    return getattr(conn, "sock", None)


def _read_session_body(resp: requests.Response, deadline: float, limit: int) -> bytes:
    """The body of a streamed requests response, still content-encoded when urllib3
    delivers it (decoded, bounded, by the transport): at most ``limit`` bytes
    (``_TooLarge``), no read started after ``deadline`` (a read blocked past it
    is ended by the transport's :class:`~okx_sync.rest.deadline.Watchdog`)."""
    raw = resp.raw
    length_text = resp.headers.get("Content-Length")
    length = int(length_text) if length_text and length_text.isdigit() else None
    if _is_urllib3(raw):
        return read_body(
            lambda amt: bytes(raw.read(amt, decode_content=False)), length, limit, deadline
        )
    if raw is None:  # an adapter that built the body itself (a test double)
        return read_body(io.BytesIO(resp.content).read, length, limit, deadline)
    # another adapter's response object: requests decodes it; the count is after decoding
    chunks = resp.iter_content(_READ_CHUNK)
    return read_body(lambda _amt: next(chunks, b""), length, limit, deadline)


STALE_CHECK_AFTER_S = 1.0


def take_connection(pool: Any, *, trust_fresh: bool) -> Any:
    """A connection from urllib3's ``pool``: its ``_get_conn``, with one difference.

    urllib3 polls every pooled connection for a close by the server before
    reusing it. With ``trust_fresh`` (the request is idempotent) a connection
    that was answered less than ``STALE_CHECK_AFTER_S`` ago is reused without
    that poll: no server's keep-alive idle timeout is that short, the poll is a
    syscall per call (where CPython hands the GIL to another thread: with many
    threads a context switch per call), and should such a connection have died
    after all, the read fails as ``dispatched=True``, which a read retries.
    Order entry always gets the poll, so that a dead connection is never
    written to. Raises urllib3's ``ClosedPoolError`` / ``EmptyPoolError`` as
    ``_get_conn`` does.
    """
    waiting = pool.pool
    if waiting is None:
        raise urllib3.exceptions.ClosedPoolError(pool, "Pool is closed.")
    try:
        conn = waiting.get(block=pool.block, timeout=None)
    except queue.Empty:
        if pool.block:
            raise urllib3.exceptions.EmptyPoolError(pool, "Pool is empty.") from None
        conn = None
    if conn is not None:
        answered = getattr(conn, "_okx_answered_at", None)
        fresh = answered is not None and _time.monotonic() - answered < STALE_CHECK_AFTER_S
        if not (trust_fresh and fresh) and is_connection_dropped(conn):
            conn.close()
    return conn or pool._new_conn()


def _check_max_bytes(max_bytes: Any) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be an int >= 1, got {max_bytes!r}")
    return max_bytes


def _pooled_adapter(pool_size: int) -> requests.adapters.HTTPAdapter:
    """The adapter both default transports keep ``pool_size`` connections per host in."""
    return requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)


class _Bounded:
    """What both real transports share: base URL, the body bound, decoding under it,
    the closed flag."""

    def __init__(self, base_url: str, max_bytes: int) -> None:
        self.max_bytes = _check_max_bytes(max_bytes)
        self._base_url = base_url.rstrip("/")
        self._host = host_header(self._base_url)
        self._closed = False

    def _decoded(self, data: bytes, encoding: str, status: int) -> bytes:
        try:
            return _decode(data, encoding, self.max_bytes)
        except _TooLarge as exc:
            raise ResponseTooLarge(
                f"response not decoded: {exc} (max_response_bytes={self.max_bytes})",
                status=status,
            ) from exc


class PooledTransport(_Bounded):
    """The default transport: straight to a urllib3 connection pool (see module doc).

    ``base_url``: scheme, host and port every request goes to.
    ``pool_size``: keep-alive connections kept per host (size it to the gate's
    concurrency; more threads than that open extra connections that are not
    kept). ``max_bytes``: the bound on one response body, on the wire and
    decoded (:class:`ResponseTooLarge` beyond). ``verify``: True, False or a CA
    bundle path, as in requests; ``cert``: a client certificate as in requests.
    No proxy is used (:func:`build_transport` picks :class:`SessionTransport`
    when one applies).

    Raises ``ValueError`` for ``max_bytes`` or ``pool_size`` < 1.
    Thread safety: ``send`` is safe from any number of threads; ``close`` is
    idempotent and makes later sends fail with ``TransportError(dispatched=False)``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        pool_size: int = 10,
        max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        verify: bool | str = True,
        cert: Any = None,
    ) -> None:
        super().__init__(base_url, max_bytes)
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size must be an int >= 1, got {pool_size!r}")
        self._adapter = _pooled_adapter(pool_size)
        self._verify = verify
        self._cert = cert
        # verify=False: warn on every request as urllib3 does through requests
        self._insecure = verify is False and self._base_url.startswith("https:")
        self._pool: Any = None

    def send(self, request: Request, /) -> RawResponse:
        """Send ``request`` to ``base_url + request.target``; see :class:`Transport`.

        ``request.timeout_s`` is the deadline of the whole attempt. For an
        ``idempotent`` request a keep-alive connection answered less than
        ``STALE_CHECK_AFTER_S`` ago is reused without the stale-connection poll
        (see :func:`take_connection`). Raises :class:`TransportError` when no
        complete response arrived in time (``dispatched=False`` when nothing
        was sent: closed transport, invalid head, connect failure) and
        :class:`ResponseTooLarge` when the body is larger than ``max_bytes``.
        """
        if self._closed:
            raise TransportError("transport closed", dispatched=False)
        deadline = _time.monotonic() + request.timeout_s
        method, body = request.method, request.body
        merged = {**request.headers, "Accept-Encoding": _ACCEPT_ENCODING}
        length = len(body) if body is not None else 0 if method in _BODY_METHODS else None
        # Head and body go out in one send (one syscall, one segment for a small
        # order); built before a connection is taken: bad input sends nothing.
        try:
            message = request_head(method, request.target, self._host, merged, length) + (
                body or b""
            )
        except ValueError as exc:
            raise TransportError(f"request not sent: {exc}", dispatched=False) from exc
        if self._insecure:
            self._warn_insecure()
        idempotent = request.idempotent
        pool = self._connection_pool()
        try:
            conn = take_connection(pool, trust_fresh=idempotent)
        except urllib3.exceptions.ClosedPoolError:
            pool = self._connection_pool(renew=True)
            conn = take_connection(pool, trust_fresh=idempotent)
        sent = False
        status = 0
        limit = self.max_bytes
        try:
            sock = conn.sock
            if sock is None:
                # TCP (+ TLS): a failure here means nothing was sent
                conn.timeout = max(deadline - _time.monotonic(), 1e-3)
                conn.connect()
                sock = conn.sock
            reader = _DeadlineReader(sock, deadline, limit + _HEAD_ALLOWANCE)
            wait_for(deadline, reader, start=True)
            sent = True
            # On urllib3's connection (same socket, same TLS), without its
            # per-header and per-response wrappers: our head, http.client's
            # response framing (status line, length / chunked / close), every
            # socket read under the attempt's deadline and byte bound.
            sock.sendall(message)
            resp = _LeanResponse(_DeadlineSocket(reader), method=method)  # type: ignore[arg-type]
            resp.begin()
            status = resp.status
            if resp.length is not None and resp.length <= limit:
                data = resp.read()  # known length within the bound: one read
            else:
                data = read_body(resp.read, resp.length, limit, None)
            resp_headers = resp.msg
            if resp.will_close:  # the server ends the connection: do not reuse it
                conn.close()
        except BaseException as exc:
            conn.close()
            pool._put_conn(None)
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, _TooLarge):
                raise ResponseTooLarge(
                    f"response not read: {exc} (max_response_bytes={limit})", status=status
                ) from exc
            if sent:
                raise TransportError(
                    f"no response after sending: {_describe(exc)}", dispatched=True
                ) from exc
            raise TransportError(f"could not connect: {_describe(exc)}", dispatched=False) from exc
        conn._okx_answered_at = _time.monotonic()  # (see take_connection)
        pool._put_conn(conn)
        encoding = resp_headers.get("Content-Encoding")
        if encoding:
            data = self._decoded(data, encoding, status)
        return RawResponse(status, resp_headers, data)

    def _warn_insecure(self) -> None:
        warnings.warn(
            f"Unverified HTTPS request is being made to host '{self._host}'. Adding "
            "certificate verification is strongly advised.",
            urllib3.exceptions.InsecureRequestWarning,
            stacklevel=3,
        )

    def _connection_pool(self, *, renew: bool = False) -> Any:
        pool = self._pool
        if renew or pool is None or pool.pool is None:
            adapter = self._adapter
            prepared = requests.Request("GET", self._base_url + "/").prepare()
            getter = getattr(adapter, "get_connection_with_tls_context", None)
            if getter is not None:
                pool = getter(prepared, self._verify, None, self._cert)
            else:  # requests < 2.32.2
                pool = adapter.get_connection(self._base_url + "/", None)
            self._pool = pool
        return pool

    def close(self) -> None:
        """Refuse further sends and close the pool's connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._adapter.close()

    def __repr__(self) -> str:
        return f"PooledTransport(base_url={self._base_url!r})"


class SessionTransport(_Bounded):
    """Every request through ``session.request`` (see module doc).

    ``session``: a ``requests.Session`` whose proxies, adapters, TLS settings,
    default headers, auth and hooks apply. ``owns_session``: close it in
    :meth:`close` (True only when the transport was given a session built for
    it). ``max_bytes``: as for :class:`PooledTransport`. A one-thread
    :class:`~okx_sync.rest.deadline.Watchdog` (``okx-rest-deadline``, started
    with the first request) ends reads blocked past the attempt's deadline.

    Raises ``ValueError`` for ``max_bytes`` < 1, ``TypeError`` when ``session``
    is not a ``requests.Session``. Thread safety: ``send`` is safe from any
    number of threads (as far as the session's adapters are); ``close`` is
    idempotent, stops the watchdog thread and makes later sends fail with
    ``TransportError(dispatched=False)``.
    """

    def __init__(
        self,
        base_url: str,
        session: requests.Session,
        *,
        max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        owns_session: bool = False,
    ) -> None:
        if not isinstance(session, requests.Session):
            raise TypeError(f"session must be a requests.Session, got {type(session).__name__}")
        super().__init__(base_url, max_bytes)
        self.session = session
        self.owns_session = owns_session
        self._watchdog = Watchdog()

    def send(self, request: Request, /) -> RawResponse:
        """Send ``request`` through ``session.request`` (no redirects followed); see
        :class:`Transport`. ``request.timeout_s`` bounds the whole attempt (see the
        module doc). Raises :class:`TransportError` when no complete response
        arrived in time and :class:`ResponseTooLarge` when the body is larger than
        ``max_bytes``."""
        if self._closed:
            raise TransportError("transport closed", dispatched=False)
        deadline = _time.monotonic() + request.timeout_s
        limit = self.max_bytes
        resp: requests.Response | None = None
        watch = self._watchdog.watch(deadline)
        release = capture_socket(watch)  # (see okx_sync.rest.deadline)
        try:
            try:
                resp = self.session.request(
                    request.method,
                    self._base_url + request.target,
                    data=request.body,
                    headers=dict(request.headers),
                    timeout=max(deadline - _time.monotonic(), 1e-3),
                    allow_redirects=False,
                    stream=True,
                )
            finally:
                release()
            if not watch.has_socket:  # another profiler was active: take it from the response
                sock = _response_socket(resp.raw)
                if sock is not None:
                    watch.attach(sock)
            data = _read_session_body(resp, deadline, limit)
            status = resp.status_code
        except _TooLarge as exc:
            status = resp.status_code if resp is not None else 0
            raise ResponseTooLarge(
                f"response not read: {exc} (max_response_bytes={limit})", status=status
            ) from exc
        except (
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            http.client.HTTPException,
        ) as exc:
            sent = resp is not None or _reached_server(exc)
            if watch.fired:
                late = TimeoutError("the attempt's deadline passed; its socket was shut down")
                late.__cause__ = exc
                raise TransportError(
                    f"no complete response within the attempt's deadline: {_describe(exc)}",
                    dispatched=sent,
                ) from late
            if sent:
                raise TransportError(
                    f"no response after sending: {_describe(exc)}", dispatched=True
                ) from exc
            raise TransportError(f"could not connect: {_describe(exc)}", dispatched=False) from exc
        finally:
            watch.done()
            if resp is not None:
                resp.close()
        if resp.headers.get("Content-Encoding") and _is_urllib3(resp.raw):
            data = self._decoded(data, resp.headers["Content-Encoding"], status)
        return RawResponse(status, resp.headers, data)

    def close(self) -> None:
        """Stop sending and the watchdog thread; close the session when owned. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._watchdog.close()
        if self.owns_session:
            self.session.close()

    def __repr__(self) -> str:
        return f"SessionTransport(base_url={self._base_url!r}, owns_session={self.owns_session})"


def build_transport(
    base_url: str,
    *,
    session: requests.Session | None = None,
    pool_size: int = 10,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> PooledTransport | SessionTransport:
    """The transport a ``Client`` uses, chosen once here.

    With ``session``: a :class:`SessionTransport` on it (the caller keeps
    ownership). Without: the environment's settings for ``base_url`` are read
    once (``HTTPS_PROXY``/``NO_PROXY``, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``);
    when a proxy applies, a :class:`SessionTransport` on a session built and
    owned here (``pool_size`` connections), else a :class:`PooledTransport`
    with the CA bundle found. Raises ``ValueError`` for ``max_bytes`` < 1.
    Thread safety: builds new objects only.
    """
    if session is not None:
        return SessionTransport(base_url, session, max_bytes=max_bytes)
    probe = requests.Session()
    try:
        url = base_url.rstrip("/")
        settings = probe.merge_environment_settings(url, {}, None, None, None)
    finally:
        probe.close()
    if select_proxy(url, settings.get("proxies") or {}):
        own = requests.Session()
        adapter = _pooled_adapter(pool_size)
        own.mount("https://", adapter)
        own.mount("http://", adapter)
        return SessionTransport(base_url, own, max_bytes=max_bytes, owns_session=True)
    verify = settings.get("verify")
    return PooledTransport(
        base_url,
        pool_size=pool_size,
        max_bytes=max_bytes,
        verify=True if verify is None else verify,
        cert=settings.get("cert"),
    )
