"""Drill ``auth`` (runbook §3): skewed clock, wrong passphrase, wrong environment.

1. **clock skew** — a Client whose wall clock runs ``SKEW_S`` ahead, with
   the automatic re-sync switched off (``RetryPolicy(resync_on_time_skew=False)``,
   REST and WS): the signed REST call is refused (50102) and the WS login
   too (60006); both are classified as time-skew *and* auth errors
   (``is_time_skew_error``, ``is_auth_error``). ``sync_time()`` measures the
   offset (≈ -SKEW_S) and the same calls then succeed. With the default
   retry policy the client heals by itself: a fresh skewed client re-syncs
   once for a REST call, and another one's private WS login (60006) re-syncs
   once and logs in again — nobody calls ``sync_time()``.
2. **wrong passphrase** — refused (REST 50105, WS login 60024), classified as
   auth but *not* time skew; ``sync_time()`` does not fix it (the runbook's
   next step: check the key triple).
3. **wrong environment** (simulator only) — the live key sent with the demo
   header: 50101, an auth error.

Live (``--live``): steps 1 and 2 with the demo key from the environment
(read-only calls; WS login on OKX's demo URL).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ...clock import SYSTEM_CLOCK
from ...errors import (
    APIError,
    OkxError,
    WSAuthError,
    is_auth_error,
    is_time_skew_error,
)
from ...retry import RetryPolicy
from ...ws.config import WSConfig
from ..ports import DrillClient
from .base import Drill, DrillRun

__all__ = ["DRILL", "SkewedClock"]

SKEW_S = 120.0


class SkewedClock:
    """The system clock with a wall clock ``skew_s`` seconds off (monotonic time,
    sleeps and waits are the real ones). Thread safety: immutable; any thread."""

    def __init__(self, skew_s: float) -> None:
        self.skew_s = float(skew_s)

    def monotonic(self) -> float:
        """Real monotonic time."""
        return SYSTEM_CLOCK.monotonic()

    def time(self) -> float:
        """Wall-clock time plus the skew."""
        return SYSTEM_CLOCK.time() + self.skew_s

    def sleep(self, seconds: float) -> None:
        """Really sleep."""
        SYSTEM_CLOCK.sleep(seconds)

    def wait(self, cond: threading.Condition, timeout_s: float | None) -> bool:
        """Wait on ``cond`` (held by the caller) in real time."""
        return SYSTEM_CLOCK.wait(cond, timeout_s)


def _call(fn: Any) -> tuple[Any, OkxError | None]:
    try:
        return fn(), None
    except OkxError as exc:
        return None, exc


def _code(err: BaseException | None) -> str:
    return str(getattr(err, "code", "")) if err is not None else ""


def _ws_login(
    run: DrillRun, client: DrillClient, name: str, **kwargs: Any
) -> tuple[float, OkxError | None]:
    """Start ``client.ws_private()`` (login with the client's key and clock offset) and
    close it; (seconds, error or None)."""
    ws = run.ws("private", client, config=WSConfig(name=name), **kwargs)
    started = time.monotonic()
    try:
        ws.start(timeout_s=10.0)
    except OkxError as exc:
        return time.monotonic() - started, exc
    finally:
        ws.close()
    return time.monotonic() - started, None


def _clock_skew(run: DrillRun) -> None:
    skewed = SkewedClock(SKEW_S)
    client = run.client(clock=skewed, retry=RetryPolicy(resync_on_time_skew=False))
    run.step(f"clock skew: the client's wall clock runs {SKEW_S:g} s ahead, auto re-sync off")
    _, err = _call(client.account.get_balance)
    run.figure("skew_rest_code", _code(err), key=True)
    run.check(
        "skew: REST refused as a time-skew auth error",
        isinstance(err, APIError) and is_time_skew_error(err) and is_auth_error(err),
        f"{type(err).__name__ if err else 'no error'} {_code(err)}: "
        f"is_time_skew_error={err is not None and is_time_skew_error(err)}, "
        f"is_auth_error={err is not None and is_auth_error(err)}",
    )
    _, ws_err = _ws_login(run, client, "auth-skew")
    run.figure("skew_ws_code", _code(ws_err))
    run.check(
        "skew: WS login refused as a time-skew error",
        isinstance(ws_err, WSAuthError) and is_time_skew_error(ws_err),
        f"{type(ws_err).__name__ if ws_err else 'no error'} {_code(ws_err)}",
    )
    offset, sync_err = _call(client.sync_time)
    run.figure("sync_offset_ms", offset, key=True)
    run.check(
        "skew: sync_time measures the offset",
        sync_err is None and offset is not None and abs(offset + SKEW_S * 1000) < 5000,
        f"offset {offset} ms for a clock {SKEW_S:g} s ahead"
        + (f": {sync_err}" if sync_err else ""),
        required=True,
    )
    _, err = _call(client.account.get_balance)
    run.check(
        "skew: REST works after sync_time",
        err is None,
        "balance read" if err is None else f"{type(err).__name__}: {err}",
    )
    seconds, ws_err = _ws_login(run, client, "auth-synced")
    run.figure("ws_login_after_sync_s", seconds)
    run.check(
        "skew: WS login works after sync_time",
        ws_err is None,
        f"logged in in {seconds:.2f} s" if ws_err is None else f"{type(ws_err).__name__}: {ws_err}",
    )
    auto = run.client(clock=skewed)  # default RetryPolicy: re-sync once on 50102
    _, err = _call(auto.account.get_balance)
    resyncs = auto.stats().resyncs
    run.figure("auto_resyncs", resyncs)
    run.check(
        "skew: the default client re-syncs by itself, once",
        err is None and resyncs == 1,
        f"resyncs={resyncs}" + (f", {type(err).__name__}: {err}" if err else ", call succeeded"),
    )
    auto_ws = run.client(clock=skewed)  # default RetryPolicy: WS login re-syncs once on 60006
    ws = run.ws("private", auto_ws, config=WSConfig(name="auth-auto"))
    _, ws_err = _call(lambda: ws.start(timeout_s=10.0))
    ws_resyncs = ws.stats().login_resyncs
    ws.close()
    run.figure("auto_ws_login_resyncs", ws_resyncs, key=True)
    run.check(
        "skew: the default client's WS login re-syncs by itself, once, and logs in",
        ws_err is None and ws_resyncs == 1 and auto_ws.stats().time_sync.syncs == 1,
        f"login_resyncs={ws_resyncs}"
        + (f", {type(ws_err).__name__}: {ws_err}" if ws_err else ", logged in"),
    )


def _wrong_passphrase(run: DrillRun) -> None:
    run.step("wrong passphrase")
    client = run.client(credentials="wrong_passphrase")
    _, err = _call(client.account.get_balance)
    run.figure("passphrase_rest_code", _code(err), key=True)
    run.check(
        "passphrase: REST refused as auth, not time skew",
        isinstance(err, APIError) and is_auth_error(err) and not is_time_skew_error(err),
        f"{type(err).__name__ if err else 'no error'} {_code(err)}: "
        f"is_auth_error={err is not None and is_auth_error(err)}, "
        f"is_time_skew_error={err is not None and is_time_skew_error(err)}",
    )
    _, sync_err = _call(client.sync_time)
    _, again = _call(client.account.get_balance)
    run.check(
        "passphrase: sync_time does not fix it",
        sync_err is None and isinstance(again, APIError) and _code(again) == _code(err),
        f"after sync_time: {type(again).__name__ if again else 'success'} {_code(again)}",
    )
    seconds, ws_err = _ws_login(run, client, "auth-passphrase")
    run.figure("passphrase_ws_code", _code(ws_err))
    run.check(
        "passphrase: WS login refused as auth, no reconnect loop",
        isinstance(ws_err, WSAuthError) and not is_time_skew_error(ws_err) and seconds < 5.0,
        f"{type(ws_err).__name__ if ws_err else 'no error'} {_code(ws_err)} after {seconds:.2f} s",
    )


def _wrong_environment(run: DrillRun) -> None:
    run.step("wrong environment: live key with the demo header")
    client = run.client(demo=True)
    _, err = _call(client.account.get_balance)
    run.figure("environment_rest_code", _code(err))
    run.check(
        "environment: refused as auth (key does not match the environment)",
        isinstance(err, APIError) and is_auth_error(err) and _code(err) == "50101",
        f"{type(err).__name__ if err else 'no error'} {_code(err)}",
    )


def routine(run: DrillRun) -> None:
    """The drill (see the module docstring)."""
    _clock_skew(run)
    _wrong_passphrase(run)
    if not run.live:
        _wrong_environment(run)


DRILL = Drill(
    name="auth",
    title="clock skew and wrong passphrase: classified; a re-sync (automatic) fixes the first",
    runbook="§3",
    routine=routine,
    live_safe=True,
    sim_options={"auto_tick": False},
)
