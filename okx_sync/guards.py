"""Pre-send guards: the ``Guard`` type, the helpers that run them, and the safe-mode rule. Pure.

A guard is ``guard(endpoint, params)``, called before a request is sent; it
raises to refuse the request and may return a one-shot ``release`` callable
that is called once the send has finished. The REST core
(``RestCore.add_guard``), WS order entry (``WSClient.add_guard``) and safe mode
(``ops.safe_mode.SafeMode.guard``) all use the types and helpers here, so a
guard means the same thing on every path:

- :func:`with_guard` / :func:`without_guard`: the guard tuple an owner keeps
  (replaced, never mutated, so it is read without a lock);
- :func:`check_guards`: run them as a check before the request gate;
- :func:`run_guards` / :func:`release_all`: run them right before a send and
  release what they returned once it has finished;
- :func:`allowed_in_safe_mode`: the rule safe mode's guard applies.

No I/O besides logging a release that raised; no threads, no locks. Thread
safety: every function is safe from any thread; guards run on the calling
thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import ValidationError
from .rest.endpoints import Endpoint, param_true

__all__ = [
    "Guard",
    "GuardRelease",
    "with_guard",
    "without_guard",
    "check_guards",
    "run_guards",
    "release_all",
    "allowed_in_safe_mode",
]

_log = logging.getLogger("okx_sync.guards")

GuardRelease = Callable[[], None]
Guard = Callable[[Endpoint | None, Any], GuardRelease | None]
"""A pre-send check: ``guard(endpoint, params)``; raise to refuse the call.

It runs before every send: after the request gate has admitted the attempt
and right before it goes out (each retry again), so a refusal decided while
the call waited in the gate or between retries still stops it. It may return
a ``release`` callable, called exactly once when that send has finished
(answered or failed), so a guard can tell which sends are on the wire (safe
mode waits for them). Before the gate the guards also run once as a check
(their releases called at once), so a call refused anyway does not queue.
"""


def with_guard(guards: tuple[Guard, ...], fn: Guard) -> tuple[Guard, ...]:
    """``guards`` with ``fn`` appended (guards run in the order added).

    Raises ``ValidationError`` when ``fn`` is not callable. Pure.
    """
    if not callable(fn):
        raise ValidationError(f"guard must be callable, got {fn!r}")
    return (*guards, fn)


def without_guard(guards: tuple[Guard, ...], fn: Guard) -> tuple[Guard, ...]:
    """``guards`` without ``fn`` (matched by identity; unchanged when absent). Pure."""
    return tuple(g for g in guards if g is not fn)


def check_guards(guards: Sequence[Guard], endpoint: Endpoint | None, params: Any) -> None:
    """Run ``guards`` as a check only (before the gate): what they raise propagates, the
    releases they return are called at once. Used by the REST core and WS order entry."""
    if guards:
        release_all(run_guards(guards, endpoint, params))


def run_guards(
    guards: Sequence[Guard], endpoint: Endpoint | None, params: Any
) -> list[GuardRelease]:
    """Run ``guards`` in order; return the ``release`` callables they returned.

    When a guard raises, the releases already collected are called before the
    exception propagates. Used by the REST core and by WS order entry.
    Thread safety: runs on the calling thread; no okx_sync lock is held.
    """
    releases: list[GuardRelease] = []
    try:
        for guard in guards:
            release = guard(endpoint, params)
            if release is not None:
                releases.append(release)
    except BaseException:
        release_all(releases)
        raise
    return releases


def release_all(releases: Sequence[GuardRelease]) -> None:
    """Call every guard release; one that raises is logged and the rest still run.
    Never raises (for an ``Exception``)."""
    for release in releases:
        try:
            release()
        except Exception:  # noqa: BLE001 - a broken release must not hide the call's result
            _log.exception("guard release failed: %r", release)


def allowed_in_safe_mode(endpoint: Endpoint | None, params: Any) -> bool:
    """True when the call may go out while safe mode is on. Pure; never raises.

    ``endpoint`` None (a path the registry does not know) and every endpoint
    that does not enter orders are allowed; ``cancel``/``close`` actions are
    allowed; ``amend`` is refused; ``place`` is allowed only when ``params``
    (OKX names: a dict, or a list of dicts for a batch) is non-empty and every
    order has ``reduceOnly`` true.
    """
    if endpoint is None:
        return True
    action = endpoint.order_action
    if action in ("", "cancel", "close"):
        return True
    if action == "amend":
        return False
    items = params if isinstance(params, list | tuple) else [params]
    return bool(items) and all(
        isinstance(item, Mapping) and param_true(item.get("reduceOnly")) for item in items
    )
