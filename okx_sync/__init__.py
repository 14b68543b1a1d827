"""okx_sync — a blocking, thread-safe OKX V5 client (REST + WebSocket) built to be operated.

Start with :class:`okx_sync.Client` (one object shared by many threads) and
``python -m okx_sync demo`` (a tour against the embedded simulator,
:mod:`okx_sync.sim`). The public names below are imported lazily so that
``import okx_sync`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "OkxError": "okx_sync.errors",
    "ValidationError": "okx_sync.errors",
    "InstrumentRuleError": "okx_sync.errors",
    "APIError": "okx_sync.errors",
    "OrderError": "okx_sync.errors",
    "RequestStateError": "okx_sync.errors",
    "SafeModeError": "okx_sync.errors",
    "WSError": "okx_sync.errors",
    "WSAuthError": "okx_sync.errors",
    "WSSubscribeError": "okx_sync.errors",
    "WSTimeoutError": "okx_sync.errors",
    "WSClosedError": "okx_sync.errors",
    "WSQueueFullError": "okx_sync.errors",
    "OrderBookError": "okx_sync.errors",
    "OrderBookSequenceError": "okx_sync.errors",
    "OrderBookChecksumError": "okx_sync.errors",
    "OrderBookNotReadyError": "okx_sync.errors",
    "OrderBookDataError": "okx_sync.errors",
    "OrderBookCrossedError": "okx_sync.errors",
    "is_rate_limit_error": "okx_sync.errors",
    "is_auth_error": "okx_sync.errors",
    "is_time_skew_error": "okx_sync.errors",
    # time and credentials
    "Clock": "okx_sync.clock",
    "SystemClock": "okx_sync.clock",
    "FakeClock": "okx_sync.clock",
    "Credentials": "okx_sync.auth",
    "Secret": "okx_sync.secret",
    # REST
    "Client": "okx_sync.client",
    "RequestGateConfig": "okx_sync.gate",
    "LocalGateBackend": "okx_sync.gate",
    "RedisGateBackend": "okx_sync.gate",
    "RetryPolicy": "okx_sync.retry",
    "RestStats": "okx_sync.rest.stats",
    "GateStats": "okx_sync.gate.stats",
    "BucketStats": "okx_sync.gate.stats",
    "new_cl_ord_id": "okx_sync.ids",
    "InstrumentCache": "okx_sync.instruments",
    "round_price": "okx_sync.instruments",
    "round_size": "okx_sync.instruments",
    # models
    "Instrument": "okx_sync.models",
    "Ticker": "okx_sync.models",
    "OrderBook": "okx_sync.models",
    "BookLevel": "okx_sync.models",
    "BookUpdate": "okx_sync.models.ws",
    "Candle": "okx_sync.models",
    "Trade": "okx_sync.models",
    "Balance": "okx_sync.models",
    "BalanceDetail": "okx_sync.models",
    "Position": "okx_sync.models",
    "Order": "okx_sync.models",
    "Fill": "okx_sync.models",
    "OrderAck": "okx_sync.models",
    "AccountConfig": "okx_sync.models",
    "AccountRateLimit": "okx_sync.models",
    "ServerTime": "okx_sync.models",
    # order books
    "OrderBookStore": "okx_sync.book",
    "StoreStats": "okx_sync.book",
    # WebSocket
    "WSClient": "okx_sync.ws.client",
    "WSConfig": "okx_sync.ws.config",
    "DispatchConfig": "okx_sync.ws.dispatch",
    "DispatchMode": "okx_sync.ws.dispatch",
    "Overflow": "okx_sync.ws.dispatch",
    "HeartbeatPolicy": "okx_sync.ws.policies",
    "BackoffPolicy": "okx_sync.ws.policies",
    "ManagedOrderBook": "okx_sync.ws.managed_book",
    "WSStats": "okx_sync.ws.stats",
    "BookStats": "okx_sync.ws.book_stats",
    # operations
    "Reconciler": "okx_sync.ops.reconcile",
    "AccountSnapshot": "okx_sync.ops.reconcile",
    "OrderResolution": "okx_sync.ops.reconcile",
    "SafeOrderResult": "okx_sync.ops.reconcile",
    "is_outcome_unknown": "okx_sync.ops.reconcile",
    "SafeModeState": "okx_sync.ops.safe_mode",
    "SafeModeReport": "okx_sync.ops.safe_mode",
    "CancelReport": "okx_sync.ops.safe_mode",
    "DeadManSwitch": "okx_sync.ops.dead_man",
    "DeadManSwitchError": "okx_sync.ops.dead_man",
    "DeadManStats": "okx_sync.ops.dead_man",
    "StatsReporter": "okx_sync.ops.reporter",
    "LogSink": "okx_sync.ops.reporter",
    "JsonLinesSink": "okx_sync.ops.reporter",
    "PrometheusSink": "okx_sync.ops.prometheus",
    "HealthThresholds": "okx_sync.ops.health",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'okx_sync' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - static view of the lazy exports
    from .auth import Credentials
    from .book import OrderBookStore, StoreStats
    from .client import Client
    from .clock import Clock, FakeClock, SystemClock
    from .errors import (
        APIError,
        InstrumentRuleError,
        OkxError,
        OrderBookChecksumError,
        OrderBookCrossedError,
        OrderBookDataError,
        OrderBookError,
        OrderBookNotReadyError,
        OrderBookSequenceError,
        OrderError,
        RequestStateError,
        SafeModeError,
        ValidationError,
        WSAuthError,
        WSClosedError,
        WSError,
        WSQueueFullError,
        WSSubscribeError,
        WSTimeoutError,
        is_auth_error,
        is_rate_limit_error,
        is_time_skew_error,
    )
    from .gate import LocalGateBackend, RedisGateBackend, RequestGateConfig
    from .gate.stats import BucketStats, GateStats
    from .ids import new_cl_ord_id
    from .instruments import InstrumentCache, round_price, round_size
    from .models import (
        AccountConfig,
        AccountRateLimit,
        Balance,
        BalanceDetail,
        BookLevel,
        Candle,
        Fill,
        Instrument,
        Order,
        OrderAck,
        OrderBook,
        Position,
        ServerTime,
        Ticker,
        Trade,
    )
    from .models.ws import BookUpdate
    from .ops.dead_man import DeadManStats
    from .ops.health import HealthThresholds
    from .ops.prometheus import PrometheusSink
    from .ops.reporter import JsonLinesSink, LogSink, StatsReporter
    from .rest.stats import RestStats
    from .secret import Secret
    from .ws.book_stats import BookStats
    from .ws.config import WSConfig
    from .ws.dispatch import DispatchConfig, DispatchMode, Overflow
    from .ws.managed_book import ManagedOrderBook
    from .ws.policies import BackoffPolicy, HeartbeatPolicy
    from .ws.stats import WSStats
