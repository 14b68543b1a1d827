"""One Client shared by 32 threads x 200 signed calls: no error, keep-alive reuse visible in
the server's connection count, every signature valid as the server recomputes it."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from rest_loopback import EchoServer, ok_json

from okx_sync import Client, RequestGateConfig
from okx_sync.auth import prehash, sign

SECRET = "thread-secret"
THREADS, CALLS = 32, 200


def _verify(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
    ts = headers.get("OK-ACCESS-TIMESTAMP", "")
    if headers.get("OK-ACCESS-SIGN") != sign(SECRET, prehash(ts, method, target, body.decode())):
        return 401, {}, ok_json(code="50113", msg="Invalid Sign")
    return 200, {}, ok_json([{"target": target}])


@pytest.mark.timeout(120)
def test_32_threads_share_one_client_over_keep_alive_connections() -> None:
    max_concurrent = 8
    gate = RequestGateConfig(rate_limits=False, max_concurrent=max_concurrent)
    errors: list[BaseException] = []
    mismatches: list[str] = []
    start = threading.Barrier(THREADS)

    with EchoServer(_verify) as server:
        client = Client("key-threads-0001", SECRET, "pp", base_url=server.url, gate=gate)

        def worker(n: int) -> None:
            start.wait()
            for i in range(CALLS):
                inst = f"T{n}-{i}"
                try:
                    data = client.request("GET", "/api/v5/account/positions", {"instId": inst})
                except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                    errors.append(exc)
                    return
                if data != [{"target": f"/api/v5/account/positions?instId={inst}"}]:
                    mismatches.append(inst)

        threads = [
            threading.Thread(target=worker, args=(n,), name=f"okx-test-{n}") for n in range(THREADS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(100)
        stats, gate_stats = client.stats(), client.gate_stats()
        client.close()
        connections, served = server.connections, len(server.requests)

    assert not errors, errors[:3]
    assert not mismatches  # each thread got its own answer back
    total = THREADS * CALLS
    assert stats["requests"] == stats["successes"] == served == total
    assert stats["failures"] == 0 and stats["retries"] == 0
    # the pool is sized to the gate's concurrency: a handful of connections, reused
    assert 1 <= connections <= max_concurrent, connections
    assert gate_stats["in_flight"] == 0
