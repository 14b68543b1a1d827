"""``RedisGateBackend``: the gate's rate windows in Redis, shared by processes and hosts.

Every bucket a gate draws on (endpoint rule buckets with their scope values,
the account order bucket, the secondary limits) lives in Redis under
``namespace`` (keys ``{namespace}:...``: one hash slot). Admission is one Lua
call (:mod:`okx_sync.gate.redis_lua`) that checks and records the call on all
its buckets atomically, on the Redis server's clock, with the semantics of the
local windows (an admission occupies its bucket from admission until its
release plus a span; one never released lapses after the same hold; pacing,
headroom, penalty hold and recovery as locally). A throttled answer seen by
any process penalises the bucket for all of them (the penalty is part of the
bucket's record and expires with it). The account order limit loaded by one
process is shared with its load time, and a load is claimed by one process
(``SET NX PX``).

Scopes: UID-scoped buckets use the account's uid once ``account/config``
answered (a process that learns it publishes the mapping from its API key's
digest, which every process reads at its next admission), else the digest of
the API key (the key itself never reaches Redis); IP-scoped buckets use
``ip_label`` (default: the host name).

Failure: Redis unreachable within ``timeout_s``. ``on_error="fail"``: the call
being admitted gets ``RequestStateError(stage="gate", dispatched=False)``.
``on_error="local"``: the gate falls back to local windows at
``fallback_share`` of every limit, shared by the process's gates on the same
namespace (one WARNING per gate), probes Redis at most once per
``probe_s`` and returns to shared mode when it answers (one INFO line). A
permit is always from one of the two. Releases and penalties that cannot reach
Redis are dropped (an unreleased admission lapses after the hold).

The HTTP concurrency cap, the queue and the statistics stay per process.
``redis`` (redis-py) is imported when a store is attached, so the package
imports without it. Thread safety: the config object is immutable; a store is
used under its gate's lock, and its shared-account-limit record from any
thread (redis-py's pool is thread-safe).
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import attrs

from ..clock import Clock
from ..validators import field, real, seconds
from .backend import BackendDown, Blocked, GateScope, LocalBucketStore, uid_scoped
from .notes import Note
from .redis_lua import ADMIT, PENALISE, RELEASE, SNAPSHOT
from .window import MAX_PENALTY_HOLD_S

__all__ = ["RedisGateBackend", "RedisBucketStore"]

_RTT_SAMPLES = 4096
_TTL_EXTRA_S = 120.0  # keys outlive whatever can still matter in them by this much
_UID_MAP_TTL_S = 7 * 86400
_MAX_INFLIGHT_RECORDS = 65536
_MAX_PENDING_RELEASES = 256


def _on_error(_instance: object, _attribute: object, value: object) -> None:
    if value not in ("fail", "local"):
        raise ValueError(f"on_error must be 'fail' or 'local', got {value!r}")


def _text(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value or ":" in value):
        raise ValueError(f"{attribute.name} must be a non-empty string without ':', got {value!r}")


@attrs.frozen
class RedisGateBackend:
    """Rate windows in Redis (module docstring). Give it as
    ``RequestGateConfig(backend=RedisGateBackend("redis://host:6379/0"))``.

    - ``url``: a redis-py URL (``redis://``, ``rediss://``, ``unix://``).
    - ``namespace``: key prefix; processes share buckets only within one.
    - ``ip_label``: the IP scope's name (default: this host's name); processes
      behind one public IP should use the same label.
    - ``on_error``: ``"fail"`` or ``"local"`` (fallback, see above).
    - ``fallback_share``: the fraction of every limit a process uses in
      fallback (0.25 fits four processes).
    - ``timeout_s``: connect and answer timeout of one Redis call.
    - ``probe_s``: in fallback, seconds between attempts to reach Redis again.

    Raises ``ValueError`` for a bad value. Thread safety: immutable; the
    password in ``url`` is not shown by ``repr``.
    """

    url: str = attrs.field(repr=False, validator=attrs.validators.instance_of(str))
    namespace: str = attrs.field(default="okx", kw_only=True, validator=_text)
    ip_label: str | None = attrs.field(default=None, kw_only=True, validator=_text)
    on_error: str = attrs.field(default="fail", kw_only=True, validator=_on_error)
    fallback_share: float = attrs.field(
        default=0.25, kw_only=True, validator=field(real, low=0.0, high=1.0, low_open=True)
    )
    timeout_s: float = attrs.field(
        default=0.05, kw_only=True, validator=field(seconds, positive=True)
    )
    probe_s: float = attrs.field(default=1.0, kw_only=True, validator=field(seconds, positive=True))

    def attach(self, config: Any, clock: Clock, scope: GateScope) -> RedisBucketStore:
        """A store for one gate (imports redis-py; ImportError when it is missing)."""
        return RedisBucketStore(self, config, clock, scope)


class _Scripts:
    def __init__(self, client: Any) -> None:
        self.admit = client.register_script(ADMIT)
        self.release = client.register_script(RELEASE)
        self.penalise = client.register_script(PENALISE)
        self.snapshot = client.register_script(SNAPSHOT)


class RedisBucketStore:
    """``BucketStore`` in Redis with a local fallback (module docstring). Used under
    its gate's lock; ``account_share()`` is thread-safe."""

    def __init__(
        self, backend: RedisGateBackend, config: Any, clock: Clock, scope: GateScope
    ) -> None:
        import redis  # lazily: the package imports without redis-py
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._redis_errors: tuple[type[BaseException], ...] = (
            redis.ConnectionError,
            redis.TimeoutError,
            OSError,
        )
        self._response_error = redis.ResponseError
        self._noscript_error = redis.exceptions.NoScriptError
        self._conn: Any = None  # admissions, penalties, snapshots (_eval)
        self._release_conn: Any = None  # releases go out without waiting (_send_release)
        self._release_loaded = False  # the release script is known to be loaded
        self._pending = 0  # release answers not read yet
        self._backend = backend
        self._config = config
        self._clock = clock
        self._scope = scope
        self._ns = "{" + backend.namespace + "}"
        self._client = redis.Redis.from_url(
            backend.url,
            socket_timeout=backend.timeout_s,
            socket_connect_timeout=backend.timeout_s,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self._scripts = _Scripts(self._client)
        self._specs: dict[str, tuple[int, float]] = {}
        self._key_cache: dict[tuple[str, str], list[str]] = {}  # bounded like _specs
        self._uid = scope.uid  # "u..." once the account's uid is known
        self._digest = scope.uid
        # the fallback's windows: shared by this process's gates on the same Redis
        # namespace and scope, so the process as a whole runs at fallback_share
        self._fallback = LocalBucketStore(
            config,
            clock,
            scope,
            share=backend.fallback_share,
            tag=f"fallback:{backend.namespace}:{backend.fallback_share}:",
        )
        self._local_entries: set[int] = set()  # entry ids the fallback admitted
        # Redis keys and costs of each admission not yet released (bounded: a permit
        # never released lapses in Redis after the hold; its record here is dropped)
        self._inflight: dict[int, tuple[list[str], list[int]]] = {}
        self._mode = "shared"
        self._next_probe = -math.inf
        self._fallback_since = 0.0
        self._fallback_s = 0.0
        self._fallbacks = 0
        self._errors = 0
        self._last_error = ""
        self._rtt: deque[float] = deque(maxlen=_RTT_SAMPLES)
        self._notes: list[Note] = []
        self._notes_lock = threading.Lock()
        self._share = _SharedLimit(self)

    # -- keys
    def _keys(self, key: str) -> list[str]:
        """The Redis keys (hash, log, in flight) of bucket ``key`` in the current scope."""
        cached = self._key_cache.get((self._uid, key))
        if cached is None:
            who = f"uid:{self._uid}" if uid_scoped(key) else f"ip:{self._scope.ip_label}"
            base = f"{self._ns}:{who}:{key}"
            cached = self._key_cache[(self._uid, key)] = [f"{base}:h", f"{base}:l", f"{base}:f"]
        return cached

    def _figures(self) -> list[Any]:
        c = self._config
        return [c.headroom, c.burst_fraction, c.recovery_windows, _TTL_EXTRA_S + c.max_hold_s]

    # -- calling Redis
    def _call(self, what: str, fn: Any) -> Any:
        """Run one Redis call, timing it; raises the redis error after bookkeeping."""
        started = time.perf_counter()
        try:
            result = fn()
        except self._redis_errors as exc:
            self._errors += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            raise
        self._rtt.append(time.perf_counter() - started)
        if self._mode == "fallback":
            self._resume(what)
        return result

    def _eval(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run ``script`` by its hash on the store's own connection (the gate lock makes
        the calls one at a time), loading it when Redis does not know it (a restart)."""
        conn = self._conn
        if conn is None:
            conn = self._conn = self._client.connection_pool.make_connection()
        try:
            for attempt in (1, 2):
                conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
                try:
                    return conn.read_response()
                except self._noscript_error:
                    if attempt == 2:
                        raise
                    conn.send_command("SCRIPT", "LOAD", script.script)
                    conn.read_response()
        except self._redis_errors:
            self._conn = None
            conn.disconnect()
            raise

    def _shared_ok(self) -> bool:
        """False while in fallback and not yet time to probe Redis again."""
        return self._mode == "shared" or self._clock.monotonic() >= self._next_probe

    def _down(self, exc: BaseException) -> BackendDown | None:
        """Redis failed: the error to raise (``fail``), or None after switching to fallback."""
        text = f"Redis gate backend unreachable ({type(exc).__name__}: {exc})"
        if self._backend.on_error == "fail":
            return BackendDown(text)
        now = self._clock.monotonic()
        self._next_probe = now + self._backend.probe_s
        if self._mode == "shared":
            self._mode = "fallback"
            self._fallbacks += 1
            self._fallback_since = now
            self._note(
                logging.WARNING,
                f"request gate: {text}; falling back to a local gate at "
                f"{self._backend.fallback_share:g} of every limit until it answers",
                {"error": self._last_error, "fallback_share": self._backend.fallback_share},
            )
        return None

    def _resume(self, what: str) -> None:
        held = self._clock.monotonic() - self._fallback_since
        self._fallback_s += held
        self._mode = "shared"
        self._note(
            logging.INFO,
            f"request gate: Redis answers again ({what}); shared mode resumed after "
            f"{held:.3g} s in local fallback",
            {"fallback_s": round(held, 6)},
        )

    def _note(self, level: int, message: str, extra: dict[str, Any]) -> None:
        with self._notes_lock:
            self._notes.append((level, message, extra))

    # -- BucketStore
    def open(self, key: str, limit: int, window_s: float) -> None:
        """See ``BucketStore.open``."""
        if key not in self._specs:
            self._specs[key] = (int(limit), float(window_s))
            self._fallback.open(key, limit, window_s)

    def set_limit(self, key: str, limit: int) -> None:
        """See ``BucketStore.set_limit`` (the next admission carries it to Redis)."""
        spec = self._specs.get(key)
        if spec is not None:
            self._specs[key] = (int(limit), spec[1])
            self._fallback.set_limit(key, limit)

    def try_admit(
        self, items: Sequence[tuple[str, int, int]], now: float
    ) -> tuple[int | None, Blocked]:
        """See ``BucketStore.try_admit``: one atomic Lua call, or the fallback."""
        if not items:
            return 0, {}
        if self._shared_ok():
            keys = [f"{self._ns}:uidmap:{self._digest}"]
            args = self._figures()[:3] + [_TTL_EXTRA_S + self._config.max_hold_s]
            for key, cost, reserved in items:
                keys += self._keys(key)
                limit, window_s = self._specs[key]
                args += [limit, window_s, cost, reserved]
            keys.append(f"{self._ns}:seq")
            try:
                reply = self._call("admit", lambda: self._eval(self._scripts.admit, keys, args))
            except self._redis_errors as exc:
                error = self._down(exc)
                if error is not None:
                    raise error from exc
            else:
                self._adopt_uid(reply[1])
                if int(reply[0]) > 0:
                    entry = int(reply[0])
                    self._inflight[entry] = (keys[1:-1], [cost for _, cost, _ in items])
                    while len(self._inflight) > _MAX_INFLIGHT_RECORDS:
                        del self._inflight[next(iter(self._inflight))]
                    return entry, {}
                blocked: Blocked = {}
                for i in range(2, len(reply), 2):
                    key = items[int(reply[i]) - 1][0]
                    blocked[key] = now + max(1e-6, float(reply[i + 1]))
                return None, blocked
        local, held = self._fallback.try_admit(items, now)
        if local is None:
            return None, held
        self._local_entries.add(-local)  # fallback ids are negative: released locally
        return -local, {}

    def _adopt_uid(self, raw: Any) -> None:
        uid = raw.decode() if isinstance(raw, bytes) else str(raw or "")
        if uid and self._uid != f"u{uid}":
            self._uid = f"u{uid}"

    def release(self, keys: Sequence[str], entry: int, now: float) -> None:
        """See ``BucketStore.release``."""
        if entry in self._local_entries:
            self._local_entries.discard(entry)
            self._fallback.release(keys, -entry, now)
            return
        record = self._inflight.pop(entry, None)
        if record is None or not self._shared_ok():
            return  # not admitted by Redis, or Redis down: it lapses there after the hold
        rkeys, costs = record
        args: list[Any] = [entry, *costs]
        try:
            if self._release_loaded:
                self._send_release(rkeys, args)
            else:  # load the script (first release, or Redis restarted): wait for this one
                self._call("release", lambda: self._scripts.release(keys=rkeys, args=args))
                self._release_loaded = True
        except self._redis_errors as exc:
            self._drop_release_connection()
            self._down(exc)

    def _send_release(self, rkeys: list[str], args: list[Any]) -> None:
        """Send a release without waiting for its answer (a dedicated connection; the
        answers that arrived are read first, never waited for unless too many are
        outstanding). A release counts from when Redis runs it: a little late, never
        early, so the windows only err on the safe side."""
        conn = self._release_conn
        if conn is None:
            conn = self._release_conn = self._client.connection_pool.make_connection()
        while self._pending and conn.can_read(timeout=0):
            self._read_release_answer(conn)
        while self._pending >= _MAX_PENDING_RELEASES:
            self._read_release_answer(conn)  # bounded by the socket timeout
        conn.send_command("EVALSHA", self._scripts.release.sha, len(rkeys), *rkeys, *args)
        self._pending += 1

    def _read_release_answer(self, conn: Any) -> None:
        self._pending -= 1
        try:
            conn.read_response()
        except self._response_error as exc:  # NOSCRIPT after a restart: load it again
            self._release_loaded = False
            self._last_error = f"release: {exc}"

    def _drop_release_connection(self) -> None:
        conn, self._release_conn = self._release_conn, None
        self._pending = 0
        if conn is not None:
            conn.disconnect()

    def penalise(self, key: str, now: float, retry_after_s: float | None) -> tuple[float, float]:
        """See ``BucketStore.penalise``: the shared record when Redis answers; the
        fallback's windows are penalised too (they admit while Redis is away)."""
        local = self._fallback.penalise(key, now, retry_after_s)
        if not self._shared_ok():
            return local
        capped = self._config.cap_hold(retry_after_s)
        limit, window_s = self._specs[key]
        c = self._config
        args = [
            limit,
            window_s,
            c.headroom,
            c.burst_fraction,
            c.recovery_windows,
            _TTL_EXTRA_S + c.max_hold_s,
            c.penalty_factor,
            capped if capped is not None and capped > 0 else 0,
            MAX_PENALTY_HOLD_S,
        ]
        try:
            hold, factor = self._call(
                "penalise", lambda: self._eval(self._scripts.penalise, self._keys(key), args)
            )
        except self._redis_errors as exc:
            self._down(exc)
            return local
        return float(hold), float(factor)

    def snapshot(self, key: str, now: float) -> dict[str, Any]:
        """See ``BucketStore.snapshot``: the shared figures (``"shared": True``), or the
        fallback's while Redis is away."""
        limit, window_s = self._specs[key]
        if self._mode == "shared":
            c = self._config
            args = [limit, window_s, c.headroom, c.burst_fraction, c.recovery_windows]
            try:
                used, in_flight, cap, factor, held = self._call(
                    "snapshot", lambda: self._eval(self._scripts.snapshot, self._keys(key), args)
                )
            except self._redis_errors as exc:
                self._down(exc)
            else:
                scaled = limit * c.headroom
                capacity = max(1, math.ceil(scaled - 1e-9))
                span = window_s * capacity / scaled
                return {
                    "limit": limit,
                    "window_s": window_s,
                    "capacity": capacity,
                    "span_s": round(span, 6),
                    "published_rate": round(limit / window_s, 6),
                    "current_rate": round(int(cap) / span, 6),
                    "rate_factor": round(float(factor), 4),
                    "held_for_s": round(float(held), 6),
                    "tokens": max(0, int(cap) - int(used)),
                    "used": int(used),
                    "in_flight": int(in_flight),
                    "shared": True,
                }
        return {**self._fallback.snapshot(key, now), "shared": False}

    def set_uid(self, uid: str) -> None:
        """Scope UID buckets by ``uid`` and publish the key digest -> uid mapping."""
        self._uid = f"u{uid}"
        if not self._shared_ok():
            return
        name = f"{self._ns}:uidmap:{self._digest}"
        try:
            self._call("uid", lambda: self._client.set(name, uid, ex=_UID_MAP_TTL_S))
        except self._redis_errors as exc:
            self._down(exc)

    def account_share(self) -> _SharedLimit:
        """The shared account-limit record (thread-safe)."""
        return self._share

    def stats(self) -> dict[str, Any]:
        """Backend, health (``"shared"`` or ``"fallback"``), Redis round-trip seconds
        (``rtt_s``: count, p50, p99, max of the last 4096 calls), fallback count and
        time, errors, the namespace and scope labels."""
        samples = sorted(self._rtt)
        fallback_s = self._fallback_s
        if self._mode == "fallback":
            fallback_s += self._clock.monotonic() - self._fallback_since
        return {
            "backend": "redis",
            "health": self._mode,
            "on_error": self._backend.on_error,
            "namespace": self._backend.namespace,
            "ip_label": self._scope.ip_label,
            "uid_scope": "uid" if self._uid.startswith("u") else "api-key digest",
            "rtt_s": {
                "count": len(samples),
                "p50": _percentile(samples, 0.50),
                "p99": _percentile(samples, 0.99),
                "max": round(samples[-1], 7) if samples else None,
            },
            "fallbacks": self._fallbacks,
            "fallback_s": round(fallback_s, 6),
            "errors": self._errors,
            "last_error": self._last_error,
        }

    def drain_notes(self) -> list[Note]:
        """The log lines decided under the gate lock (fallback, resume)."""
        with self._notes_lock:
            notes, self._notes = self._notes, []
        return notes

    def close(self) -> None:
        """Read the outstanding release answers (bounded by ``timeout_s`` each), close
        the connections (permits released later are dropped: they lapse)."""
        self._fallback.close()
        try:
            while self._pending and self._release_conn is not None:
                self._read_release_answer(self._release_conn)
        except self._redis_errors:
            pass
        self._drop_release_connection()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
        try:
            self._client.close()
        except self._redis_errors:
            pass


def _percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    return round(samples[min(len(samples) - 1, int(q * len(samples)))], 7)


class _SharedLimit:
    """The account limit record in Redis (``SharedAccountLimit``): ``{ns}:acct:<uid>``
    holds ``limit`` and ``loaded`` (server seconds), ``{ns}:acctload:<uid>`` the claim.
    Never raises: an unreachable Redis reads as nothing shared, and a claim then
    succeeds only in fallback mode (``on_error="local"``)."""

    def __init__(self, store: RedisBucketStore) -> None:
        self._store = store

    def _names(self) -> tuple[str, str]:
        store = self._store
        return f"{store._ns}:acct:{store._uid}", f"{store._ns}:acctload:{store._uid}"

    def read(self) -> tuple[int, float] | None:
        """See ``SharedAccountLimit.read``."""
        record, _ = self._names()
        client = self._store._client
        try:
            pipe = client.pipeline(transaction=False)
            pipe.hmget(record, "limit", "loaded")
            pipe.time()
            (limit, loaded), (sec, usec) = pipe.execute()
        except self._store._redis_errors:
            return None
        if limit is None or loaded is None:
            return None
        return int(limit), max(0.0, sec + usec / 1e6 - float(loaded))

    def publish(self, limit: int) -> None:
        """See ``SharedAccountLimit.publish`` (the record expires after two refresh intervals)."""
        record, claim = self._names()
        client = self._store._client
        ttl_ms = int(2 * self._store._config.refresh_account_limit_s * 1000)
        try:
            sec, usec = client.time()
            pipe = client.pipeline(transaction=True)
            pipe.hset(record, mapping={"limit": int(limit), "loaded": f"{sec + usec / 1e6:.6f}"})
            pipe.pexpire(record, ttl_ms)
            pipe.delete(claim)
            pipe.execute()
        except self._store._redis_errors:
            return

    def claim(self, ttl_s: float) -> bool:
        """See ``SharedAccountLimit.claim``."""
        _, claim = self._names()
        try:
            token = f"{socket.gethostname()}:{id(self)}"
            return bool(self._store._client.set(claim, token, nx=True, px=int(ttl_s * 1000)))
        except self._store._redis_errors:
            return self._store._backend.on_error == "local"
