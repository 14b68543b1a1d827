"""Test helpers for code built on okx_sync (the top layer: may import anything)."""

from .mock_transport import MockTransport

__all__ = ["MockTransport"]
