"""A local HTTP server that enforces OKX's REST rate limits, for gate tests and benchmarks.

Enforcement is the simulator's :class:`okx_sync.sim.ratelimit.RateLimiter`
(written independently of ``okx_sync.gate``; only the registry's published
numbers are shared): per endpoint rule, a sliding window of *arrival times*;
beyond the published limit the server answers HTTP 429 ``{"code": "50011"}``,
beyond the account new+amend limit (default 1000 orders / 2 s) HTTP 200
``{"code": "50061"}``. Refused requests are not counted. UID = the
``OK-ACCESS-KEY`` header (unsigned requests have none), IP = the peer
address; option instIds (``BTC-USD-250926-60000-C``) are keyed by family;
every order counts toward the account limit (no spot exemption modelled).

What this module adds is a small, fast HTTP front (no auth, no matching) and
a record of every request: ``arrivals`` lists ``Arrival(t, method, path,
items, status, code)`` with the arrival time on ``time.monotonic()``.

Knobs: ``arrival_jitter_s`` delays each request by a random 0..jitter before
it is counted (network jitter); ``throttle(seconds)`` answers every request
with 429/50011 for a while (an exchange-side storm);
``fail_account_rate_limit`` makes ``GET /api/v5/trade/account-rate-limit``
fail with HTTP 500 / code 50001; ``account_limit`` is both the enforced limit
and the ``accRateLimit`` it reports.

Also ``hammer(...)``: run a callable from N named threads for a while, and
``GateDriver``: send through a ``RequestGate`` exactly as the REST core does
(acquire -> send -> release -> observe), for runs that measure the gate alone.

Thread safety: the server handles each connection on its own thread; shared
state is behind locks. Binds 127.0.0.1 on port 0.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import requests

from okx_sync.clock import SYSTEM_CLOCK
from okx_sync.gate import Permit, RequestGate
from okx_sync.rest.endpoints import Endpoint, registry
from okx_sync.sim.ratelimit import RateLimiter
from okx_sync.testing.rest_servers import BurstHTTPServer

__all__ = ["LimitServer", "Arrival", "GateDriver", "Outcome", "hammer", "window_max"]


def _inst_info(inst_id: str) -> tuple[str, str] | None:
    """Option instIds -> ("OPTION", family); anything else unknown (keyed by instId)."""
    parts = inst_id.split("-")
    if len(parts) == 5 and parts[-1] in ("C", "P"):
        return "OPTION", "-".join(parts[:2])
    return None


def window_max(times: list[tuple[float, int]], window_s: float) -> int:
    """Largest total cost of ``(t, cost)`` events inside any half-open window ``(t - window_s, t]``."""
    events = sorted(times)
    best = total = 0
    left = 0
    for t, cost in events:
        total += cost
        while events[left][0] <= t - window_s:
            total -= events[left][1]
            left += 1
        best = max(best, total)
    return best


@attrs.frozen
class Arrival:
    """One request as the server saw it: arrival time, what, and how it was answered."""

    t: float
    method: str
    path: str
    items: list[dict[str, Any]]
    status: int
    code: str

    @property
    def orders(self) -> int:
        """Orders (items) in the request: the cost of a batch."""
        return len(self.items)


class LimitServer:
    """OKX-rate-limit-enforcing HTTP server on 127.0.0.1 (see the module docstring).

    Use as a context manager or call ``start()`` / ``close()``. ``url`` is the
    base URL; ``arrivals`` the request record; ``total_rejected()`` counts
    429/50011 and 50061 answers, the limiter's and the injected storm's alike.
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
        self.limiter = RateLimiter(
            SYSTEM_CLOCK, registry(), account_order_limit=account_limit, inst_info=_inst_info
        )
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.arrivals: list[Arrival] = []
        self._throttle_until = 0.0
        self._order_ids = 0
        self._httpd: BurstHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> LimitServer:
        """Bind 127.0.0.1:0 and serve on a daemon thread; returns self. Raises ``OSError``
        when it cannot bind."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body are written separately: without TCP_NODELAY, Nagle + the
            # client's delayed ACK add ~40 ms to every answer
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                server._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                server._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._httpd = BurstHTTPServer(("127.0.0.1", 0), Handler)
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
        """``http://127.0.0.1:PORT`` of the started server."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def close(self) -> None:
        """Stop serving and join the thread (5 s deadline); idempotent, never raises."""
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
    def accepted(self, match: Callable[[Arrival], bool] = lambda a: True) -> list[Arrival]:
        """Admitted requests (code 0) that ``match``, in arrival order."""
        with self._lock:
            return [a for a in self.arrivals if a.code == "0" and match(a)]

    def total_rejected(self) -> int:
        """Requests answered 429/50011 or 50061: the limiter's refusals and any injected storm's."""
        with self._lock:
            return sum(1 for a in self.arrivals if a.code in ("50011", "50061"))

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
        body: Any = dict(parse_qsl(split.query)) if method == "GET" else json.loads(raw or b"{}")
        items = body if isinstance(body, list) else [body]
        uid = handler.headers.get("OK-ACCESS-KEY") or ""
        status, payload = self._decide(endpoint, body, uid, str(handler.client_address[0]))
        if payload is None:
            payload = {"code": "0", "msg": "", "data": self._data(endpoint, items)}
        with self._lock:
            self.arrivals.append(
                Arrival(arrived, method, split.path, items, status, str(payload["code"]))
            )
        self._reply(handler, status, payload)

    def _decide(
        self, endpoint: Endpoint, body: Any, uid: str, ip: str
    ) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            storm = time.monotonic() < self._throttle_until
        if storm:
            return 429, {"code": "50011", "msg": "Too Many Requests (storm)", "data": []}
        refused = self.limiter.check(endpoint, body, ip=ip, uid=uid)
        if refused == "50061":
            msg = "You've reached the maximum order rate limit for this account."
            return 200, {"code": "50061", "msg": msg, "data": []}
        if refused:
            return 429, {"code": refused, "msg": "Too Many Requests", "data": []}
        if endpoint.path == "/api/v5/trade/account-rate-limit" and self.fail_account_rate_limit:
            return 500, {"code": "50001", "msg": "Service temporarily unavailable", "data": []}
        return 200, None

    def _data(self, endpoint: Endpoint, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


class StormProbe:
    """Watches a ``Client``'s gate through a 429 storm and makes its calls.

    ``kinds``: ``(method, path, params)`` per call kind; thread ``n`` of a
    ``hammer`` run calls kind ``n % len(kinds)`` (pass :meth:`call`, ``stop=probe.stop``).
    Afterwards ``first_429[key(path, params)]`` is when the gate first observed a
    429 for that bucket and ``caller_429[kind]`` the admission times of the calls
    that got one (retries off, so each reached its caller). A ``RequestStateError``
    once ``stop`` is set (the client closed at the end) ends a thread quietly;
    anything else is raised. Thread safety: ``call`` runs on many threads.
    """

    def __init__(self, client: Any, kinds: list[tuple[str, str, dict[str, Any] | None]]) -> None:
        self.client = client
        self.kinds = kinds
        self.first_429: dict[str, float] = {}
        self.caller_429: dict[int, list[float]] = {}
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._local = threading.local()
        gate = client._gate
        acquire, observe = gate.acquire, gate.observe

        def noted_acquire(*args: Any, **kwargs: Any) -> Any:
            permit = acquire(*args, **kwargs)
            self._local.admitted_at = permit.admitted_at
            return permit

        def noted_observe(endpoint: Any, params: Any = None, **kwargs: Any) -> None:
            if kwargs.get("http_status") == 429:
                with self._lock:
                    self.first_429.setdefault(self.key(endpoint.path, params), time.monotonic())
            observe(endpoint, params, **kwargs)

        gate.acquire = noted_acquire
        gate.observe = noted_observe

    @staticmethod
    def key(path: str, params: Any) -> str:
        """The bucket a call of ``path`` with ``params`` draws on: path and instId."""
        return f"{path} {(params or {}).get('instId', '')}"

    def call(self, thread: int, _i: int) -> None:
        """One call of this thread's kind (a ``hammer`` worker)."""
        from okx_sync.errors import APIError, RequestStateError

        kind = thread % len(self.kinds)
        method, path, params = self.kinds[kind]
        try:
            self.client.request(method, path, params)
        except RequestStateError:
            if self.stop.is_set():  # closed at the end of the run
                return
            raise
        except APIError as exc:
            if exc.http_status != 429:
                raise
            with self._lock:
                self.caller_429.setdefault(kind, []).append(self._local.admitted_at)


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
        """Acquire a permit, send the request on this thread's session, release, observe
        the answer; the outcome. Raises what ``RequestGate.acquire`` raises."""
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
