"""WebSocket policies (pure decisions; the loops in ``ws.supervisor`` act on them).

- ``BackoffPolicy`` — reconnect delays: exponential with jitter, reset once a
  connection has stayed up for ``stable_after_s`` seconds.
- ``HeartbeatPolicy`` — when to send the text ``ping`` and when a silent
  connection is dead (facts §4.4).
- ``ConnectRateLimiter`` — at most 3 new connections per second per process
  (facts §2.7; OKX counts per IP, so one limiter is shared by the process).
- ``OpsBudget`` — 480 subscribe/unsubscribe/login requests per hour per connection.

Thread safety: the policies are immutable; ``ConnectRateLimiter`` and
``OpsBudget`` lock internally.
"""

from __future__ import annotations

import enum
import threading
import weakref
from collections import deque
from typing import Any

import attrs

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ValidationError
from ..validators import count, field, real, seconds
from .protocol import CONNECTIONS_PER_SECOND, OPS_PER_HOUR

__all__ = [
    "BackoffPolicy",
    "HeartbeatPolicy",
    "HeartbeatAction",
    "HeartbeatDecision",
    "ConnectRateLimiter",
    "OpsBudget",
]

_positive = field(seconds, positive=True)


@attrs.frozen(kw_only=True)
class BackoffPolicy:
    """Reconnect delays: ``initial * multiplier**attempt`` capped at ``maximum``, with jitter.

    ``jitter`` (0..1) is the fraction of the delay that is randomised:
    delay = base * (1 - jitter + jitter * r) for r in [0, 1). The attempt
    counter resets once a connection stayed up ``stable_after_s`` seconds.
    Frozen; ``ValidationError`` (a ``ValueError``) for a value that is not a finite
    number (bools and strings included) or out of range. Thread safety: immutable.
    """

    initial: float = attrs.field(default=0.25, validator=_positive)
    maximum: float = attrs.field(default=10.0, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=field(real, low=1.0))
    jitter: float = attrs.field(default=0.5, validator=field(real, low=0.0, high=1.0))
    stable_after_s: float = attrs.field(default=30.0, validator=_positive)

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait before reconnect ``attempt`` (0-based); ``rand`` in [0, 1)."""
        base = min(self.maximum, self.initial * self.multiplier ** max(0, min(attempt, 64)))
        return base * (1.0 - self.jitter + self.jitter * rand)

    def reset_if_stable(self, attempt: int, uptime_s: float) -> int:
        """0 when the connection that just ended stayed up ``stable_after_s`` s, else ``attempt``."""
        return 0 if uptime_s >= self.stable_after_s else attempt


class HeartbeatAction(enum.Enum):
    """What the heartbeat loop must do now."""

    NONE = "none"
    PING = "ping"
    DEAD = "dead"


@attrs.frozen
class HeartbeatDecision:
    """``action`` now, and the monotonic time at which to ask again (``wake_at``).

    ``reset_outstanding``: forget the outstanding ping (the reader is blocked on
    a full handler queue and cannot read the pong yet). Thread safety: immutable.
    """

    action: HeartbeatAction
    wake_at: float
    reset_outstanding: bool = False


@attrs.frozen(kw_only=True)
class HeartbeatPolicy:
    """OKX heartbeat (facts §4.4): text ``ping`` after ``ping_interval_s`` s with nothing received.

    A connection is dead when neither a ``pong`` nor any other message arrived
    within ``pong_timeout_s`` s of a ping; a silent connection is therefore
    detected within ``ping_interval_s + pong_timeout_s`` s (default 20 + 8 = 28 s,
    under OKX's 30 s idle close). ``pong_timeout_s`` is also every write's
    deadline (``Connection``): a server that stops reading fails the next
    write (a pong, a request, or the ping once nothing arrived for
    ``ping_interval_s`` s) and is dropped ``pong_timeout_s`` s after that write began.
    While the reader is busy — blocked on a full handler queue, or running an
    inline handler — it is not reading, so silence proves nothing: pings
    continue as keep-alives (their pongs wait in the socket) and the
    connection is never declared dead for that; once the reader is free the
    usual rule applies again.
    Frozen; ``ValidationError`` (a ``ValueError``) unless 0 < ping_interval_s < 30 and
    pong_timeout_s > 0, both finite numbers.
    Thread safety: immutable.
    """

    ping_interval_s: float = attrs.field(default=20.0, validator=_positive)
    pong_timeout_s: float = attrs.field(default=8.0, validator=_positive)

    @ping_interval_s.validator
    def _check_interval(self, _a: Any, value: float) -> None:
        if not 0 < value < 30:
            raise ValidationError(
                f"ping_interval_s must be > 0 and < 30 s (OKX closes at 30 s), got {value!r}"
            )

    @property
    def detection_bound(self) -> float:
        """Worst-case seconds from the last message to declaring the connection dead."""
        return self.ping_interval_s + self.pong_timeout_s

    def decide(
        self,
        now: float,
        *,
        last_recv: float,
        last_ping: float | None,
        outstanding_since: float | None,
        blocked: bool = False,
    ) -> HeartbeatDecision:
        """Decide for one connection at monotonic time ``now``.

        ``last_recv``: last message (or connect time); ``last_ping``: last ping
        sent; ``outstanding_since``: a ping sent with nothing received since;
        ``blocked``: the reader is busy (waiting for room in a handler queue,
        or running an inline handler), not reading.
        """
        if blocked:
            since = max(last_recv, last_ping or last_recv)
            if now - since >= self.ping_interval_s:
                return HeartbeatDecision(HeartbeatAction.PING, now + self.ping_interval_s, True)
            return HeartbeatDecision(HeartbeatAction.NONE, since + self.ping_interval_s, True)
        if outstanding_since is not None:
            deadline = outstanding_since + self.pong_timeout_s
            if now >= deadline:
                return HeartbeatDecision(HeartbeatAction.DEAD, now)
            return HeartbeatDecision(HeartbeatAction.NONE, deadline)
        due = last_recv + self.ping_interval_s
        if now >= due:
            return HeartbeatDecision(HeartbeatAction.PING, now + self.pong_timeout_s)
        return HeartbeatDecision(HeartbeatAction.NONE, due)


class ConnectRateLimiter:
    """Sliding-window limit on new connections: ``rate`` per ``per`` seconds.

    ``reserve(now)`` books the next free slot and returns how long the caller
    must wait before connecting (0 when it may connect at once). One instance
    is shared by every WSClient of the process (``process_default()``), since
    OKX counts new connections per IP; clients on another clock (a test's
    ``FakeClock``) share one per clock, as slot times from different clocks
    cannot be compared. Raises ``ValidationError`` unless ``rate`` is an int >= 1
    and ``per`` a positive finite number of seconds.

    Thread safety: all methods lock internally.
    """

    _process: weakref.WeakKeyDictionary[Any, ConnectRateLimiter] = weakref.WeakKeyDictionary()
    _process_lock = threading.Lock()

    def __init__(self, rate: int = CONNECTIONS_PER_SECOND, per: float = 1.0) -> None:
        count(rate, name="rate")
        seconds(per, name="per", positive=True)
        self.rate = rate
        self.per = per
        self._lock = threading.Lock()
        self._slots: deque[float] = deque()

    @classmethod
    def process_default(cls, clock: Clock | None = None) -> ConnectRateLimiter:
        """The limiter shared by every WSClient in this process that runs on
        ``clock`` (default: the system clock); created on first use."""
        key = SYSTEM_CLOCK if clock is None else clock
        with cls._process_lock:
            limiter = cls._process.get(key)
            if limiter is None:
                limiter = cls._process[key] = cls()
            return limiter

    def reserve(self, now: float) -> float:
        """Book a connection slot; return the seconds to wait before using it."""
        with self._lock:
            while self._slots and self._slots[0] <= now - self.per:
                self._slots.popleft()
            if len(self._slots) < self.rate:
                self._slots.append(now)
                return 0.0
            slot = self._slots[-self.rate] + self.per
            slot = max(slot, now)
            self._slots.append(slot)
            while len(self._slots) > self.rate:
                self._slots.popleft()
            return slot - now


class OpsBudget:
    """``limit`` subscribe/unsubscribe/login requests per ``window_s`` s on one connection.

    Thread safety: locks internally.
    """

    def __init__(self, limit: int = OPS_PER_HOUR, window_s: float = 3600.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._lock = threading.Lock()
        self._stamps: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.window_s:
            self._stamps.popleft()

    def remaining(self, now: float) -> int:
        """Requests still allowed in the window ending at ``now``."""
        with self._lock:
            self._expire(now)
            return self.limit - len(self._stamps)

    def take(self, now: float, n: int = 1) -> bool:
        """Use ``n`` requests if all fit; False (and nothing used) otherwise."""
        with self._lock:
            self._expire(now)
            if len(self._stamps) + n > self.limit:
                return False
            self._stamps.extend([now] * n)
            return True
