"""Ownership: the objects a parent made and closes with itself (``Client.close()``).

A :class:`Children` registry lists, weakly and in creation order, what an
owner built: ``Client`` adopts the WS clients of ``ws_public()`` /
``ws_private()`` / ``ws_business()``, the managed books built on them, the
stats reporters built on it and its dead-man switches.
:meth:`Children.close_all` closes them newest first (a book before the WS
client it rides on), each within what is left of one deadline, and logs each
failure naming the child.

A child that mixes in :class:`Owned` keeps its :class:`Adoption` and tells
the registry when the user closes it (``_owned_closed``: it is dropped, so a
program that creates and closes many WS clients does not grow the list) and
when it starts again (``_owned_started``: listed again at its old place).
The registry holds children weakly: one that is garbage-collected leaves.

No I/O; thread safety: every method may be called from any thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

from .errors import ValidationError

__all__ = ["Adoption", "Children", "Owned"]

log = logging.getLogger("okx_sync.lifecycle")

_MIN_BUDGET_S = 0.1  # a child closed after the deadline still gets this long to end


class Adoption:
    """One child's place in its owner's :class:`Children` (what ``adopt`` returns).

    Thread safety: every method may be called from any thread.
    """

    __slots__ = ("_children", "_seq", "_ref", "kind", "label")

    def __init__(
        self, children: Children, seq: int, ref: weakref.ref[Any], kind: str, label: str
    ) -> None:
        self._children = children
        self._seq = seq
        self._ref = ref
        self.kind = kind
        self.label = label

    def release(self) -> None:
        """The child was closed by its user: the owner no longer lists it. Idempotent."""
        self._children._drop(self._seq)

    def renew(self) -> None:
        """The child started again: list it again (at its creation place) unless the
        owner is closed. Idempotent."""
        self._children._put(self)

    def adopt(self, child: Any, *, kind: str, label: str) -> Adoption:
        """Adopt ``child`` into the same owner (a book built on an owned WS client).
        Raises as :meth:`Children.adopt`."""
        return self._children.adopt(child, kind=kind, label=label)


class Owned:
    """Mixin for an object an owner may close: ``close()`` calls ``_owned_closed()``,
    ``start()`` (where it can start again) calls ``_owned_started()``."""

    _adoption: Adoption | None = None

    def _owned_closed(self) -> None:
        adoption = self._adoption
        if adoption is not None:
            adoption.release()

    def _owned_started(self) -> None:
        adoption = self._adoption
        if adoption is not None:
            adoption.renew()

    def _adopt_sibling(self, child: Any, *, kind: str, label: str) -> None:
        """Have the owner that adopted this object adopt ``child`` too (a book built on
        an owned WS client), so closing the owner closes ``child``; a no-op when this
        object has no owner. Raises ``ValidationError`` when that owner is closing.
        Thread-safe."""
        adoption = self._adoption
        if adoption is not None:
            adoption.adopt(child, kind=kind, label=label)


class Children:
    """The children of ``owner`` (a name for log lines), weakly held, oldest first.

    A child has ``close(timeout)`` (seconds; returning False when it did not
    end cleanly in time). ``monotonic`` is the clock the close deadline is
    measured on. Thread safety: every method may be called from any thread.
    """

    def __init__(self, owner: str, monotonic: Callable[[], float]) -> None:
        self.owner = owner
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._entries: dict[int, Adoption] = {}
        self._closing = False

    @property
    def closing(self) -> bool:
        """True once :meth:`close_all` was called."""
        return self._closing

    def adopt(self, child: Any, *, kind: str, label: str) -> Adoption:
        """List ``child`` (kind: ``"ws"``, ``"book"``, ``"reporter"``, ``"dead-man"``...;
        label: what log lines call it). An :class:`Owned` child keeps the adoption.

        Raises ``ValidationError`` once the owner is closing (close the child
        yourself then; nothing was listed).
        """
        with self._lock:
            if self._closing:
                raise ValidationError(
                    f"{self.owner} is closed: {label} cannot be added (build a new one)"
                )
            self._prune()
            adoption = Adoption(self, next(self._seq), weakref.ref(child), kind, label)
            self._entries[adoption._seq] = adoption
        if isinstance(child, Owned):
            child._adoption = adoption
        return adoption

    def live(self, kind: str | None = None) -> list[Any]:
        """The listed children (of ``kind``, when given), oldest first."""
        with self._lock:
            self._prune()
            entries = sorted(self._entries.items())
        out = []
        for _, adoption in entries:
            child = adoption._ref()
            if child is not None and (kind is None or adoption.kind == kind):
                out.append(child)
        return out

    def __len__(self) -> int:
        """How many children are listed (garbage-collected ones not counted)."""
        return len(self.live())

    def close_all(self, timeout_s: float) -> bool:
        """Close every listed child, newest first, within ``timeout_s`` s in total (each
        gets what is left, at least 0.1 s). Idempotent: later calls return True at
        once; children adopted later are refused. Never raises: a child whose
        ``close`` raises or returns False is logged (WARNING/ERROR) by its label.
        Returns True when every child closed cleanly.
        """
        with self._lock:
            if self._closing:
                return True
            self._closing = True
            entries = sorted(self._entries.items(), reverse=True)
            self._entries.clear()
        deadline = self._monotonic() + timeout_s
        ok = True
        for _, adoption in entries:
            child = adoption._ref()
            if child is None:
                continue
            budget = max(_MIN_BUDGET_S, deadline - self._monotonic())
            try:
                clean = child.close(budget)
            except Exception as exc:  # noqa: BLE001 - one child must not keep the rest open
                ok = False
                log.error(
                    "%s.close: closing %s failed: %s: %s",
                    self.owner,
                    adoption.label,
                    type(exc).__name__,
                    exc,
                    exc_info=True,
                    extra={"child": adoption.label, "kind": adoption.kind},
                )
                continue
            if clean is False:
                ok = False
                log.warning(
                    "%s.close: %s did not close cleanly within %.1f s "
                    "(a thread still running, or a failed last request)",
                    self.owner,
                    adoption.label,
                    budget,
                    extra={"child": adoption.label, "kind": adoption.kind},
                )
        return ok

    def _drop(self, seq: int) -> None:
        with self._lock:
            self._entries.pop(seq, None)

    def _put(self, adoption: Adoption) -> None:
        with self._lock:
            if not self._closing and adoption._ref() is not None:
                self._entries[adoption._seq] = adoption

    def _prune(self) -> None:
        """Forget garbage-collected children (lock held)."""
        dead = [seq for seq, a in self._entries.items() if a._ref() is None]
        for seq in dead:
            del self._entries[seq]
