"""sim.faults against a fake WS hub: the switchboard reaches connections only through the
WSFaultHub / WSFaultConn protocols (no sockets, no sim.ws)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from okx_sync.clock import FakeClock
from okx_sync.sim.faults import Faults


class FakeConn:
    def __init__(self, conn_id: str, kind: str) -> None:
        self.conn_id, self.kind = conn_id, kind
        self.events: list[Any] = []

    def drop(self) -> None:
        self.events.append("drop")

    def set_silent(self, silent: bool) -> None:
        self.events.append(("silent", silent))

    def notice_then_close(self, delay: float) -> None:
        self.events.append(("notice", delay))


class FakeTimers:
    def __init__(self) -> None:
        self.due: list[tuple[float, Callable[[], None]]] = []

    def schedule(self, delay: float, fn: Callable[[], None]) -> None:
        self.due.append((delay, fn))


class FakeHub:
    def __init__(self, conns: list[FakeConn]) -> None:
        self.conns = conns
        self.timers = FakeTimers()

    def select(
        self, *, kind: str | None = None, conn_id: str | None = None, which: str = "all"
    ) -> list[FakeConn]:
        out = [
            c
            for c in self.conns
            if (kind is None or c.kind == kind) and (conn_id is None or c.conn_id == conn_id)
        ]
        return out[:1] if which == "one" else out


@pytest.fixture
def parts() -> tuple[Faults, FakeHub]:
    faults = Faults(FakeClock(), exchange=None)  # type: ignore[arg-type]  # book faults unused
    hub = FakeHub([FakeConn("a", "public"), FakeConn("b", "private"), FakeConn("c", "public")])
    faults.attach_ws(hub)
    return faults, hub


def test_ws_faults_need_an_attached_hub() -> None:
    with pytest.raises(RuntimeError, match="WS server is not running"):
        Faults(FakeClock(), exchange=None).drop_ws()  # type: ignore[arg-type]


def test_drop_and_notice_act_on_the_selected_connections(parts) -> None:
    faults, hub = parts
    a, b, c = hub.conns
    assert faults.drop_ws(kind="public") == 2
    assert a.events == ["drop"] and c.events == ["drop"] and b.events == []
    assert faults.notice_then_close(0.5, which="one") == 1
    assert a.events[-1] == ("notice", 0.5) and c.events == ["drop"]
    assert faults.drop_ws(conn_id="b") == 1 and b.events == ["drop"]


def test_silence_for_a_while_schedules_the_end_on_the_hub_timers(parts) -> None:
    faults, hub = parts
    a, b, _c = hub.conns
    assert faults.silence_ws(conn_id="a", seconds=3.0) == 1
    assert a.events == [("silent", True)]
    [(delay, speak_again)] = hub.timers.due
    assert delay == 3.0
    speak_again()
    assert a.events[-1] == ("silent", False)
    faults.silence_ws(kind="private")  # until cleared
    assert b.events == [("silent", True)] and len(hub.timers.due) == 1
    faults.clear()
    assert all(conn.events[-1] == ("silent", False) for conn in hub.conns)
