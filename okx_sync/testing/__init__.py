"""Test and drill helpers that join the client and the simulator.

This package and :mod:`okx_sync.cli` are the only layers that may import both
:class:`~okx_sync.Client` and :mod:`okx_sync.sim`; ``ops`` receives what it
needs from here, injected.

- :class:`MockTransport`: a :class:`~okx_sync.rest.transport.Transport` whose
  answers a handler gives, for tests of code built on okx_sync (no sockets).
- :func:`drill_lab`: the standard :class:`~okx_sync.ops.drills.DrillLab` for
  :func:`okx_sync.ops.drills.run_drill` - ``okx_sync.Client`` as the client
  factory, a fresh :class:`~okx_sync.sim.Simulator` per drill.

Thread safety: the lab is immutable; each drill builds its own simulator.
"""

from __future__ import annotations

from ..client import Client
from ..ops.drills.base import DrillLab
from ..sim import Simulator
from .mock_transport import MockTransport

__all__ = ["MockTransport", "drill_lab"]


def drill_lab() -> DrillLab:
    """The lab the drills run in: ``Client`` builds the clients, ``Simulator(seed=...,
    **drill.sim_options)`` the simulators. Never raises."""
    return DrillLab(client_factory=Client, simulator_factory=Simulator)
