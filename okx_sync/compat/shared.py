"""One ``okx_sync.Client`` per (credentials, flag, domain, proxy) per process.

python-okx programs build many API objects (``TradeAPI``, ``AccountAPI``, ... often
one per call site) from the same key. Under ``okx_sync.compat.okx`` they all share
one :class:`~okx_sync.Client` — one request gate, one clock offset, one connection
pool — built lazily on the first request and closed at interpreter exit (``atexit``).

This is the one piece of process-wide mutable state in okx_sync, on purpose: sharing
the gate between objects that python-okx code creates independently is the point.
Thread safety: :meth:`SharedClients.get` may be called from any thread; two threads
asking for the same key get the same Client (built once, under the lock).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import threading
from typing import Any

import attrs
import requests

from ..client import Client
from ..errors import OkxError

__all__ = ["ClientKey", "SharedClients", "SHARED"]

_log = logging.getLogger("okx_sync.compat")


@attrs.frozen
class ClientKey:
    """What makes two API objects share a Client. Secrets are ``repr=False``;
    ``secret_hash`` lets equal keys compare without keeping a second copy around."""

    api_key: str | None = attrs.field(repr=False)
    secret_key: str | None = attrs.field(repr=False, eq=False, hash=False)
    passphrase: str | None = attrs.field(repr=False, eq=False, hash=False)
    secret_hash: str = attrs.field(repr=False)
    demo: bool
    domain: str
    proxy: str | None = attrs.field(repr=False)

    @classmethod
    def of(
        cls,
        api_key: str,
        secret_key: str,
        passphrase: str,
        *,
        demo: bool,
        domain: str,
        proxy: str | None,
    ) -> ClientKey:
        """python-okx's arguments as a key; api_key ``'-1'`` (python-okx: no key) means
        public endpoints only."""
        if api_key == "-1":
            return cls(None, None, None, "", demo, domain, proxy)
        digest = hashlib.sha256(f"{secret_key}\0{passphrase}".encode()).hexdigest()
        return cls(api_key, secret_key, passphrase, digest, demo, domain, proxy)

    def build(self) -> Client:
        """A new Client for this key (a proxy goes on its own requests Session)."""
        options: dict[str, Any] = {"demo": self.demo, "base_url": self.domain}
        if self.proxy:
            session = requests.Session()
            session.proxies = {"http": self.proxy, "https": self.proxy}
            options["session"] = session
        return Client(self.api_key, self.secret_key, self.passphrase, **options)


class SharedClients:
    """The process's shared Clients, by :class:`ClientKey`.

    ``get`` builds on first use (and measures the clock offset once when the key can
    sign: a failure there is logged, the client re-syncs by itself when OKX refuses
    a timestamp); ``close_all`` closes them (registered with ``atexit`` when the first
    one is built). Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[ClientKey, Client] = {}
        self._atexit = False

    def get(self, key: ClientKey) -> Client:
        """The Client for ``key``, built when missing. Raises what ``Client`` raises for
        bad arguments (``ValidationError``)."""
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                return client
            client = key.build()
            self._clients[key] = client
            if not self._atexit:
                atexit.register(self.close_all)
                self._atexit = True
        if key.api_key is not None:
            try:
                client.sync_time()
            except OkxError as exc:
                _log.warning(
                    "clock sync for the shared client failed (it retries on 50102): %s", exc
                )
        return client

    def adopt(self, key: ClientKey, client: Client) -> None:
        """Use ``client`` (built by the caller, e.g. with its own gate settings) for ``key``
        from now on. Raises ``ValueError`` when another Client already serves ``key``.
        The caller keeps closing ``client``; ``close_all`` also closes it."""
        with self._lock:
            current = self._clients.get(key)
            if current is not None and current is not client:
                raise ValueError("these API objects already use another okx_sync Client")
            self._clients[key] = client

    def close_all(self) -> None:
        """Close every shared Client (each joins its threads) and forget them. Idempotent;
        an API object used afterwards builds a new one."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)


SHARED = SharedClients()
