"""python-okx's REST modules, running through okx_sync: migrate by changing one import.

::

    import okx.Trade as Trade                      # before
    import okx_sync.compat.okx.Trade as Trade      # after (or: from okx_sync.compat.okx import Trade)

    api = Trade.TradeAPI(key, secret, passphrase, False, flag)   # flag '1' demo, '0' live
    result = api.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="limit",
                             px="50000", sz="0.001")
    result["code"], result["data"]                 # the envelope dict, as before

Every module, ``XxxAPI`` class and public method of python-okx (the version named by
``SURFACE.version``) is here with the same parameter names, order and defaults and the
same request on the wire (method, path, query, JSON body), built at import from
``okx_surface.tsv`` (:mod:`okx_sync.compat.surface`). Underneath:

- every API object of the process with the same key, ``flag``, ``domain`` and ``proxy``
  shares one :class:`okx_sync.Client` (:mod:`okx_sync.compat.shared`): one request
  gate (OKX's rate limits kept for all of them together; a 429 holds every thread),
  one clock offset (signatures use the synced clock; ``use_server_time`` is accepted
  and not needed), one connection pool. :func:`client_for` returns it (health,
  evidence, safe mode, WebSocket);
- return value: OKX's envelope ``{"code", "msg", "data"}`` for success and for OKX
  error codes alike (``{"code": "51008", ...}`` is returned, not raised), as python-okx;
- where python-okx would raise (no answer), :class:`~okx_sync.errors.RequestStateError`
  is raised: ``dispatched`` says whether the request may have reached OKX. A
  dispatched order-entry request is never re-sent (the client's retry policy);
  rate-limited (429/50011) and not-sent attempts are retried after the gate's hold;
- ``debug=True`` logs each request (method, URL, body; never a secret) at DEBUG on
  ``okx_sync.rest``.

Differences: GET values are URL-encoded (python-okx sends them raw); a private endpoint
called without a key raises ``ValidationError`` before sending; ``flag`` must be
``'0'`` or ``'1'``; ``close()`` releases nothing (the shared Client closes at exit).

Thread safety: API objects hold no mutable state; every method may be called from any
thread (python-okx's objects, built on one ``httpx.Client``, were not meant to be).
"""

from __future__ import annotations

import inspect
import logging
import sys
import types
from typing import Any

from ...client import Client
from ...errors import ValidationError
from ..shared import SHARED, ClientKey
from ..surface import REQUIRED, MethodSpec, load_surface

__all__ = ["OkxAPI", "client_for", "use_client", "SURFACE", "API_CLASSES"]

_log = logging.getLogger("okx_sync.rest")
SURFACE = load_surface()


class OkxAPI:
    """The base of every ``XxxAPI`` class: python-okx's constructor and request helpers.

    ``api_key``/``api_secret_key``/``passphrase``: ``'-1'`` (the default) means no key
    (public endpoints only). ``flag``: ``'1'`` demo trading (``x-simulated-trading: 1``),
    ``'0'`` live. ``domain``: the REST base URL. ``use_server_time``: accepted, ignored
    (okx_sync signs with its synced clock). ``debug``: log requests at DEBUG. ``proxy``:
    an HTTP(S) proxy URL. Raises ``ValidationError`` for another ``flag`` or a malformed
    ``domain``. Thread-safe; the secrets never appear in ``repr``.
    """

    def __init__(
        self,
        api_key: str = "-1",
        api_secret_key: str = "-1",
        passphrase: str = "-1",
        use_server_time: Any = None,
        flag: str = "1",
        domain: str = "https://www.okx.com",
        debug: bool = False,
        proxy: str | None = None,
    ) -> None:
        if flag not in ("0", "1"):
            raise ValidationError(f"flag must be '0' (live) or '1' (demo), got {flag!r}")
        for name, value in (
            ("api_key", api_key),
            ("api_secret_key", api_secret_key),
            ("passphrase", passphrase),
        ):
            if not isinstance(value, str):
                raise ValidationError(f"{name} must be a string")
        self.flag = flag
        self.domain = domain
        self.debug = bool(debug)
        self.use_server_time = use_server_time
        self._key = ClientKey.of(
            api_key, api_secret_key, passphrase, demo=flag == "1", domain=domain, proxy=proxy
        )

    def _request(self, method: str, request_path: str, params: Any) -> dict[str, Any]:
        """Send through the shared Client; the envelope dict back (see the module doc)."""
        client = SHARED.get(self._key)
        if self.debug:
            _log.debug("python-okx %s %s%s params=%s", method, self.domain, request_path, params)
        return client._rest.envelope(method, request_path, params)

    def _request_with_params(self, method: str, request_path: str, params: Any) -> dict[str, Any]:
        """python-okx's helper (for endpoints it has no method for): same as its own."""
        return self._request(method, request_path, params)

    def _request_without_params(self, method: str, request_path: str) -> dict[str, Any]:
        """python-okx's helper: a request with no parameters."""
        return self._request(method, request_path, {})

    def close(self) -> None:
        """Nothing to release: the shared Client is closed at interpreter exit (or by
        ``okx_sync.compat.shared.SHARED.close_all()``)."""

    def __enter__(self) -> OkxAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        who = "no key" if self._key.api_key is None else f"key …{self._key.api_key[-4:]}"
        return f"{type(self).__name__}(flag={self.flag!r}, domain={self.domain!r}, {who})"


def client_for(api: OkxAPI) -> Client:
    """The :class:`okx_sync.Client` behind ``api`` (shared with every API object of the
    same key, flag, domain and proxy), for ``health()``, ``evidence()``, safe mode or WS.
    Builds it when no request was made yet. Do not close it: it is closed at exit.
    Raises ``TypeError`` for an object that is not from this module."""
    if not isinstance(api, OkxAPI):
        raise TypeError(f"client_for expects an okx_sync.compat.okx API object, got {api!r}")
    return SHARED.get(api._key)


def use_client(api: OkxAPI, client: Client) -> None:
    """Make ``api`` and every API object with its key, flag, domain and proxy send through
    ``client`` (one you built: your gate, retry or clock settings) instead of one built
    for them. Call it before their first request. Raises ``ValueError`` when they
    already use another Client, ``TypeError`` for an object not from this module."""
    if not isinstance(api, OkxAPI):
        raise TypeError(f"use_client expects an okx_sync.compat.okx API object, got {api!r}")
    if not isinstance(client, Client):
        raise TypeError(f"use_client expects an okx_sync.Client, got {type(client).__name__}")
    SHARED.adopt(api._key, client)


def _method(spec: MethodSpec) -> Any:
    pok = inspect.Parameter.POSITIONAL_OR_KEYWORD
    sig = inspect.Signature(
        [inspect.Parameter("self", pok)]
        + [
            inspect.Parameter(name, pok, default=inspect.Parameter.empty if d is REQUIRED else d)
            for name, d in spec.params
        ]
    )

    def method(self: OkxAPI, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            bound = sig.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{spec.cls}.{spec.name}(): {exc}") from None
        bound.apply_defaults()
        return self._request(spec.http, spec.path, spec.build(bound.arguments))

    method.__signature__ = sig  # type: ignore[attr-defined]
    method.__name__ = spec.name
    method.__qualname__ = f"{spec.cls}.{spec.name}"
    method.__doc__ = (
        f"python-okx's ``{spec.cls}.{spec.name}``: ``{spec.http} {spec.path}``.\n\n"
        "Returns OKX's envelope dict (an OKX error code included). Raises TypeError for "
        "wrong arguments, ValidationError for bad input (nothing sent), RequestStateError "
        "when no answer came. Thread-safe."
    )
    return method


def _build() -> dict[str, dict[str, type[OkxAPI]]]:
    """Classes by module (``"Trade"``, ``"Finance.Savings"``) and name, from the table."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in SURFACE.methods:
        out.setdefault(spec.module, {}).setdefault(spec.cls, {})[spec.name] = _method(spec)
    classes: dict[str, dict[str, type[OkxAPI]]] = {}
    for module, by_cls in out.items():
        for cls_name, methods in by_cls.items():
            ns: dict[str, Any] = {
                **methods,
                "__module__": f"{__name__}.{module}",
                "__qualname__": cls_name,
                "__doc__": f"python-okx's ``okx.{module}.{cls_name}`` through okx_sync "
                f"({len(methods)} methods; see :class:`OkxAPI`).",
            }
            classes.setdefault(module, {})[cls_name] = type(cls_name, (OkxAPI,), ns)
    return classes


def _install(classes: dict[str, dict[str, type[OkxAPI]]]) -> None:
    """Make ``okx_sync.compat.okx.Trade`` (and ``.Finance.Savings``...) importable modules."""
    this = sys.modules[__name__]
    for module, by_cls in sorted(classes.items()):
        parent, full = this, __name__
        parts = module.split(".")
        for i, part in enumerate(parts):
            full = f"{full}.{part}"
            mod = sys.modules.get(full)
            if mod is None:
                mod = types.ModuleType(full, f"python-okx's ``okx.{'.'.join(parts[: i + 1])}``.")
                if i < len(parts) - 1:
                    mod.__path__ = []  # a package: it holds modules
                sys.modules[full] = mod
                setattr(parent, part, mod)
            parent = mod
        for cls_name, cls in by_cls.items():
            setattr(parent, cls_name, cls)


_CLASSES = _build()
API_CLASSES: dict[str, type[OkxAPI]] = {
    f"{module}.{name}": cls for module, by in _CLASSES.items() for name, cls in by.items()
}
"""Every class by ``"Module.ClassName"`` (``"Trade.TradeAPI"``, ``"Finance.Savings.SavingsAPI"``...)."""
_install(_CLASSES)
