"""Stream tickers over the public WebSocket until N messages or N seconds.

    python examples/stream_tickers.py --count 20
    python examples/stream_tickers.py --live --inst-id BTC-USDT,ETH-USDT --seconds 10

Handlers run on okx_sync's WS threads (inline on the reader by default), so they
must be quick and never block: this one prints and counts.
"""

from __future__ import annotations

import threading

from _common import connect, parser, say

import okx_sync


def main() -> int:
    p = parser(__doc__.splitlines()[0], public=True)  # public data: --live needs no key
    p.add_argument("--count", type=int, default=10, help="stop after this many tickers")
    p.set_defaults(inst_id="BTC-USDT,ETH-USDT")  # --inst-id takes a comma-separated list here
    args = p.parse_args()
    inst_ids = args.inst_id.split(",")
    seen = 0
    done = threading.Event()

    def on_ticker(t: okx_sync.Ticker) -> None:  # runs on a WS thread
        nonlocal seen  # only this handler writes it, and inline dispatch runs one at a time
        seen += 1
        say(f"ticker {t.inst_id}: last={t.last} bid={t.bid_px} ask={t.ask_px}")
        if seen >= args.count:
            done.set()

    with connect(args) as venue, venue.client.ws_public() as ws:
        ws.on("tickers", on_ticker)
        # Returns once OKX acknowledged every channel; raises WSSubscribeError if one is refused.
        ws.subscribe_and_wait([{"channel": "tickers", "instId": i} for i in inst_ids])
        finished = done.wait(args.seconds)
        ws.off(on_ticker)
        s = ws.stats()
        say(
            f"{'got' if finished else 'timed out after'} {seen} tickers; ws messages={s.messages} "
            f"reconnects={s.reconnects} handler_errors={s.handler_errors}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
