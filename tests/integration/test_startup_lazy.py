"""Start-up: ``import okx_sync`` and ``Client(...)`` build only what a client needs.

The named endpoint groups are built on first use (``client.trade`` builds the trade
group), the ops and WS modules a Client does not use at construction are imported
where they are used. These tests check that laziness changes nothing a user sees
(the same methods, signatures and docstrings as an eager build) and that the modules
stay unimported (``sys.modules`` in a fresh interpreter).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import okx_sync
from okx_sync.rest import named
from okx_sync.rest.endpoints import registry

REPO = Path(__file__).resolve().parents[2]


def _modules_after(program: str) -> dict[str, object]:
    """Run ``program`` in a fresh interpreter (this checkout first on the path); it
    must print one JSON object."""
    code = f"import sys, json\nsys.path.insert(0, {str(REPO)!r})\n{program}"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_import_okx_sync_imports_no_submodule() -> None:
    out = _modules_after(
        "import okx_sync\n"
        "print(json.dumps({'mods': sorted(m for m in sys.modules if m.startswith('okx_sync'))}))"
    )
    assert out["mods"] == ["okx_sync", "okx_sync._version"]


def test_client_construction_leaves_sim_ops_ws_and_groups_unbuilt() -> None:
    out = _modules_after(
        "import okx_sync\n"
        "c = okx_sync.Client('k' * 8, 's' * 8, 'p' * 8)\n"
        "from okx_sync.rest import named\n"
        "mods = sorted(m for m in sys.modules if m.startswith('okx_sync'))\n"
        "built_before = sorted(named.GROUP_CLASSES._built)\n"
        "c.account\n"
        "print(json.dumps({'mods': mods, 'built_before': built_before,\n"
        "                  'built_after': sorted(named.GROUP_CLASSES._built)}))"
    )
    mods = set(out["mods"])  # type: ignore[arg-type]
    assert "okx_sync.client" in mods and "okx_sync.rest.named" in mods
    assert not {m for m in mods if m == "okx_sync.sim" or m.startswith("okx_sync.sim.")}
    # needed at construction: safe mode (a pre-send guard), the health monitor and the
    # protocols (no code) they are typed with
    assert {m for m in mods if m.startswith("okx_sync.ops.")} == {
        "okx_sync.ops.health",
        "okx_sync.ops.ports",
        "okx_sync.ops.safe_mode",
    }
    assert "okx_sync.ws.client" not in mods and "okx_sync.ws.managed_book" not in mods
    assert out["built_before"] == []
    assert out["built_after"] == ["account"]  # the first attribute access built one group


def test_lazy_groups_equal_an_eager_build() -> None:
    groups = registry().groups()
    assert list(named.GROUP_CLASSES) == [named.group_attr(g) for g in groups]
    assert len(named.GROUP_CLASSES) == len(groups)
    for group, eps in groups.items():
        attr = named.group_attr(group)
        lazy, eager = named.GROUP_CLASSES[attr], named._build_group(group, eps)
        assert lazy is named.GROUP_CLASSES[attr]  # built once
        assert lazy.__name__ == eager.__name__ and lazy.endpoints == eager.endpoints
        names = {n for n, v in vars(eager).items() if callable(v) and not n.startswith("_")}
        assert names == {n for n, v in vars(lazy).items() if callable(v) and not n.startswith("_")}
        for name in names:
            a, b = getattr(lazy, name), getattr(eager, name)
            assert inspect.signature(a) == inspect.signature(b), f"{attr}.{name}"
            assert a.__doc__ == b.__doc__ and a.__qualname__ == b.__qualname__
            assert a.endpoint is b.endpoint


def test_client_groups_are_the_lazy_classes_with_their_signatures() -> None:
    client = okx_sync.Client()
    try:
        assert type(client.account) is named.GROUP_CLASSES["account"]
        assert client.account is client.account
        assert client.trade is client.trade
        assert isinstance(client.trade, named.GROUP_CLASSES["trade"])
        assert callable(client.trade.place_order_safely)
        sig = inspect.signature(client.trade.place_order)
        assert list(sig.parameters)[:2] == ["inst_id", "td_mode"]
        assert sig.parameters["validate"].default is True
        assert sig.return_annotation == "OrderAck"
        assert named.RestAPI.market is named.GROUP_CLASSES["market"]
    finally:
        client.close()


def test_concurrent_first_access_builds_one_class() -> None:
    classes = named._GroupClasses()
    barrier = threading.Barrier(8)
    seen: list[type] = []

    def first_access() -> None:
        barrier.wait(timeout=10)
        seen.append(classes["trade"])

    threads = [threading.Thread(target=first_access) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(seen) == 8 and len({id(c) for c in seen}) == 1
    assert list(classes._built) == ["trade"]


def test_unknown_group_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        named.GROUP_CLASSES["no_such_group"]
