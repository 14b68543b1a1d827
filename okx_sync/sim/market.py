"""Public market history: candles built from trades (plus a generated past) and recent trades.

:class:`CandleSeries` keeps one instrument's 1-minute candles: a deterministic
random-walk history before the simulator started (so ``GET /market/candles`` has
data at once) and real candles from the simulator's trades afterwards. Larger bars
are aggregated from minutes; bars of 6H and more align to UTC+8 like OKX, the
``...utc`` variants to UTC. Thread safety: not thread-safe; the exchange lock
protects it.
"""

from __future__ import annotations

import random
from decimal import Decimal

from .instruments import InstrumentSpec
from .numbers import ZERO, fmt

__all__ = ["CandleSeries", "BARS", "bar_ms"]

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
HK_OFFSET = 8 * HOUR

# bar -> (milliseconds, offset added before flooring)
BARS: dict[str, tuple[int, int]] = {
    "1s": (1000, 0),
    "1m": (MINUTE, 0),
    "3m": (3 * MINUTE, 0),
    "5m": (5 * MINUTE, 0),
    "15m": (15 * MINUTE, 0),
    "30m": (30 * MINUTE, 0),
    "1H": (HOUR, 0),
    "2H": (2 * HOUR, 0),
    "4H": (4 * HOUR, 0),
    "6H": (6 * HOUR, HK_OFFSET),
    "12H": (12 * HOUR, HK_OFFSET),
    "1D": (DAY, HK_OFFSET),
    "2D": (2 * DAY, HK_OFFSET),
    "3D": (3 * DAY, HK_OFFSET),
    "1W": (7 * DAY, HK_OFFSET),
    "6Hutc": (6 * HOUR, 0),
    "12Hutc": (12 * HOUR, 0),
    "1Dutc": (DAY, 0),
    "2Dutc": (2 * DAY, 0),
    "3Dutc": (3 * DAY, 0),
    "1Wutc": (7 * DAY, 0),
}


def bar_ms(bar: str) -> tuple[int, int] | None:
    """``(length_ms, offset_ms)`` of an OKX bar name, or None when unsupported."""
    return BARS.get(bar)


def _bucket(ts: int, length: int, offset: int) -> int:
    # weekly bars start on Monday: the epoch was a Thursday, shift by 4 days
    shift = 4 * DAY if length == 7 * DAY else 0
    return ((ts + offset - shift) // length) * length - offset + shift


class CandleSeries:
    """1-minute OHLCV history of one instrument, aggregated on demand."""

    def __init__(
        self, spec: InstrumentSpec, rng: random.Random, now_ms: int, history_minutes: int
    ) -> None:
        self.spec = spec
        self._minutes: dict[int, list[Decimal]] = {}  # start -> [o, h, l, c, vol, volCcy, volQuote]
        self._last_minute = (now_ms // MINUTE) * MINUTE
        self._stats_key: tuple[int, int] | None = None
        self._stats_cache: list[Decimal] = []
        close = spec.start_px
        self._minutes[self._last_minute] = [close, close, close, close, ZERO, ZERO, ZERO]
        # the history is made on its first read (most simulators never read most
        # instruments' candles): from its own rng, so the same whenever that is
        self._history: tuple[random.Random, int, int] | None = (
            rng,
            history_minutes,
            self._last_minute,
        )

    def _minutes_read(self) -> dict[int, list[Decimal]]:
        """The minutes, history included (made now if not yet). Callers hold the
        exchange's lock, as for every other use of the series."""
        if self._history is not None:
            rng, count, start = self._history
            self._history = None
            history = self._generate_history(rng, count, start)
            self._minutes = {**history, **self._minutes}  # oldest first, as if made first
        return self._minutes

    def _generate_history(
        self, rng: random.Random, count: int, start: int
    ) -> dict[int, list[Decimal]]:
        spec = self.spec
        tick = spec.tick_sz
        close = spec.start_px
        unit = spec.min_sz * 10
        minutes: dict[int, list[Decimal]] = {}
        rand = rng.random
        # walk backwards in whole ticks so the newest history candle closes at start_px
        ticks: list[int] = []
        t_px = int(close / tick)
        for _ in range(count):
            ticks.append(t_px)
            t_px = max(1, t_px + int(rand() * 41) - 20)
        ticks.reverse()
        prev = ticks[0] if ticks else t_px
        multiplier = spec.multiplier
        for i, c_ticks in enumerate(ticks):
            t = start - (count - i) * MINUTE
            hi = max(prev, c_ticks) + int(rand() * 6)
            lo = max(1, min(prev, c_ticks) - int(rand() * 6))
            c = c_ticks * tick
            vol = unit * (1 + int(rand() * 500))
            quote = vol * c if spec.is_spot else vol * multiplier * c
            ccy = quote if spec.is_spot else vol * multiplier
            minutes[t] = [prev * tick, hi * tick, lo * tick, c, vol, ccy, quote]
            prev = c_ticks
        return minutes

    def _ccy_volumes(self, px: Decimal, sz: Decimal) -> tuple[Decimal, Decimal]:
        """(volCcy, volCcyQuote): quote amounts for spot; base quantity and quote for derivatives."""
        spec = self.spec
        if spec.is_spot:
            return sz * px, sz * px
        qty = sz * spec.multiplier
        return qty, qty * px

    @property
    def last_px(self) -> Decimal:
        """Close of the newest minute."""
        return self._minutes[self._last_minute][3]

    def _roll_to(self, ts: int) -> None:
        minute = (ts // MINUTE) * MINUTE
        while self._last_minute < minute:
            close = self._minutes[self._last_minute][3]
            self._last_minute += MINUTE
            self._minutes[self._last_minute] = [close, close, close, close, ZERO, ZERO, ZERO]

    def on_trade(self, ts: int, px: Decimal, sz: Decimal) -> None:
        """Fold a trade (size in contracts / base currency) into the current minute."""
        self._roll_to(ts)
        c = self._minutes[self._last_minute]
        if c[4] == 0:
            c[0] = c[1] = c[2] = px
        c[1] = max(c[1], px)
        c[2] = min(c[2], px)
        c[3] = px
        c[4] += sz
        ccy, quote = self._ccy_volumes(px, sz)
        c[5] += ccy
        c[6] += quote

    def _aggregate(self, start: int, length: int, now_ms: int) -> list[str] | None:
        minutes = self._minutes_read()
        parts = [
            minutes[t]
            for t in range(start - start % MINUTE, start + length, MINUTE)
            if t in minutes
        ]
        if not parts:
            return None
        o, c = parts[0][0], parts[-1][3]
        h = max(p[1] for p in parts)
        lo = min(p[2] for p in parts)
        vol = sum((p[4] for p in parts), ZERO)
        vccy = sum((p[5] for p in parts), ZERO)
        vq = sum((p[6] for p in parts), ZERO)
        confirm = "1" if start + length <= now_ms else "0"
        return [
            str(start),
            fmt(o),
            fmt(h),
            fmt(lo),
            fmt(c),
            fmt(vol),
            fmt(vccy.quantize(Decimal("1e-8"))),
            fmt(vq.quantize(Decimal("1e-8"))),
            confirm,
        ]

    def current(self, bar: str, now_ms: int) -> list[str] | None:
        """The bar containing ``now_ms`` (``confirm`` "0"), or None for an unknown bar."""
        spec = bar_ms(bar)
        if spec is None:
            return None
        self._roll_to(now_ms)
        length, offset = spec
        return self._aggregate(_bucket(now_ms, length, offset), length, now_ms)

    def query(
        self,
        bar: str,
        limit: int,
        now_ms: int,
        after: int | None = None,
        before: int | None = None,
    ) -> list[list[str]]:
        """Candles newest first, like ``GET /market/candles``.

        ``after``: only candles older than that ts; ``before``: only newer ones.
        Raises ``KeyError`` for an unsupported bar.
        """
        length, offset = BARS[bar]
        self._roll_to(now_ms)
        first = min(self._minutes_read())
        t = _bucket(now_ms, length, offset)
        out: list[list[str]] = []
        while t + length > first and len(out) < limit:
            if (after is None or t < after) and (before is None or t > before):
                candle = self._aggregate(t, length, now_ms)
                if candle is not None:
                    out.append(candle)
            elif before is not None and t <= before:
                break
            t -= length
        return out

    def window_stats(self, now_ms: int, span_ms: int) -> dict[str, Decimal]:
        """open/high/low/vol over the last ``span_ms`` (for 24h ticker fields)."""
        self._roll_to(now_ms)
        key = (self._last_minute, span_ms)
        cur = self._minutes[self._last_minute]
        if self._stats_key != key:
            start = self._last_minute - span_ms
            minutes = self._minutes_read()
            past = [c for t, c in minutes.items() if start <= t < self._last_minute]
            self._stats_cache = (
                [
                    past[0][0],
                    max(p[1] for p in past),
                    min(p[2] for p in past),
                    sum((p[4] for p in past), ZERO),
                    sum((p[5] for p in past), ZERO),
                ]
                if past
                else []
            )
            self._stats_key = key
        if not self._stats_cache:
            return {"open": cur[0], "high": cur[1], "low": cur[2], "vol": cur[4], "volCcy": cur[5]}
        o, h, lo, vol, vccy = self._stats_cache
        return {
            "open": o,
            "high": max(h, cur[1]),
            "low": min(lo, cur[2]),
            "vol": vol + cur[4],
            "volCcy": vccy + cur[5],
        }

    def open_at(self, ts: int) -> Decimal:
        """Open of the minute at ``ts`` (or the oldest known)."""
        minute = (ts // MINUTE) * MINUTE
        minutes = self._minutes_read()
        if minute in minutes:
            return minutes[minute][0]
        return minutes[min(minutes)][0]
