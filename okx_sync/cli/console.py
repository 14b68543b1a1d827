"""Terminal helpers shared by the command-line tools (demo, drill, doctor, book, evidence).

- :func:`common_options`: the parent parser of the options every command
  shares (``-v``/``--verbose``; ``--json`` where the command prints JSON).

- :func:`cli_logging`: while a command runs, okx_sync's own log records go to
  stderr (``verbose``) or nowhere (the commands print what matters; drills
  inject faults on purpose and the library rightly warns about them). The
  previous logging state is restored on exit, so calling a command's
  ``main()`` in-process (tests) leaves logging as it was.
- :class:`Screen`: a block of lines that refreshes in place on a terminal
  (ANSI: cursor up, clear line) and is printed as plain lines otherwise.

Thread safety: ``cli_logging`` changes process-wide logging state; use it
from the thread that runs the command. A ``Screen`` belongs to one thread.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import IO

__all__ = ["cli_logging", "common_options", "Screen"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def common_options(
    *, json_help: str | None = None, verbose_help: str = "show okx_sync's log warnings on stderr"
) -> argparse.ArgumentParser:
    """A parent parser (``add_help=False``) with ``-v``/``--verbose`` and, when
    ``json_help`` is given, ``--json``. Pass it in ``parents=[...]``. Pure."""
    p = argparse.ArgumentParser(add_help=False)
    if json_help is not None:
        p.add_argument("--json", action="store_true", help=json_help)
    p.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    return p


@contextlib.contextmanager
def cli_logging(verbose: bool, stream: IO[str] | None = None) -> Iterator[None]:
    """Route the ``okx_sync`` logger for the duration of a command.

    ``verbose``: WARNING and above to ``stream`` (default stderr); otherwise the
    records are dropped (not propagated to the root logger's last-resort
    handler). Restores the logger's handlers, level and propagation on exit.
    """
    logger = logging.getLogger("okx_sync")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    handler: logging.Handler
    if verbose:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.setLevel(logging.WARNING)
    else:
        handler = logging.NullHandler()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


class Screen:
    """Draws a block of lines; on a TTY each :meth:`draw` replaces the previous block.

    ``tty`` defaults to ``stream.isatty()``. Without a TTY every draw prints
    its lines followed by a blank line (a log of frames, readable in a file).
    """

    def __init__(self, stream: IO[str] | None = None, *, tty: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self._drawn = 0
        self.frames = 0

    def draw(self, lines: Sequence[str]) -> None:
        """Show ``lines`` (replacing the previous frame on a TTY)."""
        out: list[str] = []
        if self.tty:
            if self._drawn:
                out.append(f"\033[{self._drawn}F")  # to the first line of the last frame
            out.extend(f"\033[2K{line}\n" for line in lines)
            extra = self._drawn - len(lines)
            if extra > 0:  # the new frame is shorter: clear what is left, come back up
                out.append("\033[2K\n" * extra + f"\033[{extra}F")
            self._drawn = len(lines)
        else:
            out.extend(f"{line}\n" for line in lines)
            out.append("\n")
        self.stream.write("".join(out))
        self.stream.flush()
        self.frames += 1
