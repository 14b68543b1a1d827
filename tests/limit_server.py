"""A local HTTP server that enforces OKX's REST rate limits, for gate tests and benchmarks.

It answers any ``/api/v5/...`` path of the endpoint registry and counts, per
rate-limit key, the *arrival time* of every accepted request in a sliding
window of the endpoint's published length (``(t - W, t]``). A request that
would push any of its keys over the published limit is refused: HTTP 429 with
``{"code": "50011"}`` for an endpoint limit, HTTP 200 with ``{"code": "50061"}``
for the account new+amend order limit (default 1000 orders / 2 s). Refused
requests are not counted.

The keying is written here independently of ``okx_sync.gate`` (only the
registry's published numbers are shared), so a keying bug in the gate shows
up as 429s. UID = the ``OK-ACCESS-KEY`` header (``"-"`` when unsigned), IP =
the peer address.

Knobs: ``arrival_jitter_s`` delays each request by a random 0..jitter before
it is counted (network jitter); ``throttle(seconds)`` answers every request
with 429/50011 for a while (an exchange-side storm);
``fail_account_rate_limit`` makes ``GET /api/v5/trade/account-rate-limit``
fail with HTTP 500 / code 50001; ``account_limit`` is both the enforced limit
and the ``accRateLimit`` it reports.

Also ``hammer(...)``: run a callable from N named threads for a while, and
``GateDriver``: send through a ``RequestGate`` exactly as the REST core does
(acquire -> send -> release -> observe), for runs that measure the gate alone.

Thread safety: the server handles each connection on its own thread; all
shared state is behind one lock. Binds 127.0.0.1 on port 0.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import requests

from okx_sync.gate import Permit, RequestGate
from okx_sync.rest.endpoints import ACCOUNT_ORDER_PATHS, Endpoint, registry

__all__ = ["LimitServer", "GateDriver", "Outcome", "hammer", "window_max"]

_ACCOUNT_WINDOW_S = 2.0
_MONTH_S = 31 * 86400.0
_BATCH_SINGLE = {
    "/api/v5/trade/batch-orders": "/api/v5/trade/order",
    "/api/v5/trade/cancel-batch-orders": "/api/v5/trade/cancel-order",
    "/api/v5/trade/amend-batch-orders": "/api/v5/trade/amend-order",
}


def _family(inst_id: str) -> str:
    return "-".join(inst_id.split("-")[:2])


def _option(item: dict[str, Any]) -> bool:
    inst = str(item.get("instId", ""))
    parts = inst.split("-")
    return item.get("instType") == "OPTION" or (len(parts) == 5 and parts[-1] in ("C", "P"))


def _server_key(rule: str, item: dict[str, Any], uid: str, ip: str, signed: bool) -> str:
    """OKX's key for one request/order, from the rule text (independent of the gate)."""
    if rule.startswith("UID+instId;OPTION:"):
        if _option(item):
            return (
                f"uid={uid} family={item.get('instFamily') or _family(str(item.get('instId', '')))}"
            )
        return f"uid={uid} inst={item.get('instId', '')}"
    if rule == "UID|IP":
        return f"uid={uid}" if signed else f"ip={ip}"
    if not rule:
        return f"ip={ip}"
    tokens = rule.split("+")
    who = {"IP": f"ip={ip}", "UID": f"uid={uid}", "MasterUID": f"master={uid}"}[tokens[0]]
    fields = []
    for token in tokens[1:]:
        value = item.get(token, "")
        if token == "instFamily" and not value:
            value = item.get("uly") or _family(str(item.get("instId", "")))
        fields.append(f"{token}={value}")
    return " ".join([who, *fields])


def window_max(times: list[tuple[float, int]], window: float) -> int:
    """Largest total cost of ``(t, cost)`` events inside any half-open window ``(t - window, t]``."""
    events = sorted(times)
    best = total = 0
    left = 0
    for t, cost in events:
        total += cost
        while events[left][0] <= t - window:
            total -= events[left][1]
            left += 1
        best = max(best, total)
    return best


class LimitServer:
    """OKX-rate-limit-enforcing HTTP server on 127.0.0.1 (see the module docstring).

    Use as a context manager or call ``start()`` / ``close()``. ``url`` is the
    base URL. ``report()`` gives per key: published limit, window, accepted,
    rejected and the largest count seen in any window.
    """

    def __init__(
        self,
        *,
        account_limit: int = 1000,
        arrival_jitter_s: float = 0.0,
        seed: int = 7,
    ) -> None:
        self.account_limit = account_limit
        self.arrival_jitter_s = arrival_jitter_s
        self.fail_account_rate_limit = False
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._windows: dict[str, deque[tuple[float, int]]] = {}
        self._limits: dict[str, tuple[int, float]] = {}
        self.arrivals: dict[str, list[tuple[float, int]]] = {}
        self.rejected: dict[str, int] = {}
        self.requests = 0
        self._throttle_until = 0.0
        self.throttled = 0
        self._order_ids = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> LimitServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                server._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                server._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="okx-test-limit-server",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> LimitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fault injection
    def throttle(self, seconds: float) -> None:
        """Answer every request with HTTP 429 / 50011 for the next ``seconds``."""
        with self._lock:
            self._throttle_until = time.monotonic() + seconds

    # -- results
    def report(self) -> dict[str, dict[str, Any]]:
        """Per key: limit, window_s, accepted (cost), rejected (requests), max_in_window."""
        with self._lock:
            out = {}
            for key, (limit, window) in self._limits.items():
                events = list(self.arrivals.get(key, ()))
                out[key] = {
                    "limit": limit,
                    "window_s": window,
                    "accepted": sum(c for _, c in events),
                    "rejected": self.rejected.get(key, 0),
                    "max_in_window": window_max(events, window),
                }
            return out

    def total_rejected(self) -> int:
        with self._lock:
            return sum(self.rejected.values())

    # -- request handling
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        if self.arrival_jitter_s > 0:
            with self._lock:
                delay = self._random.uniform(0.0, self.arrival_jitter_s)
            time.sleep(delay)
        arrived = time.monotonic()
        endpoint = registry().get(method, split.path)
        if endpoint is None:
            self._reply(handler, 404, {"code": "50000", "msg": "unknown endpoint", "data": []})
            return
        body: Any = json.loads(raw) if raw else {}
        if method == "GET":
            body = dict(parse_qsl(split.query))
        items = body if isinstance(body, list) else [body]
        uid = handler.headers.get("OK-ACCESS-KEY") or "-"
        signed = uid != "-"
        ip = str(handler.client_address[0])
        charges = self._charges(endpoint, items, uid, ip, signed)
        status, payload = self._admit(arrived, charges)
        if status == 200 and payload is None:
            payload = {"code": "0", "msg": "", "data": self._data(endpoint, items)}
            if endpoint.path == "/api/v5/trade/account-rate-limit" and self.fail_account_rate_limit:
                status = 500
                payload = {"code": "50001", "msg": "Service temporarily unavailable", "data": []}
        self._reply(handler, status, payload)

    def _charges(
        self, endpoint: Any, items: list[dict[str, Any]], uid: str, ip: str, signed: bool
    ) -> list[tuple[str, int, float, int, str]]:
        ep = endpoint
        if ep.cost_unit == "order" and len(items) == 1 and ep.path in _BATCH_SINGLE:
            ep = registry().get("POST", _BATCH_SINGLE[ep.path])
        window = ep.window_s or _MONTH_S
        per_key: dict[str, int] = {}
        for item in items if ep.cost_unit == "order" else items[:1]:
            key = f"{ep.method} {ep.path} {_server_key(ep.rule, item, uid, ip, signed)}"
            per_key[key] = per_key.get(key, 0) + 1
        out = [(key, ep.limit, window, cost, "50011") for key, cost in per_key.items()]
        if endpoint.method == "POST" and endpoint.path in ACCOUNT_ORDER_PATHS:
            out.append(
                (f"account uid={uid}", self.account_limit, _ACCOUNT_WINDOW_S, len(items), "50061")
            )
        return out

    def _admit(
        self, now: float, charges: list[tuple[str, int, float, int, str]]
    ) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            self.requests += 1
            if now < self._throttle_until:
                self.throttled += 1
                return 429, {"code": "50011", "msg": "Too Many Requests", "data": []}
            for key, limit, window, cost, code in charges:
                self._limits[key] = (limit, window)
                log = self._windows.setdefault(key, deque())
                while log and log[0][0] <= now - window:
                    log.popleft()
                if sum(c for _, c in log) + cost > limit:
                    self.rejected[key] = self.rejected.get(key, 0) + 1
                    if code == "50061":
                        msg = "You've reached the maximum order rate limit for this account."
                        return 200, {"code": "50061", "msg": msg, "data": []}
                    return 429, {"code": "50011", "msg": "Too Many Requests", "data": []}
            for key, _limit, _window, cost, _code in charges:
                self._windows[key].append((now, cost))
                self.arrivals.setdefault(key, []).append((now, cost))
            return 200, None

    def _data(self, endpoint: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ts = str(int(time.time() * 1000))
        if endpoint.path == "/api/v5/trade/account-rate-limit":
            limit = str(self.account_limit)
            return [
                {
                    "accRateLimit": limit,
                    "fillRatio": "",
                    "mainFillRatio": "",
                    "nextAccRateLimit": "",
                    "ts": ts,
                }
            ]
        if endpoint.method == "POST" and endpoint.path.startswith("/api/v5/trade/"):
            acks = []
            for item in items:
                with self._lock:
                    self._order_ids += 1
                    ord_id = str(self._order_ids)
                acks.append(
                    {
                        "clOrdId": item.get("clOrdId", ""),
                        "ordId": item.get("ordId") or ord_id,
                        "tag": item.get("tag", ""),
                        "ts": ts,
                        "sCode": "0",
                        "sMsg": "",
                        "subCode": "",
                    }
                )
            return acks
        return [{"ts": ts}]

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("x-request-id", f"req-{time.monotonic_ns()}")
        handler.end_headers()
        handler.wfile.write(body)


def hammer(
    call: Callable[[int, int], None],
    *,
    threads: int,
    duration_s: float,
    stop: threading.Event | None = None,
    on_stop: Callable[[], None] | None = None,
) -> list[BaseException]:
    """Run ``call(thread_index, iteration)`` in a loop from ``threads`` threads for ``duration_s``.

    Then sets ``stop``, calls ``on_stop`` (e.g. ``gate.close`` so that callers
    still queued in the gate leave at once; ``call`` should swallow that
    error once ``stop`` is set), and joins the threads (named
    ``okx-test-hammer-N``). Returns the exceptions raised by ``call`` (each
    stops its thread).
    """
    stop = stop or threading.Event()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        i = 0
        try:
            while not stop.is_set():
                call(index, i)
                i += 1
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            with lock:
                errors.append(exc)

    workers = [
        threading.Thread(target=run, args=(n,), name=f"okx-test-hammer-{n}", daemon=True)
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    stop.wait(duration_s)
    stop.set()
    if on_stop is not None:
        on_stop()
    for worker in workers:
        worker.join(timeout=duration_s + 30)
    return errors


@attrs.frozen
class Outcome:
    """One call sent by ``GateDriver``: its permit, HTTP status, OKX code, time observed."""

    permit: Permit
    http_status: int
    code: str
    observed_at: float


class GateDriver:
    """Sends calls through ``gate`` to ``base_url`` the way the REST core does.

    acquire(endpoint, params) -> HTTP request -> permit.release() ->
    gate.observe(...). One ``requests.Session`` per thread. Signed calls carry
    ``OK-ACCESS-KEY`` so the server keys them by UID. Thread-safe.
    """

    def __init__(self, gate: RequestGate, base_url: str, *, api_key: str = "bench-key") -> None:
        self.gate = gate
        self.base_url = base_url
        self.api_key = api_key
        self._local = threading.local()

    def send(self, endpoint: Endpoint, params: Any) -> Outcome:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        headers = {"OK-ACCESS-KEY": self.api_key} if endpoint.private else {}
        permit = self.gate.acquire(endpoint, params)
        try:
            if endpoint.method == "GET":
                response = session.get(
                    self.base_url + endpoint.path, params=params, headers=headers, timeout=10
                )
            else:
                response = session.post(
                    self.base_url + endpoint.path, json=params, headers=headers, timeout=10
                )
        finally:
            permit.release()
        body = response.json()
        code = str(body.get("code", ""))
        self.gate.observe(
            endpoint, params, http_status=response.status_code, code=code, data=body.get("data")
        )
        return Outcome(permit, response.status_code, code, time.monotonic())
