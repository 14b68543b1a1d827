"""Check mode for the GUI example: not needed to use it.

``EXAMPLE_TK_CHECK=1``: Tk is single-threaded, so every Tcl call of the window (each
widget method goes through ``root.tk.call``) first checks that it runs on the thread
that created the window, and fails loudly otherwise: a message and the stack on
stderr, a ``RuntimeError`` in the offending thread, and the count of violations
printed when the window closes (the example then exits 1).

``EXAMPLE_TK_STATE=PATH``: every 50 ms the window's state as the widgets hold it
(what they show and where the named widgets are on the screen) is written to PATH as
one JSON object, replaced whole (write, then rename), numbered by ``serial``, for whoever
drives the window from outside, such as the GUI test, which clicks on those coordinates
(taken from a state numbered after it decided to click, so they are current).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import tkinter as tk
import traceback
from collections.abc import Callable
from typing import Any

ENABLED = os.environ.get("EXAMPLE_TK_CHECK") == "1"
STATE_PATH = os.environ.get("EXAMPLE_TK_STATE", "")
STATE_MS = 50  # a driver waiting for a newer state waits this long at most


class _MainThreadOnly:
    """Stands in for ``root.tk``: the same Tcl interpreter, calls checked for their thread."""

    def __init__(self, tkapp: Any) -> None:
        self._tkapp, self._owner = tkapp, threading.current_thread()
        self.violations = 0

    def call(self, *args: Any) -> Any:
        if threading.current_thread() is not self._owner:
            self.violations += 1
            where = "".join(traceback.format_stack(limit=6))
            print(f"TK CHECK: Tk called from {threading.current_thread().name}: {args[:3]}\n"
                  f"{where}", file=sys.stderr, flush=True)  # fmt: skip
            raise RuntimeError("a widget was touched outside the Tk thread")
        return self._tkapp.call(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tkapp, name)


def install(root: tk.Tk) -> Callable[[], int]:
    """Check ``root``'s Tcl calls (call before any widget is made). Returns a function
    giving the number of violations so far."""
    guard = _MainThreadOnly(root.tk)
    root.tk = guard  # widgets made from now on share it (a widget's tk is its master's)
    return lambda: guard.violations


def publish_state(root: tk.Tk, state: Callable[[], dict[str, Any]], path: str) -> None:
    """Write ``state()`` to ``path`` now and every ``STATE_MS`` on the Tk thread, until
    ``root`` is destroyed."""

    serial = 0

    def write() -> None:
        nonlocal serial
        serial += 1  # a reader waiting for a newer serial sees everything done before it
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({**state(), "serial": serial}, f)
        os.replace(tmp, path)
        root.after(STATE_MS, write)

    root.after(STATE_MS, write)
