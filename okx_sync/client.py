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

import os
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import requests

from .client_parts import build_trade, env_options, wire
from .clock import SYSTEM_CLOCK, Clock
from .errors import ValidationError
from .gate import RequestGateConfig
from .gate.stats import GateStats
from .handler_errors import BackgroundErrorHandler
from .lifecycle import Adoption
from .ops.health import Health, HealthThresholds
from .ops.safe_mode import SafeModeReport, SafeModeState
from .rest.api import RestAPI
from .rest.stats import RestStats
from .rest.transport import DEFAULT_MAX_RESPONSE_BYTES, Transport
from .retry import RetryPolicy

if TYPE_CHECKING:  # imported where used: a Client is built without them (start-up time)
    from .ops import ports
    from .ops.dead_man import DeadManSwitch, ErrorHandler
    from .ops.reconcile import SafeTradeAPI
    from .ops.time_sync import TimeSyncTimer
    from .ws.client import WSClient
    from .ws.managed_book import ManagedOrderBook

__all__ = ["Client"]


class Client(RestAPI):
    """A blocking OKX V5 client shared by any number of threads.

    ``Client(api_key, secret_key, passphrase, *, demo=False, base_url="https://www.okx.com",
    timeout=10.0, gate=RequestGateConfig(), retry=RetryPolicy())``. Credentials are optional for
    public endpoints and must be given all three or none. ``demo=True`` sends
    ``x-simulated-trading: 1`` (demo keys only work with it). ``timeout_s`` is the deadline of
    one whole HTTP attempt in seconds (connect, send, headers and body together, not per socket
    read). ``max_response_bytes`` bounds one response body, on the wire and after gzip/deflate
    decoding (default 16 MiB; beyond it an ``APIError``, or
    ``RequestStateError(dispatched=True)`` for order entry). Keyword-only extras: ``session``
    (your own ``requests.Session``: every call goes through ``session.request``, so proxies,
    adapters, TLS settings and hooks are honoured; you keep ownership; without it calls go
    straight to a pooled urllib3 connection pool, see :mod:`okx_sync.rest.transport`),
    ``transport`` (any :class:`~okx_sync.rest.transport.Transport`, such as
    ``okx_sync.testing.MockTransport`` in tests; not with ``session``; you keep ownership, and
    it enforces its own deadline and size bounds), ``clock`` (an injected
    :class:`~okx_sync.clock.Clock`), ``rng`` (a ``random.Random`` for backoff jitter),
    ``health_thresholds`` (a :class:`~okx_sync.ops.health.HealthThresholds` for :meth:`health`),
    ``ws_urls`` (``{"public"|"private"|"business": url}`` overriding the OKX WebSocket URLs that
    ``ws_public()``/``ws_private()``/``ws_business()`` use — live or demo hosts by ``demo``;
    ``okx_sync.testing.sim_client`` passes a simulator's), ``time_sync_interval_s`` (0, the
    default: off; else >= 10: re-measure the clock offset whenever it is that old, at once at
    construction, on a background thread ``okx-time-sync`` that ``close()`` stops and joins; a
    failed sync is retried after ``min(interval, 60)`` s; see :mod:`okx_sync.ops.time_sync`;
    offset, age and last error are in ``stats().time_sync`` and ``evidence()["clock"]``).
    ``user_agent`` (appended after a space to every REST request's ``User-Agent``:
    ``okx_sync/<version>``, or your ``session``'s own one; 1..256 printable ASCII characters).
    ``app_version`` / ``app_commit`` (your deployed application's version and commit, up to 128
    printable ASCII characters each: ``evidence()["app"]``, runbook §1). ``on_background_error``
    (``fn(source, error)``, besides the log line: errors no caller sees — ``"account_limit"`` (a
    failed account-limit load), ``"reporter <name> sink <Sink>"``, ``"okx-dead-man[-tag]"``
    (refresh failures and expiry), ``"time_sync"`` (periodic re-sync) and ``"ws public"``/``"ws
    private"``/``"ws business"`` (every ``on_error`` event of the WS clients ``ws_public()``/...
    build); called on the thread that met the error, so keep it quick; its own exceptions are
    logged, never propagated). ``allow_insecure_http`` (default False: with credentials, a plain
    ``http://`` ``base_url`` or ``ws://`` private/business URL whose host is not loopback is
    refused, since the key and passphrase would cross the network unencrypted; loopback — the
    simulator — is always allowed).

    Raises ``ValidationError`` (a ``ValueError``) at construction for partial credentials, a
    malformed ``base_url``, a ``timeout_s`` that is not a positive finite number, a non-bool
    ``demo``, a ``gate``/``retry``/``health_thresholds`` of the wrong type
    (:func:`okx_sync.validators.instance`), a bad ``time_sync_interval_s``, a non-positive
    ``max_response_bytes``, a non-callable ``on_background_error``, an
    ``app_version``/``app_commit``/``user_agent`` that is no short printable text, a ``session``
    that is no ``requests.Session``, both ``session`` and ``transport`` or a ``transport``
    without ``send``, or credentials over plain text to a remote host (see
    ``allow_insecure_http``); calls raise ``ValidationError``, ``APIError``/``OrderError`` or
    ``RequestStateError`` (see :mod:`okx_sync.errors`).

    Threading contract: every public method may be called from any thread at the same time;
    calls share one request gate and one keep-alive connection pool sized to
    ``gate.max_concurrent``. The client owns what it builds: ``close()`` (idempotent, from any
    thread) first closes, newest first, the WS clients of
    ``ws_public()``/``ws_private()``/``ws_business()`` with their managed books, every
    ``StatsReporter`` built on it and its dead-man switches, joining their threads within its
    ``timeout_s``; then calls waiting in the gate fail with ``RequestStateError(stage="gate")``
    and later calls are refused the same way. Use it as a context manager to close it.
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
        w = wire(  # the parts (okx_sync.client_parts); the endpoint groups: RestAPI
            self,
            (api_key, secret_key, passphrase),
            demo=demo,
            base_url=base_url,
            timeout_s=timeout_s,
            gate=gate,
            retry=retry,
            session=session,
            transport=transport,
            clock=clock,
            rng=rng,
            health_thresholds=health_thresholds,
            ws_urls=ws_urls,
            time_sync_interval_s=time_sync_interval_s,
            max_response_bytes=max_response_bytes,
            allow_insecure_http=allow_insecure_http,
            app_version=app_version,
            app_commit=app_commit,
            user_agent=user_agent,
            on_background_error=on_background_error,
        )
        self._clock, self.demo, self.base_url = clock, bool(demo), w.rest.base_url
        self._gate, self._rest, self._life, self._children = w.gate, w.rest, w.life, w.life.children
        self._safe_mode, self.health_monitor, self._ws_wiring = w.safe_mode, w.health_monitor, w.ws
        self._credentials, self._ws_urls, self._settings = w.credentials, w.ws.urls, w.settings
        self._background, self._app_info = w.background, dict(w.app_info)
        self._trade: SafeTradeAPI | None = None  # built on first use (start-up time)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Client:
        """Build a Client from ``OKX_API_KEY``, ``OKX_SECRET_KEY``, ``OKX_PASSPHRASE``,
        ``OKX_DEMO`` (1/true/yes or 0/false/no), ``OKX_BASE_URL`` (the REST host) and
        ``OKX_WS_PUBLIC_URL`` / ``OKX_WS_PRIVATE_URL`` / ``OKX_WS_BUSINESS_URL`` (the WebSocket
        URLs ``ws_public()`` / ``ws_private()`` / ``ws_business()`` use, as ``ws_urls=``; each
        unset one keeps OKX's live or demo host). ``OKX_GATE_REDIS_URL`` puts the request gate's
        rate windows in Redis (``RedisGateBackend``, with ``OKX_GATE_NAMESPACE`` and
        ``OKX_GATE_IP_LABEL`` when set) on a default ``RequestGateConfig``, or on the ``gate=``
        given (whose other fields are kept).

        Unset or empty variables are ignored. ``environ`` defaults to ``os.environ``; ``kwargs``
        are passed to the constructor and win over the environment (a ``ws_urls=`` replaces the
        ``OKX_WS_*`` ones). Raises ``ValidationError`` for an unreadable ``OKX_DEMO`` and as the
        constructor does. Thread safety: reads ``environ`` once; builds a new Client."""
        env = os.environ if environ is None else environ
        creds, options = env_options(env, gate=kwargs.pop("gate", None))
        return cls(*creds, **{**options, **kwargs})

    # -- REST ----------------------------------------------------------------------------
    def request(
        self, method: str, path: str, params: Any = None, *, gate_timeout_s: float | None = None
    ) -> list[Any]:
        """Call any OKX V5 REST endpoint with raw OKX parameter names; returns ``data``.

        ``method`` is GET or POST; ``path`` starts with ``/api/v5/`` and has no query string.
        GET ``params`` (a dict of scalars; None/"" dropped) become the query string that is
        signed and sent; POST ``params`` (a dict, or a list for batch endpoints) are the JSON
        body. Private endpoints are signed. Retries follow the client's ``RetryPolicy``.
        ``gate_timeout_s`` (seconds, >= 0) replaces the gate's ``wait_timeout_s`` for this call:
        the most it may wait in the request gate in total, retries included.

        Raises ``ValidationError`` (nothing sent), ``APIError`` (OKX answered failure;
        ``OrderError`` with every item for order entry code 1/2), or ``RequestStateError`` (no
        usable response; ``stage``/``dispatched``; ``stage="gate", dispatched=False`` when not
        admitted within the gate timeout: nothing sent by that attempt). Thread-safe."""
        return self._rest.request(method, path, params, gate_timeout_s=gate_timeout_s)

    def sync_time(self) -> int:
        """Measure the clock offset to OKX (``GET /api/v5/public/time``, round-trip midpoint)
        and use it for every later signature; returns it in ms.

        The client also re-syncs by itself, once per call, when OKX refuses a timestamp (REST
        50102/50112, WS login 60006 of the WS clients it built). Raises like ``request``.
        Thread-safe."""
        return self._rest.sync_time()

    def set_time_offset_ms(self, offset_ms: int) -> None:
        """Use your own time source: OKX server time minus the local wall clock, in ms,
        for every later signature (REST and the WS logins of clients built here); shown as
        ``source: "manual"`` in ``stats().time_sync`` and ``evidence()["clock"]``. A later
        ``sync_time()``, periodic or skew re-sync replaces it (turn those off with
        ``time_sync_interval_s=0`` and ``RetryPolicy(resync_on_time_skew=False)``).
        Raises ``ValidationError`` for a non-int or beyond ±1 day. Thread-safe."""
        self._rest.time_sync.set_manual(offset_ms)

    @property
    def time_offset_ms(self) -> int:
        """OKX server time minus the local wall clock, in ms (0 until synced)."""
        return self._rest.time_sync.offset_ms

    def now_ms(self) -> int:
        """The estimated OKX server time in Unix ms (wall clock + offset). Thread-safe."""
        return self._rest.time_sync.now_ms()

    def stats(self) -> RestStats:
        """REST statistics, a frozen ``RestStats`` (``to_dict()`` for JSON): ``requests``,
        ``successes``, ``failures``, ``failures_by_code``, ``attempts``, ``retries``,
        ``resyncs``, ``latency_s`` percentiles, ``last_errors``, and ``time_sync``
        (``offset_ms``, ``source``, ``age_s``, ``syncs``, ``failures``, ``last_error``,
        ``last_error_age_s``, ``interval_s``, ``timer_running``). Thread-safe."""
        out = self._rest.stats()
        return attrs.evolve(out, time_sync=attrs.evolve(out.time_sync, **self._life.timer_stats()))

    @property
    def time_sync_timer(self) -> TimeSyncTimer | None:
        """The periodic re-sync (``time_sync_interval_s > 0``), else None."""
        return self._life.timer

    def gate_stats(self) -> GateStats:
        """The request gate's statistics as a frozen :class:`~okx_sync.gate.stats.GateStats`
        (``to_dict()`` for JSON; see ``RequestGate.stats``). Thread-safe."""
        return self._gate.stats()

    @property
    def clock(self) -> Clock:
        """The injected clock (the stats reporter and health use it too)."""
        return self._clock

    # -- WebSocket -----------------------------------------------------------------------------
    def ws_public(self, **options: Any) -> WSClient:
        """A new, unstarted ``WSClient`` on OKX's public WebSocket (tickers, books, trades...).

        It shares this client's demo flag (demo host), clock, request gate and instrument cache,
        and is put under its safe mode and ``health()``. ``options`` are ``WSClient`` keywords
        and win (``config=WSConfig(...)``, ``connect_limiter``...). Start it with ``start()`` or
        ``with``. Raises ``ValidationError`` for bad options. Thread-safe."""
        return self._ws_wiring.build("public", options)

    def ws_private(self, **options: Any) -> WSClient:
        """A new, unstarted ``WSClient`` on the private WebSocket, logging in with this client's
        credentials (signed with its clock offset, ``now_ms``) on every connect: orders,
        account, positions, balance_and_position, fills channels and WS order entry
        (``place_order``... on the same gate buckets as REST). A login OKX refuses for its
        timestamp (60006) re-syncs this client's clock once and logs in again (unless
        ``RetryPolicy(resync_on_time_skew=False)``). Raises ``ValidationError`` without
        credentials or for bad options. Thread-safe."""
        if self._credentials is None and "credentials" not in options:
            raise ValidationError("ws_private() needs a Client with credentials")
        return self._ws_wiring.build("private", options)

    def ws_business(self, **options: Any) -> WSClient:
        """A new, unstarted ``WSClient`` on the business WebSocket (candles, trades-all, algo
        channels); logs in when this client has credentials. Raises ``ValidationError`` for bad
        options. Thread-safe."""
        return self._ws_wiring.build("business", options)

    def _adopt(self, child: Any, *, kind: str, label: str) -> Adoption:
        """Own ``child`` weakly (``Children.adopt``: ``close()`` closes it); for reporters."""
        return self._children.adopt(child, kind=kind, label=label)

    def ws_clients(self) -> list[WSClient]:
        """The live WSClients this client built, oldest first: started and not closed
        (a client whose loop stopped for good, e.g. login refused, stays listed — it is
        down, not gone). Unstarted and closed clients are left out. Thread-safe."""
        return self._ws_wiring.ws_clients()

    def managed_books(self) -> list[ManagedOrderBook]:
        """The open managed order books of this client's live WS clients (and any other book
        this client adopted), oldest first; closed books are left out. Thread-safe."""
        return self._ws_wiring.managed_books()

    def health(self) -> Health:
        """The client's health now: ``ok`` / ``degraded`` / ``down`` with the reasons.

        Judged from ``stats()``, ``gate_stats()`` and the stats of every live WS client and
        managed book (see :mod:`okx_sync.ops.health`; thresholds from
        ``Client(health_thresholds=...)``); ``.components`` has one part per source (``"rest"``,
        ``"gate"``, ``"ws public"``, ``"book books:BTC-USDT"``...). Counters such as reconnects
        are judged over a window, remembered between calls (and shared with a
        ``StatsReporter``). Never raises for a source whose stats fail (it is left out).
        Thread-safe."""
        from .ops.reporter import collect_snapshot

        return collect_snapshot(self, monitor=self.health_monitor, clock=self._clock).health

    # -- operations: safe mode, dead-man switch, evidence ------------------------------------
    @property
    def trade(self) -> SafeTradeAPI:
        """``client.trade``: the OKX trade endpoints plus ``place_order_safely``
        (:func:`okx_sync.ops.reconcile.place_order_safely`)."""
        trade = self._trade
        if trade is None:  # built on first use; it holds only this client, so a racing
            trade = self._trade = build_trade(self)  # second build is equal to the first
        return trade

    def enter_safe_mode(
        self, cancel_open_orders: bool = False, reason: str = "", *, drain_timeout_s: float = 30.0
    ) -> SafeModeReport:
        """Enter safe mode ("只撤不加"): refuse every order placement and amend, REST and WS.

        From now on placements and amends fail before sending with ``SafeModeError``; cancels,
        queries, ``reduceOnly`` placements and close-position still go out. Returns once every
        placement/amend that was already being sent has been answered (at most
        ``drain_timeout_s`` s; the report's ``drained`` says whether they all were), so no order
        is sent after it returns: one still waiting in the request gate or for a retry is
        refused before its send. ``cancel_open_orders=True`` then cancels every pending order
        (``orders-pending``, batches of 20, through the gate) and reports what was cancelled,
        what was already final and what failed (``report.cancel``); concurrent calls share one
        sweep. Returns a :class:`~okx_sync.ops.safe_mode.SafeModeReport`; never raises for
        cancel failures (they are in the report and logged at ERROR). Thread-safe; calling it
        again while on keeps it on."""
        from .ops.safe_mode import enter_safe_mode

        return enter_safe_mode(
            self,
            self._safe_mode,
            cancel_open_orders=cancel_open_orders,
            reason=reason,
            drain_timeout_s=drain_timeout_s,
        )

    def exit_safe_mode(self) -> bool:
        """Leave safe mode: placements and amends go out again. Returns True when it was on.

        Reconcile first (runbook §0.4: ``Reconciler(client).snapshot()``). Thread-safe."""
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

        Returns a running :class:`~okx_sync.ops.dead_man.DeadManSwitch` (thread
        ``okx-dead-man[-tag]``) that re-sends it every ``refresh_s`` s; ``tag`` limits it to
        orders with that tag. ``switch.stop()`` or ``client.close()`` disarms it
        (``timeOut=0``). Refresh failures are logged, counted and passed to ``on_error``; when
        no refresh succeeded within ``timeout_s`` it logs at ERROR and passes a
        ``DeadManSwitchError``. Raises ``ValidationError`` for bad arguments or when a switch
        for the same ``tag`` is running, and what the first ``cancel_all_after`` call raises
        (nothing is left running then). Thread-safe."""
        return self._life.start_dead_man(
            self, timeout_s=timeout_s, refresh_s=refresh_s, tag=tag, on_error=on_error
        )

    def dead_man_switches(self) -> list[DeadManSwitch]:
        """The running dead-man switches of this client. Thread-safe."""
        return self._children.live("dead-man")

    def evidence(self, last_errors: int = 20) -> dict[str, Any]:
        """An evidence snapshot (runbook §0.2, §1) as a JSON-serialisable dict.

        okx_sync and Python versions, the configuration (secrets redacted), the clock offset and
        when it was measured, safe mode, dead-man switches, gate and REST stats, the last
        ``last_errors`` failed attempts (class, code, msg, request_id, stage, dispatched,
        method, path, latency_s, retry_index, ...), the ``stats()`` of every live WSClient and
        managed book, and health. See :func:`okx_sync.ops.evidence.collect_evidence`. Never
        raises for a source that fails (it is named under ``collect_errors``). Thread-safe."""
        from .ops.evidence import collect_evidence

        return collect_evidence(self, last_errors=last_errors)

    @property
    def app_info(self) -> dict[str, str | None]:
        """``{"version", "commit"}`` of the deployed application (``app_version=``,
        ``app_commit=``; None when not given). Thread-safe."""
        return dict(self._app_info)

    def _report_background_error(self, source: str, error: BaseException) -> None:
        """Hand ``error`` of background work ``source`` to ``on_background_error``
        (:class:`~okx_sync.handler_errors.BackgroundErrors`). Never raises. Thread-safe."""
        self._background.report(source, error)

    def _evidence_config(self) -> dict[str, Any]:
        """The client's configuration for ``evidence()``; secrets redacted."""
        return dict(self._settings)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._life.closed

    def close(self, timeout_s: float = 10.0) -> None:
        """Close everything this client built, then refuse new calls. Idempotent.

        First closes, newest first, what its factories made and the user has not closed: stats
        reporters, dead-man switches (disarmed with ``timeOut=0``, one more REST call bounded by
        the HTTP ``timeout_s`` and the gate's ``wait_timeout_s``), managed order books
        (unsubscribed) and the WS clients of ``ws_public()``/... (connections closed), each with
        what is left of ``timeout_s`` (at least 0.1 s) to join its threads. Then stops and joins
        the periodic clock re-sync (at most its one HTTP attempt + 1 s), fails calls waiting in
        the gate (``RequestStateError(stage="gate")``) and closes the HTTP connections; calls
        already sending finish or fail on their own. A child that fails to close, or whose
        threads outlive their share, is logged by name on ``okx_sync.lifecycle``, never raised.
        A closed client cannot be reopened; its factories raise ``ValidationError``.
        Thread safety: any thread, any number of times; a concurrent call waits for the first
        (at most ``timeout_s``); from a child's thread (a WS handler) it does not join that
        thread. Raises ``ValidationError`` for a ``timeout_s`` that is not > 0."""
        self._life.close(timeout_s)  # okx_sync.client_parts.Lifecycle

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._life.closed else "open"
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
        _market: ports.MarketLoadClient = client
        _reconcile: ports.ReconcileClient = client
        _reporter_host: ports.ReporterHost = client
        _demo: ports.DemoClient = client
        _drill: ports.DrillClient = client
