"""No secret in any log record, exception text or repr: the API key beyond its last 4
characters, the secret, the passphrase and every signature sent stay out of them, through
success, API failure, retry and transport failure paths (all loggers captured at DEBUG)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from okx_sync import Client, RequestGateConfig, RetryPolicy
from okx_sync.errors import OkxError
from okx_sync.testing.rest_servers import EchoServer, ok_json, refused_port

API_KEY = "AKEY-7f3a9c1e5b2d4f60-XY12"
SECRET = "SECRET-9b8c7d6e5f4a3b2c1d0e"
PASSPHRASE = "PASSPHRASE-Zq8Wm3Rt"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        self.texts.append(repr(record.__dict__))
        if record.exc_info and record.exc_info[1] is not None:
            self.texts.append(repr(record.exc_info[1]))


@pytest.fixture
def capture() -> Any:
    handler = _Capture()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_no_secret_anywhere(capture: _Capture) -> None:
    signatures: list[str] = []
    attempts = {"ticker": 0}

    def responder(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        if "OK-ACCESS-SIGN" in headers:
            signatures.append(headers["OK-ACCESS-SIGN"])
        if target.startswith("/api/v5/account/config"):
            return 401, {"x-request-id": "rid-auth"}, ok_json(code="50113", msg="Invalid Sign")
        if target.startswith("/api/v5/account/balance"):
            attempts["ticker"] += 1
            if attempts["ticker"] == 1:
                return 503, {"Retry-After": "0"}, ok_json(code="50001", msg="unavailable")
        return 200, {"x-request-id": "rid-ok"}, ok_json([{"ok": "1"}])

    texts: list[str] = []
    retry = RetryPolicy(base_delay_s=0.001, jitter=0.0)
    gate = RequestGateConfig(rate_limits=False)
    with EchoServer(responder) as server:
        client = Client(API_KEY, SECRET, PASSPHRASE, base_url=server.url, retry=retry, gate=gate)
        texts += [repr(client), str(client), repr(client._rest), repr(client._rest.transport)]
        client.request("GET", "/api/v5/account/positions")  # success
        client.request("GET", "/api/v5/account/balance")  # 503, retry, success
        client.request("POST", "/api/v5/trade/order", {"instId": "BTC-USDT", "clOrdId": "r1"})
        with pytest.raises(OkxError) as info:
            client.request("GET", "/api/v5/account/config")  # API failure
        texts += [str(info.value), repr(info.value)]
        texts.append(json.dumps(client.stats().to_dict()))
        client.close()

    dead = Client(API_KEY, SECRET, PASSPHRASE, base_url=f"http://127.0.0.1:{refused_port()}",
                  retry=retry, gate=gate)  # fmt: skip
    with pytest.raises(OkxError) as info:
        dead.request("POST", "/api/v5/trade/order", {"instId": "BTC-USDT"})  # transport failure
    texts += [str(info.value), repr(info.value), repr(info.value.__cause__)]
    texts.append(json.dumps(dead.stats().to_dict()))
    dead.close()

    levels = {t.split(" ")[1] for t in capture.texts if t.startswith("okx_sync.rest ")}
    assert {"DEBUG", "WARNING"} <= levels  # success and failure records were produced
    assert any("retry_index': 1" in t for t in capture.texts)  # ... and a retry
    assert len(signatures) >= 5
    everything = "\n".join(capture.texts + texts)
    assert "****XY12" in everything  # the redacted key form does appear
    forbidden = [SECRET, PASSPHRASE, API_KEY, API_KEY[:-4], *signatures]
    leaks = [s for s in forbidden if s in everything]
    assert not leaks
