"""RequestStateError stage/dispatched from real failures on 127.0.0.1, and the wire format
as a real server sees it (the pooled fast path and the Session path)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from okx_sync import Client, RequestGateConfig, RequestStateError, RetryPolicy, ValidationError
from okx_sync.auth import prehash, sign
from okx_sync.rest.transport import PooledTransport, SessionTransport
from okx_sync.testing import sim_client
from okx_sync.testing.rest_servers import (
    EchoServer,
    GarbageServer,
    HangServer,
    ResetServer,
    ok_json,
    refused_port,
)

KEY, SECRET, PASS = "key-0123456789abcdef", "s3cr3t-value", "pass-phrase-x"
QUICK = RetryPolicy(max_retries=2, base_delay_s=0.001, jitter=0.0)
ORDER = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit",
         "px": "1", "sz": "1", "clOrdId": "c1"}  # fmt: skip


class _CustomAdapter(requests.adapters.HTTPAdapter):
    """A user's own adapter: honoured, as everything on a given session is."""


def _session_with_custom_adapter() -> requests.Session:
    session = requests.Session()
    session.mount("http://", _CustomAdapter(max_retries=0))
    session.mount("https://", _CustomAdapter(max_retries=0))
    return session


PATHS = ["fast", "session"]


def _client(url: str, path_kind: str, **kw: Any) -> Client:
    kw.setdefault("gate", RequestGateConfig(rate_limits=False))
    kw.setdefault("retry", QUICK)
    kw.setdefault("timeout_s", 0.5)
    if path_kind == "session":
        kw["session"] = _session_with_custom_adapter()
    client = Client(KEY, SECRET, PASS, base_url=url, **kw)
    assert isinstance(client._rest.transport, PooledTransport) is (path_kind == "fast")
    return client


@pytest.mark.parametrize("kind", PATHS)
def test_refused_port_is_http_not_dispatched_and_retried(kind: str) -> None:
    with _client(f"http://127.0.0.1:{refused_port()}", kind) as client:
        with pytest.raises(RequestStateError) as info:
            client.request("POST", "/api/v5/trade/order", ORDER)
        err = info.value
        assert (err.stage, err.dispatched) == ("http", False)
        assert err.cl_ord_ids == ("c1",) and err.path == "/api/v5/trade/order"
        assert isinstance(err.__cause__, Exception)
        # nothing was sent, so even an order may be retried
        assert client.stats().attempts == 3
        with pytest.raises(RequestStateError) as info:
            client.request("GET", "/api/v5/public/time")
        assert (info.value.stage, info.value.dispatched) == ("http", False)


DNS_HOST = "okx-sync-dns-test.invalid"


def _fail_dns_for_invalid(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``socket.getaddrinfo`` fails for ``*.invalid`` as a resolver does (RFC 6761: never
    resolves), so the test asks no name server; returns the hosts looked up."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):
            asked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("kind", PATHS)
def test_dns_failure_is_http_not_dispatched_and_retried(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    asked = _fail_dns_for_invalid(monkeypatch)
    with _client(f"https://{DNS_HOST}", kind) as client:
        with pytest.raises(RequestStateError) as info:
            client.request("POST", "/api/v5/trade/order", ORDER)
        err = info.value
        assert (err.stage, err.dispatched, err.cl_ord_ids) == ("http", False, ("c1",))
        assert "could not connect" in str(err)
        # nothing was sent, so even an order may be retried: 3 attempts, 3 lookups
        assert client.stats().attempts == 3
        assert client.stats().failures_by_code == {"http:unsent": 1}  # one call
    assert asked == [DNS_HOST] * 3


# A fresh interpreter where urllib3 lacks NameResolutionError (as urllib3 1.26, which
# requests>=2.31 allows, does): okx_sync must import, and a DNS failure or a refused port
# must still be "not dispatched" on both transport paths.
_URLLIB3_126 = textwrap.dedent(
    """
    import json, socket, sys
    import urllib3.exceptions
    if hasattr(urllib3.exceptions, "NameResolutionError"):  # urllib3 < 2 has none
        del urllib3.exceptions.NameResolutionError
    real = socket.getaddrinfo
    def getaddrinfo(host, *a, **k):
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *a, **k)
    socket.getaddrinfo = getaddrinfo
    import requests
    from okx_sync import Client, RequestGateConfig, RequestStateError, RetryPolicy
    from okx_sync.rest import transport

    class Custom(requests.adapters.HTTPAdapter):
        pass

    out = {"connect_errors": sorted(c.__name__ for c in transport._CONNECT_ERRORS)}
    for url in ("https://okx-sync-dns-test.invalid", "http://127.0.0.1:" + sys.argv[1]):
        for kind in ("fast", "session"):
            session = None
            if kind == "session":
                session = requests.Session()
                session.mount("http://", Custom(max_retries=0))
                session.mount("https://", Custom(max_retries=0))
            with Client(base_url=url, session=session, retry=RetryPolicy.none(),
                        gate=RequestGateConfig(rate_limits=False), timeout_s=2.0) as client:
                assert isinstance(client._rest.transport, transport.PooledTransport) is (
                    kind == "fast"
                )
                try:
                    client.request("GET", "/api/v5/public/time")
                except RequestStateError as exc:
                    out[url.split(":")[0] + "-" + kind] = [exc.stage, exc.dispatched]
    print(json.dumps(out))
    """
)


def test_imports_and_classifies_failures_without_urllib3_name_resolution_error() -> None:
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", _URLLIB3_126, str(refused_port())],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out.pop("connect_errors") == [
        "ConnectTimeoutError", "NewConnectionError", "ProxyError", "SSLError",
    ]  # fmt: skip
    assert out == {
        "https-fast": ["http", False],
        "https-session": ["http", False],
        "http-fast": ["http", False],
        "http-session": ["http", False],
    }


@pytest.mark.parametrize("kind", PATHS)
def test_tls_handshake_failure_is_not_dispatched(kind: str) -> None:
    with GarbageServer() as server:
        url = server.url.replace("http://", "https://")
        with _client(url, kind, retry=RetryPolicy.none()) as client:
            with pytest.raises(RequestStateError) as info:
                client.request("POST", "/api/v5/trade/order", ORDER)
    assert (info.value.stage, info.value.dispatched) == ("http", False)


@pytest.mark.parametrize("kind", PATHS)
def test_read_timeout_after_send_is_dispatched_and_order_never_retried(kind: str) -> None:
    # (the server never answers: any timeout ends the read; the connect is the kernel's)
    with HangServer() as server, _client(server.url, kind, timeout_s=0.15) as client:
        with pytest.raises(RequestStateError) as info:
            client.request("POST", "/api/v5/trade/order", ORDER)
        err = info.value
        assert (err.stage, err.dispatched, err.cl_ord_ids) == ("http", True, ("c1",))
        assert "dispatched=True" in str(err) and "c1" in str(err)
        assert len(server.received) == 1 and b"POST /api/v5/trade/order" in server.received[0]
        stats = client.stats()
        assert stats.attempts == 1 and stats.failures_by_code == {"http:dispatched": 1}


def test_read_timeout_on_a_get_is_retried() -> None:
    with HangServer() as server, _client(server.url, "fast", timeout_s=0.1) as client:
        with pytest.raises(RequestStateError) as info:
            client.request("GET", "/api/v5/public/time")
        assert info.value.dispatched
    assert len(server.received) == 3


@pytest.mark.parametrize("kind", PATHS)
def test_reset_after_reading_the_request_is_dispatched(kind: str) -> None:
    with ResetServer() as server, _client(server.url, kind) as client:
        with pytest.raises(RequestStateError) as info:
            client.request("POST", "/api/v5/trade/cancel-order", {"instId": "X", "clOrdId": "z9"})
    err = info.value
    assert (err.stage, err.dispatched, err.cl_ord_ids) == ("http", True, ("z9",))
    assert len(server.received) == 1


def test_gate_timeout_and_closed_client_are_gate_stage_not_dispatched() -> None:
    gate = RequestGateConfig(rate_limits=False, max_concurrent=1, wait_timeout_s=0.2)
    server = HangServer()
    client = _client(server.url, "fast", gate=gate, timeout_s=5.0, retry=RetryPolicy.none())
    outcome: list[BaseException] = []

    def occupy() -> None:
        try:
            client.request("GET", "/api/v5/public/time")
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(exc)

    holder = threading.Thread(target=occupy, name="okx-test-holder")
    holder.start()
    try:
        assert server.got_request.wait(5)
        with pytest.raises(RequestStateError) as info:
            client.request("POST", "/api/v5/trade/order", ORDER)
        assert (info.value.stage, info.value.dispatched) == ("gate", False)
        assert info.value.cl_ord_ids == ("c1",)
    finally:
        server.close()  # the held request fails at once
        holder.join(5)
    assert outcome and isinstance(outcome[0], RequestStateError)
    client.close()
    client.close()  # idempotent
    with pytest.raises(RequestStateError) as info:
        client.request("GET", "/api/v5/public/time")
    assert (info.value.stage, info.value.dispatched) == ("gate", False)
    # the stats keys of RequestStateError (rest/stats.py): gate, http:dispatched
    assert client.stats().failures_by_code == {"gate": 2, "http:dispatched": 1}


@pytest.mark.parametrize("kind", PATHS)
def test_server_sees_exact_signed_target_and_body(kind: str) -> None:
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def verify(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        seen.append((method, target, headers, body))
        ts = headers["OK-ACCESS-TIMESTAMP"]
        good = sign(SECRET, prehash(ts, method, target, body.decode()))
        if headers["OK-ACCESS-SIGN"] != good:
            return 401, {}, ok_json(code="50113", msg="Invalid Sign")
        orders = json.loads(body) if body.startswith(b"[") else [{}]  # one ack per order sent
        acks = [{"clOrdId": o.get("clOrdId", ""), "sCode": "0"} for o in orders]
        return 200, {"x-request-id": "r-1"}, ok_json(acks)

    with EchoServer(verify) as server, _client(server.url, kind, demo=True) as client:
        client.request("GET", "/api/v5/trade/orders-pending", {"instId": "BTC-USD-SWAP",
                                                              "ordType": "post_only,fok"})  # fmt: skip
        client.request("POST", "/api/v5/trade/order", dict(ORDER, px=Decimal("1.5")))
        client.request("POST", "/api/v5/trade/batch-orders", [ORDER, dict(ORDER, clOrdId="c2")])
        assert server.connections == 1  # keep-alive
    method, target, headers, body = seen[0]
    assert target == "/api/v5/trade/orders-pending?instId=BTC-USD-SWAP&ordType=post_only,fok"
    assert headers["x-simulated-trading"] == "1" and body == b""
    assert seen[1][3] == (
        b'{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit",'
        b'"px":"1.5","sz":"1","clOrdId":"c1"}'
    )
    assert seen[2][3].startswith(b'[{"instId"')


def test_connection_closed_by_server_is_reopened_without_error() -> None:
    def closing(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        return 200, {"Connection": "close"}, ok_json([{"ts": "1"}])

    with EchoServer(closing) as server, _client(server.url, "fast") as client:
        for _ in range(3):
            client.request("POST", "/api/v5/trade/order", ORDER)
        assert server.connections == 3 and client.stats().failures == 0


def test_gzip_responses_are_decoded_on_the_fast_path() -> None:
    import gzip

    def zipped(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        assert "gzip" in headers.get("Accept-Encoding", "")
        return 200, {"Content-Encoding": "gzip"}, gzip.compress(ok_json([{"big": "x" * 1000}]))

    with EchoServer(zipped) as server, _client(server.url, "fast") as client:
        assert client.request("GET", "/api/v5/public/time")[0]["big"] == "x" * 1000


def test_tls_fast_path_verifies_the_servers_certificate() -> None:
    pytest.importorskip("websockets")
    from okx_sync.sim import Simulator
    from okx_sync.sim.tls import tls_available

    if not tls_available():
        pytest.skip("no way to make a certificate (cryptography or openssl)")
    with Simulator(tls=True, ws=False, control=False, auto_tick=False) as sim:
        assert sim.rest_url.startswith("https://")
        assert sim.cert_path is not None
        pooled = PooledTransport(sim.rest_url, verify=sim.cert_path)
        creds = sim.credentials.live
        trusting = (  # the pooled transport trusting the cert; a session trusting it
            Client(creds.api_key, creds.secret_key, creds.passphrase, base_url=sim.rest_url,
                   transport=pooled, retry=RetryPolicy.none()),
            sim_client(sim, retry=RetryPolicy.none()),
        )  # fmt: skip
        for client, kind in zip(trusting, (PooledTransport, SessionTransport), strict=True):
            with client:
                assert isinstance(client._rest.transport, kind)
                assert client.request("GET", "/api/v5/public/time")[0]["ts"]
                assert isinstance(client.request("GET", "/api/v5/account/balance"), list)
        pooled.close()
        session = requests.Session()
        session.trust_env = False  # system CAs only: the self-signed cert must be refused
        pooled = PooledTransport(sim.rest_url)  # requests' default CA bundle
        for kw in ({"session": session}, {"transport": pooled}):
            with Client(base_url=sim.rest_url, retry=RetryPolicy.none(), **kw) as client:
                with pytest.raises(RequestStateError) as info:
                    client.request("GET", "/api/v5/public/time")
            assert (info.value.stage, info.value.dispatched) == ("http", False)
            assert "certificate" in str(info.value).lower()
        pooled.close()


def test_tls_fast_path_without_verification_warns_like_the_session_path() -> None:
    pytest.importorskip("websockets")
    from urllib3.exceptions import InsecureRequestWarning

    from okx_sync.sim import Simulator
    from okx_sync.sim.tls import tls_available

    if not tls_available():
        pytest.skip("no way to make a certificate (cryptography or openssl)")
    with Simulator(tls=True, ws=False, control=False, auto_tick=False) as sim:
        for fast in (True, False):
            session = requests.Session()
            session.trust_env = False  # else requests lets REQUESTS_CA_BUNDLE override verify
            session.verify = False
            # pooled: verify=False as build_transport would read it from such a session
            kw: dict[str, Any] = (
                {"transport": PooledTransport(sim.rest_url, verify=False)}
                if fast
                else {"session": session}
            )
            with Client(base_url=sim.rest_url, retry=RetryPolicy.none(), **kw) as c:
                assert isinstance(c._rest.transport, PooledTransport) is fast
                with pytest.warns(InsecureRequestWarning, match="127.0.0.1"):
                    assert c.request("GET", "/api/v5/public/time")[0]["ts"]


def test_credentials_over_plain_http_to_a_remote_host_are_refused() -> None:
    creds = ("key-0123456789abcdef", "secret", "pass")
    for url in ("http://www.okx.com", "http://10.1.2.3:8080", "http://okx.example"):
        with pytest.raises(ValidationError, match="allow_insecure_http"):
            Client(*creds, base_url=url)
    with pytest.raises(ValidationError, match="ws_urls\\['private'\\]"):
        Client(*creds, ws_urls={"private": "ws://10.1.2.3/ws/v5/private"})
    # explicitly allowed, loopback (the simulator), https, or no credentials: built
    for kw in (
        {"base_url": "http://10.1.2.3:8080", "allow_insecure_http": True},
        {"base_url": "http://127.0.0.1:8080"},
        {"base_url": "http://localhost:8080"},
        {"base_url": "http://[::1]:8080"},
        {"base_url": "https://www.okx.com"},
        {"ws_urls": {"public": "ws://10.1.2.3/ws/v5/public"}},  # public: no credentials sent
    ):
        Client(*creds, **kw).close()
    Client(base_url="http://10.1.2.3:8080").close()
