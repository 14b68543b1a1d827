"""okx_sync.guards: the guard tuple, running guards, releasing them, the safe-mode rule. Pure."""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import pytest

import okx_sync.guards as guards_mod
from okx_sync.errors import SafeModeError, ValidationError
from okx_sync.guards import (
    allowed_in_safe_mode,
    check_guards,
    release_all,
    run_guards,
    with_guard,
    without_guard,
)
from okx_sync.rest.endpoints import registry

PLACE = registry().get("POST", "/api/v5/trade/order")
PARAMS = {"instId": "BTC-USDT", "sz": "1"}


class Recorder:
    """Guards and releases that write what happened into one shared list."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def guard(self, name: str, *, refuse: bool = False, release: bool = True) -> Any:
        def fn(endpoint: Any, params: Any) -> Any:
            self.log.append(f"{name}({endpoint.path if endpoint else None},{params['sz']})")
            if refuse:
                raise SafeModeError(f"{name} refused")
            return self.release(name) if release else None

        return fn

    def release(self, name: str, *, fail: bool = False) -> Any:
        def fn() -> None:
            self.log.append(f"release {name}")
            if fail:
                raise RuntimeError(f"release {name} broke")

        return fn


def test_with_and_without_guard_keep_order_and_match_by_identity() -> None:
    r = Recorder()
    a, b = r.guard("a"), r.guard("b")
    guards = with_guard(with_guard((), a), b)
    assert guards == (a, b)
    assert with_guard(guards, a) == (a, b, a)  # added twice runs twice
    assert without_guard(guards, a) == (b,)
    assert without_guard(guards, r.guard("a")) == guards  # an equal-looking other fn: absent
    assert without_guard((), a) == ()
    with pytest.raises(ValidationError, match="guard must be callable"):
        with_guard(guards, "not a function")  # type: ignore[arg-type]


def test_run_guards_runs_in_order_and_returns_the_releases() -> None:
    r = Recorder()
    releases = run_guards((r.guard("a"), r.guard("n", release=False), r.guard("b")), PLACE, PARAMS)
    assert r.log == [
        "a(/api/v5/trade/order,1)",
        "n(/api/v5/trade/order,1)",
        "b(/api/v5/trade/order,1)",
    ]
    assert len(releases) == 2  # a guard returning None holds nothing
    release_all(releases)
    assert r.log[-2:] == ["release a", "release b"]
    assert run_guards((), None, PARAMS) == []


def test_a_refusing_guard_releases_what_the_earlier_ones_returned() -> None:
    r = Recorder()
    guards = (r.guard("a"), r.guard("stop", refuse=True), r.guard("never"))
    with pytest.raises(SafeModeError, match="stop refused"):
        run_guards(guards, PLACE, PARAMS)
    assert r.log == ["a(/api/v5/trade/order,1)", "stop(/api/v5/trade/order,1)", "release a"]


def test_check_guards_releases_at_once_and_propagates_a_refusal() -> None:
    r = Recorder()
    check_guards((r.guard("a"), r.guard("b")), None, PARAMS)
    assert r.log == ["a(None,1)", "b(None,1)", "release a", "release b"]
    r.log.clear()
    with pytest.raises(SafeModeError):
        check_guards((r.guard("a"), r.guard("stop", refuse=True)), PLACE, PARAMS)
    assert r.log[-1] == "release a"


def test_release_all_runs_every_release_and_logs_a_broken_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = Recorder()
    caplog.set_level(logging.ERROR, logger="okx_sync.guards")
    release_all([r.release("a"), r.release("bad", fail=True), r.release("c")])
    assert r.log == ["release a", "release bad", "release c"]
    [record] = [rec for rec in caplog.records if rec.name == "okx_sync.guards"]
    assert record.getMessage().startswith("guard release failed")
    assert record.exc_info is not None and "release bad broke" in str(record.exc_info[1])


def test_safe_mode_rule_lives_here_and_is_re_exported() -> None:
    from okx_sync.ops import safe_mode
    from okx_sync.rest import client as rest_client

    assert safe_mode.allowed_in_safe_mode is allowed_in_safe_mode
    for name in ("Guard", "GuardRelease", "run_guards", "check_guards", "release_all"):
        assert getattr(rest_client, name) is getattr(guards_mod, name), name
    assert not allowed_in_safe_mode(PLACE, PARAMS)
    assert allowed_in_safe_mode(PLACE, {**PARAMS, "reduceOnly": "true"})
    assert allowed_in_safe_mode(None, PARAMS)


def test_guards_and_naming_are_pure_modules() -> None:
    """No threads, sockets, HTTP or clocks; okx_sync imports only from the pure layer."""
    pure = {"okx_sync.errors", "okx_sync.rest.endpoints", "okx_sync.naming"}
    banned = {"threading", "socket", "requests", "websocket", "time", "subprocess", "asyncio"}
    root = Path(guards_mod.__file__).parent
    for name in ("guards.py", "naming.py"):
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = "okx_sync." + (node.module or "") if node.level else node.module or ""
                mods = [base]
            else:
                continue
            for mod in mods:
                assert mod.split(".")[0] not in banned, (name, mod)
                if mod.startswith("okx_sync"):
                    assert mod in pure, (name, mod)
