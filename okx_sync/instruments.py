"""Instrument rules: a thread-safe instruments cache, order px/sz validation, rounding.

- :class:`InstrumentCache` keeps ``GET /api/v5/public/instruments`` results per
  instrument type (per instrument family for OPTION) in a ``cachetools.TTLCache``;
  a lookup that misses or has expired fetches on demand. It also maps ``instId`` to
  ``instIdCode`` for WebSocket order entry (:meth:`InstrumentCache.inst_id_code`).
- :func:`validate_order` / :func:`validate_amend` check a price against ``tickSz`` and a
  size against ``lotSz`` / ``minSz`` / ``maxLmtSz`` / ``maxMktSz`` with ``Decimal``
  arithmetic and raise :class:`~okx_sync.errors.InstrumentRuleError` naming the rule.
- :func:`round_price` / :func:`round_size` snap a value onto the instrument's grid.

The cache does no I/O itself: it is given a ``fetch(inst_type, inst_family)`` function
(the client passes one that calls the public instruments endpoint through its REST
core). Everything except :class:`InstrumentCache` is pure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

import cachetools

from .clock import Clock, SystemClock
from .errors import InstrumentRuleError, ValidationError
from .models.instrument import (
    Instrument,
    check_min_size,
    exact_context,
    fmt_decimal,
    snap_to_step,
)
from .validators import count, order_number, seconds

__all__ = [
    "InstrumentCache",
    "FetchInstruments",
    "inst_type_of",
    "inst_family_of",
    "to_decimal",
    "validate_order",
    "validate_amend",
    "validate_order_params",
    "round_price",
    "round_size",
    "LIMIT_ORDER_TYPES",
]

FetchInstruments = Callable[[str, "str | None"], Sequence[Instrument]]
"""``fetch(inst_type, inst_family)`` -> the instruments of that type (and family)."""

#: Order types that carry a limit price (px is checked against tickSz, sz against maxLmtSz).
LIMIT_ORDER_TYPES = frozenset(
    {"limit", "post_only", "fok", "ioc", "mmp", "mmp_and_post_only", "elp"}
)


def inst_type_of(inst_id: str) -> str:
    """The instrument type an instId names: ``BTC-USDT-SWAP`` -> SWAP,
    ``BTC-USD-241227`` -> FUTURES, ``BTC-USD-241227-90000-C`` -> OPTION, else SPOT.

    MARGIN pairs share their SPOT instId; their rules are the SPOT rules. Pure.
    """
    parts = inst_id.split("-")
    if parts[-1] == "SWAP":
        return "SWAP"
    if len(parts) == 5 and parts[-1] in ("C", "P"):
        return "OPTION"
    if len(parts) == 3 and parts[-1].isdigit():
        return "FUTURES"
    return "SPOT"


def inst_family_of(inst_id: str) -> str | None:
    """The instrument family of a derivative instId (``BTC-USD-...`` -> ``BTC-USD``),
    None for SPOT. Pure."""
    parts = inst_id.split("-")
    if inst_type_of(inst_id) == "SPOT" or len(parts) < 3:
        return None
    return f"{parts[0]}-{parts[1]}"


def to_decimal(value: Any, *, what: str) -> Decimal:
    """``value`` (Decimal, str or int) as a finite, bounded Decimal
    (:func:`okx_sync.validators.order_number`).

    Raises ValidationError for a float (inexact), a bool, a non-number, a non-finite
    value or one out of range (``1e30``: more than 20 digits before or after the point).
    """
    return order_number(value, name=what)


_exact = exact_context
_fmt = fmt_decimal


def _check_multiple(
    inst: Instrument, value: Decimal, step: Decimal | None, rule: str, what: str
) -> None:
    if step is None or step <= 0:
        return
    if _exact().remainder(value, step) != 0:
        raise InstrumentRuleError(
            f"{inst.inst_id}: {what} {_fmt(value)} is not a multiple of {rule} {_fmt(step)} "
            f"(instrument rule {rule})",
            inst_id=inst.inst_id or "",
            rule=rule,
            value=_fmt(value),
            limit=_fmt(step),
        )


_check_min = check_min_size


def _check_max(inst: Instrument, sz: Decimal, limit: Decimal | None, rule: str) -> None:
    if limit is not None and limit > 0 and sz > limit:
        raise InstrumentRuleError(
            f"{inst.inst_id}: size {_fmt(sz)} is above {rule} {_fmt(limit)} "
            f"(instrument rule {rule})",
            inst_id=inst.inst_id or "",
            rule=rule,
            value=_fmt(sz),
            limit=_fmt(limit),
        )


def _size_in_quote(
    inst: Instrument, ord_type: str, side: str | None, td_mode: str | None, tgt_ccy: str | None
) -> bool:
    """True when a SPOT market order's sz is in quote currency (OKX default for buys)."""
    if (inst.inst_type or inst_type_of(inst.inst_id or "")) not in ("SPOT", "MARGIN"):
        return False
    if ord_type != "market" or td_mode not in (None, "cash", "spot_isolated"):
        return False
    if tgt_ccy is not None:
        return tgt_ccy == "quote_ccy"
    return side == "buy"


def validate_order(
    inst: Instrument,
    *,
    px: Any = None,
    sz: Any = None,
    ord_type: str | None = None,
    side: str | None = None,
    td_mode: str | None = None,
    tgt_ccy: str | None = None,
) -> None:
    """Check one new order's price and size against the instrument's rules.

    - ``px`` (when given; market-like orders have none) must be > 0 and a multiple of
      ``tickSz`` (rule ``tickSz``). For OPTION, ``tickSz`` is the smallest tick of the
      tick bands, so a price passing here may still be refused by OKX in a wider band.
    - ``sz`` must be a multiple of ``lotSz`` (``lotSz``), at least ``minSz`` (``minSz``)
      and at most ``maxLmtSz`` for limit-type orders or ``maxMktSz`` for derivative
      market orders. A SPOT market order whose size is in quote currency (a buy without
      ``tgt_ccy="base_ccy"``) is not checked against these base-currency rules.

    Raises InstrumentRuleError (a ValidationError) naming the rule; ValidationError
    for a value that is not a number. Pure.
    """
    otype = ord_type or ("limit" if px is not None else "market")
    if px is not None:
        p = to_decimal(px, what=f"{inst.inst_id} px")
        if p <= 0 and (inst.inst_type or "") != "OPTION":
            raise InstrumentRuleError(
                f"{inst.inst_id}: price {_fmt(p)} must be positive (instrument rule tickSz)",
                inst_id=inst.inst_id or "",
                rule="tickSz",
                value=_fmt(p),
                limit=_fmt(inst.tick_sz),
            )
        _check_multiple(inst, p, inst.tick_sz, "tickSz", "price")
    if sz is None:
        return
    s = to_decimal(sz, what=f"{inst.inst_id} sz")
    if s <= 0:
        raise InstrumentRuleError(
            f"{inst.inst_id}: size {_fmt(s)} must be positive (instrument rule minSz)",
            inst_id=inst.inst_id or "",
            rule="minSz",
            value=_fmt(s),
            limit=_fmt(inst.min_sz),
        )
    if _size_in_quote(inst, otype, side, td_mode, tgt_ccy):
        return
    _check_multiple(inst, s, inst.lot_sz, "lotSz", "size")
    _check_min(inst, s)
    if otype in LIMIT_ORDER_TYPES or px is not None:
        _check_max(inst, s, inst.max_lmt_sz, "maxLmtSz")
    elif otype == "market" and (inst.inst_type or "") not in ("SPOT", "MARGIN"):
        _check_max(inst, s, inst.max_mkt_sz, "maxMktSz")


def validate_amend(inst: Instrument, *, new_px: Any = None, new_sz: Any = None) -> None:
    """Check an amendment: ``new_px`` against ``tickSz``, ``new_sz`` against ``lotSz``,
    ``minSz`` and ``maxLmtSz`` (only resting limit-type orders can be amended).

    Raises InstrumentRuleError naming the rule. Pure.
    """
    validate_order(inst, px=new_px, sz=new_sz, ord_type="limit")


def validate_order_params(
    params: Mapping[str, Any], lookup: Callable[[str], Instrument], *, amend: bool = False
) -> None:
    """Validate the OKX params of one place (or amend, ``amend=True``) request item:
    ``instId`` is looked up with ``lookup`` and ``px``/``sz`` (``newPx``/``newSz``)
    checked. Items priced with ``pxUsd``/``pxVol`` (options) have their size checked
    only. Items without ``instId`` (amend by ordId only) are not checked.

    Raises InstrumentRuleError / ValidationError; propagates ``lookup`` errors.
    """
    inst_id = params.get("instId")
    if not inst_id:
        return
    inst = lookup(str(inst_id))
    if amend:
        validate_amend(inst, new_px=params.get("newPx"), new_sz=params.get("newSz"))
        return
    validate_order(
        inst,
        px=params.get("px") if params.get("px") not in (None, "") else None,
        sz=params.get("sz") if params.get("sz") not in (None, "") else None,
        ord_type=params.get("ordType"),
        side=params.get("side"),
        td_mode=params.get("tdMode"),
        tgt_ccy=params.get("tgtCcy"),
    )


_snap = snap_to_step


def round_price(inst: Instrument, px: Any, *, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``px`` snapped onto the ``tickSz`` grid (nearest tick, halves up, by default;
    pass ``decimal.ROUND_DOWN`` / ``ROUND_UP`` for a side-safe direction).

    Raises ValidationError when ``px`` is not a number. Pure.
    """
    return _snap(to_decimal(px, what="px"), inst.tick_sz, rounding)


def round_size(inst: Instrument, sz: Any, *, rounding: str = ROUND_DOWN) -> Decimal:
    """``sz`` snapped down onto the ``lotSz`` grid (never above the wanted size by
    default; ``ROUND_UP`` / ``ROUND_HALF_UP`` available). The result may still be below
    ``minSz``. Raises ValidationError when ``sz`` is not a number. Pure."""
    return _snap(to_decimal(sz, what="sz"), inst.lot_sz, rounding)


class InstrumentCache:
    """Instruments by type (and family for OPTION), cached with a TTL, fetched on demand.

    ``fetch(inst_type, inst_family)`` is called outside the cache lock; concurrent misses
    of the same key wait for one fetch (per-key lock). ``ttl_s`` is the freshness of a
    fetched list (default 300 s); :meth:`refresh` forces a new fetch. ``clock`` gives
    the monotonic time the TTL uses (tests pass a FakeClock). Raises ValidationError
    for a ``ttl_s`` that is not a positive finite number or a ``maxsize`` not an int >= 1.

    Thread safety: every method may be called from any thread.
    """

    def __init__(
        self,
        fetch: FetchInstruments,
        *,
        ttl_s: float = 300.0,
        maxsize: int = 256,
        clock: Clock | None = None,
    ) -> None:
        seconds(ttl_s, name="ttl_s", positive=True)
        count(maxsize, name="maxsize")
        self._fetch = fetch
        self._clock = clock or SystemClock()
        self._cache: cachetools.TTLCache[tuple[str, str], dict[str, Instrument]] = (
            cachetools.TTLCache(maxsize=maxsize, ttl=ttl_s, timer=self._clock.monotonic)
        )
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._fetches = 0

    @property
    def fetch_count(self) -> int:
        """How many times ``fetch`` was called (for tests and stats)."""
        return self._fetches

    def _key(self, inst_type: str, inst_family: str | None) -> tuple[str, str]:
        return (inst_type.upper(), inst_family or "")

    def _get_or_fetch(self, key: tuple[str, str], force: bool) -> dict[str, Instrument]:
        with self._lock:
            if not force and key in self._cache:
                return self._cache[key]
            klock = self._key_locks.setdefault(key, threading.Lock())
        with klock:
            with self._lock:
                if not force and key in self._cache:
                    return self._cache[key]
            got = self._fetch(key[0], key[1] or None)
            self._fetches += 1
            table = {i.inst_id: i for i in got if i.inst_id}
            with self._lock:
                self._cache[key] = table
            return table

    def load(
        self,
        instruments: Iterable[Instrument],
        *,
        inst_type: str | None = None,
        inst_family: str | None = None,
    ) -> None:
        """Put ``instruments`` into the cache (grouped by type, or all under
        ``inst_type``/``inst_family`` when given); they expire after the TTL like
        fetched ones. Never raises."""
        groups: dict[tuple[str, str], dict[str, Instrument]] = {}
        for inst in instruments:
            t = inst_type or inst.inst_type or inst_type_of(inst.inst_id or "")
            fam = inst_family if inst_type else (inst.inst_family if t == "OPTION" else None)
            groups.setdefault(self._key(t, fam), {})[inst.inst_id or ""] = inst
        with self._lock:
            for key, table in groups.items():
                merged = dict(self._cache.get(key, {}))
                merged.update(table)
                self._cache[key] = merged

    def instruments(
        self, inst_type: str, *, inst_family: str | None = None, refresh: bool = False
    ) -> list[Instrument]:
        """All instruments of ``inst_type`` (OPTION needs ``inst_family``), from the cache
        or fetched. Raises ValidationError for OPTION without a family; propagates
        fetch errors (APIError, RequestStateError)."""
        t = inst_type.upper()
        if t == "OPTION" and not inst_family:
            raise ValidationError("instruments('OPTION') needs inst_family, e.g. 'BTC-USD'")
        fam = inst_family if t in ("OPTION", "FUTURES", "SWAP") else None
        return list(self._get_or_fetch(self._key(t, fam), refresh).values())

    def instrument(
        self, inst_id: str, *, inst_type: str | None = None, refresh: bool = False
    ) -> Instrument:
        """The instrument ``inst_id`` (type inferred from the id unless given), fetching
        its type's list on a miss or after expiry.

        Raises ValidationError when OKX does not list it; propagates fetch errors.
        """
        t = (inst_type or inst_type_of(inst_id)).upper()
        fam = inst_family_of(inst_id) if t == "OPTION" else None
        key = self._key(t, fam)
        table = self._get_or_fetch(key, refresh)
        inst = table.get(inst_id)
        if inst is None and not refresh:
            table = self._get_or_fetch(key, True)
            inst = table.get(inst_id)
        if inst is None:
            raise ValidationError(f"unknown instrument {inst_id!r} ({t}): OKX does not list it")
        return inst

    def inst_id_code(self, inst_id: str, *, inst_type: str | None = None) -> int | None:
        """The ``instIdCode`` of ``inst_id`` for WS order entry (None when OKX has not
        assigned one). Raises like :meth:`instrument`."""
        return self.instrument(inst_id, inst_type=inst_type).inst_id_code

    def refresh(self, inst_type: str | None = None) -> None:
        """Forget cached lists (all, or one type) so the next lookup fetches."""
        with self._lock:
            if inst_type is None:
                self._cache.clear()
            else:
                for key in [k for k in self._cache if k[0] == inst_type.upper()]:
                    del self._cache[key]

    def validate(self, params: Mapping[str, Any], *, amend: bool = False) -> None:
        """:func:`validate_order_params` with this cache as the lookup."""
        validate_order_params(params, self.instrument, amend=amend)

    def round_price(self, inst_id: str, px: Any, *, rounding: str = ROUND_HALF_UP) -> Decimal:
        """:func:`round_price` for ``inst_id`` (fetched on demand)."""
        return round_price(self.instrument(inst_id), px, rounding=rounding)

    def round_size(self, inst_id: str, sz: Any, *, rounding: str = ROUND_DOWN) -> Decimal:
        """:func:`round_size` for ``inst_id`` (fetched on demand)."""
        return round_size(self.instrument(inst_id), sz, rounding=rounding)
