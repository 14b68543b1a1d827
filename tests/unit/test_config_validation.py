"""Option values are checked when a public config object or client is built: a string,
bool, NaN, infinity or negative duration, a float or bool where an int is required, and
a non-bool flag raise ValidationError (a ValueError, never a TypeError), and nothing is
silently accepted."""

from __future__ import annotations

import math
from typing import Any

import pytest

from okx_sync import WSClient
from okx_sync.client import Client
from okx_sync.errors import OkxError, ValidationError
from okx_sync.gate import RequestGateConfig
from okx_sync.instruments import InstrumentCache
from okx_sync.ops.dead_man import DeadManSwitch
from okx_sync.ops.health import HealthThresholds
from okx_sync.ops.reporter import StatsReporter
from okx_sync.retry import RetryPolicy
from okx_sync.validators import count, field, flag, instance, one_of, real, seconds
from okx_sync.ws.config import WSConfig
from okx_sync.ws.dispatch import DispatchConfig
from okx_sync.ws.managed_book import ManagedOrderBook, ResyncPolicy
from okx_sync.ws.policies import BackoffPolicy, ConnectRateLimiter, HeartbeatPolicy

NAN, INF = math.nan, math.inf
BAD_DURATIONS = ["5", NAN, INF, -1.0, True, None, b"5"]
BAD_INTS = [2.0, True, "3", NAN, None]
WS_URL = "ws://127.0.0.1:9/ws/v5/public"


def _ws(**kw: Any) -> WSClient:
    return WSClient(WS_URL, **kw)


class _NoClient:
    """Stands for a client: construction is refused before it is touched."""


def _reporter(**kw: Any) -> StatsReporter:
    return StatsReporter(_NoClient(), start=False, **kw)


def _dead_man(**kw: Any) -> DeadManSwitch:
    return DeadManSwitch(_NoClient(), **kw)


def _book(**kw: Any) -> ManagedOrderBook:
    return ManagedOrderBook(_ws(), "BTC-USDT", **kw)


def _cache(**kw: Any) -> InstrumentCache:
    return InstrumentCache(lambda t, f: [], **kw)


DURATIONS: list[tuple[Any, str]] = [
    (Client, "timeout_s"),
    (WSConfig, "connect_timeout_s"),
    (WSConfig, "subscribe_timeout_s"),
    (WSConfig, "order_timeout_s"),
    (WSConfig, "start_timeout_s"),
    (HeartbeatPolicy, "ping_interval_s"),
    (RequestGateConfig, "wait_timeout_s"),
    (RequestGateConfig, "refresh_account_limit_s"),
    (RequestGateConfig, "account_limit_retry_s"),
    (RetryPolicy, "base_delay_s"),
    (RetryPolicy, "max_delay_s"),
    (RetryPolicy, "max_retry_after_s"),
    (HealthThresholds, "silence_degraded_s"),
    (HealthThresholds, "window_s"),
    (BackoffPolicy, "initial"),
    (BackoffPolicy, "stable_after_s"),
    (HeartbeatPolicy, "pong_timeout_s"),
    (ResyncPolicy, "snapshot_timeout_s"),
    (_reporter, "interval_s"),
    (_dead_man, "refresh_s"),
    (_cache, "ttl_s"),
]


def _label(item: Any) -> str:
    if isinstance(item, tuple):
        return f"{getattr(item[0], '__name__', item[0])}.{item[1]}"
    return repr(item)


INTS: list[tuple[Any, str]] = [
    (RequestGateConfig, "max_concurrent"),
    (RequestGateConfig, "account_order_limit"),
    (RetryPolicy, "max_retries"),
    (DispatchConfig, "queue_size"),
    (DispatchConfig, "workers"),
    (HealthThresholds, "reconnects_degraded"),
    (HealthThresholds, "rest_errors_degraded"),
    (ConnectRateLimiter, "rate"),
    (_cache, "maxsize"),
    (_dead_man, "timeout_s"),
]


FLAGS: list[tuple[Any, str]] = [
    (Client, "demo"),
    (WSConfig, "login"),
    (RequestGateConfig, "rate_limits"),
    (RequestGateConfig, "lead_trader"),
    (RetryPolicy, "honour_retry_after"),
    (RetryPolicy, "retry_reads_on_5xx"),
    (RetryPolicy, "resync_on_time_skew"),
    (HealthThresholds, "account_bucket_exhausted"),
    (_reporter, "close_sinks"),
    (_book, "verify_sequence"),
    (_book, "verify_checksum"),
]


BAD_FLAGS = [1, 0, "yes", "false", None]
# None is a valid value of these options: start_timeout_s (connect_timeout_s + 5),
# account_order_limit (OKX's base limit), login (decided from credentials and URL).
NONE_ALLOWED = {"start_timeout_s", "account_order_limit", "login"}
CASES = [
    (target, bad)
    for targets, bads in ((DURATIONS, BAD_DURATIONS), (INTS, BAD_INTS), (FLAGS, BAD_FLAGS))
    for target in targets
    for bad in bads
    if not (bad is None and target[1] in NONE_ALLOWED)
]


@pytest.mark.parametrize(("target", "bad"), CASES, ids=lambda v: _label(v))
def test_bad_option_is_validation_error(target: tuple[Any, str], bad: Any) -> None:
    build, name = target
    with pytest.raises(ValidationError) as info:
        build(**{name: bad})
    assert name in str(info.value)
    assert isinstance(info.value, ValueError) and not isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    ("build", "kwargs"),
    [
        (RequestGateConfig, {"headroom": NAN}),
        (RequestGateConfig, {"headroom": "0.5"}),
        (RequestGateConfig, {"penalty_factor": 0}),
        (RequestGateConfig, {"recovery_windows": INF}),
        (RetryPolicy, {"jitter": NAN}),
        (RetryPolicy, {"multiplier": "2"}),
        (HealthThresholds, {"queue_down_ratio": INF}),
        (BackoffPolicy, {"multiplier": NAN}),
        (BackoffPolicy, {"jitter": 1.5}),
        (HeartbeatPolicy, {"ping_interval_s": 30}),
        (DispatchConfig, {"mode": "threads"}),
        (DispatchConfig, {"overflow": None}),
        (Client, {"gate": {"max_concurrent": 5}}),
        (Client, {"retry": "none"}),
        (Client, {"health_thresholds": {}}),
        (WSConfig, {"backoff": 1.0}),
        (WSConfig, {"typed_dispatch": {"workers": 2}}),  # DispatchConfig only: no dicts
        (WSConfig, {"raw_dispatch": "inline"}),  # ... nor mode names
        (WSConfig, {"ws_options": {"http_proxy_host": "p"}}),
        (WSConfig, {"max_message_bytes": 100}),
        (_ws, {"config": {"login": True}}),  # a WSConfig, not a dict
        (_ws, {"config": WSConfig(login=True)}),  # login without credentials
        (_reporter, {"thresholds": {"window_s": 5}}),
        (_book, {"rest_tolerance": "0.1"}),
        (_book, {"rest_tolerance": INF}),
        (_book, {"callbacks": "pool"}),
        (_dead_man, {"refresh_s": 60, "timeout_s": 60}),
    ],
    ids=lambda v: getattr(v, "__name__", None) or ",".join(v),
)
def test_other_bad_options(build: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        build(**kwargs)


def test_health_threshold_order_is_validation_error() -> None:
    with pytest.raises(ValidationError, match="silence_degraded_s"):
        HealthThresholds(silence_degraded_s=50.0, silence_down_s=45.0)


def test_good_values_are_accepted_as_given() -> None:
    cfg = RequestGateConfig(max_concurrent=3, wait_timeout_s=2, account_order_limit=None)
    assert cfg.wait_timeout_s == 2 and cfg.account_order_limit is None
    assert RetryPolicy(max_retries=0, base_delay_s=0, jitter=1).max_retries == 0
    assert DispatchConfig(workers=2).workers == 2
    assert HealthThresholds(window_s=1).window_s == 1
    with Client(timeout_s=2, demo=True) as c:
        assert c.demo is True


def test_validators_are_pure_and_name_the_option() -> None:
    assert seconds(3, name="t") == 3.0 and isinstance(seconds(3, name="t"), float)
    assert seconds(None, name="t", optional=True) is None
    assert seconds(0, name="t") == 0.0
    with pytest.raises(ValidationError, match="t must be > 0"):
        seconds(0, name="t", positive=True)
    assert count(0, name="n", minimum=0) == 0
    with pytest.raises(ValidationError, match="n must be an int >= 1"):
        count(0, name="n")
    assert real(0.5, name="r", low=0, high=1) == 0.5
    with pytest.raises(ValidationError, match=r"r must be in \(0, 1\]"):
        real(0, name="r", low=0, high=1, low_open=True)
    assert flag(False, name="f") is False
    assert one_of("a", name="m", choices=("a", "b")) == "a"
    assert instance(None, name="x", kind=int, optional=True) is None
    check = field(count, minimum=2)

    class Attr:
        name = "workers"

    with pytest.raises(ValidationError, match="workers must be an int >= 2"):
        check(None, Attr(), 1)
    # ValidationError is the okx_sync error for bad input, and a ValueError for old callers
    assert issubclass(ValidationError, OkxError) and issubclass(ValidationError, ValueError)
    assert not issubclass(ValidationError, TypeError)
