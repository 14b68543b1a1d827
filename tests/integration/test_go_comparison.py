"""docs/go-okx-comparison.md is executable: every okx_sync name it cites resolves, every test it
names as proof exists, and its summary counts and "behind" list match its table. Rows marked
``pending`` (work on another branch) are skipped while the marker is there. Also holds the
proof of the redirect row (no redirect is followed, so no signed header is ever forwarded)."""

from __future__ import annotations

import ast
import http.server
import importlib
import re
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests

from okx_sync import APIError, Client, RetryPolicy

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "go-okx-comparison.md"
COLUMNS = ["feature", "go-okx", "okx_sync (where)", "verdict", "proof"]
VERDICTS = ("ahead", "equal", "behind")


def _rows() -> list[dict[str, str]]:
    lines = DOC.read_text("utf-8").splitlines()
    start = lines.index("## Table")
    table = [ln for ln in lines[start:] if ln.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header == COLUMNS
    rows = []
    for ln in table[2:]:
        cells = [c.strip() for c in ln.strip().strip("|").split(" | ")]
        assert len(cells) == len(COLUMNS), ln
        rows.append(dict(zip(COLUMNS, cells, strict=True)))
    return rows


ROWS = _rows()


def _pending(row: dict[str, str]) -> bool:
    return "pending" in row["verdict"] or row["proof"] == "pending"


def _verdict(row: dict[str, str]) -> str:
    word = row["verdict"].split()[0]
    assert word in VERDICTS, row
    return word


@cache
def _test_functions(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text("utf-8"))
    return frozenset(
        n.name
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")
    )


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        if attrs.has(obj) and part in attrs.fields_dict(obj):
            obj = attrs.fields_dict(obj)[part]
        else:
            obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("row", ROWS, ids=[r["feature"] for r in ROWS])
def test_row_names_resolve_and_proof_exists(row: dict[str, str]) -> None:
    verdict = _verdict(row)
    if _pending(row):
        pytest.skip(f"pending: {row['verdict']}")
    refs = re.findall(r"`(okx_sync[\w.]*:[\w.]+|okx_sync[\w.]*)`", row["okx_sync (where)"])
    if verdict != "behind":
        assert refs, f"{row['feature']}: no okx_sync name in the where column"
    for ref in refs:
        _resolve(ref)  # raises ImportError/AttributeError when the name is gone
    proof = row["proof"]
    path, sep, name = proof.partition("::")
    assert sep and re.fullmatch(r"tests/(unit|integration|drills|examples)/test_\w+\.py", path), proof
    assert (ROOT / path).is_file(), proof
    assert name in _test_functions(path), f"{proof}: no such test"


def test_summary_and_behind_list_match_the_table() -> None:
    text = DOC.read_text("utf-8")
    counts = {v: sum(1 for r in ROWS if _verdict(r) == v) for v in VERDICTS}
    pending = sum(1 for r in ROWS if _pending(r))
    want = (
        f"- Rows: {len(ROWS)} — ahead {counts['ahead']}, equal {counts['equal']}, "
        f"behind {counts['behind']} ({pending} of the equal rows are pending a merge)."
    )
    assert want in text
    assert all(_verdict(r) == "equal" for r in ROWS if _pending(r))
    behind_section = text.split("## Behind", 1)[1].split("## Table", 1)[0]
    listed = re.findall(r"^- ([^:]+):", behind_section, flags=re.M)
    assert listed == [r["feature"] for r in ROWS if _verdict(r) == "behind"]


def test_feature_names_are_unique() -> None:
    names = [r["feature"] for r in ROWS]
    assert len(names) == len(set(names))


class _Redirector(http.server.BaseHTTPRequestHandler):
    """Answers every request with a 302 to ``target`` and records the request headers."""

    target = ""
    seen: list[dict[str, str]]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(dict(self.headers))
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def redirecting_pair() -> Iterator[tuple[str, list[dict[str, str]], list[dict[str, str]]]]:
    """A server that redirects to a second server; both record what reached them."""
    first_seen: list[dict[str, str]] = []
    second_seen: list[dict[str, str]] = []
    second = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), type("Second", (_Redirector,), {"seen": second_seen, "target": ""})
    )
    target = f"http://127.0.0.1:{second.server_address[1]}"
    first = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), type("First", (_Redirector,), {"seen": first_seen, "target": target})
    )
    threads = [  # a short poll: shutdown() waits for the loop's next round (0.5 s by default)
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        for s in (first, second)
    ]
    for t in threads:
        t.start()
    try:
        yield f"http://127.0.0.1:{first.server_address[1]}", first_seen, second_seen
    finally:
        for s in (first, second):
            s.shutdown()
            s.server_close()
        for t in threads:
            t.join(5)


@pytest.mark.parametrize("with_session", [False, True], ids=["pooled", "session"])
def test_a_signed_request_never_follows_a_redirect(
    redirecting_pair: tuple[str, list[dict[str, str]], list[dict[str, str]]], with_session: bool
) -> None:
    url, first_seen, second_seen = redirecting_pair
    session = requests.Session() if with_session else None
    creds = ("key-0123456789abcdef", "secret-0123", "pass-0123")
    with Client(*creds, base_url=url, retry=RetryPolicy.none(), session=session) as client:
        with pytest.raises(APIError) as info:
            client.account.get_balance()
    if session is not None:
        session.close()
    assert info.value.http_status == 302
    assert len(first_seen) == 1 and "OK-ACCESS-SIGN" in first_seen[0]
    assert second_seen == []
