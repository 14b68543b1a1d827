"""A check mode for the GUI example (set ``EXAMPLE_TK_CHECK=1``): not needed to use it.

Tk is single-threaded. With the check on, every Tcl call of the window (each
widget method goes through ``root.tk.call``) first checks that it runs on the
thread that created the window, and fails loudly otherwise: a message and the
stack on stderr, a ``RuntimeError`` in the offending thread, and the count of
violations printed when the window closes (the example then exits 1).
``F12`` prints the window's state as the widgets hold it (``state: {...}``,
one JSON line) for whoever drives the window from outside, such as the GUI test.
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


def install(root: tk.Tk, state: Callable[[], dict[str, Any]]) -> Callable[[], int]:
    """Check ``root``'s Tcl calls (before any widget is made) and bind F12 to print
    ``state()``. Returns a function giving the number of violations so far."""
    guard = _MainThreadOnly(root.tk)
    root.tk = guard  # widgets made from now on share it (a widget's tk is its master's)
    root.bind_all("<F12>", lambda _e: print("state: " + json.dumps(state()), flush=True))
    return lambda: guard.violations
