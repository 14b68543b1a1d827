"""Client(user_agent=...) is appended to the library's User-Agent; a Session's own
User-Agent is kept. Checked as a real server on 127.0.0.1 sees it (pooled and Session)."""

from __future__ import annotations

import pytest
import requests

from okx_sync import Client, RequestGateConfig, ValidationError, __version__
from okx_sync.testing.rest_servers import EchoServer

GATE = RequestGateConfig(rate_limits=False)


def _seen_agents(server: EchoServer) -> list[str]:
    return [
        next(v for k, v in headers.items() if k.lower() == "user-agent")
        for _, _, headers, _ in server.requests
    ]


@pytest.mark.parametrize("kind", ["fast", "session"])
def test_user_agent_is_appended_to_the_library_one(kind: str) -> None:
    session = requests.Session() if kind == "session" else None  # requests' default UA
    with (
        EchoServer() as server,
        Client(
            base_url=server.url, gate=GATE, session=session, user_agent="mybot/1.2 (+ops)"
        ) as client,
    ):
        client.request("GET", "/api/v5/public/time")
        assert _seen_agents(server) == [f"okx_sync/{__version__} mybot/1.2 (+ops)"]
        assert client.evidence()["config"]["user_agent"] == "mybot/1.2 (+ops)"
    if session is not None:
        session.close()


def test_a_sessions_own_user_agent_is_kept_and_extended() -> None:
    session = requests.Session()
    session.headers["User-Agent"] = "corp-proxy-client/7"
    with EchoServer() as server:
        with Client(base_url=server.url, gate=GATE, session=session) as client:
            client.request("GET", "/api/v5/public/time")
        with Client(base_url=server.url, gate=GATE, session=session, user_agent="bot/2") as c2:
            c2.request("GET", "/api/v5/public/time")
        with Client(base_url=server.url, gate=GATE) as plain:
            plain.request("GET", "/api/v5/public/time")
        assert _seen_agents(server) == [
            "corp-proxy-client/7",
            "corp-proxy-client/7 bot/2",
            f"okx_sync/{__version__}",
        ]
    session.close()


@pytest.mark.parametrize("bad", ["", "a\r\nX-Evil: 1", "é", 5, "x" * 257])
def test_user_agent_must_be_printable_ascii(bad: object) -> None:
    with pytest.raises(ValidationError, match="user_agent"):
        Client(user_agent=bad)  # type: ignore[arg-type]
