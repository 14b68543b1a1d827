"""Typed models of OKX objects: frozen attrs classes built by ``from_okx``. Pure.

Prices and sizes are ``Decimal``; OKX's empty strings become ``None``; every
model keeps the original dict as ``raw``. Models are immutable and safe to share
between threads.
"""

from .account import AccountConfig, AccountRateLimit, Balance, BalanceDetail, Position
from .instrument import Instrument
from .market import BookLevel, Candle, OrderBook, Ticker, Trade
from .order import Fill, Order, OrderAck
from .server_time import ServerTime

__all__ = [
    "AccountConfig",
    "AccountRateLimit",
    "Balance",
    "BalanceDetail",
    "BookLevel",
    "Candle",
    "Fill",
    "Instrument",
    "Order",
    "OrderAck",
    "OrderBook",
    "Position",
    "ServerTime",
    "Ticker",
    "Trade",
]
