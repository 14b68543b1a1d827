"""The pieces every drill is made of: checks, results, the run context, the drill itself.

A drill (runbook §7) is a scenario: it injects a real fault (through the
simulator's ``sim.faults``, or on the client side), drives a client routine
through it, and records **checks** (pass/fail with the figures that decided
them) and **figures** (what was measured). A drill passes when every check
passed and the routine raised nothing unexpected.

:class:`DrillRun` is what a routine receives: the simulator (or ``None`` on
the live demo environment), factories for clients and WS clients that it
closes at the end, ``check``/``figure``/``step``, and ``wait_until`` for
polling a condition with a bound.

Thread safety: a ``DrillRun`` belongs to the thread running the drill;
``check``/``figure``/``step`` may also be called from helper threads (one lock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..ports import DrillClient, DrillSimulator, TradingClient

if TYPE_CHECKING:  # pragma: no cover
    from ...auth import Credentials
    from ...ws.client import WSClient

__all__ = [
    "DrillLab",
    "Check",
    "DrillResult",
    "DrillRun",
    "Drill",
    "DrillFailed",
    "DrillSkipped",
    "passive_limit",
]


@attrs.frozen
class DrillLab:
    """What the drills need from outside ``ops``, injected (``ops`` imports neither the
    client nor the simulator): ``client_factory(api_key, secret_key, passphrase,
    **kwargs)`` builds a client (``okx_sync.Client``); ``simulator_factory(seed=...,
    **drill.sim_options)`` starts a simulator (``okx_sync.sim.Simulator``; None: live
    runs only). ``gate_redis_url``: a Redis server for the drills of the shared
    request gate (None: they are skipped). :func:`okx_sync.testing.drill_lab`
    gives the standard one. Thread safety: immutable."""

    client_factory: Callable[..., DrillClient]
    simulator_factory: Callable[..., DrillSimulator] | None = None
    gate_redis_url: str | None = attrs.field(default=None, repr=False)


class DrillSkipped(Exception):
    """Raised by a routine that cannot run here (what it needs is not configured); the
    drill is reported as skipped with the exception's text."""


class DrillFailed(Exception):
    """Raised inside a routine to stop it after a failed check that later steps need."""


@attrs.frozen
class Check:
    """One verdict of a drill: ``name``, ``ok`` and ``detail`` (the figures that decided it).

    Thread safety: immutable.
    """

    name: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@attrs.frozen
class DrillResult:
    """The outcome of one drill.

    ``passed``: every check passed, at least one check ran and no unexpected
    error. ``figures``: every figure recorded (JSON-safe); ``key``: the names of
    the few figures shown in the summary table. ``error``: the unexpected
    exception (type and text), "" when none. ``skipped``: why the drill did not
    run (then ``passed`` is True and there are no checks). ``steps``: the
    progress lines the routine wrote. ``live``: ran against OKX's demo
    environment. Thread safety: immutable.
    """

    name: str
    passed: bool
    checks: tuple[Check, ...] = ()
    figures: Mapping[str, Any] = attrs.field(factory=dict)
    key: tuple[str, ...] = ()
    duration_s: float = 0.0
    error: str = ""
    skipped: str = ""
    steps: tuple[str, ...] = ()
    live: bool = False

    @property
    def result(self) -> str:
        """``PASS``, ``FAIL``, ``ERROR`` (unexpected exception) or ``SKIP``."""
        if self.skipped:
            return "SKIP"
        if self.error:
            return "ERROR"
        return "PASS" if self.passed else "FAIL"

    def key_figures(self) -> str:
        """The key figures as ``name=value`` text for the summary table."""
        return ", ".join(f"{k}={_fmt(self.figures[k])}" for k in self.key if k in self.figures)

    def failed_checks(self) -> list[Check]:
        """The checks that did not pass."""
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the whole result."""
        return {
            "name": self.name,
            "result": self.result,
            "passed": self.passed,
            "live": self.live,
            "duration_s": round(self.duration_s, 3),
            "key_figures": {k: self.figures[k] for k in self.key if k in self.figures},
            "figures": dict(self.figures),
            "checks": [c.to_dict() for c in self.checks],
            "error": self.error,
            "skipped": self.skipped,
            "steps": list(self.steps),
        }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


class DrillRun:
    """The context a drill routine runs in (see the module docstring).

    ``lab``: builds the clients (:class:`DrillLab`).
    ``sim``: the :class:`~okx_sync.sim.Simulator` (None with ``live``).
    ``live_env``: the environment the ``--live`` credentials come from.
    ``progress``: called with each step line (the CLI prints them).
    Resources made through :meth:`client` and :meth:`ws` (or passed to
    :meth:`own`) are closed by :meth:`close`, newest first.
    """

    def __init__(
        self,
        name: str,
        *,
        lab: DrillLab,
        sim: DrillSimulator | None = None,
        live_env: Mapping[str, str] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.lab = lab
        self.sim = sim
        self.live_env = live_env
        self._progress = progress
        self._lock = threading.Lock()
        self.checks: list[Check] = []
        self.figures: dict[str, Any] = {}
        self.key: list[str] = []
        self.steps: list[str] = []
        self._owned: list[Any] = []

    @property
    def live(self) -> bool:
        """True when running against OKX's demo environment."""
        return self.sim is None

    # -- recording ------------------------------------------------------------------------
    def check(self, name: str, ok: bool, detail: str = "", *, required: bool = False) -> bool:
        """Record a check; returns ``ok``. ``required``: raise :class:`DrillFailed` when it
        failed (the later steps make no sense without it)."""
        with self._lock:
            self.checks.append(Check(name, bool(ok), detail))
        self.step(f"{'ok  ' if ok else 'FAIL'} {name}" + (f" ({detail})" if detail else ""))
        if required and not ok:
            raise DrillFailed(f"{name}: {detail}")
        return bool(ok)

    def figure(self, name: str, value: Any, *, key: bool = False) -> Any:
        """Record a measured figure (JSON-safe value); ``key``: show it in the table.
        Returns ``value``."""
        if isinstance(value, float):
            value = round(value, 4)
        with self._lock:
            self.figures[name] = value
            if key and name not in self.key:
                self.key.append(name)
        return value

    def step(self, text: str) -> None:
        """Record a progress line (and pass it to ``progress``)."""
        with self._lock:
            self.steps.append(text)
        if self._progress is not None:
            self._progress(text)

    # -- resources ------------------------------------------------------------------------
    def own(self, resource: Any) -> Any:
        """Close ``resource`` (anything with ``close()``) when the drill ends; returns it."""
        with self._lock:
            self._owned.append(resource)
        return resource

    def credentials(self, variant: str = "default") -> Credentials:
        """The API key of this run: the simulator's live key, or the ``--live``
        environment's demo key. ``variant="wrong_passphrase"``: the same key with a
        wrong passphrase. Raises ``ValueError`` when the environment lacks a key."""
        from ...auth import Credentials

        if self.sim is not None:
            creds = self.sim.credentials.live
        else:
            env = self.live_env or {}
            found = Credentials.from_parts(
                env.get("OKX_API_KEY"), env.get("OKX_SECRET_KEY"), env.get("OKX_PASSPHRASE")
            )
            if found is None:
                raise ValueError("OKX_API_KEY, OKX_SECRET_KEY and OKX_PASSPHRASE are not set")
            creds = found
        if variant == "wrong_passphrase":
            creds = attrs.evolve(creds, passphrase=creds.passphrase + "-wrong")
        elif variant != "default":
            raise ValueError(f"unknown credentials variant {variant!r}")
        return creds

    def client(self, *, credentials: str = "default", **kwargs: Any) -> DrillClient:
        """A Client for this run, closed at the end.

        Simulator: pointed at its REST and WS URLs (live key). Live: OKX's REST
        base (``OKX_BASE_URL`` or the default) with ``demo=True`` forced, so
        every request carries ``x-simulated-trading: 1`` and the WS factories
        use OKX's demo hosts. ``credentials`` as in
        :meth:`credentials`; ``kwargs`` go to ``Client`` (the lab's
        ``client_factory``). Raises what ``Client`` raises.
        """
        creds = self.credentials(credentials)
        if self.sim is not None:
            kwargs.setdefault("base_url", self.sim.rest_url)
            urls = self.sim.ws_urls()
            if urls:  # started with its WS server
                kwargs.setdefault("ws_urls", urls)
        else:
            base = (self.live_env or {}).get("OKX_BASE_URL")
            if base:
                kwargs.setdefault("base_url", base)
            kwargs["demo"] = True  # --live only ever trades the demo environment
        client = self.lab.client_factory(
            creds.api_key, creds.secret_key, creds.passphrase, **kwargs
        )
        return self.own(client)

    def ws(self, kind: str, client: DrillClient, **kwargs: Any) -> WSClient:
        """A (not yet started) WSClient from ``client.ws_<kind>(**kwargs)``, closed at the end.

        It shares the client's hosts (simulator, or OKX's demo hosts live),
        credentials, clock offset, gate and ``health()``. ``kind``: ``public``,
        ``private`` or ``business``; another raises ``ValueError``.
        """
        factories = {
            "public": client.ws_public,
            "private": client.ws_private,
            "business": client.ws_business,
        }
        if kind not in factories:
            raise ValueError(f"unknown WS service {kind!r} (public, private, business)")
        ws = factories[kind](**kwargs)
        self.own(ws)
        return ws

    def close(self) -> None:
        """Close every owned resource, newest first; errors are swallowed (best effort)."""
        with self._lock:
            owned, self._owned = self._owned[::-1], []
        for resource in owned:
            try:
                resource.close()
            except Exception:  # closing must not hide the drill's own result
                pass

    # -- waiting --------------------------------------------------------------------------
    @staticmethod
    def wait_until(pred: Callable[[], Any], timeout_s: float, step: float = 0.01) -> bool:
        """Poll ``pred`` until it is true or ``timeout_s`` s passed; returns its last value
        as a bool. Never raises for a false predicate."""
        deadline = time.monotonic() + timeout_s
        while True:
            if pred():
                return True
            if time.monotonic() >= deadline:
                return bool(pred())
            time.sleep(step)

    def result(self, duration_s: float, error: str = "") -> DrillResult:
        """The :class:`DrillResult` of what was recorded."""
        with self._lock:
            checks = tuple(self.checks)
            passed = bool(checks) and all(c.ok for c in checks) and not error
            return DrillResult(
                name=self.name,
                passed=passed,
                checks=checks,
                figures=dict(self.figures),
                key=tuple(self.key),
                duration_s=duration_s,
                error=error,
                steps=tuple(self.steps),
                live=self.live,
            )


@attrs.frozen
class Drill:
    """A named scenario: ``routine(run)`` drives it; ``sim_options`` build its simulator.

    ``title``: one line for the table and ``--list``; ``runbook``: the runbook
    section it rehearses; ``live_safe``: may run with ``--live`` on OKX's demo
    environment (reads, public streams, client-side faults only).
    ``prepare(lab)``: optional, started by ``run_drills`` before the first drill
    of a run that includes this one on the simulator, so that something slow to
    start that needs no simulator (``shared_rate_limit``: its worker processes'
    forkserver) starts while the drills before it run; it must return at once.
    Thread safety: immutable.
    """

    name: str
    title: str
    runbook: str
    routine: Callable[[DrillRun], None]
    live_safe: bool = False
    sim_options: Mapping[str, Any] = attrs.field(factory=dict)
    prepare: Callable[[DrillLab], None] | None = None


def passive_limit(
    client: TradingClient, inst_id: str, *, side: str = "buy", away: float = 0.1
) -> dict[str, Any]:
    """Keyword arguments for a cash limit order of the instrument's minimum size that rests
    ``away`` (fraction) from the current best price, so it does not fill: ``inst_id``,
    ``td_mode``, ``side``, ``ord_type``, ``px``, ``sz``. Reads the ticker and the
    instrument (REST); raises what those calls raise."""
    from decimal import ROUND_DOWN, ROUND_UP, Decimal

    ticker = client.market.get_ticker(inst_id=inst_id)
    inst = client.instrument(inst_id)
    ref = ticker.bid_px if side == "buy" else ticker.ask_px
    ref = ref or ticker.last
    if ref is None:
        raise ValueError(f"{inst_id} has no price to rest an order away from")
    factor = Decimal(1) - Decimal(str(away)) if side == "buy" else Decimal(1) + Decimal(str(away))
    px = client.round_price(
        inst_id, ref * factor, rounding=ROUND_DOWN if side == "buy" else ROUND_UP
    )
    return {
        "inst_id": inst_id,
        "td_mode": "cash",
        "side": side,
        "ord_type": "limit",
        "px": px,
        "sz": inst.min_sz or inst.lot_sz,
    }
