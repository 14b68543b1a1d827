"""WSClient against okx_sync.sim: lifecycle, login, subscriptions, heartbeat, reconnect, handoff."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from okx_sync import WSClient
from okx_sync.auth import Credentials
from okx_sync.clock import FakeClock
from okx_sync.errors import (
    ValidationError,
    WSAuthError,
    WSClosedError,
    WSError,
    WSSubscribeError,
    WSTimeoutError,
)
from okx_sync.models import Ticker
from okx_sync.models.ws import BookUpdate
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client, wait_until
from okx_sync.testing.ws_servers import ScriptedOKX, unpaced_limiter, ws_options, ws_threads
from okx_sync.ws.config import WSConfig
from okx_sync.ws.dispatch import DispatchConfig, DispatchMode
from okx_sync.ws.policies import BackoffPolicy, ConnectRateLimiter, HeartbeatPolicy

BTC_TICKER = {"channel": "tickers", "instId": "BTC-USDT"}
BTC_BOOKS = {"channel": "books", "instId": "BTC-USDT"}
ETH_TICKER = {"channel": "tickers", "instId": "ETH-USDT"}


@pytest.fixture
def sim():
    with Simulator(seed=11, book_interval_s=0.02, tick_interval_s=0.01) as s:
        yield s
    assert not ws_threads(), ws_threads()


def public(sim, **kw) -> WSClient:
    kw.setdefault("ping_interval_s", 5.0)
    kw.setdefault("pong_timeout_s", 2.0)
    kw.setdefault("backoff", None)
    # connect_limiter=None: the process-wide limiter (the one test of it)
    kw.setdefault("connect_limiter", unpaced_limiter())
    return WSClient(sim.ws_public_url, **ws_options(**kw))


def private(sim, credentials: Credentials | None = None, **kw) -> WSClient:
    """A WSClient on the simulator's /private socket (its live key unless given)."""
    kw.setdefault("connect_limiter", unpaced_limiter())
    return WSClient(sim.ws_private_url, credentials=credentials or sim.credentials.live, **kw)


def public_at(url: str, **kw) -> WSClient:
    """A WSClient on a scripted server."""
    kw.setdefault("connect_limiter", unpaced_limiter())
    return WSClient(url, **ws_options(**kw))


def test_construction_validates():
    with pytest.raises(ValidationError):
        WSClient("http://x/ws/v5/public")
    with pytest.raises(ValidationError):
        WSClient(
            "ws://127.0.0.1:1/ws/v5/public",
            config=WSConfig(heartbeat=HeartbeatPolicy(ping_interval_s=30)),
        )
    with pytest.raises(ValidationError):
        WSClient("ws://127.0.0.1:1/ws/v5/private", credentials="k")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        WSClient("ws://127.0.0.1:1/ws/v5/private", config=WSConfig(login=True))
    with pytest.raises(ValidationError):
        WSClient(
            "ws://127.0.0.1:1/ws/v5/public", config=WSConfig(typed_dispatch={"mode": "threads"})
        )
    ws = WSClient(
        "ws://127.0.0.1:1/ws/v5/private",
        credentials=Credentials(
            api_key="abcdefgh1234", secret_key="S3CRET", passphrase="PASSPHRASE"
        ),
    )
    text = repr(ws) + repr(ws.stats())
    assert "S3CRET" not in text and "PASSPHRASE" not in text and "abcdefgh" not in text


def test_start_failure_raises_and_leaves_no_thread():
    ws = WSClient(
        "ws://127.0.0.1:9/ws/v5/public",
        config=WSConfig(connect_timeout_s=0.3),
        connect_limiter=unpaced_limiter(),
    )
    with pytest.raises(WSError) as info:
        ws.start(timeout_s=0.4)
    assert info.value.__cause__ is not None
    assert not ws.running
    assert not ws_threads()
    with pytest.raises(WSClosedError):
        ws.subscribe_and_wait(BTC_TICKER, timeout_s=0.1)


def test_subscribe_and_wait_typed_handler_close_and_restart(sim):
    ws = public(sim)
    tickers: list[Ticker] = []
    books: list[BookUpdate] = []
    got_ticker = threading.Event()
    connects: list[int] = []
    ws.on("tickers", lambda t: (tickers.append(t), got_ticker.set()))
    ws.on("books", books.append)
    ws.on_connect(lambda: connects.append(1))
    with ws:
        assert {t for t in ws_threads()} >= {
            "okx-ws-public-conn",
            "okx-ws-public-heartbeat",
            "okx-ws-public-reader",
        }
        ws.subscribe_and_wait([BTC_TICKER, BTC_BOOKS])
        assert got_ticker.wait(5)
        assert wait_until(lambda: len(books) >= 2)
        st = ws.stats()
        assert st.connected and st.subscribe_ok == 2 and st.desired_subscriptions == 2
        assert st.messages > 0 and st.bytes > 0 and st.last_recv is not None and st.conn_id
    t = tickers[0]
    assert isinstance(t, Ticker) and t.inst_id == "BTC-USDT" and isinstance(t.last, Decimal)
    assert books[0].is_snapshot and books[0].inst_id == "BTC-USDT" and books[0].prev_seq_id == -1
    assert books[1].action == "update" and books[1].prev_seq_id == books[0].seq_id
    assert ws.close()  # idempotent
    assert not ws_threads()
    assert not ws.stats().connected
    # Close() then Start(): the desired subscriptions come back
    tickers.clear()
    got_ticker.clear()
    ws.start()
    try:
        assert got_ticker.wait(5)
        assert ws.stats().desired_subscriptions == 2 and len(connects) == 2
    finally:
        ws.close()
    assert not ws_threads()


@pytest.mark.parametrize("raw_mode", ["inline", "pool"])
@pytest.mark.parametrize("typed_mode", ["inline", "pool"])
def test_acks_reach_on_event_and_on_raw(sim, typed_mode, raw_mode):
    events: list[dict] = []
    raws: list[dict] = []
    threads: dict[str, set[str]] = {"event": set(), "raw": set()}

    def on_event(msg):
        threads["event"].add(threading.current_thread().name)
        events.append(msg)

    def on_raw(msg):
        threads["raw"].add(threading.current_thread().name)
        raws.append(msg)

    def is_ack(op):
        return lambda m: m.get("event") == op and m.get("arg") == BTC_TICKER

    ws = public(
        sim,
        typed_dispatch=DispatchConfig(mode=DispatchMode(typed_mode)),
        raw_dispatch=DispatchConfig(mode=DispatchMode(raw_mode)),
    )
    ws.on_event(on_event)
    ws.on_raw(on_raw)
    with ws:
        ws.subscribe_and_wait(BTC_TICKER)
        assert wait_until(lambda: any(is_ack("subscribe")(e) for e in events))
        assert wait_until(lambda: any("data" in m for m in raws))  # pushes reach on_raw too
        ack = next(e for e in events if is_ack("subscribe")(e))
        assert ack["connId"] == sim.ws_connections()[0]["conn_id"]
        first_ack = next(i for i, m in enumerate(raws) if is_ack("subscribe")(m))
        first_push = next(i for i, m in enumerate(raws) if "data" in m)
        assert first_ack < first_push  # in the order received
        assert raws[first_push]["arg"] == BTC_TICKER
        assert all("event" in e for e in events)  # pushes are not events
        ws.unsubscribe_and_wait(BTC_TICKER)
        assert wait_until(lambda: any(is_ack("unsubscribe")(e) for e in events))
        assert wait_until(lambda: any(is_ack("unsubscribe")(m) for m in raws))
    reader = {"okx-ws-public-reader"}
    assert threads["event"] == (reader if typed_mode == "inline" else {"okx-ws-public-typed-0"})
    assert threads["raw"] == (reader if raw_mode == "inline" else {"okx-ws-public-raw-0"})


def test_subscribe_error_code_surfaced(sim):
    errors: list[BaseException] = []
    with public(sim) as ws:
        ws.on_error(errors.append)
        with pytest.raises(WSSubscribeError) as info:
            ws.subscribe_and_wait([BTC_TICKER, {"channel": "tickers", "instId": "NOPE-USDT"}])
        assert info.value.code == "60018"
        assert info.value.arg == {"channel": "tickers", "instId": "NOPE-USDT"}
        assert "60018" in str(info.value)
        assert ws.desired_subscriptions() == [BTC_TICKER]  # the good arg stays
        st = ws.stats()
        assert st.subscribe_error == 1 and st.subscriptions_dropped == 1
        # an injected rejection of a valid arg, fire-and-forget: reported to on_error
        sim.faults.reject_subscription("tickers", "ETH-USDT", code="60018")
        ws.subscribe(ETH_TICKER)
        # the reader counts the drop, then calls the error handlers: wait for the handler
        assert wait_until(
            lambda: any(isinstance(e, WSSubscribeError) and e.arg == ETH_TICKER for e in errors)
        )
        assert ws.stats().subscriptions_dropped == 2
        assert ws.desired_subscriptions() == [BTC_TICKER]
        ws.unsubscribe_and_wait(BTC_TICKER)
        assert ws.desired_subscriptions() == []


def test_unsubscribe_and_wait_surfaces_an_error_event():
    """OKX answers an unsubscribe with an error event: WSSubscribeError (code, msg, arg)."""
    wrong = (
        "Wrong URL or channel:tickers,instId:BTC-USDT doesn't exist. Please use the correct "
        "URL, channel and parameters referring to API document."
    )

    def script(peer):
        sub = peer.recv_json()
        assert sub["op"] == "subscribe" and sub["args"] == [BTC_TICKER]
        peer.send_json({"id": sub["id"], "event": "subscribe", "arg": BTC_TICKER, "connId": "c0"})
        unsub = peer.recv_json()
        assert unsub["op"] == "unsubscribe" and unsub["args"] == [BTC_TICKER]
        peer.send_json(
            {"id": unsub["id"], "event": "error", "code": "60018", "msg": wrong, "connId": "c0"}
        )

    with ScriptedOKX(script) as server:
        with public_at(server.url) as ws:
            ws.subscribe_and_wait(BTC_TICKER)
            with pytest.raises(WSSubscribeError) as info:
                ws.unsubscribe_and_wait(BTC_TICKER, timeout_s=2)
            assert (info.value.code, info.value.msg, info.value.arg) == ("60018", wrong, BTC_TICKER)
            assert ws.desired_subscriptions() == []  # not kept: the caller asked to drop it
            st = ws.stats()
            # counted as an unsubscribe error, not a subscribe one (issue 24)
            assert (st.unsubscribe_error, st.subscribe_error, st.unsubscribe_ok) == (1, 0, 0)
            assert st.subscriptions_dropped == 0 and st.connected
        assert server.accepted == 1 and not server.errors


def test_rejection_after_subscribe_and_wait_gave_up_still_drops_the_arg():
    """The 60018 arrives after the caller's timeout: the arg still leaves the desired set."""
    gave_up = threading.Event()
    other = {"channel": "tickers", "instId": "ETH-USDT"}

    def script(peer):
        sub = peer.recv_json()
        assert sub["args"] == [BTC_TICKER, other]
        peer.send_json({"id": sub["id"], "event": "subscribe", "arg": other, "connId": "c0"})
        assert gave_up.wait(10)
        peer.send_json(
            {"id": sub["id"], "event": "error", "code": "60018", "msg": "no such", "connId": "c0"}
        )

    errors: list[BaseException] = []
    dropped = threading.Event()
    with ScriptedOKX(script) as server:
        with public_at(server.url) as ws:
            ws.on_error(lambda exc: (errors.append(exc), dropped.set()))
            with pytest.raises(WSTimeoutError):
                ws.subscribe_and_wait([BTC_TICKER, other], timeout_s=0.3)
            assert ws.desired_subscriptions() == [BTC_TICKER, other]  # kept for now
            gave_up.set()
            assert dropped.wait(10)
            assert ws.desired_subscriptions() == [other]
            assert isinstance(errors[0], WSSubscribeError) and errors[0].arg == BTC_TICKER
            assert ws.stats().subscriptions_dropped == 1
        assert not server.errors


@pytest.mark.parametrize("raw_mode", ["inline", "pool"])
def test_pushes_this_socket_never_subscribed_are_counted_not_delivered(raw_mode):
    """Only pushes matching an acknowledged subscription reach handlers; an arg without
    instId (orders instType ANY) admits its channel's pushes, whatever their instType/instId."""
    go = threading.Event()
    orders_any = {"channel": "orders", "instType": "ANY"}

    def push(peer, arg, n):
        peer.send_text(json.dumps({"arg": arg, "data": [{"n": n}]}, separators=(",", ":")))

    def script(peer):
        sub = peer.recv_json()
        for arg in sub["args"]:
            peer.send_json({"id": sub["id"], "event": "subscribe", "arg": arg, "connId": "c0"})
        assert go.wait(10)
        push(peer, {"channel": "tickers", "instId": "ETH-USDT"}, 1)  # never subscribed
        push(peer, {"channel": "books", "instId": "BTC-USDT"}, 2)  # never subscribed
        push(peer, {"channel": "orders", "instType": "SPOT", "instId": "BTC-USDT", "uid": "7"}, 3)
        push(peer, BTC_TICKER, 4)
        unsub = peer.recv_json()
        peer.send_json({"id": unsub["id"], "event": "unsubscribe", "arg": BTC_TICKER})
        push(peer, BTC_TICKER, 5)  # after the unsubscribe ack
        push(peer, {"channel": "orders", "instType": "ANY", "uid": "7"}, 6)

    seen: list[int] = []
    with ScriptedOKX(script) as server:
        with public_at(server.url, raw_dispatch=DispatchConfig(mode=DispatchMode(raw_mode))) as ws:
            ws.on_raw(lambda msg: seen.append(msg["data"][0]["n"]) if "data" in msg else None)
            ws.subscribe_and_wait([BTC_TICKER, orders_any])
            go.set()
            assert wait_until(lambda: 4 in seen)
            assert ws.stats().unexpected_pushes == 2
            ws.unsubscribe_and_wait(BTC_TICKER)
            assert wait_until(lambda: 6 in seen)
            assert sorted(seen) == [3, 4, 6]
            st = ws.stats()
            assert st.unexpected_pushes == 3 and st.to_dict()["unexpected_pushes"] == 3
        assert not server.errors


def test_unsubscribe_and_wait_times_out_when_server_is_silent(sim):
    with public(sim, pong_timeout_s=10) as ws:
        ws.subscribe_and_wait(BTC_TICKER)
        sim.faults.silence_ws()
        with pytest.raises(WSTimeoutError, match="unsubscribe"):
            ws.unsubscribe_and_wait(BTC_TICKER, timeout_s=0.3)
        assert ws.desired_subscriptions() == []  # not resubscribed on the next connect
        assert ws.stats().connected


def test_subscribe_timeout_when_server_is_silent(sim):
    with public(sim, pong_timeout_s=10) as ws:
        # the simulator's hub lists the connection a moment after the client's handshake
        assert wait_until(lambda: sim.faults.silence_ws() == 1)
        with pytest.raises(WSTimeoutError):
            ws.subscribe_and_wait(BTC_TICKER, timeout_s=0.3)
        assert ws.desired_subscriptions() == [BTC_TICKER]  # kept: resent on reconnect


def test_heartbeat_ping_pong_keeps_connection(sim):
    with public(sim, ping_interval_s=0.15, pong_timeout_s=5.0) as ws:
        assert wait_until(lambda: ws.stats().last_pong is not None, timeout_s=3)
        first = ws.stats()
        assert first.last_ping is not None and first.last_pong >= first.last_ping - 0.001
        assert wait_until(lambda: (ws.stats().last_ping or 0) > first.last_ping + 0.1, timeout_s=3)
        st = ws.stats()
        assert st.connected and st.reconnects == 0 and st.connects == 1


def test_silent_server_detected_and_reconnected_within_bound(sim):
    down = threading.Event()
    up_again = threading.Event()
    ws = public(sim, ping_interval_s=0.2, pong_timeout_s=0.3)
    ws.on_disconnect(lambda reason: down.set())
    ws.on_reconnect(up_again.set)
    with ws:
        ws.subscribe_and_wait(BTC_TICKER)
        t0 = time.monotonic()
        sim.faults.silence_ws()
        assert down.wait(5)
        detected = time.monotonic() - t0
        # bound: ping_interval_s + pong_timeout_s (+ scheduling slack: 0.93 s seen with
        # -n 2 beside stress-ng --cpu 2 on 2 cores)
        assert detected <= 0.2 + 0.3 + 0.8, detected
        assert up_again.wait(5)
        st = ws.stats()
        assert st.reconnects == 1 and "heartbeat" in st.last_error
        assert st.connected


def test_dropped_connection_reconnects_resubscribes_and_fires_on_reconnect(sim):
    events: list[str] = []
    resumed = threading.Event()
    tickers_after: list[Ticker] = []
    ws = private(sim, config=WSConfig(heartbeat=HeartbeatPolicy(ping_interval_s=5)))
    ws.on_connect(lambda: events.append("connect"))
    ws.on_disconnect(lambda reason: events.append("disconnect"))
    ws.on_reconnect(lambda: (events.append("reconnect"), resumed.set()))
    ws.on("account", lambda b: tickers_after.append(b))
    with ws:
        ws.subscribe_and_wait({"channel": "account"})
        assert wait_until(lambda: len(tickers_after) >= 1)
        tickers_after.clear()
        assert sim.faults.drop_ws(kind="private") == 1
        assert resumed.wait(5)
        assert events == ["connect", "disconnect", "connect", "reconnect"]
        # re-logged in and resubscribed: the private snapshot arrives again
        assert wait_until(lambda: len(tickers_after) >= 1)
        conns = sim.ws_connections()
        assert len(conns) == 1 and conns[0]["uid"] == sim.credentials.live_uid
        st = ws.stats()
        assert st.reconnects == 1 and st.connects == 2 and st.connected


def test_backoff_restarts_from_initial_after_a_stable_connection(sim):
    """The reconnect loop passes the attempt counter to the policy: it grows while
    connections drop at once and starts again at 0 once one stayed up stable_after_s s
    (fake time: the loop's uptime, sleeps and heartbeat all run on a manual FakeClock)."""
    clock = FakeClock(auto_advance=False)
    attempts: list[int] = []

    class Recording(BackoffPolicy):
        def delay(self, attempt: int, rand: float) -> float:
            attempts.append(attempt)
            return super().delay(attempt, rand)

    policy = Recording(initial=1.0, maximum=100.0, multiplier=2.0, jitter=0.0, stable_after_s=30.0)
    down = threading.Event()
    ws = WSClient(
        sim.ws_public_url,
        clock=clock,
        config=WSConfig(
            heartbeat=HeartbeatPolicy(ping_interval_s=29.0, pong_timeout_s=100.0), backoff=policy
        ),
        connect_limiter=unpaced_limiter(),
    )
    ws.on_disconnect(lambda _reason: down.set())

    def drop_and_reconnect() -> None:
        down.clear()
        connects = ws.stats().connects
        # the client counts itself connected once its handshake is done; the simulator's hub
        # lists the connection a moment later (a drop before that finds none: no effect)
        assert wait_until(lambda: sim.faults.drop_ws() == 1, 5)
        assert down.wait(5)
        moved = [0.0]  # advance fake time until the backoff sleep is over and it reconnects

        def reconnected() -> bool:
            if ws.stats().connects > connects and ws.stats().connected:
                return True
            assert moved[0] < 60.0, attempts
            clock.advance(0.25)
            moved[0] += 0.25
            return False

        assert wait_until(reconnected, 30)

    with ws:
        drop_and_reconnect()  # up 0 s
        drop_and_reconnect()  # up 0 s again: the counter grows
        assert attempts == [0, 1]
        clock.advance(30.0)  # this connection stays up stable_after_s seconds
        drop_and_reconnect()
        assert attempts == [0, 1, 0]  # reset: the next delay is the initial one
        assert ws.stats().reconnects == 3


def test_login_ok_and_failures(sim):
    with private(sim) as ws:
        assert ws.stats().connected
    bad = Credentials(
        api_key=sim.credentials.live.api_key,
        secret_key=sim.credentials.live.secret_key,
        passphrase="wrong",
    )
    ws = private(sim, bad)
    with pytest.raises(WSAuthError) as info:
        ws.start()
    assert info.value.code == "60024"
    assert not ws.running and not ws_threads()
    sim.faults.fail_logins(1, "60009")
    ws = private(sim)
    with pytest.raises(WSAuthError) as info:
        ws.start()
    assert info.value.code == "60009"
    assert ws.stats().connects == 1  # no retry loop
    # 63999 (OKX internal error) is retried: the second login succeeds
    sim.faults.fail_logins(1, "63999")
    with private(sim) as ws:
        assert ws.stats().connects == 2


@pytest.mark.parametrize("close_code", [4001, 4007])
def test_login_refused_by_close_code_raises_without_a_retry(sim, close_code):
    """OKX may refuse a login by closing the socket (4001 login failed, 4007 API key
    updated or deleted) without an error event: WSAuthError, one connect, no loop."""
    errors: list[BaseException] = []
    sim.faults.fail_logins(1, "", close_code=close_code)  # no event, just the close
    ws = private(sim)
    ws.on_error(errors.append)
    with pytest.raises(WSAuthError) as info:
        ws.start()
    assert info.value.code == str(close_code)
    assert ws.stats().connects == 1 and not ws.running and not ws_threads()
    assert sim.stats()["ws_connections_total"] == 1  # the server saw no second attempt
    assert [e for e in errors if isinstance(e, WSAuthError)] == [info.value]
    # a login the server accepts afterwards: start() works again
    ws.start()
    try:
        assert ws.stats().connected and ws.stats().connects == 2
    finally:
        ws.close()


def test_auth_failure_during_reconnect_stops_the_loop(sim):
    errors: list[BaseException] = []
    ws = private(sim)
    ws.on_error(errors.append)
    ws.start()
    try:
        sim.faults.fail_logins(100, "60005")
        sim.faults.drop_ws(kind="private")
        assert wait_until(lambda: any(isinstance(e, WSAuthError) for e in errors))
        assert wait_until(lambda: not ws.running)
        st = ws.stats()  # stopped: no later reconnect can add to connects
        assert st.connects == 2  # one refused reconnect, then stopped
        assert not st.connected and st.last_recv is not None  # last seen, kept for evidence
        # after the key is fixed, start() again restarts the stopped client
        sim.faults.clear()
        ws.start()
        assert ws.running and ws.stats().connected
    finally:
        ws.close()
        sim.faults.clear()


def test_rejected_arg_during_resubscribe_does_not_loop(sim):
    errors: list[BaseException] = []
    reconnected = threading.Event()
    ws = public(sim)
    ws.on_error(errors.append)
    ws.on_reconnect(reconnected.set)
    with ws:
        ws.subscribe_and_wait([BTC_TICKER, ETH_TICKER, BTC_BOOKS])
        sim.faults.reject_subscription("tickers", "ETH-USDT", count=None)
        sim.faults.drop_ws()
        assert reconnected.wait(5)
        # counted before the error handlers run: wait for the handler
        assert wait_until(lambda: any(isinstance(e, WSSubscribeError) for e in errors))
        assert ws.stats().subscriptions_dropped == 1
        assert ETH_TICKER not in ws.desired_subscriptions()
        assert len(ws.desired_subscriptions()) == 2
        rejected = [e for e in errors if isinstance(e, WSSubscribeError)]
        assert rejected and rejected[0].arg == ETH_TICKER and rejected[0].code == "60018"
        assert wait_until(lambda: len(sim.ws_connections()) == 1)  # the dropped one is gone
        subs = sim.ws_connections()[0]["subscriptions"]
        assert len(subs) == 2
        # a round trip on the connection after the rejection: it was not dropped again
        ws.subscribe_and_wait([BTC_TICKER])
        st = ws.stats()
        assert st.reconnects == 1 and st.connects == 2 and st.connected


def test_notice_64008_make_before_break_without_gap(sim_manual):
    sim = sim_manual
    emitted: list[dict] = []

    def listener(events, _block):
        for ev in events:
            if ev.channel == "tickers" and ev.inst_id == "BTC-USDT":
                emitted.append(ev.data[0])

    got: list[dict] = []
    seqs: list[tuple[int, int]] = []
    ws = public(sim)
    ws.on("tickers", lambda t: got.append(t.raw))
    ws.on("books", lambda b: seqs.append((b.prev_seq_id, b.seq_id)))
    with ws:
        ws.subscribe_and_wait([BTC_TICKER, BTC_BOOKS])
        assert wait_until(lambda: len(got) == 1 and len(seqs) == 1)
        sim.exchange.add_listener(listener)
        old_conn = sim.ws_connections()[0]["conn_id"]
        # OKX warns ~60 s ahead; 3 s leaves room for a loaded machine (the handoff
        # ends when the new connection is up, not when the old one closes)
        sim.faults.notice_then_close(delay_s=3.0)

        def ticked_until_handoff() -> bool:  # the market moves throughout the switch
            sim.tick(1)
            return ws.stats().handoffs >= 1

        assert wait_until(ticked_until_handoff, 6, 0.003)
        # 45 ticks publish ~30 tickers after the switch; 30 gave ~20, at the
        # edge of the len(emitted) > 20 check below when the handoff was quick
        for _ in range(45):
            sim.tick(1)
        sim.flush()
        assert wait_until(lambda: bool(got) and got[-1] == emitted[-1])
        st = ws.stats()
        assert st.handoffs == 1 and st.reconnects == 0 and st.connects == 2
        assert [c["conn_id"] for c in sim.ws_connections()] != [old_conn]
    sim.exchange.remove_listener(listener)
    assert len(emitted) > 20
    # every published ticker arrives, once, in order: no gap, no duplicate. The new
    # connection's subscription may add one fresh snapshot (same prices, new ts).
    it = iter(got)
    assert all(any(g == e for g in it) for e in emitted)
    assert len(got) - 1 - len(emitted) in (0, 1)
    # (two ticks in one millisecond may publish tickers alike in ts and prices that differ
    # in sizes: a duplicate is a ticker delivered twice, every field the same)
    assert len({json.dumps(g, sort_keys=True) for g in got}) == len(got)
    # the books chain is intact across the switch too (a fresh snapshot may start a new chain)
    for (_prev_a, seq_a), (prev_b, _seq_b) in zip(seqs, seqs[1:], strict=False):
        assert prev_b in (seq_a, -1)


def test_notice_64008_on_the_private_socket_logs_in_on_the_new_connection(sim):
    """Make-before-break on /private: the new connection logs in and resubscribes the
    private channels before it replaces the old one; private pushes go on."""
    logins: list[dict] = []
    orders: list = []
    ws = private(sim)
    ws.on_event(lambda e: logins.append(e) if e.get("event") == "login" else None)
    ws.on("orders", orders.append)
    client = sim_client(sim)
    try:
        with ws:
            ws.subscribe_and_wait(
                [{"channel": "account"}, {"channel": "orders", "instType": "ANY"}]
            )
            assert wait_until(lambda: len(logins) == 1)
            (old,) = sim.ws_connections()
            assert sim.faults.notice_then_close(delay_s=5.0, kind="private") == 1
            assert wait_until(lambda: ws.stats().handoffs == 1, timeout_s=8)
            assert wait_until(lambda: len(logins) == 2)  # the new connection logged in
            assert logins[1]["code"] == "0" and logins[1]["connId"] != old["conn_id"]
            assert wait_until(
                lambda: [c["conn_id"] for c in sim.ws_connections()] != [old["conn_id"]]
            )
            assert wait_until(lambda: len(sim.ws_connections()) == 1)
            (new,) = sim.ws_connections()
            assert new["uid"] == sim.credentials.live_uid and new["kind"] == "private"
            assert sorted(a["channel"] for a in new["subscriptions"]) == ["account", "orders"]
            # a private push on the new connection: an order placed over REST
            best = Decimal(sim.exchange.book("BTC-USDT").bids[0][0])
            ack = client.trade.place_order(
                inst_id="BTC-USDT",
                td_mode="cash",
                side="buy",
                ord_type="limit",
                sz="0.01",
                px=client.round_price("BTC-USDT", best * Decimal("0.8")),
            )
            assert wait_until(lambda: any(o.ord_id == ack.ord_id for o in orders))
            st = ws.stats()
            assert st.handoffs == 1 and st.reconnects == 0 and st.connects == 2 and st.connected
    finally:
        client.close()


def test_handoff_loses_nothing_the_old_connection_had_not_read_yet(sim_manual):
    """Pushes sent on the old connection only (before the new one subscribed) that its
    reader had not got to when the handoff began are still delivered, in order."""
    sim = sim_manual

    class HoldSecondConnect(ConnectRateLimiter):
        """The handoff's new connection waits for ``go``."""

        def __init__(self) -> None:
            super().__init__(rate=100)
            self.calls = 0
            self.waiting = threading.Event()
            self.go = threading.Event()

        def reserve(self, now: float) -> float:
            self.calls += 1
            if self.calls == 2:
                self.waiting.set()
                self.go.wait(10)
            return super().reserve(now)

    emitted: list[dict] = []

    def listener(events, _block):
        emitted.extend(ev.data[0] for ev in events if ev.channel == "tickers")

    got: list[dict] = []
    readers: list[threading.Thread] = []
    hold, held, release = threading.Event(), threading.Event(), threading.Event()

    def on_ticker(t: Ticker) -> None:
        me = threading.current_thread()
        readers.append(me)
        got.append(t.raw)
        if hold.is_set() and me is readers[0] and not held.is_set():
            held.set()  # the old connection's reader is busy in a handler...
            release.wait(10)

    limiter = HoldSecondConnect()
    ws = public(sim, connect_limiter=limiter)
    ws.on("tickers", on_ticker)
    with ws:
        ws.subscribe_and_wait(BTC_TICKER)
        assert wait_until(lambda: len(got) == 1)
        old_id = sim.ws_connections()[0]["conn_id"]
        sim.exchange.add_listener(listener)
        hold.set()
        assert sim.faults.notice_then_close(delay_s=5.0) == 1
        assert limiter.waiting.wait(5)  # the handoff began; the new connection is held back
        sim.tick(1)
        assert held.wait(5)  # ...with this ticker
        sim.tick(3)  # sent on the old connection only, still unread there
        assert len(emitted) >= 2
        limiter.go.set()  # the new connection opens and subscribes (a newer snapshot)

        def old_unsubscribed() -> bool:
            return any(
                c["conn_id"] == old_id and not c["subscriptions"] for c in sim.ws_connections()
            )

        # keep the old reader busy until the handoff no longer waits for it: the old
        # connection was retired (unread pushes lost), or it unsubscribed and waits for
        # its reader to get to the acks (every push sent before them is read first)
        assert wait_until(lambda: ws.stats().handoffs == 1 or old_unsubscribed(), timeout_s=10)
        release.set()
        assert wait_until(lambda: ws.stats().handoffs == 1)
        sim.tick(3)
        assert wait_until(lambda: bool(got) and got[-1] == emitted[-1])
        st = ws.stats()
        assert st.handoffs == 1 and st.reconnects == 0
    sim.exchange.remove_listener(listener)
    it = iter(got)
    assert all(any(g == e for g in it) for e in emitted), (emitted, got)
    assert len(got) - 1 - len(emitted) in (0, 1)  # + the new connection's snapshot


@pytest.fixture
def sim_manual():
    with Simulator(seed=5, auto_tick=False, quiet_interval_s=None) as s:
        yield s
    assert not ws_threads(), ws_threads()


def test_context_manager_and_thread_names(sim):
    seen: set[str] = set()
    ws = public(sim, typed_dispatch=DispatchConfig(workers=2))
    ws.on("tickers", lambda t: seen.add(threading.current_thread().name))
    with ws:
        ws.subscribe_and_wait(BTC_TICKER)
        assert wait_until(lambda: bool(seen))
        names = set(ws_threads())
        assert {"okx-ws-public-typed-0", "okx-ws-public-typed-1"} <= names
    assert seen <= {"okx-ws-public-typed-0", "okx-ws-public-typed-1"}
    assert not ws_threads()


def test_close_from_inside_a_handler(sim):
    closed = threading.Event()
    ws = public(sim)

    def handler(_t):
        ws.close()
        closed.set()

    ws.on("tickers", handler)
    ws.start()
    ws.subscribe(BTC_TICKER)
    assert closed.wait(5)
    assert wait_until(lambda: not ws_threads())


def test_logs_carry_no_secret(sim, caplog):
    creds = sim.credentials.live
    caplog.set_level("DEBUG", logger="okx_sync.ws")
    with private(sim, creds) as ws:
        ws.subscribe_and_wait({"channel": "account"})
    sim.faults.fail_logins(1, "60009")
    with pytest.raises(WSAuthError) as info:
        private(sim, creds).start()
    ours = [r for r in caplog.records if r.name == "okx_sync.ws"]
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in ours) + str(info.value)
    assert ours
    for secret in (creds.secret_key, creds.passphrase, creds.api_key):
        assert secret not in text


def test_new_connections_limited_to_three_per_second_per_process(sim, monkeypatch):
    """Six default clients (no connect_limiter=) share the process limiter: their
    connects take slots at most 3 per second, and none opens before its slot."""
    shared = ConnectRateLimiter.process_default()
    assert shared is ConnectRateLimiter.process_default()
    slots: list[float] = []  # list.append is atomic: safe from the six conn threads
    reserve = shared.reserve

    def recording(now: float) -> float:
        wait = reserve(now)
        slots.append(now + wait)
        return wait

    monkeypatch.setattr(shared, "reserve", recording)
    opened: list[float] = []
    clients = [public(sim, connect_limiter=None) for _ in range(6)]
    for ws in clients:
        ws.on_connect(lambda: opened.append(time.monotonic()))
    starters = [threading.Thread(target=ws.start) for ws in clients]
    try:
        for t in starters:
            t.start()
        for t in starters:
            t.join(10)
        assert len(opened) == len(slots) == 6  # every client went through the shared one
        slots.sort()
        opened.sort()
        # at most 3 slots in any second, and no connection opened before its slot
        assert all(b - a >= 1.0 - 1e-6 for a, b in zip(slots, slots[3:], strict=False))
        assert all(o >= s_ - 1e-3 for o, s_ in zip(opened, slots, strict=True))
    finally:
        for ws in clients:
            ws.close()


def test_ops_budget_refuses_before_sending(sim):
    with public(sim) as ws:
        for _ in range(480):
            ws.subscribe(BTC_TICKER)
        with pytest.raises(WSError, match="480"):
            ws.subscribe(BTC_TICKER)
        # nothing beyond the budget reached the server, which enforces the same limit
        assert wait_until(lambda: ws.stats().subscribe_ok == 480)
        assert ws.stats().subscribe_error == 0 and ws.stats().connected


def test_error_not_tied_to_one_arg_is_isolated(sim):
    # OKX's message names only the channel here, which fits both args of the frame:
    # the open args are resent one per frame to find the rejected one
    with public(sim) as ws:
        with pytest.raises(WSSubscribeError) as info:
            ws.subscribe_and_wait([{"channel": "tickers"}, BTC_TICKER])
        assert info.value.arg == {"channel": "tickers"} and info.value.code == "60018"
        assert ws.desired_subscriptions() == [BTC_TICKER]
        assert len(sim.ws_connections()[0]["subscriptions"]) == 1


def test_transient_refusal_keeps_the_arg_and_retries_by_reconnecting(sim):
    reconnected = threading.Event()
    with public(sim) as ws:
        ws.on_reconnect(reconnected.set)
        sim.faults.reject_subscription("tickers", "ETH-USDT", code="60014")
        with pytest.raises(WSSubscribeError) as info:
            ws.subscribe_and_wait(ETH_TICKER)
        assert info.value.code == "60014"
        assert ws.desired_subscriptions() == [ETH_TICKER]  # refused for now, not rejected
        assert ws.stats().subscriptions_dropped == 0
        # during a resubscribe a transient refusal replaces the connection (with backoff)
        sim.faults.reject_subscription("tickers", "ETH-USDT", code="64007")
        sim.faults.drop_ws()
        assert reconnected.wait(10)
        assert wait_until(lambda: len(sim.ws_connections()) == 1)
        assert sim.ws_connections()[0]["subscriptions"]
        st = ws.stats()
        assert st.connects == 3 and st.reconnects == 1 and st.subscriptions_dropped == 0
        assert ws.desired_subscriptions() == [ETH_TICKER]


def test_documented_channels_reach_handlers_as_generated_records():
    """A mark-price and a liquidation-orders push (shapes from the OKX docs) over a real
    socket: ``ws.on`` handlers get the records built from pushes.tsv, unknown fields in raw."""
    mark_arg = {"channel": "mark-price", "instId": "BTC-USDT-SWAP"}
    liq_arg = {"channel": "liquidation-orders", "instType": "SWAP"}
    mark = {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "markPx": "84660.1", "ts": "1744590349506", "newField": "x"}  # fmt: skip
    liq = {
        "instId": "BTC-USDT-SWAP",
        "instType": "SWAP",
        "details": [{"side": "buy", "bkPx": "0.1", "sz": "2", "bkLoss": "", "ts": "1723892524781"}],
    }

    def script(peer):
        sub = peer.recv_json()
        for arg in sub["args"]:
            peer.send_json({"id": sub["id"], "event": "subscribe", "arg": arg, "connId": "c0"})
        peer.send_json({"arg": mark_arg, "data": [mark]})
        peer.send_json({"arg": liq_arg, "data": [liq]})

    got: dict[str, Any] = {}
    both = threading.Event()

    def keep(name):
        def handler(rec):
            got[name] = rec
            if len(got) == 2:
                both.set()

        return handler

    with ScriptedOKX(script) as server:
        with public_at(server.url) as ws:
            ws.on("mark-price", keep("mark"))
            ws.on("liquidation-orders", keep("liq"))
            ws.subscribe_and_wait([mark_arg, liq_arg])
            assert both.wait(5)
        assert not server.errors
    m = got["mark"]
    assert type(m).__name__ == "MarkPricePush"
    assert (
        m.mark_px == Decimal("84660.1") and m.ts == 1744590349506 and m.inst_id == "BTC-USDT-SWAP"
    )
    assert m.raw["newField"] == "x"
    (detail,) = got["liq"].details
    assert type(detail).__name__ == "LiquidationOrdersPushDetails"
    assert detail.bk_px == Decimal("0.1") and detail.bk_loss is None and detail.ts == 1723892524781


def test_a_pong_that_overtakes_the_ping_write_does_not_leave_the_ping_outstanding(
    sim, monkeypatch
):
    """The reader may handle the pong before the heartbeat thread returns from writing
    the ping (loopback, a GIL switch). That pong answers the ping: heartbeats go on
    every ``ping_interval_s``; the link is not idle-until-``pong_timeout_s`` and then
    dropped as dead."""
    from okx_sync.ws.connection import Connection
    from okx_sync.ws.protocol import PING

    write = Connection.send

    def send_and_let_the_pong_overtake(self: Connection, text: str) -> None:
        before = self.last_pong
        write(self, text)
        if text == PING:  # return only once the reader has handled the answer
            assert wait_until(lambda: self.last_pong != before, timeout_s=3)

    monkeypatch.setattr(Connection, "send", send_and_let_the_pong_overtake)
    with public(sim, ping_interval_s=0.1, pong_timeout_s=20.0) as ws:
        # nothing is subscribed: every message this link receives is a pong
        assert wait_until(lambda: ws.stats().messages >= 3, timeout_s=5), (
            "pinging stopped after a pong"
        )
        st = ws.stats()
        assert st.connected and st.reconnects == 0
