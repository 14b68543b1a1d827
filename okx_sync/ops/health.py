"""Health from stats snapshots: ``ok`` / ``degraded`` / ``down``, with the reason.

The runbook's symptoms (§1.2, §2, §4, §5) turned into rules over the
frozen ``stats()`` snapshots of the REST core (``RestStats``), the request
gate (``GateStats``), each WebSocket client (``WSStats``) and each managed
order book (``BookStats``), read by attribute:

=====================  ===============================================  ==========
symptom                rule (thresholds in :class:`HealthThresholds`)    status
=====================  ===============================================  ==========
liveness               WS not connected                                 down
                       no message for ``silence_degraded_s`` /           degraded /
                       ``silence_down_s``                               down
stability              ``reconnects_degraded`` / ``reconnects_down``     degraded /
                       reconnects within ``window_s``                   down
subscription quality   a subscribe error within ``window_s``            degraded
back-pressure          typed or raw queue at ``queue_degraded_ratio`` /  degraded /
                       ``queue_down_ratio`` of its capacity;            down
                       messages dropped, handler errors in the window   degraded
rate limits            account order bucket exhausted; a bucket held    degraded
                       after throttling; gate timeouts in the window
REST                   rate-limit / auth / no-response errors in the     degraded
                       window; p99 latency above ``rest_p99_degraded_s``
                       (over ``rest_latency_min_samples`` or more)
reconciliation         the last ``Reconciler`` run failed or found       degraded
                       drift (``HealthMonitor.note_reconcile``)
order books            a managed book out of sync or not ready;         degraded
                       sequence / checksum / callback errors or REST
                       cross-check mismatches within the window
=====================  ===============================================  ==========

Counters are cumulative in ``stats()``, so "N in the last ``window_s``" needs
a history: :class:`HealthMonitor` keeps, per source, a short window of counter
samples (one per evaluation) and judges the increase since the newest sample
at or before the window's start. The evaluation functions themselves are pure: they take the
stats, the current time and those increases, and return a :class:`Health`.
WS times (``last_recv``) are Unix seconds (``WSStats``), so the WS rules take
the wall clock; the windows run on the monotonic clock.

Pure module: no I/O, no threads; the one lock is :class:`HealthMonitor`'s.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..errors import AUTH_CODES, RATE_LIMIT_CODES, ValidationError
from ..gate.stats import GateStats
from ..rest.stats import RestStats
from ..validators import count as whole_count
from ..validators import field, flag, real, seconds
from ..ws.book_stats import BookStats
from ..ws.stats import WSStats

__all__ = [
    "OK",
    "DEGRADED",
    "DOWN",
    "STATUSES",
    "HealthThresholds",
    "Health",
    "HealthMonitor",
    "ws_counters",
    "evaluate_ws",
    "evaluate_gate",
    "evaluate_rest",
    "evaluate_reconcile",
    "rest_counters",
    "evaluate_book",
    "book_counters",
    "combine",
    "status_value",
    "format_health",
]

OK = "ok"
DEGRADED = "degraded"
DOWN = "down"
#: From best to worst; ``status_value`` is the index (0 ok, 1 degraded, 2 down).
STATUSES = (OK, DEGRADED, DOWN)

#: The gate's account order bucket (``gate.ACCOUNT_BUCKET_KEY``), kind ``account``.
_ACCOUNT_KIND = "account"


def status_value(status: str) -> int:
    """0 for ``ok``, 1 for ``degraded``, 2 for ``down``; ``ValueError`` otherwise."""
    return STATUSES.index(status)


def _nonneg(_inst: Any, attribute: Any, value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


_positive = field(seconds, positive=True)
_ratio = field(real, low=0.0, high=1.0, low_open=True)
_count = field(whole_count)


@attrs.frozen(kw_only=True)
class HealthThresholds:
    """When a symptom makes a component ``degraded`` or ``down``.

    Defaults follow OKX and the WS heartbeat: a healthy connection receives
    something (data or a ``pong``) at least every ~21 s, the heartbeat declares
    a silent one dead after 28 s and reconnects, and OKX itself closes at 30 s.

    - ``silence_degraded_s`` / ``silence_down_s``: no message received for
      that long on a connected WS;
    - ``queue_degraded_ratio`` / ``queue_down_ratio``: typed or raw handler
      queue length as a fraction of its capacity;
    - ``window_s``: the window for the counters below;
    - ``reconnects_degraded`` / ``reconnects_down``: reconnects within the window;
    - ``subscribe_errors_degraded``, ``dropped_degraded``,
      ``handler_errors_degraded``, ``gate_timeouts_degraded``,
      ``rest_errors_degraded``, ``book_errors_degraded``: that many events of
      the kind within the window make the component degraded;
    - ``account_bucket_exhausted``: degrade when the account order bucket has
      no room now;
    - ``rest_p99_degraded_s``: degrade when the REST p99 latency (over the
      core's last 4096 attempts) is above it, once ``rest_latency_min_samples``
      attempts were timed.

    A failed reconciliation, or one that found drift, makes the ``reconcile``
    part degraded until the next run (:meth:`HealthMonitor.note_reconcile`).

    Raises ``ValidationError`` (a ``ValueError``; when built) for a time that is not a
    positive finite number, a ratio outside (0, 1], a count that is not an int >= 1, a
    non-bool ``account_bucket_exhausted``, or a ``degraded`` threshold above its
    ``down`` one.
    Thread safety: immutable.
    """

    silence_degraded_s: float = attrs.field(default=25.0, validator=_positive)
    silence_down_s: float = attrs.field(default=45.0, validator=_positive)
    queue_degraded_ratio: float = attrs.field(default=0.8, validator=_ratio)
    queue_down_ratio: float = attrs.field(default=1.0, validator=_ratio)
    window_s: float = attrs.field(default=60.0, validator=_positive)
    reconnects_degraded: int = attrs.field(default=3, validator=_count)
    reconnects_down: int = attrs.field(default=10, validator=_count)
    subscribe_errors_degraded: int = attrs.field(default=1, validator=_count)
    dropped_degraded: int = attrs.field(default=1, validator=_count)
    handler_errors_degraded: int = attrs.field(default=1, validator=_count)
    gate_timeouts_degraded: int = attrs.field(default=1, validator=_count)
    rest_errors_degraded: int = attrs.field(default=3, validator=_count)
    book_errors_degraded: int = attrs.field(default=1, validator=_count)
    account_bucket_exhausted: bool = attrs.field(default=True, validator=field(flag))
    rest_p99_degraded_s: float = attrs.field(default=2.0, validator=_positive)
    rest_latency_min_samples: int = attrs.field(default=20, validator=_count)

    def __attrs_post_init__(self) -> None:
        for low, high in (
            ("silence_degraded_s", "silence_down_s"),
            ("queue_degraded_ratio", "queue_down_ratio"),
            ("reconnects_degraded", "reconnects_down"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValidationError(
                    f"{low} ({getattr(self, low)!r}) must not exceed {high} ({getattr(self, high)!r})"
                )


@attrs.frozen(kw_only=True)
class Health:
    """The health of one component (a WS client, the gate, ...) or of the whole client.

    ``status`` is ``"ok"``, ``"degraded"`` or ``"down"``; ``reasons`` say why
    (empty when ok), worst first; ``components`` are the parts it was derived
    from (the client's health has one per WS client, book, the gate and REST).
    Thread safety: immutable.
    """

    component: str
    status: str = attrs.field(validator=attrs.validators.in_(STATUSES))
    reasons: tuple[str, ...] = ()
    components: tuple[Health, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the status is ``ok``."""
        return self.status == OK

    @property
    def reason(self) -> str:
        """The reasons joined with ``"; "`` (``""`` when ok)."""
        return "; ".join(self.reasons)

    @property
    def value(self) -> int:
        """The status as a number: 0 ok, 1 degraded, 2 down (for metrics)."""
        return status_value(self.status)

    def find(self, component: str) -> Health | None:
        """The health of ``component`` (this one or a part, depth first), or None."""
        if self.component == component:
            return self
        for part in self.components:
            found = part.find(component)
            if found is not None:
                return found
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: component, status, reason, reasons, components."""
        return {
            "component": self.component,
            "status": self.status,
            "reason": self.reason,
            "reasons": list(self.reasons),
            "components": [part.to_dict() for part in self.components],
        }

    def __str__(self) -> str:
        return f"{self.component}: {self.status}" + (f" ({self.reason})" if self.reasons else "")


class _Verdict:
    """Collects (status, reason) findings; the worst status wins."""

    __slots__ = ("findings",)

    def __init__(self) -> None:
        self.findings: list[tuple[int, str]] = []

    def add(self, status: str, reason: str) -> None:
        self.findings.append((status_value(status), reason))

    def count(
        self,
        n: float,
        degraded_at: int,
        one: str,
        many: str,
        window_s: float,
        down_at: int | None = None,
    ) -> None:
        """ "<n> <one|many> in <window>": degraded from ``degraded_at``, down from ``down_at``."""
        if n >= degraded_at:
            status = DOWN if down_at is not None and n >= down_at else DEGRADED
            self.add(status, f"{_plural(n, one, many)} in {_secs(window_s)}")

    def health(self, component: str) -> Health:
        if not self.findings:
            return Health(component=component, status=OK)
        ordered = sorted(self.findings, key=lambda f: -f[0])  # stable: worst first
        return Health(
            component=component,
            status=STATUSES[ordered[0][0]],
            reasons=tuple(reason for _, reason in ordered),
        )


def _plural(n: float, one: str, many: str) -> str:
    n_int = int(n)
    return f"{n_int} " + (one if n_int == 1 else many)


def _secs(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def ws_counters(stats: WSStats) -> dict[str, float]:
    """The WS counters the rules judge by their increase (``reconnects``,
    ``subscribe_error``, ``typed_dropped``, ``raw_dropped``, ``handler_errors``).
    Thread safety: pure."""
    return {
        "reconnects": stats.reconnects,
        "subscribe_error": stats.subscribe_error,
        "typed_dropped": stats.typed_dropped,
        "raw_dropped": stats.raw_dropped,
        "handler_errors": stats.handler_errors,
    }


def evaluate_ws(
    stats: WSStats,
    *,
    now: float,
    thresholds: HealthThresholds,
    increases: Mapping[str, float] | None = None,
    component: str = "ws",
) -> Health:
    """Health of one WebSocket client from its ``stats()`` (a ``WSStats``).

    ``now`` is the wall clock (Unix seconds, like ``last_recv`` in
    ``WSStats``); ``increases`` maps counters (:func:`ws_counters`) to their
    increase within ``thresholds.window_s`` (missing: 0). A client that is not
    running (never started, closed, or stopped for good after a refused login)
    is ``down``. Thread safety: pure.
    """
    inc = increases or {}
    t = thresholds
    v = _Verdict()
    last_error = stats.last_error
    if not stats.running:
        v.add(DOWN, "not running" + (f" (last error: {last_error})" if last_error else ""))
    elif not stats.connected:
        v.add(DOWN, "not connected" + (f" (last error: {last_error})" if last_error else ""))
    elif stats.last_recv is not None and stats.last_recv > 0:
        age = max(0.0, now - stats.last_recv)
        if age >= t.silence_degraded_s:
            status = DOWN if age >= t.silence_down_s else DEGRADED
            v.add(status, f"no message for {_secs(age)}")
    for kind, length, cap in (
        ("typed", stats.typed_queue_len, stats.typed_queue_cap),
        ("raw", stats.raw_queue_len, stats.raw_queue_cap),
    ):
        if not cap:
            continue
        ratio = length / cap
        if ratio >= t.queue_degraded_ratio:
            status = DOWN if ratio >= t.queue_down_ratio else DEGRADED
            v.add(status, f"{kind} queue at {ratio * 100:.0f}% of capacity ({length}/{cap})")
    w = t.window_s
    v.count(
        inc.get("reconnects", 0),
        t.reconnects_degraded,
        "reconnect",
        "reconnects",
        w,
        t.reconnects_down,
    )
    v.count(
        inc.get("subscribe_error", 0),
        t.subscribe_errors_degraded,
        "subscribe error",
        "subscribe errors",
        w,
    )
    dropped = inc.get("typed_dropped", 0) + inc.get("raw_dropped", 0)
    v.count(dropped, t.dropped_degraded, "message dropped", "messages dropped", w)
    v.count(
        inc.get("handler_errors", 0),
        t.handler_errors_degraded,
        "handler error",
        "handler errors",
        w,
    )
    return v.health(component)


def evaluate_gate(
    stats: GateStats,
    *,
    thresholds: HealthThresholds,
    increases: Mapping[str, float] | None = None,
    component: str = "gate",
) -> Health:
    """Health of the request gate from ``gate.stats()``.

    Degraded when the account order bucket has no room (``tokens == 0``),
    when a bucket is held after throttling (``held_for_s > 0``), or when
    ``timeouts`` rose by ``gate_timeouts_degraded`` within the window.
    Thread safety: pure.
    """
    inc = increases or {}
    v = _Verdict()
    for bucket in stats.buckets:
        if bucket.kind == _ACCOUNT_KIND:
            if thresholds.account_bucket_exhausted and bucket.tokens == 0:
                v.add(DEGRADED, "account order bucket exhausted")
        if bucket.held_for_s > 0:
            v.add(DEGRADED, f"bucket {bucket.key} throttled (held {_secs(bucket.held_for_s)})")
    t = thresholds
    v.count(
        inc.get("timeouts", 0),
        t.gate_timeouts_degraded,
        "gate timeout",
        "gate timeouts",
        t.window_s,
    )
    return v.health(component)


_REST_LABELS = {
    "rate_limited": ("rate-limit error", "rate-limit errors"),
    "auth_errors": ("auth error", "auth errors"),
    "no_response": ("request without response", "requests without response"),
}


def rest_counters(stats: RestStats) -> dict[str, float]:
    """The REST failure counters the rules use, from ``client.stats()``.

    ``failures_by_code`` keys are OKX codes, ``http_<status>``, ``gate`` or
    ``<stage>:<dispatched|unsent>`` (no response). Returns ``rate_limited``
    (rate-limit codes and HTTP 429), ``auth_errors`` (501xx and HTTP 401) and
    ``no_response`` (every ``<stage>:...`` key). Thread safety: pure.
    """
    out = {"rate_limited": 0.0, "auth_errors": 0.0, "no_response": 0.0}
    for key, count in stats.failures_by_code.items():
        if key in RATE_LIMIT_CODES or key == "http_429":
            out["rate_limited"] += count
        elif key in AUTH_CODES or key == "http_401":
            out["auth_errors"] += count
        elif ":" in key:
            out["no_response"] += count
    return out


def evaluate_rest(
    stats: RestStats,
    *,
    thresholds: HealthThresholds,
    increases: Mapping[str, float] | None = None,
    component: str = "rest",
) -> Health:
    """Health of the REST core: degraded when calls failed with rate-limit
    errors, auth errors or without a response (see :func:`rest_counters`)
    ``rest_errors_degraded`` times within the window (``increases`` are the
    increases of those counters), or when ``stats.latency_s.p99`` is above
    ``rest_p99_degraded_s`` over at least ``rest_latency_min_samples`` samples.
    Thread safety: pure.
    """
    inc = increases or {}
    v = _Verdict()
    for counter, (one, many) in _REST_LABELS.items():
        v.count(
            inc.get(counter, 0), thresholds.rest_errors_degraded, one, many, thresholds.window_s
        )
    latency = stats.latency_s
    if (
        latency.samples >= thresholds.rest_latency_min_samples
        and latency.p99 > thresholds.rest_p99_degraded_s
    ):
        v.add(
            DEGRADED,
            f"REST p99 latency {_secs(latency.p99)} above "
            f"{_secs(thresholds.rest_p99_degraded_s)} ({latency.samples} attempts)",
        )
    return v.health(component)


def evaluate_reconcile(outcome: Mapping[str, Any], *, component: str = "reconcile") -> Health:
    """Health of the last reconciliation (``HealthMonitor.last_reconcile``): degraded
    when it failed (``error``) or found drift (``drift``). Thread safety: pure."""
    v = _Verdict()
    if outcome.get("error"):
        v.add(DEGRADED, f"last reconciliation failed: {outcome['error']}")
    drift = tuple(outcome.get("drift") or ())
    if drift:
        shown = "; ".join(drift[:3]) + (f"; +{len(drift) - 3} more" if len(drift) > 3 else "")
        v.add(DEGRADED, f"last reconciliation found drift: {shown}")
    return v.health(component)


def book_counters(stats: BookStats) -> dict[str, float]:
    """The order-book counters the rules use, from a managed book's ``stats()``:
    ``errors`` (all kinds summed), ``callback_errors`` and ``mismatches`` (REST
    cross-check, ``rest_check.mismatches``). Thread safety: pure.
    """
    return {
        "errors": stats.error_total,
        "callback_errors": stats.callback_errors,
        "mismatches": stats.rest_check.mismatches,
    }


def evaluate_book(
    stats: BookStats,
    *,
    thresholds: HealthThresholds,
    increases: Mapping[str, float] | None = None,
    component: str = "book",
) -> Health:
    """Health of a managed order book from its ``stats()`` (a ``BookStats``).

    ``down`` when ``closed``; ``degraded`` while out of sync (``in_sync``
    false: resyncing, or its WS is down) or not ``ready``, and when, within
    the window, its ``errors`` (sequence, checksum...), ``callback_errors`` or
    REST cross-check ``mismatches`` rose by ``book_errors_degraded``
    (``increases``, see :func:`book_counters`). Thread safety: pure.
    """
    inc = increases or {}
    v = _Verdict()
    if stats.closed:
        v.add(DOWN, "closed")
        return v.health(component)
    if not stats.in_sync:
        last_error = stats.last_error
        v.add(DEGRADED, "out of sync" + (f" (last error: {last_error})" if last_error else ""))
    elif not stats.ready:
        v.add(DEGRADED, "not ready (waiting for a snapshot)")
    t = thresholds
    v.count(inc.get("errors", 0), t.book_errors_degraded, "book error", "book errors", t.window_s)
    v.count(
        inc.get("callback_errors", 0),
        t.book_errors_degraded,
        "callback error",
        "callback errors",
        t.window_s,
    )
    v.count(
        inc.get("mismatches", 0),
        t.book_errors_degraded,
        "REST cross-check mismatch",
        "REST cross-check mismatches",
        t.window_s,
    )
    return v.health(component)


def combine(component: str, parts: Iterable[Health]) -> Health:
    """One health from several: the worst status; the reasons of the non-ok parts,
    prefixed with their component, worst first. Thread safety: pure.
    """
    parts = tuple(parts)
    v = _Verdict()
    for part in parts:
        for reason in part.reasons or ((part.status,) if not part.ok else ()):
            v.add(part.status, f"{part.component}: {reason}")
    health = v.health(component)
    return attrs.evolve(health, components=parts)


class _History:
    """Samples ``(t, counters)`` of one source: those within the window, plus
    the newest one at or before its start (the base the increases count from)."""

    __slots__ = ("samples", "seen_at")

    def __init__(self) -> None:
        self.samples: deque[tuple[float, dict[str, float]]] = deque()
        self.seen_at = 0.0

    def increases(self, now: float, counters: dict[str, float], window: float) -> dict[str, float]:
        samples = self.samples
        start = now - window
        # keep the newest sample at or before the window's start: dropping it too
        # would leave no base when samples are further apart than the window
        while len(samples) > 1 and samples[1][0] <= start:
            samples.popleft()
        base = samples[0][1] if samples else counters
        if not samples or now >= samples[-1][0]:  # a late caller's older reading is not kept
            samples.append((now, counters))
        self.seen_at = max(self.seen_at, now)
        # a counter that went down (the source was replaced) counts from zero
        return {
            name: (value - base[name] if value >= base.get(name, 0.0) else value)
            for name, value in counters.items()
            if name in base
        }


class HealthMonitor:
    """Health over time: evaluates snapshots and remembers counters for the windows.

    ``evaluate(...)`` takes the current stats of every source, records their
    counters (per source name) and returns the client's :class:`Health` with
    one part per source. Counter increases are measured from the newest
    sample taken at or before the window's start (``now - thresholds.window_s``),
    or from the oldest sample when none is that old yet; the first evaluation
    of a source has no history and sees no increase. So every event within the
    window is counted, and when evaluations are further apart than the window
    (a reporter's ``interval_s`` > ``window_s``) the increase since the previous
    evaluation is judged as if it happened within the window: stricter, never
    blind. A source is forgotten when it was left out of the previous
    evaluation round and not seen for two windows.

    Thread safety: ``evaluate`` may be called from any thread (the reporter
    and ``client.health()`` share one monitor); it holds a lock only while
    updating the history, never while calling anything else.
    """

    def __init__(self, thresholds: HealthThresholds | None = None) -> None:
        self.thresholds = thresholds or HealthThresholds()
        self._lock = threading.Lock()
        self._history: dict[str, _History] = {}
        # the times of the latest two evaluation rounds (one round = one ``now``)
        self._round = self._prev_round = float("-inf")
        self._reconcile: dict[str, Any] | None = None

    def note_reconcile(self, *, at: float, error: str = "", drift: Sequence[str] = ()) -> None:
        """Record the outcome of a reconciliation run (``Reconciler.snapshot`` calls it):
        monotonic ``at``, ``error`` ("" when it completed) and ``drift`` (one text per
        difference found; empty when none). Health judges the latest until the next run.
        Thread-safe."""
        outcome = {"at": float(at), "error": str(error), "drift": tuple(str(d) for d in drift)}
        with self._lock:
            self._reconcile = outcome

    @property
    def last_reconcile(self) -> dict[str, Any] | None:
        """The last reconciliation outcome (``at``, ``error``, ``drift``), or None when
        none ran. Thread-safe."""
        with self._lock:
            return None if self._reconcile is None else dict(self._reconcile)

    def __repr__(self) -> str:
        return f"HealthMonitor(sources={len(self._history)}, thresholds={self.thresholds!r})"

    def increases(self, source: str, counters: Mapping[str, float], now: float) -> dict[str, float]:
        """Record ``counters`` (name -> cumulative value) for ``source`` at ``now``; return
        their increase within the window."""
        counters = {name: float(value) for name, value in counters.items()}
        window = self.thresholds.window_s
        with self._lock:
            history = self._history.get(source)
            if history is None:
                history = self._history[source] = _History()
            result = history.increases(now, counters, window)
            if now > self._round:
                self._prev_round, self._round = self._round, now
            # a source of the previous round survives however long the interval was
            cutoff = min(now - 2 * window, self._prev_round)
            stale = [k for k, h in self._history.items() if h.seen_at < cutoff]
            for key in stale:
                del self._history[key]
        return result

    def evaluate(
        self,
        *,
        now: float,
        wall: float | None = None,
        rest: RestStats | None = None,
        gate: GateStats | None = None,
        ws: Sequence[tuple[str, WSStats]] = (),
        books: Sequence[tuple[str, BookStats]] = (),
        component: str = "client",
    ) -> Health:
        """The client's health from its stats at monotonic time ``now``, plus a
        ``reconcile`` part once a reconciliation was noted (:meth:`note_reconcile`).

        ``wall`` is the wall clock (Unix seconds) the WS ``last_recv`` times
        are compared with (default: ``now``, for stats on one clock).
        ``ws`` and ``books`` are ``(name, stats)`` pairs (``WSStats`` /
        ``BookStats``); names must be stable from one call to the next (they key
        the counter history) and become the parts' component names.
        """
        t = self.thresholds
        parts: list[Health] = []
        if rest is not None:
            inc = self.increases("rest", rest_counters(rest), now)
            parts.append(evaluate_rest(rest, thresholds=t, increases=inc))
        if gate is not None:
            inc = self.increases("gate", {"timeouts": gate.timeouts}, now)
            parts.append(evaluate_gate(gate, thresholds=t, increases=inc))
        for name, stats in ws:
            inc = self.increases(name, ws_counters(stats), now)
            wall_now = now if wall is None else wall
            parts.append(
                evaluate_ws(stats, now=wall_now, thresholds=t, increases=inc, component=name)
            )
        for name, book in books:
            inc = self.increases(name, book_counters(book), now)
            parts.append(evaluate_book(book, thresholds=t, increases=inc, component=name))
        reconcile = self.last_reconcile
        if reconcile is not None:
            parts.append(evaluate_reconcile(reconcile))
        return combine(component, parts)


def format_health(health: Health, indent: str = "  ") -> str:
    """Health as text for a terminal (``okx-sync doctor``): one line per component.

    ``client: degraded`` then, indented, each part with its status and reasons
    (``ws public: degraded - no message for 30 s``). Thread safety: pure.
    """
    lines: list[str] = []

    def walk(h: Health, depth: int) -> None:
        text = f"{indent * depth}{h.component}: {h.status}"
        if h.reasons and not h.components:
            text += " - " + h.reason
        lines.append(text)
        for part in h.components:
            walk(part, depth + 1)

    walk(health, 0)
    return "\n".join(lines)
