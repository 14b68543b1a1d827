"""Signing vectors from okx-v5-facts.md §1.2 and timestamp/credential handling."""

from __future__ import annotations

import pytest

from okx_sync.auth import (
    Credentials,
    iso_timestamp,
    prehash,
    redact_key,
    rest_auth_headers,
    sign,
    ws_login_args,
)

VECTORS = [
    (
        "mysecret",
        "2020-12-08T09:08:57.715ZGET/api/v5/account/balance?ccy=BTC",
        "OkAjRTXqfIRKxx7SRjIowU96vZPkf4n9X2G+8yduCf4=",
    ),
    (
        "mysecret",
        '2020-03-28T12:21:41.274ZPOST/api/v5/trade/order{"instId":"BTC-USDT","tdMode":"isolated","side":"buy","ordType":"limit","px":"1","sz":"1"}',
        "5JgIEfkRBluy4x31t6uitZqzoshK+kWWjq9f597WRqQ=",
    ),
    ("mysecret", "1538054050GET/users/self/verify", "m+lzVL6siKIpimAa/6y8lHpWZe0SCpehAqymC8Nel0A="),
    (
        "22582BD0CFF14C41EDBF1AB98506286D",
        "2020-12-08T09:08:57.715ZGET/api/v5/account/balance?ccy=BTC",
        "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY=",
    ),
]


@pytest.mark.parametrize("secret,message,expected", VECTORS)
def test_hmac_vectors(secret: str, message: str, expected: str) -> None:
    assert sign(secret, message) == expected


def test_prehash_and_headers_match_vector() -> None:
    creds = Credentials(api_key="k" * 10, secret_key="mysecret", passphrase="pp")
    assert iso_timestamp(1607418537715) == "2020-12-08T09:08:57.715Z"
    assert prehash("t", "get", "/p?x=1") == "tGET/p?x=1"
    headers = rest_auth_headers(creds, 1607418537715, "GET", "/api/v5/account/balance?ccy=BTC")
    assert headers["OK-ACCESS-SIGN"] == VECTORS[0][2]
    assert headers["OK-ACCESS-TIMESTAMP"] == "2020-12-08T09:08:57.715Z"
    assert headers["OK-ACCESS-PASSPHRASE"] == "pp"


def test_iso_timestamp_pads_millis() -> None:
    assert iso_timestamp(1_600_000_000_005) == "2020-09-13T12:26:40.005Z"


def test_ws_login_vector() -> None:
    creds = Credentials(api_key="key", secret_key="mysecret", passphrase="pp")
    args = ws_login_args(creds, 1538054050)
    assert args == {
        "apiKey": "key",
        "passphrase": "pp",
        "timestamp": "1538054050",
        "sign": "m+lzVL6siKIpimAa/6y8lHpWZe0SCpehAqymC8Nel0A=",
    }


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials(api_key="abcdef123456", secret_key="SECRETVALUE", passphrase="PASSVALUE")
    text = repr(creds) + str(creds)
    assert "SECRETVALUE" not in text and "PASSVALUE" not in text and "abcdef12" not in text
    assert "3456" in text
    assert redact_key("") == "" and redact_key("abc") == "****"


def test_partial_credentials_refused() -> None:
    assert Credentials.from_parts(None, "", None) is None
    with pytest.raises(ValueError, match="missing passphrase"):
        Credentials.from_parts("k", "s", None)
