"""Canned OKX answers by route for REST tests on ``okx_sync.testing.MockTransport``.

``Routes`` answers ``(method, path)`` (query string ignored) with the responses
added for it, in order, the last one repeating; a request without a route fails
as ``TransportError(dispatched=False)`` (nothing reached a server). ``calls`` are
the :class:`~okx_sync.rest.transport.Request` objects the client sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from okx_sync.rest.transport import RawResponse, Request, TransportError
from okx_sync.testing import MockTransport
from okx_sync.testing.mock_transport import json_response

Answer = Callable[[Request], RawResponse]


def envelope(data: list[Any] | None = None, code: str = "0", msg: str = "") -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data or []}


class Routes:
    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], list[Answer]] = {}
        self._served: dict[tuple[str, str], int] = {}
        self._calls: list[Request] = []
        self.transport = MockTransport(self._answer)

    def reset(self) -> None:
        """Forget every route and recorded call (a transport shared by several tests)."""
        self._routes.clear()
        self._served.clear()
        self._calls.clear()

    @staticmethod
    def _key(method: str, url: str) -> tuple[str, str]:
        return method.upper(), urlsplit(url).path

    def add_callback(self, method: str, url: str, callback: Answer) -> None:
        self._routes.setdefault(self._key(method, url), []).append(callback)

    def add(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        answer = json_response(json if json is not None else envelope(), status=status,
                               headers=headers)  # fmt: skip
        self.add_callback(method, url, lambda _req: answer)

    def get(self, url: str, **kw: Any) -> None:
        self.add("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> None:
        self.add("POST", url, **kw)

    def replace(self, method: str, url: str, **kw: Any) -> None:
        key = self._key(method, url)
        self._routes.pop(key, None)
        self._served.pop(key, None)
        self.add(method, url, **kw)

    def _answer(self, request: Request) -> RawResponse:
        self._calls.append(request)
        key = self._key(request.method, request.target)
        answers = self._routes.get(key)
        if not answers:
            raise TransportError(f"no mock route for {key}", dispatched=False)
        i = self._served.get(key, 0)
        self._served[key] = i + 1
        return answers[min(i, len(answers) - 1)](request)

    @property
    def calls(self) -> list[Request]:
        return list(self._calls)

    def paths(self) -> list[str]:
        return [c.target for c in self.calls]
