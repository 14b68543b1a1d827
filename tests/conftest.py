"""Shared test fixtures.

Real recorded OKX data is read in place from ``../shared/realdata`` (beside the
checkout, as in CI); tests that need it skip with a clear reason when absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from okx_sync.testing import wait_until  # noqa: F401  (tests.conftest.wait_until: older imports)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REALDATA = SHARED / "realdata"


def realdata_path(*parts: str) -> Path:
    """Path of a file under ../shared/realdata, or skip the test when it is absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real OKX data not available: {path} (../shared is not beside this checkout)")
    return path


@pytest.fixture
def realdata() -> type:
    """Gives tests ``realdata(...)`` -> Path (skips when ../shared/realdata is absent)."""

    class _R:
        path = staticmethod(realdata_path)

    return _R
