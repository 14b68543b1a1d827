"""The Tkinter example (examples/gui_order_book.py) on a virtual X display, driven like a user.

Starts Xvfb on a free display (``-displayfd``), runs the example (embedded simulator)
with ``DISPLAY`` set, waits until the ladder shows prices, types a price and size into
the order ticket and presses Buy with xdotool (real X key events through XTEST),
checks on the simulator's control endpoint that the order arrived and rests on the
book at that price, saves a screenshot (``xwd`` -> PNG) under the test's tmp dir, reads
the status bar and the trade rows back from the widgets (F12: the example's check mode
prints them), and closes the window with Ctrl+Q.

The example runs with ``EXAMPLE_TK_CHECK=1`` (``examples/_tk_check.py``): every Tcl call
of the window is checked to come from the Tk thread; one that does not is reported on
stderr and counted, and the example exits 1. The test asserts none happened.

Skips, saying why, when Xvfb, xdotool, xwd or tkinter are missing (``.ci/run``
installs them: ``apt-get install xvfb xdotool x11-apps``).
"""

from __future__ import annotations

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
import urllib.request
import zlib
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

ASK_RGB, BID_RGB = bytes.fromhex("c0392b"), bytes.fromhex("1e8449")  # the example's colours
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "gui_order_book.py"
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


def control(url: str, path: str) -> object:
    with urllib.request.urlopen(url + path, timeout=5) as resp:
        body = json.load(resp)
    assert body["ok"], body
    return body["result"]


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


@pytest.mark.timeout(120)
def test_gui_places_an_order_through_the_ticket(display, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKX_")}
    env.update(DISPLAY=display, PYTHONUNBUFFERED="1", EXAMPLE_TK_CHECK="1")
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--seconds", "60"],  # --seconds: a bound if we fail
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=EXAMPLE.parent.parent,
    )
    lines = Lines(proc)
    try:
        venue = lines.wait(r"^venue: simulator rest=(\S+) control=(\S+)$", 20)
        control_url = venue.group(2)
        ladder = lines.wait(r"^ladder: best_bid=(\S+) best_ask=(\S+)$", 20)
        best_bid, best_ask = Decimal(ladder.group(1)), Decimal(ladder.group(2))
        assert best_bid < best_ask
        assert control(control_url, "/state")["orders"] == 0

        # A buy 2% under the best bid: below every level the simulator's market maker
        # quotes, so in the published book that price level is our order alone.
        px = (best_bid * Decimal("0.98")).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
        sz = Decimal("0.0123")
        window = xdotool(env, "search", "--sync", "--onlyvisible", "--name", "okx_sync - BTC-USDT")
        window = window.split()[0]
        xdotool(env, "windowfocus", "--sync", window)
        # Focus starts in the Price field; Tab order is Price -> Size -> Buy.
        xdotool(env, "type", "--delay", "20", str(px))
        xdotool(env, "key", "Tab")
        xdotool(env, "type", "--delay", "20", str(sz))
        xdotool(env, "key", "Tab", "space")

        placed = lines.wait(r"^order: buy px=(\S+) sz=(\S+) ordId=(\d+)$", 20)
        assert (Decimal(placed.group(1)), Decimal(placed.group(2))) == (px, sz)

        # The simulator has it: one order, resting, and on the published book at our price.
        deadline = time.monotonic() + 10
        while True:
            state = control(control_url, "/state")
            bids = control(control_url, "/book/BTC-USDT")["bids"]
            level = [lvl for lvl in bids if Decimal(lvl[0]) == px]
            if state["pending_orders"] == 1 and level:
                break
            assert time.monotonic() < deadline, (state, bids[-3:])
            time.sleep(0.1)
        assert state["orders"] == 1
        assert Decimal(level[0][1]) == sz

        # Screenshot once the private orders push has reached the "My orders" list.
        lines.wait(rf"^my order: ordId={placed.group(3)} state=live$", 10)
        time.sleep(0.2)  # the list is redrawn when Tk is idle, just after the print
        xwd = tmp_path / "gui_order_book.xwd"
        subprocess.run(
            ["xwd", "-silent", "-id", window, "-out", str(xwd)],
            env=env,
            check=True,
            timeout=15,
        )
        width, height, rgb = xwd_to_rgb(xwd.read_bytes())
        shot = tmp_path / "gui_order_book.png"
        shot.write_bytes(png(width, height, rgb))
        assert width > 400 and height > 300, (width, height)
        # The ladder's ask (red) and bid (green) rows are on screen.
        pixels = {rgb[i : i + 3] for i in range(0, len(rgb), 3)}
        assert {ASK_RGB, BID_RGB} <= pixels, f"ladder colours missing from {shot}"

        # What the widgets hold, read through Tk on its own thread: WS stats in the status
        # bar, and trade rows (the simulator's market trades all the time).
        deadline = time.monotonic() + 15
        while True:
            xdotool(env, "key", "F12")
            state = json.loads(lines.wait(r"^state: (.*)$", 10, fresh=True).group(1))
            if state["trades"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        status = state["status"].splitlines()
        assert re.fullmatch(
            r"public: up msgs=[1-9]\d* reconnects=0 queue=\d+ dropped=0 handler_errors=0",
            status[0],
        ), status
        assert re.match(r"private: up msgs=[1-9]\d* reconnects=0 ", status[1]), status
        assert re.match(r"book in sync seq=\d+ resyncs=0 ", status[2]), status
        assert state["trades"], state
        assert re.fullmatch(r"\d\d:\d\d:\d\d (buy |sell) \d+(\.\d+)? \d+(\.\d+)?",
                            state["trades"][0]), state["trades"]  # fmt: skip

        xdotool(env, "key", "ctrl+q")
        lines.wait(r"^window closed$", 15)
        lines.wait(r"^tk thread violations: 0$", 15)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        err = proc.stderr.read() if proc.stderr else ""
        print(f"stdout: {lines.seen}\nstderr: {err[-3000:]}")
