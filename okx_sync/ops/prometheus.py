"""Prometheus export of the stats snapshots (the ``metrics`` extra: ``prometheus-client``).

``PrometheusSink`` keeps the latest :class:`~okx_sync.ops.reporter.StatsSnapshot`
and turns it into metric families whenever Prometheus scrapes: every numeric
field of the ``stats()`` dicts becomes a gauge, or a counter when it only
grows (``reconnects``, ``messages``, ``admitted``...); booleans are 0/1.

Names are ``okx_sync_<section>_<field>`` with the field named as in ``stats()``
(nested dicts joined with ``_``); counters get Prometheus' ``_total`` suffix:

- ``okx_sync_health{component}``: 0 ok, 1 degraded, 2 down (``client``, and
  ``ws public``, ``gate``, ``book books:BTC-USDT``...);
- ``okx_sync_rest_<field>``, and ``okx_sync_rest_failures_by_code_total{code}``
  (one series per ``failures_by_code`` key: an OKX code, ``http_<status>``,
  ``gate``, ``http:dispatched``...); ``okx_sync_gate_<field>``;
- ``okx_sync_gate_bucket_<field>{bucket, kind}`` per gate bucket;
- ``okx_sync_ws_<field>{ws, kind}`` per WS client (kind: public, private, business);
- ``okx_sync_book_<field>{book, channel, inst_id}`` per managed order book.

``prometheus_client`` is imported when a sink is built, so the rest of
okx_sync never needs it.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..errors import ValidationError
from .reporter import StatsSnapshot

__all__ = ["PrometheusSink", "COUNTER_FIELDS", "LABELLED_FIELDS", "snapshot_metrics"]

#: stats() fields that only grow (exported as counters); all others are gauges.
COUNTER_FIELDS = frozenset(
    {
        # gate (top level and per bucket)
        "admitted",
        "admitted_cost",
        "timeouts",
        "total_wait_s",
        "penalties",
        "throttled",
        "load_failures",
        # WS
        "connects",
        "reconnects",
        "handoffs",
        "subscribe_ok",
        "subscribe_error",
        "subscriptions_dropped",
        "typed_dropped",
        "raw_dropped",
        "typed_overflow_disconnects",
        "raw_overflow_disconnects",
        "handler_errors",
        "parse_errors",
        "unexpected_pushes",
        "messages",
        "bytes",
        # order books
        "applied",
        "snapshots",
        "updates",
        "verified",
        "unverified",
        "resets",
        "sequence_resets",
        "errors",
        "resyncs",
        "resubscribes",
        "skipped",
        "callback_errors",
        "checked",
        "mismatches",
        # REST
        "requests",
        "successes",
        "failures",
        "failures_by_code",
        "attempts",
        "retries",
    }
)

#: stats() dicts keyed by data, not by field name: one metric, the key as a label.
LABELLED_FIELDS: Mapping[str, str] = {"failures_by_code": "code"}

_NAME_OK = re.compile(r"[^a-zA-Z0-9_]")

_MISSING = (
    "PrometheusSink needs prometheus-client, which okx_sync does not install by default: "
    "pip install 'okx_sync[metrics]' (or pip install prometheus-client)"
)


def _require_prometheus() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    return prometheus_client


def _value(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return float(value)
    return None


class _Family:
    __slots__ = ("counter", "labels", "samples")

    def __init__(self, counter: bool, labels: tuple[str, ...]) -> None:
        self.counter = counter
        self.labels = labels
        self.samples: list[tuple[tuple[str, ...], float]] = []


def _leaves(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, bool, Any]]:
    """(name, is_counter, value) for every leaf; a field under a counter dict is a counter."""
    for key, value in data.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            for sub, counter, leaf in _leaves(value, name):
                yield sub, counter or key in COUNTER_FIELDS, leaf
        else:
            yield name, key in COUNTER_FIELDS, value


def _family(
    families: dict[str, _Family], name: str, counter: bool, labels: tuple[str, ...]
) -> _Family | None:
    """The family ``name`` (created on first use); None when it has other labels."""
    name = _NAME_OK.sub("_", name)
    family = families.get(name)
    if family is None:
        family = families[name] = _Family(counter, labels)
    return family if family.labels == labels else None


def _add_fields(
    families: dict[str, _Family],
    section: str,
    stats: Mapping[str, Any],
    labels: tuple[str, ...] = (),
    values: tuple[str, ...] = (),
    skip: frozenset[str] = frozenset(),
) -> None:
    plain: dict[str, Any] = {}
    for key, value in stats.items():
        if key in skip:
            continue
        label = LABELLED_FIELDS.get(key)
        if label is None or not isinstance(value, Mapping):
            plain[key] = value
            continue
        # one metric with the dict's keys as a label (present even while empty)
        family = _family(families, f"{section}_{key}", key in COUNTER_FIELDS, (*labels, label))
        for sub, leaf in value.items():
            number = _value(leaf)
            if family is not None and number is not None:
                family.samples.append(((*values, str(sub)), number))
    for field, counter, value in _leaves(plain):
        number = _value(value)
        if number is None:
            continue
        family = _family(families, f"{section}_{field}", counter, labels)
        if family is not None:
            family.samples.append((values, number))


def snapshot_metrics(
    snapshot: StatsSnapshot,
) -> dict[str, tuple[bool, tuple[str, ...], list[tuple[tuple[str, ...], float]]]]:
    """The metric samples of a snapshot, without the ``okx_sync_`` namespace.

    Returns ``{name: (is_counter, label_names, [(label_values, value), ...])}``
    (counter names without ``_total``). Thread safety: pure.
    """
    families: dict[str, _Family] = {}
    health = _Family(False, ("component",))
    health.samples.append(((snapshot.health.component,), float(snapshot.health.value)))
    for part in snapshot.health.components:
        health.samples.append(((part.component,), float(part.value)))
    families["health"] = health
    if snapshot.rest is not None:
        _add_fields(families, "rest", snapshot.rest)
    if snapshot.gate is not None:
        _add_fields(families, "gate", snapshot.gate, skip=frozenset({"buckets"}))
        for bucket in snapshot.gate.get("buckets") or ():
            values: tuple[str, ...] = (str(bucket.get("key", "")), str(bucket.get("kind", "")))
            _add_fields(families, "gate_bucket", bucket, ("bucket", "kind"), values)
    for ws in snapshot.ws:
        values = (str(ws.get("name", "")), str(ws.get("kind", "")))
        _add_fields(families, "ws", ws, ("ws", "kind"), values)
    for book in snapshot.books:
        values = (
            str(book.get("name", "")),
            str(book.get("channel") or ""),
            str(book.get("inst_id") or ""),
        )
        _add_fields(families, "book", book, ("book", "channel", "inst_id"), values)
    families["stats_time"] = _Family(False, ())
    families["stats_time"].samples.append(((), snapshot.time))
    return {name: (f.counter, f.labels, f.samples) for name, f in families.items()}


class _QuietHandler(WSGIRequestHandler):
    timeout = 10  # a stalled scraper cannot hold the server forever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Scrapes are not logged."""


class PrometheusSink:
    """Exposes the latest snapshot as Prometheus metrics (see the module doc for names).

    ``registry``: the ``prometheus_client`` registry to register with
    (default: the global ``REGISTRY``). ``port``: when given, also serve
    ``/metrics`` over HTTP on ``host`` (default ``127.0.0.1``; ``0`` picks a
    free port, see :attr:`port`) on a thread named ``okx-metrics-http``.
    ``namespace`` prefixes every name (default ``okx_sync``).

    Until the first snapshot arrives nothing is exported. Raises
    ``ImportError`` (saying how to install the ``metrics`` extra) when
    ``prometheus-client`` is missing, ``ValidationError`` for a bad port,
    ``OSError`` when the port cannot be bound. Thread safety: ``emit`` (the
    reporter's thread), scrapes (any thread) and ``close`` may run concurrently.
    """

    def __init__(
        self,
        port: int | None = None,
        registry: Any = None,
        *,
        host: str = "127.0.0.1",
        namespace: str = "okx_sync",
    ) -> None:
        prom = _require_prometheus()
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535
        ):
            raise ValidationError(f"port must be an int in 0..65535 or None, got {port!r}")
        self._prom = prom
        self.namespace = namespace
        self.registry = prom.REGISTRY if registry is None else registry
        self._lock = threading.Lock()
        self._snapshot: StatsSnapshot | None = None
        self._closed = False
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.registry.register(self)
        if port is not None:
            try:
                app = prom.make_wsgi_app(self.registry)
                server = make_server(host, port, app, handler_class=_QuietHandler)
            except BaseException:
                self.registry.unregister(self)
                raise
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="okx-metrics-http",
                daemon=True,
            )
            self._thread.start()

    def __repr__(self) -> str:
        return f"PrometheusSink(url={self.url!r})"

    @property
    def port(self) -> int | None:
        """The port actually served (None without a server)."""
        server = self._server
        return None if server is None else int(server.server_address[1])

    @property
    def url(self) -> str | None:
        """``http://host:port/metrics`` when serving, else None."""
        server = self._server
        if server is None:
            return None
        host = str(server.server_address[0])
        return f"http://{host}:{server.server_address[1]}/metrics"

    def emit(self, snapshot: StatsSnapshot) -> None:
        """Keep ``snapshot`` as the one exported at the next scrape."""
        with self._lock:
            self._snapshot = snapshot

    def describe(self) -> list[Any]:
        """No fixed names (they follow the stats); lets the registry skip a collect at register."""
        return []

    def collect(self) -> Iterator[Any]:
        """Metric families of the latest snapshot (called by ``prometheus_client`` at scrape)."""
        with self._lock:
            snapshot = self._snapshot
        if snapshot is None:
            return
        core = self._prom.core
        for name, (counter, labels, samples) in sorted(snapshot_metrics(snapshot).items()):
            full = f"{self.namespace}_{name}" if self.namespace else name
            doc = f"okx_sync stats: {name}"
            family = (
                core.CounterMetricFamily(full, doc, labels=list(labels))
                if counter
                else core.GaugeMetricFamily(full, doc, labels=list(labels))
            )
            for values, value in samples:
                family.add_metric(list(values), value)
            yield family

    def close(self) -> None:
        """Stop serving (joins ``okx-metrics-http``) and unregister. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.registry.unregister(self)
        except KeyError:
            pass
        server, thread = self._server, self._thread
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(2.0)
