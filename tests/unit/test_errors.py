"""The exception tree: every class documents its thread safety and survives pickling with
its attributes (errors cross process boundaries in executors and log handlers)."""

from __future__ import annotations

import inspect
import pickle

import pytest

import okx_sync.errors as errors
from okx_sync.models.order import OrderAck

EXCEPTION_CLASSES = [
    obj
    for name in errors.__all__
    if inspect.isclass(obj := getattr(errors, name)) and issubclass(obj, BaseException)
]

SAMPLES = [
    errors.OkxError("boom"),
    errors.ValidationError("bad px"),
    errors.InstrumentRuleError(
        "px off tick", inst_id="BTC-USDT", rule="tickSz", value="1.05", limit="0.1"
    ),
    errors.APIError(
        "50011",
        "Too Many Requests",
        http_status=429,
        request_id="r-1",
        method="GET",
        path="/api/v5/market/ticker",
        data=[{"x": "1"}],
    ),
    errors.OrderError(
        "2",
        "partial",
        http_status=200,
        method="POST",
        path="/api/v5/trade/batch-orders",
        items=[
            OrderAck.from_okx({"sCode": "0", "sMsg": "", "clOrdId": "a1", "ordId": "9", "tag": ""}),
            {"sCode": "51008", "sMsg": "Insufficient balance", "clOrdId": "a2"},
        ],
    ),
    errors.RequestStateError(
        "no response after sending",
        stage="http",
        dispatched=True,
        method="POST",
        path="/api/v5/trade/order",
        cl_ord_ids=["c1"],
    ),
    errors.SafeModeError("safe mode on", reason="drill"),
    errors.WSError("ws"),
    errors.WSAuthError("60009", "Login failed"),
    errors.WSSubscribeError("60018", "doesn't exist", {"channel": "x"}),
    errors.WSTimeoutError("no ack"),
    errors.WSClosedError("closed"),
    errors.WSQueueFullError("typed", 1234, 56.5),
    errors.OrderBookError("untrusted"),
    errors.OrderBookSequenceError(5, 7, 9, inst_id="BTC-USDT"),
    errors.OrderBookChecksumError(1, 2, "1:2", inst_id="BTC-USDT"),
    errors.OrderBookNotReadyError("no snapshot"),
    errors.OrderBookDataError("size 'abc' is not a number", inst_id="BTC-USDT", field="bids"),
    errors.OrderBookCrossedError("100.5", "100.4", inst_id="BTC-USDT"),
]


def test_samples_cover_every_exception_class() -> None:
    assert {type(s) for s in SAMPLES} == set(EXCEPTION_CLASSES)


@pytest.mark.parametrize("cls", EXCEPTION_CLASSES, ids=lambda c: c.__name__)
def test_every_exception_documents_thread_safety(cls: type) -> None:
    doc = cls.__doc__ or ""
    assert "Thread safety: immutable once raised" in doc, cls.__name__


@pytest.mark.parametrize("err", SAMPLES, ids=lambda e: type(e).__name__)
def test_pickles_with_attributes_and_text(err: errors.OkxError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err) and back.args == err.args
    assert vars(back) == vars(err)
    if isinstance(err, errors.OrderError):  # derived views work on the copy too
        assert back.cl_ord_ids == ("a1", "a2")
        assert [str(getattr(i, "s_code", "") or i.get("sCode")) for i in back.failed] == ["51008"]
    if isinstance(err, errors.WSQueueFullError):
        assert (back.path, back.dropped, back.since) == ("typed", 1234, 56.5)
        assert isinstance(back, errors.WSError)
    if isinstance(err, errors.RequestStateError):
        assert (back.stage, back.dispatched, back.cl_ord_ids) == ("http", True, ("c1",))
