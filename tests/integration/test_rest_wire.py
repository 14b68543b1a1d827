"""The fast path's response reader on the wire: canned HTTP/1.x bytes from a raw
socket server on 127.0.0.1, read through :class:`okx_sync.rest.transport.PooledTransport`
(header block by ``read_headers``; framing by http.client)."""

from __future__ import annotations

import http.client
import io
import socket
import threading
from collections.abc import Iterator

import pytest

from okx_sync.rest.transport import (
    LeanHeaders,
    PooledTransport,
    Request,
    TransportError,
    host_header,
    read_headers,
    request_head,
)

BODY = b'{"code":"0","msg":"","data":[{"ok":"1"}]}'


class CannedServer:
    """Answers each request (read up to its blank line) with the next canned reply;
    closes the connection after a reply when asked to. Counts accepted connections."""

    def __init__(self, replies: list[tuple[bytes, bool]]) -> None:
        self.replies = list(replies)
        self.connections = 0
        self.closed = 0  # connections this server has closed
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._run, name="canned-server", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.replies:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                buf = b""
                while self.replies:
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                    if b"\r\n\r\n" not in buf:
                        break
                    request, buf = buf.split(b"\r\n\r\n", 1)
                    self.requests.append(request)
                    for line in request.lower().split(b"\r\n"):
                        if line.startswith(b"content-length:"):  # skip the body
                            length = int(line.split(b":")[1])
                            while len(buf) < length and (chunk := conn.recv(65536)):
                                buf += chunk
                            buf = buf[length:]
                    reply, close = self.replies.pop(0)
                    conn.sendall(reply)
                    if close:
                        break
            self.closed += 1

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a pending accept()
        except OSError:
            pass
        self.sock.close()
        self.thread.join(2)


@pytest.fixture
def canned() -> Iterator[list[CannedServer]]:
    servers: list[CannedServer] = []
    yield servers
    for server in servers:
        server.close()


def _send(canned: list[CannedServer], *replies: tuple[bytes, bool]) -> list[object]:
    server = CannedServer(list(replies))
    canned.append(server)
    transport = PooledTransport(server.url, pool_size=1)
    try:
        out: list[object] = []
        for _ in replies:
            try:
                out.append(transport.send(Request("GET", "/api/v5/public/time", None, {}, 5.0)))
            except TransportError as exc:
                out.append(exc)
        out.append(server.connections)
        return out
    finally:
        transport.close()


def test_content_length_reply_with_mixed_case_headers(canned) -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nCONTENT-type: application/json\r\nX-Request-Id: r1\r\n"
        b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
    )
    first, second, connections = _send(canned, (reply, False), (reply, False))
    assert first.status == 200 and first.body == BODY
    assert first.headers.get("x-request-id") == "r1" and first.headers["X-REQUEST-ID"] == "r1"
    assert "content-type" in first.headers and "Content-Type" in first.headers
    assert second.body == BODY
    assert connections == 1  # keep-alive: the second request reused the connection


def test_chunked_reply_and_folded_and_repeated_headers(canned) -> None:
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (BODY[:10], BODY[10:])) + b"0\r\n\r\n"
    reply = (
        b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n"
        b"x-request-id: first\r\nX-Request-Id: second\r\n"
        b"Retry-After: 1\r\nX-Folded: a\r\n  b\r\n\r\n" + chunks
    )
    (resp, _connections) = _send(canned, (reply, False))
    assert resp.status == 429 and resp.body == BODY
    assert resp.headers.get("x-request-id") == "first"  # the first of a repeated header
    assert resp.headers.get("retry-after") == "1"
    assert resp.headers.get("x-folded") == "a b"


def test_close_delimited_http10_reply_then_a_new_connection(canned) -> None:
    reply = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + BODY
    first, second, connections = _send(canned, (reply, True), (reply, True))
    assert first.body == BODY and second.body == BODY
    assert connections == 2  # the server closed: the pool opened a fresh connection


def test_no_content_reply_has_empty_body_and_keeps_the_connection(canned) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
    empty, full, connections = _send(
        canned, (b"HTTP/1.1 204 No Content\r\n\r\n", False), (ok, False)
    )
    assert empty.status == 204 and empty.body == b""
    assert full.body == BODY and connections == 1


def test_malformed_replies_are_dispatched_transport_errors(canned) -> None:
    bad = [
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n",
        b"SPDY/3 200 OK\r\n\r\n",
    ]
    for reply in bad:
        (err, _connections) = _send(canned, (reply, True))
        assert isinstance(err, TransportError) and err.dispatched, reply[:30]
        assert isinstance(err.__cause__, http.client.HTTPException)


def test_read_headers_unit() -> None:
    headers = read_headers(io.BytesIO(b"A: 1\r\nb:2\r\nA: 3\r\n\r\nrest"))
    assert isinstance(headers, LeanHeaders)
    assert dict(headers) == {"a": "1", "b": "2"}
    assert headers.get("B") == "2" and headers.get("c", "none") == "none"
    assert read_headers(io.BytesIO(b"")) == {}  # EOF ends the block


def test_request_head_on_the_wire(canned) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    server = CannedServer([(ok, False)] * 3)
    canned.append(server)
    transport = PooledTransport(server.url, pool_size=1)
    try:
        transport.send(Request("GET", "/api/v5/a?x=1", None, {"X-Trace": "t"}, 5.0))
        json_type = {"Content-Type": "application/json"}
        transport.send(Request("POST", "/api/v5/b", b"{}", json_type, 5.0))
        transport.send(Request("GET", "/api/v5/c", None, {"Host": "okx.example"}, 5.0))
    finally:
        transport.close()
    heads = [r.decode().split("\r\n") for r in server.requests]
    get, post, host = ({k.lower(): v for k, v in (h.split(": ", 1) for h in r[1:])} for r in heads)
    assert heads[0][0] == "GET /api/v5/a?x=1 HTTP/1.1"
    assert get["host"] == server.url.split("//")[1] and get["x-trace"] == "t"
    assert get["accept-encoding"] == "gzip, deflate" and "content-length" not in get
    assert heads[1][0] == "POST /api/v5/b HTTP/1.1" and post["content-length"] == "2"
    assert heads[2][0] == "GET /api/v5/c HTTP/1.1"
    assert [line.lower().startswith("host:") for line in heads[2]].count(True) == 1
    assert host["host"] == "okx.example"


def test_post_head_and_body_leave_in_one_send(canned, monkeypatch) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    server = CannedServer([(ok, False)])
    canned.append(server)
    sent: list[bytes] = []
    real_sendall = socket.socket.sendall

    def spy_sendall(sock: socket.socket, data: bytes, *args: object) -> None:
        sent.append(bytes(data))
        real_sendall(sock, data, *args)

    monkeypatch.setattr(socket.socket, "sendall", spy_sendall)
    transport = PooledTransport(server.url, pool_size=1)
    try:
        transport.send(Request("POST", "/api/v5/trade/order", b'{"a":"1"}', {}, 5.0))
    finally:
        transport.close()
    sent = [data for data in sent if not data.startswith(b"HTTP/")]  # (the server's reply)
    assert len(sent) == 1  # one syscall, one segment: head and body together
    assert sent[0].startswith(b"POST /api/v5/trade/order HTTP/1.1\r\n")
    assert sent[0].endswith(b'\r\nContent-Length: 9\r\n\r\n{"a":"1"}')


@pytest.mark.parametrize(
    "method, target, headers, problem",
    [
        ("GE T", "/a", {}, "method"),
        ("GET", "/a b", {}, "target"),
        ("GET", "/a\r\nX: 1", {}, "target"),
        ("GET", "/a", {"Bad Name": "1"}, "header name"),
        ("GET", "/a", {"X-A": "1\r\nX-Injected: 2"}, "CR, LF or NUL"),
    ],
)
def test_request_head_refuses_what_could_split_a_request(method, target, headers, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        request_head(method, target, "h", headers, None)


def test_bad_header_is_refused_by_the_transport_before_sending(canned) -> None:
    server = CannedServer([(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False)])
    canned.append(server)
    transport = PooledTransport(server.url, pool_size=1)
    try:
        with pytest.raises(TransportError, match="request not sent") as info:
            transport.send(Request("GET", "/api/v5/a", None, {"X-A": "1\nX-B: 2"}, 5.0))
    finally:
        transport.close()
    assert info.value.dispatched is False and server.requests == []


def test_host_header() -> None:
    assert host_header("https://www.okx.com") == "www.okx.com"
    assert host_header("https://www.okx.com:443") == "www.okx.com"
    assert host_header("http://127.0.0.1:8080/") == "127.0.0.1:8080"
    assert host_header("http://[::1]:9000") == "[::1]:9000"
    assert host_header("https://user:pw@example.com:8443") == "example.com:8443"


# -- attachAlgoOrds as it leaves the client (named methods, ``MockTransport``) ----------

SECRET = "wire-secret"


def _signed_json(call: object) -> object:
    """The JSON body of a recorded request, after checking its signature covers it."""
    import json

    from okx_sync.auth import prehash, sign

    req = call
    assert isinstance(req, Request) and req.body is not None
    body = req.body.decode()
    path = req.target
    ts = req.headers["OK-ACCESS-TIMESTAMP"]
    assert req.headers["OK-ACCESS-SIGN"] == sign(SECRET, prehash(ts, req.method, path, body))
    assert req.headers["Content-Type"] == "application/json"
    return json.loads(body)


def test_attach_algo_ords_go_out_in_okx_names_in_the_signed_body() -> None:
    from decimal import Decimal

    from rest_mock import Routes

    from okx_sync import Client, RequestGateConfig, ValidationError

    base = "https://www.okx.com"
    ack = {"code": "0", "msg": "", "data": [
        {"ordId": "1", "clOrdId": "c1", "tag": "", "ts": "1", "sCode": "0", "sMsg": "",
         "subCode": ""}]}  # fmt: skip
    order = {"inst_id": "BTC-USDT-SWAP", "td_mode": "cross", "side": "buy",
             "ord_type": "limit", "px": "50000", "sz": "1", "cl_ord_id": "c1"}  # fmt: skip
    tp_sl = [
        {"attach_algo_cl_ord_id": "tp1", "tp_trigger_px": Decimal("52000"), "tp_ord_px": "-1",
         "tp_trigger_px_type": "mark", "sz": "1"},
        {"sl_trigger_px": "48000", "sl_ord_px": "-1", "amend_px_on_trigger_type": "1"},
    ]  # fmt: skip
    mock = Routes()
    mock.post(f"{base}/api/v5/trade/order", json=ack)
    mock.post(f"{base}/api/v5/trade/batch-orders", json=ack)
    mock.post(f"{base}/api/v5/trade/amend-order", json=ack)
    gate = RequestGateConfig(rate_limits=False)
    with Client("wire-key-0001", SECRET, "pp", gate=gate, transport=mock.transport) as client:
        client.trade.place_order(**order, attach_algo_ords=tp_sl, validate=False)
        client.trade.place_batch_orders(
            orders=[dict(order, attach_algo_ords=tp_sl[1:])], validate=False
        )
        client.trade.amend_order(
            inst_id="BTC-USDT-SWAP", cl_ord_id="c1", validate=False,
            attach_algo_ords=[{"attach_algo_id": "9", "new_sl_trigger_px": "47000",
                               "new_sl_ord_px": "-1"}],
        )  # fmt: skip
        with pytest.raises(ValidationError, match="tp_triger_px"):
            client.trade.place_order(
                **order, attach_algo_ords=[{"tp_triger_px": "1"}], validate=False
            )
        with pytest.raises(ValidationError, match="clOrdID"):
            client.trade.place_order(**dict(order, cl_ord_id=None), clOrdID="c1")
    bodies = [_signed_json(c) for c in mock.calls]
    assert len(bodies) == 3  # the two refusals sent nothing
    place = {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "limit",
             "px": "50000", "sz": "1", "clOrdId": "c1"}  # fmt: skip
    attached = [
        {"attachAlgoClOrdId": "tp1", "tpTriggerPx": "52000", "tpOrdPx": "-1",
         "tpTriggerPxType": "mark", "sz": "1"},
        {"slTriggerPx": "48000", "slOrdPx": "-1", "amendPxOnTriggerType": "1"},
    ]  # fmt: skip
    assert bodies[0] == {**place, "attachAlgoOrds": attached}
    assert bodies[1] == [{**place, "attachAlgoOrds": attached[1:]}]
    assert bodies[2] == {
        "instId": "BTC-USDT-SWAP", "clOrdId": "c1",
        "attachAlgoOrds": [{"attachAlgoId": "9", "newSlTriggerPx": "47000", "newSlOrdPx": "-1"}],
    }  # fmt: skip


KEEP_ALIVE = b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY


def _counting_polls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from okx_sync.rest import transport as module

    polls: list[int] = []
    real = module.is_connection_dropped

    def counted(conn: object) -> bool:
        polls.append(1)
        return real(conn)

    monkeypatch.setattr(module, "is_connection_dropped", counted)
    return polls


@pytest.mark.parametrize("idempotent", [True, False])
def test_fresh_connection_skips_the_stale_poll_only_for_idempotent_requests(
    canned, monkeypatch, idempotent
) -> None:
    polls = _counting_polls(monkeypatch)
    server = CannedServer([(KEEP_ALIVE, False)] * 3)
    canned.append(server)
    transport = PooledTransport(server.url, pool_size=1)
    try:
        for _ in range(3):
            resp = transport.send(Request("GET", "/x", None, {}, 5.0, idempotent))
            assert resp.status == 200
    finally:
        transport.close()
    assert server.connections == 1
    # reads reuse a just-answered connection as is; order entry polls before each reuse
    assert len(polls) == (0 if idempotent else 2)


@pytest.mark.parametrize("idempotent", [True, False])
def test_a_connection_the_server_closed_is_replaced_before_sending(
    canned, monkeypatch, idempotent
) -> None:
    """The server closes a keep-alive connection without saying so (no
    ``Connection: close``). Once it is older than STALE_CHECK_AFTER_S (0 here:
    always) the poll sees the close and a new connection carries the request."""
    from okx_sync.rest import transport as module
    from okx_sync.testing import wait_until

    monkeypatch.setattr(module, "STALE_CHECK_AFTER_S", 0.0)
    polls = _counting_polls(monkeypatch)
    server = CannedServer([(KEEP_ALIVE, True), (KEEP_ALIVE, False)])
    canned.append(server)
    transport = PooledTransport(server.url, pool_size=1)
    try:
        assert transport.send(Request("POST", "/x", b"{}", {}, 5.0, idempotent)).status == 200
        assert wait_until(lambda: server.closed >= 1)
        second = transport.send(Request("POST", "/x", b"{}", {}, 5.0, idempotent))
    finally:
        transport.close()
    assert second.status == 200 and second.body == BODY
    assert server.connections == 2 and len(polls) == 1
