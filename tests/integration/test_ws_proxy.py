"""WebSocket through an HTTP CONNECT proxy (``WSConfig.proxy_url``, ``okx_sync.ws.proxy``).

A ``tests.proxy_support.ConnectProxy`` thread on 127.0.0.1 tunnels to the simulator (or
misbehaves as told) and records every CONNECT request. The tests wait on events and the
client's counters, never on sleeps.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest
from proxy_support import ConnectProxy

from okx_sync import WSClient
from okx_sync.errors import ValidationError, WSError
from okx_sync.secret import Secret
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client, wait_until
from okx_sync.testing.ws_servers import start_in_background, ws_threads
from okx_sync.ws.config import WSConfig
from okx_sync.ws.connection import Connection
from okx_sync.ws.policies import BackoffPolicy, ConnectRateLimiter
from okx_sync.ws.proxy import MAX_PROXY_HEADER_BYTES, HttpProxy

PASSWORD = "pr0xy-Pa55word"
BTC_TICKER = {"channel": "tickers", "instId": "BTC-USDT"}
FAST_BACKOFF = BackoffPolicy(initial=0.05, maximum=0.05, jitter=0.0)


def _with_credentials(proxy: ConnectProxy, user: str, password: str) -> str:
    return proxy.url.replace("http://", f"http://{user}:{password}@", 1)


def test_public_ws_subscribes_through_the_proxy_and_receives_pushes():
    with Simulator(seed=5, tick_interval_s=0.01) as sim, ConnectProxy() as proxy:
        client = sim_client(sim)
        ws = client.ws_public(config=WSConfig(proxy_url=proxy.url))
        got = threading.Event()
        ws.on("tickers", lambda _t: got.set())
        try:
            with ws:
                ws.subscribe_and_wait(BTC_TICKER)
                assert got.wait(5), "no ticker push came through the tunnel"
                assert ws.stats().connected and ws.stats().dial_attempts == 1
        finally:
            client.close()
        port = sim.ws_public_url.split("://", 1)[1].split("/", 1)[0]
        assert proxy.requests == [(f"CONNECT {port} HTTP/1.1", {"host": port})]
        assert proxy.tunnelled == 1
    assert ws_threads() == []


def test_private_wss_through_an_authenticating_proxy_logs_in_and_shows_no_password(caplog):
    from okx_sync.sim.tls import tls_available

    if not tls_available():
        pytest.skip("no cryptography package and no openssl command: cannot make a certificate")
    caplog.set_level(logging.DEBUG, logger="okx_sync")
    with (
        Simulator(seed=6, tls=True, tick_interval_s=0.01) as sim,
        ConnectProxy(user="trader", password=PASSWORD) as proxy,
    ):
        client = sim_client(sim)
        config = WSConfig(
            proxy_url=_with_credentials(proxy, "trader", PASSWORD),
            ws_options={"sslopt": {"context": sim.client_ssl_context()}},
        )
        ws = client.ws_private(config=config)
        try:
            with ws:  # TLS to the simulator runs inside the tunnel, then the login
                ws.subscribe_and_wait({"channel": "account"})
                st = ws.stats()
                assert st.connected and st.need_login  # logged in (subscribe needs it)
                evidence = json.dumps(client.evidence(), default=str)
        finally:
            client.close()
        assert proxy.tunnelled == 1
        (line, headers), *_ = proxy.requests
        assert line.startswith("CONNECT 127.0.0.1:") and headers["host"] == line.split()[1]
        assert headers["proxy-authorization"] == "Basic dHJhZGVyOnByMHh5LVBhNTV3b3Jk"
        shown = [repr(config), str(config.proxy_url), repr(st), evidence, caplog.text]
        assert "trader" in repr(config) and "127.0.0.1" in str(config.proxy_url)
        assert all(PASSWORD not in text for text in shown)
        assert "ws private logged in" in caplog.text  # the log was captured
    assert ws_threads() == []


@pytest.mark.parametrize("credentials", [None, "WRONG-pass-123"], ids=["none", "wrong"])
def test_a_407_fails_each_dial_with_the_proxy_status_and_the_client_backs_off(
    credentials: str | None, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="okx_sync")
    with ConnectProxy(user="trader", password=PASSWORD) as proxy:
        url = proxy.url if credentials is None else _with_credentials(proxy, "trader", credentials)
        config = WSConfig(proxy_url=url, backoff=FAST_BACKOFF)
        ws = WSClient(
            "ws://127.0.0.1:9/ws/v5/public",  # never reached: the proxy refuses first
            config=config,
            connect_limiter=ConnectRateLimiter(rate=1000),
        )
        t, outcome = start_in_background(ws)
        try:
            # a dial is counted when it starts, the proxy records its CONNECT a moment later
            assert wait_until(
                lambda: ws.stats().dial_attempts >= 3 and len(proxy.requests) >= 3, timeout_s=10
            )
            st = ws.stats()
        finally:
            ws.close()
            t.join(5)
        assert outcome, "start() returned although the proxy refused every tunnel"
        assert not st.connected and st.connects == 0 and st.backoff_s == pytest.approx(0.05)
        address = proxy.url.removeprefix("http://")
        assert st.last_error is not None
        assert f"proxy {address} refused CONNECT 127.0.0.1:9: HTTP 407" in st.last_error
        assert "credentials missing or refused" in st.last_error
        assert len(proxy.requests) >= 3
        sent = {headers.get("proxy-authorization") for _line, headers in proxy.requests}
        assert sent == ({None} if credentials is None else {"Basic dHJhZGVyOldST05HLXBhc3MtMTIz"})
        assert "HTTP 407" in caplog.text  # each failed dial is logged ...
        for secret in (PASSWORD, credentials or PASSWORD):  # ... without the password
            assert secret not in caplog.text and secret not in st.last_error
            assert secret not in repr(config) and secret not in repr(st) and secret not in repr(ws)
    assert ws_threads() == []


@pytest.mark.parametrize(
    "answer,message",
    [
        ("garbage", "answered CONNECT 127.0.0.1:9 with something that is not HTTP: 'SSH-2.0"),
        ("close", "closed the connection before answering to CONNECT 127.0.0.1:9"),
        ("flood", f"sent over {MAX_PROXY_HEADER_BYTES} bytes of headers"),
    ],
)
def test_a_proxy_answering_garbage_closing_or_flooding_fails_the_dial(answer: str, message: str):
    with ConnectProxy(answer) as proxy:
        ws = WSClient(
            "ws://127.0.0.1:9/ws/v5/public",
            config=WSConfig(proxy_url=proxy.url, backoff=FAST_BACKOFF, connect_timeout_s=10.0),
            connect_limiter=ConnectRateLimiter(rate=1000),
        )
        t, outcome = start_in_background(ws)
        try:  # each dial fails on the proxy's answer, long before the 10 s connect deadline
            assert wait_until(lambda: ws.stats().dial_attempts >= 2, timeout_s=8)
            st = ws.stats()
        finally:
            ws.close()
            t.join(5)
        assert outcome and st.connects == 0
        assert st.last_error is not None and message in st.last_error, st.last_error
    assert ws_threads() == []


def _connection(proxy: ConnectProxy, connect_timeout_s: float) -> Connection:
    def ignore(*_args: Any) -> None:
        pass

    return Connection(
        "ws://127.0.0.1:9/ws/v5/public",
        seq=1,
        name="proxy-test",
        on_message=ignore,
        on_closed=ignore,
        connect_timeout_s=connect_timeout_s,
        proxy=HttpProxy.parse(proxy.url),
    )


@pytest.mark.parametrize("answer", ["silent", "dribble"])
def test_a_silent_or_dribbling_proxy_fails_the_dial_at_the_connect_deadline(answer: str):
    with ConnectProxy(answer) as proxy:
        conn = _connection(proxy, connect_timeout_s=0.5)
        began = time.monotonic()
        with pytest.raises(WSError) as info:
            conn.open()
        elapsed = time.monotonic() - began
        assert proxy.answered.is_set()  # the CONNECT reached it; no whole answer came
        address = proxy.url.removeprefix("http://")
        assert str(info.value) == (
            f"WS proxy-test: handshake with 127.0.0.1 through proxy {address} "
            "not complete within 0.5 s"
        )
        assert 0.5 <= elapsed < 0.5 + 1.0, elapsed


def test_close_while_the_proxy_is_silent_ends_the_dial_and_every_thread():
    with ConnectProxy("silent") as proxy:
        ws = WSClient(
            "ws://127.0.0.1:9/ws/v5/public",
            config=WSConfig(proxy_url=proxy.url, connect_timeout_s=30.0),
            connect_limiter=ConnectRateLimiter(rate=1000),
        )
        t, outcome = start_in_background(ws)
        assert proxy.answered.wait(5)
        began = time.monotonic()
        assert ws.close(timeout_s=2.0)
        assert time.monotonic() - began < 2.5
        t.join(3)
        assert not t.is_alive() and outcome
    assert ws_threads() == []


@pytest.mark.parametrize(
    "url,message",
    [
        ("https://u:SeCrEt@proxy:3128", "https:// proxies (TLS to the proxy) are not supported"),
        ("socks5://u:SeCrEt@proxy:1080", "SOCKS proxies are not supported"),
        ("socks5h://proxy:1080", "SOCKS proxies are not supported"),
        ("ftp://proxy:21", "the scheme must be http"),
        ("proxy:3128", "the scheme must be http"),
        ("http://u:SeCrEt@proxy", "a port is required"),
        ("http://:3128", "a host is required"),
        ("http://u:SeCrEt@proxy:70000", "the port must be 1..65535"),
        ("http://u:SeCrEt@proxy:port", "the port must be 1..65535"),
        ("http://u:SeCrEt@proxy:3128/path", "no path, query or fragment"),
        ("http://:SeCrEt@proxy:3128", "the user name must be non-empty"),
        (3128, "proxy_url must be a str like 'http://host:port', got int"),
    ],
)
def test_proxy_url_is_validated_at_construction_without_showing_the_password(url, message):
    with pytest.raises(ValidationError, match="proxy_url") as info:
        WSConfig(proxy_url=url)
    assert message in str(info.value)
    assert "SeCrEt" not in str(info.value)
    assert info.value.__cause__ is None and "SeCrEt" not in repr(info.value.__context__)


def test_proxy_url_keeps_the_password_as_a_secret():
    config = WSConfig(proxy_url="http://us%40er:p%3Ass%40word@127.0.0.1:3128/")
    proxy = config.proxy_url
    assert proxy == HttpProxy(
        host="127.0.0.1", port=3128, username="us@er", password=Secret("p:ss@word")
    )
    assert repr(proxy) == "HttpProxy(host='127.0.0.1', port=3128, username='us@er')"
    assert str(proxy) == "http://us@er:******@127.0.0.1:3128"
    assert "p:ss@word" not in repr(config) and "p%3Ass" not in repr(config)
    assert proxy.authorization() == "Basic dXNAZXI6cDpzc0B3b3Jk"  # us@er:p:ss@word
    assert WSConfig(proxy_url=Secret("http://127.0.0.1:1")).proxy_url == HttpProxy(
        host="127.0.0.1", port=1
    )
    assert WSConfig().proxy_url is None and HttpProxy.parse(proxy) is proxy
    ipv6 = HttpProxy.parse("http://[::1]:8080")
    assert ipv6.host == "::1" and ipv6.address == "[::1]:8080" and ipv6.authorization() is None


def test_websocket_client_proxy_options_point_to_proxy_url():
    with pytest.raises(
        ValidationError, match="http_proxy_host, http_proxy_port not supported"
    ) as info:
        WSConfig(ws_options={"http_proxy_host": "proxy", "http_proxy_port": 3128})
    assert "proxy_url" in str(info.value)
