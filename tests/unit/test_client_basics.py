"""Client construction, from_env, lifecycle, and bad input refused before anything is sent."""

from __future__ import annotations

import decimal
import inspect
from collections.abc import Iterator
from decimal import Decimal

import pytest
from rest_mock import Routes

import okx_sync
from okx_sync import (
    Client,
    OkxError,
    RequestGateConfig,
    RequestStateError,
    RetryPolicy,
    ValidationError,
)


@pytest.fixture
def nothing_sent() -> Iterator[Routes]:
    """A mock transport with no routes: any request that got out would be recorded here."""
    mock = Routes()
    yield mock
    assert not mock.calls, mock.paths()


def test_public_names_and_signature() -> None:
    assert okx_sync.Client is Client
    assert issubclass(okx_sync.APIError, OkxError) and issubclass(ValidationError, ValueError)
    client = Client()
    assert client.base_url == "https://www.okx.com" and not client.demo
    client.close()


def test_constructor_signature_is_the_contract() -> None:
    params = inspect.signature(Client).parameters
    names = list(params)
    assert names[:9] == [
        "api_key", "secret_key", "passphrase",
        "demo", "base_url", "timeout_s", "gate", "retry", "session",
    ]  # fmt: skip
    for name in ("api_key", "secret_key", "passphrase"):
        assert params[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, name
        assert params[name].default is None, name
    expected = {
        "demo": False,
        "base_url": "https://www.okx.com",
        "timeout_s": 10.0,
        "gate": RequestGateConfig(),
        "retry": RetryPolicy(),
    }
    for name, default in expected.items():
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert params[name].default == default and type(params[name].default) is type(default)
    # everything after the three credentials is keyword-only
    assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in names[3:])
    with pytest.raises(TypeError):
        Client(None, None, None, True)  # type: ignore[misc]


@pytest.mark.parametrize(
    "url",
    [
        "www.okx.com",
        "ftp://www.okx.com",
        "https://",
        "https://www.okx.com/api/v5",
        "https://www.okx.com?x=1",
        "https://user:pw@www.okx.com",
        "https://www.okx.com:99999",
        "",
    ],
)
def test_malformed_base_url_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="base_url"):
        Client(base_url=url)


def test_valid_base_urls_accepted() -> None:
    for url in ("https://openapi.okx.com/", "http://127.0.0.1:8080", "https://www.okx.com"):
        with Client(base_url=url) as client:
            assert client.base_url == url.rstrip("/")


def test_partial_credentials_and_bad_timeout_refused() -> None:
    with pytest.raises(ValidationError, match="missing passphrase"):
        Client("key", "secret")
    with pytest.raises(ValidationError, match="timeout"):
        Client(timeout_s=0)


def test_private_call_without_credentials_refused(nothing_sent: Routes) -> None:
    with (
        Client(transport=nothing_sent.transport) as client,
        pytest.raises(ValidationError, match="credentials are required"),
    ):
        client.request("GET", "/api/v5/account/balance")


@pytest.mark.parametrize(
    "method,path,params,message",
    [
        ("GET", "/api/v4/market/ticker", None, "must start with '/api/v5/'"),
        ("GET", "api/v5/market/ticker", None, "must start with '/api/v5/'"),
        ("GET", "https://www.okx.com/api/v5/market/ticker", None, "must start"),
        ("GET", "/api/v5/market/ticker?instId=BTC-USDT", None, "query string"),
        ("GET", "/api/v5/market/ticker x", None, "whitespace"),
        ("PUT", "/api/v5/market/ticker", None, "GET or POST"),
        ("GET", "/api/v5/market/ticker", {"instId": ["BTC-USDT"]}, "string or number"),
        ("GET", "/api/v5/market/ticker", ["instId"], "must be a dict"),
        ("POST", "/api/v5/trade/order", {"px": object()}, "unsupported value type object"),
        ("POST", "/api/v5/trade/order", {"px": float("nan")}, "float nan refused"),
        # raw requests refuse what the named methods refuse, before sending
        ("POST", "/api/v5/trade/order", {"px": 1.5}, r"px: float 1.5 refused"),
        ("POST", "/api/v5/trade/batch-orders", [{"sz": "1"}, {"sz": 2.0}], r"\[1\].sz: float"),
        ("POST", "/api/v5/trade/order", {"px": Decimal("NaN")}, "not a finite number"),
        ("POST", "/api/v5/trade/order", {"px": Decimal("-Infinity")}, "not a finite number"),
        ("POST", "/api/v5/trade/order", {"instId": {"BTC-USDT"}}, "unsupported value type set"),
        ("POST", "/api/v5/trade/order", {"tag": b"x"}, "unsupported value type bytes"),
        ("POST", "/api/v5/trade/order", {"attach": [{1: "x"}]}, "key 1 is not a string"),
        ("POST", "/api/v5/trade/order", {"a": [[[[[[[[["x"]]]]]]]]]}, "nested deeper"),
        ("GET", "/api/v5/market/ticker", {"instId": Decimal("NaN")}, "not a finite number"),
        ("GET", "/api/v5/market/ticker", {"instId": Decimal("Infinity")}, "not a finite"),
        ("GET", "/api/v5/market/ticker", {"instId": {"a": 1}}, "string or number"),
        ("GET", "/api/v5/market/../../v4/x", None, r"'\.\.' segment"),
        ("GET", "/api/v5/market/%2e%2E/account/balance", None, r"'\.\.' segment"),
        ("POST", "/api/v5/trade/./order", None, r"'\.' or"),
        ("POST", "/api/v5/trade/order", "instId=BTC", "dict or a list"),
    ],
)
def test_bad_input_refused_before_sending(
    nothing_sent: Routes, method: str, path: str, params: object, message: str
) -> None:
    with Client("k" * 12, "s", "p", transport=nothing_sent.transport) as client:
        with pytest.raises(ValidationError, match=message):
            client.request(method, path, params)
    assert client.stats().requests == 0


def test_decimal_params_become_strings() -> None:
    mock = Routes()
    one_ack = [{"ordId": "1", "clOrdId": "", "sCode": "0", "sMsg": ""}]
    mock.post("https://www.okx.com/api/v5/trade/order", json={"code": "0", "data": one_ack})
    no_buckets = RequestGateConfig(rate_limits=False)
    with Client("k" * 12, "s", "p", gate=no_buckets, transport=mock.transport) as client:
        client.request(
            "POST", "/api/v5/trade/order", {"px": decimal.Decimal("1.50"), "reduceOnly": None}
        )
    assert mock.calls[0].body == b'{"px":"1.50"}'


def test_from_env() -> None:
    env = {
        "OKX_API_KEY": "env-key-1234",
        "OKX_SECRET_KEY": "env-secret",
        "OKX_PASSPHRASE": "env-pass",
        "OKX_DEMO": "true",
        "OKX_BASE_URL": "http://127.0.0.1:9",
    }
    with Client.from_env(env, timeout_s=2.0) as client:
        assert client.demo is True and client.base_url == "http://127.0.0.1:9"
        assert client._rest.has_credentials
        creds = client._credentials
        assert creds is not None
        assert (creds.api_key, creds.secret_key, creds.passphrase) == (
            "env-key-1234", "env-secret", "env-pass",
        )  # fmt: skip
    with Client.from_env({}) as client:
        assert not client.demo and not client._rest.has_credentials
        assert client.base_url == "https://www.okx.com"
    with pytest.raises(ValidationError, match="OKX_DEMO"):
        Client.from_env({"OKX_DEMO": "maybe"})
    with pytest.raises(ValidationError, match="missing"):
        Client.from_env({"OKX_API_KEY": "k"})
    for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE"):
        partial = {k: v for k, v in env.items() if k != name}
        with pytest.raises(ValidationError, match="missing"):
            Client.from_env(partial)  # each of the three is read: leaving one out is refused
    for text, demo in (("0", False), ("false", False), ("1", True), ("yes", True), ("TRUE", True)):
        with Client.from_env({"OKX_DEMO": text}) as client:
            assert client.demo is demo, text


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKX_DEMO", "1")
    monkeypatch.delenv("OKX_API_KEY", raising=False)
    monkeypatch.delenv("OKX_BASE_URL", raising=False)
    with Client.from_env() as client:
        assert client.demo


def test_context_manager_and_idempotent_close(nothing_sent: Routes) -> None:
    with Client(retry=RetryPolicy.none(), transport=nothing_sent.transport) as client:
        assert not client.closed
    assert client.closed
    client.close()
    with pytest.raises(RequestStateError) as info:
        client.request("GET", "/api/v5/public/time")
    assert (info.value.stage, info.value.dispatched) == ("gate", False)
    assert "closed" in repr(client)


def test_repr_shows_no_credentials() -> None:
    with Client("abcdefgh12345678", "SECRETSECRET", "PASSPASS") as client:
        text = repr(client) + repr(client._rest)
    assert "SECRETSECRET" not in text and "PASSPASS" not in text
    assert "abcdefgh1234" not in text and "credentials=yes" in text


def test_the_client_class_stays_small_and_keeps_its_documented_methods() -> None:
    # issue 19: no class over 400 lines; the parts live in okx_sync/client_parts.py
    import ast
    from pathlib import Path

    from okx_sync.client import Client as ClientClass

    path = Path(inspect.getfile(ClientClass))
    tree = ast.parse(path.read_text("utf-8"))
    (node,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Client"]
    assert node.end_lineno is not None and node.end_lineno - node.lineno + 1 <= 400
    public = [n for n, v in vars(ClientClass).items() if not n.startswith("_")]
    assert {"ws_public", "enter_safe_mode", "dead_man_switch", "evidence", "close"} <= set(public)
    for name in public:
        doc = inspect.getdoc(getattr(ClientClass, name))
        assert doc and len(doc) > 20, name
