"""The simulator's spread (Nitro Spread) order desk: resting spread orders per account.

A spread is named ``LEG1_LEG2`` (``BTC-USDT_BTC-USDT-SWAP``) where both legs are
instruments of the exchange. Orders rest until amended or cancelled (there is no
spread matching engine: the desk answers the ``sprd-*`` WebSocket ops of the business
URL and keeps their state). Each method returns the reply items OKX's docs show
(``ordId``, ``clOrdId``, ``tag``, ``sCode``, ``sMsg``; ``reqId`` on amends) and records
the changed orders for the ``sprd-orders`` channel (``SpreadDesk.changes``).

Item codes: 51000 (a bad parameter: unknown ``sprdId``, no id, non-positive size), 51016
(``clOrdId`` already live), 51400 (cancel: no such order), 51401 / 51402 (cancel: already
canceled / filled), 51503 (amend: no live order).

Thread safety: every method takes the desk's lock.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["SpreadDesk"]


def _num(value: Any) -> Decimal | None:
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return out if out.is_finite() else None


class SpreadDesk:
    """Spread orders of every account (see the module docstring).

    ``known(inst_id)`` says whether a leg instrument exists; ``now_ms()`` the exchange
    time for ``cTime``/``uTime``.
    """

    def __init__(self, known: Callable[[str], bool], now_ms: Callable[[], int]) -> None:
        self._known = known
        self._now_ms = now_ms
        self._lock = threading.Lock()
        self._ids = itertools.count(7_000_000_001)
        #: uid -> ordId -> the order as OKX shows it (``sprd-orders`` fields).
        self.orders: dict[str, dict[str, dict[str, str]]] = {}

    def _spread_ok(self, sprd_id: str) -> bool:
        legs = sprd_id.split("_")
        return len(legs) == 2 and all(leg and self._known(leg) for leg in legs)

    def _find(self, uid: str, item: Mapping[str, Any]) -> dict[str, str] | None:
        book = self.orders.get(uid, {})
        if item.get("ordId"):
            return book.get(str(item["ordId"]))
        cl = str(item.get("clOrdId") or "")
        live = [o for o in book.values() if cl and o["clOrdId"] == cl and o["state"] == "live"]
        return live[0] if live else None

    @staticmethod
    def _ack(item: Mapping[str, Any], order: Mapping[str, str] | None, code: str, msg: str):
        return {
            "clOrdId": str((order or item).get("clOrdId") or ""),
            "ordId": str((order or {}).get("ordId") or item.get("ordId") or ""),
            "tag": str((order or item).get("tag") or ""),
            "sCode": code,
            "sMsg": msg,
        }

    def place(self, uid: str, item: Mapping[str, Any]) -> tuple[dict[str, str], list[dict]]:
        """Place one spread order; ``(reply item, changed orders)``."""
        sprd_id = str(item.get("sprdId") or "")
        px, sz = _num(item.get("px")), _num(item.get("sz"))
        side, ord_type = item.get("side"), item.get("ordType")
        if not self._spread_ok(sprd_id):
            return self._ack(item, None, "51000", "Parameter sprdId error"), []
        if side not in ("buy", "sell") or ord_type not in ("limit", "post_only", "ioc", "market"):
            return self._ack(item, None, "51000", "Parameter side or ordType error"), []
        if sz is None or sz <= 0 or (ord_type != "market" and px is None):
            return self._ack(item, None, "51000", "Parameter sz or px error"), []
        with self._lock:
            cl = str(item.get("clOrdId") or "")
            if cl and self._find(uid, {"clOrdId": cl}) is not None:
                return self._ack(item, None, "51016", "Duplicated clOrdId"), []
            now = str(self._now_ms())
            order = {
                "sprdId": sprd_id,
                "ordId": str(next(self._ids)),
                "clOrdId": cl,
                "tag": str(item.get("tag") or ""),
                "px": str(item.get("px") or ""),
                "sz": str(item.get("sz")),
                "ordType": str(ord_type),
                "side": str(side),
                "fillSz": "0",
                "accFillSz": "0",
                "state": "live",
                "cTime": now,
                "uTime": now,
            }
            self.orders.setdefault(uid, {})[order["ordId"]] = order
            return self._ack(item, order, "0", ""), [dict(order)]

    def amend(self, uid: str, item: Mapping[str, Any]) -> tuple[dict[str, str], list[dict]]:
        """Amend one live spread order (``newSz``/``newPx``); ``(reply item, changed)``."""
        with self._lock:
            order = self._find(uid, item)
            ack: dict[str, str]
            if order is None or order["state"] != "live":
                ack = self._ack(item, order, "51503", "Order does not exist or is not live")
                return {**ack, "reqId": str(item.get("reqId") or "")}, []
            new_sz, new_px = _num(item.get("newSz")), _num(item.get("newPx"))
            if (new_sz is None and new_px is None) or (new_sz is not None and new_sz <= 0):
                ack = self._ack(item, order, "51000", "Parameter newSz or newPx error")
                return {**ack, "reqId": str(item.get("reqId") or "")}, []
            if new_sz is not None:
                order["sz"] = str(item["newSz"])
            if new_px is not None:
                order["px"] = str(item["newPx"])
            order["uTime"] = str(self._now_ms())
            ack = self._ack(item, order, "0", "")
            return {**ack, "reqId": str(item.get("reqId") or "")}, [dict(order)]

    def cancel(self, uid: str, item: Mapping[str, Any]) -> tuple[dict[str, str], list[dict]]:
        """Cancel one spread order; ``(reply item, changed)``."""
        with self._lock:
            order = self._find(uid, item)
            if order is None:
                return self._ack(item, None, "51400", "Order does not exist"), []
            if order["state"] != "live":
                code = "51401" if order["state"] == "canceled" else "51402"
                return self._ack(item, order, code, f"Order already {order['state']}"), []
            order["state"] = "canceled"
            order["uTime"] = str(self._now_ms())
            return self._ack(item, order, "0", ""), [dict(order)]

    def mass_cancel(self, uid: str, sprd_id: str = "") -> list[dict]:
        """Cancel every live order of ``uid`` (of ``sprd_id`` when given); the changed."""
        with self._lock:
            now = str(self._now_ms())
            changed = []
            for order in self.orders.get(uid, {}).values():
                if order["state"] == "live" and (not sprd_id or order["sprdId"] == sprd_id):
                    order["state"] = "canceled"
                    order["uTime"] = now
                    changed.append(dict(order))
            return changed

    def live(self, uid: str, sprd_id: str = "") -> list[dict[str, str]]:
        """Copies of the live orders of ``uid`` (of ``sprd_id`` when given), oldest first."""
        with self._lock:
            return [
                dict(o)
                for o in self.orders.get(uid, {}).values()
                if o["state"] == "live" and (not sprd_id or o["sprdId"] == sprd_id)
            ]
