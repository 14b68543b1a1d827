"""Request gate over real sockets against a server that enforces OKX's limits.

The server (``tests/limit_server.py``) counts arrival times per rule in a
sliding window and answers 429/50011 beyond the published limit; 16 threads
hammer three endpoint kinds for a few seconds: not a single 429 may come back.
"""

from __future__ import annotations

import threading

import pytest
from limit_server import GateDriver, LimitServer, hammer

from okx_sync.errors import RequestStateError
from okx_sync.gate import RequestGate, RequestGateConfig
from okx_sync.rest.endpoints import registry

R = registry()
TICKER = R.get("GET", "/api/v5/market/ticker")  # IP, 20 / 2 s
BALANCE = R.get("GET", "/api/v5/account/balance")  # UID, 10 / 2 s
PLACE = R.get("POST", "/api/v5/trade/order")  # UID+instId, 60 / 2 s


@pytest.mark.timeout(60)
def test_sixteen_threads_three_endpoint_kinds_zero_429() -> None:
    kinds = [
        (TICKER, {"instId": "BTC-USDT"}),
        (BALANCE, {}),
        (PLACE, {"instId": "BTC-USDT", "side": "buy", "sz": "1"}),
        (PLACE, {"instId": "ETH-USDT", "side": "buy", "sz": "1"}),
    ]
    statuses: dict[tuple[int, str], int] = {}
    lock = threading.Lock()
    with LimitServer(arrival_jitter_s=0.003) as server:
        gate = RequestGate(RequestGateConfig())
        driver = GateDriver(gate, server.url)

        stop = threading.Event()

        def call(thread: int, i: int) -> None:
            try:
                outcome = driver.send(*kinds[(thread + i) % len(kinds)])
            except RequestStateError:
                if stop.is_set():  # the gate was closed to end the run
                    return
                raise
            with lock:
                key = (outcome.http_status, outcome.code)
                statuses[key] = statuses.get(key, 0) + 1

        errors = hammer(call, threads=16, duration_s=3.0, stop=stop, on_stop=gate.close)
        report = server.report()
    assert errors == []
    assert set(statuses) == {(200, "0")}, statuses
    assert server.total_rejected() == 0
    by_path: dict[str, list[dict]] = {}
    for key, info in report.items():
        assert info["max_in_window"] <= info["limit"], (key, info)
        if not key.startswith("account"):
            by_path.setdefault(key.split(" ")[1], []).append(info)
    # every kind got through, at close to the gate's ceiling for the binding one
    assert set(by_path) == {TICKER.path, BALANCE.path, PLACE.path}
    assert len(by_path[PLACE.path]) == 2  # one bucket per instrument
    assert by_path[BALANCE.path][0]["max_in_window"] == 9  # 0.9 x 10, saturated
    stats = gate.stats()
    assert stats["in_flight"] == 0
    assert all(b["penalties"] == 0 for b in stats["buckets"])
