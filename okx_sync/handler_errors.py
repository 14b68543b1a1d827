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
]

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
