"""The docs run: every Python code block in README.md, RUNBOOK.md and RUNBOOK.en.md is
executed against the simulator, and every command in README's command table is run.

A block runs in a fresh namespace after its *setup* and with the OKX_* variables naming a
fresh simulator (so ``okx_sync.Client.from_env()`` reaches it). The setup is named by an
HTML comment on the line before the fence, ``<!-- doc-run: setup=NAME -->``; a block with
no marker runs with ``env`` (nothing but the environment: it must stand on its own). A
block cannot be skipped: every fence is one test, and ``test_every_block_is_collected``
fails when the collection and the files disagree. Setups (see ``SETUPS``):

- ``env``: only the environment; the block builds what it uses.
- ``client``: ``client = okx_sync.Client.from_env()`` (closed after the block).
- ``ws``: ``client`` and ``ws = client.ws_private()`` started (closed after).

Placeholders a doc writes as ``...`` are Python's ``Ellipsis`` and run as such.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

import okx_sync
from okx_sync.sim import Simulator

REPO = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "RUNBOOK.md", "RUNBOOK.en.md")
FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"<!--\s*doc-run:\s*setup=(\w+)\s*-->")


class Block:
    """One fenced Python block: where it is, its setup and its dedented source."""

    def __init__(self, doc: str, line: int, setup: str, source: str) -> None:
        self.doc, self.line, self.setup, self.source = doc, line, setup, source

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def _dedent(indent: str, body: str) -> str:
    lines = body.splitlines()
    return "\n".join(line[len(indent) :] if line.startswith(indent) else line for line in lines)


def python_blocks(doc: str) -> list[Block]:
    """Every ```python fence of ``doc`` with the setup its marker names (``env`` if none)."""
    text = (REPO / doc).read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        if m.group(2) != "python":
            continue
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        setup = marker.group(1) if marker else "env"
        blocks.append(Block(doc, line, setup, _dedent(m.group(1), m.group(3))))
    return blocks


ALL_BLOCKS = [b for doc in DOCS for b in python_blocks(doc)]


def _point_env_at(monkeypatch: pytest.MonkeyPatch, sim: Simulator) -> None:
    """Every OKX_* variable ``Client.from_env()`` reads, naming ``sim`` (``Simulator.env``,
    what ``okx-sync sim --env`` prints: all eight, the WS server running)."""
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)


def _setup_env(stack: ExitStack) -> dict[str, Any]:
    return {}


def _setup_client(stack: ExitStack) -> dict[str, Any]:
    client = stack.enter_context(okx_sync.Client.from_env())
    return {"client": client}


def _setup_ws(stack: ExitStack) -> dict[str, Any]:
    ns = _setup_client(stack)
    ws = ns["client"].ws_private()
    stack.callback(ws.close)
    ws.start()
    return {**ns, "ws": ws}


SETUPS: dict[str, Callable[[ExitStack], dict[str, Any]]] = {
    "env": _setup_env,
    "client": _setup_client,
    "ws": _setup_ws,
}


@pytest.fixture
def doc_sim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Simulator]:
    """A fresh simulator named by the OKX_* variables; the block's cwd is a temp dir."""
    with Simulator(seed=11) as sim:
        _point_env_at(monkeypatch, sim)
        monkeypatch.chdir(tmp_path)
        yield sim


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.id for b in ALL_BLOCKS])
def test_doc_block_runs(block: Block, doc_sim: Simulator) -> None:
    assert block.setup in SETUPS, f"{block.id}: unknown setup {block.setup!r}"
    code = compile(block.source, block.id, "exec")
    with ExitStack() as stack:
        namespace: dict[str, Any] = {"__name__": "__doc_block__", "okx_sync": okx_sync}
        namespace.update(SETUPS[block.setup](stack))
        exec(code, namespace)  # noqa: S102 - the docs' own code, run as a reader would
        for name, value in list(namespace.items()):
            if isinstance(value, okx_sync.Client | okx_sync.WSClient):
                stack.callback(value.close)
            if isinstance(value, okx_sync.WSClient):
                # a handler the doc registers must not raise on what it is given
                stats = value.stats()
                assert stats.handler_errors == 0, f"{block.id}: {name}: {stats.last_error!r}"


def test_every_block_is_collected() -> None:
    """Each doc's fences counted independently of the parser above: no block escapes."""
    for doc in DOCS:
        text = (REPO / doc).read_text(encoding="utf-8")
        opened = len(re.findall(r"^[ \t]*```python[ \t]*$", text, re.M))
        assert opened == sum(1 for b in ALL_BLOCKS if b.doc == doc), doc
        assert opened > 0, doc
        for marker in MARKER.finditer(text):
            assert marker.group(1) in SETUPS, f"{doc}: unknown setup {marker.group(1)}"


# --- README's command table -------------------------------------------------------------

TABLE_ROW = re.compile(r"^\|\s*`(okx-sync [^`]+)`\s*\|", re.M)


def table_commands() -> list[str]:
    """The commands in README's ``okx-sync COMMAND`` table, as written."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [cmd.replace("\\|", "|") for cmd in TABLE_ROW.findall(text)]


def _okx_sync(*args: str) -> list[str]:
    return [sys.executable, "-m", "okx_sync", *args]


def _run(
    argv: list[str], env: dict[str, str], timeout_s: float = 120.0, cwd: Path | None = None
) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s, cwd=cwd)
    assert done.returncode == 0, f"{shlex.join(argv[2:])}: exit {done.returncode}\n" + (
        done.stdout[-2000:] + done.stderr[-2000:]
    )
    return done.stdout


def _sim_out(env: dict[str, str]) -> str:
    proc = subprocess.Popen(
        _okx_sync("sim", "--run-for", "0.5"), env=env, stdout=subprocess.PIPE, text=True
    )
    out, _ = proc.communicate(timeout=60.0)
    assert proc.returncode == 0, out
    return out


# What each table row runs (placeholders filled in) and a fact its output must show.
TABLE_RUNS: dict[str, tuple[list[str], str]] = {
    "okx-sync demo": (["demo"], ""),
    "okx-sync drill [NAME|all]": (["drill", "book_gap"], "book_gap"),
    "okx-sync doctor": (["doctor", "--samples", "2"], "all checks passed"),
    "okx-sync book INST_ID": (["book", "BTC-USDT", "--count", "2"], "BTC-USDT"),
    "okx-sync evidence": (["evidence"], '"probes"'),
}


def test_every_table_command_is_run_by_a_test() -> None:
    assert set(table_commands()) == set(TABLE_RUNS) | {"okx-sync sim"}


@pytest.fixture(scope="module")
def table_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[str]]]:
    """The table's commands, 3 at a time in the background (each is a process start, and
    some wait: a doctor's pings, a book's frames), in a temp dir, with the OKX_* variables
    naming a simulator (``okx-sync evidence`` reads them); ``okx-sync sim`` with none.
    Command -> future of its stdout; the tests collect them."""
    cwd = tmp_path_factory.mktemp("table")
    with Simulator(seed=11) as sim, ThreadPoolExecutor(max_workers=3) as pool:
        env = {**os.environ, **sim.env()}
        runs = {cmd: pool.submit(_run, _okx_sync(*TABLE_RUNS[cmd][0]), env, cwd=cwd)
                for cmd in sorted(TABLE_RUNS)}  # fmt: skip
        bare = {k: v for k, v in os.environ.items() if not k.startswith("OKX_")}
        runs["okx-sync sim"] = pool.submit(_sim_out, bare)
        yield runs


@pytest.mark.parametrize("command", sorted(TABLE_RUNS))
def test_table_command_runs(command: str, table_runs: dict[str, Future[str]]) -> None:
    out = table_runs[command].result(timeout=120.0)
    assert TABLE_RUNS[command][1] in out


def test_table_command_sim_serves_until_stopped(table_runs: dict[str, Future[str]]) -> None:
    out = table_runs["okx-sync sim"].result(timeout=120.0)
    assert "http://127.0.0.1:" in out and "ws://127.0.0.1:" in out
