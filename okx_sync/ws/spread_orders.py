"""Spread (Nitro Spread) order entry over the business WebSocket: the ``sprd-*`` ops.

The four ops of OKX's spread trading WebSocket API (``/ws/v5/business``, after login),
each the twin of a REST endpoint whose rate bucket it draws on (``Endpoint.ws_op`` in
:mod:`okx_sync.rest.endpoints`):

- ``sprd-order`` (``POST /api/v5/sprd/order``): ``sprd_id``, ``side``, ``ord_type``
  (``limit``/``post_only``/``ioc``/``market``), ``sz``, ``px``, optional ``cl_ord_id``,
  ``tag``; answered with one ack (``ordId``, ``clOrdId``, ``tag``, ``sCode``, ``sMsg``).
- ``sprd-amend-order`` (``POST /api/v5/sprd/amend-order``): exactly one of ``ord_id`` /
  ``cl_ord_id``, ``new_sz`` and/or ``new_px``, optional ``req_id``.
- ``sprd-cancel-order`` (``POST /api/v5/sprd/cancel-order``): exactly one of ``ord_id`` /
  ``cl_ord_id``.
- ``sprd-mass-cancel`` (``POST /api/v5/sprd/mass-cancel``): optional ``sprd_id`` (none:
  every spread); answered with ``data: [{"result": true|false}]``.

Spread orders carry no ``instIdCode`` and no ``expTime``; they are not checked against
the instrument cache (spreads are not instruments) and do not count toward the account
new+amend limit (facts §2.3). Everything else is the path of the other WS order ops
(``OrderEntry._order``): keywords mapped by ``build_params``, safe-mode guards (place and
amend refused, cancels allowed), the request gate, an ``id``-correlated answer within
``timeout_s``, acks matched item by item (``okx_sync.rest.acks``), no answer an
outcome-unknown ``RequestStateError``.

Thread safety: every method may be called from any thread; concurrent calls are
correlated by their own ``id``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import RequestStateError
from ..models.order import OrderAck

__all__ = ["SpreadOrders", "mass_cancel_result"]

#: ``submit(method, kwargs, timeout_s, exp_time, answer)``: ``OrderEntry._order``.
Submit = Callable[..., Any]


def mass_cancel_result(op: str, code: str, msg: str, data: list[Any]) -> bool:
    """The ``result`` of a ``sprd-mass-cancel`` reply (code 0/1/2; others raised before).

    Raises ``RequestStateError(stage="ws", dispatched=True)`` when the reply carries no
    boolean ``result`` (what OKX did is then unknown: query the open spread orders). Pure.
    """
    item = data[0] if len(data) == 1 and isinstance(data[0], Mapping) else {}
    result = item.get("result")
    if isinstance(result, str) and result in ("true", "false"):
        result = result == "true"
    if code != "0" or not isinstance(result, bool):
        raise RequestStateError(
            f"WS {op}: answer code {code} {msg!r} carries no result ({data!r}); outcome unknown",
            stage="ws",
            dispatched=True,
            method="WS",
            path=op,
        )
    return result


class SpreadOrders:
    """The ``sprd-*`` ops of one ``WSClient`` (``OrderEntry.spread``; see the module docstring).

    Every method raises as ``OrderEntry.place_order``: ``ValidationError`` before
    anything is sent (bad or missing keyword, amend/cancel without exactly one of
    ``ord_id``/``cl_ord_id``, or not a business connection), ``SafeModeError`` (place and
    amend in safe mode), ``OrderError`` (OKX refused: ``sCode``/``sMsg`` on ``items``; or the
    reply did not carry exactly one item), ``APIError`` (another code, e.g. 60013 invalid
    args), ``RequestStateError`` (``stage="gate"`` not admitted; ``stage="ws"``:
    ``dispatched`` False when nothing was sent, True when no answer came within
    ``timeout_s`` — the outcome is UNKNOWN: query by ``cl_ord_id`` before re-sending).
    Thread safety: any thread.
    """

    __slots__ = ("_submit",)

    def __init__(self, submit: Submit) -> None:
        self._submit = submit

    def place(self, *, timeout_s: float | None = None, **params: Any) -> OrderAck:
        """Place one spread order (op ``sprd-order``); returns its ``OrderAck``."""
        return self._submit("spread_place_order", params, timeout_s, None)[0]

    def amend(self, *, timeout_s: float | None = None, **params: Any) -> OrderAck:
        """Amend one spread order (op ``sprd-amend-order``); ``sCode`` 0 means accepted."""
        return self._submit("spread_amend_order", params, timeout_s, None)[0]

    def cancel(self, *, timeout_s: float | None = None, **params: Any) -> OrderAck:
        """Cancel one spread order (op ``sprd-cancel-order``); the final state comes
        from the ``sprd-orders`` channel."""
        return self._submit("spread_cancel_order", params, timeout_s, None)[0]

    def mass_cancel(self, *, sprd_id: str | None = None, timeout_s: float | None = None) -> bool:
        """Cancel every open spread order, of ``sprd_id`` only when given (op
        ``sprd-mass-cancel``); returns OKX's ``result``. A reply without one raises
        ``RequestStateError(dispatched=True)`` (outcome unknown)."""
        kwargs = {"sprd_id": sprd_id}
        return bool(self._submit("spread_mass_cancel", kwargs, timeout_s, None, mass_cancel_result))
