"""Every REST attempt is bounded, on the pooled fast path and on the user-Session path,
proven against hostile servers on 127.0.0.1: the whole-attempt deadline (trickling
peers), the response-size bound (gzip bombs, huge and endless bodies), JSON nesting,
and order entry without a usable answer (outcome unknown, resolved by clOrdId)."""

from __future__ import annotations

import gzip
import json
import math
import socket
import threading
import time
import zlib
from typing import Any

import pytest
import requests

from okx_sync import APIError, Client, RequestGateConfig, RequestStateError, RetryPolicy
from okx_sync.clock import FakeClock
from okx_sync.gate.stats import BucketStats
from okx_sync.ops.reconcile import is_outcome_unknown
from okx_sync.rest.transport import PooledTransport
from okx_sync.testing.rest_servers import ScriptedServer, http_head, ok_json, trickle

KEY, SECRET, PASS = "key-0123456789abcdef", "s3cr3t-value", "pass-phrase-x"
ORDER = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit",
         "px": "1", "sz": "1", "clOrdId": "c1"}  # fmt: skip
PATHS = ["fast", "session"]
# How far past its deadline an attempt may end: scheduling on a loaded 2-core box,
# not the trickle (which would run for 10+ s without the deadline).
LATE_S = 1.5


class _CustomAdapter(requests.adapters.HTTPAdapter):
    """Any adapter subclass sends through Session.request (the general path)."""


def _client(url: str, kind: str, **kw: Any) -> Client:
    kw.setdefault("gate", RequestGateConfig(rate_limits=False))
    kw.setdefault("retry", RetryPolicy.none())
    kw.setdefault("timeout_s", 0.5)
    if kind == "session":
        session = requests.Session()
        session.mount("http://", _CustomAdapter(max_retries=0))
        kw["session"] = session
    client = Client(KEY, SECRET, PASS, base_url=url, **kw)
    assert isinstance(client._rest.transport, PooledTransport) is (kind == "fast")
    return client


def _answer(conn: socket.socket, body: bytes, **headers: str) -> None:
    conn.sendall(http_head(200, len(body), **headers) + body)


# --------------------------------------------------------------------------- 1. deadline


def _trickle_body(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    body = ok_json([{"x": "y" * 100}])
    conn.sendall(http_head(200, len(body)))
    trickle(conn, body, 0.05, stop)  # ~6 s for the whole body


def _trickle_head(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    body = ok_json()
    trickle(conn, http_head(200, len(body), X_Pad="p" * 100) + body, 0.05, stop)


@pytest.mark.parametrize("kind", PATHS)
@pytest.mark.parametrize("script", [_trickle_body, _trickle_head], ids=["body", "head"])
def test_a_trickling_peer_is_cut_off_at_the_attempt_deadline(kind: str, script: Any) -> None:
    # a byte every 0.05 s: no single read waits the 0.25 s, only the attempt's deadline
    # can end it
    with ScriptedServer(script) as server, _client(server.url, kind, timeout_s=0.25) as client:
        t0 = time.monotonic()
        with pytest.raises(RequestStateError) as info:
            client.request("POST", "/api/v5/trade/order", ORDER)
        elapsed = time.monotonic() - t0
        assert (info.value.stage, info.value.dispatched) == ("http", True)
        assert info.value.cl_ord_ids == ("c1",) and is_outcome_unknown(info.value)
        assert elapsed < 0.25 + LATE_S, elapsed
        assert client.stats().limits_hit == {"attempt_deadline": 1}


@pytest.mark.parametrize("kind", PATHS)
def test_trickling_calls_do_not_starve_the_gate(kind: str) -> None:
    """Two trickling calls take both concurrency slots; at their deadline they give them
    back, so a healthy call waiting in the gate is admitted instead of refused."""

    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        if b"/market/ticker" in request.split(b"\r\n", 1)[0]:
            _answer(conn, ok_json([{"last": "1"}]))
        else:
            _trickle_body(conn, request, stop)

    gate = RequestGateConfig(rate_limits=False, max_concurrent=2)
    with ScriptedServer(script) as server, _client(server.url, kind, gate=gate) as client:
        errors: list[BaseException] = []

        def slow() -> None:
            try:
                client.request("GET", "/api/v5/market/books")
            except RequestStateError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=slow) for _ in range(2)]
        for t in threads:
            t.start()
        assert server.wait_requests(2)  # both slots are held by trickling answers
        data = client.request("GET", "/api/v5/market/ticker", gate_timeout_s=3.0)
        assert data == [{"last": "1"}]
        for t in threads:
            t.join(10)
        assert len(errors) == 2 and all(e.dispatched for e in errors)


@pytest.mark.parametrize("kind", PATHS)
def test_a_slow_attempt_does_not_shorten_the_next_one_on_the_same_connection(kind: str) -> None:
    """A read that starts late in an attempt waits only what is left of it (the socket's
    timeout tightened to ~0.5 s here); the next attempt on that keep-alive connection
    gets its whole ``timeout`` (1.5 s) again, so a body 0.9 s late still arrives."""
    body = ok_json([{"ok": "1"}])
    served: list[int] = []

    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        served.append(1)
        conn.sendall(http_head(200, len(body)) + body[:5])
        if len(served) == 1:
            stop.wait(1.0)  # the next read starts 1.0 s into the 1.5 s attempt
            conn.sendall(body[5:10])
            stop.wait(0.1)
            conn.sendall(body[10:])
        else:
            stop.wait(0.9)
            conn.sendall(body[5:])

    with ScriptedServer(script) as server, _client(server.url, kind, timeout_s=1.5) as client:
        for _ in range(2):
            assert client.request("GET", "/api/v5/market/books") == [{"ok": "1"}]
        assert server.requests == 2 and client.stats().limits_hit == {}


def test_the_session_path_watchdog_thread_stops_with_the_client() -> None:
    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        _answer(conn, ok_json())

    with ScriptedServer(script) as server:
        client = _client(server.url, "session")
        client.request("GET", "/api/v5/market/books")
        names = [t.name for t in threading.enumerate()]
        assert "okx-rest-deadline" in names
        client.close()
        assert "okx-rest-deadline" not in [t.name for t in threading.enumerate()]


# --------------------------------------------------------------------------- 2. size bound

LIMIT = 64 * 1024


def _bomb(encoding: str) -> bytes:
    plain = ok_json([{"pad": "0" * (4 * 1024 * 1024)}])  # 4 MiB decoded, ~4 KiB encoded
    return gzip.compress(plain) if encoding == "gzip" else zlib.compress(plain)


@pytest.mark.parametrize("kind", PATHS)
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_stops_at_the_bound(kind: str, encoding: str) -> None:
    bomb = _bomb(encoding)
    assert len(bomb) < LIMIT

    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        _answer(conn, bomb, Content_Encoding=encoding)

    with (
        ScriptedServer(script) as server,
        # the size bound ends the read, not the clock: a 4 MiB inflate on a loaded
        # machine outlasted the 0.5 s default timeout (seen once in a serial run)
        _client(server.url, kind, max_response_bytes=LIMIT, timeout_s=5.0) as client,
    ):
        with pytest.raises(APIError, match=f"max_response_bytes={LIMIT}") as info:
            client.request("GET", "/api/v5/market/books")
        assert info.value.code == "" and info.value.http_status == 200
        # order entry: an answer came but is unusable -> outcome unknown
        with pytest.raises(RequestStateError) as state:
            client.request("POST", "/api/v5/trade/order", ORDER)
        assert state.value.dispatched and state.value.cl_ord_ids == ("c1",)
        assert client.stats().limits_hit == {"response_too_large": 2}


def _huge_length(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    conn.sendall(http_head(200, 150 * 1024 * 1024))
    zeros = b"0" * 65536
    while not stop.is_set():  # until the client hangs up
        conn.sendall(zeros)


def _endless_chunked(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    conn.sendall(http_head(200, Transfer_Encoding="chunked"))
    chunk = b"%x\r\n%s\r\n" % (4096, b"0" * 4096)
    while not stop.is_set():
        conn.sendall(chunk)


def _close_delimited(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b"0" * 65536)


@pytest.mark.parametrize("kind", PATHS)
@pytest.mark.parametrize(
    "script", [_huge_length, _endless_chunked, _close_delimited], ids=["length", "chunked", "eof"]
)
def test_a_body_over_the_bound_is_not_read_whole(kind: str, script: Any) -> None:
    with (
        ScriptedServer(script) as server,
        _client(server.url, kind, max_response_bytes=LIMIT, timeout_s=5.0) as client,
    ):
        with pytest.raises(APIError, match="max_response_bytes"):
            client.request("GET", "/api/v5/market/books")
        with pytest.raises(RequestStateError) as info:
            client.request("POST", "/api/v5/trade/batch-orders", [ORDER])
        assert info.value.dispatched and is_outcome_unknown(info.value)
        assert client.stats().limits_hit == {"response_too_large": 2}


@pytest.mark.parametrize("kind", PATHS)
def test_an_answer_under_the_bound_still_arrives_and_keeps_the_connection(kind: str) -> None:
    body = ok_json([{"pad": "0" * 1000}])

    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        zipped = gzip.compress(body)
        _answer(conn, zipped, Content_Encoding="gzip")

    with ScriptedServer(script) as server, _client(server.url, kind) as client:
        for _ in range(3):
            assert client.request("GET", "/api/v5/market/books") == json.loads(body)["data"]
        assert server.requests == 3


def test_max_response_bytes_is_validated() -> None:
    from okx_sync import ValidationError

    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises(ValidationError, match="max_response_bytes"):
            Client(max_response_bytes=bad)


# --------------------------------------------------------------------------- 3. JSON limits


@pytest.mark.parametrize("kind", PATHS)
def test_json_nested_too_deep_is_an_api_error_not_recursion_error(kind: str) -> None:
    deep = b'{"code":"0","data":' + b"[" * 200_000 + b"]" * 200_000 + b"}"

    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        _answer(conn, deep)

    with ScriptedServer(script) as server, _client(server.url, kind) as client:
        with pytest.raises(APIError, match="nested too deep"):
            client.request("GET", "/api/v5/market/books")
        with pytest.raises(RequestStateError) as info:
            client.request("POST", "/api/v5/trade/order", ORDER)
        assert info.value.dispatched and info.value.cl_ord_ids == ("c1",)
        assert client.stats().limits_hit == {"response_too_deep": 2}


# --------------------------------------------------------------------------- 4. order entry


CUT = b'{"code":"0","msg":"","data":[{"ordId":"42","clOrdId":"c1","sCo'


@pytest.mark.parametrize("kind", PATHS)
@pytest.mark.parametrize(
    "body,why",
    [
        (CUT, "not_json"),
        (b"<html>bad gateway</html>", "not_json"),
        (b"[1]", "not_envelope"),
        (b'{"data":[]}', "no_code"),
    ],  # fmt: skip
)
def test_order_entry_without_a_usable_answer_is_outcome_unknown(
    kind: str, body: bytes, why: str
) -> None:
    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        _answer(conn, body)

    with ScriptedServer(script) as server, _client(server.url, kind) as client:
        with pytest.raises(RequestStateError) as info:
            client.request("POST", "/api/v5/trade/order", ORDER)
        err = info.value
        assert (err.stage, err.dispatched, err.cl_ord_ids) == ("http", True, ("c1",))
        assert is_outcome_unknown(err) and isinstance(err.__cause__, APIError)
        # a read that gets the same body stays a plain APIError
        with pytest.raises(APIError):
            client.request("GET", "/api/v5/market/books")
        assert client.stats().limits_hit == {f"response_{why}": 2}


@pytest.mark.parametrize("kind", PATHS)
def test_order_entry_answer_cut_on_the_wire_is_outcome_unknown(kind: str) -> None:
    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        conn.sendall(http_head(200, 100) + CUT[:20])  # 20 of the 100 announced bytes
        conn.shutdown(socket.SHUT_RDWR)

    with ScriptedServer(script) as server, _client(server.url, kind) as client:
        with pytest.raises(RequestStateError) as info:
            client.request("POST", "/api/v5/trade/order", ORDER)
        err = info.value
        assert (err.stage, err.dispatched, err.cl_ord_ids) == ("http", True, ("c1",))


@pytest.mark.parametrize("kind", PATHS)
def test_place_order_safely_resolves_a_cut_answer_by_cl_ord_id(kind: str) -> None:
    sent: list[bytes] = []

    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        line = request.split(b"\r\n", 1)[0]
        if line.startswith(b"POST /api/v5/trade/order "):
            sent.append(request)
            _answer(conn, CUT)
        elif line.startswith(b"GET /api/v5/public/instruments?"):
            spot = {"instType": "SPOT", "instId": "BTC-USDT", "tickSz": "0.1", "lotSz": "0.01",
                    "minSz": "0.01", "maxLmtSz": "100000", "maxMktSz": "100000"}  # fmt: skip
            _answer(conn, ok_json([spot]))
        elif line.startswith(b"GET /api/v5/trade/order?"):
            order = {"instId": "BTC-USDT", "ordId": "42", "clOrdId": "c1", "state": "live"}
            _answer(conn, ok_json([order]))
        else:
            _answer(conn, ok_json(code="50000", msg="unexpected"))

    with ScriptedServer(script) as server, _client(server.url, kind) as client:
        res = client.trade.place_order_safely(
            inst_id="BTC-USDT", td_mode="cash", side="buy", ord_type="limit", px="1",
            sz="1", cl_ord_id="c1", expire_after_s=0.001, resolve_interval_s=0.01,
        )  # fmt: skip
        assert res.resolved and res.ord_id == "42" and res.sends == 1
        assert len(sent) == 1  # resolved by query, never re-sent blindly


# --------------------------------------------------------------------------- 5. server holds

CANCEL = "/api/v5/trade/cancel-order"


def _throttled_then_ok(retry_after: str) -> Any:
    """429 + the given Retry-After on the first request, success after that."""
    answered: list[int] = []

    def script(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        if not answered:
            answered.append(1)
            body = ok_json(code="50011", msg="Too Many Requests")
            conn.sendall(http_head(429, len(body), Retry_After=retry_after) + body)
        else:
            _answer(conn, ok_json([{"sCode": "0", "ordId": "1"}]))

    return script


def _cancel_bucket(client: Client) -> BucketStats:
    (bucket,) = [b for b in client._gate.stats().buckets if CANCEL in b.key]
    return bucket


@pytest.mark.parametrize("hostile", ["inf", "nan", "-5", "1e12", "Infinity", "99999"])
def test_a_hostile_retry_after_holds_a_cancel_bucket_for_the_cap_only(hostile: str) -> None:
    clock = FakeClock()
    with (
        ScriptedServer(_throttled_then_ok(hostile)) as server,
        _client(server.url, "fast", clock=clock, gate=RequestGateConfig()) as client,
    ):
        cancel = {"instId": "BTC-USDT", "ordId": "1"}
        with pytest.raises(APIError, match="Too Many Requests"):
            client.request("POST", CANCEL, cancel)
        assert _cancel_bucket(client).held_for_s == 10.0  # RequestGateConfig.max_hold_s
        (err,) = client.stats().last_errors
        assert err["retry_after_s"] == 10.0
        json.dumps(client.stats().to_dict(), allow_nan=False)  # no inf/NaN leaks into the stats
        clock.advance(10.0)
        assert client.request("POST", CANCEL, cancel, gate_timeout_s=0) == [
            {"sCode": "0", "ordId": "1"}
        ]


def test_the_hold_cap_is_configurable_and_bounds_the_retry_wait() -> None:
    clock = FakeClock()
    gate = RequestGateConfig(max_hold_s=2.5)
    retry = RetryPolicy(max_retries=1, base_delay_s=0.0, jitter=0.0)
    with (
        ScriptedServer(_throttled_then_ok("inf")) as server,
        _client(server.url, "fast", clock=clock, gate=gate, retry=retry) as client,
    ):
        assert client.request("GET", "/api/v5/market/books") == [{"sCode": "0", "ordId": "1"}]
        assert 2.5 in clock.sleeps  # the retry waited the cap, not forever (nor gave up)
        assert max(clock.sleeps) <= 2.5 + 1e-9


def test_max_hold_s_is_validated() -> None:
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(ValueError, match="max_hold_s"):
            RequestGateConfig(max_hold_s=bad)
