"""Shared test fixtures, and the kind of every test file.

Real recorded OKX data is read in place from ``../shared/realdata`` (beside the
checkout, as in CI); tests that need it skip with a clear reason when absent.

Every test carries one of the markers ``unit`` (no sockets, fake clock, fast:
``python -m pytest -m unit``), ``integration`` (the simulator, sockets, threads,
subprocesses), ``drills`` (the runbook drills end to end) or ``examples`` (the
README/RUNBOOK code, the examples and the commands the docs show): the directory
its file sits in, ``tests/unit/``, ``tests/integration/``, ``tests/drills/`` or
``tests/examples/``. Collecting a test file outside them is an error. A ``unit``
test that opens a socket (connect/bind) fails.
"""

from __future__ import annotations

import gc
import os
import re
import socket
import tempfile
from pathlib import Path

import pytest

from okx_sync.testing import wait_until  # noqa: F401  (tests.conftest.wait_until: older imports)

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SHARED = REPO.parent / "shared"
REALDATA = SHARED / "realdata"

# The tests' subprocesses (the examples, the commands the docs show) import okx_sync
# afresh. With PYTHONDONTWRITEBYTECODE set, each compiled every module of the checkout
# again (~0.3 s of CPU per process); they share a bytecode cache outside the checkout
# instead (as benchmarks/startup.py does).
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    os.environ.setdefault(
        "PYTHONPYCACHEPREFIX",
        str(Path(tempfile.gettempdir()) / f"okx_sync-test-pycache-{os.getuid()}"),
    )


KINDS = ("unit", "integration", "drills", "examples")


def kind_of(path: Path) -> str | None:
    """The kind of a test file (the directory under tests/ it sits in) or of that
    directory itself; None for anything else."""
    kind_dir = path if path.is_dir() else path.parent
    return kind_dir.name if kind_dir.name in KINDS and kind_dir.parent == TESTS else None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m`` naming only kinds (``unit``, ``not integration``, ...) a directory of
    another kind is not even entered: ``-m unit`` skips the simulator-heavy modules."""
    kind = kind_of(collection_path)
    expr = (config.getoption("markexpr", "") or "").strip()
    if kind is None or not expr:
        return None
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr)) - {"and", "or", "not"}
    if not words <= set(KINDS):
        return None
    from _pytest.mark.expression import Expression  # pytest's own -m evaluator

    return not Expression.compile(expr).evaluate(lambda name: name == kind) or None


# the order the kinds run in: the long files first, so that with ``-n 4 --dist loadfile``
# (README) one worker runs the drills while the others work through the rest
RUN_ORDER = ("drills", "examples", "integration", "unit")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test its kind marker from its directory (a test file outside
    ``tests/<kind>/`` is an error) and run the kinds in ``RUN_ORDER`` (files keep
    their order within a kind)."""
    unclassified = set()
    kinds: dict[Path, str] = {}
    for item in items:
        kind = kinds.get(item.path) or kind_of(item.path)
        if kind is None:
            unclassified.add(str(item.path.relative_to(REPO)))
            continue
        kinds[item.path] = kind
        item.add_marker(kind)
    if unclassified:
        raise pytest.UsageError(
            "test files outside the kind directories: move them to tests/<kind>/ "
            f"({', '.join(KINDS)}): {', '.join(sorted(unclassified))}"
        )
    items.sort(key=lambda item: RUN_ORDER.index(kinds[item.path]))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what import and collection built (modules, parsed sources, ~3,000 test items)
    out of the garbage collector's sight: it lives to the end of the run anyway, and every
    full collection (pytest's own at the end included) would walk it again."""
    gc.freeze()


def _no_socket(*args: object, **kwargs: object) -> None:
    raise AssertionError(
        "a unit test opened a socket: make it socket-free or move its file to "
        "tests/integration/"
    )


@pytest.fixture(autouse=True)
def _unit_tests_open_no_socket(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a ``unit`` test, ``connect``/``bind`` on any socket raise AssertionError."""
    if request.node.get_closest_marker("unit") is None:
        return
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _no_socket)


@pytest.fixture(autouse=True)
def _fresh_ws_connect_limiter(request: pytest.FixtureRequest) -> None:
    """Each test that may open WebSockets starts with the process-wide connect limiter
    (OKX's 3 new connections per second per IP) empty, as a process of its own would:
    slots booked by the tests before it do not hold its first connections back (a doc
    block or ``okx-sync doctor`` run in-process waited up to 1 s for them)."""
    if request.node.get_closest_marker("unit") is not None:
        return
    from okx_sync.ws.policies import ConnectRateLimiter

    with ConnectRateLimiter._process_lock:  # the lock process_default() takes
        ConnectRateLimiter._process.clear()


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
