"""OKX V5 request signing (facts §1.2, §4.2). Pure: no I/O, no threads.

REST: ``sign = Base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body))``
where ``requestPath`` includes ``?query`` for GET and ``body`` is the exact JSON
text sent ("" for GET). WebSocket login signs ``timestamp + "GET" +
"/users/self/verify"`` with ``timestamp`` in Unix seconds.

Everything here is a pure function or an immutable value and is safe to call
from any thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import attrs

from .secret import reveal

__all__ = [
    "Credentials",
    "sign",
    "prehash",
    "iso_timestamp",
    "rest_auth_headers",
    "ws_login_args",
    "redact_key",
    "WS_LOGIN_PATH",
]

WS_LOGIN_PATH = "/users/self/verify"


def redact_key(value: str | None) -> str:
    """Show at most the last 4 characters of an API key: ``"****abcd"``."""
    if not value:
        return ""
    return "****" + value[-4:] if len(value) > 4 else "****"


@attrs.frozen(kw_only=True)
class Credentials:
    """An API key triple. ``repr`` shows only the key's last 4 characters.

    Raises ``ValueError`` when only some of the three parts are given.
    Thread safety: immutable.
    """

    api_key: str = attrs.field(repr=redact_key, converter=reveal)
    secret_key: str = attrs.field(repr=False, converter=reveal)
    passphrase: str = attrs.field(repr=False, converter=reveal)

    @classmethod
    def from_parts(
        cls, api_key: str | None, secret_key: str | None, passphrase: str | None
    ) -> Credentials | None:
        """Build credentials, or None when all parts are empty.

        Raises ``ValueError`` naming the missing parts when only some are given.
        Each part may be a :class:`~okx_sync.secret.Secret` (its value is used).
        """
        api_key, secret_key, passphrase = reveal(api_key), reveal(secret_key), reveal(passphrase)
        parts = {"api_key": api_key, "secret_key": secret_key, "passphrase": passphrase}
        given = {k for k, v in parts.items() if v}
        if not given:
            return None
        missing = sorted(set(parts) - given)
        if missing:
            raise ValueError(f"incomplete credentials: missing {', '.join(missing)}")
        return cls(api_key=str(api_key), secret_key=str(secret_key), passphrase=str(passphrase))


def prehash(timestamp: str, method: str, request_path: str, body: str = "") -> str:
    """The string OKX signs: ``timestamp + METHOD + requestPath + body``."""
    return f"{timestamp}{method.upper()}{request_path}{body}"


def sign(secret: str, message: str) -> str:
    """Base64(HMAC-SHA256(secret as UTF-8, message as UTF-8))."""
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def iso_timestamp(epoch_ms: int) -> str:
    """``2020-12-08T09:08:57.715Z`` for the given Unix time in milliseconds. Thread-safe
    (the last second's text is reused: one tuple, replaced whole)."""
    global _LAST_SECOND
    seconds, millis = divmod(int(epoch_ms), 1000)
    last, text = _LAST_SECOND
    if last != seconds:
        text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _LAST_SECOND = (seconds, text)
    return f"{text}{millis:03d}Z"


_LAST_SECOND: tuple[int | None, str] = (None, "")


def rest_auth_headers(
    creds: Credentials, epoch_ms: int, method: str, request_path: str, body: str = ""
) -> dict[str, str]:
    """The four OK-ACCESS-* headers for one signed REST request."""
    ts = iso_timestamp(epoch_ms)
    return {
        "OK-ACCESS-KEY": creds.api_key,
        "OK-ACCESS-SIGN": sign(creds.secret_key, prehash(ts, method, request_path, body)),
        "OK-ACCESS-TIMESTAMP": ts,
        "OK-ACCESS-PASSPHRASE": creds.passphrase,
    }


def ws_login_args(creds: Credentials, epoch_s: int) -> dict[str, str]:
    """The single ``args`` item of a WS ``login`` op for the given Unix seconds."""
    ts = str(int(epoch_s))
    return {
        "apiKey": creds.api_key,
        "passphrase": creds.passphrase,
        "timestamp": ts,
        "sign": sign(creds.secret_key, prehash(ts, "GET", WS_LOGIN_PATH)),
    }
