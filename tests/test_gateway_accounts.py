"""Accounts through the gateway: login, register and change password as browser JSON, and the gateway's
refusal of passwords on an unprotected WebSocket (a trusted proxy that says http)."""

from __future__ import annotations

import io
import logging
import pathlib
from collections.abc import Awaitable, Callable, Iterator

import pytest

from tests.gateway_fixtures import GatewayStack, JsonClient, ws_clients

__all__ = ["ws_clients"]

Open = Callable[..., Awaitable[JsonClient]]
PASSWORD = "Browser # pass-55"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


async def until(client: JsonClient, kind: str) -> list[dict[str, object]]:
    return await client.recv_until(lambda e: e.get("type") in (kind, "error"))


async def test_register_login_change_through_the_gateway(
    make_gateway_stack: Callable[..., Awaitable[GatewayStack]], ws_clients: Open, tmp_path: pathlib.Path,
    logs: io.StringIO,
) -> None:
    stack = await make_gateway_stack(server={"database": f"sqlite:///{tmp_path / 'chat.db'}", "resume_grace": 30})
    headers = {"Origin": stack.origin}
    guest = await ws_clients(stack.ws_url, headers)
    await guest.join("Mina")
    await guest.send({"type": "register", "password": PASSWORD})
    events = await until(guest, "registered")
    assert events[-1] == {"type": "registered", "id": "Mina"}
    await guest.send({"type": "leave"})
    await guest.recv_until(lambda e: e.get("type") == "left")
    page = await ws_clients(stack.ws_url, headers)
    await page.send({"type": "login", "id": "mina", "password": "wrong password here"})
    events = await until(page, "joined")
    assert events[-1]["type"] == "error" and events[-1]["reason"] == "bad-login"
    await page.send({"type": "login", "id": "mina", "password": PASSWORD})
    events = await page.recv_until(lambda e: e.get("type") == "session")
    assert {"type": "joined", "id": "Mina"} in events
    assert {"type": "accounts", "ids": ["Mina"]} in events
    await page.send({"type": "passwd", "password": "Another # one-66"})
    events = await until(page, "password_changed")
    assert events[-1] == {"type": "password_changed"}
    watcher = await ws_clients(stack.ws_url, headers)
    await watcher.join("obs")
    await page.send({"type": "say", "text": "from an account"})
    events = await watcher.recv_until(lambda e: e.get("type") == "message")
    assert events[-1]["account"] is True
    text = logs.getvalue()
    assert "Browser # pass" not in text and "Another # one" not in text and "wrong password here" not in text


@pytest.mark.parametrize(("proto", "reason"), [("http", "needs-tls"), ("https", "bad-login")])
async def test_a_trusted_proxy_must_say_https(
    make_gateway_stack: Callable[..., Awaitable[GatewayStack]], ws_clients: Open, tmp_path: pathlib.Path,
    proto: str, reason: str,
) -> None:
    stack = await make_gateway_stack(server={"database": f"sqlite:///{tmp_path / 'chat.db'}"},
                                     gateway={"trusted_proxy": ["127.0.0.0/8"]})
    page = await ws_clients(stack.ws_url, {"Origin": stack.origin, "X-Forwarded-Proto": proto})
    await page.send({"type": "login", "id": "nobody", "password": PASSWORD})
    events = await until(page, "joined")
    assert events[-1]["type"] == "error" and events[-1]["reason"] == reason
