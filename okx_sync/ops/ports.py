"""What each ``ops`` component needs from a client, as narrow ``typing.Protocol``\\ s.

``ops`` never imports :mod:`okx_sync.client` (the client imports ``ops``):
the functions here take any object with the members they use, and
``okx_sync.Client`` satisfies every protocol (mypy checks it: see the typed
assignments at the end of ``okx_sync/client.py``'s tests,
``tests/test_layers.py``). Members typed ``Any`` are the client's endpoint
groups (``trade``, ``account``...), whose own types live above ``ops``.

- :class:`TradingClient` — order entry and the reads that price it
  (``trade``, ``market``, ``instrument``, ``round_price``): reconciliation,
  safe mode's cancel, the dead-man switch, the drills' ``passive_limit``.
- :class:`StatsSource` — what a stats snapshot reads (``clock``, ``stats``,
  ``gate_stats``, ``ws_clients``, ``managed_books``): the reporter, health.
- :class:`EvidenceSource` — a stats source plus the configuration, clock
  re-sync and safe-mode state the evidence shows, and the probes it sends.
- :class:`DoctorClient` — the reads and WS factories the doctor checks use.

Thread safety: protocols hold no state.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..clock import Clock

__all__ = ["TradingClient", "StatsSource", "EvidenceSource", "DoctorClient"]


class TradingClient(Protocol):
    """Order entry and the market reads that price an order."""

    @property
    def trade(self) -> Any:
        """The trade endpoint group (``place_order``, ``cancel_order``, ...)."""

    @property
    def market(self) -> Any:
        """The market-data endpoint group (``get_ticker``, ...)."""

    def instrument(self, inst_id: str) -> Any:
        """The instrument's specification (tick and lot sizes)."""

    def round_price(self, inst_id: str, px: Any, *, rounding: str = ...) -> Any:
        """``px`` rounded to the instrument's tick size."""


class StatsSource(Protocol):
    """The sources of one stats snapshot."""

    @property
    def clock(self) -> Clock:
        """The clock the snapshot is timed with."""

    def stats(self) -> dict[str, Any]:
        """REST statistics."""

    def gate_stats(self) -> dict[str, Any]:
        """Request-gate statistics."""

    def ws_clients(self) -> list[Any]:
        """The live WS clients (each with ``stats()``)."""

    def managed_books(self) -> list[Any]:
        """The live managed order books (each with ``stats()``)."""


class EvidenceSource(StatsSource, Protocol):
    """A stats source with the state the evidence shows and the probes it sends."""

    @property
    def health_monitor(self) -> Any:
        """The client's ``HealthMonitor`` (its thresholds judge the snapshot)."""

    @property
    def time_sync_timer(self) -> Any:
        """The periodic clock re-sync timer, or None."""

    @property
    def safe_mode(self) -> Any:
        """The safe-mode state (``to_dict()``)."""

    @property
    def trade(self) -> Any:
        """The trade endpoint group (the account-rate-limit probe)."""

    @property
    def _rest(self) -> Any:
        """The REST core (clock offset, whether credentials are set)."""

    def dead_man_switches(self) -> list[Any]:
        """The running dead-man switches."""

    def _evidence_config(self) -> dict[str, Any]:
        """The redacted configuration."""

    def sync_time(self) -> int:
        """Measure the clock offset to OKX; returns it in ms."""


class DoctorClient(Protocol):
    """What the doctor checks read and open."""

    @property
    def account(self) -> Any:
        """The account endpoint group."""

    @property
    def trade(self) -> Any:
        """The trade endpoint group."""

    @property
    def public(self) -> Any:
        """The public endpoint group."""

    @property
    def demo(self) -> bool:
        """True for OKX's demo-trading environment."""

    def sync_time(self) -> int:
        """Measure the clock offset to OKX; returns it in ms."""

    def gate_stats(self) -> dict[str, Any]:
        """Request-gate statistics."""

    def ws_public(self, **kwargs: Any) -> Any:
        """A public WS client."""

    def ws_private(self, **kwargs: Any) -> Any:
        """A private WS client."""
