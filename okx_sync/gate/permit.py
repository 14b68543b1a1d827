"""``Permit``: one admitted call, until ``release()`` ends it.

Thread safety: ``release`` is idempotent and may be called from any thread
(the gate checks and sets ``_released`` under its lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["Permit"]


class Permit:
    """Admission to send one request; ``release()`` (or ``with``) ends it.

    Release as soon as the response (or the WS reply) has arrived, or the send
    failed: the rate buckets count the call until then, and its concurrency
    slot is freed. ``wait_s`` is how long the call waited in the gate,
    ``admitted_at`` the gate clock's time of admission, ``keys`` the buckets
    it drew on. Thread safety: release is idempotent and may be called from
    any thread.
    """

    __slots__ = ("_gate", "_released", "_slot", "_entries", "wait_s", "admitted_at")

    def __init__(
        self,
        gate: Any,
        wait_s: float,
        *,
        slot: bool = True,
        entries: Sequence[tuple[str, int]] = (),
        admitted_at: float = 0.0,
    ) -> None:
        self._gate = gate  # the RequestGate that admitted it (None: nothing to release)
        self._released = False
        self._slot = slot
        self._entries = tuple(entries)  # (bucket key, entry id) per bucket drawn on
        self.wait_s = wait_s
        self.admitted_at = admitted_at

    @property
    def keys(self) -> tuple[str, ...]:
        """Keys of the rate buckets this permit drew on."""
        return tuple(key for key, _ in self._entries)

    def release(self) -> None:
        """End the call: free the slot, start the buckets' window countdown (idempotent)."""
        if self._gate is None:
            self._released = True
        elif not self._released:
            self._gate._release(self)

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Permit(keys={self.keys!r}, wait_s={self.wait_s:.6f}, released={self._released})"
