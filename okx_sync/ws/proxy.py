"""``HttpProxy`` and ``open_tunnel``: a WebSocket connection through an HTTP ``CONNECT`` proxy.

``HttpProxy.parse("http://[user:pass@]host:port")`` validates a proxy URL when a
``WSConfig`` is built (no I/O). ``open_tunnel(sock, proxy, host, port)`` runs on a
socket already connected to the proxy: it sends ``CONNECT host:port HTTP/1.1``
(``Host``, and ``Proxy-Authorization: Basic ...`` when the URL has credentials),
reads the proxy's status line and headers, at most ``MAX_PROXY_HEADER_BYTES``,
and requires a 2xx; TLS (``wss://``) and the WebSocket upgrade then run over the
tunnel as they would on a direct socket. Its deadline is the socket's: the
connection hands it one whose every read and write ends by the handshake
deadline (``ws.connection._DeadlineSocket``).

The password is kept as a ``Secret``: ``repr``, ``str``, error texts and log
lines show ``******`` (or nothing) in its place.

Thread safety: ``HttpProxy`` is immutable; ``open_tunnel`` runs on one thread.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from typing import Any, Protocol

import attrs

from ..errors import ValidationError, WSError
from ..secret import MASK, Secret

__all__ = ["HttpProxy", "open_tunnel", "MAX_PROXY_HEADER_BYTES"]

#: The most bytes of status line and headers read from a proxy's answer to CONNECT.
MAX_PROXY_HEADER_BYTES = 16 * 1024
_READ_SIZE = 4096
_STATUS = re.compile(r"HTTP/1\.[01] ([0-9]{3})(?: (.*))?")
_BAD_HOST = re.compile(r"[\s\x00-\x1f\x7f/@?#]")


def _redacted(url: str) -> str:
    """``url`` with the password of its userinfo (``user:pass@``) masked. Pure."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url if "@" not in url else MASK
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK
    return f"{scheme}://{userinfo}{at}{hostport}{slash}{path}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@attrs.frozen(kw_only=True)
class HttpProxy:
    """An HTTP proxy that tunnels with ``CONNECT``: ``host``, ``port``, optional
    ``username`` and ``password`` (a ``Secret``, left out of ``repr``).

    Build it with ``HttpProxy.parse(url)`` (``WSConfig(proxy_url=...)`` does).
    ``str()`` gives the URL with the password masked. Thread safety: immutable.
    """

    host: str
    port: int
    username: str | None = None
    password: Secret | None = attrs.field(default=None, repr=False)

    @classmethod
    def parse(cls, url: Any) -> HttpProxy:
        """The proxy of ``url`` (``http://[user:pass@]host:port``; user and password
        percent-decoded), or ``url`` itself when it is an ``HttpProxy``; a ``Secret``
        holding the URL is accepted too.

        Raises ``ValidationError`` when the scheme is not ``http`` (``https://`` and
        ``socks*://`` proxies are not supported), the host or the port is missing or
        bad, or the URL has a path, query or fragment. The message never shows the
        password. Thread safety: pure.
        """
        if isinstance(url, HttpProxy):
            return url
        if isinstance(url, Secret):
            url = url.reveal()
        if not isinstance(url, str):
            raise ValidationError(
                f"proxy_url must be a str like 'http://host:port', got {type(url).__name__}"
            )
        shown = _redacted(url)
        try:
            parts = urllib.parse.urlsplit(url.strip())
        except ValueError:
            raise ValidationError(f"proxy_url {shown!r} is not a URL") from None
        scheme = parts.scheme.lower()
        if scheme == "https":
            raise ValidationError(
                f"proxy_url {shown!r}: https:// proxies (TLS to the proxy) are not supported; "
                "give the proxy's http:// address (the tunnel to OKX is TLS end to end for wss://)"
            )
        if scheme.startswith("socks"):
            raise ValidationError(
                f"proxy_url {shown!r}: SOCKS proxies are not supported; only an HTTP CONNECT "
                "proxy (http://host:port)"
            )
        if scheme != "http":
            raise ValidationError(
                f"proxy_url {shown!r}: the scheme must be http (an HTTP CONNECT proxy: "
                "http://[user:pass@]host:port)"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValidationError(f"proxy_url {shown!r}: no path, query or fragment allowed")
        host = parts.hostname or ""
        if not host or _BAD_HOST.search(host):
            raise ValidationError(f"proxy_url {shown!r}: a host is required (http://host:port)")
        try:
            port = parts.port
        except ValueError:
            raise ValidationError(f"proxy_url {shown!r}: the port must be 1..65535") from None
        if port is None or port == 0:
            raise ValidationError(
                f"proxy_url {shown!r}: a port is required (http://host:port; no default)"
            )
        if parts.username is None:
            if parts.password is not None:
                raise ValidationError(f"proxy_url {shown!r}: a password needs a user name")
            return cls(host=host, port=port)
        username = urllib.parse.unquote(parts.username)
        if not username or ":" in username:
            raise ValidationError(
                f"proxy_url {shown!r}: the user name must be non-empty and without ':'"
            )
        password = urllib.parse.unquote(parts.password or "")
        return cls(host=host, port=port, username=username, password=Secret(password))

    @property
    def address(self) -> str:
        """``host:port`` (an IPv6 host in brackets), for messages."""
        return f"{_bracketed(self.host)}:{self.port}"

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value (``Basic <base64 user:password>``), or None
        without credentials. Holds the password: never log it. Thread safety: pure."""
        if self.username is None:
            return None
        secret = self.password.reveal() if self.password is not None else ""
        token = base64.b64encode(f"{self.username}:{secret}".encode()).decode("ascii")
        return f"Basic {token}"

    def __str__(self) -> str:
        user = "" if self.username is None else f"{self.username}:{MASK}@"
        return f"http://{user}{self.address}"


class TunnelSocket(Protocol):
    """What ``open_tunnel`` needs of the socket: ``send`` and ``recv``, each bounded
    by the caller's deadline (a ``TimeoutError`` when it passes)."""

    def send(self, data: bytes) -> int:
        """Send some of ``data``; the count sent."""

    def recv(self, size: int) -> bytes:
        """At most ``size`` bytes; b"" when the peer closed."""


def open_tunnel(sock: TunnelSocket, proxy: HttpProxy, host: str, port: int) -> None:
    """Ask ``proxy`` (connected on ``sock``) for a tunnel to ``host:port``; return once it
    answered 2xx, with nothing of the tunnel read.

    Raises ``WSError`` naming the proxy and its status when it answers anything but
    2xx (407: credentials missing or refused), answers something that is not HTTP,
    sends more than ``MAX_PROXY_HEADER_BYTES`` of headers, sends bytes after a 2xx
    answer, or closes first; ``TimeoutError``/``OSError`` from ``sock`` pass through
    (the caller's deadline). No text shows the password. Thread safety: one thread.
    """
    target = f"{_bracketed(host)}:{port}"
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    auth = proxy.authorization()
    if auth is not None:
        lines.append(f"Proxy-Authorization: {auth}")
    try:
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    except UnicodeEncodeError:
        raise WSError(f"proxy {proxy.address}: CONNECT needs an ASCII host, got {host!r}") from None
    while request:
        request = request[sock.send(request) :]
    answer = b""
    while (end := answer.find(b"\r\n\r\n")) < 0:
        if len(answer) >= MAX_PROXY_HEADER_BYTES:
            raise WSError(
                f"proxy {proxy.address} sent over {MAX_PROXY_HEADER_BYTES} bytes of headers "
                f"in its answer to CONNECT {target}"
            )
        chunk = sock.recv(min(_READ_SIZE, MAX_PROXY_HEADER_BYTES + 4 - len(answer)))
        if not chunk:
            what = "a partial answer" if answer else "answering"
            raise WSError(
                f"proxy {proxy.address} closed the connection before {what} to CONNECT {target}"
            )
        answer += chunk
    if end > MAX_PROXY_HEADER_BYTES:
        raise WSError(
            f"proxy {proxy.address} sent over {MAX_PROXY_HEADER_BYTES} bytes of headers "
            f"in its answer to CONNECT {target}"
        )
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    match = _STATUS.fullmatch(status_line)
    if match is None:
        raise WSError(
            f"proxy {proxy.address} answered CONNECT {target} with something that is not "
            f"HTTP: {status_line[:80]!r}"
        )
    status = int(match.group(1))
    reason = "".join(c for c in (match.group(2) or "") if c.isprintable())[:80]
    if not 200 <= status < 300:
        hint = " (proxy credentials missing or refused)" if status == 407 else ""
        raise WSError(
            f"proxy {proxy.address} refused CONNECT {target}: HTTP {status} {reason}".rstrip()
            + hint
        )
    extra = len(answer) - end - 4
    if extra:
        raise WSError(
            f"proxy {proxy.address} sent {extra} bytes after its {status} answer to "
            f"CONNECT {target}, before the tunnel was used"
        )
