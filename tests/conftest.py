"""Shared test fixtures.

Real recorded OKX data is read in place from ``../shared/realdata`` (beside the
checkout, as in CI); tests that need it skip with a clear reason when absent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REALDATA = SHARED / "realdata"


def realdata_path(*parts: str) -> Path:
    """Path of a file under ../shared/realdata, or skip the test when it is absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real OKX data not available: {path} (../shared is not beside this checkout)")
    return path


def wait_until(pred: Callable[[], object], timeout: float = 5.0, step: float = 0.002) -> bool:
    """Poll ``pred`` every ``step`` s until it is true or ``timeout`` s passed; its last truth.

    For state that offers no event to wait on (other threads' counters, a
    server's view); prefer an Event/Condition where there is one.
    """
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


@pytest.fixture
def realdata() -> type:
    """Gives tests ``realdata(...)`` -> Path (skips when ../shared/realdata is absent)."""

    class _R:
        path = staticmethod(realdata_path)

    return _R


@pytest.fixture
def redis_server():
    """A fresh real ``redis-server`` on a free loopback port (``tests/redis_support.py``);
    skips when the binary cannot be found. Stopped at the end."""
    from redis_support import REDIS_MISSING, RedisServer, redis_server_path

    if redis_server_path() is None:
        pytest.skip(REDIS_MISSING)
    pytest.importorskip("redis", reason="the redis package (pip install okx-sync[redis])")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()
