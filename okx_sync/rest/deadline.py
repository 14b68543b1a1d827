"""The whole-attempt deadline for the Session path of the REST transport.

On its fast path the transport owns the socket and bounds every read by what is
left of the attempt. Through ``Session.request`` requests and urllib3 read the
status line and headers themselves, each read waiting at most the timeout given
at the start: a peer trickling one byte at a time would keep such a call (and
its gate slot) for as long as it likes. :class:`Watchdog` ends that: one thread
per transport that, when an attempt's deadline passes, shuts the attempt's
socket down (``shutdown(SHUT_RDWR)``); the blocked read returns at once and the
attempt fails as sent (``dispatched=True``).

The socket is found without reaching into the caller's adapter:
:func:`capture_socket` installs a profile function on the calling thread
(``sys.setprofile``, which is per thread) that records the first socket method
the attempt calls from Python (``settimeout``/``setsockopt``/``sendall`` on the
connection urllib3 is about to use, new or pooled) and removes itself at once,
so it costs a few hundred profile events per call. When another profiler is
active on the thread it is left alone and the socket is taken from the response
once its headers are in (``attach``).

Once the attempt has finished, ``done()`` disarms its watch under the watch's
lock, so a socket that went back to the pool is never shut down by a late
firing — except in the microseconds between urllib3 returning the connection
at the end of the body and ``done()``: should the deadline fall exactly there
and another thread pick that connection up meanwhile, that thread's attempt
fails as ``dispatched=True`` (never as refused), which reads retry and order
entry resolves by clOrdId.

Thread safety: ``Watchdog.watch``/``close`` and ``DeadlineWatch`` methods are
safe from any thread; ``capture_socket`` affects the calling thread only.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Watchdog", "DeadlineWatch", "capture_socket"]

_IDLE_WAIT_S = 60.0  # with nothing to watch the thread still wakes this often


class DeadlineWatch:
    """One attempt's deadline (``time.monotonic()``) and the socket to shut down when
    it passes. ``fired`` tells the attempt that it was cut off. Thread-safe."""

    __slots__ = ("deadline", "fired", "_sock", "_active", "_lock")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._sock: socket.socket | None = None
        self._active = True
        self._lock = threading.Lock()

    @property
    def has_socket(self) -> bool:
        """True once the attempt's socket is known."""
        return self._sock is not None

    def attach(self, sock: socket.socket) -> None:
        """Record the attempt's socket (the first one wins); shut it down at once
        when the deadline has already passed."""
        with self._lock:
            if self._sock is not None or not self._active:
                return
            self._sock = sock
        if time.monotonic() >= self.deadline:
            self.fire()

    def fire(self) -> None:
        """The deadline passed: shut the socket down unless the attempt is done."""
        with self._lock:
            if not self._active or self._sock is None or self.fired:
                return
            self.fired = True
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: the attempt ends anyway

    def done(self) -> None:
        """The attempt has finished: never touch its socket again."""
        with self._lock:
            self._active = False
            self._sock = None

    @property
    def pending(self) -> bool:
        """Still armed (not done, not fired)."""
        return self._active and not self.fired


class Watchdog:
    """Fires each :class:`DeadlineWatch` when its deadline passes, on one daemon
    thread (``okx-rest-deadline``) started with the first watch. ``close()``
    stops and joins it (idempotent). Thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watches: set[DeadlineWatch] = set()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, deadline: float) -> DeadlineWatch:
        """Arm a watch for an attempt ending at ``deadline`` (monotonic seconds);
        call its ``done()`` when the attempt has finished."""
        entry = DeadlineWatch(deadline)
        with self._cond:
            if self._closed:
                return entry  # closing: the transport refuses sends anyway
            self._watches.add(entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="okx-rest-deadline", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return entry

    def _run(self) -> None:
        while True:
            due: list[DeadlineWatch] = []
            with self._cond:
                if self._closed:
                    return
                now = time.monotonic()
                for entry in list(self._watches):
                    if not entry.pending:
                        self._watches.discard(entry)
                    elif entry.deadline <= now and entry.has_socket:
                        due.append(entry)
                        self._watches.discard(entry)
                waiting = [e.deadline for e in self._watches if e.deadline > now]
                if not due:
                    # a watch past its deadline without a socket yet fires on attach
                    wait = min(waiting, default=now + _IDLE_WAIT_S) - now
                    self._cond.wait(min(max(wait, 0.0), _IDLE_WAIT_S))
                    continue
            for entry in due:  # outside the lock: shutdown is a syscall
                entry.fire()

    def close(self) -> None:
        """Stop the thread (joined, at most 5 s). Idempotent."""
        with self._cond:
            self._closed = True
            self._watches.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)


def capture_socket(watch: DeadlineWatch) -> Callable[[], None]:
    """Record the first socket the calling thread uses from now on into ``watch``
    (see the module doc). Returns the function that removes the hook (idempotent;
    call it in a ``finally``). Does nothing when a profiler is already installed."""
    if sys.getprofile() is not None:
        return _nothing

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            sock = getattr(arg, "__self__", None)
            if isinstance(sock, socket.socket):
                sys.setprofile(None)
                watch.attach(sock)

    sys.setprofile(hook)

    def remove() -> None:
        if sys.getprofile() is hook:
            sys.setprofile(None)

    return remove


def _nothing() -> None:
    return None
