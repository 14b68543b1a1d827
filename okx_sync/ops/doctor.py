"""Doctor checks (``okx-sync doctor``, :mod:`okx_sync.cli.doctor`): what a trading process depends on.

Checks, in order (each ``ok``, ``warn``, ``fail`` or ``skip`` with its figures):

- **time skew** — ``client.sync_time()``: the offset to OKX's clock (OKX refuses
  a timestamp 30 s off; warn from 1 s);
- **credentials** — a signed read (``account/balance``) and ``account/config``
  (uid, permissions); an auth error is classified (clock, key/passphrase,
  environment — runbook §3);
- **account rate limit** — ``trade/account-rate-limit`` (new + amend orders
  per 2 s, fill ratio) and the limit the request gate now uses;
- **REST latency** — ``public/time`` round trips (p50 / max);
- **WS ping** — the client's own heartbeat on a public connection: text
  ``ping`` to ``pong`` round trips, and the connect time;
- **WS login** — a private connection's login (with credentials).

:func:`run_checks` runs them with the client it is given (every check only
reads) and returns the :class:`Finding` list; without credentials the signed
checks are skipped. The command (the embedded simulator by default, ``--live``
the configured environment) prints them and ``client.health()``.

Thread safety: :func:`run_checks` runs on the calling thread; one run per client
at a time (it opens and closes its own WS clients).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ..errors import APIError, OkxError, is_auth_error, is_time_skew_error
from ..ws.config import WSConfig
from ..ws.policies import HeartbeatPolicy
from .ports import DoctorClient

__all__ = ["Finding", "run_checks"]

SKEW_WARN_MS = 1000
SKEW_FAIL_MS = 30_000  # OKX refuses timestamps this far off (facts §1.2)
LATENCY_WARN_S = 0.5


@attrs.frozen
class Finding:
    """One doctor check: ``name``, ``status`` (ok/warn/fail/skip), ``detail`` and
    ``figures`` (JSON-safe). Thread safety: immutable."""

    name: str
    status: str
    detail: str
    figures: Mapping[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "figures": dict(self.figures),
        }


def _auth_hint(err: BaseException) -> str:
    if is_time_skew_error(err):
        return "timestamp refused: run sync_time / fix the host clock"
    code = str(getattr(err, "code", ""))
    if code == "50101":
        return "key does not match the environment (demo key needs OKX_DEMO=1, and vice versa)"
    if is_auth_error(err):
        return "check the key triple (key, secret, passphrase), permissions, IP whitelist"
    return "see the error"


def _check_time(client: DoctorClient) -> Finding:
    try:
        offset = client.sync_time()
    except OkxError as exc:
        return Finding("time skew", "fail", f"sync_time failed: {exc}")
    size = abs(offset)
    status = "ok" if size < SKEW_WARN_MS else "warn" if size < SKEW_FAIL_MS else "fail"
    detail = f"local clock {-offset:+d} ms from OKX's"
    if status != "ok":
        detail += "; signing uses the measured offset (the client re-syncs on 50102)"
    return Finding("time skew", status, detail, {"offset_ms": offset})


def _check_credentials(client: DoctorClient, has_creds: bool) -> Finding:
    if not has_creds:
        return Finding("credentials", "skip", "no API key configured (public checks only)")
    try:
        client.account.get_balance()
        config = client.account.get_account_config()
    except APIError as exc:
        return Finding(
            "credentials",
            "fail",
            f"{exc.code}: {exc.msg} - {_auth_hint(exc)}",
            {"code": exc.code, "auth_error": is_auth_error(exc)},
        )
    except OkxError as exc:
        return Finding("credentials", "fail", f"{type(exc).__name__}: {exc}")
    perm = config.perm or "?"
    status = "ok" if "trade" in perm else "warn"
    detail = f"signed read ok; uid {config.uid}, account level {config.acct_lv}, perm {perm}"
    if status == "warn":
        detail += " (no trade permission)"
    return Finding(
        "credentials",
        status,
        detail,
        {"uid": config.uid, "perm": perm, "acct_lv": config.acct_lv, "demo": client.demo},
    )


def _check_account_limit(client: DoctorClient, has_creds: bool) -> Finding:
    if not has_creds:
        return Finding("account rate limit", "skip", "needs credentials")
    try:
        limit = client.trade.get_account_rate_limit()
    except OkxError as exc:
        return Finding("account rate limit", "fail", f"{type(exc).__name__}: {exc}")
    gate = client.gate_stats().account_order_limit
    detail = f"{limit.acc_rate_limit} new+amend orders / 2 s"
    if limit.fill_ratio is not None:
        detail += f" (fill ratio {limit.fill_ratio})"
    detail += f"; the gate uses {gate.limit} ({gate.source})"
    if limit.next_acc_rate_limit and limit.next_acc_rate_limit != limit.acc_rate_limit:
        detail += f"; next period {limit.next_acc_rate_limit}"
    return Finding(
        "account rate limit",
        "ok",
        detail,
        {
            "acc_rate_limit": limit.acc_rate_limit,
            "fill_ratio": None if limit.fill_ratio is None else str(limit.fill_ratio),
            "next_acc_rate_limit": limit.next_acc_rate_limit,
            "gate_limit": gate.limit,
        },
    )


def _check_rest_latency(client: DoctorClient, samples: int) -> Finding:
    """Round trips of ``public/time``; the time a call waited in the request gate (its
    pacing of a 10-per-2-s endpoint) is measured and left out."""
    times: list[float] = []
    waited = 0.0
    try:
        for _ in range(samples):
            before = client.gate_stats().total_wait_s
            t0 = time.perf_counter()
            client.public.get_system_time()
            elapsed = time.perf_counter() - t0
            wait = max(0.0, client.gate_stats().total_wait_s - before)
            waited += wait
            times.append(max(0.0, elapsed - wait) * 1000.0)
    except OkxError as exc:
        return Finding("REST latency", "fail", f"{type(exc).__name__}: {exc}")
    p50, worst = statistics.median(times), max(times)
    status = "ok" if p50 / 1000.0 < LATENCY_WARN_S else "warn"
    return Finding(
        "REST latency",
        status,
        f"public/time p50 {p50:.1f} ms, max {worst:.1f} ms over {samples} calls "
        f"(gate pacing {waited * 1000:.0f} ms left out)",
        {
            "p50_s": round(p50 / 1000.0, 6),
            "max_s": round(worst / 1000.0, 6),
            "samples": samples,
            "gate_wait_s": round(waited, 6),
        },
    )


def _check_ws_ping(client: DoctorClient, samples: int, opened: list[Any]) -> Finding:
    ws = client.ws_public(
        config=WSConfig(
            heartbeat=HeartbeatPolicy(ping_interval_s=0.2, pong_timeout_s=5.0), name="doctor-public"
        )
    )
    opened.append(ws)
    rtts: list[float] = []
    try:
        t0 = time.perf_counter()
        ws.start(timeout_s=15.0)
        connect_ms = (time.perf_counter() - t0) * 1000.0
        deadline = time.monotonic() + 5.0 + samples * 0.5
        seen: set[float] = set()
        while len(rtts) < samples and time.monotonic() < deadline:
            st = ws.stats()
            if st.last_ping and st.last_pong and st.last_pong >= st.last_ping:
                if st.last_ping not in seen:
                    seen.add(st.last_ping)
                    rtts.append((st.last_pong - st.last_ping) * 1000.0)
            time.sleep(0.005)
    except OkxError as exc:
        return Finding("WS ping", "fail", f"{type(exc).__name__}: {exc}")
    if not rtts:
        return Finding("WS ping", "fail", "no pong to the heartbeat's ping")
    p50 = statistics.median(rtts)
    return Finding(
        "WS ping",
        "ok" if p50 / 1000.0 < LATENCY_WARN_S else "warn",
        f"ping -> pong p50 {p50:.1f} ms, max {max(rtts):.1f} ms over {len(rtts)} heartbeats; "
        f"connect {connect_ms:.0f} ms",
        {
            "p50_s": round(p50 / 1000.0, 6),
            "max_s": round(max(rtts) / 1000.0, 6),
            "connect_s": round(connect_ms / 1000.0, 4),
        },
    )


def _check_ws_login(client: DoctorClient, has_creds: bool, opened: list[Any]) -> Finding:
    if not has_creds:
        return Finding("WS login", "skip", "needs credentials")
    ws = client.ws_private(config=WSConfig(name="doctor-private"))
    opened.append(ws)
    try:
        t0 = time.perf_counter()
        ws.start(timeout_s=15.0)
        login_ms = (time.perf_counter() - t0) * 1000.0
    except OkxError as exc:
        return Finding(
            "WS login",
            "fail",
            f"{type(exc).__name__}: {exc} - {_auth_hint(exc)}",
            {"code": str(getattr(exc, "code", ""))},
        )
    return Finding("WS login", "ok", f"private connection logged in in {login_ms:.0f} ms",
                   {"login_s": round(login_ms / 1000.0, 4)})  # fmt: skip


def run_checks(
    client: DoctorClient,
    *,
    has_credentials: bool,
    samples: int = 5,
    report: Callable[[Finding], None] | None = None,
    opened: list[Any] | None = None,
) -> list[Finding]:
    """Run every check with ``client`` (its WS factories give the WebSocket hosts);
    ``report`` gets each finding as it is made. Never raises for a failing check (it is
    a ``fail`` finding). The WS clients the checks open are closed before returning,
    unless ``opened`` is given: they are appended to it, still running (so that
    ``client.health()`` judges them), and the caller closes them."""
    keep = opened is not None
    opened = opened if opened is not None else []
    steps: list[Callable[[], Finding]] = [
        lambda: _check_time(client),
        lambda: _check_credentials(client, has_credentials),
        lambda: _check_account_limit(client, has_credentials),
        lambda: _check_rest_latency(client, samples),
        lambda: _check_ws_ping(client, samples, opened),
        lambda: _check_ws_login(client, has_credentials, opened),
    ]
    findings = []
    try:
        for step in steps:
            finding = step()
            findings.append(finding)
            if report is not None:
                report(finding)
    finally:
        if not keep:
            for ws in opened:
                ws.close()
    return findings
