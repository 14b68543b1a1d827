"""``okx-sync doctor``: check what a trading process depends on, then print ``client.health()``.

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

Where: the embedded simulator by default (a fresh one, its live key); with
``--live`` the configured environment (``Client.from_env()``: ``OKX_API_KEY``,
``OKX_SECRET_KEY``, ``OKX_PASSPHRASE``, ``OKX_DEMO``, ``OKX_BASE_URL``,
``OKX_WS_PUBLIC_URL`` / ``OKX_WS_PRIVATE_URL``; every check only reads).
Without credentials the signed checks are skipped. ``--json`` prints one
object. Exit code 0 when nothing failed, 1 otherwise, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ..errors import APIError, OkxError, is_auth_error, is_time_skew_error
from .console import cli_logging

__all__ = ["main", "build_parser", "Finding", "run_checks"]

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


def build_parser() -> argparse.ArgumentParser:
    """The ``okx-sync doctor`` argument parser."""
    p = argparse.ArgumentParser(
        prog="okx-sync doctor",
        description=(
            "Check clock skew, credentials, the account rate limit, REST latency and the WS "
            "ping round trip, then print client.health(). Against the embedded simulator by "
            "default; --live uses the configured environment (OKX_* variables; reads only)."
        ),
    )
    p.add_argument("--live", action="store_true", help="check the configured OKX environment")
    p.add_argument("--samples", type=int, default=5, help="REST / WS round trips (default 5)")
    p.add_argument("--json", action="store_true", help="print the findings as one JSON object")
    p.add_argument("-v", "--verbose", action="store_true", help="show okx_sync's warnings")
    return p


def _auth_hint(err: BaseException) -> str:
    if is_time_skew_error(err):
        return "timestamp refused: run sync_time / fix the host clock"
    code = str(getattr(err, "code", ""))
    if code == "50101":
        return "key does not match the environment (demo key needs OKX_DEMO=1, and vice versa)"
    if is_auth_error(err):
        return "check the key triple (key, secret, passphrase), permissions, IP whitelist"
    return "see the error"


def _check_time(client: Any) -> Finding:
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


def _check_credentials(client: Any, has_creds: bool) -> Finding:
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


def _check_account_limit(client: Any, has_creds: bool) -> Finding:
    if not has_creds:
        return Finding("account rate limit", "skip", "needs credentials")
    try:
        limit = client.trade.get_account_rate_limit()
    except OkxError as exc:
        return Finding("account rate limit", "fail", f"{type(exc).__name__}: {exc}")
    gate = client.gate_stats()["account_order_limit"]
    detail = f"{limit.acc_rate_limit} new+amend orders / 2 s"
    if limit.fill_ratio is not None:
        detail += f" (fill ratio {limit.fill_ratio})"
    detail += f"; the gate uses {gate['limit']} ({gate['source']})"
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
            "gate_limit": gate["limit"],
        },
    )


def _check_rest_latency(client: Any, samples: int) -> Finding:
    """Round trips of ``public/time``; the time a call waited in the request gate (its
    pacing of a 10-per-2-s endpoint) is measured and left out."""
    times: list[float] = []
    waited = 0.0
    try:
        for _ in range(samples):
            before = client.gate_stats()["total_wait_s"]
            t0 = time.perf_counter()
            client.public.get_system_time()
            elapsed = time.perf_counter() - t0
            wait = max(0.0, client.gate_stats()["total_wait_s"] - before)
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


def _check_ws_ping(client: Any, samples: int, opened: list[Any]) -> Finding:
    ws = client.ws_public(name="doctor-public", ping_interval_s=0.2, pong_timeout_s=5.0)
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


def _check_ws_login(client: Any, has_creds: bool, opened: list[Any]) -> Finding:
    if not has_creds:
        return Finding("WS login", "skip", "needs credentials")
    ws = client.ws_private(name="doctor-private")
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
    client: Any,
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``okx-sync doctor``; returns 0 when no check failed, 1 otherwise, 2 for usage
    errors (bad options, bad environment)."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    if args.samples < 1:
        print("okx-sync doctor: --samples must be >= 1", file=sys.stderr)
        return 2
    from ..auth import Credentials, redact_key
    from ..client import Client

    def show(finding: Finding) -> None:
        if not args.json:
            print(f"  {finding.name:<19} {finding.status:<5} {finding.detail}", flush=True)

    with cli_logging(args.verbose):
        sim = None
        try:
            if args.live:
                try:
                    client = Client.from_env()
                except OkxError as exc:
                    print(f"okx-sync doctor: {exc}", file=sys.stderr)
                    return 2
                creds = Credentials.from_parts(
                    os.environ.get("OKX_API_KEY") or None,
                    os.environ.get("OKX_SECRET_KEY") or None,
                    os.environ.get("OKX_PASSPHRASE") or None,
                )
                where = f"{'OKX demo' if client.demo else 'OKX'} at {client.base_url}"
            else:
                from ..sim import Simulator

                sim = Simulator(seed=7)
                client = sim.client()
                creds = sim.credentials.live
                where = f"the embedded simulator at {sim.rest_url}"
            with client:
                key = redact_key(creds.api_key) if creds else "no key"
                if not args.json:
                    print(f"okx-sync doctor: {where} ({key})", flush=True)
                opened: list[Any] = []
                try:
                    findings = run_checks(
                        client,
                        has_credentials=creds is not None,
                        samples=args.samples,
                        report=show,
                        opened=opened,
                    )
                    health = client.health()  # with the WS clients of the checks running
                finally:
                    for ws in opened:
                        ws.close()
        finally:
            if sim is not None:
                sim.close()
    failed = [f for f in findings if f.status == "fail"]
    if args.json:
        print(
            json.dumps(
                {
                    "where": where,
                    "ok": not failed,
                    "findings": [f.to_dict() for f in findings],
                    "health": health.to_dict(),
                },
                default=str,
            )
        )
    else:
        from .health import format_health

        print("health (client.health())")
        for line in format_health(health).splitlines():
            print(f"  {line}")
        print("all checks passed" if not failed else f"{len(failed)} check(s) failed")
    return 1 if failed else 0
