"""``MockTransport``: a REST transport answered by a function, for tests without sockets.

    from okx_sync import Client, FakeClock
    from okx_sync.testing import MockTransport
    from okx_sync.testing.mock_transport import json_response

    def okx(request):
        assert request.target.startswith("/api/v5/")
        return json_response({"code": "0", "msg": "", "data": [{"ts": "1700000000000"}]})

    client = Client(transport=MockTransport(okx), clock=FakeClock())

The handler receives each :class:`~okx_sync.rest.transport.Request` exactly as
a real transport would (method, target with query string, body bytes, every
header including the signature, ``timeout_s``, ``idempotent``) and returns a
:class:`~okx_sync.rest.transport.RawResponse`, or raises
:class:`~okx_sync.rest.transport.TransportError` to simulate a failure:
``dispatched=False`` (nothing reached the server: refused, DNS, TLS) or
``dispatched=True`` (the request may have been executed: reset, timeout), or
:class:`~okx_sync.rest.transport.ResponseTooLarge` for an oversized answer.
Anything else the handler raises reaches the caller unchanged (a bug in the
test, not a transport failure). The handler may advance a ``FakeClock`` to
simulate time on the wire.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ..rest.transport import LeanHeaders, RawResponse, Request

__all__ = ["MockTransport", "json_response", "Handler"]

Handler = Callable[[Request], RawResponse]


def json_response(
    payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> RawResponse:
    """A :class:`RawResponse` whose body is ``payload`` as compact JSON (a ``str`` or
    ``bytes`` payload is sent as is), with ``Content-Type: application/json``
    plus ``headers`` (case-insensitive on lookup). Raises ``TypeError`` for a
    payload ``json`` cannot encode. Thread safety: builds a new object."""
    if isinstance(payload, bytes):
        body = payload
    elif isinstance(payload, str):
        body = payload.encode()
    else:
        body = json.dumps(payload, separators=(",", ":")).encode()
    merged = LeanHeaders.of({"Content-Type": "application/json"})
    merged.update(LeanHeaders.of(headers))
    return RawResponse(status, merged, body)


class MockTransport:
    """A :class:`~okx_sync.rest.transport.Transport` whose answers come from
    ``handler(request)`` (see the module doc); for ``Client(transport=...)``.

    Every request is recorded before the handler runs: ``requests`` (the last
    ``keep`` of them, oldest first) and ``sent`` (the count of all). The
    handler runs on the calling thread with no lock held, so it may block,
    call back into the client or advance a ``FakeClock``.

    Raises ``TypeError`` for a ``handler`` that is not callable or a ``keep``
    that is not an int >= 1; ``send`` raises ``TypeError`` when the handler
    returns something other than a ``RawResponse``, and whatever it raises.
    Thread safety: ``send`` and the properties are safe from any thread.
    """

    def __init__(self, handler: Handler, *, keep: int = 10_000) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {type(handler).__name__}")
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise TypeError(f"keep must be an int >= 1, got {keep!r}")
        self._handler = handler
        self._lock = threading.Lock()
        self._requests: deque[Request] = deque(maxlen=keep)
        self._sent = 0

    def send(self, request: Request, /) -> RawResponse:
        """Record ``request`` and return ``handler(request)``; see the class doc."""
        with self._lock:
            self._requests.append(request)
            self._sent += 1
        response = self._handler(request)
        if not isinstance(response, RawResponse):
            raise TypeError(
                f"MockTransport handler must return a RawResponse, got {type(response).__name__}"
            )
        return response

    @property
    def requests(self) -> list[Request]:
        """The recorded requests, oldest first (at most ``keep``)."""
        with self._lock:
            return list(self._requests)

    @property
    def sent(self) -> int:
        """How many requests reached ``send`` in all."""
        with self._lock:
            return self._sent

    def __repr__(self) -> str:
        return f"MockTransport(handler={getattr(self._handler, '__name__', '?')}, sent={self.sent})"
