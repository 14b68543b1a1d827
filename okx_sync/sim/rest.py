"""The simulator's REST server: stdlib ``ThreadingHTTPServer`` speaking OKX V5.

:class:`RestApp` turns one request into one response (no sockets): faults, routing
(unknown ``/api/v5`` paths answer OKX's 404 body, a wrong method 405 + 50115), auth
(:mod:`okx_sync.sim.authcheck`), body parsing (50000 / 50002 / 50006), rate limits
(:mod:`okx_sync.sim.ratelimit`: 429 + 50011, or 50061), the handler
(:mod:`okx_sync.sim.routes`) and the envelope ``{"code","msg","data"}`` (order
entry adds ``inTime``/``outTime`` in microseconds). Every response carries an
``x-request-id`` header — the simulator's own convention; OKX documents none.

:class:`RestServer` serves an app on 127.0.0.1 with keep-alive HTTP/1.1,
``TCP_NODELAY`` and one named daemon thread per connection (``okx-sim-<name>-conn-N``);
``close()`` shuts the listener, closes open connections and joins the threads.

Thread safety: the app is called concurrently from connection threads; it holds no
state beyond the locked exchange, limiter and faults.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs

from ..clock import Clock
from ..rest.endpoints import EndpointRegistry
from .authcheck import AuthFailure, KeyStore, check_rest
from .exchange import Exchange, SimRequestError
from .faults import Faults
from .ratelimit import ACCOUNT_LIMITED, RateLimiter
from .routes import Ctx, Routes

__all__ = ["RestApp", "RestServer", "RestRequest", "RestResponse", "NOT_FOUND_BODY"]

log = logging.getLogger("okx_sync.sim.rest")

# OKX's answer for an unknown /api/v5 path (real capture: code is a number here).
NOT_FOUND_BODY = {
    "code": 404,
    "data": {},
    "detailMsg": "",
    "error_code": "404",
    "error_message": "Not Found",
    "msg": "Not Found",
}

_MESSAGES = {
    "50000": "Body for POST request cannot be empty.",
    "50002": "JSON syntax error",
    "50004": "API endpoint request timeout. (does not mean that the request was successful or failed, please check the request result).",
    "50006": 'Invalid Content-Type. Please use "application/JSON".',
    "50061": "You've reached the maximum order rate limit for this account.",
    "50115": "Invalid request method.",
}


@attrs.frozen
class RestRequest:
    """One HTTP request as received: ``target`` is the raw request-target (path?query)."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: str
    client_ip: str = "127.0.0.1"


@attrs.frozen
class RestResponse:
    """What to send back. ``lose_hold_s`` > 0: hold that long, then close without answering."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    lose_hold_s: float = 0.0


class _HeaderView:
    """Case-insensitive header lookup over a plain mapping."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._h = {k.lower(): v for k, v in headers.items()}

    def get(self, name: str, default: str | None = None) -> str | None:
        """A header value by case-insensitive name, or ``default``."""
        return self._h.get(name.lower(), default)


class RestApp:
    """Request → response for the simulated OKX REST API (see the module docstring)."""

    def __init__(
        self,
        *,
        exchange: Exchange,
        keys: KeyStore,
        limiter: RateLimiter,
        faults: Faults,
        clock: Clock,
        registry: EndpointRegistry,
        seed: int | str,
        auth_skew_s: float = 30.0,
    ) -> None:
        self.exchange = exchange
        self.keys = keys
        self.limiter = limiter
        self.faults = faults
        self.clock = clock
        self.registry = registry
        self.auth_skew_s = auth_skew_s
        self.routes = Routes(exchange, lambda: limiter.account_order_limit)
        self._rid_lock = threading.Lock()
        self._rid_rng = random.Random(f"{seed}:request-id")
        self.requests_served = 0
        self.delayed_responses = 0  # answers held back by slow_responses (sim.stats())

    def _request_id(self) -> str:
        with self._rid_lock:
            self.requests_served += 1
            return f"{self._rid_rng.getrandbits(64):016x}"

    def _json(
        self, status: int, payload: Any, rid: str, delay: float = 0.0, lose_hold_s: float = 0.0
    ) -> RestResponse:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = (("Content-Type", "application/json"), ("x-request-id", rid))
        return RestResponse(status, body, headers, delay, lose_hold_s)

    def _error(
        self, status: int, code: str, msg: str, rid: str, delay: float = 0.0
    ) -> RestResponse:
        return self._json(status, {"code": code, "msg": msg, "data": []}, rid, delay)

    def handle(self, req: RestRequest) -> RestResponse:
        """Answer one request (never raises for request problems); counts the answers a
        ``slow_responses`` fault delays in ``delayed_responses``."""
        resp = self._answer(req)
        if resp.delay_s > 0:
            with self._rid_lock:
                self.delayed_responses += 1
        return resp

    def _answer(self, req: RestRequest) -> RestResponse:
        rid = self._request_id()
        method = req.method.upper()
        split = urlsplit(req.target)
        path = split.path
        route = self.routes.table.get((method, path))
        endpoint = self.registry.get(method, path)
        order_action = endpoint.order_action if endpoint is not None else ""
        fault = self.faults.rest_fault(path, order_action=order_action if route else "")
        if fault.status:
            if fault.code == "50011":
                return self._json(429, {"msg": fault.msg, "code": "50011"}, rid, fault.delay_s)
            if fault.code:
                return self._error(fault.status, fault.code, fault.msg, rid, fault.delay_s)
            text = f"<html><body><h1>{fault.status} Server Error</h1></body></html>"
            return RestResponse(
                fault.status,
                text.encode(),
                (("Content-Type", "text/html"), ("x-request-id", rid)),
                fault.delay_s,
            )
        if route is None:
            if path in self.routes.paths:
                return self._error(405, "50115", _MESSAGES["50115"], rid, fault.delay_s)
            return self._json(404, NOT_FOUND_BODY, rid, fault.delay_s)
        handler, private = route
        now_ms = int(self.clock.time() * 1000)
        headers = _HeaderView(req.headers)
        key = None
        if private:
            try:
                key = check_rest(
                    self.keys, headers, method, req.target, req.body, now_ms, self.auth_skew_s
                )
            except AuthFailure as exc:
                return self._json(
                    exc.http_status, {"msg": exc.msg, "code": exc.code}, rid, fault.delay_s
                )
        in_time = int(self.clock.time() * 1_000_000)
        body: Any = None
        if method == "POST":
            ctype = headers.get("Content-Type")
            if ctype and "json" not in ctype.lower():
                return self._error(400, "50006", _MESSAGES["50006"], rid, fault.delay_s)
            if not req.body.strip():
                return self._error(400, "50000", _MESSAGES["50000"], rid, fault.delay_s)
            try:
                body = json.loads(req.body)
            except ValueError:
                return self._error(400, "50002", _MESSAGES["50002"], rid, fault.delay_s)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        if endpoint is not None:
            params: Any = body if method == "POST" else query
            refused = self.limiter.check(
                endpoint,
                params if isinstance(params, (Mapping, list)) else None,
                ip=req.client_ip,
                uid=key.uid if key is not None else "",
            )
            if refused == ACCOUNT_LIMITED:
                return self._error(200, refused, _MESSAGES["50061"], rid, fault.delay_s)
            if refused:
                return self._json(
                    429, {"msg": "Too Many Requests", "code": refused}, rid, fault.delay_s
                )
        exp = headers.get("expTime")
        ctx = Ctx(method=method, path=path, query=query, body=body, key=key, now_ms=now_ms)
        try:
            if exp and order_action and exp.isdigit() and now_ms > int(exp):
                raise SimRequestError("50037", "Order expired.")
            reply = handler(ctx)
        except SimRequestError as exc:
            return self._error(exc.http_status, exc.code, exc.msg, rid, fault.delay_s)
        except Exception:  # a simulator bug must not kill the connection thread
            log.exception("simulator REST handler failed", extra={"path": path})
            return self._error(500, "50026", "System error. Try again later", rid, fault.delay_s)
        payload: dict[str, Any] = {"code": reply.code, "msg": reply.msg, "data": reply.data}
        if reply.order_entry:
            payload["inTime"] = str(in_time)
            payload["outTime"] = str(int(self.clock.time() * 1_000_000))
        if fault.lose == "timeout":
            return self._json(
                200, payload, rid, fault.delay_s, lose_hold_s=max(fault.hold_s, 0.001)
            )
        if fault.lose == "50004":
            return self._error(400, "50004", _MESSAGES["50004"], rid, fault.delay_s)
        if fault.lose == "short" and isinstance(reply.data, list):
            payload["data"] = reply.data[:-1]
        return self._json(200, payload, rid, fault.delay_s)


class _LeanHeaders(dict[str, str]):
    """Request headers keyed by lower-case name; ``get`` takes any case."""

    def get(self, name: str, default: Any = None) -> Any:
        """A header value by case-insensitive name, or ``default``."""
        return dict.get(self, name.lower(), default)


_MAX_HEADERS = 100
_MAX_LINE = 65536


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server
    headers: Any
    raw_requestline: bytes

    def parse_request(self) -> bool:
        """Parse an ``HTTP/1.1`` request line and its headers without the ``email``
        package (the stdlib's header parser costs the simulator more than the route
        it serves); any other request line goes to the stdlib parser."""
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        parts = requestline.split(" ")
        if len(parts) != 3 or parts[2] != "HTTP/1.1" or not parts[1]:
            return super().parse_request()
        self.requestline = requestline
        self.command, path, self.request_version = parts
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
        self.path = path
        headers = _LeanHeaders()
        lines = 0
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                self.send_error(431, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            lines += 1
            if lines > _MAX_HEADERS:
                self.send_error(431, "Too many headers")
                return False
            name, sep, value = str(line, "iso-8859-1").partition(":")
            if not sep or not name.strip():
                self.send_error(400, "Bad header line")
                return False
            headers[name.strip().lower()] = value.strip()
        self.headers = headers
        self.close_connection = headers.get("connection", "").lower() == "close"
        if headers.get("expect", "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        req = RestRequest(
            method=self.command,
            target=self.path,
            headers=dict(self.headers.items()),
            body=raw.decode("utf-8", errors="replace"),
            client_ip=self.client_address[0],
        )
        resp = self.server.app(req)
        stop = self.server.stop_event
        if resp.delay_s > 0 and stop.wait(resp.delay_s):
            self.close_connection = True
            return
        if resp.lose_hold_s > 0:
            stop.wait(resp.lose_hold_s)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        # Status line, headers and body in one write: one segment on the wire for
        # a small reply, as a production server sends it.
        self.log_request(resp.status)
        phrase = self.responses.get(resp.status, ("",))[0]
        head = [
            f"HTTP/1.1 {resp.status} {phrase}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
        ]
        head += [f"{name}: {value}" for name, value in resp.headers]
        head.append(f"Content-Length: {len(resp.body)}")
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + resp.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Route the stdlib access log to ``logging`` at DEBUG."""
        log.debug("http " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    # listen() backlog: the default of 5 drops the SYNs of a burst of new connections
    # (8+ client threads at once) and each dropped one is retried 1 s later
    request_queue_size = 128

    def __init__(
        self,
        addr: tuple[str, int],
        app: Callable[[RestRequest], RestResponse],
        name: str,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(addr, _Handler)
        self.app = app
        self.name = name
        self.stop_event = threading.Event()
        self._ssl = ssl_context
        self._count = itertools.count(1)
        self._lock = threading.Lock()
        self._conns: dict[threading.Thread, socket.socket] = {}

    def get_request(self) -> tuple[Any, Any]:
        """Accept a connection (wrapped for TLS when configured; handshake on its thread)."""
        sock, addr = super().get_request()
        if self._ssl is not None:
            sock = self._ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on a named daemon thread that ``close_all`` joins."""
        thread = threading.Thread(
            target=self._run_conn,
            args=(request, client_address),
            name=f"okx-sim-{self.name}-conn-{next(self._count)}",
            daemon=True,
        )
        with self._lock:
            self._conns[thread] = request
        thread.start()

    def _run_conn(self, request: Any, client_address: Any) -> None:
        try:
            if isinstance(request, ssl.SSLSocket):
                request.settimeout(10)
                request.do_handshake()
                request.settimeout(None)
            self.process_request_thread(request, client_address)
        except (OSError, ssl.SSLError):
            self.shutdown_request(request)
        finally:
            with self._lock:
                self._conns.pop(threading.current_thread(), None)

    def close_all(self, timeout: float) -> None:
        """Abort held responses, shut open connections and join their threads."""
        self.stop_event.set()
        with self._lock:
            conns = dict(self._conns)
        for sock in conns.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in conns:
            thread.join(max(0.0, deadline - time.monotonic()))


class RestServer:
    """Serves a request handler on 127.0.0.1 (see the module docstring).

    Raises ``OSError`` when the port cannot be bound. Thread safety: ``close`` is
    idempotent and may be called from any thread.
    """

    def __init__(
        self,
        app: Callable[[RestRequest], RestResponse],
        *,
        name: str = "rest",
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._server = _Server((host, port), app, name, ssl_context)
        address = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self.scheme = "https" if ssl_context is not None else "http"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # how long close() waits for the accept loop to notice (one such wait per
            # server, every simulator close): short, an idle loop costs ~100 select()s/s
            kwargs={"poll_interval": 0.01},
            name=f"okx-sim-{name}",
            daemon=True,
        )
        self._closed = False
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (https with TLS)."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, close open connections, join every thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.close_all(timeout_s)
        self._server.server_close()
        self._thread.join(timeout_s)
