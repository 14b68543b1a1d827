"""Authentication exactly as OKX checks it: REST headers and WS login (facts §1.2, §3.2, §4.2).

REST: the signature covers ``timestamp + METHOD + requestPath + body`` where
``requestPath`` is the raw request target as received (path plus ``?query``,
never re-encoded) and ``body`` the raw body text; the timestamp must be ISO-8601
with milliseconds and within ``skew`` seconds of server time; the passphrase must
match; a demo key requires ``x-simulated-trading: 1`` and a live key must not send
it (50101). Codes and HTTP statuses follow the OKX error table.

WS login: ``timestamp`` in Unix seconds within ``skew``; sign over
``timestamp + "GET" + "/users/self/verify"``; WS error codes 600xx.

Uses only the pure :mod:`okx_sync.auth` helpers (``prehash``, ``sign``).
Thread safety: :class:`KeyStore` is immutable; the functions are pure.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Protocol

import attrs

from ..auth import WS_LOGIN_PATH, Credentials, prehash, sign

__all__ = ["ApiKey", "KeyStore", "AuthFailure", "check_rest", "check_ws_login"]

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class _Headers(Protocol):
    def get(self, name: str, default: str | None = None) -> str | None:
        """A header value by case-insensitive name."""
        ...


@attrs.frozen(kw_only=True)
class ApiKey:
    """A simulator API key: its credentials, the account it trades, live or demo."""

    credentials: Credentials
    uid: str
    demo: bool
    label: str

    @property
    def api_key(self) -> str:
        """The public key string."""
        return self.credentials.api_key


class KeyStore:
    """The keys the simulator accepts, by API key string. Immutable."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = {k.api_key: k for k in keys}

    def get(self, api_key: str) -> ApiKey | None:
        """The key record or None."""
        return self._keys.get(api_key)

    def __iter__(self) -> Iterator[ApiKey]:
        return iter(self._keys.values())


class AuthFailure(Exception):
    """Authentication refused: ``code``/``msg`` as OKX sends them, ``http_status`` for REST."""

    def __init__(self, code: str, msg: str, http_status: int = 401) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status


# (unknown key, wrong passphrase, environment mismatch, bad signature) -> (code, msg)
_REST = (
    ("50111", "Invalid OK-ACCESS-KEY"),
    ("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.'),
    ("50101", "APIKey does not match current environment."),
    ("50113", "Invalid Sign"),
)
_WS = (
    ("60032", "API key doesn't exist."),
    ("60024", "Wrong passphrase"),
    ("60032", "API key doesn't exist."),
    ("60007", "Invalid sign"),
)


def _verify(
    keys: KeyStore,
    api_key: str,
    passphrase: str,
    sig: str,
    message: str,
    codes: tuple[tuple[str, str], ...],
    demo: bool | None = None,
) -> ApiKey:
    """Key, passphrase, environment (when ``demo`` is given) and signature, in OKX's order."""
    key = keys.get(api_key)
    if key is None:
        raise AuthFailure(*codes[0])
    if not hmac.compare_digest(passphrase, key.credentials.passphrase):
        raise AuthFailure(*codes[1])
    if demo is not None and demo != key.demo:
        raise AuthFailure(*codes[2])
    if not hmac.compare_digest(sig, sign(key.credentials.secret_key, message)):
        raise AuthFailure(*codes[3])
    return key


def _parse_iso_ms(text: str) -> int | None:
    if not _ISO.match(text):
        return None
    try:
        dt = datetime.fromisoformat(text)  # the pattern above fixes the shape
    except ValueError:
        return None
    return int(dt.timestamp() * 1000)


def check_rest(
    keys: KeyStore,
    headers: _Headers | Mapping[str, str],
    method: str,
    request_target: str,
    body: str,
    now_ms: int,
    skew_s: float = 30.0,
) -> ApiKey:
    """Verify a private REST request; returns the key or raises :class:`AuthFailure`."""
    key_text = headers.get("OK-ACCESS-KEY") or ""
    sig = headers.get("OK-ACCESS-SIGN") or ""
    ts = headers.get("OK-ACCESS-TIMESTAMP") or ""
    passphrase = headers.get("OK-ACCESS-PASSPHRASE") or ""
    if not key_text:
        raise AuthFailure("50103", 'Request header "OK-ACCESS-KEY" cannot be empty.')
    if not sig:
        raise AuthFailure("50106", 'Request header "OK-ACCESS-SIGN" cannot be empty.')
    if not ts:
        raise AuthFailure("50107", 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.')
    if not passphrase:
        raise AuthFailure("50104", 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.')
    ts_ms = _parse_iso_ms(ts)
    if ts_ms is None:
        raise AuthFailure("50112", "Invalid OK-ACCESS-TIMESTAMP")
    if abs(now_ms - ts_ms) > skew_s * 1000:
        raise AuthFailure("50102", "Timestamp request expired")
    demo_header = (headers.get("x-simulated-trading") or "").strip() == "1"
    return _verify(
        keys,
        key_text,
        passphrase,
        sig,
        prehash(ts, method, request_target, body),
        _REST,
        demo_header,
    )


def check_ws_login(keys: KeyStore, arg: object, now_s: float, skew_s: float = 30.0) -> ApiKey:
    """Verify one WS ``login`` arg; returns the key or raises :class:`AuthFailure`."""
    if not isinstance(arg, Mapping):
        raise AuthFailure("60013", "Invalid args")
    api_key = str(arg.get("apiKey") or "")
    passphrase = str(arg.get("passphrase") or "")
    ts = arg.get("timestamp")
    sig = str(arg.get("sign") or "")
    if not api_key:
        raise AuthFailure("60005", "Invalid apiKey")
    ts_text = str(ts) if ts is not None else ""
    try:
        ts_value = float(ts_text)
    except ValueError:
        raise AuthFailure("60004", "Invalid timestamp") from None
    if not ts_text or ts_value != ts_value:  # empty or NaN
        raise AuthFailure("60004", "Invalid timestamp")
    if abs(now_s - ts_value) > skew_s:
        raise AuthFailure("60006", "Timestamp request expired")
    return _verify(keys, api_key, passphrase, sig, prehash(ts_text, "GET", WS_LOGIN_PATH), _WS)
