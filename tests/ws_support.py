"""Helpers shared by the WSClient tests (tests/test_ws_*.py)."""

from __future__ import annotations

import threading

from tests.conftest import wait_until

__all__ = ["ws_threads", "wait_until"]


def ws_threads() -> list[str]:
    """Names of the live threads a WSClient starts (``okx-ws-...``)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("okx-ws-")]
