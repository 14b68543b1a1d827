"""Periodic stats reporting: one line of code turns the runbook's §1.2 into logs or metrics.

``StatsReporter(client, interval_s=10.0, sinks=[LogSink()])`` starts a
background thread (``okx-stats-reporter``) that, every ``interval_s`` on the
injected clock, takes a :class:`StatsSnapshot` — the REST stats, the gate
stats, every live WS client's and managed order book's stats, and the health
derived from them — and hands it to each sink. A sink that raises is logged and
counted; the reporter carries on with the next sink and the next interval.

Sinks are objects with ``emit(snapshot)`` (and optionally ``close()``):

- :class:`LogSink` — one ``logging`` record per snapshot on ``okx_sync.stats``
  with the fields flattened into ``extra`` (see :func:`flatten_snapshot`);
- :class:`JsonLinesSink` — one JSON object per line, appended to a file that
  is rotated by size;
- :class:`okx_sync.ops.prometheus.PrometheusSink` — gauges and counters for
  Prometheus (the ``metrics`` extra).

The reporter only reads ``stats()`` snapshots (each takes its owner's lock
for a moment) on its own thread: it never waits on the trading path, and the
trading path never waits on a sink.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from ..clock import Clock
from ..errors import ValidationError
from ..handler_errors import HandlerErrorSummary, flush_handler_errors, report_handler_error
from ..lifecycle import Owned
from ..validators import flag, instance, seconds
from ..ws.book_stats import BookStats
from ..ws.protocol import service_of_url
from ..ws.stats import WSStats
from .health import Health, HealthMonitor, HealthThresholds
from .ports import ReporterHost, StatsSource

__all__ = [
    "StatsSnapshot",
    "Sink",
    "StatsReporter",
    "LogSink",
    "JsonLinesSink",
    "collect_snapshot",
    "flatten",
    "flatten_snapshot",
    "STATS_LOGGER",
]

STATS_LOGGER = "okx_sync.stats"
_T = TypeVar("_T")
log = logging.getLogger(STATS_LOGGER)


@attrs.frozen(kw_only=True)
class StatsSnapshot:
    """Everything the reporter saw at one instant.

    ``time`` (Unix seconds) and ``monotonic`` come from the reporter's clock.
    ``rest`` and ``gate`` are ``client.stats().to_dict()`` /
    ``client.gate_stats().to_dict()`` (None when the client has none); ``ws``
    holds one dict per live WS client (its ``stats().to_dict()`` fields, plus
    ``kind`` — public, private, business — and ``last_recv_age_s``), ``books``
    one per managed order book (its ``stats().to_dict()`` plus ``name``): the
    JSON-serialisable shape the sinks emit. ``health`` is the client's health with one
    part per source; ``errors`` lists the sources whose ``stats()`` raised
    (they are left out). Thread safety: immutable (do not mutate the dicts).
    """

    time: float
    monotonic: float
    rest: dict[str, Any] | None
    gate: dict[str, Any] | None
    ws: tuple[dict[str, Any], ...]
    books: tuple[dict[str, Any], ...]
    health: Health
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the health as :meth:`Health.to_dict`)."""
        return {
            "time": self.time,
            "health": self.health.to_dict(),
            "rest": self.rest,
            "gate": self.gate,
            "ws": list(self.ws),
            "books": list(self.books),
            "errors": list(self.errors),
        }


@runtime_checkable
class Sink(Protocol):
    """Receives snapshots on the reporter's thread. ``emit`` may raise; the
    reporter logs and counts it. A sink with a ``close()`` is closed by
    :meth:`StatsReporter.close`."""

    def emit(self, snapshot: StatsSnapshot) -> None:
        """Handle one snapshot."""
        ...


# --------------------------------------------------------------------------- collection


def _unique(name: str, seen: dict[str, int]) -> str:
    n = seen.get(name, 0) + 1
    seen[name] = n
    return name if n == 1 else f"{name}#{n}"


def _book_name(stats: BookStats, index: int) -> str:
    if stats.channel and stats.inst_id:
        return f"{stats.channel}:{stats.inst_id}"
    return str(stats.inst_id or index)


def collect_snapshot(
    client: StatsSource,
    *,
    monitor: HealthMonitor,
    clock: Clock | None = None,
) -> StatsSnapshot:
    """Take one :class:`StatsSnapshot` of ``client`` and judge its health with ``monitor``.

    Reads ``client.stats()``, ``client.gate_stats()``, ``client.ws_clients()``
    and ``client.managed_books()`` (a :class:`~okx_sync.ops.ports.StatsSource`). WS clients are
    named after their ``name`` (``#2``, ``#3``... for repeats, in the order
    the client lists them); the health parts are ``"ws <name>"`` and
    ``"book <channel>:<instId>"``, plus ``"rest"`` and ``"gate"``. A source
    whose ``stats()`` raises is left out and named in ``errors``; nothing
    here raises for that. ``clock`` defaults to ``client.clock``. Thread safety: safe from any thread.
    """
    clock = clock or client.clock
    errors: list[str] = []

    def read(label: str, fn: Callable[[], _T]) -> _T | None:
        try:
            return fn()
        except Exception as exc:  # a broken source must not stop the others
            errors.append(f"{label}: {type(exc).__name__}: {exc}")
            return None

    rest = read("rest", client.stats)
    gate = read("gate", client.gate_stats)
    wall = clock.time()
    now = clock.monotonic()
    ws_parts: list[tuple[str, WSStats]] = []
    ws_list: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for ws in read("ws_clients", client.ws_clients) or []:
        ws_stats = read(f"ws {getattr(ws, 'name', '?')}", ws.stats)
        if ws_stats is None:
            continue
        name = _unique(ws_stats.name or "ws", seen)
        last = ws_stats.last_recv
        ws_list.append(
            {
                **ws_stats.to_dict(),
                "name": name,
                "kind": service_of_url(ws_stats.url),
                "last_recv_age_s": None if last is None else round(max(0.0, wall - last), 3),
            }
        )
        ws_parts.append((f"ws {name}", ws_stats))
    book_parts: list[tuple[str, BookStats]] = []
    books: list[dict[str, Any]] = []
    seen = {}
    for index, book in enumerate(read("managed_books", client.managed_books) or []):
        book_stats = read(f"book {index}", book.stats)
        if book_stats is None:
            continue
        name = _unique(_book_name(book_stats, index), seen)
        books.append({**book_stats.to_dict(), "name": name})
        book_parts.append((f"book {name}", book_stats))
    health = monitor.evaluate(
        now=now, wall=wall, rest=rest, gate=gate, ws=ws_parts, books=book_parts
    )
    return StatsSnapshot(
        time=wall,
        monotonic=now,
        rest=None if rest is None else rest.to_dict(),
        gate=None if gate is None else gate.to_dict(),
        ws=tuple(ws_list),
        books=tuple(books),
        health=health,
        errors=tuple(errors),
    )


# --------------------------------------------------------------------------- flattening


def flatten(data: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Nested dicts to one level: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``.

    Lists and scalars are kept as values. Thread safety: pure.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name, sep))
        else:
            out[name] = value
    return out


def flatten_snapshot(snapshot: StatsSnapshot, sep: str = ".") -> dict[str, Any]:
    """A snapshot as flat fields named as in the ``stats()`` dicts.

    ``health`` (status) and ``health_reason``; ``health.<component>`` per part;
    ``rest.<field>``; ``gate.<field>`` and ``gate.buckets.<key>.<field>``;
    ``ws.<name>.<field>``; ``book.<name>.<field>``; nested dicts flattened
    with ``sep`` (e.g. ``book.books:BTC-USDT.errors.checksum``).
    Thread safety: pure.
    """
    out: dict[str, Any] = {
        "time": snapshot.time,
        "health": snapshot.health.status,
        "health_reason": snapshot.health.reason,
    }
    for part in snapshot.health.components:
        out[f"health{sep}{part.component}"] = part.status
    if snapshot.rest is not None:
        out.update(flatten(snapshot.rest, "rest", sep))
    if snapshot.gate is not None:
        gate = {k: v for k, v in snapshot.gate.items() if k != "buckets"}
        gate["buckets"] = {
            str(b.get("key")): {k: v for k, v in b.items() if k != "key"}
            for b in snapshot.gate.get("buckets") or ()
        }
        out.update(flatten(gate, "gate", sep))
    for ws in snapshot.ws:
        out.update(
            flatten({k: v for k, v in ws.items() if k != "name"}, f"ws{sep}{ws['name']}", sep)
        )
    for book in snapshot.books:
        fields = {k: v for k, v in book.items() if k != "name"}
        out.update(flatten(fields, f"book{sep}{book['name']}", sep))
    if snapshot.errors:
        out["stats_errors"] = list(snapshot.errors)
    return out


# --------------------------------------------------------------------------- sinks


class LogSink:
    """One ``logging`` record per snapshot, fields flat in ``extra``.

    Logs on ``logger`` (default ``okx_sync.stats``) the message
    ``"stats: <health>"`` at ``level`` (INFO) while healthy and at
    ``unhealthy_level`` (WARNING) when degraded or down; the record carries
    every field of :func:`flatten_snapshot` as an attribute (``record.__dict__
    ["ws.public.typed_queue_len"]``...), for a structured formatter to emit.
    Thread safety: ``emit`` may be called from any thread.
    """

    def __init__(
        self,
        logger: logging.Logger | str = STATS_LOGGER,
        *,
        level: int = logging.INFO,
        unhealthy_level: int = logging.WARNING,
    ) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level
        self.unhealthy_level = unhealthy_level

    def __repr__(self) -> str:
        return f"LogSink(logger={self.logger.name!r})"

    def emit(self, snapshot: StatsSnapshot) -> None:
        """Log the snapshot (one record)."""
        level = self.level if snapshot.health.ok else self.unhealthy_level
        if not self.logger.isEnabledFor(level):
            return
        self.logger.log(level, "stats: %s", snapshot.health, extra=flatten_snapshot(snapshot))


class JsonLinesSink:
    """Appends each snapshot as one JSON object per line (``StatsSnapshot.to_dict``).

    Before a write would take the file past ``max_bytes``, the file is rotated:
    ``path`` becomes ``path.1``, ``path.1`` becomes ``path.2``... keeping
    ``backup_count`` old files (0: the file is simply started afresh). A single
    line longer than ``max_bytes`` is still written, alone in its file.
    Raises ``ValidationError`` for ``max_bytes < 1`` or ``backup_count < 0``;
    ``emit`` raises ``OSError`` when the file cannot be written.
    Thread safety: ``emit`` and ``close`` may be called from any thread.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, max_bytes: int = 10_000_000, backup_count: int = 5
    ) -> None:
        if max_bytes < 1:
            raise ValidationError(f"max_bytes must be >= 1, got {max_bytes!r}")
        if backup_count < 0:
            raise ValidationError(f"backup_count must be >= 0, got {backup_count!r}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backup_count = backup_count
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"JsonLinesSink(path={str(self.path)!r}, max_bytes={self.max_bytes})"

    def _rotate(self) -> None:
        if self.backup_count == 0:
            self.path.unlink(missing_ok=True)
            return
        for i in range(self.backup_count - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def emit(self, snapshot: StatsSnapshot) -> None:
        """Append the snapshot as one line, rotating first when the file would grow too big."""
        line = (json.dumps(snapshot.to_dict(), separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line) > self.max_bytes:
                self._rotate()
            with open(self.path, "ab") as fh:
                fh.write(line)

    def close(self) -> None:
        """Nothing is kept open between writes; present for the sink protocol."""


# --------------------------------------------------------------------------- the reporter


def _sink_name(sink: Any) -> str:
    return type(sink).__name__


class StatsReporter(Owned):
    """Snapshots a client's stats every ``interval_s`` on a background thread and feeds sinks.

    ``StatsReporter(client, interval_s=10.0, sinks=[LogSink()])`` starts the
    thread ``okx-stats-reporter`` at once (``start=False`` to call
    :meth:`start` later); the first snapshot is taken immediately, then one
    per interval of the injected ``clock`` (default ``client.clock``).
    Health uses ``client.health_monitor`` (the one ``client.health()``
    uses) unless ``thresholds`` or ``monitor`` are given.

    A sink that raises is logged on ``okx_sync.stats`` (with the traceback the
    first time) and counted in ``sink_errors``; the other sinks and later
    snapshots are unaffected. :meth:`report_now` takes and emits a snapshot
    on the calling thread. :meth:`close` stops and joins the thread and closes
    the sinks that have ``close()``.

    ``client`` is an ``okx_sync.Client`` (any :class:`~okx_sync.ops.ports.ReporterHost`):
    the host owns the reporter, so ``client.close()`` closes it.

    Raises ``ValidationError`` for an ``interval_s`` that is not a positive finite
    number, a non-bool ``start``/``close_sinks``, ``thresholds``/``monitor`` of the
    wrong type, a sink without ``emit``, or a closed ``Client``. Thread safety: every method may be called from any thread;
    snapshots are emitted one at a time (never concurrently to one sink).
    """

    def __init__(
        self,
        client: ReporterHost,
        interval_s: float = 10.0,
        sinks: Iterable[Any] = (),
        *,
        clock: Clock | None = None,
        thresholds: HealthThresholds | None = None,
        monitor: HealthMonitor | None = None,
        start: bool = True,
        close_sinks: bool = True,
        name: str = "okx-stats-reporter",
    ) -> None:
        seconds(interval_s, name="interval_s", positive=True)
        flag(start, name="start")
        flag(close_sinks, name="close_sinks")
        instance(thresholds, name="thresholds", kind=HealthThresholds, optional=True)
        instance(monitor, name="monitor", kind=HealthMonitor, optional=True)
        self.sinks: tuple[Any, ...] = tuple(sinks)
        for sink in self.sinks:
            if not callable(getattr(sink, "emit", None)):
                raise ValidationError(f"sink {sink!r} has no emit(snapshot) method")
        self.client = client
        self.interval_s = float(interval_s)
        self.clock: Clock = clock or client.clock
        if monitor is None:
            monitor = client.health_monitor if thresholds is None else HealthMonitor(thresholds)
        self.monitor = monitor
        self.name = name
        self.close_sinks = close_sinks
        self._cond = threading.Condition()
        self._emit_lock = threading.Lock()
        self._stopping = False
        self._sinks_open = True
        self._thread: threading.Thread | None = None
        self._last: StatsSnapshot | None = None
        self.reports = 0
        self.sink_errors: dict[str, int] = {}
        self.last_sink_error = ""
        self._sink_log = HandlerErrorSummary(monotonic=self.clock.monotonic)
        # the host (an okx_sync.Client) closes this reporter on its close()
        client._adopt(self, kind="reporter", label=f"stats reporter {name}")
        if start:
            self.start()

    def __repr__(self) -> str:
        sinks = ", ".join(_sink_name(s) for s in self.sinks)
        return (
            f"StatsReporter(interval_s={self.interval_s}, sinks=[{sinks}], running={self.running})"
        )

    @property
    def running(self) -> bool:
        """True while the reporting thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def last_snapshot(self) -> StatsSnapshot | None:
        """The most recent snapshot (None before the first)."""
        return self._last

    def start(self) -> StatsReporter:
        """Start the thread (no-op while running; restarts after ``close()``). Returns self."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._owned_started()  # listed again by the client
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def report_now(self) -> StatsSnapshot:
        """Take a snapshot, hand it to every sink on this thread, and return it."""
        with self._emit_lock:
            snapshot = collect_snapshot(self.client, monitor=self.monitor, clock=self.clock)
            self._last = snapshot
            self.reports += 1
            for error in snapshot.errors:
                log.warning("stats source failed: %s", error, extra={"error": error})
            for sink in self.sinks:
                try:
                    sink.emit(snapshot)
                except Exception as exc:
                    self._sink_failed(sink, exc)
        return snapshot

    def _sink_failed(self, sink: Any, exc: Exception, action: str = "emit") -> None:
        name = _sink_name(sink)
        count = self.sink_errors.get(name, 0) + 1
        self.sink_errors[name] = count
        self.last_sink_error = f"{name}: {type(exc).__name__}: {exc}"
        report_handler_error(
            log,
            self._sink_log,
            f"sink {name}" if action == "emit" else f"sink {name} in {action}()",
            exc,
            "stats reporter: ",
            {"sink": name, "failures": count},
        )
        self.client._report_background_error(f"reporter {self.name} sink {name}", exc)

    def _run(self) -> None:
        clock = self.clock
        while True:
            started = clock.monotonic()
            try:
                self.report_now()
            except Exception:  # collection itself failed (a bug): keep reporting
                log.exception("stats report %s failed", self.name)
            deadline = started + self.interval_s
            with self._cond:
                while not self._stopping:
                    left = deadline - clock.monotonic()
                    if left <= 0:
                        break
                    clock.wait(self._cond, left)
                if self._stopping:
                    return

    def close(self, timeout_s: float = 2.0) -> bool:
        """Stop the thread, join it (at most ``timeout_s`` s) and close the sinks.

        Idempotent (sinks are closed once). Returns True when the thread
        ended in time, False when it did not (a sink stuck in ``emit``): it
        never waits longer than ``timeout_s``; the sinks are closed anyway (a
        stuck sink's ``close()`` then runs while its ``emit`` is still in
        progress, which may be what unblocks it), and the thread ends as soon
        as that ``emit`` returns; calling ``close()`` again joins it. Sink
        ``close()`` errors are logged, not raised. The client stops listing it
        (``client.close()`` then leaves it alone) until it starts again.
        """
        self._owned_closed()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        joined = True
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            joined = not thread.is_alive()
        with self._cond:
            close_sinks, self._sinks_open = self.close_sinks and self._sinks_open, False
        if close_sinks:
            for sink in self.sinks:
                close = getattr(sink, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception as exc:
                        self._sink_failed(sink, exc, "close")
        flush_handler_errors(log, self._sink_log, "stats reporter: ", {})
        return joined

    def __enter__(self) -> StatsReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
