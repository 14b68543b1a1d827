"""The REST endpoints the simulator implements: request parameters in, OKX ``data`` out.

Each handler takes a :class:`Ctx` (parsed query or JSON body, the authenticated key)
and returns a :class:`Reply`; request-level failures raise
:class:`~okx_sync.sim.exchange.SimRequestError`. The HTTP server
(:mod:`okx_sync.sim.rest`) does routing, auth, rate limits, faults and the
envelope. Order-entry replies carry per-item ``sCode`` and the top-level code
``0`` / ``1`` / ``2``.

Thread safety: handlers only call the (locked) exchange; safe from any thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from .authcheck import ApiKey
from .exchange import MAX_BATCH, Exchange, SimRequestError
from .instruments import INST_TYPES
from .numbers import fmt
from .orders import SimOrder

__all__ = ["Ctx", "Reply", "Routes", "order_envelope_code"]

_P = "/api/v5/"
NOT_EXIST = "Instrument ID, Instrument ID code or Spread ID doesn't exist."


@attrs.frozen
class Ctx:
    """One request as the handlers see it."""

    method: str
    path: str
    query: Mapping[str, str]
    body: Any
    key: ApiKey | None
    now_ms: int

    @property
    def params(self) -> Mapping[str, Any]:
        """Query parameters for GET, the JSON object body for POST."""
        if self.method == "GET":
            return self.query
        return self.body if isinstance(self.body, Mapping) else {}

    @property
    def uid(self) -> str:
        """The authenticated account's uid (private endpoints only)."""
        assert self.key is not None
        return self.key.uid


@attrs.frozen
class Reply:
    """A handler's answer: ``data`` plus, for order entry, the top-level code."""

    data: list[Any]
    code: str = "0"
    msg: str = ""
    order_entry: bool = False


def order_envelope_code(items: list[dict[str, str]]) -> tuple[str, str]:
    """Top-level ``(code, msg)`` for order-entry items: all ok / all failed / partial."""
    ok = sum(1 for i in items if i.get("sCode") == "0")
    if ok == len(items):
        return "0", ""
    if ok == 0:
        return "1", "All operations failed"
    return "2", "Bulk operation partially succeeded."


def _required(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if value in (None, ""):
        raise SimRequestError("50014", f"Parameter {name} can not be empty.", 400)
    return str(value)


def _limit(params: Mapping[str, Any], default: int, maximum: int) -> int:
    raw = params.get("limit")
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise SimRequestError("51000", "Parameter limit error", 400) from None
    if value <= 0:
        raise SimRequestError("51000", "Parameter limit error", 400)
    return min(value, maximum)


def _int_or_none(params: Mapping[str, Any], name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise SimRequestError("51000", f"Parameter {name} error", 400) from None


def _csv(params: Mapping[str, Any], name: str) -> list[str] | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    return [p for p in str(raw).split(",") if p]


def _batch_items(body: Any, code: str, msg: str, http_status: int) -> list[Mapping[str, Any]]:
    items = [body] if isinstance(body, Mapping) else body
    if not isinstance(items, list) or not items:
        raise SimRequestError("50014", "Parameter body can not be empty.", 400)
    if len(items) > MAX_BATCH:
        raise SimRequestError(code, msg, http_status)
    return items


Handler = Callable[[Ctx], Reply]


class Routes:
    """The implemented endpoints: ``table[(method, path)] -> (handler, private)``."""

    def __init__(self, exchange: Exchange, account_order_limit: Callable[[], int]) -> None:
        self.ex = exchange
        self._account_order_limit = account_order_limit
        pub, priv = False, True
        self.table: dict[tuple[str, str], tuple[Handler, bool]] = {
            ("GET", _P + "public/time"): (self.time, pub),
            ("GET", _P + "public/instruments"): (self.instruments, pub),
            ("GET", _P + "market/tickers"): (self.tickers, pub),
            ("GET", _P + "market/ticker"): (self.ticker, pub),
            ("GET", _P + "market/books"): (self.books, pub),
            ("GET", _P + "market/candles"): (self.candles, pub),
            ("GET", _P + "market/history-candles"): (self.history_candles, pub),
            ("GET", _P + "market/trades"): (self.trades, pub),
            ("GET", _P + "account/balance"): (self.balance, priv),
            ("GET", _P + "account/positions"): (self.positions, priv),
            ("GET", _P + "account/config"): (self.config, priv),
            ("POST", _P + "account/set-leverage"): (self.set_leverage, priv),
            ("POST", _P + "trade/order"): (self.place, priv),
            ("POST", _P + "trade/batch-orders"): (self.place_batch, priv),
            ("POST", _P + "trade/cancel-order"): (self.cancel, priv),
            ("POST", _P + "trade/cancel-batch-orders"): (self.cancel_batch, priv),
            ("POST", _P + "trade/amend-order"): (self.amend, priv),
            ("POST", _P + "trade/amend-batch-orders"): (self.amend_batch, priv),
            ("GET", _P + "trade/order"): (self.get_order, priv),
            ("GET", _P + "trade/orders-pending"): (self.orders_pending, priv),
            ("GET", _P + "trade/orders-history"): (self.orders_history, priv),
            ("GET", _P + "trade/orders-history-archive"): (self.orders_history, priv),
            ("GET", _P + "trade/fills"): (self.fills, priv),
            ("GET", _P + "trade/fills-history"): (self.fills, priv),
            ("POST", _P + "trade/close-position"): (self.close_position, priv),
            ("POST", _P + "trade/cancel-all-after"): (self.cancel_all_after, priv),
            ("GET", _P + "trade/account-rate-limit"): (self.account_rate_limit, priv),
            ("GET", _P + "asset/balances"): (self.asset_balances, priv),
            ("GET", _P + "asset/currencies"): (self.asset_currencies, priv),
        }
        self.paths = {path for _, path in self.table}

    # ------------------------------------------------------------------ public
    def time(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/public/time``."""
        return Reply([{"ts": str(ctx.now_ms)}])

    def _inst_filter(self, params: Mapping[str, Any], inst_type: str) -> list[Any]:
        if inst_type not in INST_TYPES:
            raise SimRequestError("51000", "Parameter instType error", 400)
        family = str(params.get("instFamily") or params.get("uly") or "")
        if inst_type == "OPTION" and not family:
            raise SimRequestError("50015", "Either parameter uly or instFamily is required", 400)
        inst_id = str(params.get("instId") or "")
        return [
            s
            for s in self.ex.specs.values()
            if s.inst_type == inst_type
            and (not family or s.inst_family == family)
            and (not inst_id or s.inst_id == inst_id)
        ]

    def instruments(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/public/instruments``."""
        inst_type = _required(ctx.params, "instType")
        return Reply([s.to_okx() for s in self._inst_filter(ctx.params, inst_type)])

    def tickers(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/market/tickers``."""
        inst_type = _required(ctx.params, "instType")
        params = dict(ctx.params)
        params.pop("instId", None)
        if inst_type == "OPTION" and not (params.get("instFamily") or params.get("uly")):
            specs = [s for s in self.ex.specs.values() if s.inst_type == "OPTION"]
        else:
            specs = self._inst_filter(params, inst_type)
        return Reply([self.ex.ticker(s.inst_id) for s in specs])

    def _inst_id(self, params: Mapping[str, Any]) -> str:
        inst_id = _required(params, "instId")
        if inst_id not in self.ex.specs:
            raise SimRequestError("51001", NOT_EXIST)
        return inst_id

    def ticker(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/market/ticker``."""
        return Reply([self.ex.ticker(self._inst_id(ctx.params))])

    def books(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/market/books``."""
        inst_id = self._inst_id(ctx.params)
        sz = _int_or_none(ctx.params, "sz") or 1
        sz = max(1, min(sz, 400))
        view = self.ex.book(inst_id)
        return Reply(
            [
                {
                    "asks": view.asks[:sz],
                    "bids": view.bids[:sz],
                    "ts": str(view.ts),
                    "seqId": view.seq_id,
                }
            ]
        )

    def _candles(self, ctx: Ctx, maximum: int) -> Reply:
        inst_id = self._inst_id(ctx.params)
        bar = str(ctx.params.get("bar") or "1m")
        rows = self.ex.candle_rows(
            inst_id,
            bar,
            _limit(ctx.params, 100, maximum),
            _int_or_none(ctx.params, "after"),
            _int_or_none(ctx.params, "before"),
        )
        return Reply(list(rows))

    def candles(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/market/candles``."""
        return self._candles(ctx, 300)

    def history_candles(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/market/history-candles``."""
        return self._candles(ctx, 100)

    def trades(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/market/trades``."""
        inst_id = self._inst_id(ctx.params)
        return Reply(list(self.ex.trades(inst_id, _limit(ctx.params, 100, 500))))

    # ------------------------------------------------------------------ account
    def balance(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/account/balance``."""
        ccys = _csv(ctx.params, "ccy")
        with self.ex.lock:
            acc = self.ex.account(ctx.uid)
            return Reply([acc.balance(ccys, self.ex.mark, self.ex.usd_price, ctx.now_ms)])

    def positions(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/account/positions``."""
        inst_type = str(ctx.params.get("instType") or "")
        inst_ids = _csv(ctx.params, "instId")
        pos_ids = _csv(ctx.params, "posId")
        with self.ex.lock:
            acc = self.ex.account(ctx.uid)
            out = []
            for pos in acc.positions.values():
                spec = pos.spec
                if pos.pos == 0:
                    continue
                if inst_type and spec.inst_type != inst_type:
                    continue
                if inst_ids and spec.inst_id not in inst_ids:
                    continue
                if pos_ids and pos.pos_id not in pos_ids:
                    continue
                usd = self.ex.usd_price(spec.settle_ccy)
                out.append(pos.to_okx(self.ex.mark(spec.inst_id), usd))
            return Reply(out)

    def config(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/account/config``."""
        assert ctx.key is not None
        return Reply(
            [
                {
                    "acctLv": "2",
                    "acctStpMode": "cancel_maker",
                    "autoLoan": False,
                    "ctIsoMode": "automatic",
                    "enableSpotBorrow": False,
                    "greeksType": "PA",
                    "ip": "",
                    "kycLv": "2",
                    "label": ctx.key.label,
                    "level": "Lv1",
                    "levelTmp": "",
                    "liquidationGear": "-1",
                    "mainUid": ctx.uid,
                    "mgnIsoMode": "automatic",
                    "opAuth": "0",
                    "perm": "read_only,trade",
                    "posMode": "net_mode",
                    "roleType": "0",
                    "spotBorrowAutoRepay": False,
                    "spotOffsetType": "",
                    "spotRoleType": "0",
                    "spotTraderInsts": [],
                    "traderInsts": [],
                    "type": "0",
                    "uid": ctx.uid,
                }
            ]
        )

    def set_leverage(self, ctx: Ctx) -> Reply:
        """``POST /api/v5/account/set-leverage``."""
        return Reply([self.ex.set_leverage(ctx.uid, ctx.params)])

    # ------------------------------------------------------------------ trade
    def _order_reply(self, items: list[dict[str, str]]) -> Reply:
        code, msg = order_envelope_code(items)
        return Reply(items, code=code, msg=msg, order_entry=True)

    def place(self, ctx: Ctx) -> Reply:
        """``POST /api/v5/trade/order``."""
        _object_body(ctx)
        return self._order_reply(self.ex.place_orders(ctx.uid, [ctx.body], source="rest"))

    def place_batch(self, ctx: Ctx) -> Reply:
        """``POST /api/v5/trade/batch-orders``."""
        items = _batch_items(
            ctx.body, "51111", f"Maximum {MAX_BATCH} orders can be placed in bulk.", 200
        )
        return self._order_reply(self.ex.place_orders(ctx.uid, items, source="rest"))

    def cancel(self, ctx: Ctx) -> Reply:
        """``POST /api/v5/trade/cancel-order``."""
        _object_body(ctx)
        return self._order_reply(self.ex.cancel_orders(ctx.uid, [ctx.body]))

    def cancel_batch(self, ctx: Ctx) -> Reply:
        """``POST /api/v5/trade/cancel-batch-orders``."""
        items = _batch_items(
            ctx.body, "51406", f"Canceled - order count exceeds the limit {MAX_BATCH}.", 400
        )
        return self._order_reply(self.ex.cancel_orders(ctx.uid, items))

    def amend(self, ctx: Ctx) -> Reply:
        """``POST /api/v5/trade/amend-order``."""
        _object_body(ctx)
        return self._order_reply(self.ex.amend_orders(ctx.uid, [ctx.body]))

    def amend_batch(self, ctx: Ctx) -> Reply:
        """``POST /api/v5/trade/amend-batch-orders``."""
        items = _batch_items(ctx.body, "51501", f"Maximum {MAX_BATCH} orders can be modified.", 400)
        return self._order_reply(self.ex.amend_orders(ctx.uid, items))

    def get_order(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/trade/order``."""
        params = ctx.params
        inst_id = self._inst_id(params)
        ord_id = str(params.get("ordId") or "")
        cl = str(params.get("clOrdId") or "")
        if not ord_id and not cl:
            raise SimRequestError("50015", "Either parameter ordId or clOrdId is required", 400)
        with self.ex.lock:
            order = self.ex._find(ctx.uid, inst_id, ord_id, cl)
            if order is None:
                raise SimRequestError("51603", "Order does not exist")
            return Reply([order.to_okx()])

    def _order_list(self, ctx: Ctx, live: bool) -> Reply:
        params = ctx.params
        inst_type = str(params.get("instType") or "")
        if not live and not inst_type:
            raise SimRequestError("50014", "Parameter instType can not be empty.", 400)
        family = str(params.get("instFamily") or params.get("uly") or "")
        inst_id = str(params.get("instId") or "")
        ord_type = _csv(params, "ordType")
        state = str(params.get("state") or "")
        after = _int_or_none(params, "after")
        before = _int_or_none(params, "before")
        limit = _limit(params, 100, 100)
        with self.ex.lock:
            picked: list[SimOrder] = []
            for o in self.ex.orders_by_id.values():
                spec = o.spec
                if o.uid != ctx.uid or o.is_live != live:
                    continue
                if inst_type and spec.inst_type != inst_type:
                    continue
                if family and spec.inst_family != family:
                    continue
                if inst_id and spec.inst_id != inst_id:
                    continue
                if ord_type and o.ord_type not in ord_type:
                    continue
                if state and o.state != state:
                    continue
                oid = int(o.ord_id)
                if after is not None and oid >= after:
                    continue
                if before is not None and oid <= before:
                    continue
                picked.append(o)
            picked.sort(key=lambda o: int(o.ord_id), reverse=True)
            return Reply([o.to_okx() for o in picked[:limit]])

    def orders_pending(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/trade/orders-pending``."""
        return self._order_list(ctx, live=True)

    def orders_history(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/trade/orders-history``, ``GET /api/v5/trade/orders-history-archive``."""
        return self._order_list(ctx, live=False)

    def fills(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/trade/fills``, ``GET /api/v5/trade/fills-history``."""
        params = ctx.params
        inst_type = str(params.get("instType") or "")
        inst_id = str(params.get("instId") or "")
        ord_id = str(params.get("ordId") or "")
        after = _int_or_none(params, "after")
        before = _int_or_none(params, "before")
        limit = _limit(params, 100, 100)
        with self.ex.lock:
            acc = self.ex.account(ctx.uid)
            out = []
            for f in reversed(acc.fills):
                if inst_type and f.spec.inst_type != inst_type:
                    continue
                if inst_id and f.spec.inst_id != inst_id:
                    continue
                if ord_id and f.ord_id != ord_id:
                    continue
                bill = int(f.bill_id)
                if after is not None and bill >= after:
                    continue
                if before is not None and bill <= before:
                    continue
                out.append(f.to_okx())
                if len(out) >= limit:
                    break
            return Reply(out)

    def close_position(self, ctx: Ctx) -> Reply:
        """``POST /api/v5/trade/close-position``."""
        _object_body(ctx)
        return Reply([self.ex.close_position(ctx.uid, ctx.params)])

    def cancel_all_after(self, ctx: Ctx) -> Reply:
        """``POST /api/v5/trade/cancel-all-after``."""
        _object_body(ctx)
        raw = _required(ctx.params, "timeOut")
        try:
            timeout = int(raw)
        except ValueError:
            raise SimRequestError("51000", "Parameter timeOut error", 400) from None
        if timeout != 0 and not 10 <= timeout <= 120:
            raise SimRequestError("51000", "Parameter timeOut error", 400)
        tag = str(ctx.params.get("tag") or "")
        return Reply([self.ex.set_cancel_all_after(ctx.uid, timeout, tag)])

    def account_rate_limit(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/trade/account-rate-limit``."""
        return Reply(
            [
                {
                    "accRateLimit": str(self._account_order_limit()),
                    "fillRatio": "",
                    "mainFillRatio": "",
                    "nextAccRateLimit": "",
                    "ts": str(ctx.now_ms),
                }
            ]
        )

    # ------------------------------------------------------------------ funding
    def asset_balances(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/asset/balances``."""
        ccys = _csv(ctx.params, "ccy")
        with self.ex.lock:
            acc = self.ex.account(ctx.uid)
            out = []
            for ccy in sorted(acc.funding):
                if ccys and ccy not in ccys:
                    continue
                bal = acc.funding[ccy]
                out.append(
                    {
                        "availBal": fmt(bal),
                        "bal": fmt(bal),
                        "ccy": ccy,
                        "frozenBal": "0",
                    }
                )
            return Reply(out)

    def asset_currencies(self, ctx: Ctx) -> Reply:
        """``GET /api/v5/asset/currencies``."""
        wanted = _csv(ctx.params, "ccy")
        ccys: set[str] = set()
        for s in self.ex.specs.values():
            ccys.update(c for c in (s.base_ccy, s.quote_ccy, s.settle_ccy) if c)
        out = [_currency(c) for c in sorted(ccys) if not wanted or c in wanted]
        return Reply(out)


def _object_body(ctx: Ctx) -> None:
    if not isinstance(ctx.body, Mapping):
        raise SimRequestError("50002", "JSON syntax error", 400)


_NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum", "USDT": "Tether", "USDC": "USD Coin"}
_CHAINS = {"BTC": "BTC-Bitcoin", "ETH": "ETH-ERC20", "USDT": "USDT-TRC20", "USDC": "USDC-ERC20"}


def _currency(ccy: str) -> dict[str, Any]:
    small = Decimal("0.0001") if ccy in ("BTC", "ETH") else Decimal("1")
    return {
        "burningFeeRate": "",
        "canDep": True,
        "canInternal": True,
        "canWd": True,
        "ccy": ccy,
        "chain": _CHAINS.get(ccy, f"{ccy}-{ccy}"),
        "ctAddr": "",
        "depEstOpenTime": "",
        "depQuotaFixed": "",
        "depQuoteDailyLayer2": "",
        "fee": "",
        "logoLink": "",
        "mainNet": ccy in ("BTC",),
        "maxFee": str(small * 2),
        "maxFeeForCtAddr": "",
        "maxWd": "1000000",
        "minDep": str(small),
        "minDepArrivalConfirm": "2",
        "minFee": str(small),
        "minFeeForCtAddr": "",
        "minWd": str(small * 10),
        "minWdUnlockConfirm": "4",
        "name": _NAMES.get(ccy, ccy),
        "needTag": False,
        "usedDepQuotaFixed": "",
        "usedWdQuota": "0",
        "wdEstOpenTime": "",
        "wdQuota": "10000000",
        "wdTickSz": "8" if ccy in ("BTC", "ETH") else "6",
    }
