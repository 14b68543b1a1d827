"""FakeClock in manual mode (``auto_advance=False``): threads driven step by step by advance()."""

from __future__ import annotations

import threading

from okx_sync.clock import FakeClock


def waiter_thread(
    clock: FakeClock,
    cond: threading.Condition,
    read: threading.Event,
    go: threading.Event,
    result: list[bool],
) -> threading.Thread:
    """A thread that reads the time, then (after ``go``) waits until 3 s after that reading."""

    def run() -> None:
        now = clock.monotonic()
        timeout = (now + 3.0) - now  # computed from the reading, as callers do
        read.set()
        go.wait(10)  # (the thread is preempted here)
        with cond:
            result.append(clock.wait(cond, timeout))

    return threading.Thread(target=run, name="okx-test-clock-waiter", daemon=True)


def test_an_advance_between_reading_and_waiting_is_not_lost() -> None:
    # The waiter computed its timeout from its reading; the advance happened
    # before it blocked. The deadline is that reading + 3 s, which has passed.
    clock = FakeClock(start=0.0, auto_advance=False)
    cond = threading.Condition()
    read, go = threading.Event(), threading.Event()
    result: list[bool] = []
    waiter = waiter_thread(clock, cond, read, go, result)
    waiter.start()
    assert read.wait(5)
    clock.advance(3.0)
    go.set()
    waiter.join(5)
    alive = waiter.is_alive()
    clock.advance(100.0)  # frees a waiter that counted from the later time (the bug)
    waiter.join(5)
    assert not alive and result == [False]


def test_a_sleep_counts_from_the_callers_last_reading() -> None:
    clock = FakeClock(start=0.0, auto_advance=False)
    read, go, done = threading.Event(), threading.Event(), threading.Event()

    def run() -> None:
        clock.monotonic()
        read.set()
        go.wait(10)
        clock.sleep(2.0)
        done.set()

    threading.Thread(target=run, name="okx-test-clock-sleeper", daemon=True).start()
    assert read.wait(5)
    clock.advance(2.0)
    go.set()
    finished = done.wait(5)
    clock.advance(100.0)
    assert finished


def test_a_wait_blocks_until_time_reaches_its_deadline_or_a_notify() -> None:
    clock = FakeClock(start=0.0, auto_advance=False)
    cond = threading.Condition()
    read, go = threading.Event(), threading.Event()
    result: list[bool] = []
    waiter = waiter_thread(clock, cond, read, go, result)
    waiter.start()
    assert read.wait(5)
    go.set()
    clock.advance(2.9)
    waiter.join(0.1)
    assert waiter.is_alive() and result == []  # 0.1 s of fake time still to go
    clock.advance(0.1)
    waiter.join(5)
    assert not waiter.is_alive() and result == [False]

    result.clear()
    read.clear()
    go.clear()
    notified = waiter_thread(clock, cond, read, go, result)
    notified.start()
    assert read.wait(5)
    go.set()
    while notified.is_alive() and not result:
        with cond:
            cond.notify_all()
        notified.join(0.01)
    notified.join(5)
    assert result == [True] and clock.monotonic() == 3.0
