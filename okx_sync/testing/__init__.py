"""Test and drill helpers that join the client and the simulator.

This package and :mod:`okx_sync.cli` are the only layers that may import both
:class:`~okx_sync.Client` and :mod:`okx_sync.sim`; ``ops`` receives what it
needs from here, injected.

- :func:`drill_lab`: the standard :class:`~okx_sync.ops.drills.DrillLab` for
  :func:`okx_sync.ops.drills.run_drill` - ``okx_sync.Client`` as the client
  factory, a fresh :class:`~okx_sync.sim.Simulator` per drill.

Thread safety: the lab is immutable; each drill builds its own simulator.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..client import Client
from ..ops.drills.base import DrillLab
from ..sim import Simulator

__all__ = ["drill_lab"]


def drill_lab(environ: Mapping[str, str] | None = None) -> DrillLab:
    """The lab the drills run in: ``Client`` builds the clients, ``Simulator(seed=...,
    **drill.sim_options)`` the simulators, and ``OKX_GATE_REDIS_URL`` from
    ``environ`` (default ``os.environ``) is the Redis server of the shared-gate
    drill. Never raises."""
    env = os.environ if environ is None else environ
    return DrillLab(
        client_factory=Client,
        simulator_factory=Simulator,
        gate_redis_url=env.get("OKX_GATE_REDIS_URL") or None,
    )
