"""Drill ``book_gap`` (runbook §5): seqId gap and bad checksum; reset + resubscribe recovers.

A managed ``books`` order book (``ws.order_book(inst_id, rest_check=client)``)
follows one instrument while the drill drives the simulated market by hand
(one step at a time, so every figure is reproducible). After each fault the
book must detect it, reset, resubscribe, apply the fresh snapshot, and then
hold *exactly* the exchange's published book at the same seqId (every level,
every string) — that is what "recovers deterministically" means here:

1. ``seq_gap`` — one update is never sent; the next one's prevSeqId does not
   chain: a sequence error, one resync.
2. ``bad_checksum`` — one update carries a wrong CRC32: a checksum error, one resync.
3. ``seq_reset`` — the exchange restarts the sequence (maintenance): a valid
   reset, accepted *without* a resync.

After each resync the REST cross-check (best bid/ask against
``GET /api/v5/market/books``) must agree. Simulator only.
"""

from __future__ import annotations

from typing import Any

from ...ws.config import WSConfig
from .base import Drill, DrillRun

__all__ = ["DRILL"]

INST_ID = "BTC-USDT"
READY_S = 10.0


def _advance(run: DrillRun) -> int:
    """Step the market until the published book of ``INST_ID`` changes; its new seqId."""
    sim = run.sim
    assert sim is not None
    before = sim.exchange.book(INST_ID).seq_id
    for _ in range(50):
        sim.tick(1)
        now = sim.exchange.book(INST_ID).seq_id
        if now != before:
            return int(now)
    raise AssertionError(f"the market did not move {INST_ID} in 50 steps")


def _matches_exchange(run: DrillRun, book: Any) -> tuple[bool, str]:
    """Wait until the book reaches the exchange's published seqId; compare every level."""
    sim = run.sim
    assert sim is not None
    published = sim.exchange.book(INST_ID)
    reached = run.wait_until(
        lambda: book.in_sync and book.seq_id == published.seq_id, READY_S, 0.005
    )
    if not reached:
        return False, f"book at seqId {book.seq_id}, exchange at {published.seq_id}"
    snap = book.snapshot()  # an OrderBook; raw holds the wire strings
    same = snap.raw.get("bids") == published.bids and snap.raw.get("asks") == published.asks
    return same, (
        f"seqId {published.seq_id}: {len(snap.bids)}+{len(snap.asks)} levels "
        + ("identical" if same else "DIFFER")
    )


def _fault(run: DrillRun, book: Any, label: str, inject: Any, kind: str | None) -> None:
    """Inject one fault, step the market, wait for recovery, check figures."""
    before = book.stats()
    inject()
    _advance(run)
    _advance(run)  # a gap shows on the update after the missing one
    expected = before.resyncs + (1 if kind else 0)
    if kind:
        run.wait_until(lambda: book.resyncs >= expected, READY_S)
    ready = book.wait_ready(READY_S)
    if kind:  # this resync's REST cross-check ends before the next fault: a check still
        # running when the next resync comes is overtaken by it and not counted
        checked = before.rest_check.checked
        run.wait_until(lambda: book.stats().rest_check.checked > checked, READY_S)
    _advance(run)  # one more update on top of the recovered book
    same, detail = _matches_exchange(run, book)
    after = book.stats()
    resyncs = after.resyncs - before.resyncs
    was, now = before.errors.to_dict(), after.errors.to_dict()
    errors = {kind: now[kind] - was[kind] for kind in now}
    run.figure(f"{label}_resyncs", resyncs, key=True)
    run.figure(f"{label}_errors", {k: v for k, v in errors.items() if v})
    if kind:
        run.figure(f"{label}_resync_s", after.last_resync_s)
        run.check(
            f"{label}: detected as a {kind} error, one resync",
            errors.get(kind, 0) == 1 and resyncs == 1,
            f"{kind} errors {errors.get(kind, 0)}, resyncs {resyncs}, "
            f"last error {after.last_error!r}",
        )
    else:
        run.check(
            f"{label}: accepted without a resync",
            resyncs == 0 and not any(errors.values()),
            f"resyncs {resyncs}, book errors {sum(errors.values())}",
        )
    run.check(f"{label}: the book equals the exchange's", ready and same, detail)


def routine(run: DrillRun) -> None:
    """The drill (see the module docstring)."""
    sim = run.sim
    assert sim is not None
    from ...ws.managed_book import ResyncPolicy

    client = run.client()
    ws = run.ws("public", client, config=WSConfig(name="book-gap"))
    ws.start()
    book = run.own(
        ws.order_book(INST_ID, rest_check=client, policy=ResyncPolicy(snapshot_timeout_s=2.0))
    )
    run.step(f"managed books {INST_ID}: waiting for the first snapshot")
    run.check("book ready", book.wait_ready(READY_S), f"{book!r}", required=True)
    same, detail = _matches_exchange(run, book)
    run.check("start: the book equals the exchange's", same, detail, required=True)
    run.step("fault: seqId gap")
    _fault(run, book, "gap", lambda: sim.faults.seq_gap(INST_ID), "sequence")
    run.step("fault: bad checksum")
    _fault(run, book, "checksum", lambda: sim.faults.bad_checksum(INST_ID), "checksum")
    run.step("fault: sequence reset (maintenance)")
    _fault(run, book, "reset", lambda: sim.faults.seq_reset(INST_ID), None)
    resyncs = book.resyncs
    checks_ok = run.wait_until(lambda: book.stats().rest_check.checked >= resyncs, READY_S)
    rest = book.stats().rest_check
    run.figure("rest_checks", rest.checked)
    run.check(
        "REST cross-check agrees after every resync",
        checks_ok and rest.mismatches == 0 and rest.errors == 0,
        f"checked {rest.checked} (resyncs {resyncs}), mismatches {rest.mismatches}, errors {rest.errors}",
    )
    run.figure("total_resyncs", resyncs)


DRILL = Drill(
    name="book_gap",
    title="seq gap and bad checksum: reset + resubscribe recovers deterministically",
    runbook="§5",
    routine=routine,
    sim_options={"auto_tick": False, "quiet_interval_s": None},
)
