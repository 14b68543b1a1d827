"""The loopback control endpoint: drive a running simulator over HTTP (e.g. from a drill
in another process or from ``okx-sync sim``).

Routes (JSON in, JSON out; ``{"ok": false, "error": ...}`` with HTTP 400 on misuse):

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

    def __init__(self, sim: Any) -> None:  # the Simulator (typed Any: no import cycle)
        self.sim = sim

    @staticmethod
    def _reply(status: int, payload: Any) -> RestResponse:
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        return RestResponse(status, body, (("Content-Type", "application/json"),))

    def handle(self, req: RestRequest) -> RestResponse:
        """Answer one control request."""
        path = req.target.split("?", 1)[0].rstrip("/") or "/"
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
