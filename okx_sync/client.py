"""``okx_sync.Client``: the one object a program shares between its threads.

It composes the pieces; each lives in its own module:

- ``self._gate`` — :class:`~okx_sync.gate.RequestGate` (admission, rate buckets);
- ``self._rest`` — :class:`~okx_sync.rest.client.RestCore`, the one REST call
  path (validate, guards, gate, sign, send, envelope, retry);
- endpoint groups (``client.trade``, ``client.account``, ...) — see the
  "endpoint groups" section of ``Client.__init__``;
- WebSocket factories, safe mode, evidence — added beside them;
- ``self._children`` — :class:`~okx_sync.lifecycle.Children`, what the client
  built and ``close()`` closes (WS clients, managed books, reporters, dead-man
  switches).

Quick start::

    with okx_sync.Client.from_env() as client:
        client.sync_time()
        ticker = client.request("GET", "/api/v5/market/ticker", {"instId": "BTC-USDT"})
        ticker = client.market.get_ticker(inst_id="BTC-USDT")  # typed: a Ticker
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from .auth import Credentials, redact_key
from .clock import SYSTEM_CLOCK, Clock
from .errors import OkxError, ValidationError
from .gate import RequestGate, RequestGateConfig
from .handler_errors import BackgroundErrorHandler, BackgroundErrors
from .lifecycle import Adoption, Children
from .ops import ports
from .ops.dead_man import DeadManSwitch, ErrorHandler
from .ops.health import Health, HealthMonitor, HealthThresholds
from .ops.reconcile import SafeTradeAPI
from .ops.safe_mode import SafeMode, SafeModeReport, SafeModeState, enter_safe_mode
from .ops.time_sync import TimeSyncTimer
from .rest.api import RestAPI
from .rest.client import RestCore
from .rest.transport import DEFAULT_MAX_RESPONSE_BYTES, Transport
from .retry import RetryPolicy
from .timesync import MIN_SYNC_INTERVAL_S
from .validators import flag, instance, seconds, short_text
from .ws.client import WSClient
from .ws.protocol import WS_SERVICES, ws_url

__all__ = ["Client"]

_log = logging.getLogger("okx_sync.client")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _check_sync_interval(value: Any) -> float:
    """``time_sync_interval_s`` as a float: 0 (off) or >= MIN_SYNC_INTERVAL_S."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"time_sync_interval_s must be a number of seconds, got {value!r}")
    interval = float(value)
    if interval != 0 and not MIN_SYNC_INTERVAL_S <= interval < float("inf"):
        raise ValidationError(
            f"time_sync_interval_s must be 0 (off) or >= {MIN_SYNC_INTERVAL_S:g} s and finite, "
            f"got {value!r}"
        )
    return interval


def _plain_text_remote(url: str) -> bool:
    """True for an ``http://``/``ws://`` URL whose host is not loopback. Pure."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False  # malformed: the base_url/WS checks report it
    if parts.scheme not in ("http", "ws"):
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class Client(RestAPI):
    """A blocking OKX V5 client shared by any number of threads.

    ``Client(api_key, secret_key, passphrase, *, demo=False,
    base_url="https://www.okx.com", timeout=10.0, gate=RequestGateConfig(),
    retry=RetryPolicy())``. Credentials are optional for public endpoints and
    must be given all three or none. ``demo=True`` sends
    ``x-simulated-trading: 1`` (demo keys only work with it). ``timeout_s`` is
    the deadline of one whole HTTP attempt in seconds (connect, send, headers
    and body together, not per socket read). ``max_response_bytes`` bounds one
    response body, on the wire and after gzip/deflate decoding (default 16 MiB;
    beyond it an ``APIError``, or ``RequestStateError(dispatched=True)`` for
    order entry). Keyword-only extras: ``session``
    (your own ``requests.Session``: every call goes through
    ``session.request``, so proxies, adapters, TLS settings and hooks are
    honoured; you keep ownership; without it calls go straight to a pooled
    urllib3 connection pool, see :mod:`okx_sync.rest.transport`),
    ``transport`` (any :class:`~okx_sync.rest.transport.Transport`, such as
    ``okx_sync.testing.MockTransport`` in tests; not with ``session``; you keep
    ownership, and it enforces its own deadline and size bounds), ``clock`` (an injected
    :class:`~okx_sync.clock.Clock`), ``rng`` (a ``random.Random`` for backoff
    jitter), ``health_thresholds`` (a
    :class:`~okx_sync.ops.health.HealthThresholds` for :meth:`health`),
    ``ws_urls`` (``{"public"|"private"|"business": url}`` overriding the OKX
    WebSocket URLs that ``ws_public()``/``ws_private()``/``ws_business()``
    use — live or demo hosts by ``demo``; ``okx_sync.testing.sim_client`` passes a simulator's),
    ``time_sync_interval_s`` (0, the default: off; else >= 10: re-measure the
    clock offset whenever it is that old, at once at construction, on a
    background thread ``okx-time-sync`` that ``close()`` stops and joins; a
    failed sync is retried after ``min(interval, 60)`` s; see
    :mod:`okx_sync.ops.time_sync`; offset, age and last error are in
    ``stats()["time_sync"]`` and ``evidence()["clock"]``).

    ``user_agent`` (appended after a space to the ``User-Agent`` of every REST
    request: ``okx_sync/<version>``, or your ``session``'s own User-Agent when it
    set one; 1..256 printable ASCII characters). ``app_version`` / ``app_commit`` (your deployed application's version
    and commit, up to 128 printable ASCII characters each: ``evidence()["app"]``,
    runbook §1).

    ``on_background_error`` (``fn(source, error)``, besides the log line: errors
    no caller sees — ``"account_limit"`` (a failed account-limit load),
    ``"reporter <name> sink <Sink>"``, ``"okx-dead-man[-tag]"`` (dead-man
    refresh failures and expiry), ``"time_sync"`` (periodic re-sync) and
    ``"ws public"``/``"ws private"``/``"ws business"`` (every ``on_error`` event of
    the WS clients ``ws_public()``/... build); called on the thread that met the
    error, so keep it quick; its own exceptions are logged (a traceback, then
    summaries) and never propagate).

    ``allow_insecure_http`` (default False: with credentials, a plain
    ``http://`` ``base_url`` or ``ws://`` private/business URL whose host is
    not loopback is refused, since the key and passphrase would cross the
    network unencrypted; loopback — the simulator — is always allowed).

    Raises ``ValidationError`` (a ``ValueError``) at construction for partial
    credentials, a malformed ``base_url``, a ``timeout_s`` that is not a positive finite
    number, a non-bool ``demo``, a ``gate``/``retry``/``health_thresholds`` of the
    wrong type (:func:`okx_sync.validators.instance`), a bad ``time_sync_interval_s``,
    a non-positive ``max_response_bytes``, a non-callable ``on_background_error``,
    an ``app_version``/``app_commit`` that is
    no short printable text, a ``session`` that is no ``requests.Session``,
    both ``session`` and ``transport`` or a ``transport`` without ``send``,
    or credentials over plain text to a remote
    host (see ``allow_insecure_http``); calls
    raise ``ValidationError``, ``APIError``/``OrderError`` or
    ``RequestStateError`` (see :mod:`okx_sync.errors`).

    Threading contract: every public method may be called from any thread at
    the same time; calls share one request gate and one keep-alive connection
    pool sized to ``gate.max_concurrent``. The client owns what it builds:
    ``close()`` (idempotent, from any thread) first closes, newest first, the
    WS clients of ``ws_public()``/``ws_private()``/``ws_business()`` with their
    managed books, every ``StatsReporter`` built on it and its dead-man
    switches, joining their threads within its ``timeout_s``; then calls
    waiting in the gate fail with ``RequestStateError(stage="gate")`` and later
    calls are refused the same way. Use it as a context manager to close it.
    """

    def __init__(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        passphrase: str | None = None,
        *,
        demo: bool = False,
        base_url: str = "https://www.okx.com",
        timeout_s: float = 10.0,
        gate: RequestGateConfig = RequestGateConfig(),  # noqa: B008 - frozen, immutable
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, immutable
        session: requests.Session | None = None,
        transport: Transport | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        health_thresholds: HealthThresholds | None = None,
        ws_urls: Mapping[str, str] | None = None,
        time_sync_interval_s: float = 0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_insecure_http: bool = False,
        app_version: str | None = None,
        app_commit: str | None = None,
        user_agent: str | None = None,
        on_background_error: BackgroundErrorHandler | None = None,
    ) -> None:
        flag(demo, name="demo")
        flag(allow_insecure_http, name="allow_insecure_http")
        seconds(timeout_s, name="timeout_s", positive=True)
        instance(gate, name="gate", kind=RequestGateConfig)
        instance(retry, name="retry", kind=RetryPolicy)
        instance(health_thresholds, name="health_thresholds", kind=HealthThresholds, optional=True)
        try:
            creds = Credentials.from_parts(api_key, secret_key, passphrase)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        interval = _check_sync_interval(time_sync_interval_s)
        urls = {kind: ws_url(kind, demo=demo) for kind in WS_SERVICES}
        for kind, url in (ws_urls or {}).items():
            if kind not in urls:
                raise ValidationError(
                    f"ws_urls: unknown WS service {kind!r} (public, private, business)"
                )
            urls[kind] = url
        if creds is not None and not allow_insecure_http:
            for label, url in (
                ("base_url", base_url),
                *((f"ws_urls[{k!r}]", urls[k]) for k in ("private", "business")),
            ):
                if _plain_text_remote(url):
                    raise ValidationError(
                        f"{label} {url!r} would send the API key and passphrase unencrypted "
                        "to a host that is not loopback; use https:// / wss://, or pass "
                        "allow_insecure_http=True if this is really meant"
                    )
        self._app_info = {
            "version": short_text(app_version, name="app_version", optional=True),
            "commit": short_text(app_commit, name="app_commit", optional=True),
        }
        if on_background_error is not None and not callable(on_background_error):
            raise ValidationError("on_background_error must be callable fn(source, error)")
        self._background = BackgroundErrors(
            on_background_error, monotonic=clock.monotonic, logger=_log
        )
        self._clock = clock
        self._closed = False
        # -- REST core -------------------------------------------------------------------
        self._gate = RequestGate(gate, clock=clock)
        if on_background_error is not None:
            self._gate.account_limit.on_failure = lambda reason: self._report_background_error(
                "account_limit", OkxError(f"account order limit load failed: {reason}")
            )
        try:
            self._rest = RestCore(
                base_url=base_url,
                credentials=creds,
                gate=self._gate,
                retry=retry,
                demo=demo,
                timeout_s=timeout_s,
                clock=clock,
                session=session,
                transport=transport,
                rng=rng,
                max_response_bytes=max_response_bytes,
                user_agent=user_agent,
            )
        except BaseException:
            self._gate.close()
            raise
        self.demo = bool(demo)
        # -- WebSocket (ws_public / ws_private / ws_business) ------------------------------
        self._credentials = creds
        self._ws_urls = urls
        self.base_url = self._rest.base_url
        # -- endpoint groups (okx_sync.rest.api) -------------------------------------------
        # Inherited from RestAPI: client.trade, client.account, ... (every registry
        # endpoint as a named method, sent through ``self._rest.call``), plus
        # client.instruments(inst_type) / client.instrument(inst_id) / inst_id_code /
        # round_price / round_size on a lazily created instruments cache.
        # -- WebSocket factories, safe mode, evidence: attach below ------------------------
        # What this client built and closes (okx_sync.lifecycle): WS clients, their
        # managed books, stats reporters, dead-man switches, weakly held in creation
        # order; a child the user closes leaves the list. ``ws_clients()``,
        # ``managed_books()`` and ``dead_man_switches()`` read it.
        self._live_lock = threading.Lock()
        self._children = Children("Client", clock.monotonic)
        self._closing = False
        self._close_done = threading.Event()
        self.health_monitor = HealthMonitor(health_thresholds)
        # -- safe mode, dead-man switches, evidence (okx_sync.ops) ---------------------------
        # Safe mode is a pre-send guard on the REST core and on every registered WS client;
        # ``client.trade`` adds ``place_order_safely`` (okx_sync.ops.reconcile).
        self._safe_mode = SafeMode(clock=clock)
        self._rest.add_guard(self._safe_mode.guard)
        self._trade = SafeTradeAPI(self)
        self._settings = {
            "credentials": redact_key(creds.api_key) if creds is not None else None,
            "timeout_s": float(timeout_s),
            "max_response_bytes": max_response_bytes,
            "gate": gate,
            "retry": retry,
            "time_sync_interval_s": interval,
            "user_agent": user_agent,
        }
        self._timeout_s = float(timeout_s)
        self._resync_on_skew = retry.resync_on_time_skew
        self._time_sync_interval_s = interval
        # -- periodic clock re-sync (okx_sync.ops.time_sync): last, nothing can fail after
        self._time_timer: TimeSyncTimer | None = None
        if interval > 0:
            self._time_timer = TimeSyncTimer(
                lambda: self._rest.sync_time(retries=False),
                self._rest.time_sync,
                interval_s=interval,
                clock=clock,
                on_error=lambda exc: self._report_background_error("time_sync", exc),
            )
            self._time_timer.start()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Client:
        """Build a Client from ``OKX_API_KEY``, ``OKX_SECRET_KEY``, ``OKX_PASSPHRASE``,
        ``OKX_DEMO`` (1/true/yes or 0/false/no), ``OKX_BASE_URL`` (the REST host)
        and ``OKX_WS_PUBLIC_URL`` / ``OKX_WS_PRIVATE_URL`` / ``OKX_WS_BUSINESS_URL``
        (the WebSocket URLs ``ws_public()`` / ``ws_private()`` / ``ws_business()``
        use, as ``ws_urls=``; each unset one keeps OKX's live or demo host).

        Unset or empty variables are ignored. ``environ`` defaults to
        ``os.environ``; ``kwargs`` are passed to the constructor and win over
        the environment (a ``ws_urls=`` replaces the ``OKX_WS_*`` ones). Raises
        ``ValidationError`` for an unreadable ``OKX_DEMO`` and as the
        constructor does. Thread safety: reads ``environ`` once; builds a new Client.
        """
        env = os.environ if environ is None else environ
        demo_text = env.get("OKX_DEMO", "").strip().lower()
        if demo_text not in _TRUE | _FALSE:
            raise ValidationError(f"OKX_DEMO must be 1/true/yes or 0/false/no, got {demo_text!r}")
        options: dict[str, Any] = {"demo": demo_text in _TRUE}
        if env.get("OKX_BASE_URL"):
            options["base_url"] = env["OKX_BASE_URL"]
        ws_urls = {
            kind: env[f"OKX_WS_{kind.upper()}_URL"]
            for kind in WS_SERVICES
            if env.get(f"OKX_WS_{kind.upper()}_URL")
        }
        if ws_urls:
            options["ws_urls"] = ws_urls
        options.update(kwargs)
        return cls(
            env.get("OKX_API_KEY") or None,
            env.get("OKX_SECRET_KEY") or None,
            env.get("OKX_PASSPHRASE") or None,
            **options,
        )

    # -- REST ----------------------------------------------------------------------------
    def request(
        self, method: str, path: str, params: Any = None, *, gate_timeout_s: float | None = None
    ) -> list[Any]:
        """Call any OKX V5 REST endpoint with raw OKX parameter names; returns ``data``.

        ``method`` is GET or POST; ``path`` starts with ``/api/v5/`` and has
        no query string. GET ``params`` (a dict of scalars; None/"" dropped)
        become the query string that is signed and sent; POST ``params`` (a
        dict, or a list for batch endpoints) are the JSON body. Private
        endpoints are signed. Retries follow the client's ``RetryPolicy``.
        ``gate_timeout_s`` (seconds, >= 0) replaces the gate's ``wait_timeout_s``
        for this call: the most it may wait in the request gate in total,
        retries included.

        Raises ``ValidationError`` (nothing sent), ``APIError`` (OKX answered
        failure; ``OrderError`` with every item for order entry code 1/2), or
        ``RequestStateError`` (no usable response; ``stage``/``dispatched``;
        ``stage="gate", dispatched=False`` when not admitted within the gate
        timeout: nothing sent by that attempt). Thread-safe.
        """
        return self._rest.request(method, path, params, gate_timeout_s=gate_timeout_s)

    def sync_time(self) -> int:
        """Measure the clock offset to OKX (``GET /api/v5/public/time``, round-trip
        midpoint) and use it for every later signature; returns it in ms.

        The client also re-syncs by itself, once per call, when OKX refuses a
        timestamp (REST 50102/50112, WS login 60006 of the WS clients it built).
        Raises like ``request``. Thread-safe.
        """
        return self._rest.sync_time()

    def set_time_offset_ms(self, offset_ms: int) -> None:
        """Use your own time source: OKX server time minus the local wall clock, in ms,
        for every later signature (REST and the WS logins of clients built here).

        Shown as ``source: "manual"`` in ``stats()["time_sync"]`` and
        ``evidence()["clock"]``. A later ``sync_time()``, periodic re-sync or
        re-sync after a refused timestamp replaces it (turn those off with
        ``time_sync_interval_s=0`` and ``RetryPolicy(resync_on_time_skew=False)``).
        Raises ``ValidationError`` for a non-int or beyond ±1 day. Thread-safe.
        """
        self._rest.time_sync.set_manual(offset_ms)

    @property
    def time_offset_ms(self) -> int:
        """OKX server time minus the local wall clock, in ms (0 until synced)."""
        return self._rest.time_sync.offset_ms

    def now_ms(self) -> int:
        """The estimated OKX server time in Unix ms (wall clock + offset). Thread-safe."""
        return self._rest.time_sync.now_ms()

    def stats(self) -> dict[str, Any]:
        """REST statistics (JSON-serialisable): ``requests``, ``successes``,
        ``failures``, ``failures_by_code``, ``attempts``, ``retries``,
        ``resyncs``, ``latency_s`` percentiles, ``last_errors``, and
        ``time_sync``: ``offset_ms``, ``source`` (None, ``"okx"`` or ``"manual"``), ``age_s`` (None before the first sync),
        ``syncs``, ``failures``, ``last_error`` ("" after a success),
        ``last_error_age_s``, ``interval_s`` (0: no periodic re-sync) and
        ``timer_running``. Thread-safe."""
        out = self._rest.stats()
        timer = self._time_timer
        out["time_sync"]["interval_s"] = self._time_sync_interval_s
        out["time_sync"]["timer_running"] = timer is not None and timer.running
        return out

    @property
    def time_sync_timer(self) -> TimeSyncTimer | None:
        """The periodic re-sync (``time_sync_interval_s > 0``), else None."""
        return self._time_timer

    def gate_stats(self) -> dict[str, Any]:
        """The request gate's statistics (JSON-serialisable). Thread-safe."""
        return self._gate.stats()

    # -- live WS clients, managed books, health ----------------------------------------------
    @property
    def clock(self) -> Clock:
        """The injected clock (the stats reporter and health use it too)."""
        return self._clock

    # -- WebSocket -----------------------------------------------------------------------------
    def ws_public(self, **options: Any) -> WSClient:
        """A new, unstarted ``WSClient`` on OKX's public WebSocket (tickers, books, trades...).

        It shares this client's demo flag (demo host), clock, request gate and
        instrument cache, and is put under its safe mode and ``health()``.
        ``options`` are ``WSClient`` keywords and win (``ping_interval_s``,
        ``typed_dispatch``...). Start it with ``start()`` or ``with``. Raises
        ``ValidationError`` for bad options. Thread-safe.
        """
        return self._ws("public", options)

    def ws_private(self, **options: Any) -> WSClient:
        """A new, unstarted ``WSClient`` on the private WebSocket, logging in with this
        client's credentials (signed with its clock offset, ``now_ms``) on every
        connect: orders, account, positions, balance_and_position, fills channels and
        WS order entry (``place_order``... on the same gate buckets as REST).
        A login OKX refuses for its timestamp (60006) re-syncs this client's clock once
        and logs in again (unless ``RetryPolicy(resync_on_time_skew=False)``).
        Raises ``ValidationError`` without credentials or for bad options. Thread-safe.
        """
        if self._credentials is None and "credentials" not in options:
            raise ValidationError("ws_private() needs a Client with credentials")
        return self._ws("private", options)

    def ws_business(self, **options: Any) -> WSClient:
        """A new, unstarted ``WSClient`` on the business WebSocket (candles, trades-all,
        algo channels); logs in when this client has credentials. Raises
        ``ValidationError`` for bad options. Thread-safe.
        """
        return self._ws("business", options)

    def _ws(self, kind: str, options: dict[str, Any]) -> WSClient:
        if kind != "public":
            options.setdefault("credentials", self._credentials)
        options.setdefault("now_ms", self.now_ms)
        if self._resync_on_skew:  # one switch for REST and WS
            options.setdefault("resync_time", self._rest.resync)
        options.setdefault("clock", self._clock)
        options.setdefault("gate", self._gate)
        options.setdefault("instruments", self.instrument_cache)
        ws = WSClient(self._ws_urls[kind], **options)
        if self._background.fn is not None:
            ws.on_error(lambda exc: self._report_background_error(f"ws {kind}", exc))
        if options["gate"] is self._gate:  # WS orders draw on this gate: keep its limit fresh
            ws.set_account_limit_refresh(self._rest.refresh_account_limit)
        return self._register_ws(ws)

    def _adopt(self, child: Any, *, kind: str, label: str) -> Adoption:
        """Own ``child`` (weakly): ``close()`` closes it (``child.close(timeout)``), newest
        first. ``kind`` groups it (``"ws"``, ``"book"``, ``"reporter"``, ``"dead-man"``),
        ``label`` names it in log lines. Raises ``ValidationError`` when this client is
        closed. Thread-safe. (StatsReporter calls it; see okx_sync.lifecycle.)"""
        return self._children.adopt(child, kind=kind, label=label)

    def _report_background_error(self, source: str, error: BaseException) -> None:
        """Hand ``error`` of background work ``source`` to ``on_background_error`` (see
        :class:`~okx_sync.handler_errors.BackgroundErrors`). Never raises. Thread-safe."""
        self._background.report(source, error)

    def _register_ws(self, ws: Any) -> Any:
        """Own ``ws`` (see ``_adopt``; listed by ``ws_clients()``) and put it under this
        client's safe mode (``ws.add_guard``); returns it. Raises ``ValidationError``
        when this client is closed. Thread-safe."""
        name = getattr(ws, "name", "?")
        self._adopt(ws, kind="ws", label=f"WS client {name} ({getattr(ws, 'url', '?')})")
        add_guard = getattr(ws, "add_guard", None)
        if callable(add_guard):
            add_guard(self._safe_mode.guard)
        return ws

    def _register_managed_book(self, book: Any) -> Any:
        """Own ``book`` (see ``_adopt``; listed by ``managed_books()``); returns it.
        Thread-safe."""
        self._adopt(book, kind="book", label=f"managed book {getattr(book, 'inst_id', '?')}")
        return book

    def ws_clients(self) -> list[Any]:
        """The live WSClients this client built, oldest first: started and not closed
        (a client whose loop stopped for good, e.g. login refused, stays listed — it is
        down, not gone). Unstarted and closed clients are left out. Thread-safe."""
        return [ws for ws in self._children.live("ws") if getattr(ws, "started", True)]

    def managed_books(self) -> list[Any]:
        """The open managed order books of this client's live WS clients (and any
        registered with ``_register_managed_book``), oldest first; closed books are
        left out. Thread-safe."""
        books = self._children.live("book")
        for ws in self.ws_clients():
            listed = getattr(ws, "managed_books", None)
            if callable(listed):
                books.extend(listed())
        seen: set[int] = set()
        out = []
        for book in books:
            if id(book) not in seen and not getattr(book, "closed", False):
                seen.add(id(book))
                out.append(book)
        return out

    def health(self) -> Health:
        """The client's health now: ``ok`` / ``degraded`` / ``down`` with the reasons.

        Judged from ``stats()``, ``gate_stats()`` and the stats of every live WS
        client and managed book (see :mod:`okx_sync.ops.health`; thresholds
        from ``Client(health_thresholds=...)``); ``.components`` has one part
        per source (``"rest"``, ``"gate"``, ``"ws public"``, ``"book
        books:BTC-USDT"``...). Counters such as reconnects are judged over a
        window, remembered between calls (and shared with a ``StatsReporter``).
        Never raises for a source whose stats fail (it is left out).
        Thread-safe.
        """
        from .ops.reporter import collect_snapshot

        return collect_snapshot(self, monitor=self.health_monitor, clock=self._clock).health

    # -- operations: safe mode, dead-man switch, evidence ------------------------------------
    @property
    def trade(self) -> SafeTradeAPI:
        """``client.trade``: the OKX trade endpoints plus ``place_order_safely``
        (:func:`okx_sync.ops.reconcile.place_order_safely`)."""
        return self._trade

    def enter_safe_mode(
        self, cancel_open_orders: bool = False, reason: str = "", *, drain_timeout_s: float = 30.0
    ) -> SafeModeReport:
        """Enter safe mode ("只撤不加"): refuse every order placement and amend, REST and WS.

        From now on placements and amends fail before sending with
        ``SafeModeError``; cancels, queries, ``reduceOnly`` placements and
        close-position still go out. Returns once every placement/amend that
        was already being sent has been answered (at most ``drain_timeout_s`` s;
        the report's ``drained`` says whether they all were), so no order is
        sent after it returns: one still waiting in the request gate or for a
        retry is refused before its send. ``cancel_open_orders=True`` then cancels every
        pending order (``orders-pending``, batches of 20, through the gate) and
        reports what was cancelled, what was already final and what failed
        (``report.cancel``); concurrent calls share one sweep.
        Returns a :class:`~okx_sync.ops.safe_mode.SafeModeReport`; never raises
        for cancel failures (they are in the report and logged at ERROR).
        Thread-safe; calling it again while on keeps it on.
        """
        return enter_safe_mode(
            self,
            self._safe_mode,
            cancel_open_orders=cancel_open_orders,
            reason=reason,
            drain_timeout_s=drain_timeout_s,
        )

    def exit_safe_mode(self) -> bool:
        """Leave safe mode: placements and amends go out again. Returns True when it was on.

        Reconcile first (runbook §0.4: ``Reconciler(client).snapshot()``). Thread-safe.
        """
        return self._safe_mode.exit()

    @property
    def safe_mode(self) -> SafeModeState:
        """Safe mode now (truthy while on): ``active``, ``reason``, ``since``,
        ``entered``, ``refused``, ``in_flight``. Thread-safe."""
        return self._safe_mode.state

    def dead_man_switch(
        self,
        timeout_s: int = 60,
        refresh_s: float = 10.0,
        tag: str | None = None,
        *,
        on_error: ErrorHandler | None = None,
    ) -> DeadManSwitch:
        """Arm OKX's ``cancel-all-after`` (``timeout_s`` 10..120) and keep it refreshed.

        Returns a running :class:`~okx_sync.ops.dead_man.DeadManSwitch`
        (thread ``okx-dead-man[-tag]``) that re-sends it every ``refresh_s``
        s; ``tag`` limits it to orders with that tag. ``switch.stop()`` or
        ``client.close()`` disarms it (``timeOut=0``). Refresh failures are
        logged, counted and passed to ``on_error``; when no refresh succeeded
        within ``timeout_s`` it logs at ERROR and passes a
        ``DeadManSwitchError``. Raises ``ValidationError`` for bad arguments or
        when a switch for the same ``tag`` is running, and what the first
        ``cancel_all_after`` call raises (nothing is left running then).
        Thread-safe.
        """
        switch = DeadManSwitch(
            self, timeout_s=timeout_s, refresh_s=refresh_s, tag=tag, on_error=on_error
        )
        if self._background.fn is not None:
            switch.on_error(lambda exc: self._report_background_error(switch.name, exc))
        with self._live_lock:  # the tag check and the adoption are one step
            if any(d.tag == tag for d in self.dead_man_switches()):
                raise ValidationError(f"a dead-man switch for tag={tag!r} is already running")
            adoption = self._adopt(switch, kind="dead-man", label=f"dead-man switch {switch.name}")
        try:
            switch.start()
        except BaseException:
            adoption.release()
            raise
        return switch

    def dead_man_switches(self) -> list[DeadManSwitch]:
        """The running dead-man switches of this client. Thread-safe."""
        return self._children.live("dead-man")

    def evidence(self, last_errors: int = 20) -> dict[str, Any]:
        """An evidence snapshot (runbook §0.2, §1) as a JSON-serialisable dict.

        okx_sync and Python versions, the configuration (secrets redacted),
        the clock offset and when it was measured, safe mode, dead-man
        switches, gate and REST stats, the last ``last_errors`` failed
        attempts (class, code, msg, request_id, stage, dispatched, method,
        path, latency_s, retry_index, ...), the ``stats()`` of every live
        WSClient and managed book, and health. See
        :func:`okx_sync.ops.evidence.collect_evidence`. Never raises for a
        source that fails (it is named under ``collect_errors``). Thread-safe.
        """
        from .ops.evidence import collect_evidence

        return collect_evidence(self, last_errors=last_errors)

    @property
    def app_info(self) -> dict[str, str | None]:
        """``{"version", "commit"}`` of the deployed application (``Client(app_version=...,
        app_commit=...)``; None when not given). Thread-safe (read-only)."""
        return dict(self._app_info)

    def _evidence_config(self) -> dict[str, Any]:
        """The client's configuration for ``evidence()``; secrets redacted."""
        return {
            "base_url": self.base_url,
            "demo": self.demo,
            **self._settings,
        }

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._closed

    def close(self, timeout_s: float = 10.0) -> None:
        """Close everything this client built, then refuse new calls. Idempotent.

        First closes, newest first, what its factories made and the user has
        not closed: stats reporters built on it, dead-man switches (disarmed
        with ``timeOut=0`` while the REST path is still open), managed order
        books (unsubscribed) and the WS clients of ``ws_public()`` /
        ``ws_private()`` / ``ws_business()`` (connections closed). Each
        gets what is left of ``timeout_s`` (at least 0.1 s) to join its
        threads; a dead-man disarm is one more REST call, bounded by the HTTP
        ``timeout_s`` and the gate's ``wait_timeout_s``. Then wakes calls waiting
        in the gate (they fail with ``RequestStateError(stage="gate")``) and
        closes the HTTP connections; calls already sending finish or fail on
        their own. Never raises for a child: a child that fails to close, or
        whose threads outlive their share, is logged by name on
        ``okx_sync.lifecycle`` (ERROR / WARNING). A closed client cannot be
        reopened (build a new one); its factories raise ``ValidationError``.

        Stops the periodic clock re-sync and joins its thread (at most its one
        HTTP attempt: ``timeout`` + 1 s).

        Thread safety: any thread, any number of times; a call while another
        is closing waits for it (at most ``timeout_s``). Called from a
        thread of a child (a WS handler, say) it does not join that thread.
        Raises ``ValidationError`` for a ``timeout_s`` that is not > 0.
        """
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float):
            raise ValidationError(f"timeout_s must be a number > 0, got {timeout_s!r}")
        if not timeout_s > 0:
            raise ValidationError(f"timeout_s must be > 0, got {timeout_s!r}")
        with self._live_lock:
            first, self._closing = not self._closing, True
        if not first:
            self._close_done.wait(timeout_s)
            return
        timer = self._time_timer
        try:
            self._children.close_all(timeout_s)
        finally:
            self._closed = True
            if timer is not None:
                timer.stop()
            self._gate.close()  # a periodic sync waiting in the gate fails at once
            self._rest.close()
            if timer is not None and not timer.join(self._timeout_s + 1.0):
                _log.warning("okx-time-sync did not stop within the HTTP timeout + 1 s")
            self._background.flush()
            self._close_done.set()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"Client(base_url={self.base_url!r}, demo={self.demo}, "
            f"credentials={'yes' if self._rest.has_credentials else 'no'}, {state})"
        )


if TYPE_CHECKING:  # mypy checks that Client satisfies every ops port (okx_sync/ops/ports.py)

    def _satisfies_ports(client: Client) -> None:
        _trading: ports.TradingClient = client
        _stats: ports.StatsSource = client
        _evidence: ports.EvidenceSource = client
        _doctor: ports.DoctorClient = client
        _order: ports.OrderClient = client
        _reconcile: ports.ReconcileClient = client
        _reporter_host: ports.ReporterHost = client
        _demo: ports.DemoClient = client
        _drill: ports.DrillClient = client
