"""WSClient's public surface is the documented list of user verbs, and nothing else.

Its internal hooks (the connection loop's ``SessionHooks``, the managed books'
``BookFeed``, the account-limit refresh) live on private parts; a user reading
``dir(ws)`` finds only what README.md documents.
"""

from __future__ import annotations

import inspect

import attrs
import pytest

from okx_sync import DispatchConfig, DispatchMode, WSClient, WSConfig
from okx_sync.errors import ValidationError
from okx_sync.ws.supervisor import SessionHooks

#: The documented public names of a WSClient (README.md "WebSocket").
DOCUMENTED = {
    # lifecycle and identity
    "start",
    "close",
    "running",
    "started",
    "name",
    "url",
    "stats",
    # handlers and dispatch
    "on",
    "off",
    "on_connect",
    "on_disconnect",
    "on_reconnect",
    "on_error",
    "on_event",
    "on_raw",
    "set_dispatch",
    # subscriptions
    "subscribe",
    "unsubscribe",
    "subscribe_and_wait",
    "unsubscribe_and_wait",
    "resubscribe",
    "desired_subscriptions",
    # managed order books
    "order_book",
    "managed_books",
    # order entry (private connections) and its guards (safe mode)
    "place_order",
    "place_batch_orders",
    "cancel_order",
    "cancel_batch_orders",
    "amend_order",
    "amend_batch_orders",
    # spread order entry (business connections)
    "place_spread_order",
    "amend_spread_order",
    "cancel_spread_order",
    "mass_cancel_spread_orders",
    "add_guard",
    "remove_guard",
}


def public_names(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_public_names_are_the_documented_user_verbs() -> None:
    ws = WSClient("ws://127.0.0.1:9/ws/v5/public")  # never started
    try:
        assert public_names(ws) == DOCUMENTED
        assert public_names(WSClient) == DOCUMENTED - {"name", "url"}  # instance attributes
    finally:
        ws.close()


def test_no_internal_hook_is_public() -> None:
    hooks = {n for n, _ in inspect.getmembers(SessionHooks) if not n.startswith("_")}
    assert "on_message" in hooks and "prepare" in hooks  # the protocol the loop calls
    feed_hooks = {"add_push_listener", "resubscribe_nowait", "report_error", "book_router"}
    other = {"set_account_limit_refresh", "adopt_sibling", "reader_handler", "pending_orders"}
    assert not (hooks | feed_hooks | other) & public_names(WSClient)


def test_readme_documents_every_public_name() -> None:
    """Each public name appears in README.md's WebSocket section."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## WebSocket") :]
    missing = sorted(n for n in DOCUMENTED if n not in section)
    assert missing == []


def test_config_is_one_frozen_validated_object() -> None:
    cfg = WSConfig(raw_dispatch=DispatchConfig(mode=DispatchMode.POOL), subscribe_timeout_s=2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.subscribe_timeout_s = 3  # type: ignore[misc]
    ws = WSClient("ws://127.0.0.1:9/ws/v5/public", config=cfg)
    try:
        assert ws.stats().raw_mode == DispatchMode.POOL
        with pytest.raises(ValidationError, match="DispatchConfig"):
            ws.set_dispatch(typed="inline")  # type: ignore[arg-type]
    finally:
        ws.close()
    with pytest.raises(ValidationError, match="config"):
        WSClient("ws://127.0.0.1:9/ws/v5/public", config={"subscribe_timeout_s": 2})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        WSClient("ws://127.0.0.1:9/ws/v5/public", ping_interval_s=5)  # type: ignore[call-arg]
