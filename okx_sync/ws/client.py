"""``WSClient``: one self-healing OKX WebSocket with bounded, switchable handler dispatch.

A ``WSClient`` keeps one connection to one OKX WebSocket URL alive for as long
as it runs: it logs in (private/business with credentials), resubscribes every
desired subscription after each reconnect, answers OKX's heartbeat rules,
replaces the connection without a gap when OKX announces an upgrade (notice
64008), and hands every message to the user's handlers through two dispatch
paths (typed and raw), each inline or a bounded worker pool.

Threads (all named, all joined by ``close()``): ``okx-ws-<name>-conn``
(connect / login / resubscribe / reconnect loop; runs lifecycle handlers),
``okx-ws-<name>-heartbeat``, ``okx-ws-<name>-reader`` (one per connection;
runs inline handlers), ``okx-ws-<name>-typed-<i>`` and ``okx-ws-<name>-raw-<i>``
(pool workers), and those of the managed books (``okx-book-<channel>-<instId>``
and its ``-check``), which run while the client is started.

Thread safety: every public method may be called from any thread, including
from inside a handler (``close()`` from a handler does not join the calling
thread). Handlers are never called while an okx_sync lock is held.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from ..auth import Credentials
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import (
    ValidationError,
    WSAuthError,
    WSClosedError,
    WSError,
    WSQueueFullError,
    WSSubscribeError,
    WSTimeoutError,
)
from ..guards import Guard
from ..handler_errors import HandlerErrorSummary, flush_handler_errors, report_handler_error
from ..lifecycle import Owned
from ..models.ws import push_parser
from ..validators import flag, instance, seconds
from .connection import UNSUPPORTED_WS_OPTIONS, Connection, PushMode
from .dispatch import DispatchConfig, DispatchPath, DropReport, SubmitResult
from .frames import DEFAULT_MAX_SIZE
from .managed_book import BookRouter, ManagedOrderBook
from .orders import WS_ORDER_OPS, OrderEntry, OrderRequest
from .policies import BackoffPolicy, ConnectRateLimiter, HeartbeatPolicy
from .protocol import (
    LOGIN_FATAL_CLOSE_CODES,
    LOGIN_RESYNC_CODES,
    NOTICE_RECONNECT_CODE,
    ArgKey,
    SubFrame,
    arg_hint_from_error,
    arg_key,
    args_text,
    batch_frames,
    decode_frame,
    dedupe_handoff,
    fast_push_key,
    is_arg_rejection,
    is_login_fatal,
    login_frame,
    match_hint,
    normalize_args,
    service_of_url,
)
from .supervisor import ConnectionManager

__all__ = ["WSClient", "WSStats", "DispatchConfig", "WS_ORDER_OPS"]

log = logging.getLogger("okx_sync.ws")

F = TypeVar("F", bound=Callable[..., Any])


def _fn_name(fn: Any) -> str:
    """A handler's name for log lines: its qualified name (a callable object's class name)."""
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


_DELIVER = PushMode.DELIVER
_BUFFER = PushMode.BUFFER
_FLUSH = PushMode.FLUSH
_DISCONNECT = SubmitResult.DISCONNECT

# Most pushes a warming connection buffers during make-before-break before the
# handoff is abandoned (the old connection keeps serving until it drops).
_HANDOFF_BUFFER_MAX = 100_000
#: Distinct (channel, instId) of unexpected pushes logged per client (the rest only counted).
_UNEXPECTED_KEYS_LOGGED = 100


@attrs.frozen(kw_only=True)
class WSStats:
    """A frozen snapshot of a ``WSClient`` (``ws.stats()``).

    Times (``last_recv``, ``last_ping``, ``last_pong``) are Unix seconds or None.
    Queue figures are per dispatch path (``typed_*``, ``raw_*``; capacity 0 in
    inline mode). ``typed_dropped``/``raw_dropped`` count messages not
    delivered because a pool was full (``drop`` or ``disconnect`` policy);
    ``*_overflow_disconnects`` the reconnects that the ``disconnect`` policy
    caused. ``desired_subscriptions`` is the number of subscriptions the client
    keeps alive; ``subscriptions_dropped`` those OKX rejected and the client gave up.
    ``login_resyncs``: clock re-syncs after a login refused for its timestamp (60006).
    ``unexpected_pushes`` counts pushes for a channel/instrument the connection
    never subscribed (acknowledged): they are not handed to any handler.
    Thread safety: immutable.
    """

    name: str
    url: str
    running: bool
    connected: bool
    conn_id: str
    last_recv: float | None
    last_ping: float | None
    last_pong: float | None
    connects: int
    reconnects: int
    handoffs: int
    last_error: str
    subscribe_ok: int
    subscribe_error: int
    subscriptions_dropped: int
    desired_subscriptions: int
    typed_mode: str
    raw_mode: str
    typed_queue_len: int
    typed_queue_cap: int
    raw_queue_len: int
    raw_queue_cap: int
    typed_dropped: int
    raw_dropped: int
    typed_high_water: int
    raw_high_water: int
    typed_overflow_disconnects: int
    raw_overflow_disconnects: int
    handler_errors: int
    parse_errors: int
    unexpected_pushes: int
    messages: int
    bytes: int
    login_resyncs: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return attrs.asdict(self)


#: (acked args, failed (arg, code, msg), open args) of one subscribe/unsubscribe request.
SubOutcome = tuple[
    list[dict[str, Any]], list[tuple[dict[str, Any], str, str]], list[dict[str, Any]]
]


class _SubRequest:
    """One subscribe/unsubscribe frame waiting for its per-arg acks (reader fills it)."""

    __slots__ = (
        "req_id",
        "op",
        "args",
        "acked",
        "failed",
        "unresolved",
        "lost",
        "done",
        "lock",
        "background",
    )

    def __init__(self, frame: SubFrame, op: str, background: bool) -> None:
        self.req_id = frame.req_id
        self.op = op
        self.args: dict[ArgKey, dict[str, Any]] = {arg_key(a): a for a in frame.args}
        self.acked: set[ArgKey] = set()
        self.failed: dict[ArgKey, tuple[str, str]] = {}
        self.unresolved: tuple[str, str] | None = None
        self.lost = ""
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.background = background

    def _check(self) -> bool:
        if self.unresolved is not None or len(self.acked) + len(self.failed) >= len(self.args):
            self.done.set()
        return self.done.is_set()

    def ack(self, key: ArgKey) -> bool:
        with self.lock:
            if key in self.args:
                self.acked.add(key)
                self.failed.pop(key, None)
            return self._check()

    def error(self, code: str, msg: str, hint: Mapping[str, str] | None) -> bool:
        with self.lock:
            open_keys = [k for k in self.args if k not in self.acked and k not in self.failed]
            if not is_arg_rejection(code):  # transient (too frequent...): the whole frame failed
                for k in open_keys:
                    self.failed[k] = (code, msg)
                return self._check()
            if hint is not None:
                matched = match_hint(hint, [self.args[k] for k in open_keys])
                if len(matched) == 1:
                    self.failed[arg_key(matched[0])] = (code, msg)
                    return self._check()
            if len(open_keys) == 1:
                self.failed[open_keys[0]] = (code, msg)
            elif open_keys:
                self.unresolved = (code, msg)
            return self._check()

    def fail(self, reason: str) -> None:
        with self.lock:
            self.lost = reason
            self.done.set()

    def detach(self) -> tuple[SubOutcome, bool]:
        """The waiter stops waiting: its ``outcome()``, and whether the request stays pending.

        When args are still open, they alone stay in the request, which turns
        into a background one: a late ack or rejection is then settled like a
        fire-and-forget subscribe's (a rejected arg leaves the desired set).
        Atomic with the reader's updates, so no answer falls between the two.
        """
        with self.lock:
            result = self._outcome()
            if self.done.is_set():
                return result, False
            self.args = {arg_key(a): a for a in result[2]}
            self.acked = set()
            self.failed = {}
            self.background = True
            return result, True

    def outcome(self) -> SubOutcome:
        """(acked, failed (arg, code, msg), open) — open = neither acked nor failed."""
        with self.lock:
            return self._outcome()

    def _outcome(self) -> SubOutcome:
        acked = [a for k, a in self.args.items() if k in self.acked]
        failed = [(self.args[k], c, m) for k, (c, m) in self.failed.items()]
        rest = [a for k, a in self.args.items() if k not in self.acked and k not in self.failed]
        return acked, failed, rest


class _LoginWaiter:
    __slots__ = ("done", "code", "msg", "lost")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.code = ""
        self.msg = ""
        self.lost = ""


class WSClient(OrderEntry, Owned):
    """One OKX WebSocket connection kept alive on background threads.

    ``WSClient(url, credentials=..., ...)`` works standalone; ``client.ws_public()``,
    ``client.ws_private()`` and ``client.ws_business()`` build one that shares
    a ``Client``'s credentials, demo flag, clock offset, request gate and
    instrument cache.

    Options (keyword-only):

    - ``credentials`` (or ``api_key``/``secret_key``/``passphrase``); ``login``:
      True/False, default: log in when credentials are given and the URL is
      ``/private`` or ``/business``.
    - ``ping_interval_s`` (s, < 30; default 20), ``pong_timeout_s`` (default 8):
      a silent connection is detected within their sum. ``backoff``: a
      ``BackoffPolicy`` (0.25 s doubling to 10 s with jitter).
    - ``typed_dispatch`` / ``raw_dispatch``: ``"pool"``, ``"inline"``, a dict
      of ``DispatchConfig`` fields (``mode`` defaults to pool) or a
      ``DispatchConfig`` (``queue_size``, ``workers``, ``overflow`` = block |
      drop | disconnect). Defaults: typed handlers on a pool of one worker
      (order kept, the reader stays free), raw handlers inline (on the
      reader: lowest latency; a handler holding the reader is reported, and
      the heartbeat does not count that time against the connection).
    - ``connect_timeout_s`` (10 s), ``start_timeout_s`` (= connect_timeout_s + 5),
      ``subscribe_timeout_s`` (5 s, resubscribe and login), ``order_timeout_s`` (5 s).
    - ``now_ms``: wall clock in ms for the login timestamp (the Client passes
      its offset-corrected clock); ``resync_time``: a callable
      ``resync_time(since)`` that re-measures the clock offset ``now_ms`` uses
      unless that happened after ``since`` (``clock.monotonic()`` when the
      refused login was sent); when OKX answers a login with 60006 (timestamp
      expired) it is called once and the login sent again (the Client passes
      its own re-sync, shared with REST); a second 60006 before a login
      succeeds, or a failing re-sync, is fatal (``WSAuthError``). ``clock``; ``gate`` (a ``RequestGate``: WS
      order entry draws on the REST order buckets); ``instruments`` (object
      with ``inst_id_code(inst_id) -> int``); ``connect_limiter``;
      ``ws_options`` (extra ``websocket.create_connection`` keywords for the
      HTTP upgrade, e.g. ``header``; ``sslopt`` and ``sockopt`` for the TLS and
      TCP socket; proxy keywords are refused: the client opens the socket itself).
    - ``max_message_size`` (bytes, default 16 MiB): the largest message accepted,
      a fragmented one's frame headers counted (empty fragments count too); a
      larger one closes the connection with 1009 and it reconnects. Pushes the
      JSON decoder refuses (nested too deeply, a number too long) are counted in
      ``parse_errors`` and reported to ``on_error`` as ``WSError``; the
      connection stays up.
    - The handshake (TCP, TLS, HTTP upgrade) of each attempt ends within
      ``connect_timeout_s``; every write (subscribe, order, ping, pong, close) has
      a deadline of ``pong_timeout_s`` s: a server that stops reading is
      disconnected within ``ping_interval_s + pong_timeout_s``.

    Raises ``ValidationError`` for bad options (a timeout that is not a positive
    finite number, a non-bool ``login``, a ``backoff`` that is not a
    ``BackoffPolicy``...). Thread safety: every method may
    be called from any thread.
    """

    def __init__(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        api_key: str | None = None,
        secret_key: str | None = None,
        passphrase: str | None = None,
        login: bool | None = None,
        name: str | None = None,
        ping_interval_s: float = 20.0,
        pong_timeout_s: float = 8.0,
        backoff: BackoffPolicy | None = None,
        typed_dispatch: DispatchConfig | str | Mapping[str, Any] | None = None,
        raw_dispatch: DispatchConfig | str | Mapping[str, Any] | None = None,
        connect_timeout_s: float = 10.0,
        start_timeout_s: float | None = None,
        subscribe_timeout_s: float = 5.0,
        order_timeout_s: float = 5.0,
        now_ms: Callable[[], int] | None = None,
        resync_time: Callable[[float], object] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        gate: Any = None,
        instruments: Any = None,
        connect_limiter: ConnectRateLimiter | None = None,
        ws_options: Mapping[str, Any] | None = None,
        rng: random.Random | None = None,
        max_message_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ValidationError(f"WS url must start with ws:// or wss://, got {url!r}")
        if credentials is None:
            try:
                credentials = Credentials.from_parts(api_key, secret_key, passphrase)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        service = service_of_url(url)
        if login is not None:
            flag(login, name="login")
        if login is None:
            login = credentials is not None and service in ("private", "business")
        if login and credentials is None:
            raise ValidationError("login=True needs credentials (api_key, secret_key, passphrase)")
        for label, value in (
            ("connect_timeout_s", connect_timeout_s),
            ("subscribe_timeout_s", subscribe_timeout_s),
            ("order_timeout_s", order_timeout_s),
        ):
            seconds(value, name=label, positive=True)
        seconds(start_timeout_s, name="start_timeout_s", positive=True, optional=True)
        instance(backoff, name="backoff", kind=BackoffPolicy, optional=True)
        refused = sorted(UNSUPPORTED_WS_OPTIONS.intersection(ws_options or {}))
        if refused:
            raise ValidationError(
                f"ws_options {', '.join(refused)} not supported (the client opens the socket)"
            )
        if type(max_message_size) is not int or max_message_size < 125:
            raise ValidationError(
                f"max_message_size must be an int >= 125 (bytes), got {max_message_size!r}"
            )
        try:
            self._heartbeat = HeartbeatPolicy(
                ping_interval_s=ping_interval_s, pong_timeout_s=pong_timeout_s
            )
            typed_cfg = DispatchConfig.coerce(typed_dispatch)
            raw_cfg = DispatchConfig.coerce("inline" if raw_dispatch is None else raw_dispatch)
        except (ValueError, TypeError) as exc:
            raise ValidationError(str(exc)) from None
        self.url = url
        self.name = name or service
        self._credentials = credentials
        self._login = bool(login)
        self._backoff = backoff or BackoffPolicy()
        self._connect_timeout_s = connect_timeout_s
        self._start_timeout_s = (
            start_timeout_s if start_timeout_s is not None else connect_timeout_s + 5.0
        )
        self._subscribe_timeout_s = subscribe_timeout_s
        self._order_timeout_s = order_timeout_s
        self._clock = clock
        self._now_ms = now_ms or (lambda: int(clock.time() * 1000))
        if resync_time is not None and not callable(resync_time):
            raise ValidationError(f"resync_time must be callable, got {resync_time!r}")
        self._resync_time = resync_time
        # True from a clock re-sync for a refused login until a login succeeds:
        # a second refusal then is fatal (the re-sync did not help).
        self._login_resynced = False
        self._gate = gate
        self._instruments = instruments
        self._limiter = connect_limiter
        self._ws_options = dict(ws_options or {})
        self._max_message_size = max_message_size
        self._rng = rng
        self._ids = itertools.count(1)

        self._lock = threading.Lock()  # handler tables, state, desired set
        # channel -> (model builder or None, handlers); replaced, never mutated
        self._typed_handlers: dict[str, tuple[Any, tuple[Callable[[Any], Any], ...]]] = {}
        self._raw_handlers: tuple[Callable[[Any], Any], ...] = ()
        self._event_handlers: tuple[Callable[[Any], Any], ...] = ()
        self._error_handlers: tuple[Callable[[BaseException], Any], ...] = ()
        self._connect_handlers: tuple[Callable[[], Any], ...] = ()
        self._disconnect_handlers: tuple[Callable[[str], Any], ...] = ()
        self._reconnect_handlers: tuple[Callable[[], Any], ...] = ()
        self._push_listeners: tuple[Callable[[dict[str, Any]], Any], ...] = ()
        self._listener_running: Any = None  # the push listener the reader is calling now
        self._desired: dict[ArgKey, dict[str, Any]] = {}
        self._guards: tuple[Guard, ...] = ()  # order-entry guards (safe mode); replaced
        # connection -> [pongs still awaited, event] (handoff barrier; supervisor + reader)
        self._pong_waiters: dict[Connection, list[Any]] = {}

        prefix = f"okx-ws-{self.name}"
        self._typed = DispatchPath(
            "typed",
            self._deliver_typed,
            typed_cfg,
            thread_prefix=f"{prefix}-typed",
            on_error=self._dispatch_error,
            monotonic=clock.monotonic,
            on_drops=self._on_drops,
        )
        self._raw = DispatchPath(
            "raw",
            self._deliver_raw,
            raw_cfg,
            thread_prefix=f"{prefix}-raw",
            on_error=self._dispatch_error,
            monotonic=clock.monotonic,
            on_drops=self._on_drops,
        )
        self._manager: ConnectionManager | None = None
        self._stats_lock = threading.Lock()
        self._last_error = ""
        self._subscribe_ok = 0
        self._subscribe_error = 0
        self._subs_dropped = 0
        self._handler_errors = 0
        self._handler_log = HandlerErrorSummary(monotonic=clock.monotonic)
        self._parse_errors = 0
        self._unexpected_pushes = 0
        self._unexpected_keys: set[tuple[str, str]] = set()
        self._connects = 0
        self._reconnects = 0
        self._handoffs = 0
        self._login_resyncs = 0
        self._messages = 0
        self._bytes = 0
        self._books = BookRouter(self)  # managed order books (ws/managed_book.py)

    def __repr__(self) -> str:
        return f"WSClient(name={self.name!r}, url={self.url!r}, login={self._login})"

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout_s: float | None = None) -> WSClient:
        """Connect (and log in where needed) and return once ready; resubscribes the desired set.

        Blocks until the first connection is ready, at most ``timeout_s`` s
        (default ``start_timeout_s``), retrying failed connects with backoff.
        Raises ``WSAuthError`` when login is refused, ``WSError`` when no
        connection could be made in time (the cause chained); no thread is
        left running then. Calling ``start`` on a running client does nothing;
        after ``close()`` — or after the loop stopped for good (login refused)
        — it starts afresh. Returns ``self``.
        """
        stopped = self._manager
        if stopped is not None and not stopped.running:
            self.close()  # the loop ended (login refused): join what is left, then restart
        with self._lock:
            if self._manager is not None:
                return self
            self._owned_started()  # listed again by the Client that built it
            manager = ConnectionManager(
                self.url,
                self,
                name=self.name,
                clock=self._clock,
                backoff=self._backoff,
                heartbeat=self._heartbeat,
                limiter=self._limiter,
                connect_timeout_s=self._connect_timeout_s,
                options=self._ws_options,
                rng=self._rng,
                max_message_size=self._max_message_size,
            )
            self._manager = manager
            self._login_resynced = False  # a fresh start may re-sync for a refused login again
        self._books.resume()  # the managed books' threads run while the client is started
        self._typed.start()
        self._raw.start()
        try:
            manager.start(self._start_timeout_s if timeout_s is None else timeout_s)
        except BaseException:
            self._books.suspend(1.0)
            self._typed.stop(1.0)
            self._raw.stop(1.0)
            with self._lock:
                if self._manager is manager:
                    self._manager = None
            self._collect(manager)
            raise
        log.info("ws %s started: %s", self.name, self.url, extra={"ws": self.name, "url": self.url})
        return self

    def close(self, timeout_s: float = 2.0) -> bool:
        """Close the connection and join every thread this client started within ``timeout_s``.

        That includes the threads of its managed books (``okx-book-...``): the
        books stay open and start them again with the next ``start()``.
        Idempotent. Messages still queued in a pool are discarded; blocking
        calls waiting on the connection raise. ``start()`` may be called again
        afterwards (the desired subscriptions are kept and resubscribed).
        Returns True when every thread ended in time. The ``Client`` that built
        it stops listing it (``client.close()`` then leaves it alone) until it
        starts again.
        """
        self._owned_closed()
        with self._lock:
            manager = self._manager
            self._manager = None
        if manager is None:
            return True
        deadline = self._clock.monotonic() + timeout_s
        ok = manager.stop(timeout_s * 0.5)
        self._collect(manager)
        ok = self._books.suspend(max(0.05, (deadline - self._clock.monotonic()) / 3)) and ok
        left = max(0.05, deadline - self._clock.monotonic())
        ok = self._typed.stop(left / 2) and ok
        ok = self._raw.stop(max(0.05, deadline - self._clock.monotonic())) and ok
        flush_handler_errors(log, self._handler_log, f"ws {self.name}: ", {"ws": self.name})
        if ok:
            log.info(
                "ws %s closed (threads joined)",
                self.name,
                extra={"ws": self.name, "threads_joined": ok},
            )
        else:
            log.warning(
                "ws %s closed, but a thread of it did not end within %.1f s",
                self.name,
                timeout_s,
                extra={"ws": self.name, "threads_joined": ok},
            )
        return ok

    def __enter__(self) -> WSClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def started(self) -> bool:
        """True between ``start()`` and ``close()``, also when the loop stopped for good
        (login refused) — what ``Client.ws_clients()`` calls live."""
        return self._manager is not None

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``close()`` unless the loop stopped for good (login refused)."""
        m = self._manager
        return m is not None and m.running

    def _collect(self, manager: ConnectionManager) -> None:
        with self._stats_lock:
            self._connects += manager.connects
            self._reconnects += manager.reconnects
            self._handoffs += manager.handoffs
            self._messages += manager.retired_messages
            self._bytes += manager.retired_bytes

    # ------------------------------------------------------------------ handlers
    def _add(self, attr: str, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise ValidationError(f"handler must be callable, got {fn!r}")
        with self._lock:
            setattr(self, attr, (*getattr(self, attr), fn))

    def on(self, channel: str, fn: F) -> F:
        """Call ``fn(item)`` for every data item pushed on ``channel`` (e.g. ``"tickers"``).

        ``item`` is a typed model for channels that have one (tickers, trades,
        books*, bbo-tbt, candle*, orders, account, positions,
        balance_and_position, fills), else the item dict. Runs on the typed
        dispatch path. Returns ``fn``. Raises ``ValidationError`` for a bad channel/fn.
        """
        if not isinstance(channel, str) or not channel:
            raise ValidationError("channel must be a non-empty string")
        if not callable(fn):
            raise ValidationError(f"handler must be callable, got {fn!r}")
        with self._lock:
            table = dict(self._typed_handlers)
            _parser, handlers = table.get(channel, (None, ()))
            table[channel] = (push_parser(channel), (*handlers, fn))
            self._typed_handlers = table
        return fn

    def on_raw(self, fn: F) -> F:
        """Call ``fn(msg)`` with every decoded message (pushes, events, replies) on the raw path."""
        self._add("_raw_handlers", fn)
        return fn

    def on_event(self, fn: F) -> F:
        """Call ``fn(event_dict)`` for every ``event`` message (subscribe, error, notice...) on the typed path."""
        self._add("_event_handlers", fn)
        return fn

    def on_error(self, fn: F) -> F:
        """Call ``fn(exc)`` for every error: handler exceptions, error events, rejected
        subscriptions (``WSSubscribeError``), connection failures, ``WSAuthError``,
        and each drop episode of a pool under ``overflow="drop"`` (``WSQueueFullError``:
        pushes were lost, reconcile). Runs on the thread that saw the error (often
        the reader: hand slow work to another thread); an exception in ``fn`` is logged.
        """
        self._add("_error_handlers", fn)
        return fn

    def on_connect(self, fn: F) -> F:
        """Call ``fn()`` each time a connection is ready (logged in and resubscribed)."""
        self._add("_connect_handlers", fn)
        return fn

    def on_disconnect(self, fn: F) -> F:
        """Call ``fn(reason)`` each time the live connection is lost."""
        self._add("_disconnect_handlers", fn)
        return fn

    def on_reconnect(self, fn: F) -> F:
        """Call ``fn()`` after a reconnect is ready (re-logged-in and resubscribed).

        Pushes may have been missed while disconnected: reconcile here (query
        open orders, positions, balances; see the RUNBOOK). Runs on the
        ``okx-ws-<name>-conn`` thread.
        """
        self._add("_reconnect_handlers", fn)
        return fn

    def off(self, fn: Callable[..., Any]) -> None:
        """Remove ``fn`` from every handler list it is in."""
        with self._lock:
            self._typed_handlers = {
                ch: (parser, tuple(h for h in hs if h is not fn))
                for ch, (parser, hs) in self._typed_handlers.items()
                if any(h is not fn for h in hs)
            }
            for attr in (
                "_raw_handlers",
                "_event_handlers",
                "_error_handlers",
                "_connect_handlers",
                "_disconnect_handlers",
                "_reconnect_handlers",
                "_push_listeners",
            ):
                setattr(self, attr, tuple(h for h in getattr(self, attr) if h is not fn))

    def add_push_listener(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        """Internal hook (used by ``ManagedOrderBook``): call ``fn(msg)`` inline on the reader.

        ``fn`` receives every decoded push, in order, after make-before-break
        deduplication and before typed/raw dispatch, whatever the dispatch
        mode. It must be quick and must not block; its exceptions are counted
        as handler errors and reported. Remove with ``off(fn)``.
        """
        self._add("_push_listeners", fn)

    def set_dispatch(
        self,
        *,
        typed: DispatchConfig | str | Mapping[str, Any] | None = None,
        raw: DispatchConfig | str | Mapping[str, Any] | None = None,
    ) -> None:
        """Switch the typed and/or raw dispatch while running (None leaves a path as is).

        The switch takes effect at the next message after the old pool has
        drained: nothing is lost, duplicated or reordered across it. Raises
        ``ValidationError`` for a bad config.
        """
        try:
            typed_cfg = None if typed is None else DispatchConfig.coerce(typed)
            raw_cfg = None if raw is None else DispatchConfig.coerce(raw)
        except (ValueError, TypeError) as exc:
            raise ValidationError(str(exc)) from None
        if typed_cfg is not None:
            self._typed.configure(typed_cfg)
        if raw_cfg is not None:
            self._raw.configure(raw_cfg)
        log.info(
            "ws %s: dispatch change requested (typed %s, raw %s)",
            self.name,
            typed_cfg.mode if typed_cfg else "unchanged",
            raw_cfg.mode if raw_cfg else "unchanged",
            extra={
                "ws": self.name,
                "typed": typed_cfg.mode if typed_cfg else None,
                "raw": raw_cfg.mode if raw_cfg else None,
            },
        )

    # ------------------------------------------------------------------ reporting
    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._handler_error(exc, getattr(fn, "__name__", repr(fn)))

    def reader_handler(self, conn: Connection) -> str | None:
        """SessionHooks: the user handler running on ``conn``'s reader now, or None.

        Only inline paths run handlers on the reader; push listeners always do.
        """
        listener = self._listener_running
        if listener is not None:
            return f"push listener {_fn_name(listener)}"
        for path in (self._typed, self._raw):
            running = path.running
            if running is not None and path.mode == "inline":
                channel, fn = running
                if path is self._raw:
                    label = "on_raw"
                else:
                    label = "on_event" if channel is None else f"on({channel!r})"
                return f"{label} {_fn_name(fn)}"
        return None

    def _handler_error(self, exc: BaseException, where: str) -> None:
        with self._stats_lock:
            self._handler_errors += 1
        report_handler_error(
            log, self._handler_log, where, exc, f"ws {self.name}: ", {"ws": self.name}
        )
        self._emit_error(exc, record=False)

    def _dispatch_error(self, exc: BaseException) -> None:
        self._handler_error(exc, "dispatch")

    def _on_drops(self, path: str, report: DropReport) -> None:
        """A drop episode ended: WARNING (rate-limited by the policy), then ``on_error``."""
        err = WSQueueFullError(path, report.dropped, report.since)
        if report.log:
            more = ""
            if report.unlogged_episodes:
                more = (
                    f" ({report.unlogged_episodes} earlier episode(s), "
                    f"{report.unlogged_dropped:,} message(s), reported without a log line)"
                )
            log.warning(
                "ws %s: %s handler queue full: %s message(s) dropped over %.3g s "
                "(overflow=drop)%s; reconcile what they carried, or use overflow=block",
                self.name,
                path,
                f"{report.dropped:,}",
                report.until - report.since,
                more,
                extra={
                    "ws": self.name,
                    "path": path,
                    "dropped": report.dropped,
                    "duration_s": round(report.until - report.since, 3),
                },
            )
        self._note_error(str(err))
        self._emit_error(err, record=False)

    def _emit_error(self, exc: BaseException, *, record: bool = True) -> None:
        if record:
            with self._stats_lock:
                self._last_error = f"{type(exc).__name__}: {exc}"
        for fn in self._error_handlers:
            try:
                fn(exc)
            except Exception as handler_exc:
                name = f"on_error {getattr(fn, '__name__', fn)!s}"
                report_handler_error(
                    log,
                    self._handler_log,
                    name,
                    handler_exc,
                    f"ws {self.name}: ",
                    {"ws": self.name},
                )

    def _note_error(self, text: str) -> None:
        with self._stats_lock:
            self._last_error = text

    # ------------------------------------------------------------------ reader hot path
    def on_message(self, conn: Connection, data: bytes) -> None:
        """SessionHooks: one text frame from ``conn`` (reader thread)."""
        mode = conn.push_mode
        if mode is not _DELIVER and mode is _FLUSH:
            self._flush(conn)
        if data == b"pong":
            conn.last_pong = conn.last_recv
            if self._pong_waiters:
                self._pong_arrived(conn)
            return
        if (
            (self._typed.pooled or self._raw.pooled)
            and mode is _DELIVER
            and not conn.track_last
            and self._deferrable(conn, data)
        ):
            return
        msg = self._decode(data)
        if msg is None:
            return
        if "data" in msg and "arg" in msg:
            if conn.push_mode is _BUFFER and self._buffer(conn, msg):
                return
            self._push(conn, msg)
        else:
            self._control(conn, msg)

    def _decode(self, data: bytes) -> dict[str, Any] | None:
        """The JSON object in a text frame; None (counted in ``parse_errors`` and
        reported to ``on_error`` as a ``WSError``) when it cannot be decoded: not
        JSON, not an object, nested too deeply or a number too long (reader or worker)."""
        try:
            msg = decode_frame(data.decode())  # str first: faster than json's bytes path
        except ValueError as exc:
            problem = str(exc)
        else:
            if type(msg) is dict:
                return msg
            problem = f"a JSON {type(msg).__name__}, not an object"
        with self._stats_lock:
            self._parse_errors += 1
        log.warning(
            "ws %s: undecodable frame (%d bytes): %s: %r",
            self.name,
            len(data),
            problem,
            data[:80],
            extra={"ws": self.name, "size": len(data), "error": problem},
        )
        self._emit_error(WSError(f"cannot decode a message of {len(data)} bytes: {problem}"))
        return None

    def _deferrable(self, conn: Connection, data: bytes) -> bool:
        """Hand an undecoded push to the one pool that consumes it; True when done.

        Decoding in the worker instead of the reader keeps the message's
        objects in one thread (allocating them in the reader and freeing them
        in a worker costs more than the decoding itself). Only when exactly
        one path consumes the push, that path is a pool, and no push listener
        needs it inline.
        """
        if self._push_listeners:
            return False
        raw = bool(self._raw_handlers)
        if raw and not self._raw.pooled:
            return False
        if not raw and not self._typed.pooled:
            return False
        key = fast_push_key(data)
        if key is None:
            return False
        keys = conn.push_keys
        if key not in keys and (key[0], "") not in keys:
            self._unexpected_push(key)
            return True
        typed = key[0] in self._typed_handlers
        if typed and raw:
            return False
        path = self._raw if raw else self._typed
        if not typed and not raw:
            return True  # nobody listens to this channel
        if path.submit(key, data, conn.should_stop) is _DISCONNECT:
            self._overflow_disconnect(conn, path.name)
        return True

    def _push(self, conn: Connection, msg: dict[str, Any]) -> None:
        arg = msg["arg"]
        channel = arg.get("channel", "")
        key = (channel, arg.get("instId", ""))
        keys = conn.push_keys
        if key not in keys and (channel, "") not in keys:
            self._unexpected_push(key)
            return
        if conn.track_last:
            conn.last_data[arg_key(arg)] = msg["data"]
        if self._push_listeners:
            for fn in self._push_listeners:
                self._listener_running = fn
                self._call(fn, msg)
            self._listener_running = None
        entry = self._typed_handlers.get(channel)
        if entry is not None:
            if self._typed.direct:  # inline: skip the dispatch layer on the hot path
                self._typed_push(msg, arg, channel, entry)
            elif self._typed.submit(key, msg, conn.should_stop) is _DISCONNECT:
                self._overflow_disconnect(conn, "typed")
        if self._raw_handlers:
            if self._raw.submit(key, msg, conn.should_stop) is _DISCONNECT:
                self._overflow_disconnect(conn, "raw")

    def _unexpected_push(self, key: tuple[str, str]) -> None:
        """A push for a channel/instrument this connection never subscribed: count, drop."""
        with self._stats_lock:
            self._unexpected_pushes += 1
            first = key not in self._unexpected_keys
            if first and len(self._unexpected_keys) < _UNEXPECTED_KEYS_LOGGED:
                self._unexpected_keys.add(key)
            else:
                first = False
        if first:  # once per key (bounded); the count is in stats()
            log.warning(
                "ws %s: push for %s %s, which this connection never subscribed; dropped (%s)",
                self.name,
                key[0],
                key[1] or "(no instId)",
                self.url,
                extra={"ws": self.name, "channel": key[0], "inst_id": key[1], "url": self.url},
            )

    def _overflow_disconnect(self, conn: Connection, path: str) -> None:
        reason = f"{path} handler queue full (overflow=disconnect)"
        if not conn.stopping:
            log.warning(
                "ws %s: %s; disconnecting %s",
                self.name,
                reason,
                self.url,
                extra={"ws": self.name, "path": path, "url": self.url},
            )
            self._note_error(reason)
            conn.abort(reason)

    def _buffer(self, conn: Connection, msg: dict[str, Any]) -> bool:
        """Buffer a push on a warming connection; False when it just took over."""
        with conn.buffer_lock:
            if conn.push_mode is _BUFFER:
                if len(conn.buffer) >= _HANDOFF_BUFFER_MAX:
                    conn.abort("make-before-break buffer full")
                    return True
                conn.buffer.append(msg)
                return True
        self._flush(conn)
        return False

    def _flush(self, conn: Connection) -> None:
        with conn.buffer_lock:
            if conn.push_mode is not _FLUSH:
                return
            items = conn.buffer
            conn.buffer = []
            conn.push_mode = _DELIVER
        for msg in items:
            self._push(conn, msg)

    def _deliver_typed(self, msg: dict[str, Any] | bytes | None) -> None:
        if type(msg) is bytes:
            msg = self._decode(msg)
            if msg is None:
                return
        assert type(msg) is dict
        if "event" in msg:
            path = self._typed
            for fn in self._event_handlers:
                path.running = (None, fn)
                self._call(fn, msg)
            path.running = None
            return
        arg = msg["arg"]
        channel = arg.get("channel", "")
        entry = self._typed_handlers.get(channel)
        if entry is not None:
            self._typed_push(msg, arg, channel, entry)

    def _typed_push(
        self,
        msg: dict[str, Any],
        arg: dict[str, Any],
        channel: str,
        entry: tuple[Any, tuple[Callable[[Any], Any], ...]],
    ) -> None:
        """Build each data item's model and call the channel's handlers (reader or worker)."""
        parse, handlers = entry
        action = msg.get("action")
        path = self._typed
        for item in msg["data"]:
            if parse is None:
                obj: Any = item
            else:
                try:
                    obj = parse(arg, item, action)
                except Exception as exc:
                    with self._stats_lock:
                        self._parse_errors += 1
                    self._emit_error(
                        WSError(f"cannot build the {channel} model: {type(exc).__name__}: {exc}")
                    )
                    continue
            for fn in handlers:
                path.running = (channel, fn)
                try:
                    fn(obj)
                except Exception as exc:
                    self._handler_error(exc, f"on({channel!r})")
        path.running = None

    def _deliver_raw(self, msg: dict[str, Any] | bytes | None) -> None:
        if type(msg) is bytes:
            msg = self._decode(msg)
            if msg is None:
                return
        path = self._raw
        for fn in self._raw_handlers:
            path.running = (None, fn)
            try:
                fn(msg)
            except Exception as exc:
                self._handler_error(exc, "on_raw")
        path.running = None

    # ------------------------------------------------------------------ control messages
    def _control(self, conn: Connection, msg: dict[str, Any]) -> None:
        event = msg.get("event")
        if event is None:
            if "id" in msg and "op" in msg:
                self._on_reply(conn, msg)
        elif event == "subscribe" or event == "unsubscribe":
            self._on_ack(conn, msg, event)
        elif event == "error":
            self._on_error_event(conn, msg)
        elif event == "login":
            self._on_login(conn, msg)
        elif event == "notice":
            self._on_notice(conn, msg)
        elif event == "channel-conn-count-error":
            self._emit_error(
                WSSubscribeError(
                    "channel-conn-count-error",
                    f"too many connections on channel {msg.get('channel')} "
                    f"(connCount {msg.get('connCount')})",
                    {"channel": msg.get("channel")},
                )
            )
        if "connId" in msg and not conn.conn_id:
            conn.conn_id = str(msg["connId"])
        if event is not None and self._event_handlers:
            if self._typed.submit(("", ""), msg, conn.should_stop) is _DISCONNECT:
                self._overflow_disconnect(conn, "typed")
        if self._raw_handlers:
            if self._raw.submit(("", ""), msg, conn.should_stop) is _DISCONNECT:
                self._overflow_disconnect(conn, "raw")

    def _on_ack(self, conn: Connection, msg: dict[str, Any], op: str) -> None:
        arg = msg.get("arg") or {}
        key = arg_key(arg)
        # A push's arg repeats the subscribed one (plus uid): its (channel, instId)
        # is looked up in push_keys; an arg without instId (instType, instFamily,
        # ccy...) admits every push of its channel.
        pkey = (str(arg.get("channel", "")), str(arg.get("instId", "")))
        if op == "subscribe":
            if key not in conn.subscribed:
                conn.subscribed.add(key)
                conn.push_keys[pkey] = conn.push_keys.get(pkey, 0) + 1
            with self._stats_lock:
                self._subscribe_ok += 1
        elif key in conn.subscribed:
            conn.subscribed.discard(key)
            left = conn.push_keys.get(pkey, 1) - 1
            if left > 0:
                conn.push_keys[pkey] = left
            else:
                conn.push_keys.pop(pkey, None)
        req = conn.pending.get(str(msg.get("id") or ""))
        if not isinstance(req, _SubRequest):
            req = next(
                (
                    r
                    for r in list(conn.pending.values())
                    if isinstance(r, _SubRequest)
                    and r.op == op
                    and key in r.args
                    and key not in r.acked
                ),
                None,
            )
        if req is not None and req.ack(key) and req.background:
            self._settle_background(conn, req)

    def _on_error_event(self, conn: Connection, msg: dict[str, Any]) -> None:
        code = str(msg.get("code", ""))
        text = str(msg.get("msg", ""))
        rid = str(msg.get("id") or "")
        pending = conn.pending.get(rid) if rid else None
        hint = arg_hint_from_error(msg)
        if pending is None and not rid and conn.login_waiter is None and hint is not None:
            # OKX versions that do not echo the id: find the request by the arg hint
            pending = next(
                (
                    r
                    for r in list(conn.pending.values())
                    if isinstance(r, _SubRequest) and match_hint(hint, r.args.values())
                ),
                None,
            )
        if isinstance(pending, _SubRequest):
            with self._stats_lock:
                self._subscribe_error += 1
            log.warning(
                "ws %s: %s error %s %r for %s (%s)",
                self.name,
                pending.op,
                code,
                text,
                args_text([hint] if hint is not None else list(pending.args.values())),
                self.url,
                extra={
                    "ws": self.name,
                    "code": code,
                    "okx_msg": text,
                    "op": pending.op,
                    "id": pending.req_id,
                },
            )
            if pending.error(code, text, hint) and pending.background:
                self._settle_background(conn, pending)
            return
        if isinstance(pending, OrderRequest):
            conn.pending.pop(rid, None)
            pending.reply = {"id": rid, "op": pending.op, "code": code, "msg": text, "data": []}
            pending.done.set()
            return
        waiter = conn.login_waiter
        if waiter is not None and not waiter.done.is_set():
            waiter.code, waiter.msg = code, text
            waiter.done.set()
            return
        log.warning(
            "ws %s: error event %s %r (%s)",
            self.name,
            code,
            text,
            self.url,
            extra={"ws": self.name, "code": code, "okx_msg": text},
        )
        self._emit_error(WSError(f"OKX error event {code}: {text}"))

    def _on_login(self, conn: Connection, msg: dict[str, Any]) -> None:
        waiter = conn.login_waiter
        if waiter is not None:
            waiter.code = str(msg.get("code", "0"))
            waiter.msg = str(msg.get("msg", ""))
            waiter.done.set()

    def _on_notice(self, conn: Connection, msg: dict[str, Any]) -> None:
        code = str(msg.get("code", ""))
        log.info(
            "ws %s: notice %s %r",
            self.name,
            code,
            msg.get("msg", ""),
            extra={"ws": self.name, "code": code, "okx_msg": msg.get("msg", "")},
        )
        manager = self._manager
        if code == NOTICE_RECONNECT_CODE and manager is not None and conn is manager.current:
            conn.track_last = True
            manager.request_handoff(conn)

    def _on_reply(self, conn: Connection, msg: dict[str, Any]) -> None:
        req = conn.pending.pop(str(msg.get("id")), None)
        if isinstance(req, OrderRequest):
            req.reply = msg
            req.done.set()
        else:
            log.warning(
                "ws %s: reply without a waiting request (op %s, id %s, code %s)",
                self.name,
                msg.get("op"),
                msg.get("id"),
                msg.get("code"),
                extra={
                    "ws": self.name,
                    "id": msg.get("id"),
                    "op": msg.get("op"),
                    "code": msg.get("code"),
                },
            )

    # ------------------------------------------------------------------ SessionHooks
    def on_conn_closed(self, conn: Connection) -> None:
        """SessionHooks: the reader of ``conn`` ended; fail everything waiting on it."""
        reason = conn.describe_end()
        waiter = conn.login_waiter
        if waiter is not None and not waiter.done.is_set():
            waiter.lost = reason
            waiter.done.set()
        for rid, req in list(conn.pending.items()):
            conn.pending.pop(rid, None)
            if isinstance(req, _SubRequest):
                req.fail(reason)
            elif isinstance(req, OrderRequest):
                req.lost = reason
                req.done.set()

    def prepare(self, conn: Connection) -> None:
        """SessionHooks: log in (when configured) and resubscribe on a fresh connection."""
        if self._login:
            self._log_in(conn)
        with self._lock:
            args = list(self._desired.values())
        if args:
            self._subscribe_on(conn, args, reason="resubscribe")
        if conn.push_mode is _BUFFER:  # make-before-break: conn will replace the live one
            self._drain_retiring(conn)

    def _drain_retiring(self, new: Connection) -> None:
        """Before ``new`` (subscribed, buffering) replaces the live connection (supervisor).

        The live connection unsubscribes and waits for the acks: its reader
        has then delivered every push the server sent it, so retiring it loses
        nothing that was sent before ``new`` subscribed. Then a ping on ``new``
        is answered: its buffer holds every push sent on it before the old
        connection's last one, so ``dedupe_handoff`` sees everything both
        carried (nothing delivered twice). Failures only log: the handoff then
        goes on as a plain switch.
        """
        manager = self._manager
        old = manager.current if manager is not None else None
        if old is None or old is new or old.stopping:
            return
        deadline = self._clock.monotonic() + self._subscribe_timeout_s
        try:
            keys = list(old.subscribed)
            if keys:
                with self._lock:
                    args = [self._desired.get(k) or {a: v for a, v in k} for k in keys]
                self._sub_op(old, "unsubscribe", args, deadline)
            self._pong_barrier(new, deadline)
        except WSError as exc:
            log.warning(
                "ws %s: handoff: the old connection was not drained: %s: %s",
                self.name,
                type(exc).__name__,
                exc,
                extra={"ws": self.name, "error": f"{type(exc).__name__}: {exc}"},
            )

    def _pong_barrier(self, conn: Connection, deadline: float) -> None:
        """Ping ``conn`` and wait for its answer (pongs come in order, after what was sent before)."""
        # a heartbeat ping still unanswered is answered first
        outstanding = conn.last_ping is not None and (
            conn.last_pong is None or conn.last_pong < conn.last_ping
        )
        waiter: list[Any] = [2 if outstanding else 1, threading.Event()]
        self._pong_waiters[conn] = waiter
        try:
            conn.ping()
            if not waiter[1].wait(max(0.0, deadline - self._clock.monotonic())):
                raise WSTimeoutError(f"no pong from the new connection of {self.name}")
        finally:
            self._pong_waiters.pop(conn, None)

    def _pong_arrived(self, conn: Connection) -> None:
        waiter = self._pong_waiters.get(conn)
        if waiter is not None:
            waiter[0] -= 1
            if waiter[0] <= 0:
                waiter[1].set()

    def _log_in(self, conn: Connection) -> None:
        code, text, sent = self._send_login(conn)
        if code in LOGIN_RESYNC_CODES and self._resync_time is not None:
            if self._login_resynced:
                raise WSAuthError(code, f"{text} (again after a clock re-sync)")
            self._resync_for_login(code, text, sent)
            if conn.stopping:  # OKX closed it after the refusal: reconnect, log in afresh
                raise WSError(f"login refused ({code} {text}); clock re-synced, reconnecting")
            code, text, _sent = self._send_login(conn)
        if code != "0":
            if is_login_fatal(code):
                raise WSAuthError(code, text)
            raise WSError(f"login failed: {code} {text}")
        self._login_resynced = False
        log.info(
            "ws %s logged in (connection %s)",
            self.name,
            conn.seq,
            extra={"ws": self.name, "seq": conn.seq},
        )

    def _send_login(self, conn: Connection) -> tuple[str, str, float]:
        """Send one login on ``conn`` and wait for its answer: ``(code, msg, sent_at)``.

        Raises ``WSAuthError`` (closed with a login-refused close code),
        ``WSError`` (connection lost) or ``WSTimeoutError`` (no answer)."""
        creds = self._credentials
        assert creds is not None
        waiter = _LoginWaiter()
        conn.login_waiter = waiter
        sent = self._clock.monotonic()
        conn.ops.take(sent)
        conn.send(login_frame(creds, self._now_ms() // 1000))
        waiter.done.wait(self._subscribe_timeout_s)
        conn.login_waiter = None
        if waiter.lost or not waiter.done.is_set():
            conn.join(0.5)
            if conn.close_code in LOGIN_FATAL_CLOSE_CODES:
                raise WSAuthError(str(conn.close_code), conn.close_reason or "login failed")
            if waiter.lost:
                raise WSError(f"connection lost during login: {waiter.lost}")
            raise WSTimeoutError(f"no login answer within {self._subscribe_timeout_s:g} s")
        return waiter.code, waiter.msg, sent

    def _resync_for_login(self, code: str, text: str, sent: float) -> None:
        """Re-sync the clock after a login refused for its timestamp; raises
        ``WSAuthError`` (chained) when the re-sync fails."""
        resync = self._resync_time
        assert resync is not None
        log.warning(
            "ws %s: login refused for its timestamp (%s %s): re-syncing the clock and logging in again",
            self.name,
            code,
            text,
            extra={"ws": self.name, "code": code, "okx_msg": text},
        )
        self._login_resynced = True
        with self._stats_lock:
            self._login_resyncs += 1
        try:
            resync(sent)
        except Exception as exc:
            log.error(
                "ws %s: clock re-sync after login %s failed: %s: %s",
                self.name,
                code,
                type(exc).__name__,
                exc,
                extra={"ws": self.name, "error": f"{type(exc).__name__}: {exc}"},
            )
            raise WSAuthError(code, f"{text} (clock re-sync failed: {exc})") from exc

    def _subscribe_on(self, conn: Connection, args: list[dict[str, Any]], *, reason: str) -> None:
        """Subscribe ``args`` on ``conn`` and wait; rejected args leave the desired set.

        Raises ``WSError`` when OKX refused some for now (transient code): the
        connection is then replaced after a backoff and everything resubscribed.
        """
        deadline = self._clock.monotonic() + self._subscribe_timeout_s
        _acked, failed, open_args = self._sub_op(conn, "subscribe", args, deadline)
        transient = [f for f in failed if not is_arg_rejection(f[1])]
        for arg, code, text in failed:
            if is_arg_rejection(code):
                self._drop_desired(arg, code, text, reason=reason)
        if transient:
            _arg, code, text = transient[0]
            raise WSError(
                f"{reason}: OKX refused {len(transient)} subscription(s) for now ({code} {text})"
            )
        if open_args:
            text = f"{len(open_args)} subscription(s) not acknowledged within {self._subscribe_timeout_s:g} s during {reason}"
            log.warning(
                "ws %s: %s: %s (%s)",
                self.name,
                text,
                args_text(open_args),
                self.url,
                extra={"ws": self.name, "sub_args": open_args[:10]},
            )
            self._note_error(text)

    def _drop_desired(self, arg: dict[str, Any], code: str, text: str, *, reason: str) -> None:
        with self._lock:
            self._desired.pop(arg_key(arg), None)
        with self._stats_lock:
            self._subs_dropped += 1
        log.warning(
            "ws %s: subscription %s rejected by OKX (%s %r) during %s; dropped",
            self.name,
            args_text([arg]),
            code,
            text,
            reason,
            extra={"ws": self.name, "code": code, "okx_msg": text, "arg": arg, "during": reason},
        )
        self._emit_error(WSSubscribeError(code, text, arg))

    def on_up(self, conn: Connection, *, first: bool) -> None:
        """SessionHooks: ``conn`` is live — run on_connect, then on_reconnect after a reconnect."""
        for fn in self._connect_handlers:
            self._call(fn)
        if not first:
            for fn in self._reconnect_handlers:
                self._call(fn)

    def on_down(self, conn: Connection) -> None:
        """SessionHooks: the live connection ended — record why and run on_disconnect."""
        reason = conn.describe_end()
        self._note_error(reason)
        for fn in self._disconnect_handlers:
            self._call(fn, reason)

    def on_handoff(self, old: Connection, new: Connection) -> None:
        """SessionHooks: ``new`` replaced ``old``; deliver what only ``new`` received, then resync."""
        with new.buffer_lock:
            new.buffer = list(dedupe_handoff(new.buffer, old.last_data))
            new.push_mode = _FLUSH
        new.ping()  # wakes new's reader, which delivers the buffer before anything newer
        self._sync_subscriptions(new)

    def _sync_subscriptions(self, conn: Connection) -> None:
        """Make ``conn``'s subscriptions equal the desired set (changes during a handoff)."""
        with self._lock:
            desired = dict(self._desired)
        missing = [a for k, a in desired.items() if k not in conn.subscribed]
        extra = [{k: v for k, v in key} for key in list(conn.subscribed) if key not in desired]
        try:
            if missing:
                self._subscribe_on(conn, missing, reason="handoff")
            if extra:
                deadline = self._clock.monotonic() + self._subscribe_timeout_s
                self._sub_op(conn, "unsubscribe", extra, deadline)
        except WSError as exc:
            self._emit_error(exc)

    def on_fatal(self, err: BaseException) -> None:
        """SessionHooks: the loop stopped for good (login refused)."""
        log.error(
            "ws %s stopped for good (%s): %s: %s",
            self.name,
            self.url,
            type(err).__name__,
            err,
            extra={"ws": self.name, "url": self.url, "error": f"{type(err).__name__}: {err}"},
        )
        self._emit_error(err)

    def on_conn_error(self, err: BaseException, attempt: int, delay_s: float) -> None:
        """SessionHooks: a connect attempt failed; the loop retries after ``delay_s`` s."""
        log.warning(
            "ws %s: connect to %s failed (attempt %d, retry in %.3g s): %s: %s",
            self.name,
            self.url,
            attempt + 1,
            delay_s,
            type(err).__name__,
            err,
            extra={
                "ws": self.name,
                "url": self.url,
                "error": f"{type(err).__name__}: {err}",
                "attempt": attempt,
                "retry_in_s": round(delay_s, 3),
            },
        )
        self._emit_error(err)

    def reader_blocked(self, conn: Connection) -> bool:
        """SessionHooks: True while the live reader waits for room in a handler queue."""
        m = self._manager
        if m is None or conn is not m.current:
            return False
        return self._typed.blocked_since is not None or self._raw.blocked_since is not None

    def pending_orders(self, conn: Connection) -> int:
        """SessionHooks: order requests on ``conn`` still waiting for a reply."""
        return sum(1 for r in list(conn.pending.values()) if isinstance(r, OrderRequest))

    # ------------------------------------------------------------------ subscriptions
    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _send_sub_frames(
        self,
        conn: Connection,
        op: str,
        args: Sequence[Mapping[str, Any]],
        *,
        background: bool,
        max_args: int | None = None,
    ) -> list[_SubRequest]:
        frames = batch_frames(op, args, lambda: self._next_id("s"), max_args=max_args)
        if not conn.ops.take(self._clock.monotonic(), len(frames)):
            raise WSError(
                f"{op} refused: the connection's budget of {conn.ops.limit} "
                "subscribe/unsubscribe/login requests per hour is used up"
            )
        reqs = []
        for frame in frames:
            req = _SubRequest(frame, op, background)
            conn.pending[frame.req_id] = req
            reqs.append(req)
            try:
                conn.send(frame.text)
            except WSClosedError:
                for r in reqs:
                    conn.pending.pop(r.req_id, None)
                raise
        return reqs

    def _sub_op(
        self,
        conn: Connection,
        op: str,
        args: Sequence[dict[str, Any]],
        deadline: float,
        *,
        max_args: int | None = None,
    ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str, str]], list[dict[str, Any]]]:
        """Send ``op`` for ``args`` and wait until ``deadline``: (acked, failed, not answered).

        An error OKX did not tie to one arg of a multi-arg frame is resolved by
        resending the open args one per frame. Raises ``WSError`` when the
        connection is lost or the ops budget is used up.
        """
        reqs = self._send_sub_frames(conn, op, args, background=False, max_args=max_args)
        outcomes = []
        try:
            for req in reqs:
                req.done.wait(max(0.0, deadline - self._clock.monotonic()))
        finally:
            for req in reqs:
                # Still open: a late ack or rejection is settled in the background
                # (a rejected arg then leaves the desired set); else forget it.
                outcome, pending = req.detach()
                outcomes.append(outcome)
                if not pending:
                    conn.pending.pop(req.req_id, None)
        acked: list[dict[str, Any]] = []
        failed: list[tuple[dict[str, Any], str, str]] = []
        open_args: list[dict[str, Any]] = []
        unresolved: list[tuple[dict[str, Any], tuple[str, str]]] = []
        for req, (a, f, rest) in zip(reqs, outcomes, strict=True):
            if req.lost:
                raise WSError(f"connection lost before the {op} was acknowledged: {req.lost}")
            acked += a
            failed += f
            if req.unresolved is not None:
                unresolved += [(arg, req.unresolved) for arg in rest]
            else:
                open_args += rest
        if unresolved:
            singles = [arg for arg, _ in unresolved]
            if max_args == 1 or self._clock.monotonic() >= deadline:
                failed += [(arg, c, m) for arg, (c, m) in unresolved]
            else:
                a2, f2, o2 = self._sub_op(conn, op, singles, deadline, max_args=1)
                acked += a2
                failed += f2
                open_args += o2
        return acked, failed, open_args

    def _settle_background(self, conn: Connection, req: _SubRequest) -> None:
        """A fire-and-forget request finished (reader thread): drop rejected args, isolate the rest."""
        conn.pending.pop(req.req_id, None)
        _acked, failed, rest = req.outcome()
        for arg, code, text in failed:
            if req.op == "subscribe" and is_arg_rejection(code):
                self._drop_desired(arg, code, text, reason="subscribe")
            else:  # unsubscribe, or refused for now: the arg stays desired (next connect)
                self._emit_error(WSSubscribeError(code, text, arg))
        if req.unresolved is not None and rest:
            if len(req.args) == 1:
                return
            try:
                self._send_sub_frames(conn, req.op, rest, background=True, max_args=1)
            except WSError as exc:
                code, text = req.unresolved
                for arg in rest:
                    self._drop_desired(arg, code, f"{text} ({exc})", reason="subscribe")

    def subscribe(self, args: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> None:
        """Add ``args`` to the desired subscriptions and send them (fire and forget).

        ``args``: one OKX arg dict (``{"channel": "tickers", "instId": "BTC-USDT"}``)
        or a list of them. Sent at once when connected (batched within 64 KB),
        else on the next connect. An arg OKX rejects is dropped from the desired
        set and reported to the error handlers (one refused only for now is
        reported and kept). Raises ``ValidationError`` for
        bad args, ``WSError`` when the connection's hourly ops budget is used up.
        """
        norm = normalize_args(args)
        conn = self._desire(norm)
        if conn is None:
            return
        try:
            self._send_sub_frames(conn, "subscribe", norm, background=True)
        except WSClosedError:
            pass  # the reconnect resubscribes the desired set

    def _desire(self, norm: list[dict[str, Any]]) -> Connection | None:
        """Add ``norm`` to the desired set; the live connection to send on, or None."""
        with self._lock:
            for arg in norm:
                self._desired.setdefault(arg_key(arg), arg)
        manager = self._manager
        return manager.current if manager is not None else None

    def unsubscribe(self, args: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> None:
        """Remove ``args`` from the desired subscriptions and unsubscribe (fire and forget)."""
        norm = normalize_args(args)
        with self._lock:
            for arg in norm:
                self._desired.pop(arg_key(arg), None)
        manager = self._manager
        conn = manager.current if manager is not None else None
        if conn is None:
            return
        try:
            self._send_sub_frames(conn, "unsubscribe", norm, background=True)
        except WSClosedError:
            pass

    def _wait_conn(self, deadline: float) -> Connection:
        manager = self._manager
        if manager is None:
            raise WSClosedError(f"WS {self.name} is not started")
        conn = manager.wait_ready(max(0.0, deadline - self._clock.monotonic()))
        if conn is None:
            if not manager.running:
                raise WSClosedError(f"WS {self.name} is closed")
            raise WSTimeoutError(f"WS {self.name}: not connected within the timeout")
        return conn

    def subscribe_and_wait(
        self, args: Mapping[str, Any] | Iterable[Mapping[str, Any]], timeout_s: float = 5.0
    ) -> None:
        """Subscribe and return when OKX has acknowledged every arg.

        Raises ``WSSubscribeError`` (code, msg, arg) when OKX rejects an arg (the
        rejected args leave the desired set, the accepted ones stay; an arg
        refused for now — 60014 too frequent, 64007 internal error — stays
        desired and is resubscribed on the next connect),
        ``WSTimeoutError`` when not every arg was acknowledged within
        ``timeout_s`` (they stay desired; a rejection arriving later still
        drops its arg and reaches the error handlers), ``WSClosedError`` when not started,
        ``ValidationError`` for bad args.
        """
        self._sub_and_wait("subscribe", args, timeout_s)

    def unsubscribe_and_wait(
        self, args: Mapping[str, Any] | Iterable[Mapping[str, Any]], timeout_s: float = 5.0
    ) -> None:
        """Unsubscribe and return when OKX has acknowledged every arg.

        Raises ``WSSubscribeError``, ``WSTimeoutError``, ``WSClosedError`` or
        ``ValidationError`` as ``subscribe_and_wait`` does.
        """
        self._sub_and_wait("unsubscribe", args, timeout_s)

    def resubscribe(
        self, args: Mapping[str, Any] | Iterable[Mapping[str, Any]], timeout_s: float = 5.0
    ) -> None:
        """Unsubscribe then subscribe ``args`` again, e.g. to get a fresh order-book snapshot.

        Raises as ``subscribe_and_wait``.
        """
        self._sub_and_wait("unsubscribe", args, timeout_s, keep_desired=True)
        self._sub_and_wait("subscribe", args, timeout_s)

    def _sub_and_wait(
        self,
        op: str,
        args: Mapping[str, Any] | Iterable[Mapping[str, Any]],
        timeout: float,
        *,
        keep_desired: bool = False,
    ) -> None:
        norm = normalize_args(args)
        deadline = self._clock.monotonic() + timeout
        if self._manager is None:
            raise WSClosedError(f"WS {self.name} is not started")
        if not keep_desired:
            with self._lock:
                for arg in norm:
                    if op == "subscribe":
                        self._desired.setdefault(arg_key(arg), arg)
                    else:
                        self._desired.pop(arg_key(arg), None)
        conn = self._wait_conn(deadline)
        try:
            _acked, failed, open_args = self._sub_op(conn, op, norm, deadline)
        except WSClosedError as exc:
            raise WSError(
                f"{op}: connection lost ({exc}); the desired set is resent on reconnect"
            ) from exc
        for arg, code, text in failed:
            if op == "subscribe" and is_arg_rejection(code):
                self._drop_desired(arg, code, text, reason="subscribe_and_wait")
        if failed:
            arg, code, text = failed[0]
            raise WSSubscribeError(code, text, arg)
        if open_args:
            raise WSTimeoutError(
                f"{op}: {len(open_args)} arg(s) not acknowledged within {timeout:g} s: {open_args[:3]!r}"
            )

    def desired_subscriptions(self) -> list[dict[str, Any]]:
        """The subscriptions this client keeps alive (copies), in the order added."""
        with self._lock:
            return [dict(a) for a in self._desired.values()]

    # ------------------------------------------------------------------ managed order books
    # The logic lives in ws/managed_book.py; these are its entry points and hooks.
    def order_book(self, inst_id: str, channel: str = "books", **options: Any) -> ManagedOrderBook:
        """A ``ManagedOrderBook`` of ``inst_id`` on ``channel`` that keeps itself in sync.

        Subscribes at once (or on ``start()``); feeds its store inline on the
        reader; on a gap / checksum / malformed-push / crossed-book error resets
        and resubscribes; after a reconnect waits for the new snapshot. ``options``:
        the keyword options of ``ManagedOrderBook`` (``policy``, ``callbacks``,
        ``rest_check``, ``rest_tolerance``, ``verify_sequence``, ``verify_checksum``,
        ``verify_uncrossed``). Raises
        ``ValidationError`` for a bad channel, inst_id or option, or when this
        client already manages that book. Close it with ``book.close()``; its
        thread runs while this client is started (``close()`` joins it, the
        next ``start()`` starts it again).
        """
        options.setdefault("clock", self._clock)
        return ManagedOrderBook(self, inst_id, channel, **options)

    def managed_books(self) -> list[ManagedOrderBook]:
        """The open managed order books of this client, oldest first."""
        return self._books.books()

    @property
    def book_router(self) -> BookRouter:
        """Internal hook (``ws.managed_book.BookFeed``): the router of this client's managed
        books, which ``ManagedOrderBook`` registers itself with. Thread-safe."""
        return self._books

    def resubscribe_nowait(self, args: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> bool:
        """Internal hook (used by ``ManagedOrderBook``): send unsubscribe then subscribe for
        ``args`` without waiting (safe on the reader thread), keeping them desired.

        Returns False when not connected (the next connect subscribes the
        desired set). Acks and refusals are handled like ``subscribe``'s.
        Raises ``ValidationError`` for bad args, ``WSError`` when the
        connection's hourly ops budget is used up.
        """
        norm = normalize_args(args)
        conn = self._desire(norm)
        if conn is None:
            return False
        try:
            self._send_sub_frames(conn, "unsubscribe", norm, background=True)
            self._send_sub_frames(conn, "subscribe", norm, background=True)
        except WSClosedError:
            return False  # the reconnect resubscribes the desired set
        return True

    def report_error(self, exc: BaseException, *, handler: str | None = None) -> None:
        """Internal hook (used by ``ManagedOrderBook``): pass ``exc`` to the error handlers.

        With ``handler`` (the name of a user callback that raised) it is also
        logged and counted in ``handler_errors``. Does not change
        ``last_error``. Never raises.
        """
        if handler is not None:
            self._handler_error(exc, handler)
        else:
            self._emit_error(exc, record=False)

    # ------------------------------------------------------------------ stats
    def stats(self) -> WSStats:
        """A frozen snapshot of the connection, subscription and dispatch counters."""
        manager = self._manager
        conn = manager.current if manager is not None else None
        seen = conn or (manager.last_conn if manager is not None else None)
        now_mono = self._clock.monotonic()
        now_wall = self._clock.time()

        def wall(t: float | None) -> float | None:
            return None if t is None or t <= 0 else now_wall - (now_mono - t)

        with self._stats_lock:
            connects, reconnects, handoffs = self._connects, self._reconnects, self._handoffs
            messages, nbytes = self._messages, self._bytes
            last_error = self._last_error
            login_resyncs = self._login_resyncs
            sub_ok, sub_err, dropped = self._subscribe_ok, self._subscribe_error, self._subs_dropped
            handler_errors, parse_errors = self._handler_errors, self._parse_errors
            unexpected = self._unexpected_pushes
        if manager is not None:
            connects += manager.connects
            reconnects += manager.reconnects
            handoffs += manager.handoffs
            messages += manager.retired_messages
            nbytes += manager.retired_bytes
            for c in manager.connections():
                messages += c.messages
                nbytes += c.bytes
        with self._lock:
            desired = len(self._desired)
        return WSStats(
            name=self.name,
            url=self.url,
            running=self.running,
            connected=conn is not None and not conn.stopping,
            conn_id=conn.conn_id if conn is not None else "",
            last_recv=wall(seen.last_recv) if seen is not None else None,
            last_ping=wall(seen.last_ping) if seen is not None else None,
            last_pong=wall(seen.last_pong) if seen is not None else None,
            connects=connects,
            reconnects=reconnects,
            handoffs=handoffs,
            last_error=last_error,
            subscribe_ok=sub_ok,
            subscribe_error=sub_err,
            subscriptions_dropped=dropped,
            desired_subscriptions=desired,
            typed_mode=self._typed.config.mode,
            raw_mode=self._raw.config.mode,
            typed_queue_len=self._typed.qsize,
            typed_queue_cap=self._typed.capacity,
            raw_queue_len=self._raw.qsize,
            raw_queue_cap=self._raw.capacity,
            typed_dropped=self._typed.dropped,
            raw_dropped=self._raw.dropped,
            typed_high_water=self._typed.high_water,
            raw_high_water=self._raw.high_water,
            typed_overflow_disconnects=self._typed.disconnects,
            raw_overflow_disconnects=self._raw.disconnects,
            handler_errors=handler_errors,
            parse_errors=parse_errors,
            unexpected_pushes=unexpected,
            messages=messages,
            bytes=nbytes,
            login_resyncs=login_resyncs,
        )
