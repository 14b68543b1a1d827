"""FakeClock in manual mode (``auto_advance=False``): threads driven step by step by advance()."""

from __future__ import annotations

import threading
import time

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


def loop_waiter(
    clock: FakeClock, cond: threading.Condition, flag: list[int], result: list[bool]
) -> threading.Thread:
    """A thread that waits as okx_sync's loops do: until ``flag`` is set (True)
    or 3 s of fake time after its reading have passed (False)."""

    def run() -> None:
        with cond:
            due = clock.monotonic() + 3.0
            while not flag:
                left = due - clock.monotonic()
                if left <= 0:
                    result.append(False)
                    return
                clock.wait(cond, left)
            result.append(True)

    return threading.Thread(target=run, name="okx-test-clock-looper", daemon=True)


def test_a_waiting_loop_ends_at_its_deadline_or_on_a_notify() -> None:
    clock = FakeClock(start=0.0, auto_advance=False)
    cond = threading.Condition()
    flag: list[int] = []
    result: list[bool] = []
    waiter = loop_waiter(clock, cond, flag, result)
    waiter.start()
    clock.advance(2.9)
    waiter.join(0.1)
    assert waiter.is_alive() and result == []  # 0.1 s of fake time still to go
    clock.advance(0.1)
    waiter.join(5)
    assert not waiter.is_alive() and result == [False]

    result.clear()
    notified = loop_waiter(clock, cond, flag, result)
    notified.start()
    notified.join(0.05)
    assert notified.is_alive()
    with cond:
        flag.append(1)
        cond.notify_all()
    notified.join(5)
    assert result == [True] and clock.monotonic() == 3.0


def test_no_notify_is_lost_when_it_races_a_poll_timeout() -> None:
    # A notify landing as a poll's Condition.wait times out is consumed by it
    # and reported as False; FakeClock must still hand control back to the
    # caller's loop, which then sees the flag (before the fix it waited until
    # fake time reached the deadline: about 1 notify in 100 was lost).
    lost = 0
    for i in range(200):
        clock = FakeClock(start=0.0, auto_advance=False, poll_s=0.001)
        cond = threading.Condition(threading.Lock())
        flag: list[int] = []
        result: list[bool] = []
        waiter = loop_waiter(clock, cond, flag, result)
        waiter.start()
        time.sleep(0.0005 + (i % 10) * 0.0001)  # around the 1 ms poll boundary
        with cond:
            flag.append(1)
            cond.notify()
        waiter.join(1.0)
        if waiter.is_alive():
            lost += 1
            clock.advance(10.0)
            waiter.join(5)
    assert lost == 0


def test_park_keeps_a_release_that_came_first_and_times_out_in_fake_time() -> None:
    from okx_sync.clock import SYSTEM_CLOCK, park

    for clock in (SYSTEM_CLOCK, FakeClock(start=0.0), FakeClock(start=0.0, auto_advance=False)):
        lock = threading.Lock()
        lock.acquire()
        lock.release()  # the wake-up comes before the waiter parks: not lost
        assert park(clock, lock, 5.0) is True
    auto = FakeClock(start=0.0)
    lock = threading.Lock()
    lock.acquire()
    assert park(auto, lock, 2.5) is False and auto.monotonic() == 2.5  # time moved, no one woke it

    manual = FakeClock(start=0.0, auto_advance=False)
    held = threading.Lock()
    held.acquire()
    woken: list[bool] = []

    def parker() -> None:
        due = manual.monotonic() + 3.0
        while not woken and manual.monotonic() < due:
            if park(manual, held, due - manual.monotonic()):
                woken.append(True)

    thread = threading.Thread(target=parker, name="okx-test-clock-parker", daemon=True)
    thread.start()
    thread.join(0.05)
    assert thread.is_alive()  # fake time has not moved, nobody released
    held.release()
    thread.join(5)
    assert woken == [True]


def test_park_without_a_clock_method_waits_in_real_time() -> None:
    from okx_sync.clock import park

    class Bare:  # a user clock from before park existed
        pass

    lock = threading.Lock()
    lock.acquire()
    start = time.monotonic()
    assert park(Bare(), lock, 0.01) is False  # type: ignore[arg-type]
    assert time.monotonic() - start >= 0.009
