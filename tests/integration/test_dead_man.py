"""Dead-man switch against okx_sync.sim: arming, refreshing, disarming on stop/close, and the
cancel-all-after timer firing in the simulator (cancelSource 20) when refreshes stop."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal

import pytest

from okx_sync import DeadManSwitchError
from okx_sync.clock import FakeClock
from okx_sync.errors import APIError, ValidationError
from okx_sync.ids import new_cl_ord_id
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client, wait_until

INST = "BTC-USDT"
CAA = "/api/v5/trade/cancel-all-after"


def keeper_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("okx-dead-man")]


def rest_order(sim, client, *, tag: str | None = None) -> str:
    best = Decimal(sim.exchange.book(INST).bids[0][0])
    px = client.round_price(INST, best * Decimal("0.8"))
    ack = client.trade.place_order(
        inst_id=INST,
        td_mode="cash",
        side="buy",
        ord_type="limit",
        sz="0.01",
        px=px,
        cl_ord_id=new_cl_ord_id(),
        tag=tag,
    )
    return str(ack.ord_id)


@pytest.fixture
def sim():
    with Simulator(seed=5, auto_tick=False, ws=False) as s:
        yield s
    assert not keeper_threads()


def test_bad_arguments_are_refused_before_anything_is_sent(sim):
    with sim_client(sim) as client:
        for kw in (
            {"timeout_s": 9},
            {"timeout_s": 121},
            {"timeout_s": 60.0},
            {"timeout_s": 60, "refresh_s": 60},
            {"timeout_s": 60, "refresh_s": 0.5},
            {"tag": "has-dash"},
            {"tag": "x" * 17},
        ):
            with pytest.raises(ValidationError):
                client.dead_man_switch(**kw)
        assert client.stats().attempts == 0
        assert client.dead_man_switches() == []


def test_arm_refresh_stop_disarms_and_close_disarms():
    clock = FakeClock(wall_start=time.time(), auto_advance=False)
    with Simulator(seed=5, auto_tick=False, ws=False, clock=clock) as sim:
        uid = sim.credentials.live_uid
        with sim_client(sim, clock=clock) as client:
            switch = client.dead_man_switch(timeout_s=30, refresh_s=1)
            assert switch.armed and switch.running
            assert sim.exchange.cancel_all_after_armed(uid)
            stats = switch.stats()
            assert stats.refreshes == 1 and stats.timeout_s == 30 and stats.trigger_time
            assert stats.deadline == pytest.approx(stats.last_refresh + 30)
            assert keeper_threads() == ["okx-dead-man"]
            clock.advance(1.2)  # refresh_s passed (and cancel-all-after's 1 request/s)
            assert wait_until(lambda: switch.stats().refreshes == 2)
            assert switch.stats().deadline == pytest.approx(clock.time() + 30, abs=1e-6)
            with pytest.raises(ValidationError, match="already running"):
                client.dead_man_switch(timeout_s=30)
            clock.advance(1.2)  # cancel-all-after allows 1 request/s: the disarm waits its turn
            assert switch.stop() is True
            assert not switch.running and not switch.armed
            assert not sim.exchange.cancel_all_after_armed(uid)
            assert client.dead_man_switches() == []
            assert switch.stop() is True  # idempotent

            clock.advance(1.2)
            tagged = client.dead_man_switch(timeout_s=20, refresh_s=5, tag="bot1")
            assert tagged.name == "okx-dead-man-bot1"
            assert sim.exchange.cancel_all_after_armed(uid, "bot1")
            assert client.evidence()["dead_man_switches"][0]["tag"] == "bot1"
            clock.advance(1.2)
        # client.close() stopped and disarmed it
        assert not tagged.running and not tagged.armed
        assert not sim.exchange.cancel_all_after_armed(uid, "bot1")
    assert not keeper_threads()


def test_a_failing_first_arm_raises_and_leaves_nothing_running(sim):
    sim.faults.server_errors(500, count=1, path=CAA)
    with sim_client(sim) as client:
        with pytest.raises(APIError):
            client.dead_man_switch(timeout_s=30)
        assert client.dead_man_switches() == [] and not keeper_threads()


def test_fires_in_the_simulator_when_refreshes_stop_and_says_so_loudly(caplog):
    clock = FakeClock(wall_start=time.time(), auto_advance=False)
    with Simulator(seed=5, auto_tick=False, ws=False, clock=clock) as sim:
        uid = sim.credentials.live_uid
        with sim_client(sim, clock=clock) as client:
            ord_id = rest_order(sim, client)
            seen: list[BaseException] = []
            switch = client.dead_man_switch(timeout_s=10, refresh_s=3, on_error=seen.append)

            # refreshed three times over 12 s: the 10 s timer never ran out
            for n in (2, 3, 4):
                clock.advance(3)
                assert wait_until(lambda n=n: switch.stats().refreshes == n)
            assert sim.exchange.orders[ord_id].state == "live"

            # refreshes stop: every cancel-all-after now fails
            sim.faults.server_errors(500, count=1000, path=CAA)
            caplog.set_level(logging.WARNING, logger="okx_sync.ops.dead_man")
            clock.advance(3)
            assert wait_until(lambda: switch.stats().failures == 1)
            assert wait_until(lambda: len(seen) == 1)  # handlers run after the count
            assert isinstance(seen[0], APIError) and seen[0].code == "50026"
            for _ in range(4):  # retries every 2 s until the 10 s deadline has passed
                failures = switch.stats().failures
                clock.advance(2)
                assert wait_until(lambda f=failures: switch.stats().failures == f + 1)
            clock.advance(0.5)
            assert wait_until(lambda: switch.stats().expired)
            # the simulator's timer fired: the order was cancelled by cancel-all-after
            assert wait_until(lambda: sim.exchange.orders[ord_id].state == "canceled")
            order = client.trade.get_order(inst_id=INST, ord_id=ord_id)
            assert order.state == "canceled" and order.cancel_source == "20"
            expired = [e for e in seen if isinstance(e, DeadManSwitchError)]
            # the attempts at +12, +14, +16 and +18 s failed before the deadline (+19 s);
            # the keeper woke at +20 s and raised the alarm before trying again
            assert len(expired) == 1 and expired[0].failures == 4 and expired[0].tag is None
            assert isinstance(expired[0].__cause__, APIError)
            errors = [r for r in caplog.records if r.levelno == logging.ERROR]
            assert len(errors) == 1 and "may have cancelled" in errors[0].getMessage()
            stats = switch.stats()
            assert stats.expiries == 1 and stats.consecutive_failures >= 5

            # the network comes back: the next refresh re-arms it
            sim.faults.clear()
            clock.advance(2)
            assert wait_until(lambda: not switch.stats().expired)
            assert sim.exchange.cancel_all_after_armed(uid)
            # logged just after the state changed: wait for the line itself
            assert wait_until(lambda: any("re-armed" in r.getMessage() for r in caplog.records))
            clock.advance(1.2)  # cancel-all-after allows 1 request/s: the disarm waits its turn
            assert switch.stop() is True
            assert not sim.exchange.cancel_all_after_armed(uid)


def test_stop_without_disarm_leaves_the_timer_to_fire_like_a_dead_process():
    clock = FakeClock(wall_start=time.time(), auto_advance=False)
    with Simulator(seed=6, auto_tick=False, ws=False, clock=clock) as sim:
        with sim_client(sim, clock=clock) as client:
            mine = rest_order(sim, client, tag="bot1")
            other = rest_order(sim, client, tag="bot2")
            switch = client.dead_man_switch(timeout_s=10, refresh_s=2, tag="bot1")
            assert switch.stop(disarm=False) is True
            assert sim.exchange.cancel_all_after_armed(sim.credentials.live_uid, "bot1")
            clock.advance(10.5)
            assert wait_until(lambda: sim.exchange.orders[mine].state == "canceled")
            assert sim.exchange.orders[mine].cancel_source == "20"
            assert sim.exchange.orders[other].state == "live"  # a tag timer spares other tags


def test_error_handler_exceptions_are_counted_and_never_kill_the_keeper(caplog):
    caplog.set_level(logging.WARNING, logger="okx_sync")
    clock = FakeClock(wall_start=time.time(), auto_advance=False)
    with Simulator(seed=7, auto_tick=False, ws=False, clock=clock) as sim:
        with sim_client(sim, clock=clock) as client:

            def broken(exc: BaseException) -> None:
                raise RuntimeError("handler bug")

            switch = client.dead_man_switch(timeout_s=10, refresh_s=2, on_error=broken)
            sim.faults.server_errors(500, count=1, path=CAA)
            clock.advance(2)
            assert wait_until(lambda: switch.stats().handler_errors == 1)
            clock.advance(2)
            assert wait_until(lambda: switch.stats().refreshes == 2)
            assert switch.running
            (line,) = [r for r in caplog.records if "handler on_error broken" in r.getMessage()]
            assert line.exc_info and line.getMessage() == (
                "dead-man switch okx-dead-man: handler on_error broken raised "
                "RuntimeError: handler bug"
            )
            clock.advance(1.2)
            assert switch.stop() is True


class LateKeeperClock(FakeClock):
    """A manual FakeClock on which the keeper thread's first reading waits for ``go``:
    the keeper thread is scheduled late, after the caller has moved time on."""

    def __init__(self) -> None:
        super().__init__(wall_start=time.time(), auto_advance=False)
        self.go = threading.Event()

    def monotonic(self) -> float:
        if threading.current_thread().name.startswith("okx-dead-man"):
            self.go.wait(10)
        return super().monotonic()


def test_the_refresh_schedule_counts_from_the_arming_not_from_the_keepers_first_run():
    clock = LateKeeperClock()
    with Simulator(seed=8, auto_tick=False, ws=False, clock=clock) as sim:
        with sim_client(sim, clock=clock) as client:
            switch = client.dead_man_switch(timeout_s=10, refresh_s=3)
            assert sim.exchange.cancel_all_after_armed(sim.credentials.live_uid)
            clock.advance(3)  # a refresh is due now, 3 s after the arming...
            clock.go.set()  # ...and only now does the keeper thread first run
            # (no stats() before: the held-back keeper may hold the switch's lock)
            assert wait_until(lambda: switch.stats().refreshes == 2)
            assert switch.stats().last_refresh == pytest.approx(clock.time(), abs=1e-6)
            clock.advance(1.2)  # cancel-all-after allows 1 request/s: the disarm waits its turn
            assert switch.stop() is True


def test_a_keeper_woken_after_the_deadline_raises_the_alarm_before_trying_again():
    clock = FakeClock(wall_start=time.time(), auto_advance=False)
    with Simulator(seed=9, auto_tick=False, ws=False, clock=clock) as sim:
        with sim_client(sim, clock=clock) as client:
            seen: list[BaseException] = []
            switch = client.dead_man_switch(timeout_s=10, refresh_s=3, on_error=seen.append)
            sim.faults.server_errors(500, count=1000, path=CAA)
            clock.advance(12)  # e.g. the process was suspended: refresh and deadline both passed
            assert wait_until(lambda: len(seen) == 2)
            alarm, attempt = seen
            # the alarm does not wait for an attempt that cannot help any more (and may hang)
            assert isinstance(alarm, DeadManSwitchError) and alarm.failures == 0
            assert isinstance(attempt, APIError) and attempt.code == "50026"
            stats = switch.stats()
            assert stats.expired and stats.expiries == 1 and stats.failures == 1
            sim.faults.clear()
            clock.advance(1.2)  # cancel-all-after allows 1 request/s: the disarm waits its turn
            assert switch.stop() is True
