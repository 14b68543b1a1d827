"""Child-process bodies for the shared-gate tests and benchmarks (importable by ``spawn``).

Each function builds its own ``RequestGate`` on a ``RedisGateBackend`` and
reports through a ``multiprocessing`` queue; none prints. Thread safety: one
call per child process.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from okx_sync.errors import RequestStateError
from okx_sync.gate import RedisGateBackend, RequestGate, RequestGateConfig
from okx_sync.rest.endpoints import registry

__all__ = ["race", "penalise_once", "crash_holding"]

ORDER = ("POST", "/api/v5/trade/order")


def _gate(url: str, namespace: str, **config: Any) -> RequestGate:
    backend = RedisGateBackend(url, namespace=namespace, timeout_s=1.0)
    return RequestGate(RequestGateConfig(backend=backend, **config), api_key="race-key")


def _order(inst_id: str) -> dict[str, str]:
    return {"instId": inst_id, "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "1"}


def race(
    url: str,
    namespace: str,
    inst_ids: list[str],
    threads: int,
    duration_s: float,
    barrier: Any,
    out: Any,
) -> None:
    """``threads`` threads place orders (gate only, nothing sent) round-robin over
    ``inst_ids`` for ``duration_s`` once every process passed ``barrier``; puts
    ``(pid, [(admitted_at, inst_id), ...])`` (time.monotonic: one clock per host)."""
    gate = _gate(url, namespace, account_order_limit=20, wait_timeout_s=10.0)
    endpoint = registry().get(*ORDER)
    assert endpoint is not None
    admitted: list[tuple[float, str]] = []
    lock = threading.Lock()

    start_at = 0.0

    def work(index: int) -> None:
        i = index
        while True:
            inst_id = inst_ids[i % len(inst_ids)]
            i += 1
            try:
                permit = gate.acquire(endpoint, _order(inst_id), timeout_s=5.0)
            except RequestStateError:
                return  # closed at the end
            at = time.monotonic()
            permit.release()
            if at > start_at + duration_s:
                return
            with lock:
                admitted.append((at, inst_id))

    barrier.wait(timeout=60)
    start_at = time.monotonic()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=duration_s + 30)
    gate.close()
    out.put((os.getpid(), admitted))


def penalise_once(url: str, namespace: str, path: str, out: Any) -> None:
    """Tell a gate one call to ``GET path`` got HTTP 429 / 50011; puts the held seconds."""
    gate = _gate(url, namespace)
    endpoint = registry().get("GET", path)
    gate.observe(endpoint, {"instId": "BTC-USDT"}, http_status=429, code="50011")
    held = [b.held_for_s for b in gate.stats().buckets]
    gate.close()
    out.put(held)


def crash_holding(url: str, namespace: str, path: str, count: int, out: Any) -> None:
    """Take ``count`` permits for ``GET path``, report, and die without releasing them."""
    gate = _gate(url, namespace)
    endpoint = registry().get("GET", path)
    for _ in range(count):
        gate.acquire(endpoint, {"instId": "BTC-USDT"}, timeout_s=5.0, concurrency=False)
    out.put(count)
    out.close()
    out.join_thread()
    os._exit(0)  # a crash: no release, no close
