"""The :class:`Simulator`: a local OKX (REST + WS + faults + control) on 127.0.0.1.

See :mod:`okx_sync.sim` for the full API. Thread safety: the public methods may be
called from any thread; ``close()`` is idempotent and joins every thread.
"""

from __future__ import annotations

import logging
import random
import secrets
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from ..auth import Credentials
from ..clock import SYSTEM_CLOCK, Clock
from ..rest.endpoints import registry
from .authcheck import ApiKey, KeyStore
from .exchange import Exchange
from .faults import Faults
from .instruments import InstrumentSpec, resolve_instruments
from .ratelimit import RateLimiter
from .rest import RestApp, RestServer
from .timers import Timers

if TYPE_CHECKING:  # pragma: no cover
    from .ws import WSHub, WSServer

__all__ = ["Simulator", "SimCredentials", "DEFAULT_BALANCES", "DEFAULT_FUNDING", "LOOPBACK_NAMES"]

log = logging.getLogger("okx_sync.sim")

#: ``host=`` values accepted; every server binds 127.0.0.1 (IPv6 loopback is not served:
#: the HTTP servers are IPv4 and the URLs have no bracket form).
LOOPBACK_NAMES = ("127.0.0.1", "localhost")

DEFAULT_BALANCES: dict[str, str] = {"USDT": "100000", "BTC": "2", "ETH": "20"}
DEFAULT_FUNDING: dict[str, str] = {"USDT": "5000", "BTC": "0.5"}


@attrs.frozen
class SimCredentials:
    """The simulator's two API keys: ``live`` (no demo header) and ``demo``
    (requires ``x-simulated-trading: 1``). Each trades its own account.
    ``repr`` shows only the keys' last 4 characters."""

    live: Credentials
    demo: Credentials
    live_uid: str
    demo_uid: str


def _make_credentials(rng: random.Random, label: str) -> Credentials:
    h = f"{rng.getrandbits(128):032x}"
    api_key = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    secret = f"{rng.getrandbits(128):032X}"
    passphrase = f"Sim{label.capitalize()}Pass{rng.randrange(10**4):04d}"
    return Credentials(api_key=api_key, secret_key=secret, passphrase=passphrase)


class Simulator:
    """A local OKX V5 (REST + WebSocket), started on construction; use as a context manager.

    Every server (REST, WS, control) listens on 127.0.0.1 only: ``host`` must be
    ``"127.0.0.1"`` or ``"localhost"`` (anything else, ``"0.0.0.0"`` included, raises
    ``ValueError``). Raises ``ValueError`` for bad options, ``OSError`` if a port cannot
    be bound and ``RuntimeError`` when the WS server's ``websockets`` package is missing.
    See :mod:`okx_sync.sim` for attributes and options.
    """

    def __init__(
        self,
        seed: int | str = 0,
        instruments: Iterable[InstrumentSpec | str] | None = None,
        checksum: str = "crc32",
        *,
        tick_interval_s: float = 0.05,
        book_interval_s: float = 0.1,
        auto_tick: bool = True,
        book_depth: int = 50,
        volatility: float = 1.0,
        trade_probability: float = 0.3,
        quiet_interval_s: float | None = 60.0,
        history_minutes: int = 1440,
        balances: Mapping[str, str | Decimal] | None = None,
        funding_balances: Mapping[str, str | Decimal] | None = None,
        idle_timeout_s: float = 30.0,
        auth_skew_s: float = 30.0,
        rate_limits: bool = True,
        account_order_limit: int = 1000,
        ws_queue_size: int = 10_000,
        ws: bool = True,
        control: bool = True,
        tls: bool = False,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if host not in LOOPBACK_NAMES:
            raise ValueError(
                f"the simulator binds loopback only: host must be one of {LOOPBACK_NAMES}, "
                f"not {host!r}"
            )
        host = "127.0.0.1"  # IPv4 loopback for every server, whichever name was given
        if tick_interval_s <= 0 or book_interval_s <= 0:
            raise ValueError("tick_interval_s and book_interval_s must be > 0")
        self.seed = seed
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.tick_interval_s = tick_interval_s
        self.book_interval_s = book_interval_s
        self.auto_tick = auto_tick
        self._closed = False
        self._close_lock = threading.Lock()
        self._stop = threading.Event()
        rng = random.Random(f"{seed}:simulator")
        specs = resolve_instruments(instruments, int(self.clock.time() * 1000))
        self.timers = Timers(self.clock)
        self.exchange = Exchange(
            specs=specs,
            seed=seed,
            clock=self.clock,
            checksum=checksum,
            book_depth=book_depth,
            quiet_interval_s=quiet_interval_s,
            volatility=volatility,
            trade_probability=trade_probability,
            history_minutes=history_minutes,
            schedule=self.timers.schedule,
        )
        live = _make_credentials(rng, "live")
        demo = _make_credentials(rng, "demo")
        live_uid = str(rng.randrange(10**15, 10**16))
        demo_uid = str(rng.randrange(10**15, 10**16))
        self.credentials = SimCredentials(
            live=live, demo=demo, live_uid=live_uid, demo_uid=demo_uid
        )
        start_bal = dict(DEFAULT_BALANCES if balances is None else balances)
        start_fund = dict(DEFAULT_FUNDING if funding_balances is None else funding_balances)
        for uid, is_demo, label in (
            (live_uid, False, "okx-sim-live"),
            (demo_uid, True, "okx-sim-demo"),
        ):
            self.exchange.create_account(
                uid, demo=is_demo, label=label, balances=start_bal, funding=start_fund
            )
        self.keys = KeyStore(
            [
                ApiKey(credentials=live, uid=live_uid, demo=False, label="okx-sim-live"),
                ApiKey(credentials=demo, uid=demo_uid, demo=True, label="okx-sim-demo"),
            ]
        )
        self.registry = registry()
        self.limiter = RateLimiter(
            self.clock,
            self.registry,
            account_order_limit=account_order_limit,
            inst_info=self._inst_info,
            enabled=rate_limits,
        )
        self.faults = Faults(self.clock, self.exchange)
        self.ssl_context: ssl.SSLContext | None = None
        self.cert_path: str | None = None
        if tls:
            from .tls import make_server_context

            self.ssl_context, self.cert_path = make_server_context()
        self.rest_app = RestApp(
            exchange=self.exchange,
            keys=self.keys,
            limiter=self.limiter,
            faults=self.faults,
            clock=self.clock,
            registry=self.registry,
            seed=seed,
            auth_skew_s=auth_skew_s,
        )
        self._servers: list[Any] = []
        self.hub: WSHub | None = None
        self._ws_server: WSServer | None = None
        self._control: RestServer | None = None
        #: Per-run secret of the control endpoint ("" with control=False); in control_url.
        self.control_token = ""
        self._market_thread: threading.Thread | None = None
        try:
            self._rest = RestServer(
                self.rest_app.handle, name="rest", host=host, ssl_context=self.ssl_context
            )
            if ws:
                from .ws import WSHub, WSServer

                self.hub = WSHub(
                    exchange=self.exchange,
                    keys=self.keys,
                    faults=self.faults,
                    limiter=self.limiter,
                    registry=self.registry,
                    clock=self.clock,
                    timers=self.timers,
                    seed=seed,
                    idle_timeout_s=idle_timeout_s,
                    queue_size=ws_queue_size,
                    auth_skew_s=auth_skew_s,
                )
                self.faults.attach_ws(self.hub)
                self.exchange.add_listener(self.hub.on_events)
                self._ws_server = WSServer(self.hub, host=host, ssl_context=self.ssl_context)
            if control:
                from .control import ControlApp

                # a secret, not a simulation input: never from the seeded rng
                self.control_token = secrets.token_urlsafe(18)
                app = ControlApp(self, self.control_token)
                self._control = RestServer(app.handle, name="control", host=host)
            if auto_tick:
                self._market_thread = threading.Thread(
                    target=self._market_loop, name="okx-sim-market", daemon=True
                )
                self._market_thread.start()
        except BaseException:
            self.close()
            raise
        log.info(
            "simulator started",
            extra={"rest_url": self.rest_url, "ws_public_url": self.ws_public_url if ws else ""},
        )

    # ------------------------------------------------------------------ attributes
    def _inst_info(self, inst_id: str) -> tuple[str, str] | None:
        spec = self.exchange.specs.get(inst_id)
        return (spec.inst_type, spec.inst_family) if spec is not None else None

    @property
    def rest_url(self) -> str:
        """Base URL for REST, e.g. ``http://127.0.0.1:PORT`` (paths are ``/api/v5/...``)."""
        return self._rest.url

    def _ws_url(self, kind: str) -> str:
        if self._ws_server is None:
            raise RuntimeError("the simulator was started with ws=False")
        return self._ws_server.url(kind)

    @property
    def ws_public_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws/v5/public``."""
        return self._ws_url("public")

    @property
    def ws_private_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws/v5/private``."""
        return self._ws_url("private")

    @property
    def ws_business_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws/v5/business``."""
        return self._ws_url("business")

    def ws_urls(self) -> dict[str, str]:
        """The WS URL of each service (``public``, ``private``, ``business``), or ``{}``
        when the simulator was started with ``ws=False``. Never raises; thread-safe
        (reads immutable state)."""
        if self._ws_server is None:
            return {}
        return {kind: self._ws_server.url(kind) for kind in ("public", "private", "business")}

    @property
    def control_url(self) -> str:
        """Base URL of the loopback control endpoint (faults, tick, flood, state):
        ``http://127.0.0.1:PORT/<control_token>``. The per-run token is its first
        path segment; requests without it, or with a non-loopback ``Host`` header,
        are refused (403). Keep it private like the simulator's keys."""
        if self._control is None:
            raise RuntimeError("the simulator was started with control=False")
        return f"{self._control.url}/{self.control_token}"

    @property
    def live_uid(self) -> str:
        """uid of the live key's account."""
        return self.credentials.live_uid

    @property
    def demo_uid(self) -> str:
        """uid of the demo key's account."""
        return self.credentials.demo_uid

    # ------------------------------------------------------------------ driving
    def _market_loop(self) -> None:
        next_tick = time.monotonic()
        next_flush = next_tick
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_tick:
                    self.exchange.step()
                    next_tick = now + self.tick_interval_s
                if now >= next_flush:
                    self.exchange.flush()
                    next_flush = now + self.book_interval_s
            except Exception:
                log.exception("simulator market step failed")
            self._stop.wait(max(0.0, min(next_tick, next_flush) - time.monotonic()))

    def tick(self, n: int = 1, *, flush: bool = True) -> None:
        """Run ``n`` market-maker steps now (then publish when ``flush``). For tests
        with ``auto_tick=False``."""
        for _ in range(n):
            self.exchange.step()
        if flush:
            self.exchange.flush()

    def flush(self) -> None:
        """Publish pending book/ticker/candle changes now."""
        self.exchange.flush()

    def flood(self, inst_id: str, count: int, channels: Iterable[str] = ("books", "trades")) -> int:
        """Push ``count`` book updates (and trades) for ``inst_id`` as fast as the
        subscribers read them (for benchmarks). Returns the number of rounds."""
        return self.exchange.flood(inst_id, count, tuple(channels))

    def client_ssl_context(self) -> ssl.SSLContext:
        """An ``SSLContext`` trusting this simulator's certificate (``tls=True`` only).

        Raises ``RuntimeError`` when the simulator runs without TLS.
        """
        if self.cert_path is None:
            raise RuntimeError("the simulator was started without tls=True")
        return ssl.create_default_context(cafile=self.cert_path)

    def ws_connections(self) -> list[dict[str, Any]]:
        """Open WS connections (conn_id, kind, uid, subscriptions, silent, sent, and
        ``ops_received``: frames received per op, e.g. ``{"subscribe": 1}``)."""
        if self.hub is None:
            return []
        return [c.info() for c in self.hub.select()]

    def stats(self) -> dict[str, Any]:
        """A JSON-safe summary: REST requests served (and delayed by ``slow_responses``),
        connections, orders, pending timers, faults."""
        ex = self.exchange
        with ex.lock:
            orders = len(ex.orders_by_id)
            pending = sum(1 for o in ex.orders_by_id.values() if o.is_live)
        return {
            "rest_requests": self.rest_app.requests_served,
            "rest_delayed": self.rest_app.delayed_responses,
            "ws_connections": len(self.ws_connections()),
            "ws_connections_total": self.hub.total_connections if self.hub else 0,
            "orders": orders,
            "pending_orders": pending,
            "timers": self.timers.pending(),
            "faults": self.faults.active(),
        }

    def env(self, *, demo: bool = False) -> dict[str, str]:
        """The ``OKX_*`` variables that make ``Client.from_env()`` (and everything built on
        it: ``okx-sync doctor --live``, the examples' ``--live``) use this simulator: the
        live key (or the demo key and ``OKX_DEMO=1`` with ``demo``), ``OKX_BASE_URL`` and,
        when the WS server runs, the three ``OKX_WS_*_URL``. ``okx-sync sim --env`` prints
        them as ``export`` lines.

        Raises ``RuntimeError`` for a ``tls=True`` simulator: no variable carries its
        self-signed certificate, so a client built from these would refuse it.
        Thread safety: reads immutable state; safe from any thread.
        """
        if self.cert_path is not None:
            raise RuntimeError(
                "the OKX_* variables cannot carry the self-signed certificate of tls=True"
            )
        creds = self.credentials.demo if demo else self.credentials.live
        out = {
            "OKX_API_KEY": creds.api_key,
            "OKX_SECRET_KEY": creds.secret_key,
            "OKX_PASSPHRASE": creds.passphrase,
            "OKX_DEMO": "1" if demo else "0",
            "OKX_BASE_URL": self.rest_url,
        }
        for kind, url in self.ws_urls().items():
            out[f"OKX_WS_{kind.upper()}_URL"] = url
        return out

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop every server and thread and join them (idempotent)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._market_thread is not None:
            self._market_thread.join(timeout_s)
        if self._ws_server is not None:
            self.exchange.remove_listener(self.hub.on_events) if self.hub else None
            self._ws_server.close(timeout_s)
        if self._control is not None:
            self._control.close(timeout_s)
        rest = getattr(self, "_rest", None)
        if rest is not None:
            rest.close(timeout_s)
        self.timers.close(timeout_s)
        log.info("simulator closed")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        rest = getattr(self, "_rest", None)
        return f"Simulator(seed={self.seed!r}, {state}, rest={rest.url if rest else None})"
