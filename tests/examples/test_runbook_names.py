"""Every name RUNBOOK.md and RUNBOOK.en.md give exists: ``okx_sync.X`` imports, ``client.x.y``
resolves on a Client built against the simulator, ``ws.x`` on a WSClient, keyword arguments
shown in a call are parameters of what is called, and every ``okx-sync CMD`` answers
``--help`` (exit 0) with the options and drill names the runbook uses.

In the runbooks also: every ``from okx_sync[.x] import a, b`` imports; every bare CamelCase
name in a code span or block (``StatsReporter(client, interval_s=...)``, ``SafeModeError``) is
an export of ``okx_sync`` or of a module the same block imports from, with its keywords checked
like the others (only the Go SDK's stats fields the original runbook names are exempt); and
every option listed after "`okx_sync.X` options:" / "Fields of `okx_sync.X`:" is a parameter
of X."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import typing
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import attrs
import pytest

import okx_sync
from okx_sync.sim import Simulator
from okx_sync.testing import sim_client

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = ("RUNBOOK.md", "RUNBOOK.en.md")
COMMANDS = {"demo", "sim", "drill", "evidence", "doctor", "book"}
DRILLS = {
    "rate_limit",
    "shared_rate_limit",
    "ws_disconnect",
    "handler_backlog",
    "book_gap",
    "unknown_order",
    "auth",
}

# okx_sync.X / client.x / ws.x chains; "()" segments continue on the return annotation.
# Not preceded by a letter, digit, "_", "." or a quote (logger names are quoted strings).
NAME = re.compile(r"""(?<![A-Za-z0-9_.'"])(okx_sync|client|ws)((?:\.[A-Za-z_]\w*(?:\(\))?)+)""")
COMMAND = re.compile(r"okx-sync(?:\s+(?!okx-sync)[^\s`|，。；、）)]+)*")


# Bare CamelCase names in code, with the call arguments that follow (if any).
BARE = re.compile(r"(?<![\w.\-'\"/])([A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+|[A-Z][a-z]+(?=\())")
IMPORT = re.compile(r"^[ \t]*from (okx_sync(?:\.[A-Za-z_]\w*)*) import ([\w, ]+)$", re.M)
FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
OPTIONS = re.compile(
    r"`okx_sync\.([\w.]+)`\s*(?:options|选项)\s*[:：](?=(.*))"
    r"|(?:Fields of|字段见)\s*`okx_sync\.([\w.]+)`\s*[:：](?=(.*))"
)
PARENS = re.compile(r"\([^()（）]*\)|（[^()（）]*）")
# Stats() fields of the Go SDK the original runbook is written around: named on purpose,
# next to the okx_sync field that answers them.
GO_NAMES = {
    "LastRecv",
    "LastError",
    "SubscribeOK",
    "SubscribeError",
    "TypedQueueLen",
    "RawQueueLen",
}


def _code(text: str) -> list[str]:
    """The fenced code blocks (indented ones too) and the inline code spans outside them."""
    blocks = FENCE.findall(text)
    return blocks + SPAN.findall(FENCE.sub("", text))


def _imports(text: str) -> list[tuple[str, str]]:
    """(module, name) for every ``from okx_sync[.x] import a, b`` line."""
    return [
        (m.group(1), name.strip())
        for m in IMPORT.finditer(text)
        for name in m.group(2).split(",")
        if name.strip()
    ]


def _bare(code: str) -> list[tuple[str, str]]:
    """(name, call argument text) for every bare CamelCase name in one code block or span."""
    return [(m.group(1), _call_args(code, m.end())) for m in BARE.finditer(code)]


def _options(text: str) -> list[tuple[str, list[str]]]:
    """(dotted name after okx_sync., options) for every "`okx_sync.X` options: `a` (...), `b`"
    list; descriptions in parentheses are skipped, the list ends at the sentence's end or at
    the next colon (``overflow`` policy: `block`... lists values, not options)."""
    out = []
    for m in OPTIONS.finditer(text):
        name, rest = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        while PARENS.search(rest):
            rest = PARENS.sub("", rest)
        rest = re.split(r"\.\s|\.$|。|[:：]", rest)[0]
        out.append((name, re.findall(r"`([a-z_][a-z0-9_]*)`", rest)))
    return out


def _runbook(name: str) -> str:
    path = REPO / name
    assert path.exists(), f"{name} is missing"
    return path.read_text(encoding="utf-8")


def _names(text: str) -> list[tuple[str, list[str], str]]:
    """(root, segments, keyword text) for every name; segments keep a trailing "()"."""
    out = []
    for m in NAME.finditer(text):
        segments = m.group(2)[1:].split(".")
        out.append((m.group(1), segments, _call_args(text, m.end())))
    return out


def _call_args(text: str, pos: int) -> str:
    """The text inside the parentheses that follow ``pos`` ("" when none)."""
    if pos >= len(text) or text[pos] != "(":
        return ""
    depth = 0
    for i in range(pos, min(len(text), pos + 400)):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return text[pos + 1 : i]
    return ""


def _keywords(args: str) -> list[str]:
    """Keyword names at depth 0 of a call's argument text (``name=`` but not ``==``)."""
    out, depth, i = [], 0, 0
    while i < len(args):
        ch = args[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch in "\"'":
            end = args.find(ch, i + 1)
            i = len(args) if end < 0 else end
        elif depth == 0:
            m = re.match(r"(?<![\w.])([A-Za-z_]\w*)=(?!=)", args[i:])
            if m and (i == 0 or not (args[i - 1].isalnum() or args[i - 1] == "_")):
                out.append(m.group(1))
                i += m.end()
                continue
        i += 1
    return out


def _return_type(fn: Any) -> Any:
    target = getattr(fn, "__func__", fn)
    if isinstance(target, property):
        target = target.fget
    try:
        return typing.get_type_hints(target).get("return")
    except Exception:  # noqa: BLE001 - unresolvable annotation: stop there
        return None


def _resolve(start: Any, segments: list[str], what: str) -> Any:
    """Walk ``segments`` from ``start``; a ``x()`` segment continues on x's return type."""
    obj: Any = start
    for index, seg in enumerate(segments):
        called = seg.endswith("()")
        attr = seg[:-2] if called else seg
        assert hasattr(obj, attr), f"{what}: {attr!r} not found on {obj!r}"
        value = getattr(obj, attr)
        if not called and isinstance(obj, type) and attrs.has(obj) and index < len(segments) - 1:
            value = typing.get_type_hints(obj).get(attr)  # a record's field: go on its type
            assert isinstance(value, type), f"{what}: cannot tell the type of {attr}"
        if called:
            assert callable(value), f"{what}: {attr!r} is not callable"
            if index < len(segments) - 1:
                value = _return_type(value)
                assert value is not None, f"{what}: cannot tell what {attr}() returns"
        obj = value
    return obj


def _resolve_module(segments: list[str], what: str) -> Any:
    parts = [s[:-2] if s.endswith("()") else s for s in segments]
    for cut in range(len(parts), -1, -1):
        name = ".".join(["okx_sync", *parts[:cut]])
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        return _resolve(module, segments[cut:], what)
    raise AssertionError(f"{what}: not importable")


def _check_keywords(obj: Any, args: str, what: str) -> None:
    keywords = _keywords(args)
    if not keywords or not callable(obj):
        return
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = getattr(obj, "endpoint", None) is not None  # named methods: camelCase passes through
    for kw in keywords:
        if kw in params and params[kw].kind is not inspect.Parameter.VAR_KEYWORD:
            continue
        if var_kw and (not named or kw != kw.lower()):
            continue
        raise AssertionError(f"{what}: no keyword {kw!r} in {sig}")


@pytest.fixture(scope="module")
def targets():
    with Simulator(seed=3, auto_tick=False) as sim:
        with sim_client(sim) as client:
            ws = okx_sync.WSClient(sim.ws_public_url)
            yield {"client": client, "ws": ws}
            ws.close()


@pytest.mark.parametrize("runbook", RUNBOOKS)
def test_every_python_name_resolves(runbook, targets):
    text = _runbook(runbook)
    names = _names(text)
    roots = {root for root, _, _ in names}
    assert roots == {"okx_sync", "client", "ws"}, f"{runbook}: extraction found only {roots}"
    assert len(names) > 100, f"{runbook}: suspiciously few names ({len(names)})"
    failures = _unresolved(names, targets, runbook)
    assert not failures, "\n".join(sorted(set(failures)))


@pytest.mark.parametrize("runbook", RUNBOOKS)
def test_imports_bare_names_and_options_resolve(runbook):
    text = _runbook(runbook)
    imports, bare, options = (
        _imports(text),
        [b for c in _code(text) for b in _bare(c)],
        _options(text),
    )
    assert len(imports) >= 4 and len(bare) >= 15 and len(options) >= 3, (imports, bare, options)
    failures = _unresolved_code(text, runbook)
    assert not failures, "\n".join(sorted(set(failures)))


def _unresolved_code(text: str, doc: str) -> list[str]:
    """What the import lines, bare names and option lists of ``text`` get wrong."""
    failures = []
    for module, name in _imports(text):
        try:
            found = hasattr(importlib.import_module(module), name)
        except ImportError as exc:
            failures.append(f"{doc}: from {module} import {name}: {exc}")
            continue
        if not found:
            failures.append(f"{doc}: from {module} import {name}: no such name")
    for code in _code(text):
        modules = [okx_sync] + [importlib.import_module(m) for m, _ in _imports(code)]
        for name, args in _bare(code):
            what = f"{doc}: {name}"
            owner = next((m for m in modules if hasattr(m, name)), None)
            if owner is None:
                if name not in GO_NAMES:
                    failures.append(f"{what}: not exported by okx_sync (nor imported here)")
                continue
            try:
                _check_keywords(getattr(owner, name), args, what)
            except AssertionError as exc:
                failures.append(str(exc))
    for dotted, names in _options(text):
        what = f"{doc}: okx_sync.{dotted} options"
        try:
            obj = _resolve_module(dotted.split("."), what)
            _check_keywords(obj, ", ".join(f"{n}=1" for n in names), what)
        except AssertionError as exc:
            failures.append(str(exc))
    return failures


def _unresolved(names: list[tuple[str, list[str], str]], targets: dict, doc: str) -> list[str]:
    """What does not resolve (or takes no such keyword), one line per name."""
    failures = []
    for root, segments, args in names:
        what = f"{doc}: {root}.{'.'.join(segments)}"
        try:
            if root == "okx_sync":
                obj = _resolve_module(segments, what)
            else:
                obj = _resolve(targets[root], segments, what)
            _check_keywords(obj, args, what)
        except AssertionError as exc:
            failures.append(str(exc))
    return failures


def test_every_readme_name_resolves_and_command_runs(targets):
    """README.md is held to the same standard: its API names and commands are real."""
    text = _runbook("README.md")
    names = _names(text)
    assert len(names) > 50, f"README.md: suspiciously few names ({len(names)})"
    failures = _unresolved(names, targets, "README.md")
    _help_all(words[0] for words in _commands(text) if words)
    for words in _commands(text):
        if not words or words[0] == "COMMAND":  # the usage placeholder
            continue
        code, help_text = _help(words[0])
        if code != 0:
            failures.append(f"README.md: okx-sync {words[0]} --help exited {code}")
    assert not failures, "\n".join(sorted(set(failures)))


def _commands(text: str) -> list[list[str]]:
    return [m.group(0).split()[1:] for m in COMMAND.finditer(text) if m.group(0) != "okx-sync"]


def _help_all(commands: Iterable[str]) -> None:
    """``_help`` of each of ``commands``, side by side (each is a process start)."""
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="okx-sync-help") as pool:
        list(pool.map(_help, sorted(set(commands))))


@cache
def _help(command: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "okx_sync", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    return done.returncode, done.stdout + done.stderr


def test_the_extractors_see_what_they_must():
    sample = (
        'logger "okx_sync.rest"; `okx_sync.ops.health.format_health(client.health())`, '
        "`ws.stats().typed_queue_len`, `client.enter_safe_mode(cancel_open_orders=True, "
        'reason="a=b")`, okx_sync_ws_last_recv_age_s, `okx-sync drill NAME -v`, okx-sync evidence。'
    )
    names = [(r, s) for r, s, _ in _names(sample)]
    assert ("okx_sync", ["ops", "health", "format_health"]) in names
    assert ("client", ["health()"]) in names and ("ws", ["stats()", "typed_queue_len"]) in names
    assert ("okx_sync", ["rest"]) not in names  # a quoted logger name is not an API name
    assert _keywords('cancel_open_orders=True, reason="a=b", x={"k": 1}') == [
        "cancel_open_orders",
        "reason",
        "x",
    ]
    assert _commands(sample) == [["drill", "NAME", "-v"], ["evidence"]]


def test_the_code_checks_catch_renamed_names_and_keywords():
    good = (
        "```python\n"
        "from okx_sync import StatsReporter, JsonLinesSink\n"
        "from okx_sync.ops.safe_mode import CancelItem\n"
        "StatsReporter(client, interval_s=1.0, sinks=[JsonLinesSink('p', max_bytes=9)])\n"
        "CancelItem  # imported above, not an okx_sync export\n"
        "```\n"
        "Refused: `SafeModeError`; see `LastRecv`; `Client(..., health_thresholds=...)`.\n"
        "`okx_sync.RetryPolicy` options: `max_retries` (see `x_y`), `jitter`. "
        "Fields of `okx_sync.ws.dispatch.DispatchConfig`: `mode`, `overflow` policy: `block`.\n"
    )
    assert _unresolved_code(good, "good") == []
    bad = (
        good.replace("JsonLinesSink\n", "JsonLinesSinc\n")
        .replace("interval_s=", "interval=")
        .replace("max_bytes=", "max_size=")
        .replace("`SafeModeError`", "`SafeModeErr`")
        .replace("health_thresholds=", "thresholds=")
        .replace("`jitter`", "`jiter`")
        .replace("`mode`", "`mod`")
        .replace("\nCancelItem ", "\nCancelItm ")
    )
    failures = "\n".join(_unresolved_code(bad, "bad"))
    for needle in (
        "from okx_sync import JsonLinesSinc: no such name",
        "StatsReporter: no keyword 'interval'",
        "JsonLinesSink: no keyword 'max_size'",
        "SafeModeErr: not exported",
        "Client: no keyword 'thresholds'",
        "RetryPolicy options: no keyword 'jiter'",
        "DispatchConfig options: no keyword 'mod'",
        "CancelItm: not exported",
    ):
        assert needle in failures, (needle, failures)


@pytest.mark.parametrize("runbook", RUNBOOKS)
def test_every_command_runs(runbook):
    commands = _commands(_runbook(runbook))
    used = {c[0] for c in commands if c}
    assert COMMANDS <= used, used
    _help_all(used & COMMANDS)
    failures = []
    for words in commands:
        name, rest = words[0], words[1:]
        if name not in COMMANDS:
            failures.append(f"okx-sync {' '.join(words)}: unknown command {name!r}")
            continue
        code, help_text = _help(name)
        if code != 0:
            failures.append(f"okx-sync {name} --help exited {code}: {help_text[-300:]}")
            continue
        for word in rest:
            option = word.split("=")[0]
            if option.startswith("-") and option not in help_text:
                failures.append(f"okx-sync {name}: option {option} not in its --help")
            if name == "drill" and not option.startswith("-"):
                if option not in DRILLS | {"all", "NAME", "[NAME|all]"}:
                    failures.append(f"okx-sync drill {option}: not a drill")
                elif option in DRILLS and option not in help_text:
                    failures.append(f"okx-sync drill {option}: not listed by --help")
    assert not failures, "\n".join(sorted(set(failures)))


def test_both_runbooks_have_sections_0_to_7_and_every_drill():
    for name in RUNBOOKS:
        text = _runbook(name)
        heads = re.findall(r"^## (\d)\.", text, flags=re.M)
        assert heads == [str(i) for i in range(8)], f"{name}: sections {heads}"
        for drill in DRILLS:
            assert f"okx-sync drill {drill}" in text or f"`{drill}`" in text, (name, drill)
        for command in ("okx-sync demo", "okx-sync evidence", "okx-sync doctor", "okx-sync book"):
            assert command in text, (name, command)
