"""Typed models of OKX objects: frozen attrs classes built by ``from_okx``. Pure.

Prices and sizes are ``Decimal``; OKX's empty strings become ``None``; every
model keeps the original dict as ``raw``. Models are immutable and safe to share
between threads.
"""

from .order import OrderAck

__all__ = ["OrderAck"]
