"""A python-okx strategy, moved onto okx_sync by changing its imports — nothing else.

    python examples/python_okx_strategy.py                  # against the simulator
    python examples/python_okx_strategy.py --storm 1        # ... with a 1 s 429 storm first
    python examples/python_okx_strategy.py --live --demo    # OKX demo (OKX_API_KEY, ...)

The strategy below is written the python-okx way: ``XxxAPI(key, secret, passphrase,
False, flag)`` objects, positional camelCase arguments, the ``{"code", "msg", "data"}``
dict back, no rate limiting of its own. Each loop reads the ticker, places a limit buy
5% under the bid, reads it back and cancels it. It counts the answers by code.

With python-okx (``import okx.Trade as Trade`` ...), a burst of requests meets 429s:
the 50011 envelopes reach the strategy. With the imports below, the same code runs
through one shared ``okx_sync.Client``: its request gate paces the calls inside OKX's
limits and, after a 429, holds every thread and retries the refused (not executed)
requests, so the strategy sees none — and an order whose answer is lost is never sent twice.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from decimal import ROUND_DOWN, Decimal

# The only change from python-okx: these three lines read `import okx.Account as Account` ...
import okx_sync.compat.okx.Account as Account
import okx_sync.compat.okx.MarketData as MarketData
import okx_sync.compat.okx.Trade as Trade
from _common import parser, say

TICK = Decimal("0.1")


class Strategy:
    """The legacy strategy, unchanged from its python-okx days."""

    def __init__(self, api_key, secret_key, passphrase, flag, domain, inst_id):
        self.market = MarketData.MarketAPI(api_key, secret_key, passphrase, False, flag, domain)
        self.trade = Trade.TradeAPI(api_key, secret_key, passphrase, False, flag, domain)
        self.account = Account.AccountAPI(api_key, secret_key, passphrase, False, flag, domain)
        self.inst_id = inst_id
        self.codes = Counter()

    def count(self, result):
        self.codes[result["code"]] += 1
        return result["code"] == "0"

    def run(self, loops):
        """Quote, check and cancel ``loops`` times; returns the answers by code."""
        for i in range(loops):
            ticker = self.market.get_ticker(self.inst_id)
            if not self.count(ticker):
                continue
            bid = Decimal(ticker["data"][0]["bidPx"])
            px = (bid * Decimal("0.95")).quantize(TICK, rounding=ROUND_DOWN)
            cl_ord_id = f"legacy{os.getpid()}n{i}"
            placed = self.trade.place_order(
                self.inst_id, "cash", "buy", "limit", "0.0001", clOrdId=cl_ord_id, px=str(px)
            )
            if not self.count(placed):
                continue
            order = self.trade.get_order(self.inst_id, clOrdId=cl_ord_id)
            if self.count(order):
                self.count(self.trade.cancel_order(self.inst_id, clOrdId=cl_ord_id))
        balance = self.account.get_account_balance("USDT")
        if self.count(balance):
            usdt = balance["data"][0]["details"][0]
            say(f"balance USDT: available {usdt['availBal']}")
        return self.codes


def main() -> int:
    p = parser("A python-okx strategy running on okx_sync", seconds=0)
    p.add_argument("--loops", type=int, default=8, help="strategy loops (default 8)")
    p.add_argument(
        "--storm",
        type=float,
        default=0.0,
        help="simulator only: answer every request 429 for this many seconds first",
    )
    args = p.parse_args()
    if args.live:
        missing = [
            k for k in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE") if not os.environ.get(k)
        ]
        if missing:
            sys.exit(f"--live needs {', '.join(missing)} in the environment")
        domain = os.environ.get("OKX_BASE_URL", "https://www.okx.com")
        flag = "1" if args.demo else "0"
        say(f"venue: OKX {'demo' if args.demo else 'live'} at {domain}")
        key = [os.environ[k] for k in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")]
        codes = Strategy(*key, flag, domain, args.inst_id).run(args.loops)
    else:
        from okx_sync.sim import Simulator

        with Simulator(seed=args.seed, ws=False) as sim:
            say(f"venue: simulator rest={sim.rest_url}")
            demo = sim.credentials.demo  # flag '1': the demo key, like most python-okx users
            strategy = Strategy(
                demo.api_key, demo.secret_key, demo.passphrase, "1", sim.rest_url, args.inst_id
            )
            if args.storm > 0:
                sim.faults.rate_limit_storm(args.storm)
                say(f"429 storm: every request refused for {args.storm:g} s")
            codes = strategy.run(args.loops)
    ok = codes.pop("0", 0)
    say(
        f"answers: ok={ok} rate_limited={codes.pop('50011', 0)} other={dict(sorted(codes.items()))}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
