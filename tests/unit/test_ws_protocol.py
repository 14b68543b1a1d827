"""okx_sync.ws.protocol: frames, batching within 64 KB, classification, arg keys, handoff dedupe."""

from __future__ import annotations

import itertools
import json

import pytest

from okx_sync.auth import Credentials, sign
from okx_sync.errors import ValidationError
from okx_sync.ws import protocol as p


def ids(prefix: str = "s"):
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


def test_urls_live_and_demo():
    assert p.ws_url("public") == "wss://ws.okx.com:8443/ws/v5/public"
    assert p.ws_url("private", demo=True) == "wss://wspap.okx.com:8443/ws/v5/private"
    assert p.ws_url("business", demo=True) == "wss://wspap.okx.com:8443/ws/v5/business"
    with pytest.raises(ValidationError):
        p.ws_url("spot")
    assert p.service_of_url("ws://127.0.0.1:1234/ws/v5/private?brokerId=9999") == "private"
    assert p.service_of_url("ws://127.0.0.1:1/x") == "ws"


def test_arg_key_ignores_uid_and_order():
    a = {"channel": "orders", "instType": "SPOT"}
    pushed = {"instType": "SPOT", "uid": "4487", "channel": "orders"}
    assert p.arg_key(a) == p.arg_key(pushed)
    assert p.arg_key(a) != p.arg_key({"channel": "orders", "instType": "SWAP"})


def test_normalize_args_validates_and_dedupes():
    out = p.normalize_args(
        [
            {"channel": "tickers", "instId": "A"},
            {"instId": "A", "channel": "tickers"},
            {"channel": "trades", "instId": "A"},
        ]
    )
    assert out == [{"channel": "tickers", "instId": "A"}, {"channel": "trades", "instId": "A"}]
    assert p.normalize_args({"channel": "tickers", "instId": "B"}) == [
        {"channel": "tickers", "instId": "B"}
    ]
    for bad in ([], [{"instId": "A"}], [{"channel": "x", "instId": 1}], "tickers", [1]):
        with pytest.raises(ValidationError):
            p.normalize_args(bad)  # type: ignore[arg-type]


def test_batch_frames_fit_64kb_and_keep_order():
    args = [{"channel": "books", "instId": f"INSTRUMENT-{i:05d}-USDT-SWAP"} for i in range(3000)]
    frames = p.batch_frames("subscribe", args, ids())
    assert len(frames) > 1
    for f in frames:
        assert len(f.text.encode()) <= p.MAX_FRAME_BYTES
        body = json.loads(f.text)
        assert body["op"] == "subscribe" and body["id"] == f.req_id
        assert body["args"] == list(f.args)
    assert [a for f in frames for a in f.args] == args
    # frames are packed: every frame but the last cannot take the next arg
    for f, nxt in zip(frames, frames[1:], strict=False):
        grown = p.op_frame("subscribe", [*f.args, nxt.args[0]], f.req_id)
        assert len(grown.encode()) > p.MAX_FRAME_BYTES
    assert [f.req_id for f in frames] == [f"s{i}" for i in range(1, len(frames) + 1)]


def test_batch_frames_exact_boundary_and_max_args():
    arg = {"channel": "tickers", "instId": "X"}
    one = p.op_frame("subscribe", [arg], "s1")
    two = p.op_frame("subscribe", [arg, arg], "s1")
    frames = p.batch_frames("subscribe", [arg, arg], ids(), max_bytes=len(two))
    assert len(frames) == 1
    frames = p.batch_frames("subscribe", [arg, arg], ids(), max_bytes=len(two) - 1)
    assert len(frames) == 2 and len(frames[0].text) == len(one)
    assert len(p.batch_frames("subscribe", [arg] * 3, ids(), max_args=1)) == 3
    with pytest.raises(ValidationError):
        p.batch_frames("subscribe", [arg], ids(), max_bytes=len(one) - 1)


def test_login_frame_signature_vector():
    creds = Credentials(api_key="key", secret_key="mysecret", passphrase="pp")
    body = json.loads(p.login_frame(creds, 1538054050))
    assert body["op"] == "login"
    (arg,) = body["args"]
    assert arg["timestamp"] == "1538054050"
    # facts §1.2 WS login vector
    assert arg["sign"] == "m+lzVL6siKIpimAa/6y8lHpWZe0SCpehAqymC8Nel0A="
    assert arg["sign"] == sign("mysecret", "1538054050GET/users/self/verify")


def test_order_frame_and_id_rules():
    text = p.order_frame("o1", "order", [{"instIdCode": 7, "side": "buy"}], exp_time_ms=1700)
    assert json.loads(text) == {
        "id": "o1",
        "op": "order",
        "expTime": "1700",
        "args": [{"instIdCode": 7, "side": "buy"}],
    }
    for bad in ("", "a-b", "x" * 33):
        with pytest.raises(ValidationError):
            p.order_frame(bad, "order", [])


def test_classify_real_shapes():
    assert p.classify({"event": "subscribe", "arg": {"channel": "tickers"}}) is p.Kind.EVENT
    assert p.classify({"arg": {"channel": "tickers"}, "data": []}) is p.Kind.PUSH
    assert p.classify({"id": "1", "op": "order", "code": "0", "data": []}) is p.Kind.REPLY
    assert p.classify({"foo": 1}) is p.Kind.OTHER
    assert p.push_key({"arg": {"channel": "books", "instId": "BTC-USDT"}}) == ("books", "BTC-USDT")
    assert p.push_key({"arg": {"channel": "orders", "instType": "ANY"}}) == ("orders", "")


def test_login_fatal_codes():
    for code in ("60005", "60007", "60009", "60024", "60032", 4001, "4001"):
        assert p.is_login_fatal(code)
    for code in ("63999", "0", "60014", None, 1000):
        assert not p.is_login_fatal(code)


def test_parse_close_frame():
    assert p.parse_close_frame((4004).to_bytes(2, "big") + b"no data") == (4004, "no data")
    assert p.parse_close_frame(b"") == (None, "")


def test_arg_hint_from_okx_error_message():
    event = {
        "event": "error",
        "msg": "Wrong URL or channel:candle1m,instId:BTC-USD-SWAP doesn't exist. Please use the correct URL, channel and parameters referring to API document.",
        "code": "60018",
    }
    hint = p.arg_hint_from_error(event)
    assert hint == {"channel": "candle1m", "instId": "BTC-USD-SWAP"}
    cands = [
        {"channel": "candle1m", "instId": "BTC-USD-SWAP"},
        {"channel": "candle1m", "instId": "ETH-USDT"},
    ]
    assert p.match_hint(hint, cands) == [cands[0]]
    assert p.arg_hint_from_error({"event": "error", "arg": {"channel": "x", "instId": "Y"}}) == {
        "channel": "x",
        "instId": "Y",
    }
    assert p.arg_hint_from_error({"event": "error", "msg": "Invalid request"}) is None


def _push(inst: str, n: int) -> dict:
    return {
        "arg": {"channel": "tickers", "instId": inst},
        "data": [{"instId": inst, "last": str(n)}],
    }


def test_dedupe_handoff_drops_overlap_per_subscription():
    buffered = [_push("A", 5), _push("B", 1), _push("A", 6), _push("A", 7), _push("B", 2)]
    last = {p.arg_key({"channel": "tickers", "instId": "A"}): _push("A", 6)["data"]}
    out = p.dedupe_handoff(buffered, last)
    # A: 5 and 6 were delivered by the old connection; B had no overlap
    assert out == [_push("B", 1), _push("A", 7), _push("B", 2)]
    assert p.dedupe_handoff(buffered, {}) == buffered


def test_decode_frame_matches_json_loads():
    for text in ('{"arg":{"channel":"x"},"data":[1,2.5,"3"]}', ' {"a": 1} ', "[1]", '"pong"', "{}"):
        assert p.decode_frame(text) == json.loads(text)
    for bad in ("", "{", '{"a":1}x', "pong"):
        with pytest.raises(ValueError):
            p.decode_frame(bad)


def test_fast_push_key_agrees_with_decoded_key():
    frames = [
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[]}]}',
        '{"arg":{"channel":"trades","instId":"ETH-USDT"},"data":[{"px":"1"}]}',
        '{"arg":{"channel":"orders","instType":"SPOT","instId":"BTC-USDT","uid":"7"},"data":[]}',
        '{"arg":{"channel":"account","uid":"7"},"data":[]}',
    ]
    for text in frames:
        assert p.fast_push_key(text.encode()) == p.push_key(json.loads(text))
    # not OKX's push layout: decode instead
    for text in (
        '{"event":"subscribe","arg":{"channel":"books"}}',
        '{"arg":{"channel":"account","uid":"7"},"eventType":"snapshot","data":[]}',
        '{"data":[],"arg":{"channel":"books"}}',
        '{"arg":{"channel":"a\\"b"},"data":[]}',
    ):
        assert p.fast_push_key(text.encode()) is None


def test_a_request_answered_before_its_connection_ends_keeps_its_answer():
    # a handler may close the client right after the ack, before the waiter reads it
    from okx_sync.ws.subscriptions import SubRequest

    arg = {"channel": "tickers", "instId": "BTC-USDT"}
    (frame,) = p.batch_frames("subscribe", [arg], lambda: "1")
    answered = SubRequest(frame, "subscribe", background=False)
    assert answered.ack(p.arg_key(arg))
    answered.fail("client closed")
    assert answered.lost == "" and answered.detach() == (([arg], [], []), False)
    unanswered = SubRequest(frame, "subscribe", background=False)
    unanswered.fail("client closed")
    assert unanswered.done.is_set() and unanswered.lost == "client closed"
