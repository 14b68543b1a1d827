"""Shared test fixtures, and the kind of every test file.

Real recorded OKX data is read in place from ``../shared/realdata`` (beside the
checkout, as in CI); tests that need it skip with a clear reason when absent.

Every test carries one of the markers ``unit`` (no sockets, fake clock, fast:
``python -m pytest -m unit``), ``integration`` (the simulator, sockets, threads,
subprocesses), ``drills`` (the runbook drills end to end) or ``examples`` (the
README/RUNBOOK code, the examples and the commands the docs show). It comes from
``TEST_KINDS`` by file; collecting a test file missing from the table is an
error. A ``unit`` test that opens a
socket (connect/bind) fails.
"""

from __future__ import annotations

import gc
import os
import re
import socket
import tempfile
import weakref
from pathlib import Path

import pytest

from okx_sync.testing import wait_until  # noqa: F401  (tests.conftest.wait_until: older imports)

REPO = Path(__file__).resolve().parents[1]
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

# test file -> its kind: the marker every test in it gets (a file has one kind, so that
# ``-m unit`` need not even import the other files)
TEST_KINDS: dict[str, str] = {
    # unit
    "test_api_list.py": "unit",
    "test_book_checksum_cache.py": "unit",
    "test_instrument_conversion.py": "unit",
    "test_health_rules.py": "unit",
    "test_api_coverage.py": "unit",
    "test_api_named.py": "unit",
    "test_api_params.py": "unit",
    "test_api_registry.py": "unit",
    "test_auth.py": "unit",
    "test_book.py": "unit",
    "test_book_realdata.py": "unit",
    "test_book_threads.py": "unit",
    "test_book_validation.py": "unit",
    "test_checksum.py": "unit",
    "test_class_size.py": "unit",
    "test_client_basics.py": "unit",
    "test_clock.py": "unit",
    "test_config_validation.py": "unit",
    "test_errors.py": "unit",
    "test_gate.py": "unit",
    "test_gate_account_limit.py": "unit",
    "test_gate_charges.py": "unit",
    "test_gate_window.py": "unit",
    "test_guards.py": "unit",
    "test_health.py": "unit",
    "test_hot_path.py": "unit",
    "test_instruments.py": "unit",
    "test_instruments_client.py": "unit",
    "test_layers.py": "unit",
    "test_managed_book_feed.py": "unit",
    "test_managed_book_units.py": "unit",
    "test_models_realdata.py": "unit",
    "test_models_shapes.py": "unit",
    "test_naming.py": "unit",
    "test_naming_convention.py": "unit",
    "test_no_sleep.py": "unit",
    "test_ops_bench.py": "unit",
    "test_order_input.py": "unit",
    "test_realdata_absent.py": "unit",
    "test_records.py": "unit",
    "test_reporter.py": "unit",
    "test_rest_core.py": "unit",
    "test_rest_core_mock.py": "unit",
    "test_rest_envelope.py": "unit",
    "test_rest_retry.py": "unit",
    "test_secrets.py": "unit",
    "test_sim_faults_hub.py": "unit",
    "test_time_sync_timer.py": "unit",
    "test_ws_dispatch.py": "unit",
    "test_ws_frames.py": "unit",
    "test_ws_models.py": "unit",
    "test_ws_policies.py": "unit",
    "test_ws_protocol.py": "unit",
    "test_ws_surface.py": "unit",
    # integration
    "test_go_comparison.py": "integration",
    "test_endpoint_examples.py": "integration",
    "test_background_errors.py": "integration",
    "test_client_options.py": "integration",
    "test_stats_snapshots.py": "integration",
    "test_user_agent.py": "integration",
    "test_ws_proxy.py": "integration",
    "test_ws_spread_orders.py": "integration",
    "test_ws_stats.py": "integration",
    "test_api_params_docs.py": "integration",
    "test_bench_run_all.py": "integration",
    "test_cli.py": "integration",
    "test_compat_okx.py": "integration",
    "test_compat_okx_wire.py": "integration",
    "test_dead_man.py": "integration",
    "test_evidence.py": "integration",
    "test_gate_client.py": "integration",
    "test_gate_shared.py": "integration",
    "test_ids.py": "integration",
    "test_lifecycle.py": "integration",
    "test_logs.py": "integration",
    "test_managed_book.py": "integration",
    "test_order_replies.py": "integration",
    "test_prometheus.py": "integration",
    "test_reconcile.py": "integration",
    "test_reporter_sim.py": "integration",
    "test_rest_bounds.py": "integration",
    "test_rest_redaction.py": "integration",
    "test_rest_sockets.py": "integration",
    "test_rest_threads.py": "integration",
    "test_rest_wire.py": "integration",
    "test_safe_mode.py": "integration",
    "test_sim_ccxt.py": "integration",
    "test_sim_faults.py": "integration",
    "test_sim_imports.py": "integration",
    "test_sim_matching.py": "integration",
    "test_sim_ratelimit.py": "integration",
    "test_sim_rest.py": "integration",
    "test_sim_serve.py": "integration",
    "test_sim_ws.py": "integration",
    "test_startup_lazy.py": "integration",
    "test_ws_bounds.py": "integration",
    "test_ws_client.py": "integration",
    "test_ws_flow.py": "integration",
    "test_ws_orders.py": "integration",
    "test_ws_reader.py": "integration",
    "test_ws_slow_handlers.py": "integration",
    "test_ws_time_skew.py": "integration",
    # drills
    "test_drills.py": "drills",
    # examples
    "test_compat_okx_example.py": "examples",
    "test_demo.py": "examples",
    "test_docs_run.py": "examples",
    "test_examples.py": "examples",
    "test_examples_gui.py": "examples",
    "test_runbook_names.py": "examples",
}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m`` naming only kinds (``unit``, ``not integration``, ...) a test file of
    another kind is not even imported: ``-m unit`` skips the simulator-heavy modules."""
    kind = TEST_KINDS.get(collection_path.name)
    expr = (config.getoption("markexpr", "") or "").strip()
    if kind is None or not expr:
        return None
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr)) - {"and", "or", "not"}
    if not words <= set(KINDS):
        return None
    from _pytest.mark.expression import Expression  # pytest's own -m evaluator

    return not Expression.compile(expr).evaluate(lambda name: name == kind) or None


# the order the kinds run in: the long files first, so that with ``-n 2 --dist loadfile``
# (README) one worker runs the drills while the other works through the rest
RUN_ORDER = ("drills", "examples", "integration", "unit")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test its kind marker from ``TEST_KINDS`` (a file not in it is an error)
    and run the kinds in ``RUN_ORDER`` (files keep their order within a kind)."""
    unclassified = set()
    for item in items:
        kind = TEST_KINDS.get(item.path.name)
        if kind is None:
            unclassified.add(item.path.name)
            continue
        item.add_marker(kind)
    if unclassified:
        raise pytest.UsageError(
            "test files without a kind: add them to TEST_KINDS in tests/conftest.py "
            f"({', '.join(KINDS)}): {', '.join(sorted(unclassified))}"
        )
    items.sort(key=lambda item: RUN_ORDER.index(TEST_KINDS[item.path.name]))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what import and collection built (modules, parsed sources, ~3,000 test items)
    out of the garbage collector's sight: it lives to the end of the run anyway, and every
    full collection (pytest's own at the end included) would walk it again."""
    gc.freeze()


def _no_socket(*args: object, **kwargs: object) -> None:
    raise AssertionError(
        "a unit test opened a socket: make it socket-free or classify its file as "
        "integration in tests/conftest.py TEST_KINDS"
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

    ConnectRateLimiter._process = weakref.WeakKeyDictionary()


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
