"""What every example shares: ``--live``/``--demo``/``--seconds`` and where the Client comes from.

By default an example starts the embedded simulator (:mod:`okx_sync.sim`) in its
own process and trades against it, so it runs anywhere, offline, in seconds.
``--live`` builds the Client from the environment instead
(``okx_sync.Client.from_env``: ``OKX_API_KEY``, ``OKX_SECRET_KEY``,
``OKX_PASSPHRASE``; ``OKX_BASE_URL`` and ``OKX_WS_PUBLIC_URL`` /
``OKX_WS_PRIVATE_URL`` / ``OKX_WS_BUSINESS_URL`` optional); examples that only
read public data (``parser(..., public=True)``) need no key. ``--live --demo``
adds OKX's demo-trading header (``x-simulated-trading: 1``; demo keys only work
with it) and uses OKX's demo WS hosts.

Only public API is used here: :class:`okx_sync.Client` and
:class:`okx_sync.sim.Simulator`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import okx_sync

if TYPE_CHECKING:
    from okx_sync.sim import Simulator

__all__ = ["parser", "connect", "say", "Venue"]

_CREDENTIAL_VARS = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")


_print_lock = threading.Lock()


def say(text: str) -> None:
    """``print`` for examples whose WS handlers print too: one whole line at a time.

    Plain ``print`` from several threads can interleave its text and newline.
    """
    with _print_lock:
        print(text, flush=True)


def parser(
    description: str, *, seconds: float = 3.0, public: bool = False
) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the options every example takes.

    ``public=True``: the example reads only public data, so ``--live`` needs no key.
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--live",
        action="store_true",
        help="use OKX's public data (no key needed)"
        if public
        else "use OKX with OKX_API_KEY / OKX_SECRET_KEY / OKX_PASSPHRASE from the environment",
    )
    p.set_defaults(public_only=public)
    p.add_argument(
        "--demo", action="store_true", help="with --live: OKX demo trading (demo API keys)"
    )
    p.add_argument("--inst-id", default="BTC-USDT", help="instrument (default BTC-USDT)")
    p.add_argument(
        "--seconds", type=float, default=seconds, help=f"how long to run (default {seconds:g})"
    )
    p.add_argument("--seed", type=int, default=7, help="simulator seed (ignored with --live)")
    p.add_argument("-v", "--verbose", action="store_true", help="log okx_sync at INFO")
    return p


class Venue:
    """Where an example trades: ``client`` always; ``sim`` only without ``--live``.

    Examples use ``sim`` for things only a simulator can do (inject a fault to
    show the recovery); they skip those steps when it is None.
    """

    def __init__(self, client: okx_sync.Client, sim: Simulator | None) -> None:
        self.client = client
        self.sim = sim

    @property
    def name(self) -> str:
        """``simulator``, ``OKX demo`` or ``OKX live`` (for the example's output)."""
        if self.sim is not None:
            return "simulator"
        return "OKX demo" if self.client.demo else "OKX live"


@contextlib.contextmanager
def connect(args: argparse.Namespace, **client_options: Any) -> Iterator[Venue]:
    """Start the simulator (default) or read credentials from the environment (``--live``).

    Yields a :class:`Venue`; closes the client (and the simulator) on exit.
    ``client_options`` go to ``Client``. Exits (status 1) with a message
    when ``--live`` lacks credentials (an example built with ``public=True``
    runs without any, but not with only some of them).
    """
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.demo and not args.live:
        sys.exit("--demo goes with --live (without --live the simulator is used)")
    if args.live:
        if args.demo:
            client_options.setdefault("demo", True)
        missing = [k for k in _CREDENTIAL_VARS if not os.environ.get(k)]
        keyless = args.public_only and len(missing) == len(_CREDENTIAL_VARS)
        if missing and not keyless:
            sys.exit(f"--live needs {', '.join(missing)} in the environment")
        with okx_sync.Client.from_env(**client_options) as client:
            client.sync_time()
            say(f"venue: {Venue(client, None).name} at {client.base_url}")
            yield Venue(client, None)
        return
    # Imported only when used: a --live run does not load the simulator.
    from okx_sync.sim import Simulator
    from okx_sync.testing import sim_client

    with Simulator(seed=args.seed) as sim, sim_client(sim, **client_options) as client:
        # The control URL lets another process (a test, a drill) inspect this simulator.
        say(f"venue: simulator rest={sim.rest_url} control={sim.control_url}")
        yield Venue(client, sim)
