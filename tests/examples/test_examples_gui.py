"""The Tkinter example (examples/gui_trader.py) on a virtual X display, driven like a user.

Starts Xvfb on a free display (``-displayfd``) and a simulator standing in for OKX, and
runs the example with ``--live`` and the ``OKX_*`` variables naming that simulator, so
the test sees the exchange's side of every click (``sim.exchange.orders``). The window
writes what its widgets show, and where the named ones are on the screen, to a JSON file
(``EXAMPLE_TK_STATE``); the test clicks those coordinates and types with xdotool (real X
events through XTEST): a price and size into the ticket, Place, the order's own Cancel
button, Place again, the safe-mode switch (Place is then refused before sending, while
Cancel all still goes out), the switch off, Place, and finally Ctrl+Q, which with an order
open asks what to do: "Cancel them, then close". A second test picks Sell, places with
Return, keeps the window when asked, has the exchange fail the cancels (the window stays
open, saying so) and finally leaves the order open. A third runs the default (the
embedded simulator) and closes with nothing open, unasked. Every step waits on
observable state (the simulator's orders, the window's state file, the example's output
lines) with a deadline, never on a sleep. Screenshots (``xwd`` -> PNG) are saved under
the tests' tmp dirs.

The example runs with ``EXAMPLE_TK_CHECK=1`` (``examples/_tk_check.py``): every Tcl call
of the window is checked to come from the Tk thread; one that does not is reported on
stderr and counted, and the example exits 1. The tests assert none happened.

Skips, saying why, when Xvfb, xdotool, xwd or tkinter are missing (``.ci/run``
installs them: ``apt-get install xvfb xdotool x11-apps``).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import select
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from okx_sync.testing import wait_until

ASK_RGB, BID_RGB = bytes.fromhex("c0392b"), bytes.fromhex("1e8449")  # the example's colours
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gui_trader.py"
T = TypeVar("T")
TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "xwd": "x11-apps"}
MISSING = [
    f"{tool} (apt-get install {pkg})" for tool, pkg in TOOLS.items() if not shutil.which(tool)
]

try:
    import tkinter  # noqa: F401
except ImportError:  # pragma: no cover - depends on the Python build
    MISSING.append("tkinter (python3-tk)")

pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"GUI test needs {', '.join(MISSING)}")


@pytest.fixture
def display():
    """A fresh Xvfb server on a display number it picks itself; yields ``":N"``."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 10.0)
        number = os.read(read_fd, 32).decode().strip() if ready else ""
        if not number.isdigit():
            proc.kill()
            _, err = proc.communicate(timeout=5)
            pytest.fail(f"Xvfb did not start: {err.decode(errors='replace')[-500:]}")
        yield f":{number}"
    finally:
        os.close(read_fd)
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Lines:
    """The example's stdout, read on a thread; ``wait(pattern)`` returns the first match."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name="gui-stdout", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait(self, pattern: str, timeout: float, *, fresh: bool = False) -> re.Match[str]:
        """The first line (already read or, ``fresh``: only still to come) matching
        ``pattern``."""
        rx = re.compile(pattern)
        for line in () if fresh else self.seen:
            if m := rx.search(line):
                return m
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no line matching {pattern!r}; stdout so far: {self.seen}")
            self.seen.append(line)
            if m := rx.search(line):
                return m


def xdotool(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        ["xdotool", *args], env=env, capture_output=True, text=True, timeout=15, check=True
    )
    return out.stdout.strip()


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 15.0) -> T:
    """Poll ``check()`` (observable state: the simulator, the window's state file) until it
    returns something truthy; fail naming ``what`` after ``timeout`` s."""
    seen: list[Any] = [None]

    def probe() -> Any:
        seen[0] = check()
        return seen[0]

    if not wait_until(probe, timeout, 0.05):
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return seen[0]


class Window:
    """The example's window seen from outside: its state file and real X input."""

    def __init__(self, env: dict[str, str], state_path: Path) -> None:
        self.env, self.state_path = env, state_path

    def state(self) -> dict[str, Any]:
        """The newest state the window wrote ({} before the first)."""
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}

    def wait(self, what: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first state for which ``check(state)`` holds."""
        return wait_for(what, lambda: (st := self.state()) and check(st) and st)

    def click(self, widget: str) -> None:
        """Move the pointer to the middle of ``widget`` (once it is on screen) and click.

        The coordinates come from a state written after this call began (a newer
        ``serial``), so a layout change from anything seen before is in them.
        """
        seen = self.state().get("serial", 0)
        st = self.wait(
            f"widget {widget} on screen",
            lambda st: st["serial"] > seen and widget in st["widgets"],
        )
        x, y, w, h = st["widgets"][widget]
        # one xdotool run: move (waiting until the pointer is there), press and release
        # (``--delay 0``: xdotool would otherwise sleep 100 ms after the click)
        xdotool(self.env, "mousemove", "--sync", str(x + w // 2), str(y + h // 2),
                "click", "--delay", "0", "1")  # fmt: skip

    def type_into(self, widget: str, text: str) -> None:
        self.click(widget)  # Tk focuses an entry on click; X focus follows the pointer
        xdotool(self.env, "type", "--delay", "20", text)

    def screenshot(self, window_id: str, tmp_path: Path, name: str) -> tuple[Path, bytes]:
        """Save the window (``"root"``: the whole screen) as ``name``.png under ``tmp_path``;
        returns the path and the RGB pixels."""
        xwd = tmp_path / f"{name}.xwd"
        target = ["-root"] if window_id == "root" else ["-id", window_id]
        subprocess.run(["xwd", "-silent", *target, "-out", str(xwd)],
                       env=self.env, check=True, timeout=15)  # fmt: skip
        width, height, rgb = xwd_to_rgb(xwd.read_bytes())
        shot = tmp_path / f"{name}.png"
        shot.write_bytes(png(width, height, rgb))
        assert width > 400 and height > 300, (width, height)
        return shot, rgb


def xwd_to_rgb(xwd: bytes) -> tuple[int, int, bytes]:
    """``(width, height, RGB bytes)`` of a 32-bit TrueColor XWD image (``xwd`` on Xvfb)."""
    (header_size,) = struct.unpack(">I", xwd[:4])
    fields = struct.unpack(">25I", xwd[:100])
    assert fields[1] == 7, "XWD version 7 expected"
    width, height, byte_order = fields[4], fields[5], fields[7]
    bits_per_pixel, bytes_per_line, ncolors = fields[11], fields[12], fields[19]
    masks = fields[14:17]
    assert bits_per_pixel == 32, f"unsupported XWD: {bits_per_pixel} bits per pixel"
    pixels = xwd[header_size + 12 * ncolors :]
    # byte of each channel inside a 4-byte pixel, from the channel masks
    offsets = []
    for mask in masks:
        shift = (mask & -mask).bit_length() - 1
        offsets.append(shift // 8 if byte_order == 0 else 3 - shift // 8)
    rgb = bytearray()
    for y in range(height):
        row = pixels[y * bytes_per_line : y * bytes_per_line + 4 * width]
        line = bytearray(3 * width)
        for channel, off in enumerate(offsets):
            line[channel::3] = row[off::4]
        rgb += line
    return width, height, bytes(rgb)


def png(width: int, height: int, rgb: bytes) -> bytes:
    """A PNG (8-bit RGB, no filter) of ``rgb`` rows."""
    stride = 3 * width
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 6))
        + chunk(b"IEND", b"")
    )


def sim_order(sim: Any, ord_id: str) -> Any:
    return sim.exchange.orders.get(ord_id)


def new_order_at(sim: Any, known: set[str], px: Decimal) -> str | None:
    """The ordId of an order the simulator got that is not in ``known``, at ``px``."""
    for ord_id, order in sim.exchange.orders.items():
        if ord_id not in known and order.px == px:
            return ord_id
    return None


@contextlib.contextmanager
def running(env: dict[str, str], *args: str) -> Iterator[tuple[subprocess.Popen[str], Lines]]:
    """The example running with ``args`` on ``env`` (killed on exit if still running; its
    output is printed for the test report)."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=EXAMPLE.parent.parent,
    )
    lines = Lines(proc)
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        err = proc.stderr.read() if proc.stderr else ""
        print(f"stdout: {lines.seen}\nstderr: {err[-3000:]}")


def gui_env(display: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a checked run (``EXAMPLE_TK_CHECK``, ``EXAMPLE_TK_STATE``)
    without the caller's ``OKX_*`` variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKX_")}
    env.update(
        DISPLAY=display,
        PYTHONUNBUFFERED="1",
        EXAMPLE_TK_CHECK="1",
        EXAMPLE_TK_STATE=str(tmp_path / "state.json"),
        **extra,
    )
    return env


class Gui:
    """The example running with ``--live`` against ``sim``, on ``env``'s display."""

    def __init__(self, sim: Any, env: dict[str, str], proc: subprocess.Popen[str],
                 lines: Lines, tmp_path: Path) -> None:  # fmt: skip
        self.sim, self.env, self.proc, self.lines = sim, env, proc, lines
        self.tmp_path = tmp_path
        self.window = Window(env, tmp_path / "state.json")

    def start(self) -> tuple[Decimal, Decimal]:
        """Wait until the window shows the book and the balance; the best bid and ask."""
        lines, window = self.lines, self.window
        lines.wait(r"^venue: OKX live at http://127\.0\.0\.1:\d+$", 20)
        ladder = lines.wait(r"^ladder: best_bid=(\S+) best_ask=(\S+)$", 20)
        best_bid, best_ask = Decimal(ladder.group(1)), Decimal(ladder.group(2))
        assert best_bid < best_ask
        st = window.wait("the balance line", lambda st: "USDT" in st.get("account", ""))
        assert re.fullmatch(r"balance: BTC \d+(\.\d+)? \(avail \d+(\.\d+)?\)   "
                            r"USDT \d+(\.\d+)? \(avail \d+(\.\d+)?\)", st["account"]), st  # fmt: skip
        assert self.sim.exchange.orders == {}
        found = xdotool(self.env, "search", "--sync", "--onlyvisible", "--name", "okx_sync - ")
        self.window_id = found.split()[0]
        return best_bid, best_ask

    def place(self, side: str, px: Decimal, sz: Decimal, *, key: str = "") -> str:
        """Press Place (or ``key`` in the ticket's field last typed into); the new order's
        ordId, once the simulator has it live and the window lists it with its own Cancel
        button. The ticket must be filled in already."""
        sim, known = self.sim, set(self.sim.exchange.orders)
        if key:
            xdotool(self.env, "key", key)
        else:
            self.window.click("place")
        ord_id = wait_for("the order on the simulator", lambda: new_order_at(sim, known, px))
        order = sim_order(sim, ord_id)
        assert (order.side, order.sz, order.state) == (side, sz, "live")
        self.lines.wait(rf"^order: {side} px={px} sz={sz} ordId={ord_id}$", 10)
        self.window.wait(f"{ord_id} listed", lambda st: f"cancel:{ord_id}" in st["widgets"])
        return ord_id

    def close_window(self) -> None:
        """Ctrl+Q, as a person closing the window would."""
        xdotool(self.env, "windowfocus", "--sync", self.window_id)
        xdotool(self.env, "key", "ctrl+q")


@pytest.fixture
def gui(display, tmp_path):
    """A simulator standing in for OKX and the example on it (``--live``, keys in the env)."""
    from okx_sync.sim import Simulator

    with Simulator(seed=5) as sim:
        creds = sim.credentials.live
        env = gui_env(
            display,
            tmp_path,
            OKX_BASE_URL=sim.rest_url,
            OKX_WS_PUBLIC_URL=sim.ws_public_url,
            OKX_WS_PRIVATE_URL=sim.ws_private_url,
            OKX_WS_BUSINESS_URL=sim.ws_business_url,
            OKX_API_KEY=creds.api_key,
            OKX_SECRET_KEY=creds.secret_key,
            OKX_PASSPHRASE=creds.passphrase,
        )
        # --seconds: a bound if the test fails
        with running(env, "--live", "--seconds", "120") as (proc, lines):
            yield Gui(sim, env, proc, lines, tmp_path)


def assert_closed_cleanly(gui: Gui) -> None:
    gui.lines.wait(r"^window closed$", 15)
    gui.lines.wait(r"^tk thread violations: 0$", 15)
    assert gui.proc.wait(15) == 0


@pytest.mark.timeout(150)
def test_gui_places_cancels_and_safe_mode_through_the_widgets(gui, tmp_path):
    sim, lines, window = gui.sim, gui.lines, gui.window
    best_bid, _ = gui.start()

    # A buy 2% under the best bid: below every level the simulator's market maker quotes,
    # so it rests (never fills) for as long as the test runs.
    px = (best_bid * Decimal("0.98")).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    sz = Decimal("0.0123")
    window.type_into("price", str(px))
    window.type_into("size", str(sz))

    # place -> the order's own Cancel button
    first = gui.place("buy", px, sz)
    window.click(f"cancel:{first}")
    wait_for("the cancel on the simulator", lambda: sim_order(sim, first).state == "canceled")
    lines.wait(rf"^cancel: ordId={first} accepted$", 10)
    window.wait(f"{first} gone from the list", lambda st: st["open_orders"] == [])

    # place again, then safe mode on: Place is refused before sending, nothing reaches
    # the simulator; the resting order stays; Cancel all still goes out.
    second = gui.place("buy", px, sz)
    window.click("safe_mode")
    lines.wait(r"^safe mode: on drained=True$", 15)
    window.wait("the switch on", lambda st: st["safe_mode"])
    sent = len(sim.exchange.orders)
    window.click("place")
    lines.wait(r"^order error: buy refused: SafeModeError: ", 10)
    assert len(sim.exchange.orders) == sent  # the refused placement never left the client
    assert sim_order(sim, second).state == "live"  # safe mode alone cancels nothing
    window.click("cancel_all")
    lines.wait(r"^cancel all: 1 of 1 accepted, 0 failed$", 15)
    wait_for("cancel all on the simulator", lambda: sim_order(sim, second).state == "canceled")
    window.wait("the list empty", lambda st: st["open_orders"] == [])

    # safe mode off: placing works again
    window.click("safe_mode")
    lines.wait(r"^safe mode: off$", 15)
    third = gui.place("buy", px, sz)

    # What the person sees: the ladder's ask (red) and bid (green) rows, the order listed.
    shot, rgb = window.screenshot(gui.window_id, tmp_path, "gui_trader")
    pixels = {rgb[i : i + 3] for i in range(0, len(rgb), 3)}
    assert {ASK_RGB, BID_RGB} <= pixels, f"ladder colours missing from {shot}"
    st = window.state()
    status = st["status"].splitlines()
    assert re.fullmatch(r"health: (ok|degraded \(.*\))", status[0]), status
    assert re.fullmatch(
        r"public: up msgs=[1-9]\d* reconnects=0 queue=\d+ dropped=0 handler_errors=0", status[1]
    ), status
    assert re.match(r"private: up msgs=[1-9]\d* reconnects=0 ", status[2]), status
    assert re.match(r"book in sync seq=\d+ resyncs=0 ", status[3]), status
    assert st["trades"] and re.fullmatch(r"\d\d:\d\d:\d\d (buy |sell) \S+ \S+", st["trades"][0])

    # Closing with an order open asks; "Cancel them, then close" cancels, then closes.
    gui.close_window()
    lines.wait(r"^asking: 1 open order\(s\)$", 10)
    assert sim_order(sim, third).state == "live"  # asking cancels nothing
    window.click("close_cancel")
    lines.wait(r"^cancel all: 1 of 1 accepted, 0 failed$", 15, fresh=True)
    lines.wait(r"^closing: open orders cancelled$", 10)
    assert_closed_cleanly(gui)
    # Nothing left open: every order the window placed ended canceled.
    assert {o.state for o in sim.exchange.orders.values()} == {"canceled"}


@pytest.mark.timeout(120)
def test_closing_asks_and_keeps_the_window_when_cancels_fail(gui):
    sim, lines, window = gui.sim, gui.lines, gui.window
    _, best_ask = gui.start()
    # A sell 2% over the best ask (the account holds BTC): it rests, never fills.
    px = (best_ask * Decimal("1.02")).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    sz = Decimal("0.0042")
    window.click("side_sell")
    window.type_into("price", str(px))
    window.type_into("size", str(sz))
    ord_id = gui.place("sell", px, sz, key="Return")  # Return in a field places too

    gui.close_window()
    lines.wait(r"^asking: 1 open order\(s\)$", 10)
    window.screenshot("root", gui.tmp_path, "gui_trader_asking")  # the dialog, to look at
    window.click("close_stay")  # changed my mind: the window stays, the order too
    lines.wait(r"^close: kept open$", 10)
    window.wait("the dialog gone", lambda st: not st["dialog"])
    assert gui.proc.poll() is None

    # The cancels fail (HTTP 500 from the exchange): the window says so and stays open.
    sim.faults.server_errors(500, seconds=60, path="/api/v5/trade/cancel-batch-orders")
    gui.close_window()
    lines.wait(r"^asking: 1 open order\(s\)$", 10, fresh=True)
    window.click("close_cancel")
    lines.wait(r"^cancel all: 0 of 1 accepted, 1 failed \(APIError: ", 30)
    window.wait("the failure shown", lambda st: st["ticket"].endswith(": window kept open"))
    assert gui.proc.poll() is None and sim_order(sim, ord_id).state == "live"
    sim.faults.clear()

    gui.close_window()
    lines.wait(r"^asking: 1 open order\(s\)$", 10, fresh=True)
    window.click("close_leave")
    lines.wait(rf"^closing: 1 order\(s\) stay open: {ord_id}$", 10)
    assert_closed_cleanly(gui)
    assert sim_order(sim, ord_id).state == "live"  # left open, as the person chose


@pytest.mark.timeout(90)
def test_gui_runs_on_the_embedded_simulator_by_default(display, tmp_path):
    env = gui_env(display, tmp_path)
    window = Window(env, tmp_path / "state.json")
    with running(env, "--seconds", "60") as (proc, lines):  # --seconds: a bound if we fail
        lines.wait(r"^venue: simulator rest=http://127\.0\.0\.1:\d+ control=http://", 20)
        lines.wait(r"^ladder: best_bid=\S+ best_ask=\S+$", 20)
        st = window.wait("the balance line", lambda st: "USDT" in st.get("account", ""))
        assert st["open_orders"] == [] and not st["safe_mode"], st
        found = xdotool(env, "search", "--sync", "--onlyvisible", "--name", "okx_sync - ")
        xdotool(env, "windowfocus", "--sync", found.split()[0])
        xdotool(env, "key", "ctrl+q")  # nothing open: it closes without asking
        lines.wait(r"^closing: no open orders$", 10)
        lines.wait(r"^window closed$", 15)
        lines.wait(r"^tk thread violations: 0$", 15)
        assert proc.wait(15) == 0
        assert not any(line.startswith("asking") for line in lines.seen)
