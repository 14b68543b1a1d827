"""Raw protocol helpers for testing against the simulator without okx_sync's client.

:class:`RawRest` signs and sends REST requests with ``requests`` (signature from the
vector-tested :mod:`okx_sync.auth`); :class:`RawWS` is a thin ``websocket-client``
connection with JSON helpers and predicate waits. Both exist so that the simulator's
own tests, drills and examples can speak to it the way an independent client would.

Thread safety: one instance per thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import requests
import websocket

from ..auth import Credentials, rest_auth_headers, ws_login_args

__all__ = ["RawRest", "RawWS"]


class RawRest:
    """Signed/unsigned REST calls to ``base_url`` with optional credentials.

    ``clock_ms`` overrides the signing time (to test skew). Raises what ``requests``
    raises on transport failures.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None = None,
        *,
        demo: bool = False,
        timeout_s: float = 10.0,
        clock_ms: Callable[[], int] | None = None,
        verify: bool | str = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.demo = demo
        self.timeout_s = timeout_s
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.session = requests.Session()
        self.session.verify = verify
        self.session.trust_env = False  # loopback only: no proxies, no CA bundle from the env

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def _headers(self, method: str, target: str, body: str, sign: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} if method == "POST" else {}
        if self.demo:
            headers["x-simulated-trading"] = "1"
        if sign and self.credentials is not None:
            headers.update(
                rest_auth_headers(self.credentials, self.clock_ms(), method, target, body)
            )
        return headers

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        sign: bool = True,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> requests.Response:
        """GET ``path`` (``/api/v5/...``) with ``params`` in caller order, signed if credentials."""
        target = path + ("?" + urlencode(params) if params else "")
        hdrs = self._headers("GET", target, "", sign)
        hdrs.update(headers or {})
        return self.session.get(
            self.base_url + target, headers=hdrs, timeout=timeout_s or self.timeout_s
        )

    def post(
        self,
        path: str,
        body: Any,
        *,
        sign: bool = True,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> requests.Response:
        """POST ``body`` (a str is sent as is, anything else as compact JSON)."""
        text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        hdrs = self._headers("POST", path, text, sign)
        hdrs.update(headers or {})
        return self.session.post(
            self.base_url + path,
            data=text.encode(),
            headers=hdrs,
            timeout=timeout_s or self.timeout_s,
        )


class RawWS:
    """A raw WebSocket connection (``websocket-client``) with JSON helpers.

    Raises ``websocket.WebSocketException`` / ``TimeoutError`` from the waits.
    """

    def __init__(
        self, url: str, *, timeout_s: float = 5.0, sslopt: dict[str, Any] | None = None
    ) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout_s, sslopt=sslopt)
        self.timeout_s = timeout_s
        self.received: list[Any] = []

    def send_json(self, obj: Any) -> None:
        """Send one JSON text frame."""
        self.ws.send(json.dumps(obj))

    def send_text(self, text: str) -> None:
        """Send one raw text frame."""
        self.ws.send(text)

    def recv(self, timeout_s: float | None = None) -> Any:
        """The next message: parsed JSON, or the raw text (``pong``)."""
        self.ws.settimeout(timeout_s if timeout_s is not None else self.timeout_s)
        text = self.ws.recv()
        try:
            msg = json.loads(text)
        except (TypeError, ValueError):
            msg = text
        self.received.append(msg)
        return msg

    def wait_for(self, pred: Callable[[Any], bool], timeout_s: float | None = None) -> Any:
        """Receive until ``pred(msg)``; raises ``TimeoutError`` after ``timeout_s`` seconds."""
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching WS message")
            try:
                msg = self.recv(left)
            except websocket.WebSocketTimeoutException:
                raise TimeoutError("no matching WS message") from None
            if pred(msg):
                return msg

    def wait_close(self, timeout_s: float | None = None) -> int | None:
        """Read until the server closes; returns the close code (None: no close frame,
        the TCP connection just ended). Raises ``TimeoutError``."""
        self.ws.settimeout(timeout_s if timeout_s is not None else self.timeout_s)
        while True:
            try:
                opcode, data = self.ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                raise TimeoutError("the connection stayed open") from None
            except (websocket.WebSocketConnectionClosedException, OSError):
                return None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big") if len(data) >= 2 else None

    def login(self, credentials: Credentials, epoch_s: int | None = None) -> Any:
        """Send ``login`` and return the answer (``event`` login or error)."""
        ts = int(time.time()) if epoch_s is None else epoch_s
        self.send_json({"op": "login", "args": [ws_login_args(credentials, ts)]})
        return self.wait_for(lambda m: isinstance(m, dict) and m.get("event") in ("login", "error"))

    def close(self) -> None:
        """Close the connection (the TCP socket too, whatever state the WebSocket is in)."""
        try:
            self.ws.close()
        except Exception:  # already closed
            pass
        finally:
            # once a close frame was read (wait_close, recv_data), websocket-client counts
            # itself disconnected and close() does nothing: the socket stayed open, and the
            # server waited its close timeout for the TCP connection to end
            self.ws.shutdown()
