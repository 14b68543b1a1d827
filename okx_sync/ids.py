"""Client order ids: :func:`new_cl_ord_id`. Thread-safe.

OKX accepts a ``clOrdId`` of 1–32 ASCII letters and digits. An id made here is
``prefix`` + a 26-character body:

- 9 characters of milliseconds since the Unix epoch (base 36, sortable for ~3,000 years),
- 5 characters of a per-process tag (base 36 of 25 random bits drawn once per process,
  re-drawn in a forked child),
- 4 characters of the process id (base 36, modulo 36**4),
- 8 characters of a per-process counter (base 36, modulo 36**8, starting at a random
  offset).

Two threads never get the same id (the counter is taken under a lock); two processes
differ by pid and by the random tag; a restarted process differs by time and tag.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import threading
import time

from .errors import ValidationError

__all__ = ["new_cl_ord_id", "is_valid_cl_ord_id", "CL_ORD_ID_MAX"]

CL_ORD_ID_MAX = 32
_BODY_LEN = 26
_MAX_PREFIX = CL_ORD_ID_MAX - _BODY_LEN
# fullmatch, not ``$``: ``$`` also matches before a trailing newline ("abc\n").
_VALID = re.compile(r"[A-Za-z0-9]{1,32}")
_PREFIX = re.compile(r"[A-Za-z0-9]*")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"

_lock = threading.Lock()
_state: dict[str, object] = {}


def _b36(n: int, width: int) -> str:
    n %= 36**width
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(_DIGITS[r])
    return "".join(reversed(out))


def _process_state() -> tuple[str, itertools.count[int]]:
    """(tag, counter) of this process; re-created after a fork (pid changed)."""
    pid = os.getpid()
    if _state.get("pid") != pid:
        _state["pid"] = pid
        _state["tag"] = _b36(secrets.randbits(25), 5) + _b36(pid, 4)
        _state["counter"] = itertools.count(secrets.randbelow(36**8))
    return _state["tag"], _state["counter"]  # type: ignore[return-value]


def is_valid_cl_ord_id(value: object) -> bool:
    """True when ``value`` is a str that OKX accepts as a clOrdId (1–32 ASCII
    letters/digits, nothing else: no blank, no newline). Never raises."""
    return isinstance(value, str) and _VALID.fullmatch(value) is not None


def new_cl_ord_id(prefix: str = "") -> str:
    """A new, unique client order id: ``prefix`` + 26 letters/digits (see module doc).

    ``prefix`` may hold up to 6 ASCII letters/digits (the result stays within 32).
    Raises ValidationError for a longer prefix or one with other characters.
    Thread safety: safe from any thread; unique across threads and processes.
    """
    if not isinstance(prefix, str) or _PREFIX.fullmatch(prefix) is None:
        raise ValidationError(f"clOrdId prefix {prefix!r} must be ASCII letters and digits only")
    if len(prefix) > _MAX_PREFIX:
        raise ValidationError(
            f"clOrdId prefix {prefix!r} is {len(prefix)} characters; at most {_MAX_PREFIX}"
        )
    ms = time.time_ns() // 1_000_000
    with _lock:
        tag, counter = _process_state()
        n = next(counter)
    return f"{prefix}{_b36(ms, 9)}{tag}{_b36(n, 8)}"
