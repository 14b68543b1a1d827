"""The parts ``okx_sync.Client`` is composed of, kept out of its class (client layer).

- :func:`check_options`: every construction-time check of ``Client(...)`` (all before
  anything is built) and what they yield (:class:`CheckedOptions`);
- :func:`env_options`: what ``Client.from_env`` reads from the environment;
- :func:`wire`: builds every part of one client (:class:`Wiring`) from its checked
  options: the request gate and the REST core (the gate closed again when the core cannot
  be built), safe mode as a pre-send guard, the health monitor, the WS wiring, the
  lifecycle, the settings ``evidence()`` shows, ``client.trade`` (the registry's trade
  group with ``ops.reconcile.TRADE_EXTRAS`` composed on), and last the periodic clock
  re-sync;
- :class:`WSWiring`: the WebSocket factories' wiring (``ws_public()`` ...: shared demo
  host, clock, gate, instruments, credentials, clock re-sync, safe mode) and the lists of
  live WS clients and managed books;
- :class:`Lifecycle`: what the client owns and the close sequence (children newest
  first, then the time-sync thread, the gate and the HTTP connections), and the
  dead-man switches (one per tag).

Thread safety: the functions are pure or build new objects; ``WSWiring`` and
``Lifecycle`` may be used from any thread.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import requests

from .auth import Credentials, redact_key
from .clock import Clock
from .errors import OkxError, ValidationError
from .gate import RedisGateBackend, RequestGate, RequestGateConfig
from .handler_errors import BackgroundErrorHandler, BackgroundErrors
from .lifecycle import Adoption, Children
from .ops.health import HealthMonitor, HealthThresholds
from .ops.safe_mode import SafeMode
from .rest.api import GROUP_CLASSES
from .rest.client import RestCore
from .rest.transport import Transport
from .retry import RetryPolicy
from .timesync import MIN_SYNC_INTERVAL_S
from .validators import flag, instance, seconds, short_text
from .ws.protocol import WS_SERVICES, ws_url

if TYPE_CHECKING:  # imported where used: a Client is built without them (start-up time)
    from .ops.dead_man import DeadManSwitch, ErrorHandler
    from .ops.reconcile import SafeTradeAPI
    from .ops.time_sync import TimeSyncTimer
    from .ws.client import WSClient

__all__ = [
    "CheckedOptions",
    "check_options",
    "env_options",
    "Wiring",
    "wire",
    "WSWiring",
    "Lifecycle",
]

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


@attrs.frozen
class CheckedOptions:
    """What :func:`check_options` accepted: the credentials (or None), the re-sync
    interval in seconds (0: off) and the URL of each WS service. Immutable."""

    credentials: Credentials | None
    time_sync_interval_s: float
    ws_urls: Mapping[str, str]
    app_info: Mapping[str, str | None]


def check_options(
    credentials: tuple[str | None, str | None, str | None],
    *,
    demo: Any,
    allow_insecure_http: Any,
    base_url: str,
    timeout_s: Any,
    gate: Any,
    retry: Any,
    health_thresholds: Any,
    time_sync_interval_s: Any,
    ws_urls: Mapping[str, str] | None,
    app_version: Any = None,
    app_commit: Any = None,
    on_background_error: Any = None,
) -> CheckedOptions:
    """The construction-time checks of ``Client(...)`` (see its docstring), before
    anything is built. Raises ``ValidationError``. Pure."""
    flag(demo, name="demo")
    flag(allow_insecure_http, name="allow_insecure_http")
    seconds(timeout_s, name="timeout_s", positive=True)
    instance(gate, name="gate", kind=RequestGateConfig)
    instance(retry, name="retry", kind=RetryPolicy)
    instance(health_thresholds, name="health_thresholds", kind=HealthThresholds, optional=True)
    app_info = {
        "version": short_text(app_version, name="app_version", optional=True),
        "commit": short_text(app_commit, name="app_commit", optional=True),
    }
    if on_background_error is not None and not callable(on_background_error):
        raise ValidationError("on_background_error must be callable fn(source, error)")
    try:
        creds = Credentials.from_parts(*credentials)
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
    return CheckedOptions(creds, interval, urls, app_info)


def env_options(
    env: Mapping[str, str], *, gate: RequestGateConfig | None = None
) -> tuple[tuple[str | None, ...], dict[str, Any]]:
    """``(api_key, secret_key, passphrase)`` and the keyword options ``Client.from_env``
    reads from ``env`` (see its docstring); ``gate`` is the caller's ``gate=`` (the
    ``OKX_GATE_*`` Redis backend goes on it, or on a default config). Raises
    ``ValidationError`` for an unreadable ``OKX_DEMO`` or ``OKX_GATE_*``. Pure but for
    the Redis client it builds (it connects on first use)."""
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
    if env.get("OKX_GATE_REDIS_URL"):
        redis_options: dict[str, Any] = {
            name: env[var]
            for name, var in (
                ("namespace", "OKX_GATE_NAMESPACE"),
                ("ip_label", "OKX_GATE_IP_LABEL"),
            )
            if env.get(var)
        }
        try:
            backend = RedisGateBackend(env["OKX_GATE_REDIS_URL"], **redis_options)
        except ValueError as exc:
            raise ValidationError(f"OKX_GATE_*: {exc}") from None
        options["gate"] = attrs.evolve(gate or RequestGateConfig(), backend=backend)
    elif gate is not None:
        options["gate"] = gate
    names = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
    return tuple(env.get(name) or None for name in names), options


@attrs.frozen
class Wiring:
    """The parts of one client (see :func:`wire`). Immutable; the parts are thread-safe."""

    gate: RequestGate
    rest: RestCore
    life: Lifecycle
    safe_mode: SafeMode
    health_monitor: HealthMonitor
    ws: WSWiring
    credentials: Credentials | None
    settings: dict[str, Any]
    background: BackgroundErrors
    app_info: Mapping[str, str | None]


def build_trade(client: Any) -> SafeTradeAPI:
    """``client.trade``: the registry's trade group with ``ops.reconcile.TRADE_EXTRAS``
    composed on (``place_order_safely``), built on first use (start-up time)."""
    from .ops.reconcile import TRADE_EXTRAS

    return GROUP_CLASSES["trade"](client, extras=TRADE_EXTRAS)  # type: ignore[return-value]


def wire(
    client: Any,
    credentials: tuple[str | None, str | None, str | None],
    *,
    demo: bool,
    base_url: str,
    timeout_s: float,
    gate: RequestGateConfig,
    retry: RetryPolicy,
    session: requests.Session | None,
    transport: Transport | None,
    clock: Clock,
    rng: random.Random | None,
    health_thresholds: HealthThresholds | None,
    ws_urls: Mapping[str, str] | None,
    time_sync_interval_s: float,
    max_response_bytes: int,
    allow_insecure_http: bool,
    app_version: str | None = None,
    app_commit: str | None = None,
    user_agent: str | None = None,
    on_background_error: BackgroundErrorHandler | None = None,
) -> Wiring:
    """Check the options of ``Client(...)`` (:func:`check_options`) and build its parts;
    ``client`` is the Client being built (its ``now_ms`` and ``instrument_cache`` feed the
    WS clients). Raises ``ValidationError`` (nothing built) and what ``RestCore`` raises
    (the gate closed again)."""
    checked = check_options(
        credentials,
        demo=demo,
        allow_insecure_http=allow_insecure_http,
        base_url=base_url,
        timeout_s=timeout_s,
        gate=gate,
        retry=retry,
        health_thresholds=health_thresholds,
        time_sync_interval_s=time_sync_interval_s,
        ws_urls=ws_urls,
        app_version=app_version,
        app_commit=app_commit,
        on_background_error=on_background_error,
    )
    creds, interval = checked.credentials, checked.time_sync_interval_s
    request_gate = RequestGate(
        gate, clock=clock, api_key=creds.api_key if creds is not None else None
    )
    try:
        rest = RestCore(
            base_url=base_url,
            credentials=creds,
            gate=request_gate,
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
        request_gate.close()
        raise
    background = BackgroundErrors(on_background_error, monotonic=clock.monotonic, logger=_log)
    if on_background_error is not None:
        request_gate.account_limit.on_failure = lambda reason: background.report(
            "account_limit", OkxError(f"account order limit load failed: {reason}")
        )
    life = Lifecycle(
        request_gate, rest, clock, http_timeout_s=float(timeout_s), background=background
    )
    safe_mode = SafeMode(clock=clock)  # a pre-send guard on REST and on every WS client
    rest.add_guard(safe_mode.guard)
    ws = WSWiring(
        urls=checked.ws_urls,
        credentials=creds,
        rest=rest,
        gate=request_gate,
        clock=clock,
        now_ms=lambda: client.now_ms(),
        resync_clock=retry.resync_on_time_skew,
        instruments=lambda: client.instrument_cache,
        children=life.children,
        guard=safe_mode.guard,
        background=background,
    )
    settings = {
        "base_url": rest.base_url,
        "demo": bool(demo),
        "credentials": redact_key(creds.api_key) if creds is not None else None,
        "timeout_s": float(timeout_s),
        "max_response_bytes": max_response_bytes,
        "gate": gate,
        "retry": retry,
        "time_sync_interval_s": interval,
        "user_agent": user_agent,
    }
    if interval > 0:  # the periodic clock re-sync (okx_sync.ops.time_sync): last
        life.start_timer(lambda: rest.sync_time(retries=False), interval_s=interval, clock=clock)
    return Wiring(
        request_gate,
        rest,
        life,
        safe_mode,
        HealthMonitor(health_thresholds),
        ws,
        creds,
        settings,
        background,
        checked.app_info,
    )


class WSWiring:
    """How the client's WS factories build and own WS clients.

    ``build(kind, options)``: a ``WSClient`` on ``urls[kind]`` sharing the client's
    ``credentials`` (not on public), ``now_ms``, clock re-sync (``resync`` when
    ``resync_clock``), ``clock``, ``gate`` and ``instruments()`` (options win); on the
    client's own gate its account limit is kept fresh (``refresh_account_limit``). Each
    WS client is adopted by ``children`` and put under ``guard`` (safe mode).
    Thread safety: every method may be called from any thread.
    """

    def __init__(
        self,
        *,
        urls: Mapping[str, str],
        credentials: Credentials | None,
        rest: RestCore,
        gate: RequestGate,
        clock: Clock,
        now_ms: Callable[[], int],
        resync_clock: bool,
        instruments: Callable[[], Any],
        children: Children,
        guard: Any,
        background: BackgroundErrors,
    ) -> None:
        self.urls = dict(urls)
        self._background = background
        self.credentials = credentials
        self._rest = rest
        self._gate = gate
        self._clock = clock
        self._now_ms = now_ms
        self._resync_clock = resync_clock
        self._instruments = instruments
        self._children = children
        self._guard = guard

    def build(self, kind: str, options: dict[str, Any]) -> WSClient:
        """A new, unstarted, adopted WS client of service ``kind`` (see the class doc)."""
        if kind != "public":
            options.setdefault("credentials", self.credentials)
        options.setdefault("now_ms", self._now_ms)
        if self._resync_clock:  # one switch for REST and WS
            options.setdefault("resync_time", self._rest.resync)
        options.setdefault("clock", self._clock)
        options.setdefault("gate", self._gate)
        options.setdefault("instruments", self._instruments())
        from .ws.client import WSClient

        if options["gate"] is self._gate:  # WS orders draw on this gate: keep its limit fresh
            options.setdefault("account_limit_refresh", self._rest.refresh_account_limit)
        ws = WSClient(self.urls[kind], **options)
        if self._background.fn is not None:  # Client(on_background_error=...)
            ws.on_error(lambda exc: self._background.report(f"ws {kind}", exc))
        return self.register(ws)

    def register(self, ws: Any) -> Any:
        """Adopt ``ws`` (kind ``"ws"``) and add the safe-mode guard; returns it. Raises
        ``ValidationError`` when the client is closed."""
        name = getattr(ws, "name", "?")
        self._children.adopt(ws, kind="ws", label=f"WS client {name} ({getattr(ws, 'url', '?')})")
        add_guard = getattr(ws, "add_guard", None)
        if callable(add_guard):
            add_guard(self._guard)
        return ws

    def ws_clients(self) -> list[Any]:
        """The adopted WS clients that are started and not closed, oldest first."""
        return [ws for ws in self._children.live("ws") if getattr(ws, "started", True)]

    def managed_books(self) -> list[Any]:
        """The open managed books: adopted ones and those of the live WS clients,
        oldest first, each once."""
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


class Lifecycle:
    """What the client owns (``children``) and how it closes.

    ``close(timeout_s)``: the first call closes the children newest first within
    ``timeout_s``, then stops the time-sync ``timer``, closes the ``gate`` (waiting calls
    fail) and the REST core, joins the timer (``http_timeout_s`` + 1 s) and sets
    ``closed``; a concurrent call waits for it (at most ``timeout_s``). ``start_dead_man``
    adopts and starts a dead-man switch, one per tag.
    Thread safety: every method may be called from any thread.
    """

    def __init__(
        self,
        gate: RequestGate,
        rest: RestCore,
        clock: Clock,
        *,
        http_timeout_s: float,
        background: BackgroundErrors,
    ) -> None:
        self.background = background
        self.lock = threading.Lock()
        self.children = Children("Client", clock.monotonic)
        self.timer: TimeSyncTimer | None = None
        self.timer_interval_s = 0.0
        self.closed = False
        self._gate = gate
        self._rest = rest
        self._http_timeout_s = http_timeout_s
        self._closing = False
        self._done = threading.Event()

    def start_timer(self, sync: Callable[[], object], *, interval_s: float, clock: Clock) -> None:
        """Start the periodic clock re-sync (``interval_s`` > 0) that ``close`` stops."""
        from .ops.time_sync import TimeSyncTimer

        self.timer = TimeSyncTimer(
            sync,
            self._rest.time_sync,
            interval_s=interval_s,
            clock=clock,
            on_error=lambda exc: self.background.report("time_sync", exc),
        )
        self.timer_interval_s = float(interval_s)
        self.timer.start()

    def timer_stats(self) -> dict[str, Any]:
        """``interval_s`` of the periodic re-sync (0: none) and ``timer_running``."""
        timer = self.timer
        return {
            "interval_s": self.timer_interval_s,
            "timer_running": timer is not None and timer.running,
        }

    def start_dead_man(
        self,
        client: Any,
        *,
        timeout_s: int,
        refresh_s: float,
        tag: str | None,
        on_error: ErrorHandler | None,
    ) -> DeadManSwitch:
        """A started, adopted dead-man switch on ``client`` (see
        ``Client.dead_man_switch``). Raises ``ValidationError`` when one for ``tag``
        runs, and what its first ``cancel_all_after`` raises (released then)."""
        from .ops.dead_man import DeadManSwitch

        switch = DeadManSwitch(
            client, timeout_s=timeout_s, refresh_s=refresh_s, tag=tag, on_error=on_error
        )
        if self.background.fn is not None:  # Client(on_background_error=...)
            switch.on_error(lambda exc: self.background.report(switch.name, exc))
        with self.lock:  # the tag check and the adoption are one step
            if any(d.tag == tag for d in self.children.live("dead-man")):
                raise ValidationError(f"a dead-man switch for tag={tag!r} is already running")
            adoption: Adoption = self.children.adopt(
                switch, kind="dead-man", label=f"dead-man switch {switch.name}"
            )
        try:
            switch.start()
        except BaseException:
            adoption.release()
            raise
        return switch

    def close(self, timeout_s: float) -> None:
        """The close sequence (see the class doc). Raises ``ValidationError`` for a
        ``timeout_s`` that is not > 0."""
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float):
            raise ValidationError(f"timeout_s must be a number > 0, got {timeout_s!r}")
        if not timeout_s > 0:
            raise ValidationError(f"timeout_s must be > 0, got {timeout_s!r}")
        with self.lock:
            first, self._closing = not self._closing, True
        if not first:
            self._done.wait(timeout_s)
            return
        timer = self.timer
        try:
            self.children.close_all(timeout_s)
        finally:
            self.closed = True
            if timer is not None:
                timer.stop()
            self._gate.close()  # a periodic sync waiting in the gate fails at once
            self._rest.close()
            if timer is not None and not timer.join(self._http_timeout_s + 1.0):
                _log.warning("okx-time-sync did not stop within the HTTP timeout + 1 s")
            self.background.flush()
            self._done.set()
