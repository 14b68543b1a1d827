"""Evidence (runbook §0.2, §1): everything needed to reconstruct an incident, as JSON.

``client.evidence()`` (:func:`collect_evidence`) returns one JSON-serialisable
dict with these keys:

``okx_sync_version``; ``app`` (``version`` and ``commit`` of the deployed application,
from ``Client(app_version=..., app_commit=...)``; None when not given);
``python`` (version, implementation, platform);
``generated_at`` (Unix s) and ``generated_at_utc``; ``config`` (base URL,
demo flag, API key as ``****abcd`` only, HTTP timeout, the
``RequestGateConfig`` and ``RetryPolicy`` fields, ``time_sync_interval_s``);
``clock`` (``offset_ms``, ``source`` (None, ``"okx"`` or ``"manual"``:
``client.set_time_offset_ms``), ``measured`` (the offset was measured from OKX),
``measured_at`` in Unix s and ``age_s`` of the last update,
``syncs``, ``failures``, ``last_error`` of the last failed measurement ("" once
one succeeded after it), ``interval_s`` of the periodic re-sync (0: off),
``timer_running``); ``safe_mode``;
``dead_man_switches`` (their ``stats().to_dict()``); ``gate`` (``client.gate_stats().to_dict()``);
``rest`` (``client.stats().to_dict()`` without its error list); ``errors`` (the last N
failed REST attempts, oldest first: ``class``, ``code``, ``msg``,
``http_status``, ``request_id``, ``stage``, ``dispatched``, ``method``,
``path``, ``latency_s``, ``retry_index``, ``retry_after_s``, ``cl_ord_ids``,
``ts_ms``); ``ws`` (``stats()`` of every live WSClient, plus ``kind`` and
``last_recv_age_s``); ``books`` (``stats()`` of every managed order book);
``health``; ``collect_errors`` (sources whose stats raised; never fatal).
No secret is ever included.

``okx-sync evidence`` (:mod:`okx_sync.cli.evidence`) prints it. Which client:

- default (or ``--live`` / ``--env``, the same) — the **configured
  environment**: ``Client.from_env()`` reads
  ``OKX_API_KEY``, ``OKX_SECRET_KEY``, ``OKX_PASSPHRASE``, ``OKX_DEMO`` and
  ``OKX_BASE_URL`` (and the ``OKX_WS_*_URL`` hosts, unused: no WS is opened),
  exactly as your program does, so the evidence shows what
  that configuration sees: clock offset to OKX, account order limit,
  reachability and the errors met on the way;
- ``--sim`` — the embedded simulator (no network, no configuration), to see
  the format and try the command.

It probes first (``--no-probe`` skips it): ``GET /api/v5/public/time``
(clock offset) and, with credentials, ``GET /api/v5/trade/account-rate-limit``
(account order limit). Exit code 0 when every probe succeeded, 1 when one
failed (the evidence is printed either way, the failure in ``errors`` and
``probes``), 2 for bad usage. When the REST host cannot be reached at all
(name not resolved, connection refused: nothing was sent), the remaining
probes are skipped and stderr gets one line naming the host and ``--sim``;
the library's per-attempt warnings are not shown (``-v`` shows them; the
attempts are in ``errors``). A fresh process has no WS clients and no
history: inside a running program call ``client.evidence()`` for its live
state.

Thread safety: :func:`collect_evidence` may run on any thread at any time.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

import attrs

from .._version import __version__
from ..errors import OkxError, RequestStateError
from .dead_man import DeadManSwitch
from .ports import EvidenceSource
from .reporter import collect_snapshot

__all__ = ["collect_evidence", "run_probes", "is_unreachable"]


def _jsonable(value: Any) -> Any:
    """``value`` with attrs instances turned into dicts and other odd leaves into text."""
    if attrs.has(type(value)):
        return _jsonable(attrs.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _switch_stats(switch: DeadManSwitch) -> dict[str, Any]:
    """A dead-man switch's ``stats().to_dict()``."""
    return switch.stats().to_dict()


def _clock(client: EvidenceSource) -> dict[str, Any]:
    sync = client._rest.time_sync
    clock = client.clock
    synced = sync.synced_at
    age = None if synced is None else max(0.0, clock.monotonic() - synced)
    snap = sync.snapshot()
    timer = client.time_sync_timer
    return {
        "offset_ms": sync.offset_ms,
        "source": snap["source"],
        "measured": snap["source"] == "okx",
        "measured_at": None if age is None else round(clock.time() - age, 3),
        "age_s": None if age is None else round(age, 3),
        "syncs": snap["syncs"],
        "failures": snap["failures"],
        "last_error": snap["last_error"],
        "interval_s": timer.interval_s if timer is not None else 0.0,
        "timer_running": timer is not None and timer.running,
    }


def collect_evidence(client: EvidenceSource, *, last_errors: int = 20) -> dict[str, Any]:
    """The evidence dict of ``client`` (keys in the module doc). JSON-serialisable.

    ``last_errors``: how many of the most recent failed REST attempts to
    include (0..50; the REST stats keep the last 50). Never raises for a
    source whose stats fail (named in ``collect_errors``); raises
    ``ValueError`` for a negative ``last_errors``. Thread safety: any thread.
    """
    if isinstance(last_errors, bool) or not isinstance(last_errors, int) or last_errors < 0:
        raise ValueError(f"last_errors must be an int >= 0, got {last_errors!r}")
    collect_errors: list[str] = []

    def read(label: str, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - evidence must always come out
            collect_errors.append(f"{label}: {type(exc).__name__}: {exc}")
            return None

    monitor = client.health_monitor
    snap = collect_snapshot(client, monitor=monitor, clock=client.clock)
    collect_errors.extend(snap.errors)
    rest = dict(snap.rest or {})
    errors = list(rest.pop("last_errors", []) or [])
    switches = read("dead_man_switches", client.dead_man_switches) or []
    now = client.clock.time()
    return _jsonable(
        {
            "okx_sync_version": __version__,
            "app": read("app", lambda: dict(client.app_info)),
            "python": {
                "version": platform.python_version(),
                "implementation": platform.python_implementation(),
                "platform": platform.platform(),
            },
            "generated_at": round(now, 3),
            "generated_at_utc": datetime.fromtimestamp(now, UTC).isoformat(),
            "config": read("config", client._evidence_config),
            "clock": read("clock", lambda: _clock(client)),
            "safe_mode": read("safe_mode", lambda: client.safe_mode.to_dict()),
            "dead_man_switches": [
                read("dead_man_switch", partial(_switch_stats, s)) for s in switches
            ],
            "gate": snap.gate,
            "rest": rest,
            "errors": errors[-last_errors:] if last_errors else [],
            "ws": list(snap.ws),
            "books": list(snap.books),
            "health": snap.health.to_dict(),
            "collect_errors": collect_errors,
        }
    )


def is_unreachable(exc: BaseException) -> bool:
    """True when the request never reached a server (no connection; nothing sent). Pure."""
    return isinstance(exc, RequestStateError) and exc.stage == "http" and not exc.dispatched


def run_probes(client: EvidenceSource) -> tuple[dict[str, str], OkxError | None]:
    """Send the read-only probes: ``GET /api/v5/public/time`` (clock offset) and, with
    credentials, ``GET /api/v5/trade/account-rate-limit``. Returns ({probe: "ok" |
    "skipped: ..." | error text}, the error when the host could not be reached - the
    probes after it are skipped). Never raises an ``OkxError`` (it is the answer).
    Thread safety: as the client's calls."""
    out: dict[str, str] = {}
    probes: list[tuple[str, Any]] = [("sync_time", client.sync_time)]
    if client._rest.has_credentials:
        probes.append(("account_rate_limit", client.trade.get_account_rate_limit))
    unreachable: OkxError | None = None
    for name, fn in probes:
        if unreachable is not None:
            out[name] = "skipped: host unreachable"
            continue
        try:
            fn()
            out[name] = "ok"
        except OkxError as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
            if is_unreachable(exc):
                unreachable = exc
    return out, unreachable
