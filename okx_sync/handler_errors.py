"""How a user callback's exceptions are logged: one traceback, then a summary per window.

A handler that raises on every message must not write one traceback per
message. ``HandlerErrorSummary`` is the policy (pure: the clock is a
``monotonic`` callable passed in, nothing is logged by it): the first failure
of a handler — or the first after a quiet window — gets its traceback; the
failures after it are counted, and at most once per ``window_s`` per handler
one summary line says how many there were and what the last one was
("handler on('books') raised 1,234 times in 10 s: last ValueError: boom").
``report_handler_error`` is the one place that turns its decision into a log
record; the WS client (inline and pool dispatch, raw handlers, lifecycle and
error handlers, managed-book callbacks) and the stats reporter (sinks) use it.

:class:`BackgroundErrors` hands the errors no caller sees (a ``Client``'s
background work: account-limit loads, reporter sinks, dead-man refreshes,
periodic clock syncs, its WS clients) to one user callback, whose own
exceptions go through the same policy.

Thread safety: ``HandlerErrorSummary`` locks its own state; safe from any thread.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = [
    "HandlerErrorDecision",
    "HandlerErrorSummary",
    "report_handler_error",
    "flush_handler_errors",
    "BackgroundErrors",
    "BackgroundErrorHandler",
]

#: ``fn(source, error)``: ``source`` names the background work ("account_limit",
#: "reporter", "dead_man", "time_sync", "ws public"...), ``error`` is the exception.
BackgroundErrorHandler = Callable[[str, BaseException], object]

#: Handlers whose counts are kept at once; the least recently failing one is
#: forgotten beyond it (its pending count is then lost, its next failure gets
#: a traceback again).
_MAX_HANDLERS = 256


@attrs.frozen(kw_only=True)
class HandlerErrorDecision:
    """What to log for one failure of a handler.

    ``traceback``: log this failure with its traceback (the first of a burst).
    ``summary``: the text of the summary line to log now (the failures counted
    since the last line, this one included), or None. Both False/None: only
    count it. Thread safety: immutable.
    """

    traceback: bool
    summary: str | None = None


@attrs.define
class _State:
    window_start: float
    counted: int = 0
    last: str = ""


class HandlerErrorSummary:
    """Per-handler policy: a traceback once, then a count summarised per ``window_s``.

    ``record(handler, exc)`` returns the ``HandlerErrorDecision`` for one
    failure; ``flush()`` returns the summaries still pending (call it on
    close so that a burst's tail is not lost). ``monotonic`` is the injected
    clock (e.g. ``FakeClock().monotonic``). Raises ``ValueError`` for
    ``window_s <= 0``. Thread safety: safe from any thread (own lock; the
    caller logs outside it).
    """

    def __init__(self, *, monotonic: Callable[[], float], window_s: float = 10.0) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s!r}")
        self._monotonic = monotonic
        self.window_s = float(window_s)
        self._lock = threading.Lock()
        self._states: OrderedDict[str, _State] = OrderedDict()

    def record(self, handler: str, exc: BaseException) -> HandlerErrorDecision:
        """Count one failure of ``handler`` and say what to log for it."""
        now = self._monotonic()
        text = f"{type(exc).__name__}: {exc}"
        with self._lock:
            st = self._states.get(handler)
            if st is None or (st.counted == 0 and now - st.window_start >= self.window_s):
                self._states[handler] = _State(window_start=now)
                self._states.move_to_end(handler)
                while len(self._states) > _MAX_HANDLERS:
                    self._states.popitem(last=False)
                return HandlerErrorDecision(traceback=True)
            self._states.move_to_end(handler)
            st.counted += 1
            st.last = text
            if now - st.window_start < self.window_s:
                return HandlerErrorDecision(traceback=False)
            summary = self._summary(handler, st, now)
        return HandlerErrorDecision(traceback=False, summary=summary)

    def flush(self) -> list[str]:
        """The summaries of every handler with failures not yet summarised (and reset them)."""
        now = self._monotonic()
        with self._lock:
            return [self._summary(name, st, now) for name, st in self._states.items() if st.counted]

    def _summary(self, handler: str, st: _State, now: float) -> str:
        text = (
            f"handler {handler} raised {st.counted:,} times in "
            f"{now - st.window_start:.3g} s: last {st.last}"
        )
        st.counted = 0
        st.window_start = now
        return text


def report_handler_error(
    logger: logging.Logger,
    policy: HandlerErrorSummary,
    handler: str,
    exc: BaseException,
    prefix: str,
    extra: Mapping[str, Any],
) -> None:
    """Log one failure of the user callback ``handler`` as ``policy`` decides.

    The first of a burst: ``"<prefix>handler <handler> raised ValueError: ..."``
    at WARNING with its traceback; later ones: nothing, or one summary line
    (``"<prefix>handler <handler> raised 1,234 times in 10 s: last ..."``)
    at WARNING. ``extra`` gains ``handler`` and ``error``. Never raises
    (a failing log handler is ``logging``'s business).
    """
    decision = policy.record(handler, exc)
    fields = {**extra, "handler": handler, "error": f"{type(exc).__name__}: {exc}"}
    if decision.traceback:
        logger.warning(
            "%shandler %s raised %s: %s",
            prefix,
            handler,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra=fields,
        )
    elif decision.summary is not None:
        logger.warning("%s%s", prefix, decision.summary, extra=fields)


def flush_handler_errors(
    logger: logging.Logger, policy: HandlerErrorSummary, prefix: str, extra: Mapping[str, Any]
) -> None:
    """Log (WARNING) the summaries ``policy`` still holds — call it on close. Never raises."""
    for summary in policy.flush():
        logger.warning("%s%s", prefix, summary, extra=dict(extra))


class BackgroundErrors:
    """One user callback ``fn(source, error)`` for errors of background work that no
    caller sees (they are logged where they happen, too).

    ``report(source, error)`` calls ``fn`` on the reporting thread (keep it quick);
    an exception ``fn`` raises is logged on ``logger`` as
    :func:`report_handler_error` decides (a traceback, then summaries) and counted in
    ``handler_errors``, never propagated. ``fn`` None: ``report`` only counts.
    ``reported`` counts the errors reported. Raises ``TypeError`` for an ``fn``
    that is not callable. Thread safety: ``report`` may be called from any thread
    at once (``fn`` may run concurrently on several threads).
    """

    def __init__(
        self,
        fn: BackgroundErrorHandler | None,
        *,
        monotonic: Callable[[], float],
        logger: logging.Logger,
    ) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(f"on_background_error must be callable, got {type(fn).__name__}")
        self.fn = fn
        self._logger = logger
        self._policy = HandlerErrorSummary(monotonic=monotonic)
        self._lock = threading.Lock()
        self.reported = 0
        self.handler_errors = 0

    def report(self, source: str, error: BaseException) -> None:
        """Hand ``error`` of ``source`` to the callback. Never raises."""
        with self._lock:
            self.reported += 1
        fn = self.fn
        if fn is None:
            return
        try:
            fn(source, error)
        except Exception as exc:  # noqa: BLE001 - a user callback must never break the caller
            with self._lock:
                self.handler_errors += 1
            report_handler_error(
                self._logger,
                self._policy,
                f"on_background_error {getattr(fn, '__name__', fn)!s}",
                exc,
                "",
                {"source": source},
            )

    def flush(self) -> None:
        """Log the callback's failure summaries still pending (call on close). Never
        raises."""
        flush_handler_errors(self._logger, self._policy, "", {})
