"""The REST cross-check of a managed order book: local best bid/ask against
``GET /api/v5/market/books``.

:func:`compare_best` is the pure verdict (:class:`CrossCheck`); :class:`BookCrossCheck`
runs it after each resync of one book on a short-lived thread
(``okx-book-<channel>-<instId>-check``), one check at a time (a check asked for
while one runs runs again once it ends), and keeps its counters for the book's
``stats().rest_check``. A failed check is logged and counted, never raised.

Thread safety: ``compare_best`` and ``CrossCheck`` are pure; ``BookCrossCheck``'s
methods may be called from any thread (it shares the book's lock).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from ..book import OrderBookStore
from ..errors import ValidationError
from ..models.market import BookLevel

__all__ = ["BookCrossCheck", "CrossCheck", "check_rest_source", "compare_best"]

log = logging.getLogger("okx_sync.ws.book")


@attrs.frozen(kw_only=True)
class CrossCheck:
    """One REST cross-check: local best bid/ask against ``GET /api/v5/market/books``.

    Prices are ``Decimal`` (None for an empty side); ``bid_diff``/``ask_diff``
    the relative differences ``|rest - local| / local`` (None when a side is
    empty on either end); ``tolerance`` the one applied (0 when both carried
    the same ``seqId``: they must then be equal); ``ok`` the verdict.
    Thread safety: immutable.
    """

    ok: bool
    local_seq_id: int | None
    rest_seq_id: int | None
    local_bid: Decimal | None
    local_ask: Decimal | None
    rest_bid: Decimal | None
    rest_ask: Decimal | None
    bid_diff: float | None
    ask_diff: float | None
    tolerance: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: prices as strings."""
        out = attrs.asdict(self)
        for key in ("local_bid", "local_ask", "rest_bid", "rest_ask"):
            if out[key] is not None:
                out[key] = str(out[key])
        return out


def _rel_diff(local: Decimal | None, rest: Decimal | None) -> float | None:
    if local is None or rest is None:
        return None
    if local == rest:
        return 0.0
    if not local:
        return float("inf")
    return float(abs(rest - local) / abs(local))


def compare_best(
    local: tuple[int | None, Decimal | None, Decimal | None],
    rest: tuple[int | None, Decimal | None, Decimal | None],
    tolerance: float,
) -> CrossCheck:
    """Compare ``(seq_id, best_bid_px, best_ask_px)`` of the local book and of REST.

    Same ``seq_id`` on both: the prices must be equal. Otherwise each side's
    relative difference must be at most ``tolerance``; a side empty on one
    end only is a mismatch. Pure.
    """
    lseq, lbid, lask = local
    rseq, rbid, rask = rest
    tol = 0.0 if lseq is not None and lseq == rseq else float(tolerance)
    bid_diff = _rel_diff(lbid, rbid)
    ask_diff = _rel_diff(lask, rask)
    ok = (lbid is None) == (rbid is None) and (lask is None) == (rask is None)
    ok = ok and all(d is None or d <= tol for d in (bid_diff, ask_diff))
    return CrossCheck(
        ok=ok,
        local_seq_id=lseq,
        rest_seq_id=rseq,
        local_bid=lbid,
        local_ask=lask,
        rest_bid=rbid,
        rest_ask=rask,
        bid_diff=bid_diff,
        ask_diff=ask_diff,
        tolerance=tol,
    )


def _px(level: BookLevel | None) -> Decimal | None:
    """Price of a level (None for an empty side)."""
    return None if level is None else level.px


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def check_rest_source(rest_check: Any, *, spread: bool) -> None:
    """Raise ``ValidationError`` unless ``rest_check`` is None or has
    ``market.get_order_book`` (an ``okx_sync.Client``), and the book is no spread book
    (``GET /api/v5/market/books`` has none)."""
    if rest_check is not None:
        if spread:
            raise ValidationError("rest_check: GET /api/v5/market/books has no spread books")
        if not callable(getattr(getattr(rest_check, "market", None), "get_order_book", None)):
            raise ValidationError(
                "rest_check needs an object with market.get_order_book (an okx_sync.Client)"
            )


class BookCrossCheck:
    """Cross-checks one managed book's best bid/ask with REST after each resync (module doc).

    ``rest`` has ``market.get_order_book(inst_id=, sz=)`` (an ``okx_sync.Client``; None:
    the book has no cross-check and never starts one);
    ``tolerance`` is :func:`compare_best`'s; ``in_sync()`` tells whether the book
    still holds its synced store; ``active()`` (called with ``cond`` held) whether
    the book's threads may run; ``thread_name`` names the check thread
    (``-check`` appended). Raises nothing.
    Thread safety: any thread; ``counters`` with ``cond`` held.
    """

    def __init__(
        self,
        rest: Any,
        store: OrderBookStore,
        *,
        tolerance: float,
        cond: threading.Condition,
        in_sync: Callable[[], bool],
        active: Callable[[], bool],
        thread_name: str,
    ) -> None:
        self._rest = rest
        self._store = store
        self._channel = store.channel
        self._inst_id = store.inst_id
        self._tolerance = tolerance
        self._cond = cond
        self._in_sync = in_sync
        self._active = active
        self._thread_name = thread_name
        self._check_thread: threading.Thread | None = None
        self._check_again = False
        self._checked = 0
        self._mismatches = 0
        self._check_errors = 0
        self._last_check: CrossCheck | None = None
        self._last_check_error = ""

    @property
    def thread(self) -> threading.Thread | None:
        """The check thread last started (to join on close), None before the first."""
        return self._check_thread

    def counters(self) -> dict[str, Any]:
        """``enabled`` (a ``rest`` was given), ``checked``, ``mismatches``, ``errors``, ``last_difference`` (a
        :meth:`CrossCheck.to_dict` or None) and ``last_error``. ``cond`` held."""
        last = self._last_check
        return {
            "enabled": self._rest is not None,
            "checked": self._checked,
            "mismatches": self._mismatches,
            "errors": self._check_errors,
            "last_difference": None if last is None else last.to_dict(),
            "last_error": self._last_check_error,
        }

    def start(self) -> None:
        """Start a check now, or once the running one ends (no-op when not active)."""
        with self._cond:
            if not self._active():
                return
            if self._check_thread is not None and self._check_thread.is_alive():
                self._check_again = True
                return
            thread = threading.Thread(
                target=self._check_loop, name=f"{self._thread_name}-check", daemon=True
            )
            self._check_thread = thread
        thread.start()

    def _check_loop(self) -> None:
        while True:
            self._rest_check()
            with self._cond:
                if not self._active() or not self._check_again:
                    return
                self._check_again = False

    def _rest_check(self) -> None:
        """Compare best bid/ask with ``GET /api/v5/market/books`` (the check thread)."""
        try:
            book = self._rest.market.get_order_book(inst_id=self._inst_id, sz=1)
            rest = (
                getattr(book, "seq_id", None),
                _px(getattr(book, "best_bid", None)),
                _px(getattr(book, "best_ask", None)),
            )
        except Exception as exc:  # any failure of the check is reported, never raised
            with self._cond:
                self._check_errors += 1
                self._last_check_error = _describe(exc)
            log.warning(
                "order book %s %s: REST cross-check failed: %s",
                self._channel,
                self._inst_id,
                _describe(exc),
                extra={"channel": self._channel, "inst_id": self._inst_id, "error": _describe(exc)},
            )
            return
        snap = self._store.snapshot(1)
        if not self._in_sync() or (snap.seq_id is None and not snap.bids and not snap.asks):
            return  # lost sync again meanwhile (the store was reset): the next resync checks
        local = (snap.seq_id, _px(snap.best_bid), _px(snap.best_ask))
        result = compare_best(local, rest, self._tolerance)
        with self._cond:
            self._checked += 1
            self._last_check = result
            if not result.ok:
                self._mismatches += 1
        extra = {"channel": self._channel, "inst_id": self._inst_id, **result.to_dict()}
        log.log(
            logging.INFO if result.ok else logging.WARNING,
            "order book %s %s: REST cross-check %s: local seqId %s bid %s ask %s, "
            "REST seqId %s bid %s ask %s (tolerance %g)",
            self._channel,
            self._inst_id,
            "ok" if result.ok else "MISMATCH",
            result.local_seq_id,
            result.local_bid,
            result.local_ask,
            result.rest_seq_id,
            result.rest_bid,
            result.rest_ask,
            result.tolerance,
            extra=extra,
        )
