"""One unit convention in the public API: a duration is in seconds and its name ends in ``_s``;
``_ms`` appears only where OKX itself speaks milliseconds (wire timestamps, ``expTime``, the
clock offset derived from them), each such name listed below with its reason.

The test walks every public module of ``okx_sync`` (``okx_sync.sim`` included, private modules
and names excluded), and for every public function, class, method (``__init__`` included),
Protocol, attrs/dataclass/NamedTuple field, property, class attribute and ``self.x = ...``
attribute it checks the name: a name that looks like a duration (it has a word such as
timeout, interval, delay, wait, window, backoff, ttl, period, age, hold, grace, stale, latency,
duration, elapsed, idle, quiet, after...) must end in ``_s``; a name ending in ``_ms`` must be
in :data:`MS_ALLOWED`; ``_sec``/``_secs``/``_seconds``/``_millis`` suffixes are refused. It also
checks the snake_case string keys of dict displays in the package source (stats and report
dicts): OKX's wire keys are camelCase, so a snake_case key is ours and follows the same rule.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import attrs

import okx_sync
from tests.source_support import parse_file

PACKAGE_DIR = Path(okx_sync.__file__).resolve().parent

# Words that make a name a duration (matched against the name's "_"-separated words).
DURATION_WORDS = frozenset(
    {
        "timeout",
        "interval",
        "delay",
        "wait",
        "window",
        "backoff",
        "ttl",
        "period",
        "age",
        "hold",
        "grace",
        "stale",
        "latency",
        "duration",
        "elapsed",
        "after",
        "idle",
        "quiet",
        "cooldown",
        "lag",
        "linger",
        "pause",
        "skew",
        "uptime",
        "lifetime",
    }
)
# A name ending in one of these counts something (``latency_samples``, ``time_skew_codes``).
COUNT_WORDS = frozenset({"samples", "count", "counts", "code", "codes", "errors", "size", "limit"})
# "after" is a duration only as the last word (``stable_after``; not ``drift_after_reconcile``).
BAD_SUFFIX = re.compile(r"_(sec|secs|seconds|millis|msec|us|ns)$")

# Names ending in _ms, allowed because OKX speaks milliseconds there.
MS_ALLOWED: dict[str, str] = {
    "epoch_ms": "OKX request timestamps and ts/cTime are epoch milliseconds",
    "now_ms": "a clock in epoch ms, the unit of OKX's ts/expTime",
    "exp_time_ms": "OKX's expTime is epoch milliseconds",
    "offset_ms": "clock offset computed from OKX's ms timestamps (GET /public/time ts)",
    "sent_ms": "local epoch ms around a GET /public/time call, compared with OKX's ms ts",
    "received_ms": "local epoch ms around a GET /public/time call, compared with OKX's ms ts",
    "server_ms": "OKX's /public/time ts, epoch ms",
    "taken_at_ms": "epoch ms, compared with OKX's cTime/uTime of orders and fills",
    "checked_at_ms": "epoch ms, compared with OKX's cTime/uTime of orders and fills",
    "not_before_ms": "epoch ms, compared with OKX's cTime of orders (history search floor)",
    "ts_ms": "OKX's ts (epoch ms)",
    "server_time_ms": "OKX's /public/time ts, epoch ms",
    "clock_offset_ms": "clock offset computed from OKX's ms timestamps",
    "time_offset_ms": "clock offset computed from OKX's ms timestamps (GET /public/time ts)",
    "sync_offset_ms": "clock offset computed from OKX's ms timestamps (auth drill figure)",
    "skew_warn_ms": "doctor: threshold on the clock offset to OKX (ms, from OKX's ts)",
    "skew_fail_ms": "doctor: threshold on the clock offset to OKX (ms, from OKX's ts)",
    "clock_ms": "a signing clock in epoch ms, the unit of OKX's request timestamps",
    "span_ms": "simulator: a span of OKX candle timestamps (epoch ms) for 24h ticker fields",
}

# Names that contain a duration word without being a duration.
NOT_DURATION: dict[str, str] = {
    "after": "OKX pagination cursor (an id or ts), the wire name",
    "before": "OKX pagination cursor (an id or ts), the wire name",
    "wait_until": "a method name",
    "gate_timeouts_degraded": "a count of gate timeouts",
    "honour_retry_after": "a bool: whether to honour OKX's Retry-After",
    "resync_on_time_skew": "a bool: re-sync the clock on a timestamp error",
    "is_time_skew_error": "a predicate",
    "backoff": "a BackoffPolicy object, not a number",
    "WAIT": "an enum member (Admission.WAIT)",
    "drift_after": "drill figure: a count of drifted orders after the reconcile",
    "gated_peak_per_window": "drill figure: a count of requests per rate window",
    "storm_admitted_during_hold": "drill figure: a count of admitted requests",
    "poll_interval": "the stdlib's socketserver.serve_forever keyword",
}

# Our snake_case keys (OKX's wire keys are camelCase), and single words that are durations.
_WORDS = "|".join(sorted(DURATION_WORDS))
DICT_KEY = re.compile(rf"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$|^(?:{_WORDS})$")


def _modules() -> Iterator[str]:
    yield "okx_sync"
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="okx_sync."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]):
            continue
        yield info.name


def _problem(name: str) -> str | None:
    """Why ``name`` breaks the convention, or None."""
    if name in NOT_DURATION or name.startswith("_"):
        return None
    low = name.lower()
    if BAD_SUFFIX.search(low):
        return "unit suffix other than _s/_ms"
    words = low.split("_")
    if words[-1] == "ms":
        return None if low in MS_ALLOWED else "_ms where OKX does not speak ms (use seconds, _s)"
    if words[-1] == "s" or words[-1] in COUNT_WORDS:
        return None
    if DURATION_WORDS.intersection(words[:-1]) - {"after"} or words[-1] in DURATION_WORDS:
        return "looks like a duration: seconds with suffix _s"
    return None


def _params(where: str, func: object) -> Iterator[tuple[str, str]]:
    try:
        sig = inspect.signature(func)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    for p in sig.parameters.values():
        if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            yield f"{where}({p.name})", p.name


@functools.cache
def _class_defs(path: str) -> dict[str, ast.ClassDef]:
    """Every class statement of a source file by qualified name (each file parsed once:
    ``inspect.getsource(cls)`` re-parses the whole module for every class)."""
    found: dict[str, ast.ClassDef] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                found.setdefault(prefix + child.name, child)
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, f"{prefix}{child.name}.<locals>.")

    try:
        visit(parse_file(path), "")
    except (OSError, SyntaxError, ValueError):
        pass
    return found


def _self_attributes(cls: type) -> set[str]:
    try:
        path = inspect.getsourcefile(cls)
    except TypeError:
        return set()
    tree = _class_defs(path).get(cls.__qualname__) if path else None
    if tree is None:
        return set()
    names = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for t in targets:
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name):
                if t.value.id == "self":
                    names.add(t.attr)
    return names


def _class_names(where: str, cls: type) -> Iterator[tuple[str, str]]:
    if attrs.has(cls):
        for f in attrs.fields(cls):
            yield f"{where}.{f.name} (field)", f.name
            if f.alias and f.alias != f.name:
                yield f"{where}.{f.alias} (init)", f.alias
    if dataclasses.is_dataclass(cls):
        for df in dataclasses.fields(cls):
            yield f"{where}.{df.name} (field)", df.name
    for name in getattr(cls, "_fields", ()):
        yield f"{where}.{name} (field)", name
    for name in vars(cls).get("__annotations__", {}):
        yield f"{where}.{name} (annotation)", name
    for name, member in vars(cls).items():
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(member, staticmethod | classmethod):
            member = member.__func__
        if inspect.isfunction(member):
            yield from _params(f"{where}.{name}", member)
        elif not inspect.isclass(member):
            yield f"{where}.{name} (attribute)", name
    for name in _self_attributes(cls):
        yield f"{where}.{name} (attribute)", name


def _module_assignments(module: object) -> set[str]:
    """Names a module assigns at its top level (its constants)."""
    try:
        tree = parse_file(inspect.getsourcefile(module))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return set()
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_") and n != "log"}


def _public_names() -> Iterator[tuple[str, str]]:
    seen: set[int] = set()
    for modname in _modules():
        module = importlib.import_module(modname)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != modname:
                continue
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            where = f"{modname}:{name}"
            if inspect.isclass(obj):
                yield from _class_names(where, obj)
            elif inspect.isfunction(obj):
                yield from _params(where, obj)
        for name in _module_assignments(module):
            yield f"{modname}:{name} (module constant)", name


def _dict_keys() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR.parent)
        tree = parse_file(path)
        for node in ast.walk(tree):
            keys: list[tuple[str, int]] = []
            if isinstance(node, ast.Dict):
                keys = [
                    (k.value, k.lineno)
                    for k in node.keys
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)
                ]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "dict"
            ):
                keys = [(kw.arg, kw.value.lineno) for kw in node.keywords if kw.arg]
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "figure"
                and node.args
            ):
                # drill figures: run.figure("name", value) / run.figure(f"{label}_name", ...)
                first = node.args[0]
                parts = first.values if isinstance(first, ast.JoinedStr) else [first]
                last = parts[-1]
                if isinstance(last, ast.Constant) and isinstance(last.value, str):
                    keys = [(last.value.lstrip("_"), first.lineno)]
            for key, line in keys:
                if DICT_KEY.match(key):
                    yield f"{rel}:{line} dict key {key!r}", key


def test_every_public_duration_name_is_in_seconds() -> None:
    found = {
        f"{where}: {why}" for where, name in _public_names() if (why := _problem(name)) is not None
    }
    assert not found, "\n" + "\n".join(sorted(found))


def test_stats_and_report_keys_follow_the_same_rule() -> None:
    found = {
        f"{where}: {why}" for where, name in _dict_keys() if (why := _problem(name)) is not None
    }
    assert not found, "\n" + "\n".join(sorted(found))


def test_the_rule_catches_what_it_should() -> None:
    """The checker itself: durations without _s, stray _ms and odd suffixes are refused."""
    for bad in (
        "timeout",
        "ping_interval",
        "exp_window_ms",
        "stale_after",
        "latency_ms",
        "hold",
        "idle_timeout",
        "backoff_max",
        "grace_seconds",
        "retry_after",
    ):
        assert _problem(bad) is not None, bad
    for good in (
        "timeout_s",
        "ping_interval_s",
        "exp_time_ms",
        "offset_ms",
        "after",
        "gate_timeouts_degraded",
        "max_message_bytes",
        "seconds",
        "latency_samples",
        "TIME_SKEW_CODES",
        "SKEW_WARN_MS",
        "stale_after_s",
    ):
        assert _problem(good) is None, good
