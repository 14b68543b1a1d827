"""Test and drill helpers that join the client and the simulator.

This package and :mod:`okx_sync.cli` are the only layers that may import both
:class:`~okx_sync.Client` and :mod:`okx_sync.sim`; ``ops`` receives what it
needs from here, injected.

- :class:`MockTransport`: a :class:`~okx_sync.rest.transport.Transport` whose
  answers a handler gives, for tests of code built on okx_sync (no sockets).
- :func:`drill_lab`: the standard :class:`~okx_sync.ops.drills.DrillLab` for
  :func:`okx_sync.ops.drills.run_drill` - ``okx_sync.Client`` as the client
  factory, a fresh :class:`~okx_sync.sim.Simulator` per drill.
- :func:`sim_client`: an ``okx_sync.Client`` pointed at a running simulator.
- :class:`FakeClock` (from :mod:`okx_sync.clock`): time that moves only when a
  test advances it, for timers, deadlines and back-offs without sleeping.
- :func:`wait_until` (:mod:`.wait`): poll a predicate with a deadline, the one
  place a test waits by polling.
- Scripted servers on 127.0.0.1 (port 0, stopped by ``close()`` / ``with``):
  :class:`LimitServer` (:mod:`.limit_server`, OKX's REST rate limits enforced,
  every arrival recorded; also ``hammer``, ``StormProbe``, ``GateDriver``),
  :class:`EchoServer`, :class:`HangServer`, :class:`ResetServer`,
  :class:`GarbageServer`, :class:`ScriptedServer` (:mod:`.rest_servers`,
  hostile HTTP answers), :class:`LoopbackServer`, :class:`ScriptedOKX`
  (:mod:`.ws_servers`, a WebSocket peer a test scripts frame by frame).

Thread safety: the lab is immutable; each drill builds its own simulator.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..client import Client
from ..clock import FakeClock
from ..ops.drills.base import DrillLab
from ..ops.ports import DrillSimulator
from ..sim import Simulator
from .limit_server import LimitServer
from .mock_transport import MockTransport
from .rest_servers import EchoServer, GarbageServer, HangServer, ResetServer, ScriptedServer
from .wait import wait_until
from .ws_servers import LoopbackServer, ScriptedOKX

__all__ = [
    "EchoServer",
    "FakeClock",
    "GarbageServer",
    "HangServer",
    "LimitServer",
    "LoopbackServer",
    "MockTransport",
    "ResetServer",
    "ScriptedOKX",
    "ScriptedServer",
    "drill_lab",
    "sim_client",
    "wait_until",
]


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


def sim_client(sim: Simulator, *, demo: bool = False, **kwargs: Any) -> Client:
    """An ``okx_sync.Client`` pointed at ``sim``: its live key (the demo key and
    ``demo=True`` with ``demo``), ``base_url``, the WS URLs when its WS server runs and,
    for a ``tls=True`` simulator, a ``requests.Session`` trusting its certificate.

    Extra keyword arguments go to ``Client`` and win. Raises what ``Client`` raises
    (``ValidationError`` for a bad option). Thread safety: reads the simulator's
    immutable addresses; the client it returns is thread-safe.
    """
    creds = sim.credentials.demo if demo else sim.credentials.live
    options: dict[str, Any] = {"demo": demo, "base_url": sim.rest_url}
    urls = sim.ws_urls()
    if urls:
        options["ws_urls"] = urls
    if sim.cert_path and "session" not in kwargs:
        import requests

        session = requests.Session()
        session.verify = sim.cert_path
        session.trust_env = False  # the env's CA bundle would override ``verify``
        options["session"] = session
    options.update(kwargs)
    return Client(creds.api_key, creds.secret_key, creds.passphrase, **options)


if TYPE_CHECKING:  # mypy checks that the simulator satisfies the drills' port

    def _satisfies_ports(sim: Simulator) -> None:
        _drill: DrillSimulator = sim
