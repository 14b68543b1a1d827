"""``WSClient``: one self-healing OKX WebSocket with bounded, switchable handler dispatch.

A ``WSClient`` keeps one connection to one OKX WebSocket URL alive for as long
as it runs: it logs in (private/business with credentials), resubscribes every
desired subscription after each reconnect, answers OKX's heartbeat rules,
replaces the connection without a gap when OKX announces an upgrade (notice
64008), and hands every message to the user's handlers through two dispatch
paths (typed and raw), each inline or a bounded worker pool.

``WSClient`` is a facade of user verbs over small parts (the websocket-client
``_app``/``_dispatcher``/``_core`` model): ``config.WSConfig`` (options),
``session.Session`` (the connection loop's private ``SessionHooks``: login,
resubscribe, handoff, control messages), ``subscriptions.Subscriptions``,
``handlers.Handlers`` (tables, dispatch paths), ``routing.Router`` (the reader
hot path), ``stats`` and ``orders.OrderEntry``; its managed books ride on
``_Feed``, a private ``BookFeed``. The loop itself is ``supervisor.ConnectionManager``.

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..auth import Credentials
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ValidationError
from ..guards import Guard
from ..lifecycle import Owned
from ..models.order import OrderAck
from ..validators import instance
from .config import WSConfig
from .dispatch import DispatchConfig
from .handlers import F, Handlers
from .managed_book import BookRouter, ManagedOrderBook
from .orders import WS_ORDER_OPS, OrderEntry
from .policies import ConnectRateLimiter
from .protocol import service_of_url
from .session import Session
from .stats import Counters, WSStats, snapshot
from .subscriptions import Subscriptions

__all__ = ["WSClient", "WSConfig", "WSStats", "DispatchConfig", "WS_ORDER_OPS"]

log = logging.getLogger("okx_sync.ws")

Args = Mapping[str, Any] | Iterable[Mapping[str, Any]]
Orders = Sequence[Mapping[str, Any]]


class WSClient(Owned):
    """One OKX WebSocket connection kept alive on background threads (a facade of user verbs).

    ``WSClient(url, credentials=..., config=WSConfig(...))`` works standalone;
    ``client.ws_public()`` / ``ws_private()`` / ``ws_business()`` build one sharing a
    ``Client``'s credentials, demo flag, clock offset, request gate and instrument
    cache. Options are in ``config``; beside it are collaborators: ``clock``, ``now_ms``
    (wall ms for the login timestamp), ``resync_time(since)`` (called once when OKX
    refuses a login for its timestamp, 60006, then the login is sent again; a second
    60006 or a failing re-sync is fatal: ``WSAuthError``), ``gate`` (WS order entry
    draws on the REST order buckets), ``instruments`` (``inst_id_code(inst_id)``),
    ``connect_limiter``, ``rng`` (backoff jitter), ``account_limit_refresh``
    (``OrderEntry.set_account_limit_refresh``). Raises ``ValidationError`` for a bad
    url, config or collaborator. Thread safety: every method may be called from any thread.
    """

    def __init__(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        config: WSConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
        now_ms: Callable[[], int] | None = None,
        resync_time: Callable[[float], object] | None = None,
        gate: Any = None,
        instruments: Any = None,
        connect_limiter: ConnectRateLimiter | None = None,
        rng: random.Random | None = None,
        account_limit_refresh: Callable[..., None] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ValidationError(f"WS url must start with ws:// or wss://, got {url!r}")
        cfg = instance(config, name="config", kind=WSConfig, optional=True) or WSConfig()
        instance(credentials, name="credentials", kind=Credentials, optional=True)
        for label, fn in (("resync_time", resync_time), ("now_ms", now_ms)):
            if fn is not None and not callable(fn):
                raise ValidationError(f"{label} must be callable, got {fn!r}")
        self.url = url
        self.name = cfg.name or service_of_url(url)
        self._config = cfg
        self._clock = clock
        self._limiter = connect_limiter
        self._rng = rng
        self._counters, self._handlers, self._subs, self._session, self._orders = _assemble(
            url,
            self.name,
            cfg,
            clock,
            credentials=credentials,
            now_ms=now_ms or (lambda: int(clock.time() * 1000)),
            resync_time=resync_time,
            gate=gate,
            instruments=instruments,
            account_limit_refresh=account_limit_refresh,
        )
        self._feed = _Feed(self)
        self._books = BookRouter(self._feed)  # managed order books (ws/managed_book.py)

    def __repr__(self) -> str:
        return f"WSClient(name={self.name!r}, url={self.url!r}, login={self._session.login})"

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
        stopped = self._session.manager
        if stopped is not None and not stopped.running:
            self.close()  # the loop ended (login refused): join what is left, then restart
        manager = self._session.new_manager(self._config, self._limiter, self._rng)
        if manager is not None:
            self._owned_started()  # listed again by the Client that built it
            self._session.run(manager, self._books, timeout_s)
        return self

    def close(self, timeout_s: float = 2.0) -> bool:
        """Close the connection and join every thread this client started within ``timeout_s``,
        its managed books' too (the books stay open; the next ``start()`` starts them
        again). Idempotent. Messages still queued in a pool are discarded; blocking calls
        waiting on the connection raise. ``start()`` may be called again (the desired
        subscriptions are kept). Returns True when every thread ended in time. The
        ``Client`` that built it stops listing it until it starts again."""
        self._owned_closed()
        return self._session.stop(self._books, timeout_s)

    def __enter__(self) -> WSClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def started(self) -> bool:
        """True between ``start()`` and ``close()``, also when the loop stopped for good
        (login refused) — what ``Client.ws_clients()`` calls live."""
        return self._session.manager is not None

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``close()`` unless the loop stopped for good (login refused)."""
        m = self._session.manager
        return m is not None and m.running

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
        """Call ``fn()`` after a reconnect is ready (re-logged-in and resubscribed). Pushes
        may have been missed while disconnected: reconcile here (open orders, positions,
        balances; see the RUNBOOK). Runs on the ``okx-ws-<name>-conn`` thread."""
        self._handlers.add("reconnects", fn)
        return fn

    def off(self, fn: Callable[..., Any]) -> None:
        """Remove ``fn`` from every handler list it is in (matched by identity)."""
        self._handlers.remove(fn)

    def set_dispatch(
        self, *, typed: DispatchConfig | None = None, raw: DispatchConfig | None = None
    ) -> None:
        """Switch the typed and/or raw dispatch while running (None leaves a path as is).

        The switch takes effect at the next message after the old pool has
        drained: nothing is lost, duplicated or reordered across it. Raises
        ``ValidationError`` for anything but a ``DispatchConfig``.
        """
        instance(typed, name="typed", kind=DispatchConfig, optional=True)
        instance(raw, name="raw", kind=DispatchConfig, optional=True)
        self._handlers.set_dispatch(typed, raw)

    def subscribe(self, args: Args) -> None:
        """Add ``args`` to the desired subscriptions and send them (fire and forget).

        ``args``: one OKX arg dict (``{"channel": "tickers", "instId": "BTC-USDT"}``) or a
        list of them. Sent at once when connected (batched within 64 KB), else on the next
        connect. An arg OKX rejects leaves the desired set and reaches the error handlers
        (one refused only for now is reported and kept). Raises ``ValidationError`` for bad
        args, ``WSError`` when the connection's hourly ops budget is used up.
        """
        self._subs.subscribe(args)

    def unsubscribe(self, args: Args) -> None:
        """Remove ``args`` from the desired subscriptions and unsubscribe (fire and forget)."""
        self._subs.unsubscribe(args)

    def subscribe_and_wait(self, args: Args, timeout_s: float = 5.0) -> None:
        """Subscribe and return when OKX has acknowledged every arg.

        Raises ``WSSubscribeError`` (code, msg, arg) when OKX rejects an arg (the rejected
        args leave the desired set, the accepted ones stay; one refused for now — 60014,
        64007 — stays desired and is resubscribed on the next connect), ``WSTimeoutError``
        when not every arg was acknowledged within ``timeout_s`` (they stay desired; a
        later rejection still drops its arg and reaches the error handlers),
        ``WSClosedError`` when not started, ``ValidationError`` for bad args.
        """
        self._subs.sub_and_wait("subscribe", args, timeout_s)

    def unsubscribe_and_wait(self, args: Args, timeout_s: float = 5.0) -> None:
        """Unsubscribe and return when OKX has acknowledged every arg; raises
        ``WSSubscribeError``, ``WSTimeoutError``... as ``subscribe_and_wait`` does."""
        self._subs.sub_and_wait("unsubscribe", args, timeout_s)

    def resubscribe(self, args: Args, timeout_s: float = 5.0) -> None:
        """Unsubscribe then subscribe ``args`` again (e.g. for a fresh order-book snapshot);
        raises as ``subscribe_and_wait``."""
        self._subs.sub_and_wait("unsubscribe", args, timeout_s, keep_desired=True)
        self._subs.sub_and_wait("subscribe", args, timeout_s)

    def desired_subscriptions(self) -> list[dict[str, Any]]:
        """The subscriptions this client keeps alive (copies), in the order added."""
        return self._subs.desired_list()

    def order_book(self, inst_id: str, channel: str = "books", **options: Any) -> ManagedOrderBook:
        """A ``ManagedOrderBook`` of ``inst_id`` on ``channel`` that keeps itself in sync.

        Subscribes at once (or on ``start()``); feeds its store inline on the reader; on a
        gap / checksum / malformed-push / crossed-book error resets and resubscribes;
        after a reconnect waits for the new snapshot. ``options``: the keywords of
        ``ManagedOrderBook`` (``policy``, ``callbacks``, ``rest_check``...). Raises
        ``ValidationError`` for a bad channel, inst_id or option, or when this client
        already manages that book. Close it with ``book.close()``; its thread runs
        while this client is started.
        """
        options.setdefault("clock", self._clock)
        return ManagedOrderBook(self._feed, inst_id, channel, **options)

    def managed_books(self) -> list[ManagedOrderBook]:
        """The open managed order books of this client, oldest first."""
        return self._books.books()

    def place_order(
        self, *, timeout_s: float | None = None, exp_time: int | None = None, **params: Any
    ) -> OrderAck:
        """Place one order (op ``order``); see ``OrderEntry.place_order`` for what it raises."""
        return self._orders.place_order(timeout_s=timeout_s, exp_time=exp_time, **params)

    def place_batch_orders(
        self, orders: Orders, *, timeout_s: float | None = None, exp_time: int | None = None
    ) -> list[OrderAck]:
        """Place up to 20 orders (op ``batch-orders``); see ``OrderEntry.place_batch_orders``."""
        return self._orders.place_batch_orders(orders, timeout_s=timeout_s, exp_time=exp_time)

    def cancel_order(self, *, timeout_s: float | None = None, **params: Any) -> OrderAck:
        """Cancel one order (op ``cancel-order``); see ``OrderEntry.cancel_order``."""
        return self._orders.cancel_order(timeout_s=timeout_s, **params)

    def cancel_batch_orders(
        self, orders: Orders, *, timeout_s: float | None = None
    ) -> list[OrderAck]:
        """Cancel up to 20 orders (op ``batch-cancel-orders``); raises as ``place_order``."""
        return self._orders.cancel_batch_orders(orders, timeout_s=timeout_s)

    def amend_order(
        self, *, timeout_s: float | None = None, exp_time: int | None = None, **params: Any
    ) -> OrderAck:
        """Amend one order (op ``amend-order``); see ``OrderEntry.amend_order``."""
        return self._orders.amend_order(timeout_s=timeout_s, exp_time=exp_time, **params)

    def amend_batch_orders(
        self, orders: Orders, *, timeout_s: float | None = None, exp_time: int | None = None
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

    def place_spread_order(self, *, timeout_s: float | None = None, **params: Any) -> OrderAck:
        """Place a spread order (op ``sprd-order``, business WS); see ``SpreadOrders``."""
        return self._orders.spread.place(timeout_s=timeout_s, **params)

    def amend_spread_order(self, *, timeout_s: float | None = None, **params: Any) -> OrderAck:
        """Amend a spread order (op ``sprd-amend-order``); see ``SpreadOrders``."""
        return self._orders.spread.amend(timeout_s=timeout_s, **params)

    def cancel_spread_order(self, *, timeout_s: float | None = None, **params: Any) -> OrderAck:
        """Cancel a spread order (op ``sprd-cancel-order``); see ``SpreadOrders``."""
        return self._orders.spread.cancel(timeout_s=timeout_s, **params)

    def mass_cancel_spread_orders(
        self, *, sprd_id: str | None = None, timeout_s: float | None = None
    ) -> bool:
        """Cancel all spread orders (of ``sprd_id``; op ``sprd-mass-cancel``); see ``SpreadOrders``."""
        return self._orders.spread.mass_cancel(sprd_id=sprd_id, timeout_s=timeout_s)

    def stats(self) -> WSStats:
        """A frozen snapshot of the connection, subscription, order-op and dispatch counters."""
        return _stats(self)


def _stats(ws: WSClient) -> WSStats:
    """``ws.stats()``: its counters, connection loop and dispatch paths read together."""
    desired = ws._subs.desired_count()
    manager, need_login = ws._session.manager, ws._session.login
    return snapshot(
        ws.name, ws.url, manager, ws._counters, desired, ws._handlers, ws._clock,
        need_login=need_login,
    )  # fmt: skip


def _assemble(
    url: str,
    name: str,
    cfg: WSConfig,
    clock: Clock,
    *,
    credentials: Credentials | None,
    now_ms: Callable[[], int],
    resync_time: Callable[[float], object] | None,
    gate: Any,
    instruments: Any,
    account_limit_refresh: Callable[..., None] | None,
) -> tuple[Counters, Handlers, Subscriptions, Session, OrderEntry]:
    """The parts a ``WSClient`` is a facade over, wired together. Raises
    ``ValidationError`` when ``login`` is asked for without credentials."""
    login = cfg.login
    if login is None:  # log in where the URL needs it and credentials are given
        login = credentials is not None and service_of_url(url) in ("private", "business")
    if login and credentials is None:
        raise ValidationError("login=True needs credentials")
    counters = Counters(clock)
    handlers = Handlers(name, clock, counters, cfg.typed_dispatch, cfg.raw_dispatch)
    common: dict[str, Any] = {"name": name, "url": url, "clock": clock, "counters": counters}
    subs = Subscriptions(
        **common,
        handlers=handlers,
        subscribe_timeout_s=cfg.subscribe_timeout_s,
        live=lambda: session.manager,
    )
    session = Session(
        **common,
        credentials=credentials,
        login=login,
        now_ms=now_ms,
        resync_time=resync_time,
        subscribe_timeout_s=cfg.subscribe_timeout_s,
        handlers=handlers,
        subs=subs,
    )
    orders = OrderEntry(
        name=name,
        url=url,
        clock=clock,
        gate=gate,
        instruments=instruments,
        order_timeout_s=cfg.order_timeout_s,
        live_conn=subs.live_conn,
        next_id=subs.next_id,
        counters=counters,
        account_limit_refresh=account_limit_refresh,
    )
    return counters, handlers, subs, session, orders


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
