"""okx_sync.compat.okx behaves like python-okx to its caller, with okx_sync underneath:
envelopes back (OKX errors included), RequestStateError when no answer came (and no
re-send of a dispatched order), one shared Client per key/flag/domain (thread-safe,
closed at exit), the demo flag, debug logging without secrets, the layering."""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from okx_sync.compat.okx import API_CLASSES, Account, Finance, Trade, client_for
from okx_sync.compat.shared import SHARED
from okx_sync.errors import RequestStateError, ValidationError
from okx_sync.testing.rest_servers import EchoServer, ResetServer, ok_json, refused_port

REPO = Path(__file__).resolve().parents[2]
KEY = ("key-compat", "secret-compat-XYZ", "pass-compat-XYZ")
PLACE = ("BTC-USDT", "cash", "buy", "limit", "0.001")


@pytest.fixture(autouse=True)
def _fresh_clients():
    yield
    SHARED.close_all()


def _time_or(answer):
    """A responder: server time for the clock sync, ``answer(target)`` otherwise."""

    def responder(method, target, headers, body):
        if target.startswith("/api/v5/public/time"):
            return 200, {}, ok_json([{"ts": "1700000000000"}])
        return answer(method, target, headers, body)

    return responder


def test_okx_error_code_comes_back_as_the_envelope_not_an_exception():
    envelope = {"code": "51008", "msg": "Order failed. Insufficient balance", "data": [
        {"clOrdId": "c1", "ordId": "", "sCode": "51008", "sMsg": "Insufficient balance",
         "tag": ""}], "inTime": "1", "outTime": "2"}  # fmt: skip
    body = json.dumps(envelope).encode()
    with EchoServer(_time_or(lambda *a: (200, {}, body))) as srv:
        api = Trade.TradeAPI(*KEY, False, "0", srv.url)
        assert api.place_order(*PLACE, clOrdId="c1", px="1") == envelope
        sent = [r for r in srv.requests if r[1] == "/api/v5/trade/order"]
        assert len(sent) == 1  # an answered order is not re-sent


def test_rate_limited_answer_is_retried_after_the_gate_hold_and_never_reaches_the_caller():
    # Retry-After 0.2 s: the hold (without one the gate holds the bucket a whole 2 s window)
    answers = iter([(429, {"Retry-After": "0.2"}, ok_json(code="50011", msg="Too Many Requests"))])

    def answer(method, target, headers, body):
        return next(answers, (200, {}, ok_json([{"instId": "BTC-USDT", "last": "1"}])))

    with EchoServer(_time_or(answer)) as srv:
        from okx_sync.compat.okx import MarketData

        result = MarketData.MarketAPI(flag="0", domain=srv.url).get_ticker("BTC-USDT")
        assert result["code"] == "0" and result["data"][0]["last"] == "1"
        assert sum("/market/ticker" in r[1] for r in srv.requests) == 2


def test_lost_answer_raises_request_state_error_and_the_order_is_sent_once():
    with ResetServer() as srv:
        api = Trade.TradeAPI(*KEY, False, "0", srv.url)
        before = len(srv.received)
        with pytest.raises(RequestStateError) as info:
            api.place_order(*PLACE, clOrdId="lost1", px="1")
        assert info.value.dispatched is True
        orders = [r for r in srv.received[before:] if b"/api/v5/trade/order" in r]
        assert len(orders) == 1  # never re-sent: it may have been executed


def test_nothing_listening_raises_not_dispatched():
    api = Account.AccountAPI(flag="0", domain=f"http://127.0.0.1:{refused_port()}")
    with pytest.raises(RequestStateError) as info:
        api._request_with_params("GET", "/api/v5/public/instruments", {"instType": "SPOT"})
    assert info.value.dispatched is False


def test_objects_with_one_key_flag_and_domain_share_one_client_across_threads():
    with EchoServer(_time_or(lambda *a: (200, {}, ok_json()))) as srv:
        barrier = threading.Barrier(8)
        got = []

        def build(i):
            cls = (Trade.TradeAPI, Account.AccountAPI, Finance.Savings.SavingsAPI)[i % 3]
            api = cls(*KEY, None, "1", srv.url)
            barrier.wait(5)
            got.append(client_for(api))

        threads = [threading.Thread(target=build, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(got) == 8 and len({id(c) for c in got}) == 1
        assert len(SHARED) == 1
        shared = got[0]
        assert shared.demo is True
        live = client_for(Trade.TradeAPI(*KEY, None, "0", srv.url))
        other_key = client_for(Trade.TradeAPI("k2", "s2", "p2", None, "1", srv.url))
        assert len({id(shared), id(live), id(other_key)}) == 3


def test_flag_selects_demo_header_and_bad_flag_is_refused():
    with EchoServer(_time_or(lambda *a: (200, {}, ok_json()))) as srv:
        Account.AccountAPI(*KEY, None, "1", srv.url).get_account_balance()
        Account.AccountAPI(*KEY, None, "0", srv.url).get_account_balance()
        demo, live = [r[2] for r in srv.requests if "/account/balance" in r[1]]
        assert demo.get("x-simulated-trading") == "1"
        assert "x-simulated-trading" not in {k.lower() for k in live}
        assert demo["OK-ACCESS-KEY"] == KEY[0] and "OK-ACCESS-SIGN" in demo
    with pytest.raises(ValidationError, match="flag must be '0'"):
        Trade.TradeAPI(*KEY, None, "2")


def test_debug_logs_requests_without_secrets_and_repr_hides_them(caplog):
    with EchoServer(_time_or(lambda *a: (200, {}, ok_json()))) as srv:
        api = Trade.TradeAPI(*KEY, None, "0", srv.url, debug=True)
        with caplog.at_level(logging.DEBUG, logger="okx_sync.rest"):
            api.place_order(*PLACE, clOrdId="dbg1", px="1")
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert "python-okx POST " in text and "/api/v5/trade/order" in text and "dbg1" in text
    assert KEY[1] not in text and KEY[2] not in text
    assert KEY[1] not in repr(api) and KEY[2] not in repr(api) and KEY[0] not in repr(api)


def test_wrong_arguments_raise_type_error_like_python_okx():
    api = Trade.TradeAPI(*KEY)
    with pytest.raises(TypeError, match="TradeAPI.place_order"):
        api.place_order("BTC-USDT")
    with pytest.raises(TypeError, match="unexpected keyword"):
        api.cancel_order("BTC-USDT", ord_id="1")


def test_every_table_class_is_importable_as_python_okx_spells_it():
    import importlib

    for dotted, cls in API_CLASSES.items():
        module, name = dotted.rsplit(".", 1)
        mod = importlib.import_module(f"okx_sync.compat.okx.{module}")
        assert getattr(mod, name) is cls
    assert len(API_CLASSES) == 22


def test_shared_clients_are_closed_at_interpreter_exit_with_no_thread_left():
    code = """
import atexit, threading
def report():  # registered before the shared clients' handler: runs after it
    rest = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print("closed", CLIENT.closed, "threads", rest)
atexit.register(report)
from okx_sync.compat.okx import MarketData, client_for
api = MarketData.MarketAPI(flag="0", domain=URL)
print("answer", api.get_ticker("BTC-USDT")["code"])
CLIENT = client_for(api)
"""
    with EchoServer(_time_or(lambda *a: (200, {}, ok_json()))) as srv:
        result = subprocess.run(
            [sys.executable, "-c", f"URL = {srv.url!r}\n" + code],
            capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "answer 0" in result.stdout, result.stdout + result.stderr
    assert "closed True threads []" in result.stdout, result.stdout + result.stderr


def test_nothing_below_compat_imports_it():
    offenders = []
    for path in (REPO / "okx_sync").rglob("*.py"):
        if "compat" in path.relative_to(REPO / "okx_sync").parts:
            continue
        source = path.read_text("utf-8")
        if "compat" not in source:  # no import of it can be there: no need to parse
            continue
        for node in ast.walk(ast.parse(source)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            if any("compat" in n for n in names):
                offenders.append(str(path))
    assert offenders == []


def test_every_trade_api_path_is_in_the_registry_so_the_gate_and_order_rules_apply():
    """Order entry and its reads are rate-limited and never re-sent when dispatched because
    the registry knows them (paths it does not know go out signed, with no rate charge)."""
    from okx_sync.compat.okx import SURFACE
    from okx_sync.rest.endpoints import registry

    reg = registry()
    trade = [s for s in SURFACE.methods if s.cls == "TradeAPI"]
    assert len(trade) == 28
    unknown = [(s.name, s.path) for s in trade if reg.get(s.http, s.path) is None]
    assert unknown == []
    place = reg.get("POST", "/api/v5/trade/order")
    assert place.enters_orders and not place.idempotent
