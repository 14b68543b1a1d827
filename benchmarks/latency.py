"""Latency: what a trading loop feels, measured against python-okx and ccxt.

Four measurements, each with the peers in the same run (``run_all.py --only latency``
wires them into ``results.md``; this module also runs alone):

- **WS push latency** (:func:`ws_push`): a server in its own process (``--serve-stamp``)
  answers a subscribe to ``trades`` with trades pushes, each stamped just before it is
  written with ``time.time_ns()`` in its ``tradeId`` (same host, same clock). The client
  records, at its handler's entry, ``time.time_ns() - stamp`` (pushes written together
  share a stamp; the tradeId also numbers them). First each client's own
  maximum rate is measured (a wire-speed stream), then it is paced at 25 %, 50 % and
  90 % of that rate; p50 / p99 / p99.9 of each paced run (the first 20 % left out as
  warm-up). okx_sync: typed handler (a ``Trade`` model per push) inline and in a pool of
  1 and 4 workers; python-okx: ``WsPublicAsync``'s callback (entry, then ``json.loads``);
  ccxt.pro: ``watch_trades`` returning to the caller. On ws:// and wss:// (python-okx
  only connects to wss://).
- **REST round trip added by the library** (:func:`rest_latency`): per-call latency of a
  signed ``GET /api/v5/account/balance`` and of a place + cancel pair against a loopback
  HTTP server in its own process (fixed OKX answers), through ``Client.request``, the
  named methods, python-okx and ccxt, minus the raw ``http.client`` keep-alive floor
  (pre-signed headers) measured on the same server in the same run; 1 and 16 threads
  (16: okx_sync shares one Client, the others one instance and the floor one connection
  per thread).
- **WS order entry** (:func:`order_entry`): ``ws.place_order`` over the private
  WebSocket vs REST ``trade.place_order``, p50 / p99 of the placement (each order is
  then cancelled, untimed), against the simulator.
- **Memory** (:func:`memory`): RSS of one Client with a public WS (10 managed books) and
  a private WS (orders channel) while the simulator floods them for ``seconds``; growth
  after warm-up; and bytes per book level, okx_sync's ``OrderBookStore`` vs ccxt's
  ``OrderBook`` (tracemalloc).

    python benchmarks/latency.py [--quick] [--only ws,rest,orders,memory]
        [--memory-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _path in (str(REPO), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

INST, SYMBOL = "BTC-USDT", "BTC/USDT"
LOADS = (0.25, 0.5, 0.9)
TAIL = 5  # pushes the server writes past the planned count
MIN_SLEEP_S = 0.0005  # the paced server's shortest sleep: above ~2k/s pushes go in bursts
WARMUP = 0.2  # share of each paced run left out
Lat = list[float]  # microseconds


def pct(values: Lat, q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank); nan when empty."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# =========================================================================== WS push
def _ws_frame(payload: bytes) -> bytes:
    from ws_throughput import _frame

    return _frame(payload)


_HEAD = b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"'


def _push(stamp_ns: int, seq: int) -> bytes:
    """One trades push: tradeId ``{stamp_ns}-{seq}`` (the send time, the push's number in
    its stream), ts in ms from the stamp."""
    body = (
        _HEAD
        + f"{stamp_ns}-{seq}".encode()
        + b'","px":"50000.1","sz":"0.01","side":"buy","ts":"'
        + str(stamp_ns // 1_000_000).encode()
        + b'","count":"1"}]}'
    )
    return _ws_frame(body)


def serve_stamp(tls: bool) -> None:
    """Child process: a WS server streaming stamped trades pushes after each subscribe to
    ``trades``. Prints ``{"url", "cert_path"}``; each stdin line ``rate count`` sets the
    next streams (rate 0: wire speed) and is answered ``ok``; stdin closed: exit."""
    import logging

    from websockets.sync.server import ServerConnection
    from ws_throughput import ReplayServer

    from okx_sync.sim.tls import make_server_context

    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    plan = {"rate": 0.0, "count": 1000}

    class StampServer(ReplayServer):
        def __init__(self, context: Any) -> None:
            self.count = 0
            self._serve(context)

        def wants(self, args: list[dict[str, str]]) -> bool:
            return any(a.get("channel") == "trades" for a in args)

        def stream(self, ws: ServerConnection) -> None:
            # a few pushes past the count: ccxt.pro hands the last one it got to the next
            # watch_trades call only, so a stream ending exactly at the count would hang it
            rate, count = plan["rate"], int(plan["count"]) + TAIL
            sock, now_ns, perf = ws.socket, time.time_ns, time.perf_counter
            start, sent = perf(), 0
            try:
                while sent < count:
                    if rate > 0:  # every push due by now goes in one write, stamped now
                        due = min(count, int((perf() - start) * rate) + 1)
                        if due <= sent:  # sleep, never spin: the client needs the CPU
                            time.sleep(max(MIN_SLEEP_S, sent / rate - (perf() - start)))
                            continue
                    else:
                        due = min(count, sent + 64)
                    stamp = now_ns()
                    sock.sendall(b"".join(_push(stamp, i) for i in range(sent, due)))
                    sent = due
            except OSError:  # a client that has read enough hangs up
                return

    context, cert = make_server_context() if tls else (None, None)
    server = StampServer(context)
    print(json.dumps({"url": server.url, "cert_path": cert}), flush=True)
    for line in sys.stdin:
        rate, count = line.split()
        plan.update(rate=float(rate), count=int(count))
        print("ok", flush=True)
    server.close()


@dataclass
class StampProcess:
    """The ``--serve-stamp`` server process, driven over its stdin."""

    tls: bool
    proc: subprocess.Popen[str] = field(init=False)
    url: str = field(init=False)
    cert: str | None = field(init=False)

    def __post_init__(self) -> None:
        cmd = [sys.executable, __file__, "--serve-stamp"] + (["--tls"] if self.tls else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the stamp server did not start")
        info = json.loads(line)
        self.url, self.cert = info["url"], info["cert_path"]

    def plan(self, rate: float, count: int) -> None:
        """The next streams: ``count`` pushes at ``rate``/s (0: wire speed)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{rate} {count}\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "ok":
            raise RuntimeError("the stamp server did not take the plan")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(15)


# Each WS contender: (url, count, cert, rest_url) -> (latencies in us, handler rate /s)
WSRun = Callable[[str, int, "str | None", str], tuple[Lat, float]]


def _okx_sync_ws(dispatch: dict[str, Any]) -> WSRun:
    """okx_sync's typed ``trades`` handler with the dispatch ``dispatch`` describes
    (``DispatchConfig`` keywords; built on use, so importing this module stays cheap)."""

    def run(url: str, count: int, _cert: str | None, _rest: str) -> tuple[Lat, float]:
        from okx_sync import DispatchConfig, DispatchMode, WSClient, WSConfig

        lat: Lat = []
        arrivals: list[float] = []
        done = threading.Event()
        now_ns, perf = time.time_ns, time.perf_counter

        def handler(item: Any) -> None:
            now = now_ns()
            lat.append((now - _stamp(item.trade_id)) / 1000.0)
            arrivals.append(perf())
            if len(lat) >= count:
                done.set()

        config = DispatchConfig(**{**dispatch, "mode": DispatchMode(dispatch["mode"])})
        ws = WSClient(url, config=WSConfig(typed_dispatch=config))
        ws.on("trades", handler)
        with ws:
            ws.subscribe([{"channel": "trades", "instId": INST}])
            if not done.wait(count / 1000 + 60):
                raise RuntimeError(f"only {len(lat)} of {count} pushes arrived")
        return lat[:count], _rate(arrivals[:count])

    return run


def _stamp(trade_id: str) -> int:
    """The send time (ns) in a pushed tradeId."""
    return int(trade_id.split("-", 1)[0])


def _rate(arrivals: list[float]) -> float:
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0


def _python_okx_ws(url: str, count: int, _cert: str | None, _rest: str) -> tuple[Lat, float]:
    from okx.websocket.WsPublicAsync import WsPublicAsync

    lat: Lat = []
    arrivals: list[float] = []

    async def run() -> None:
        ws = WsPublicAsync(url)
        done = asyncio.Event()
        now_ns, perf = time.time_ns, time.perf_counter

        def callback(message: str) -> None:
            now = now_ns()
            msg = json.loads(message)
            if "data" in msg:
                lat.append((now - _stamp(msg["data"][0]["tradeId"])) / 1000.0)
                arrivals.append(perf())
                if len(lat) >= count:
                    done.set()

        consumer = await ws.start()
        if ws.websocket is None:
            raise RuntimeError(f"python-okx could not connect to {url}")
        await ws.subscribe([{"channel": "trades", "instId": INST}], callback)
        await asyncio.wait_for(done.wait(), count / 1000 + 60)
        consumer.cancel()
        await ws.stop()

    asyncio.run(run())
    return lat[:count], _rate(arrivals[:count])


def _ccxt_ws(url: str, count: int, cert: str | None, rest_url: str) -> tuple[Lat, float]:
    import ccxt.pro

    lat: Lat = []
    arrivals: list[float] = []

    async def run() -> None:
        # tradesLimit: ccxt keeps the last 1,000 trades by default; a faster stream would
        # drop some between two returns of watch_trades, and the count would never be met.
        config = {"enableRateLimit": False, "options": {"tradesLimit": count + 1000}}
        ex = ccxt.pro.okx(config | ({"cafile": cert} if cert else {}))
        ex.urls["api"] = {"rest": rest_url, "ws": url.rsplit("/", 1)[0]}
        now_ns, perf = time.time_ns, time.perf_counter
        last = -1
        try:
            await ex.load_markets()
            while last < count - 1:  # until the last push (ccxt may fold one into another)
                try:
                    trades = await asyncio.wait_for(ex.watch_trades(SYMBOL), 10)
                except TimeoutError:
                    raise RuntimeError(
                        f"ccxt: {len(lat)} of {count} pushes, then none for 10 s"
                    ) from None
                now, at = now_ns(), perf()
                for trade in trades:
                    stamp, seq = (int(x) for x in trade["id"].split("-"))
                    if seq > last:  # new since the previous return (ccxt keeps a cache)
                        last = seq
                        lat.append((now - stamp) / 1000.0)
                        arrivals.append(at)
        finally:
            await ex.close()

    asyncio.run(run())
    return lat[:count], _rate(arrivals[:count])


INLINE: dict[str, Any] = {"mode": "inline"}
POOL1 = {"mode": "pool", "queue_size": 100_000, "workers": 1}
POOL4 = {"mode": "pool", "queue_size": 100_000, "workers": 4}
WS_INLINE, WS_POOL1, WS_POOL4 = "okx_sync inline", "okx_sync pool (1 worker)", "okx_sync pool (4)"
WS_PYOKX, WS_CCXT = "python-okx callback", "ccxt.pro watch_trades"
WS_CLIENTS: dict[str, WSRun] = {
    WS_INLINE: _okx_sync_ws(INLINE),
    WS_POOL1: _okx_sync_ws(POOL1),
    WS_POOL4: _okx_sync_ws(POOL4),
    WS_PYOKX: _python_okx_ws,
    WS_CCXT: _ccxt_ws,
}


@dataclass
class WSResult:
    """One client on one transport: its maximum rate and, per load, the paced run."""

    max_rate: float
    runs: dict[float, tuple[float, Lat]] = field(default_factory=dict)  # load -> (rate, lat)

    def row(self, load: float) -> tuple[float, float, float, float]:
        """(achieved rate, p50, p99, p99.9) of the paced run at ``load``."""
        rate, lat = self.runs[load]
        return rate, pct(lat, 0.5), pct(lat, 0.99), pct(lat, 0.999)


@contextmanager
def trusting(cert: str | None) -> Iterator[None]:
    """``SSL_CERT_FILE`` = ``cert`` (a test server's certificate) while clients connect:
    how websocket-client and python-okx find CAs without code changes."""
    old = os.environ.get("SSL_CERT_FILE")
    if cert:
        os.environ["SSL_CERT_FILE"] = cert
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = old


def ws_push(
    rest_url: str, *, seconds: float, max_count: int, clients: list[str] | None = None
) -> tuple[dict[str, dict[str, WSResult]], dict[str, str]]:
    """Transport -> client -> WSResult, and the clients skipped (with why).

    ``rest_url``: a simulator's REST URL (ccxt loads its markets there). Each paced run
    lasts about ``seconds``; the maximum rate comes from ``max_count`` wire-speed pushes.
    """
    results: dict[str, dict[str, WSResult]] = {}
    skipped: dict[str, str] = {}
    for tls in (False, True):
        transport = "wss://" if tls else "ws://"
        server = StampProcess(tls)
        out = results[transport] = {}
        try:
            with trusting(server.cert):
                for name in clients or list(WS_CLIENTS):
                    if name == WS_PYOKX and not tls:
                        skipped[f"{name} (ws://)"] = (
                            "python-okx's WS client only connects to wss://"
                        )
                        continue
                    try:
                        out[name] = _ws_one(server, WS_CLIENTS[name], rest_url, seconds, max_count)
                    except ImportError as exc:
                        skipped[f"{name} ({transport})"] = f"not installed ({exc.name})"
                    except Exception as exc:  # noqa: BLE001 - reported, the others still run
                        skipped[f"{name} ({transport})"] = f"failed: {exc!r:.160}"
        finally:
            server.close()
    return results, skipped


def _ws_one(
    server: StampProcess, run: WSRun, rest_url: str, seconds: float, max_count: int
) -> WSResult:
    server.plan(0, max_count)
    _lat, max_rate = run(server.url, max_count, server.cert, rest_url)
    result = WSResult(max_rate)
    for load in LOADS:
        rate = max_rate * load
        count = max(500, int(rate * seconds))
        server.plan(rate, count)
        lat, achieved = run(server.url, count, server.cert, rest_url)
        result.runs[load] = (achieved, lat[int(len(lat) * WARMUP) :])
    return result


# =========================================================================== REST
_P = "/api/v5/"
ACK = {
    "code": "0",
    "msg": "",
    "data": [{"ordId": "12345", "clOrdId": "", "tag": "", "ts": "1", "sCode": "0", "sMsg": ""}],
}
ORDER = {"instId": INST, "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "100"}
ORDER |= {"sz": "1"}
CANCEL = {"instId": INST, "ordId": "12345"}


def serve_rest() -> None:
    """Child process: an HTTP/1.1 keep-alive server answering fixed OKX envelopes (an
    order ack on ``trade/order`` and ``trade/cancel-order``, a balance otherwise);
    prints its port, serves until stdin closes."""
    import rest_overhead

    ack = json.dumps(ACK).encode()

    class Handler(rest_overhead._Handler):
        bodies = {_P + "trade/order": ack, _P + "trade/cancel-order": ack}

    server = rest_overhead._Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()


def rest_server() -> Any:
    """:func:`serve_rest` in its own process (a context manager yielding its base URL)."""
    import rest_overhead

    return rest_overhead.server_process(__file__, "--serve-rest")


Ops = dict[str, Callable[[], Any]]  # case -> one call ("GET balance", "place+cancel")
REST_FLOOR = "http.client (floor)"
REST_REQUEST, REST_NAMED = "okx_sync Client.request", "okx_sync named methods"
REST_PYOKX, REST_CCXT = "python-okx", "ccxt"
KEY, SECRET, PASSPHRASE = "bench-key-0000000000000000", "bench-secret", "bench-pass"


def _floor_ops(base: str) -> Ops:
    import http.client

    from okx_sync.auth import Credentials, rest_auth_headers

    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    creds = Credentials(api_key=KEY, secret_key=SECRET, passphrase=PASSPHRASE)

    def signed(method: str, target: str, body: str = "") -> dict[str, str]:
        headers = rest_auth_headers(creds, int(time.time() * 1000), method, target, body)
        return {"Content-Type": "application/json", **headers}

    get_target = _P + "account/balance?ccy=BTC"
    order, cancel = json.dumps(ORDER), json.dumps(CANCEL)
    fixed = {  # pre-signed once: the floor does no per-call work but the HTTP exchange
        "get": signed("GET", get_target),
        "order": signed("POST", _P + "trade/order", order),
        "cancel": signed("POST", _P + "trade/cancel-order", cancel),
    }

    def call(method: str, target: str, body: str | None, headers: dict[str, str]) -> Any:
        conn.request(method, target, body=body, headers=headers)
        return json.loads(conn.getresponse().read())["data"]

    def pair() -> None:
        call("POST", _P + "trade/order", order, fixed["order"])
        call("POST", _P + "trade/cancel-order", cancel, fixed["cancel"])

    return {
        "GET balance": lambda: call("GET", get_target, None, fixed["get"]),
        "place+cancel": pair,
    }


def _okx_sync_client(base: str, threads: int) -> Any:
    import okx_sync

    gate = okx_sync.RequestGateConfig(rate_limits=False, max_concurrent=max(10, threads))
    return okx_sync.Client(KEY, SECRET, PASSPHRASE, base_url=base, gate=gate)


def _request_ops(client: Any) -> Ops:
    request = client.request

    def pair() -> None:
        data = request("POST", _P + "trade/order", ORDER)
        request("POST", _P + "trade/cancel-order", {"instId": INST, "ordId": data[0]["ordId"]})

    return {
        "GET balance": lambda: request("GET", _P + "account/balance", {"ccy": "BTC"}),
        "place+cancel": pair,
    }


def _named_ops(client: Any) -> Ops:
    account, trade = client.account, client.trade

    def pair() -> None:
        ack = trade.place_order(
            inst_id=INST, td_mode="cash", side="buy", ord_type="limit", px="100", sz="1",
            validate=False,
        )  # fmt: skip
        trade.cancel_order(inst_id=INST, ord_id=ack.ord_id)

    return {"GET balance": lambda: account.get_balance(ccy="BTC"), "place+cancel": pair}


def _python_okx_ops(base: str) -> Ops:
    from okx.Account import AccountAPI
    from okx.Trade import TradeAPI

    kw = {"flag": "0", "domain": base, "debug": False}
    account = AccountAPI(KEY, SECRET, PASSPHRASE, **kw)
    trade = TradeAPI(KEY, SECRET, PASSPHRASE, **kw)

    def pair() -> None:
        data = trade.place_order(
            instId=INST, tdMode="cash", side="buy", ordType="limit", px="100", sz="1"
        )["data"]
        trade.cancel_order(instId=INST, ordId=data[0]["ordId"])

    return {"GET balance": lambda: account.get_account_balance("BTC")["data"], "place+cancel": pair}


def _ccxt_ops(base: str) -> Ops:
    import ccxt

    ex = ccxt.okx({"apiKey": KEY, "secret": SECRET, "password": PASSPHRASE})
    ex.enableRateLimit = False
    ex.urls["api"] = {"rest": base}

    def pair() -> None:
        data = ex.privatePostTradeOrder(dict(ORDER))["data"]
        ex.privatePostTradeCancelOrder({"instId": INST, "ordId": data[0]["ordId"]})

    return {
        "GET balance": lambda: ex.privateGetAccountBalance({"ccy": "BTC"})["data"],
        "place+cancel": pair,
    }


def _rest_factories(base: str, threads: int) -> dict[str, Callable[[], list[Ops]]]:
    """Client -> a builder of ``threads`` op sets (one per thread; okx_sync's share a
    Client, the others have one instance per thread)."""

    def shared(make: Callable[[Any], Ops]) -> Callable[[], list[Ops]]:
        def build() -> list[Ops]:
            client = _okx_sync_client(base, threads)
            _CLOSE.append(client.close)
            return [make(client)] * threads

        return build

    def per_thread(make: Callable[[str], Ops]) -> Callable[[], list[Ops]]:
        return lambda: [make(base) for _ in range(threads)]

    return {
        REST_FLOOR: per_thread(_floor_ops),
        REST_REQUEST: shared(_request_ops),
        REST_NAMED: shared(_named_ops),
        REST_PYOKX: per_thread(_python_okx_ops),
        REST_CCXT: per_thread(_ccxt_ops),
    }


_CLOSE: list[Callable[[], None]] = []


def _timed(calls: list[Callable[[], Any]], n: int) -> tuple[Lat, float]:
    """Each of ``calls`` (one per thread) ``n`` times, all threads together; the
    per-call latencies (us) and the aggregate calls/s."""
    lat: list[Lat] = [[] for _ in calls]
    barrier = threading.Barrier(len(calls) + 1)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        call, out, perf = calls[i], lat[i], time.perf_counter_ns
        barrier.wait(30)
        try:
            for _ in range(n):
                t0 = perf()
                call()
                out.append((perf() - t0) / 1000.0)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    barrier.wait(30)
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    flat = [x for per in lat for x in per]
    return flat, len(flat) / wall


@dataclass
class RestRow:
    """One client, one case, one thread count: per-call p50/p99 (us) and calls/s."""

    p50: float
    p99: float
    rate: float


def rest_latency(
    calls: int, rounds: int, threads: tuple[int, ...] = (1, 16)
) -> tuple[dict[tuple[str, int], dict[str, RestRow]], dict[str, str]]:
    """(case, threads) -> client -> RestRow (median over interleaved rounds), and the
    clients skipped (with why)."""
    out: dict[tuple[str, int], dict[str, RestRow]] = {}
    skipped: dict[str, str] = {}
    with rest_server() as base:
        for n_threads in threads:
            built: dict[str, list[Ops]] = {}
            for name, build in _rest_factories(base, n_threads).items():
                try:
                    built[name] = build()
                    for case in ("GET balance", "place+cancel"):
                        built[name][0][case]()  # warm up: connect, first-call imports
                except ImportError as exc:
                    skipped[name] = f"not installed ({exc.name})"
                    built.pop(name, None)
                except Exception as exc:  # noqa: BLE001 - reported, the others still run
                    skipped[name] = f"cannot be pointed at the server: {exc!r:.120}"
                    built.pop(name, None)
            per_call = max(20, calls // n_threads)
            for case in ("GET balance", "place+cancel"):
                n = max(10, per_call // 2) if case == "place+cancel" else per_call
                samples: dict[str, list[RestRow]] = {name: [] for name in built}
                for _ in range(rounds):
                    for name, ops in built.items():
                        lat, rate = _timed([o[case] for o in ops], n)
                        samples[name].append(RestRow(pct(lat, 0.5), pct(lat, 0.99), rate))
                out[(case, n_threads)] = {
                    name: RestRow(
                        statistics.median(r.p50 for r in rows),
                        statistics.median(r.p99 for r in rows),
                        statistics.median(r.rate for r in rows),
                    )
                    for name, rows in samples.items()
                }
            while _CLOSE:
                _CLOSE.pop()()
    return out, skipped


# =========================================================================== WS orders
def order_entry(sim: Any, orders: int) -> dict[str, Lat]:
    """Placement latencies (us): ``ws.place_order`` on the private WS and REST
    ``trade.place_order``, interleaved one by one, against the simulator ``sim``
    (``run_all.SimProcess``); each order is cancelled afterwards, untimed."""
    import okx_sync

    gate = okx_sync.RequestGateConfig(rate_limits=False)
    ws_urls = {"private": sim.info["ws_private_url"]}
    client = okx_sync.Client(*sim.key, base_url=sim.rest_url, gate=gate, ws_urls=ws_urls)
    px = _low_price(client)
    order: dict[str, Any] = {"inst_id": INST, "td_mode": "cash", "side": "buy"}
    order["ord_type"] = "limit"
    order |= {"px": px, "sz": "0.001"}
    out: dict[str, Lat] = {"WS ws.place_order": [], "REST trade.place_order": []}
    perf = time.perf_counter_ns
    try:
        ws = client.ws_private()
        with ws:
            for i in range(orders + 5):  # the first 5 warm up (instrument fetch, login)
                for label, place, cancel in (
                    ("WS ws.place_order", ws.place_order, ws.cancel_order),
                    ("REST trade.place_order", client.trade.place_order, None),
                ):
                    t0 = perf()
                    ack = place(**order)
                    elapsed = (perf() - t0) / 1000.0
                    if i >= 5:
                        out[label].append(elapsed)
                    (cancel or client.trade.cancel_order)(inst_id=INST, ord_id=ack.ord_id)
    finally:
        client.close()
    return out


def _low_price(client: Any) -> str:
    """Half the last price, snapped to the tick: a buy that rests until cancelled."""
    last = client.market.get_ticker(inst_id=INST).last
    return str(client.round_price(INST, last / 2))


# =========================================================================== memory
BOOKS = [(i, "books") for i in ("BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP", "ETH-USDT-SWAP")]
BOOKS += [(i, "books5") for i in ("BTC-USDT", "ETH-USDT", "BTC-USDT-SWAP", "ETH-USDT-SWAP")]
BOOKS += [("BTC-USDT-270326", "books"), ("BTC-USDT-270326", "books5")]


def rss_bytes() -> int:
    """This process's resident set size (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def memory(sim: Any, seconds: float, warmup_share: float = 0.25) -> dict[str, Any]:
    """RSS while the simulator floods one Client's public WS (10 managed books) and private
    WS (orders channel) for ``seconds``: samples (seconds, bytes), the RSS at the end of
    warm-up and at the end, and the pushes the books applied."""
    import requests

    import okx_sync

    gate = okx_sync.RequestGateConfig(rate_limits=False)
    ws_urls = {"public": sim.info["ws_public_url"], "private": sim.info["ws_private_url"]}
    client = okx_sync.Client(*sim.key, base_url=sim.rest_url, gate=gate, ws_urls=ws_urls)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    insts = sorted({i for i, _ in BOOKS})

    def flood() -> None:
        session = requests.Session()
        k = 0
        while not stop.is_set():
            body = {"inst_id": insts[k % len(insts)], "count": 500, "channels": ["books"]}
            session.post(f"{sim.info['control_url']}/flood", json=body, timeout=60)
            k += 1
        session.close()

    try:
        public, private = client.ws_public(), client.ws_private()
        with public, private:
            books = [public.order_book(inst, channel) for inst, channel in BOOKS]
            private.subscribe([{"channel": "orders", "instType": "ANY"}])
            for book in books:
                if not book.wait_ready(30):
                    raise RuntimeError(f"book {book} not ready within 30 s")
            flooder = threading.Thread(target=flood, name="bench-flood")
            flooder.start()
            start = time.monotonic()
            try:
                while (elapsed := time.monotonic() - start) < seconds:
                    samples.append((elapsed, rss_bytes()))
                    stop.wait(min(1.0, max(0.05, seconds / 60)))
            finally:
                stop.set()
                flooder.join(120)
            stats = [b.stats() for b in books]
            pushes = sum(s.applied for s in stats)
            resyncs = sum(s.resyncs for s in stats)
    finally:
        client.close()
    after_warmup = [b for t, b in samples if t >= seconds * warmup_share]
    return {
        "samples": samples,
        "warm": after_warmup[0] if after_warmup else samples[-1][1],
        "end": samples[-1][1],
        "pushes": pushes,
        "resyncs": resyncs,
        "seconds": seconds,
    }


def bytes_per_level(levels: int = 400) -> dict[str, float]:
    """Bytes per stored level (tracemalloc) of one book with ``levels`` per side:
    okx_sync's ``OrderBookStore`` (a snapshot push applied) and ccxt's ``OrderBook``
    (the levels stored as ccxt.pro's okx handler stores them)."""
    import gc
    import tracemalloc

    asks = [[f"{50000 + i * 0.1:.1f}", f"{1 + i % 7}.{i % 10}", "0", str(1 + i % 4)]
            for i in range(levels)]  # fmt: skip
    bids = [[f"{49999.9 - i * 0.1:.1f}", f"{2 + i % 5}.{i % 10}", "0", str(1 + i % 3)]
            for i in range(levels)]  # fmt: skip
    item = {"asks": asks, "bids": bids, "ts": "1", "checksum": 0, "prevSeqId": -1, "seqId": 1}
    msg = {"arg": {"channel": "books", "instId": INST}, "action": "snapshot", "data": [item]}

    def okx_sync_book() -> Any:
        from okx_sync import OrderBookStore

        store = OrderBookStore("books", INST)
        store.apply(json.loads(json.dumps(msg)))
        return store

    def ccxt_book() -> Any:
        from ccxt.async_support.base.ws.order_book import OrderBook

        book = OrderBook({}, levels)
        for side, rows in (("asks", asks), ("bids", bids)):
            for row in json.loads(json.dumps(rows)):
                book[side].store(float(row[0]), float(row[1]))
        return book

    out: dict[str, float] = {}
    for name, build in (("okx_sync OrderBookStore", okx_sync_book), ("ccxt OrderBook", ccxt_book)):
        try:
            build()  # imports, caches
        except ImportError:
            continue
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        out[name] = (tracemalloc.get_traced_memory()[0] - before) / (2 * levels)
        tracemalloc.stop()
        del kept
    return out


# =========================================================================== CLI
def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print them (``run_all.py`` makes the tables and charts)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="ws,rest,orders,memory")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--memory-seconds", type=float, default=60.0)
    parser.add_argument("--serve-stamp", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-rest", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tls", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_stamp:
        serve_stamp(args.tls)
        return 0
    if args.serve_rest:
        serve_rest()
        return 0
    import run_all

    return run_all.main(
        ["--only", "latency", "--latency-parts", args.only]
        + ["--memory-seconds", str(args.memory_seconds)]
        + (["--quick"] if args.quick else [])
        + ["--out", str(Path(os.environ.get("TMPDIR", "/tmp")) / "okx_sync-latency")]
    )


if __name__ == "__main__":
    sys.exit(main())
