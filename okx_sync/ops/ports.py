"""What each ``ops`` component needs from a client (and the drills from a simulator),
as narrow ``typing.Protocol``\\ s.

``ops`` imports neither :mod:`okx_sync.client` (the client imports ``ops``)
nor :mod:`okx_sync.sim`: the functions here take any object with the members
they use, and ``okx_sync.Client`` satisfies every client protocol (mypy
checks it: the typed assignments in the ``TYPE_CHECKING`` block at the end of
``okx_sync/client.py``); ``okx_sync.sim.Simulator`` satisfies
:class:`DrillSimulator` (checked the same way in ``okx_sync/testing``). The
endpoint groups are typed with their classes from :mod:`okx_sync.rest.api`
(a lower layer).

- :class:`OrderClient` — the trade group, the clock and OKX time: the
  pending-order sweep, safe mode's cancel, the dead-man switch.
- :class:`ReconcileClient` — an order client that also reads the account:
  :class:`~okx_sync.ops.reconcile.Reconciler`, ``place_order_safely``.
- :class:`TradingClient` — an order client that prices an order
  (``market``, ``instrument``, ``round_price``): the drills' ``passive_limit``.
- :class:`StatsSource` — what a stats snapshot reads (``clock``, ``stats``,
  ``gate_stats``, ``ws_clients``, ``managed_books``): the reporter, health.
- :class:`ReporterHost` — a stats source whose health monitor a
  ``StatsReporter`` shares and which owns (closes) the reporter.
- :class:`EvidenceSource` — a stats source plus the configuration, clock
  re-sync and safe-mode state the evidence shows, and the probes it sends.
- :class:`DoctorClient` — the reads and WS factories the doctor checks use.
- :class:`DemoClient` — what the guided tour (``okx-sync demo``) touches.
- :class:`DrillClient` — what the drills drive; :class:`DrillSimulator` —
  what they use of the simulator (its faults, exchange, market clock).

Thread safety: protocols hold no state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..clock import Clock

if TYPE_CHECKING:  # pragma: no cover - types only
    from decimal import Decimal

    from ..gate.stats import GateStats
    from ..models import Instrument
    from ..rest.api import AccountAPI, MarketAPI, PublicAPI, TradeAPI
    from ..rest.stats import RestStats
    from ..ws.client import WSClient
    from ..ws.managed_book import ManagedOrderBook
    from .health import Health, HealthMonitor

__all__ = [
    "OrderClient",
    "ReconcileClient",
    "TradingClient",
    "StatsSource",
    "ReporterHost",
    "EvidenceSource",
    "DoctorClient",
    "DemoClient",
    "DrillClient",
    "DrillSimulator",
    "MarketLoadClient",
]


class OrderClient(Protocol):
    """The trade endpoints, the injected clock and OKX time."""

    @property
    def trade(self) -> TradeAPI:
        """The trade endpoint group (``place_order``, ``cancel_batch_orders``, ...)."""

    @property
    def clock(self) -> Clock:
        """The injected clock (waits, durations)."""

    def now_ms(self) -> int:
        """OKX's time now (local time plus the measured offset), ms."""


class ReconcileClient(OrderClient, Protocol):
    """An order client that also reads the account (balances, positions) and keeps the
    health monitor a reconciliation's outcome is noted on."""

    @property
    def account(self) -> AccountAPI:
        """The account endpoint group."""

    @property
    def health_monitor(self) -> HealthMonitor:
        """Where ``Reconciler.snapshot`` notes its outcome (``note_reconcile``)."""


class TradingClient(OrderClient, Protocol):
    """Order entry and the market reads that price an order."""

    @property
    def market(self) -> MarketAPI:
        """The market-data endpoint group (``get_ticker``, ...)."""

    def instrument(self, inst_id: str) -> Instrument:
        """The instrument's specification (tick and lot sizes)."""

    def round_price(self, inst_id: str, px: Any, *, rounding: str = ...) -> Decimal:
        """``px`` rounded to the instrument's tick size."""


class StatsSource(Protocol):
    """The sources of one stats snapshot."""

    @property
    def clock(self) -> Clock:
        """The clock the snapshot is timed with."""

    def stats(self) -> RestStats:
        """REST statistics."""

    def gate_stats(self) -> GateStats:
        """Request-gate statistics."""

    def ws_clients(self) -> Sequence[WSClient]:
        """The live WS clients (each with ``stats()``)."""

    def managed_books(self) -> Sequence[ManagedOrderBook]:
        """The live managed order books (each with ``stats()``)."""


class ReporterHost(StatsSource, Protocol):
    """A stats source that owns the reporters built on it (``okx_sync.Client``)."""

    @property
    def health_monitor(self) -> HealthMonitor:
        """The monitor ``health()`` judges with (a reporter shares it)."""

    def _adopt(self, child: Any, *, kind: str, label: str) -> object:
        """Own ``child``: close it on close (a closed host raises ``ValidationError``)."""

    def _report_background_error(self, source: str, error: BaseException) -> None:
        """Hand an error no caller sees to ``Client(on_background_error=...)``; never
        raises."""


class EvidenceSource(StatsSource, Protocol):
    """A stats source with the state the evidence shows and the probes it sends."""

    @property
    def health_monitor(self) -> HealthMonitor:
        """The client's ``HealthMonitor`` (its thresholds judge the snapshot)."""

    @property
    def time_sync_timer(self) -> Any:
        """The periodic clock re-sync timer, or None."""

    @property
    def safe_mode(self) -> Any:
        """The safe-mode state (``to_dict()``)."""

    @property
    def trade(self) -> TradeAPI:
        """The trade endpoint group (the account-rate-limit probe)."""

    @property
    def _rest(self) -> Any:
        """The REST core (clock offset, whether credentials are set)."""

    def dead_man_switches(self) -> Sequence[Any]:
        """The running dead-man switches."""

    def _evidence_config(self) -> dict[str, Any]:
        """The redacted configuration."""

    @property
    def app_info(self) -> dict[str, str | None]:
        """The deployed application's ``version`` and ``commit`` (None when not given)."""

    def sync_time(self) -> int:
        """Measure the clock offset to OKX; returns it in ms."""


class DoctorClient(Protocol):
    """What the doctor checks read and open."""

    @property
    def account(self) -> AccountAPI:
        """The account endpoint group."""

    @property
    def trade(self) -> TradeAPI:
        """The trade endpoint group."""

    @property
    def public(self) -> PublicAPI:
        """The public endpoint group."""

    @property
    def demo(self) -> bool:
        """True for OKX's demo-trading environment."""

    def sync_time(self) -> int:
        """Measure the clock offset to OKX; returns it in ms."""

    def gate_stats(self) -> GateStats:
        """Request-gate statistics."""

    def ws_public(self, **kwargs: Any) -> WSClient:
        """A public WS client (not started)."""

    def ws_private(self, **kwargs: Any) -> WSClient:
        """A private WS client (not started)."""


class DemoClient(DoctorClient, TradingClient, StatsSource, Protocol):
    """What the guided tour touches: the doctor's reads, order entry, stats, health."""

    def instruments(self, inst_type: str) -> list[Instrument]:
        """The instruments of ``inst_type`` (cached)."""

    def health(self) -> Health:
        """The client's health verdict."""


class DrillClient(TradingClient, ReconcileClient, Protocol):
    """What the drills drive: orders, account reads, clock sync, stats, the WS factories."""

    def sync_time(self) -> int:
        """Measure the clock offset to OKX; returns it in ms."""

    def stats(self) -> RestStats:
        """REST statistics."""

    def gate_stats(self) -> GateStats:
        """Request-gate statistics."""

    def ws_public(self, **kwargs: Any) -> WSClient:
        """A public WS client (not started)."""

    def ws_private(self, **kwargs: Any) -> WSClient:
        """A private WS client (not started)."""

    def ws_business(self, **kwargs: Any) -> WSClient:
        """A business WS client (not started)."""

    def close(self) -> None:
        """Stop everything the client owns."""


class DrillSimulator(Protocol):
    """What the drills use of a simulator (``okx_sync.sim.Simulator``): its faults,
    exchange state and market clock, its addresses and the live key."""

    @property
    def credentials(self) -> Any:
        """The simulator's keys (``.live``: ``Credentials``; ``.live_uid``)."""

    @property
    def faults(self) -> Any:
        """The fault injector (``seq_gap``, ``lose_order_response``, ``clear``, ...)."""

    @property
    def exchange(self) -> Any:
        """The exchange state (``book``, ``orders``, ``pending``)."""

    @property
    def rest_url(self) -> str:
        """The REST base URL."""

    def ws_urls(self) -> dict[str, str]:
        """The WS URL per service, ``{}`` without a WS server."""

    def ws_connections(self) -> list[dict[str, Any]]:
        """The open WS connections."""

    def tick(self, n: int = 1) -> None:
        """Step the market ``n`` times."""

    def flood(self, inst_id: str, count: int, channels: Iterable[str] = ...) -> int:
        """Push ``count`` book updates (and trades) at once; returns the rounds."""

    def stats(self) -> dict[str, Any]:
        """Requests served, connections, orders, faults."""

    def close(self) -> None:
        """Stop the simulator."""


class MarketLoadClient(Protocol):
    """What the shared-rate-limit drill's worker processes use: ticker reads and the
    gate's buckets (how long one is held after a 429)."""

    @property
    def market(self) -> MarketAPI:
        """The market endpoint group."""

    def gate_stats(self) -> GateStats:
        """Request-gate statistics."""
