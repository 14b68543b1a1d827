"""The gate's log lines: decided while a lock is held, emitted after it is released.

No user code (logging handlers included) runs under a gate lock: code holding
one appends a ``Note`` (level, message, extra fields) to a list and the caller
hands the list to ``emit`` once the lock is released. All lines go to the
``okx_sync.gate`` logger. Thread safety: the builders are pure; ``emit`` logs.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["Note", "emit", "log", "penalty_note", "timeout_note"]

log = logging.getLogger("okx_sync.gate")

Note = tuple[int, str, dict[str, Any]]


def emit(notes: list[Note]) -> None:
    """Log ``notes`` in order and empty the list (call with no lock held)."""
    for level, message, extra in notes:
        log.log(level, message, extra=extra)
    notes.clear()


def penalty_note(
    key: str, http_status: int | None, code: str, hold_s: float, factor: float
) -> Note:
    """The WARNING for a bucket newly held after a throttled answer."""
    return (
        logging.WARNING,
        f"rate limit hit (http {http_status}, code {code or '-'}): "
        f"bucket {key} held {hold_s:.3g} s, then restarts at {factor:.2g} of its rate",
        {
            "bucket": key,
            "http_status": http_status,
            "code": code,
            "hold_s": round(hold_s, 6),
            "rate_factor": round(factor, 4),
        },
    )


def timeout_note(method: str, path: str, limit: float, what: str) -> Note:
    """The WARNING for a call not admitted within ``limit`` seconds (``what`` held it)."""
    return (
        logging.WARNING,
        f"request gate timeout: {method} {path} not admitted within {limit:g} s "
        f"(waiting for {what})",
        {"method": method, "path": path, "waited_s": limit, "blocked_on": what},
    )
