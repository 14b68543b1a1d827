"""okx_sync.sim — a local OKX V5 (REST + WebSocket) to run the demo, tests, examples and drills.

Quick start::

    from okx_sync.sim import Simulator

    with Simulator(seed=7) as sim:               # binds 127.0.0.1 on free ports, starts threads
        sim.rest_url                             # http://127.0.0.1:PORT   (paths /api/v5/...)
        sim.ws_public_url                        # ws://127.0.0.1:PORT/ws/v5/public
        sim.ws_private_url, sim.ws_business_url
        sim.control_url                          # http://127.0.0.1:PORT2/TOKEN (control endpoint)
        sim.credentials.live                     # okx_sync.auth.Credentials (no demo header)
        sim.credentials.demo                     # needs header x-simulated-trading: 1
        sim.credentials.live_uid, .demo_uid      # the accounts they trade (separate balances)
        client = okx_sync.testing.sim_client(sim)  # okx_sync.Client pointed at it (demo=True: demo key)

``python -m okx_sync sim`` serves it standalone and prints the URLs and credentials.

Constructor ``Simulator(seed=0, instruments=None, checksum="crc32", *, ...)``
  seed               everything random (books, ids, connIds, request ids) derives from it
  instruments        None = defaults (BTC-USDT, ETH-USDT, BTC-USDT-SWAP, ETH-USDT-SWAP, one
                     BTC-USDT quarterly FUTURES, a BTC-USD OPTION call and put), or instIds /
                     type names picked from them, or ``InstrumentSpec`` objects
  checksum           "crc32" (real CRC32 of the top 25 levels) or "zero" (0, as OKX since 2026-06)
  tick_interval_s    market-maker step period, s (0.05)
  book_interval_s    publish period for books/books5/bbo-tbt/tickers/candles, s (0.1)
  auto_tick          False: no background market thread; drive with ``sim.tick()``
  book_depth         maker levels per side (50); volatility (0..1), trade_probability per step
  quiet_interval_s   s without change before the no-change ``books`` update (60; None: never)
  balances           trading balances of each account ({"USDT": "100000", "BTC": "2", "ETH": "20"})
  funding_balances   funding account balances (asset/balances)
  idle_timeout_s     WS idle close (4004) after this many s with nothing sent (30)
  auth_skew_s        allowed timestamp skew for REST and WS login, s (30)
  rate_limits        enforce the endpoint table's limits (True); account_order_limit (1000 / 2 s)
  ws_queue_size      per-connection send queue; overflow closes with 4005 (10000)
  ws, control        start the WS server / the control endpoint (True)
  host               "127.0.0.1" (default) or "localhost": every server binds 127.0.0.1;
                     anything else (``"0.0.0.0"``...) raises ValueError
  tls                self-signed cert: https:// and wss:// (trust ``sim.cert_path``, or use
                     ``sim.client_ssl_context()``)
  clock              an ``okx_sync.clock.Clock`` for timestamps, auth skew, rate windows, timers

Driving and inspecting (thread-safe)
  sim.tick(n=1)                  n market-maker steps, then publish (use with auto_tick=False)
  sim.flush()                    publish pending changes now
  sim.flood(inst_id, count, channels=("books", "trades"))
                                 push ``count`` book updates (+ trades) as fast as the subscribers
                                 read them (publisher blocks instead of dropping) — benchmarks;
                                 returns when delivered, so call it from a thread that is not
                                 the one reading the stream
  sim.exchange                   the deterministic exchange (:class:`~okx_sync.sim.exchange.Exchange`)
    .book(inst_id)               published book ``BookView(seq_id, ts, checksum, bids, asks)``:
                                 exactly what a correct WS client holds at ``seq_id``
    .live_book(inst_id)          the matching book right now
    .orders / .pending(uid)      user orders (``SimOrder``; ``.to_okx()`` gives the wire form)
    .account(uid)                balances, freezes, positions, fills
    .step(), .flush(), .heartbeat(inst_id), .place_orders(uid, [...]), .cancel_orders, ...
  sim.ws_connections()           open WS connections (conn_id, kind, uid, subscriptions, ...)
  sim.stats()                    REST requests served (rest_requests) and delayed by
                                 slow_responses (rest_delayed), connections, orders, timers, faults

Faults (``sim.faults``, also ``POST {control_url}/faults/<name>`` with the kwargs as JSON)
  rate_limit_storm(seconds)                      every REST request → 429 + 50011
  slow_responses(delay_s, count=None, seconds=None, path=None)
  server_errors(status=503, count=None, seconds=None, path=None)
                                                 503+50001, 500+50026, other 5xx bare HTML
  lose_order_response(mode="timeout"|"50004", count=1, hold_s=5.0, transport="rest"|"ws"|"any",
                      action="place"|"cancel"|"amend"|"any")
                                                 executes, then the answer is lost / 50004
  drop_ws(which="all"|"one", kind=None, conn_id=None)      abrupt TCP close
  silence_ws(which="all"|"one", kind=None, conn_id=None, seconds=None)
                                                 no pushes, no text pong, no idle close
                                                 (protocol-level pings are still answered
                                                 by the websockets library)
  notice_then_close(delay_s=1.0, which=..., kind=..., conn_id=...) notice 64008, close 1012
  reject_subscription(channel, inst_id=None, code="60018", count=1)
  fail_logins(count=1, code="60009", close_code=None)
                                                 error event ``code`` ("" none), then a close
                                                 with ``close_code`` (4001 login failed, 4007
                                                 key updated or deleted) when given
  seq_gap(inst_id, count=1), bad_checksum(inst_id, count=1), seq_reset(inst_id)
  malformed_book(inst_id, kind="size"|"price"|"crossed", count=1)
                                                 a books update with a level no client
                                                 may store (published book unchanged)
  clear(), active()
  ``kind`` is "public" | "private" | "business".

Benchmarks: run the simulator in another process (``okx-sync sim --json`` prints the URLs)
and trigger ``POST {control_url}/flood``, so the simulator does not share the GIL with the
client under test; ``checksum="zero"`` skips the CRC. Measured: ~11k flood rounds/s with no
subscriber, ~11k messages/s delivered to one websocket-client reader in another process.

Independent clients: ccxt's okx class (REST URL overridden) and python-okx (``domain=``)
work against it. python-okx's WS client only speaks ``wss://`` and verifies with the default
CA paths: use ``Simulator(tls=True)`` and set ``SSL_CERT_FILE=sim.cert_path`` before it
connects (``ssl.create_default_context`` honours it).

Ordering: an ``orders`` push caused by a request may arrive before that request's REST/WS
reply (OKX does not order them either).

Control endpoint (``sim.control_url``): GET / | /state | /faults | /connections | /book/<instId>;
POST /faults/<name> | /tick {"n"} | /flush | /flood {"inst_id","count","channels"}.
``control_url`` ends in the per-run ``sim.control_token`` (random, not from the seed):
requests without it, or whose ``Host`` header is not loopback (DNS rebinding), get 403.

What it serves: REST public time, instruments (SPOT/SWAP/FUTURES/OPTION), tickers/ticker,
books, candles/history-candles, trades; account balance, positions, config, set-leverage;
trade order / batch-orders / cancel-order / cancel-batch-orders / amend-order /
amend-batch-orders, order, orders-pending, orders-history(-archive), fills(-history),
close-position, cancel-all-after (a real timer, cancelSource 20), account-rate-limit; asset
balances and currencies. Other paths answer OKX's 404 body. WS: see :mod:`okx_sync.sim.ws`.
The simulator imports only okx_sync's pure layers (auth, checksum, clock, rest.endpoints).
"""

from __future__ import annotations

from .exchange import BookView, Exchange, SimEvent
from .faults import FAULT_NAMES, Faults
from .instruments import InstrumentSpec, default_instruments
from .simulator import SimCredentials, Simulator

__all__ = [
    "Simulator",
    "SimCredentials",
    "Faults",
    "FAULT_NAMES",
    "Exchange",
    "BookView",
    "SimEvent",
    "InstrumentSpec",
    "default_instruments",
]
