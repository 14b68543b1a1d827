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

import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..auth import Credentials
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ValidationError
from ..guards import Guard
from ..lifecycle import Owned
from ..models.order import OrderAck
from ..validators import flag, instance, seconds
from .connection import UNSUPPORTED_WS_OPTIONS
from .dispatch import DispatchConfig
from .frames import DEFAULT_MAX_SIZE
from .handlers import F, Handlers
from .managed_book import BookRouter, ManagedOrderBook
from .orders import WS_ORDER_OPS, OrderEntry
from .policies import BackoffPolicy, ConnectRateLimiter, HeartbeatPolicy
from .protocol import service_of_url
from .session import Session
from .stats import Counters, WSStats, snapshot
from .subscriptions import Subscriptions
from .supervisor import ConnectionManager

__all__ = ["WSClient", "WSStats", "DispatchConfig", "WS_ORDER_OPS"]

log = logging.getLogger("okx_sync.ws")

Args = Mapping[str, Any] | Iterable[Mapping[str, Any]]


class WSClient(Owned):
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
        self._login = bool(login)
        self._backoff = backoff or BackoffPolicy()
        self._connect_timeout_s = connect_timeout_s
        self._start_timeout_s = (
            start_timeout_s if start_timeout_s is not None else connect_timeout_s + 5.0
        )
        self._clock = clock
        if resync_time is not None and not callable(resync_time):
            raise ValidationError(f"resync_time must be callable, got {resync_time!r}")
        self._limiter = connect_limiter
        self._ws_options = dict(ws_options or {})
        self._max_message_size = max_message_size
        self._rng = rng
        self._manager: ConnectionManager | None = None
        self._lock = threading.Lock()  # _manager
        self._counters = Counters()
        self._handlers = Handlers(self.name, clock, self._counters, typed_cfg, raw_cfg)
        self._subs = Subscriptions(
            name=self.name,
            url=url,
            clock=clock,
            counters=self._counters,
            handlers=self._handlers,
            subscribe_timeout_s=subscribe_timeout_s,
            live=self._live,
        )
        self._session = Session(
            name=self.name,
            url=url,
            clock=clock,
            credentials=credentials,
            login=self._login,
            now_ms=now_ms or (lambda: int(clock.time() * 1000)),
            resync_time=resync_time,
            subscribe_timeout_s=subscribe_timeout_s,
            counters=self._counters,
            handlers=self._handlers,
            subs=self._subs,
            live=self._live,
        )
        self._orders = OrderEntry(
            name=self.name,
            url=url,
            clock=clock,
            gate=gate,
            instruments=instruments,
            order_timeout_s=order_timeout_s,
            wait_conn=self._subs.wait_conn,
            next_id=self._subs.next_id,
        )
        self._feed = _Feed(self)
        self._books = BookRouter(self._feed)  # managed order books (ws/managed_book.py)

    def __repr__(self) -> str:
        return f"WSClient(name={self.name!r}, url={self.url!r}, login={self._login})"

    def _live(self) -> ConnectionManager | None:
        return self._manager

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
                self._session,
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
            self._session.login_resynced = (
                False  # a fresh start may re-sync for a refused login again
            )
        self._books.resume()  # the managed books' threads run while the client is started
        self._handlers.typed_path.start()
        self._handlers.raw_path.start()
        try:
            manager.start(self._start_timeout_s if timeout_s is None else timeout_s)
        except BaseException:
            self._books.suspend(1.0)
            self._handlers.typed_path.stop(1.0)
            self._handlers.raw_path.stop(1.0)
            with self._lock:
                if self._manager is manager:
                    self._manager = None
            self._counters.collect(manager)
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
        self._counters.collect(manager)
        ok = self._books.suspend(max(0.05, (deadline - self._clock.monotonic()) / 3)) and ok
        left = max(0.05, deadline - self._clock.monotonic())
        ok = self._handlers.typed_path.stop(left / 2) and ok
        ok = self._handlers.raw_path.stop(max(0.05, deadline - self._clock.monotonic())) and ok
        self._handlers.flush_summary()
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

    # ------------------------------------------------------------------ handlers
    def on(self, channel: str, fn: F) -> F:
        """Call ``fn(item)`` for every data item pushed on ``channel`` (e.g. ``"tickers"``).

        ``item`` is a typed model for channels that have one (tickers, trades,
        books*, bbo-tbt, candle*, orders, account, positions,
        balance_and_position, fills), else the item dict. Runs on the typed
        dispatch path. Returns ``fn``. Raises ``ValidationError`` for a bad channel/fn.
        """
        self._handlers.add_typed(channel, fn)
        return fn

    def on_raw(self, fn: F) -> F:
        """Call ``fn(msg)`` with every decoded message (pushes, events, replies) on the raw path."""
        self._handlers.add("raw", fn)
        return fn

    def on_event(self, fn: F) -> F:
        """Call ``fn(event_dict)`` for every ``event`` message (subscribe, error, notice...) on the typed path."""
        self._handlers.add("events", fn)
        return fn

    def on_error(self, fn: F) -> F:
        """Call ``fn(exc)`` for every error: handler exceptions, error events, rejected
        subscriptions (``WSSubscribeError``), connection failures, ``WSAuthError``,
        and each drop episode of a pool under ``overflow="drop"`` (``WSQueueFullError``:
        pushes were lost, reconcile). Runs on the thread that saw the error (often
        the reader: hand slow work to another thread); an exception in ``fn`` is logged.
        """
        self._handlers.add("errors", fn)
        return fn

    def on_connect(self, fn: F) -> F:
        """Call ``fn()`` each time a connection is ready (logged in and resubscribed)."""
        self._handlers.add("connects", fn)
        return fn

    def on_disconnect(self, fn: F) -> F:
        """Call ``fn(reason)`` each time the live connection is lost."""
        self._handlers.add("disconnects", fn)
        return fn

    def on_reconnect(self, fn: F) -> F:
        """Call ``fn()`` after a reconnect is ready (re-logged-in and resubscribed).

        Pushes may have been missed while disconnected: reconcile here (query
        open orders, positions, balances; see the RUNBOOK). Runs on the
        ``okx-ws-<name>-conn`` thread.
        """
        self._handlers.add("reconnects", fn)
        return fn

    def off(self, fn: Callable[..., Any]) -> None:
        """Remove ``fn`` from every handler list it is in (matched by identity)."""
        self._handlers.remove(fn)

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
        self._handlers.set_dispatch(typed_cfg, raw_cfg)

    # ------------------------------------------------------------------ subscriptions
    def subscribe(self, args: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> None:
        """Add ``args`` to the desired subscriptions and send them (fire and forget).

        ``args``: one OKX arg dict (``{"channel": "tickers", "instId": "BTC-USDT"}``)
        or a list of them. Sent at once when connected (batched within 64 KB),
        else on the next connect. An arg OKX rejects is dropped from the desired
        set and reported to the error handlers (one refused only for now is
        reported and kept). Raises ``ValidationError`` for
        bad args, ``WSError`` when the connection's hourly ops budget is used up.
        """
        self._subs.subscribe(args)

    def unsubscribe(self, args: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> None:
        """Remove ``args`` from the desired subscriptions and unsubscribe (fire and forget)."""
        self._subs.unsubscribe(args)

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
        self._subs.sub_and_wait("subscribe", args, timeout_s)

    def unsubscribe_and_wait(
        self, args: Mapping[str, Any] | Iterable[Mapping[str, Any]], timeout_s: float = 5.0
    ) -> None:
        """Unsubscribe and return when OKX has acknowledged every arg.

        Raises ``WSSubscribeError``, ``WSTimeoutError``, ``WSClosedError`` or
        ``ValidationError`` as ``subscribe_and_wait`` does.
        """
        self._subs.sub_and_wait("unsubscribe", args, timeout_s)

    def resubscribe(
        self, args: Mapping[str, Any] | Iterable[Mapping[str, Any]], timeout_s: float = 5.0
    ) -> None:
        """Unsubscribe then subscribe ``args`` again, e.g. to get a fresh order-book snapshot.

        Raises as ``subscribe_and_wait``.
        """
        self._subs.sub_and_wait("unsubscribe", args, timeout_s, keep_desired=True)
        self._subs.sub_and_wait("subscribe", args, timeout_s)

    def desired_subscriptions(self) -> list[dict[str, Any]]:
        """The subscriptions this client keeps alive (copies), in the order added."""
        return self._subs.desired_list()

    # ------------------------------------------------------------------ managed order books
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
        return ManagedOrderBook(self._feed, inst_id, channel, **options)

    def managed_books(self) -> list[ManagedOrderBook]:
        """The open managed order books of this client, oldest first."""
        return self._books.books()

    # ------------------------------------------------------------------ order entry (ws/orders.py)
    def place_order(
        self, *, timeout_s: float | None = None, exp_time: int | None = None, **params: Any
    ) -> OrderAck:
        """Place one order (op ``order``); see ``OrderEntry.place_order`` for what it raises."""
        return self._orders.place_order(timeout_s=timeout_s, exp_time=exp_time, **params)

    def place_batch_orders(
        self,
        orders: Sequence[Mapping[str, Any]],
        *,
        timeout_s: float | None = None,
        exp_time: int | None = None,
    ) -> list[OrderAck]:
        """Place up to 20 orders (op ``batch-orders``); see ``OrderEntry.place_batch_orders``."""
        return self._orders.place_batch_orders(orders, timeout_s=timeout_s, exp_time=exp_time)

    def cancel_order(self, *, timeout_s: float | None = None, **params: Any) -> OrderAck:
        """Cancel one order (op ``cancel-order``); see ``OrderEntry.cancel_order``."""
        return self._orders.cancel_order(timeout_s=timeout_s, **params)

    def cancel_batch_orders(
        self, orders: Sequence[Mapping[str, Any]], *, timeout_s: float | None = None
    ) -> list[OrderAck]:
        """Cancel up to 20 orders (op ``batch-cancel-orders``); raises as ``place_order``."""
        return self._orders.cancel_batch_orders(orders, timeout_s=timeout_s)

    def amend_order(
        self, *, timeout_s: float | None = None, exp_time: int | None = None, **params: Any
    ) -> OrderAck:
        """Amend one order (op ``amend-order``); see ``OrderEntry.amend_order``."""
        return self._orders.amend_order(timeout_s=timeout_s, exp_time=exp_time, **params)

    def amend_batch_orders(
        self,
        orders: Sequence[Mapping[str, Any]],
        *,
        timeout_s: float | None = None,
        exp_time: int | None = None,
    ) -> list[OrderAck]:
        """Amend up to 20 orders (op ``batch-amend-orders``); raises as ``place_order``."""
        return self._orders.amend_batch_orders(orders, timeout_s=timeout_s, exp_time=exp_time)

    def add_guard(self, fn: Guard) -> None:
        """Run ``fn(endpoint, params)`` before every WS order-entry request (it may raise to
        refuse); see ``OrderEntry.add_guard``. Thread-safe."""
        self._orders.add_guard(fn)

    def remove_guard(self, fn: Guard) -> None:
        """Remove a guard added with ``add_guard`` (no error when absent). Thread-safe."""
        self._orders.remove_guard(fn)

    def set_account_limit_refresh(self, fn: Callable[..., None] | None) -> None:
        """See ``OrderEntry.set_account_limit_refresh``. Thread-safe."""
        self._orders.set_account_limit_refresh(fn)

    # ------------------------------------------------------------------ stats
    def stats(self) -> WSStats:
        """A frozen snapshot of the connection, subscription and dispatch counters."""
        return snapshot(
            name=self.name,
            url=self.url,
            running=self.running,
            manager=self._manager,
            counters=self._counters,
            desired=self._subs.desired_count(),
            typed=self._handlers.typed_path,
            raw=self._handlers.raw_path,
            clock=self._clock,
        )


class _Feed:
    """The ``BookFeed`` a ``WSClient``'s managed books ride on (private: the client's
    internal hooks stay off its public surface). Thread safety: any thread."""

    __slots__ = ("_ws",)

    def __init__(self, ws: WSClient) -> None:
        self._ws = ws

    @property
    def name(self) -> str:
        return self._ws.name

    @property
    def running(self) -> bool:
        return self._ws.running

    @property
    def book_router(self) -> BookRouter:
        return self._ws._books

    def subscribe(self, args: Mapping[str, Any]) -> None:
        self._ws._subs.subscribe(args)

    def unsubscribe(self, args: Mapping[str, Any]) -> None:
        self._ws._subs.unsubscribe(args)

    def resubscribe_nowait(self, args: Mapping[str, Any]) -> bool:
        return self._ws._subs.resubscribe_nowait(args)

    def add_push_listener(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        self._ws._handlers.add("push_listeners", fn)

    def on_connect(self, fn: Callable[[], Any]) -> Any:
        return self._ws.on_connect(fn)

    def on_disconnect(self, fn: Callable[[str], Any]) -> Any:
        return self._ws.on_disconnect(fn)

    def on_error(self, fn: Callable[[BaseException], Any]) -> Any:
        return self._ws.on_error(fn)

    def off(self, fn: Callable[..., Any]) -> None:
        self._ws.off(fn)

    def report_error(self, exc: BaseException, *, handler: str | None = None) -> None:
        if handler is not None:
            self._ws._handlers.handler_error(exc, handler)
        else:
            self._ws._handlers.emit_error(exc, record=False)

    def adopt_sibling(self, child: Any, *, kind: str, label: str) -> None:
        self._ws._adopt_sibling(child, kind=kind, label=label)
