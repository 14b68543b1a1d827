"""``WSConfig``: every option of a ``WSClient`` in one frozen, validated object.

The WebSocket client takes its configuration as one value (``WSClient(url,
config=WSConfig(...))``, or ``client.ws_public(config=...)``) and its
collaborators (credentials, clock, gate, instrument cache, connect limiter,
clock re-sync...) as keywords beside it: a config can be built once, compared,
logged and shared by many clients; collaborators are live objects.

Thread safety: immutable.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ..errors import ValidationError
from ..validators import field, flag, instance, seconds
from .connection import UNSUPPORTED_WS_OPTIONS
from .dispatch import DispatchConfig, DispatchMode
from .frames import DEFAULT_MAX_SIZE
from .policies import BackoffPolicy, HeartbeatPolicy
from .proxy import HttpProxy

__all__ = ["WSConfig"]

_timeout = field(seconds, positive=True)


def _login(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None:
        flag(value, name="login")


def _name(_inst: Any, _attr: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValidationError(f"name must be a non-empty string or None, got {value!r}")


def _max_message_bytes(_inst: Any, _attr: Any, value: Any) -> None:
    if type(value) is not int or value < 125:
        raise ValidationError(f"max_message_bytes must be an int >= 125 (bytes), got {value!r}")


def _options(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"ws_options must be a mapping, got {value!r}")
    refused = sorted(UNSUPPORTED_WS_OPTIONS.intersection(value))
    if refused:
        raise ValidationError(
            f"ws_options {', '.join(refused)} not supported (the client opens the socket; "
            "for an HTTP proxy give WSConfig(proxy_url='http://host:port'))"
        )
    return MappingProxyType(dict(value))


def _proxy_url(value: Any) -> HttpProxy | None:
    return None if value is None else HttpProxy.parse(value)


@attrs.frozen(kw_only=True)
class WSConfig:
    """The options of a ``WSClient``. Frozen, keyword-only; validated when built.

    - ``login``: True/False; None (default): log in when credentials are given and
      the URL is ``/private`` or ``/business``.
    - ``name``: for thread names and log lines (default: the URL's service).
    - ``heartbeat``: a ``HeartbeatPolicy`` (``ping_interval_s`` < 30, default 20;
      ``pong_timeout_s``, default 8): a silent connection is detected within their
      sum; every write (subscribe, order, ping, pong, close) has a deadline of
      ``pong_timeout_s``. ``backoff``: a ``BackoffPolicy`` (0.25 s doubling to 10 s
      with jitter).
    - ``typed_dispatch`` / ``raw_dispatch``: a ``DispatchConfig`` each (the only
      accepted type). Defaults: typed handlers on a pool of one worker (order kept,
      the reader stays free), raw handlers inline (on the reader: lowest latency; a
      handler holding the reader is reported, and the heartbeat does not count
      that time against the connection).
    - ``connect_timeout_s`` (10: the whole handshake, TCP + TLS + HTTP upgrade, of
      each attempt), ``start_timeout_s`` (None: ``connect_timeout_s + 5``),
      ``subscribe_timeout_s`` (5: resubscribe and login), ``order_timeout_s`` (5).
    - ``max_message_bytes`` (bytes, default 16 MiB): the largest message accepted, a
      fragmented one's frame headers counted; a larger one closes the connection
      with 1009 and it reconnects.
    - ``ws_options``: extra ``websocket.create_connection`` keywords for the HTTP
      upgrade (e.g. ``header``), ``sslopt`` and ``sockopt`` for the TLS and TCP
      socket; proxy keywords are refused (the client opens the socket itself: use
      ``proxy_url``).
    - ``proxy_url``: ``"http://[user:pass@]host:port"`` of an HTTP proxy (None: connect
      directly). Each connection then asks the proxy for a tunnel (``CONNECT
      okx-host:port``, ``Proxy-Authorization: Basic`` when the URL has credentials),
      requires a 2xx answer and does TLS and the upgrade through it, all within
      ``connect_timeout_s``; a refusal (407, 403, 502...) fails that dial with the
      proxy's status and the client backs off and dials again. Kept as a
      ``ws.proxy.HttpProxy``: the password is a ``Secret``, shown nowhere. Only
      ``http://`` proxies: ``https://`` and ``socks*://`` are refused.

    Raises ``ValidationError`` (a ``ValueError``) for a bad value: a timeout that
    is not a positive finite number, a non-bool ``login``, a ``dispatch`` that is
    not a ``DispatchConfig``, a ``proxy_url`` that is not ``http://host:port``...
    Thread safety: immutable.
    """

    login: bool | None = attrs.field(default=None, validator=_login)
    name: str | None = attrs.field(default=None, validator=_name)
    heartbeat: HeartbeatPolicy = attrs.field(
        factory=HeartbeatPolicy, validator=field(instance, kind=HeartbeatPolicy)
    )
    backoff: BackoffPolicy = attrs.field(
        factory=BackoffPolicy, validator=field(instance, kind=BackoffPolicy)
    )
    typed_dispatch: DispatchConfig = attrs.field(
        factory=DispatchConfig, validator=field(instance, kind=DispatchConfig)
    )
    raw_dispatch: DispatchConfig = attrs.field(
        factory=lambda: DispatchConfig(mode=DispatchMode.INLINE),
        validator=field(instance, kind=DispatchConfig),
    )
    connect_timeout_s: float = attrs.field(default=10.0, validator=_timeout)
    start_timeout_s: float | None = attrs.field(
        default=None, validator=field(seconds, positive=True, optional=True)
    )
    subscribe_timeout_s: float = attrs.field(default=5.0, validator=_timeout)
    order_timeout_s: float = attrs.field(default=5.0, validator=_timeout)
    max_message_bytes: int = attrs.field(default=DEFAULT_MAX_SIZE, validator=_max_message_bytes)
    ws_options: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_options, eq=False, hash=False
    )
    proxy_url: HttpProxy | None = attrs.field(default=None, converter=_proxy_url)

    @property
    def start_deadline_s(self) -> float:
        """``start_timeout_s``, or ``connect_timeout_s + 5`` when it is None."""
        if self.start_timeout_s is not None:
            return self.start_timeout_s
        return self.connect_timeout_s + 5.0
