"""The REST core's decisions on transport outcomes, on ``MockTransport`` and a FakeClock (no
sockets): what a not-dispatched / dispatched failure, an oversized or unusable answer and an
expected code become; what the core hands the transport; who owns the transport."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
from rest_mock import Routes, envelope

from okx_sync import (
    APIError,
    Client,
    FakeClock,
    RequestGateConfig,
    RequestStateError,
    RetryPolicy,
    ValidationError,
)
from okx_sync.rest.transport import (
    PooledTransport,
    RawResponse,
    Request,
    ResponseTooLarge,
    SessionTransport,
    TransportError,
    build_transport,
)
from okx_sync.testing import MockTransport
from okx_sync.testing.mock_transport import json_response

KEY, SECRET, PASS = "key-0123456789abcdef", "mysecret", "pass-phrase-x"
ORDER = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit",
         "px": "1", "sz": "1", "clOrdId": "c1"}  # fmt: skip
ORDER_PATH = "/api/v5/trade/order"
BALANCE = "/api/v5/account/balance"


def client_on(transport: Any, clock: FakeClock | None = None, **kw: Any) -> Client:
    kw.setdefault("gate", RequestGateConfig(rate_limits=False))
    kw.setdefault("retry", RetryPolicy(max_retries=2, base_delay_s=0.5, jitter=0.0))
    return Client(KEY, SECRET, PASS, clock=clock or FakeClock(), transport=transport, **kw)


def failing(*errors: Exception, then: RawResponse | None = None) -> MockTransport:
    """Raise ``errors`` in turn, then answer ``then`` (or keep raising the last error)."""
    left = list(errors)

    def handler(request: Request) -> RawResponse:
        if left:
            exc = left.pop(0)
            if not left and then is None:
                left.append(exc)
            raise exc
        assert then is not None
        return then

    return MockTransport(handler)


def test_the_core_hands_the_transport_one_request_per_attempt() -> None:
    mock = MockTransport(lambda req: json_response(envelope([{"ordId": "1", "sCode": "0"}])))
    with client_on(mock) as client:
        client.request("POST", ORDER_PATH, ORDER)
        client.request("GET", BALANCE, {"ccy": "BTC"})
    post, get = mock.requests
    assert (post.method, post.target, post.timeout_s, post.idempotent) == (
        "POST", ORDER_PATH, 10.0, False)  # fmt: skip
    assert post.body is not None and b'"clOrdId":"c1"' in post.body
    assert post.headers["OK-ACCESS-KEY"] == KEY and "OK-ACCESS-SIGN" in post.headers
    assert (get.method, get.target, get.body, get.timeout_s, get.idempotent) == (
        "GET", BALANCE + "?ccy=BTC", None, 10.0, True)  # fmt: skip
    assert SECRET not in repr(post) and PASS not in repr(post)  # headers never shown
    assert mock.sent == 2


def test_not_dispatched_failure_is_retried_even_for_an_order() -> None:
    clock = FakeClock()
    ok = json_response(envelope([{"ordId": "7", "sCode": "0"}]))
    mock = failing(TransportError("refused", dispatched=False), then=ok)
    with client_on(mock, clock) as client:
        assert client.request("POST", ORDER_PATH, ORDER)[0]["ordId"] == "7"
        stats = client.stats()
    assert mock.sent == 2 and clock.sleeps == [0.5]
    assert stats.retries == 1 and stats.failures == 0


def test_dispatched_failure_of_an_order_is_outcome_unknown_and_not_retried() -> None:
    cause = ConnectionResetError("reset by peer")
    err = TransportError("no response after sending", dispatched=True)
    err.__cause__ = cause
    mock = failing(err)
    with client_on(mock) as client, pytest.raises(RequestStateError) as info:
        client.request("POST", ORDER_PATH, ORDER)
    e = info.value
    assert (e.stage, e.dispatched, e.cl_ord_ids) == ("http", True, ("c1",))
    assert e.__cause__ is cause and mock.sent == 1


def test_dispatched_failure_of_a_read_is_retried_to_the_policys_end() -> None:
    clock = FakeClock()
    mock = failing(TransportError("reset", dispatched=True))
    with client_on(mock, clock) as client, pytest.raises(RequestStateError) as info:
        client.request("GET", BALANCE)
    assert info.value.dispatched and mock.sent == 3  # 1 + max_retries
    assert client.stats().failures_by_code == {"http:dispatched": 1}


def test_a_deadline_cause_is_counted_as_attempt_deadline() -> None:
    err = TransportError("no complete response", dispatched=True)
    err.__cause__ = TimeoutError("the attempt's deadline passed")
    with client_on(failing(err), retry=RetryPolicy.none()) as client:
        with pytest.raises(RequestStateError):
            client.request("GET", BALANCE)
        assert client.stats().limits_hit == {"attempt_deadline": 1}


def test_oversized_answer_is_an_api_error_for_reads_and_unknown_for_orders() -> None:
    mock = failing(ResponseTooLarge("body exceeds 10 bytes", status=200))
    with client_on(mock) as client:
        with pytest.raises(APIError) as api:
            client.request("GET", BALANCE)
        assert (api.value.code, api.value.http_status) == ("", 200)
        assert mock.sent == 1  # an answer came: refused, not retried
        with pytest.raises(RequestStateError) as order:
            client.request("POST", ORDER_PATH, ORDER)
        assert (order.value.dispatched, order.value.cl_ord_ids) == (True, ("c1",))
        assert mock.sent == 2
        assert client.stats().limits_hit == {"response_too_large": 2}


def test_unusable_order_answer_is_outcome_unknown() -> None:
    mock = MockTransport(lambda req: json_response(b"<html>bad gateway</html>", status=502))
    with client_on(mock) as client, pytest.raises(RequestStateError) as info:
        client.request("POST", ORDER_PATH, ORDER)
    assert (info.value.stage, info.value.dispatched, info.value.cl_ord_ids) == (
        "http", True, ("c1",))  # fmt: skip
    assert isinstance(info.value.__cause__, APIError) and mock.sent == 1
    assert client.stats().limits_hit == {"response_not_json": 1}


def test_expected_code_is_raised_but_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    routes = Routes()
    routes.get(ORDER_PATH, json=envelope(code="51603", msg="Order does not exist"))
    routes.get(BALANCE, json=envelope(code="50120", msg="no permission"))
    caplog.set_level(logging.DEBUG, logger="okx_sync.rest")
    with client_on(routes.transport) as client:
        with pytest.raises(APIError, match="51603"):
            client.request("GET", ORDER_PATH, {"instId": "BTC-USDT", "ordId": "1"})
        with pytest.raises(APIError, match="50120"):
            client.request("GET", BALANCE)
    levels = {r.__dict__["code"]: r.levelno for r in caplog.records if "code" in r.__dict__}
    assert levels == {"51603": logging.DEBUG, "50120": logging.WARNING}


def test_an_unrouted_request_never_reaches_a_server() -> None:
    routes = Routes()
    with client_on(routes.transport, retry=RetryPolicy.none()) as client:
        with pytest.raises(RequestStateError) as info:
            client.request("GET", BALANCE)
    assert (info.value.stage, info.value.dispatched) == ("http", False)


def test_a_given_transport_stays_open_and_is_validated() -> None:
    closed: list[bool] = []

    class Closable(MockTransport):
        def close(self) -> None:
            closed.append(True)

    mock = Closable(lambda req: json_response(envelope()))
    with client_on(mock) as client:
        client.request("GET", BALANCE)
        assert client.stats().fast_path is False
    assert closed == []  # the caller's to close
    with pytest.raises(ValidationError, match="send"):
        Client(transport=object())  # type: ignore[arg-type]
    with requests.Session() as session, pytest.raises(ValidationError, match="not both"):
        Client(transport=mock, session=session)
    with pytest.raises(ValidationError, match="session"):
        Client(session="not a session")  # type: ignore[arg-type]


def test_mock_transport_refuses_a_handler_answer_that_is_no_response() -> None:
    with pytest.raises(TypeError, match="callable"):
        MockTransport("nope")  # type: ignore[arg-type]
    mock = MockTransport(lambda req: {"code": "0"})  # type: ignore[arg-type,return-value]
    with client_on(mock) as client, pytest.raises(TypeError, match="RawResponse"):
        client.request("GET", BALANCE)


def test_transport_is_chosen_once_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy", "NO_PROXY", "no_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    with Client() as client:
        pooled = client._rest.transport
        assert isinstance(pooled, PooledTransport) and client.stats().fast_path is True
    with requests.Session() as session, Client(session=session) as client:
        given = client._rest.transport
        assert isinstance(given, SessionTransport) and given.session is session
        assert not given.owns_session and client.stats().fast_path is False
    assert not session.adapters["https://"].poolmanager.pools  # never used, still open
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    proxied = build_transport("https://www.okx.com")
    try:
        assert isinstance(proxied, SessionTransport) and proxied.owns_session
    finally:
        proxied.close()
    monkeypatch.setenv("NO_PROXY", "www.okx.com")
    direct = build_transport("https://www.okx.com")
    direct.close()
    assert isinstance(direct, PooledTransport)


def test_responses_still_serves_a_users_session() -> None:
    # A user's Session is used as given (SessionTransport): test doubles that patch
    # requests' adapters, such as ``responses``, keep working there.
    responses = pytest.importorskip("responses")
    with responses.RequestsMock() as mock, requests.Session() as session:
        mock.get("https://www.okx.com" + BALANCE, json=envelope([{"totalEq": "3"}]))
        with Client(KEY, SECRET, PASS, session=session, clock=FakeClock()) as client:
            assert isinstance(client._rest.transport, SessionTransport)
            assert client.request("GET", BALANCE) == [{"totalEq": "3"}]
        assert mock.calls[0].request.headers["OK-ACCESS-KEY"] == KEY
