"""Runbook drills (§7): rehearse every failure against the embedded OKX simulator.

``okx-sync drill [NAME|all]`` (``python -m okx_sync drill``, :mod:`okx_sync.cli.drill`) runs them and
prints a table (drill, result, time, key figures); the exit code is non-zero
when any drill fails. Each drill is a scenario: a real fault injected through
the simulator (:mod:`okx_sync.sim.faults`) or on the client side, a client
routine, and checks that carry the figures that decided them.

==================  ======  ==================================================================
drill               §       what it proves
==================  ======  ==================================================================
``rate_limit``      §2      429 storm: one penalty per bucket, nothing admitted while held, no
                            caller error, full rate again; without the gate: the 429s avoided
``ws_disconnect``   §4, §6  sockets killed: reconnect, re-login, resubscribe; reconciliation
                            finds what the outage hid and passes afterwards
``shared_rate_limit`` §2    4 processes, one account, one Redis gate: no 429; a 429 seen by
                            one process holds all four (skipped without a Redis server)
``handler_backlog`` §4      slow handler: queue bounded; block / drop / disconnect policies
                            behave as configured; the connection survives or reconnects
``unknown_order``   §6      order executed, answer lost: ``place_order_safely`` resolves it by
                            clOrdId, no duplicate
``book_gap``        §5      seqId gap, bad checksum: reset + resubscribe, the book equals the
                            exchange's; a sequence reset is accepted without a resync
``auth``            §3      skewed clock, wrong passphrase, wrong environment: classified;
                            ``sync_time`` fixes the clock and only the clock
==================  ======  ==================================================================

``--live`` runs the live-safe drills (``rate_limit`` gated phase, ``handler_backlog``,
``auth``) on OKX's **demo** environment (``x-simulated-trading: 1``) with
``OKX_API_KEY``/``OKX_SECRET_KEY``/``OKX_PASSPHRASE`` from the environment; it
refuses to run without them or when ``CI`` is set. Never in CI.

Library use::

    from okx_sync.ops.drills import DRILLS, run_drill
    from okx_sync.testing import drill_lab
    result = run_drill(DRILLS["book_gap"], lab=drill_lab())
    assert result.passed, result.failed_checks()

Thread safety: see :mod:`okx_sync.ops.drills.runner`.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import (
    auth,
    book_gap,
    handler_backlog,
    rate_limit,
    shared_rate_limit,
    unknown_order,
    ws_disconnect,
)
from .base import Check, Drill, DrillLab, DrillResult, DrillRun
from .runner import format_table, run_drill, run_drills

__all__ = [
    "DRILLS",
    "Drill",
    "DrillLab",
    "DrillRun",
    "DrillResult",
    "Check",
    "run_drill",
    "run_drills",
    "format_table",
]

#: Every drill by name, in the order ``drill all`` runs them: a drill that opens WS
#: connections follows one that opens none (new connections are limited per process, as
#: OKX limits them per IP: 3 per second), so it does not wait for the connections of the
#: drill before it to age out.
DRILLS: Mapping[str, Drill] = {
    d.name: d
    for d in (
        rate_limit.DRILL,
        ws_disconnect.DRILL,
        shared_rate_limit.DRILL,
        handler_backlog.DRILL,
        unknown_order.DRILL,
        book_gap.DRILL,
        auth.DRILL,
    )
}
