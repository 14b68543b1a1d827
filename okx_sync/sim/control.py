"""The loopback control endpoint: drive a running simulator over HTTP (e.g. from a drill
in another process or from ``okx-sync sim``).

Every request must carry the simulator's per-run token as the first path segment
(``sim.control_url`` is ``http://127.0.0.1:PORT/<token>``; ``okx-sync sim`` prints it)
and a loopback ``Host`` header (``127.0.0.1``, ``localhost``, ``::1``, any port): a
web page the operator opens can neither guess the token nor, through DNS rebinding,
reach the endpoint under its own host name. Refused requests get HTTP 403 and
``{"ok": false, "error": ...}``; nothing is done.

Routes, below the token (JSON in, JSON out; ``{"ok": false, "error": ...}`` with HTTP 400
on misuse):

``GET  /``                      URLs (no secrets)
``GET  /state``                 ``sim.stats()``
``GET  /faults``                pending faults (``sim.faults.active()``)
``POST /faults/<name>``         call ``sim.faults.<name>(**body)`` (names in ``FAULT_NAMES``)
``POST /tick``                  ``{"n": 1}`` market-maker steps, then publish
``POST /flush``                 publish pending changes
``POST /flood``                 ``{"inst_id", "count", "channels"}`` (returns when done)
``GET  /book/<instId>``         the published book (``sim.exchange.book``)
``GET  /connections``           open WS connections

Thread safety: served by the simulator's control server threads; every call goes
through the simulator's thread-safe API.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from typing import Any

import attrs

from .faults import FAULT_NAMES
from .rest import RestRequest, RestResponse

__all__ = ["ControlApp"]

log = logging.getLogger("okx_sync.sim.control")


class ControlApp:
    """Request → response for the control endpoint (see the module docstring)."""

    def __init__(self, sim: Any, token: str) -> None:  # the Simulator (typed Any: no import cycle)
        if not token:
            raise ValueError("the control endpoint needs a token")
        self.sim = sim
        self._prefix = "/" + token

    @staticmethod
    def _reply(status: int, payload: Any) -> RestResponse:
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        return RestResponse(status, body, (("Content-Type", "application/json"),))

    def handle(self, req: RestRequest) -> RestResponse:
        """Answer one control request (403 without the token or a loopback ``Host``)."""
        path = req.target.split("?", 1)[0]
        host = _header(req.headers, "host")
        if not _loopback_host(host):
            log.warning("control: refused a request for Host %r (not loopback)", host)
            return self._reply(403, {"ok": False, "error": "Host is not loopback"})
        head, sep, rest = path[1:].partition("/")
        if not hmac.compare_digest(("/" + head).encode(), self._prefix.encode()):
            log.warning("control: refused a request without the control token")
            return self._reply(403, {"ok": False, "error": "missing or wrong control token"})
        path = ("/" + rest).rstrip("/") or "/"
        try:
            body = json.loads(req.body) if req.body.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            return self._reply(200, {"ok": True, "result": self._route(req.method, path, body)})
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            return self._reply(400, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})

    def _route(self, method: str, path: str, body: dict[str, Any]) -> Any:
        sim = self.sim
        if method == "GET" and path == "/":
            out = {"rest_url": sim.rest_url}
            if sim.hub is not None:
                out.update(
                    ws_public_url=sim.ws_public_url,
                    ws_private_url=sim.ws_private_url,
                    ws_business_url=sim.ws_business_url,
                )
            return out
        if method == "GET" and path == "/state":
            return sim.stats()
        if method == "GET" and path == "/faults":
            return sim.faults.active()
        if method == "GET" and path == "/connections":
            return sim.ws_connections()
        if method == "GET" and path.startswith("/book/"):
            return attrs.asdict(sim.exchange.book(path[len("/book/") :]))
        if method == "POST" and path.startswith("/faults/"):
            name = path[len("/faults/") :]
            if name not in FAULT_NAMES:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
            log.info("control: fault", extra={"fault": name})
            return getattr(sim.faults, name)(**body)
        if method == "POST" and path == "/tick":
            sim.tick(int(body.get("n", 1)))
            return None
        if method == "POST" and path == "/flush":
            sim.flush()
            return None
        if method == "POST" and path == "/flood":
            return sim.flood(
                str(body["inst_id"]), int(body["count"]), body.get("channels", ("books", "trades"))
            )
        raise ValueError(f"no control route {method} {path}")


def _header(headers: Any, name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return str(value)


def _loopback_host(host: str) -> bool:
    """True for a ``Host`` header naming loopback (``127.0.0.1``, ``localhost``, ``[::1]``)."""
    name = host.strip().lower()
    if name.startswith("["):  # [v6]:port
        name = name[1 : name.find("]")] if "]" in name else ""
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
