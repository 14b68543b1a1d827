"""The simulator's WebSocket server: ``/ws/v5/public``, ``/ws/v5/private``, ``/ws/v5/business``.

Built on the ``websockets`` threaded server (``websockets.sync.server``, the ``sim``
extra). One :class:`WSHub` owns the connections and subscriptions and is the
exchange's event listener; each connection has a reader thread (the websockets
handler thread, renamed ``okx-sim-ws-conn-N``) and a writer thread
(``okx-sim-ws-writer-N``) draining a bounded queue, so a slow client never blocks
the exchange. A full queue closes the connection with 4005 (OKX's "buffer full"),
except in flood mode where the publisher waits.

Protocol (facts §4–§6): text ``ping`` → ``pong``; ``login`` with a real signature
check and OKX's error codes; ``subscribe``/``unsubscribe`` acks with ``id`` and
``connId``; error events (60012 invalid request, 60018 unknown channel/instId,
60011 private channel without login, 64001/64002 wrong URL, 64003 l2-tbt tier,
60019 bad op); ``channel-conn-count`` after private subscriptions; initial snapshots
(``books``, ``books5``, ``bbo-tbt``, ``tickers``, candles, ``account``,
``positions``, ``balance_and_position``); private pushes from exchange events;
WS order entry (``order``, ``batch-orders``, ``cancel-order``,
``batch-cancel-orders``, ``amend-order``, ``batch-amend-orders``) with ``id``
correlation; spread order entry on ``/business`` (``sprd-order``, ``sprd-amend-order``,
``sprd-cancel-order``, ``sprd-mass-cancel``: :mod:`okx_sync.sim.spreads`) with the
``sprd-orders`` channel pushing every change; ``instIdCode`` (required: a missing or malformed one answers 51000
"Parameter instIdCode error", a plain ``instId`` is not accepted in its place) and the
REST rate-limit buckets; idle close 4004 after
``idle_timeout_s`` seconds with nothing sent; ``notice`` 64008.

Thread safety: hub methods may be called from any thread; connection sends are
queued and ordered per connection.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import socket
import ssl
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..clock import Clock
from ..rest.endpoints import EndpointRegistry, registry
from .authcheck import ApiKey, AuthFailure, KeyStore, check_ws_login
from .exchange import MAX_BATCH, Exchange, SimEvent, SimRequestError
from .faults import Faults
from .instruments import INST_TYPES
from .numbers import ZERO, fmt
from .ratelimit import ACCOUNT_LIMITED, RateLimiter
from .routes import order_envelope_code
from .spreads import SpreadDesk
from .timers import Timers

try:  # the ``sim`` extra
    from websockets.exceptions import ConnectionClosed
    from websockets.http11 import Request, Response
    from websockets.sync.server import Server, ServerConnection, serve
except ImportError:  # pragma: no cover - reported by WSServer
    serve = None  # type: ignore[assignment]

__all__ = ["WSHub", "WSServer", "SimConnection", "WS_PATHS"]

log = logging.getLogger("okx_sync.sim.ws")


class _NoFrameDumps(logging.Filter):
    """Drops the websockets library's DEBUG records: they dump whole frames, and a
    login frame carries the API key and passphrase."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_NO_FRAME_DUMPS = _NoFrameDumps()


def _frame_quiet_logger() -> logging.Logger:
    """The websockets server's logger, with frame dumps filtered out (idempotent)."""
    logger = logging.getLogger("okx_sync.sim.websockets")
    if not any(isinstance(f, _NoFrameDumps) for f in logger.filters):
        logger.addFilter(_NO_FRAME_DUMPS)
    return logger


WS_PATHS = {"/ws/v5/public": "public", "/ws/v5/private": "private", "/ws/v5/business": "business"}
PUBLIC_CHANNELS = frozenset({"tickers", "books", "books5", "bbo-tbt", "trades"})
L2_TBT = frozenset({"books-l2-tbt", "books50-l2-tbt"})
PRIVATE_CHANNELS = frozenset({"orders", "account", "positions", "balance_and_position"})
# WS order op -> (order action, REST path of the same action, batch?): ``Endpoint.ws_op``
# of the order-book trading endpoints (``/private``); the spread ops (``/business``) apart.
ORDER_OPS = {
    ep.ws_op: (ep.order_action, ep.path, ep.batch)
    for ep in registry()
    if ep.ws_op and ep.group != "spread"
}
SPREAD_OPS = {ep.ws_op: ep for ep in registry() if ep.ws_op and ep.group == "spread"}
SPREAD_CHANNEL = "sprd-orders"
_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
NOT_ON_BUSINESS = (
    'This channel is not supported by "/business" URL. Please use "/private" '
    'URL(for private channels), or "/public" URL(for public channels).'
)
LOGIN_MESSAGES = {
    "60004": "Invalid timestamp",
    "60005": "Invalid apiKey",
    "60006": "Timestamp request expired",
    "60007": "Invalid sign",
    "60009": "Login failed.",
    "60023": "Bulk login requests too frequent",
    "60024": "Wrong passphrase",
    "60032": "API key doesn't exist.",
    "63999": "Login failed due to internal error. Please try again later.",
}
NOTICE_MSG = "The connection will soon be closed for a service upgrade. Please reconnect."
# Close reasons for the login-failure close codes (facts §3.5 gives the meanings; the
# wording is the simulator's).
CLOSE_REASONS = {4001: "Login failed.", 4007: "API key has been updated or deleted."}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _arg_key(arg: Mapping[str, Any]) -> str:
    return _dumps(sorted((str(k), str(v)) for k, v in arg.items()))


class SimConnection:
    """One client connection: its queue, writer thread, login and subscriptions."""

    def __init__(self, hub: WSHub, ws: ServerConnection, kind: str, conn_id: str, n: int) -> None:
        self.hub = hub
        self.ws = ws
        self.kind = kind
        self.conn_id = conn_id
        self.number = n
        self.key: ApiKey | None = None
        self.subs: dict[str, dict[str, Any]] = {}  # arg key -> arg
        self.silent = False
        self.closing = False
        now = hub.clock.monotonic()
        self.connected_at = now
        self.last_sent = now
        self.recent_ops: deque[float] = deque()
        self.ops_received: dict[str, int] = {}  # op -> frames received (this reader only)
        self._queue: deque[str] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._close_after: tuple[int, str] | None = None  # close once the queue is sent
        self.sent = 0
        self.dropped_while_silent = 0
        self._writer = threading.Thread(
            target=self._write_loop, name=f"okx-sim-ws-writer-{n}", daemon=True
        )

    @property
    def uid(self) -> str:
        """The logged-in account's uid, or ``""``."""
        return self.key.uid if self.key is not None else ""

    def start(self) -> None:
        """Start the writer thread."""
        self._writer.start()

    def send(self, text: str, *, block: bool = False) -> bool:
        """Queue a text frame; False when the connection is closed or overflowed."""
        with self._cond:
            if self._closed:
                return False
            if len(self._queue) >= self.hub.queue_size:
                if not block:
                    self._overflow()
                    return False
                while len(self._queue) >= self.hub.queue_size and not self._closed:
                    self._cond.wait(0.05)
                if self._closed:
                    return False
            self._queue.append(text)
            self._cond.notify_all()
            return True

    def send_json(self, obj: Any, *, block: bool = False) -> bool:
        """Queue a JSON message."""
        return self.send(_dumps(obj), block=block)

    def _overflow(self) -> None:
        log.warning("sim ws queue full, closing", extra={"conn_id": self.conn_id})
        self._closed = True
        self._queue.clear()
        self._cond.notify_all()
        threading.Thread(
            target=self._close_quietly,
            args=(4005, "Buffer is full, cannot write data"),
            name=f"okx-sim-ws-close-{self.number}",
            daemon=True,
        ).start()

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed and self._close_after is None:
                    self._cond.wait()
                if self._closed and not self._queue:
                    return
                batch = list(self._queue)
                self._queue.clear()
                close_after, self._close_after = self._close_after, None
                self._cond.notify_all()
            if not self._send_batch(batch):
                return
            if close_after is not None:
                self._close_quietly(*close_after)

    def _send_batch(self, batch: list[str]) -> bool:
        """Send frames in order; False (and the connection marked closed) if one fails."""
        for text in batch:
            if self.silent:
                self.dropped_while_silent += 1
                continue
            try:
                self.ws.send(text)
            except Exception:
                with self._cond:
                    self._closed = True
                    self._queue.clear()
                    self._cond.notify_all()
                return False
            self.sent += 1
            self.last_sent = self.hub.clock.monotonic()
        return True

    def stop_writer(self, timeout_s: float = 2.0) -> None:
        """Stop the writer thread (pending frames are dropped) and join it."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        if self._writer.is_alive() and self._writer is not threading.current_thread():
            self._writer.join(timeout_s)

    def set_silent(self, silent: bool) -> None:
        """Stop (or resume) sending anything, pong included."""
        self.silent = silent
        if not silent:
            self.last_sent = self.hub.clock.monotonic()

    def _close_quietly(self, code: int, reason: str) -> None:
        try:
            self.ws.close(code, reason)
        except Exception:  # already closed
            pass

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with a close frame (from any thread)."""
        self.closing = True
        self._close_quietly(code, reason)

    def close_when_sent(self, code: int, reason: str) -> None:
        """Close with ``code`` once the frames queued so far are sent (from any thread):
        an answer queued just before is not overtaken by the close frame."""
        self.closing = True
        with self._cond:
            self._close_after = (code, reason)
            self._cond.notify_all()

    def drop(self) -> None:
        """Abrupt TCP close: no close frame."""
        self.closing = True
        try:
            self.ws.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def notice_then_close(self, delay_s: float) -> None:
        """Send ``notice`` 64008 now and close (1012) after ``delay_s`` seconds."""
        self.send_json(
            {"event": "notice", "code": "64008", "msg": NOTICE_MSG, "connId": self.conn_id}
        )
        self.hub.timers.schedule(delay_s, lambda: self.close(1012, "service upgrade"))

    def info(self) -> dict[str, Any]:
        """A JSON-safe description for ``sim.ws_connections()``."""
        return {
            "conn_id": self.conn_id,
            "kind": self.kind,
            "uid": self.uid,
            "subscriptions": list(self.subs.values()),
            "silent": self.silent,
            "sent": self.sent,
            "ops_received": dict(self.ops_received),
        }


class WSHub:
    """Connections, subscriptions and message handling (see the module docstring)."""

    def __init__(
        self,
        *,
        exchange: Exchange,
        keys: KeyStore,
        faults: Faults,
        limiter: RateLimiter,
        registry: EndpointRegistry,
        clock: Clock,
        timers: Timers,
        seed: int | str,
        idle_timeout_s: float = 30.0,
        queue_size: int = 10_000,
        auth_skew_s: float = 30.0,
        max_private_conns: int = 30,
        ops_per_hour: int = 480,
    ) -> None:
        self.exchange = exchange
        self.keys = keys
        self.faults = faults
        self.limiter = limiter
        self.registry = registry
        self.clock = clock
        self.timers = timers
        self.idle_timeout_s = idle_timeout_s
        self.queue_size = queue_size
        self.auth_skew_s = auth_skew_s
        self.max_private_conns = max_private_conns
        self.ops_per_hour = ops_per_hour
        self._lock = threading.RLock()
        self._rng = random.Random(f"{seed}:connid")
        self._numbers = itertools.count(1)
        self.conns: dict[str, SimConnection] = {}
        self._public: dict[tuple[str, str], set[SimConnection]] = {}
        self._private: dict[str, set[SimConnection]] = {}
        self.total_connections = 0
        #: Spread orders (the ``sprd-*`` ops of ``/business``).
        self.spreads = SpreadDesk(lambda i: exchange.instrument(i) is not None, exchange.now_ms)

    # ------------------------------------------------------------------ bookkeeping
    def select(
        self, *, kind: str | None = None, conn_id: str | None = None, which: str = "all"
    ) -> list[SimConnection]:
        """Open (not closing) connections matching ``kind``/``conn_id``; ``which="one"`` →
        the oldest."""
        with self._lock:
            conns = sorted(self.conns.values(), key=lambda c: c.number)
        conns = [
            c
            for c in conns
            if not c.closing
            and (kind is None or c.kind == kind)
            and (conn_id is None or c.conn_id == conn_id)
        ]
        if which == "one":
            return conns[:1]
        if which != "all":
            raise ValueError("which must be 'all' or 'one'")
        return conns

    def _new_conn_id(self) -> str:
        with self._lock:
            while True:
                cid = f"{self._rng.getrandbits(32):08x}"
                if cid not in self.conns:
                    return cid

    # ------------------------------------------------------------------ connection
    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse handshakes on unknown paths (404)."""
        path = urlsplit(request.path).path
        if path not in WS_PATHS:
            return connection.respond(404, "Not Found\n")
        return None

    def handler(self, ws: ServerConnection) -> None:
        """Serve one connection (runs on the websockets handler thread)."""
        path = urlsplit(ws.request.path if ws.request else "/").path
        kind = WS_PATHS.get(path, "public")
        n = next(self._numbers)
        threading.current_thread().name = f"okx-sim-ws-conn-{n}"
        recv_thread = getattr(ws, "recv_events_thread", None)
        if recv_thread is not None:
            recv_thread.name = f"okx-sim-ws-recv-{n}"
        conn = SimConnection(self, ws, kind, self._new_conn_id(), n)
        with self._lock:
            self.conns[conn.conn_id] = conn
            self.total_connections += 1
        conn.start()
        poll = max(0.02, min(0.25, self.idle_timeout_s / 4))
        try:
            while True:
                try:
                    message = ws.recv(timeout=poll)
                except TimeoutError:
                    self._check_idle(conn)
                    continue
                except ConnectionClosed:
                    break
                if isinstance(message, bytes):
                    message = message.decode("utf-8", errors="replace")
                try:
                    self._on_text(conn, message)
                except Exception:
                    log.exception("sim ws message handling failed", extra={"conn_id": conn.conn_id})
        finally:
            self._forget(conn)
            conn.stop_writer()

    def _check_idle(self, conn: SimConnection) -> None:
        if conn.silent or conn.closing:
            return
        now = self.clock.monotonic()
        if now - max(conn.last_sent, conn.connected_at) >= self.idle_timeout_s:
            log.info("sim ws idle close", extra={"conn_id": conn.conn_id})
            conn.close(4004, "No data received in 30s")

    def _forget(self, conn: SimConnection) -> None:
        with self.exchange.lock, self._lock:
            self.conns.pop(conn.conn_id, None)
            for arg in list(conn.subs.values()):
                self._unregister(conn, arg)
            conn.subs.clear()

    # ------------------------------------------------------------------ dispatch
    def _on_text(self, conn: SimConnection, text: str) -> None:
        if text == "ping":
            conn.send("pong")
            return
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            self._error(conn, "60012", f"Invalid request: {text[:200]}")
            return
        op = msg["op"]
        req_id = msg.get("id")
        conn.ops_received[op] = conn.ops_received.get(op, 0) + 1
        if op == "login":
            self._login(conn, msg)
        elif op in ("subscribe", "unsubscribe"):
            self._subscribe(conn, msg, op)
        elif op in ORDER_OPS:
            self._order_op(conn, msg, op)
        elif op in SPREAD_OPS:
            self._spread_op(conn, msg, op)
        else:
            self._error(conn, "60019", f"Invalid op: {op}", req_id)

    def _error(self, conn: SimConnection, code: str, msg: str, req_id: Any = None) -> None:
        out: dict[str, Any] = {}
        if req_id not in (None, ""):
            out["id"] = str(req_id)
        out.update({"event": "error", "code": code, "msg": msg, "connId": conn.conn_id})
        conn.send_json(out)

    def _op_allowed(self, conn: SimConnection) -> bool:
        now = self.clock.monotonic()
        window = conn.recent_ops
        while window and window[0] <= now - 3600:
            window.popleft()
        if len(window) >= self.ops_per_hour:
            return False
        window.append(now)
        return True

    # ------------------------------------------------------------------ login
    def _login(self, conn: SimConnection, msg: Mapping[str, Any]) -> None:
        if not self._op_allowed(conn):
            self._error(conn, "60014", "Requests too frequent")
            return
        args = msg.get("args")
        if not isinstance(args, list) or len(args) != 1:
            self._error(conn, "60013", "Invalid args")
            return
        forced = self.faults.login_fault()
        if forced is not None:
            if forced.code:
                self._error(conn, forced.code, LOGIN_MESSAGES.get(forced.code, "Login failure"))
            if forced.close_code is not None:
                reason = CLOSE_REASONS.get(forced.close_code, "Login failed.")
                conn.close_when_sent(forced.close_code, reason)
            return
        try:
            key = check_ws_login(self.keys, args[0], self.clock.time(), self.auth_skew_s)
        except AuthFailure as exc:
            self._error(conn, exc.code, exc.msg)
            return
        if conn.key is not None and conn.key.api_key != key.api_key:
            self._error(
                conn, "60031", "The WebSocket endpoint does not allow multiple or repeated logins."
            )
            return
        with self._lock:
            conn.key = key
        conn.send_json({"event": "login", "code": "0", "msg": "", "connId": conn.conn_id})

    # ------------------------------------------------------------------ subscriptions
    def _subscribe(self, conn: SimConnection, msg: Mapping[str, Any], op: str) -> None:
        req_id = msg.get("id")
        if req_id not in (None, "") and not _ID.match(str(req_id)):
            self._error(conn, "60013", "Invalid args", None)
            return
        args = msg.get("args")
        if not isinstance(args, list) or not args:
            self._error(conn, "60013", "Invalid args", req_id)
            return
        if not self._op_allowed(conn):
            self._error(conn, "60014", "Requests too frequent", req_id)
            return
        for arg in args:
            if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
                self._error(conn, "60012", f"Invalid request: {_dumps(msg)[:200]}", req_id)
                continue
            problem = self._validate(conn, arg) if op == "subscribe" else None
            if problem is None and op == "subscribe":
                forced = self.faults.subscription_fault(arg["channel"], str(arg.get("instId", "")))
                if forced:
                    problem = (forced, self._wrong_msg(arg))
            if problem is not None:
                self._error(conn, problem[0], problem[1], req_id)
                continue
            ack: dict[str, Any] = {}
            if req_id not in (None, ""):
                ack["id"] = str(req_id)
            ack.update({"event": op, "arg": dict(arg), "connId": conn.conn_id})
            if op == "subscribe":
                self._add_subscription(conn, dict(arg), ack)
            else:
                self._remove_subscription(conn, dict(arg), ack)

    @staticmethod
    def _wrong_msg(arg: Mapping[str, Any]) -> str:
        what = ",".join(
            f"{k}:{v}"
            for k, v in arg.items()
            if k in ("channel", "instId", "instType", "instFamily")
        )
        return (
            f"Wrong URL or {what} doesn't exist. Please use the correct URL, channel and "
            "parameters referring to API document."
        )

    def _validate(self, conn: SimConnection, arg: Mapping[str, Any]) -> tuple[str, str] | None:
        channel = str(arg["channel"])
        kind = conn.kind
        is_candle = channel.startswith("candle") and len(channel) > len("candle")
        if channel in PUBLIC_CHANNELS or channel in L2_TBT:
            if kind == "business":
                return "64002", NOT_ON_BUSINESS
            if kind != "public":
                return "60018", self._wrong_msg(arg)
            if channel in L2_TBT:
                return (
                    "64003",
                    "Your trading fee tier doesn't meet the requirement to access this channel",
                )
            if str(arg.get("instId") or "") not in self.exchange.specs:
                return "60018", self._wrong_msg(arg)
            return None
        if is_candle:
            if kind == "public":
                return "64001", (
                    "This channel has been migrated to the '/business' URL. Please subscribe "
                    "using the new URL."
                )
            if kind != "business":
                return "60018", self._wrong_msg(arg)
            from .market import BARS

            if (
                channel[len("candle") :] not in BARS
                or str(arg.get("instId") or "") not in self.exchange.specs
            ):
                return "60018", self._wrong_msg(arg)
            return None
        if channel == SPREAD_CHANNEL:
            if kind != "business":
                return "60018", self._wrong_msg(arg)
            return ("60011", "Please log in") if conn.key is None else None
        if channel in PRIVATE_CHANNELS:
            if kind == "business":
                return "64002", NOT_ON_BUSINESS
            if kind != "private":
                return "60018", self._wrong_msg(arg)
            if conn.key is None:
                return "60011", "Please log in"
            if channel in ("orders", "positions"):
                inst_type = str(arg.get("instType") or "")
                allowed = set(INST_TYPES) | {"ANY"}
                if channel == "positions":
                    allowed.discard("SPOT")
                if inst_type not in allowed:
                    return "60018", self._wrong_msg(arg)
                inst_id = str(arg.get("instId") or "")
                if inst_id and inst_id not in self.exchange.specs:
                    return "60018", self._wrong_msg(arg)
            return None
        return "60018", self._wrong_msg(arg)

    def _add_subscription(
        self, conn: SimConnection, arg: dict[str, Any], ack: dict[str, Any]
    ) -> None:
        channel = arg["channel"]
        key = _arg_key(arg)
        with self.exchange.lock, self._lock:
            new = key not in conn.subs
            conn.subs[key] = arg
            conn.send_json(ack)
            if channel == SPREAD_CHANNEL:  # pushed on change by _spread_op (no snapshot)
                return
            if channel in PRIVATE_CHANNELS:
                uid = conn.uid
                if new:
                    self._private.setdefault(uid, set()).add(conn)
                count = sum(
                    1
                    for c in self._private.get(uid, ())
                    if any(a["channel"] == channel for a in c.subs.values())
                )
                event = (
                    "channel-conn-count"
                    if count <= self.max_private_conns
                    else "channel-conn-count-error"
                )
                conn.send_json(
                    {
                        "event": event,
                        "channel": channel,
                        "connCount": str(count),
                        "connId": conn.conn_id,
                    }
                )
                self._private_snapshot(conn, arg)
                return
            inst_id = str(arg.get("instId"))
            if new:
                self._public.setdefault((channel, inst_id), set()).add(conn)
                self.exchange.set_interest(channel, inst_id, +1)
            snap = self.exchange.snapshot_for(channel, inst_id)
            if snap is not None:
                conn.send(self._public_text(snap))

    def _remove_subscription(
        self, conn: SimConnection, arg: dict[str, Any], ack: dict[str, Any]
    ) -> None:
        key = _arg_key(arg)
        with self.exchange.lock, self._lock:
            old = conn.subs.pop(key, None)
            if old is not None:
                self._unregister(conn, old)
            conn.send_json(ack)

    def _unregister(self, conn: SimConnection, arg: Mapping[str, Any]) -> None:
        channel = str(arg["channel"])
        if channel == SPREAD_CHANNEL:
            return
        if channel in PRIVATE_CHANNELS:
            if not any(
                a["channel"] in PRIVATE_CHANNELS for a in conn.subs.values() if a is not arg
            ):
                self._private.get(conn.uid, set()).discard(conn)
            return
        inst_id = str(arg.get("instId"))
        subs = self._public.get((channel, inst_id))
        if subs is not None and conn in subs:
            still = any(
                a is not arg and a["channel"] == channel and str(a.get("instId")) == inst_id
                for a in conn.subs.values()
            )
            if not still:
                subs.discard(conn)
                self.exchange.set_interest(channel, inst_id, -1)

    # ------------------------------------------------------------------ pushes
    @staticmethod
    def _public_text(event: SimEvent) -> str:
        msg: dict[str, Any] = {"arg": {"channel": event.channel, "instId": event.inst_id}}
        if event.action:
            msg["action"] = event.action
        msg["data"] = event.data
        return _dumps(msg)

    def on_events(self, events: list[SimEvent], block: bool) -> None:
        """Exchange listener: fan events out to subscribers (called under the exchange lock)."""
        with self._lock:
            for event in events:
                if event.dropped:
                    continue
                if event.uid:
                    for conn in list(self._private.get(event.uid, ())):
                        self._push_private(conn, event, block)
                    continue
                subs = self._public.get((event.channel, event.inst_id))
                if not subs:
                    continue
                text = self._public_text(event)
                for conn in list(subs):
                    conn.send(text, block=block)

    @staticmethod
    def _matches(arg: Mapping[str, Any], event: SimEvent) -> bool:
        inst_type = str(arg.get("instType") or "ANY")
        if inst_type != "ANY" and inst_type != event.inst_type:
            return False
        family = str(arg.get("instFamily") or "")
        if family and family != event.inst_family:
            return False
        inst_id = str(arg.get("instId") or "")
        return not inst_id or inst_id == event.inst_id

    def _push_private(self, conn: SimConnection, event: SimEvent, block: bool) -> None:
        for arg in list(conn.subs.values()):
            if arg["channel"] != event.channel:
                continue
            data: list[Any] = list(event.data)
            if event.channel in ("orders", "positions") and not self._matches(arg, event):
                continue
            if event.channel == "account" and arg.get("ccy"):
                data = [
                    {**d, "details": [x for x in d["details"] if x["ccy"] == arg["ccy"]]}
                    for d in data
                ]
                if not any(d["details"] for d in data):
                    continue
            msg: dict[str, Any] = {"arg": {**arg, "uid": conn.uid}}
            if event.channel in ("account", "positions"):
                msg["eventType"] = event.event_type or "event_update"
            msg["data"] = data
            conn.send_json(msg, block=block)

    def _private_snapshot(self, conn: SimConnection, arg: Mapping[str, Any]) -> None:
        channel = arg["channel"]
        ex = self.exchange
        acc = ex.accounts.get(conn.uid)
        if acc is None or channel == "orders":
            return
        now = ex.now_ms()
        head: dict[str, Any] = {"arg": {**arg, "uid": conn.uid}}
        if channel == "account":
            ccys = [str(arg["ccy"])] if arg.get("ccy") else None
            bal = acc.balance(ccys, ex.mark, ex.usd_price, now)
            conn.send_json(
                {**head, "eventType": "snapshot", "curPage": 1, "lastPage": True, "data": [bal]}
            )
        elif channel == "positions":
            data = []
            for pos in acc.positions.values():
                spec = pos.spec
                probe = SimEvent(
                    channel="positions",
                    data=[],
                    inst_id=spec.inst_id,
                    inst_type=spec.inst_type,
                    inst_family=spec.inst_family,
                )
                if pos.pos != 0 and self._matches(arg, probe):
                    data.append(pos.to_okx(ex.mark(spec.inst_id), ex.usd_price(spec.settle_ccy)))
            conn.send_json(
                {**head, "eventType": "snapshot", "curPage": 1, "lastPage": True, "data": data}
            )
        elif channel == "balance_and_position":
            bal_data = [
                {"ccy": c, "cashBal": fmt(acc.cash.get(c, ZERO)), "uTime": str(now)}
                for c in acc.currencies()
            ]
            pos_data = [ex._bp_position(p) for p in acc.positions.values() if p.pos != 0]
            conn.send_json(
                {
                    **head,
                    "data": [
                        {
                            "pTime": str(now),
                            "eventType": "snapshot",
                            "balData": bal_data,
                            "posData": pos_data,
                            "trades": [],
                        }
                    ],
                }
            )

    # ------------------------------------------------------------------ order entry
    def _op_id(self, conn: SimConnection, msg: Mapping[str, Any], kind: str) -> str | None:
        """The op's request id, or None after answering 60028 (an op this URL does not take:
        not on a ``kind`` connection) or 60013 (a missing or malformed id)."""
        req_id = msg.get("id")
        if conn.kind != kind:
            self._error(
                conn,
                "60028",
                "The current operation is not supported by this URL. Please use the correct WebSocket URL for the operation.",
                req_id,
            )
            return None
        if req_id in (None, "") or not _ID.match(str(req_id)):
            self._error(conn, "60013", "Invalid args", req_id)
            return None
        return str(req_id)

    def _order_op(self, conn: SimConnection, msg: Mapping[str, Any], op: str) -> None:
        req_id = self._op_id(conn, msg, "private")
        if req_id is None:
            return
        in_time = int(self.clock.time() * 1_000_000)

        def reply(code: str, text: str, data: list[Any]) -> None:
            """Queue the op's answer, correlated by ``id``."""
            conn.send_json(
                {
                    "id": req_id,
                    "op": op,
                    "code": code,
                    "msg": text,
                    "data": data,
                    "inTime": str(in_time),
                    "outTime": str(int(self.clock.time() * 1_000_000)),
                }
            )

        if conn.key is None:
            reply("60011", "Please log in", [])
            return
        args = msg.get("args")
        action, rest_path, batch = ORDER_OPS[op]
        if not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
            reply("60013", "Invalid args", [])
            return
        if not batch and len(args) != 1:
            reply("60013", "Invalid args", [])
            return
        if len(args) > MAX_BATCH:
            reply("51111" if action == "place" else "60013", "Invalid args", [])
            return
        items = self._resolve_inst_id_codes(args)
        if items is None:
            reply("51000", "Parameter instIdCode error", [])
            return
        endpoint = self.registry.get("POST", rest_path)
        assert endpoint is not None
        refused = self.limiter.check(endpoint, items, ip="ws", uid=conn.uid)
        if refused:
            text = (
                "You've reached the maximum order rate limit for this account."
                if refused == ACCOUNT_LIMITED
                else "Rate limit reached. Please refer to API documentation and throttle requests accordingly."
            )
            reply(refused, text, [])
            return
        exp = msg.get("expTime")
        now_ms = int(self.clock.time() * 1000)
        if exp not in (None, "") and str(exp).isdigit() and now_ms > int(str(exp)):
            data = [
                {
                    "clOrdId": str(a.get("clOrdId") or ""),
                    "ordId": "",
                    "tag": str(a.get("tag") or ""),
                    "ts": str(now_ms),
                    "sCode": "50037",
                    "sMsg": "Order expired.",
                    "subCode": "",
                }
                for a in items
            ]
            reply("1", "All operations failed", data)
            return
        try:
            if action == "place":
                results = self.exchange.place_orders(conn.uid, items, source="ws")
            elif action == "cancel":
                results = self.exchange.cancel_orders(conn.uid, items)
            else:
                results = self.exchange.amend_orders(conn.uid, items)
        except SimRequestError as exc:
            reply(exc.code, exc.msg, [])
            return
        lost = self.faults.ws_lose_order_response(action)
        if lost == "timeout":
            return
        if lost == "50004":
            reply(
                "50004",
                "API endpoint request timeout. (does not mean that the request was successful or failed, please check the request result).",
                [],
            )
            return
        code, text = order_envelope_code(results)
        reply(code, text, results[:-1] if lost == "short" else results)

    def _spread_op(self, conn: SimConnection, msg: Mapping[str, Any], op: str) -> None:
        """A ``sprd-*`` op (spread trading, ``/business`` after login): one arg, the REST
        twin's rate bucket, the spread desk's answer, then ``sprd-orders`` pushes."""
        req_id = self._op_id(conn, msg, "business")
        if req_id is None:
            return

        def reply(code: str, text: str, data: list[Any]) -> None:
            conn.send_json({"id": str(req_id), "op": op, "code": code, "msg": text, "data": data})

        if conn.key is None:
            reply("60011", "Please log in", [])
            return
        args = msg.get("args")
        if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
            reply("60013", "Invalid args", [])
            return
        item, endpoint = args[0], SPREAD_OPS[op]
        refused = self.limiter.check(endpoint, item, ip="ws", uid=conn.uid)
        if refused:
            reply(refused, "Rate limit reached.", [])
            return
        desk, uid = self.spreads, conn.uid
        results: list[dict[str, Any]]
        if op == "sprd-mass-cancel":
            changed = desk.mass_cancel(uid, str(item.get("sprdId") or ""))
            results = [{"result": True}]
        else:
            has_id = bool(item.get("ordId") or item.get("clOrdId"))
            if op != "sprd-order" and not has_id:
                reply("60013", "Invalid args", [])
                return
            act = {"sprd-order": desk.place, "sprd-amend-order": desk.amend}.get(op, desk.cancel)
            ack, changed = act(uid, item)
            results = [ack]
        self._push_spread(uid, changed)
        lost = self.faults.ws_lose_order_response(endpoint.order_action)
        if lost == "timeout":
            return
        if op == "sprd-mass-cancel":
            reply("0", "", results)
        else:
            code, text = order_envelope_code(results)
            reply(code, text, [] if lost == "short" else results)

    def _push_spread(self, uid: str, orders: list[dict[str, Any]]) -> None:
        """Push changed spread orders to ``uid``'s ``sprd-orders`` subscribers."""
        for conn in self.select(kind="business") if orders else ():
            if conn.uid != uid:
                continue
            for arg in list(conn.subs.values()):
                if arg["channel"] != SPREAD_CHANNEL:
                    continue
                sprd = str(arg.get("sprdId") or "")
                data = [o for o in orders if not sprd or o["sprdId"] == sprd]
                if data:
                    conn.send_json({"arg": {**arg, "uid": uid}, "data": data})

    def _resolve_inst_id_codes(self, args: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The args with ``instId`` taken from each ``instIdCode``; None when an arg has no
        usable ``instIdCode`` (missing, empty, not an integer).

        Current OKX docs list only ``instIdCode`` for WS order entry (``instId`` deprecated
        in February 2026, facts §6.5): a plain ``instId`` is ignored, not a fallback. A
        well-formed code no instrument has gets the instrument's item error (51001).
        """
        items = []
        for arg in args:
            code = arg.get("instIdCode")
            if isinstance(code, bool) or not isinstance(code, (int, str)):
                return None
            text = str(code)
            if not text.isascii() or not text.isdigit():
                return None
            spec = self.exchange.instrument_by_code(int(text))
            item = dict(arg)
            item["instId"] = spec.inst_id if spec is not None else f"#unknown-code-{text}"
            items.append(item)
        return items


class WSServer:
    """Runs a :class:`WSHub` on 127.0.0.1 with ``websockets.sync.server``.

    Raises ``RuntimeError`` when ``websockets`` (the ``sim`` extra) is missing.
    Thread safety: ``close`` is idempotent and may be called from any thread.
    """

    def __init__(
        self,
        hub: WSHub,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if serve is None:  # pragma: no cover
            raise RuntimeError(
                "the simulator's WebSocket server needs 'websockets' (pip install okx_sync[sim])"
            )
        self.hub = hub
        self._server: Server = serve(
            hub.handler,
            host,
            port,
            ssl=ssl_context,
            process_request=hub.process_request,
            compression=None,
            ping_interval=None,
            max_size=2**20,
            close_timeout=1,
            logger=_frame_quiet_logger(),
        )
        sock_name = self._server.socket.getsockname()
        self.host, self.port = sock_name[0], sock_name[1]
        self.scheme = "wss" if ssl_context is not None else "ws"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="okx-sim-ws", daemon=True
        )
        self._closed = False
        self._thread.start()

    def url(self, kind: str) -> str:
        """``ws://127.0.0.1:PORT/ws/v5/<kind>``."""
        return f"{self.scheme}://{self.host}:{self.port}/ws/v5/{kind}"

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, close every connection, join the threads (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for conn in self.hub.select():
            conn.stop_writer(0.5)
        self._server.shutdown()
        self._thread.join(timeout_s)
