"""One Client shared by 32 threads x 25 signed calls: no error, keep-alive reuse visible in
the server's connection count, every signature valid as the server recomputes it — on the
pooled fast path (pool sized to the gate's concurrency, also above requests' default of 10)
and on the Session path (a custom adapter)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from okx_sync import Client, RequestGateConfig
from okx_sync.auth import prehash, sign
from okx_sync.rest.transport import PooledTransport
from okx_sync.testing.rest_servers import EchoServer, ok_json

SECRET = "thread-secret"
# 32 threads on a gate of 8 or 16: most of them always queue for a slot, so every
# connection is handed back and taken again many times (800 calls on 16 connections):
# a pool that dropped returned connections would open more than max_concurrent
THREADS, CALLS = 32, 25
SESSION_CALLS = 10  # requests' per-call machinery is slower; the concurrency is the same


class _CustomAdapter(requests.adapters.HTTPAdapter):
    """An adapter subclass: the transport sends through ``Session.request``."""


class _Rendezvous:
    """Responder that verifies each signature and holds the first requests until
    ``target`` of them are in the server at once (or 10 s passed): proves that many
    connections were open together. Records the peak number in flight."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.cond = threading.Condition()
        self.in_flight = 0
        self.peak = 0
        self.met = False

    def __call__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        with self.cond:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if self.in_flight >= self.target:
                self.met = True
                self.cond.notify_all()
            else:
                self.cond.wait_for(lambda: self.met, timeout=10)
        try:
            ts = headers.get("OK-ACCESS-TIMESTAMP", "")
            if headers.get("OK-ACCESS-SIGN") != sign(
                SECRET, prehash(ts, method, target, body.decode())
            ):
                return 401, {}, ok_json(code="50113", msg="Invalid Sign")
            return 200, {}, ok_json([{"target": target}])
        finally:
            with self.cond:
                self.in_flight -= 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "kind,max_concurrent",
    [("fast", 8), ("fast", 16), ("session", 16)],
    ids=["fast-8", "fast-16", "session-16"],
)
def test_32_threads_share_one_client_over_keep_alive_connections(
    kind: str, max_concurrent: int
) -> None:
    gate = RequestGateConfig(rate_limits=False, max_concurrent=max_concurrent)
    errors: list[BaseException] = []
    mismatches: list[str] = []
    calls = CALLS if kind == "fast" else SESSION_CALLS
    start = threading.Barrier(THREADS)
    responder = _Rendezvous(max_concurrent)
    session = None
    if kind == "session":  # the caller's session, its adapter pool sized by the caller
        session = requests.Session()
        adapter = _CustomAdapter(pool_maxsize=max_concurrent, max_retries=0)
        session.mount("http://", adapter)

    with EchoServer(responder) as server:
        client = Client(
            "key-threads-0001", SECRET, "pp", base_url=server.url, gate=gate, session=session
        )
        transport = client._rest.transport
        assert isinstance(transport, PooledTransport) is (kind == "fast")
        if kind == "fast":  # the pool the transport built holds max_concurrent connections
            assert isinstance(transport, PooledTransport)
            assert transport._adapter._pool_maxsize == max_concurrent

        def worker(n: int) -> None:
            start.wait()
            for i in range(calls):
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
    if session is not None:
        session.close()

    assert not errors, errors[:3]
    assert not mismatches  # each thread got its own answer back
    total = THREADS * calls
    assert stats.requests == stats.successes == served == total
    assert stats.failures == 0 and stats.retries == 0
    # max_concurrent requests were in the server at once (the gate lets no more) ...
    assert responder.met and responder.peak == max_concurrent
    # ... and yet no more connections than that were ever opened: each one kept and
    # reused (a pool smaller than the gate's concurrency discards the extra connections
    # when they come back and opens new ones later)
    assert connections == max_concurrent, connections
    assert gate_stats.in_flight == 0
