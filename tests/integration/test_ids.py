"""new_cl_ord_id: valid OKX clOrdIds, unique across threads and processes."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from okx_sync.errors import ValidationError
from okx_sync.ids import is_valid_cl_ord_id, new_cl_ord_id


def test_valid_and_prefixed() -> None:
    a = new_cl_ord_id()
    assert is_valid_cl_ord_id(a) and len(a) == 26
    b = new_cl_ord_id("bot7")
    assert b.startswith("bot7") and is_valid_cl_ord_id(b) and len(b) == 30
    assert len(new_cl_ord_id("abcdef")) == 32


@pytest.mark.parametrize("prefix", ["abcdefg", "a-b", "é", "a b"])
def test_bad_prefix_refused(prefix: str) -> None:
    with pytest.raises(ValidationError):
        new_cl_ord_id(prefix)


def test_unique_across_threads() -> None:
    out: list[list[str]] = []

    def work() -> None:
        out.append([new_cl_ord_id() for _ in range(2000)])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    ids = [i for chunk in out for i in chunk]
    assert len(ids) == 16000 and len(set(ids)) == 16000


def _child(q: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    q.put([new_cl_ord_id() for _ in range(500)])


def test_unique_across_processes() -> None:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(q,)) for _ in range(3)]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in q.get(timeout=30)]
    for p in procs:
        p.join(30)
    ids += [new_cl_ord_id() for _ in range(500)]
    assert len(set(ids)) == len(ids) == 2000
