"""Request gate over real sockets against a server that enforces OKX's limits.

The server (``tests/limit_server.py``) counts arrival times per rule in a
sliding window and answers 429/50011 beyond the published limit; 16 threads
hammer three endpoint kinds for a few seconds: not a single 429 may come back.
"""

from __future__ import annotations

import threading

import pytest
from limit_server import GateDriver, LimitServer, hammer, window_max

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
    assert errors == []
    assert set(statuses) == {(200, "0")}, statuses
    assert server.total_rejected() == 0
    # Each budget, seen from the server's arrival times, stayed within its published limit;
    # the binding one (balance, 10 / 2 s) ran at the gate's ceiling of 9.
    budgets = {
        "ticker": (TICKER.path, None, 20),
        "balance": (BALANCE.path, None, 10),
        "place BTC": (PLACE.path, "BTC-USDT", 60),
        "place ETH": (PLACE.path, "ETH-USDT", 60),
    }
    peaks = {}
    for name, (path, inst, limit) in budgets.items():
        events = [
            (a.t, 1)
            for a in server.accepted(lambda a, p=path: a.path == p)
            if inst is None or a.items[0].get("instId") == inst
        ]
        assert events, name
        peaks[name] = window_max(events, 2.0)
        assert peaks[name] <= limit, (name, peaks[name])
    assert peaks["balance"] == 9
    stats = gate.stats()
    assert stats["in_flight"] == 0
    assert all(b["penalties"] == 0 for b in stats["buckets"])
