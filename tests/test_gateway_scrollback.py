"""Scrollback and search through the web gateway: browser JSON in, the server's page/older/found events out."""

from __future__ import annotations

import pathlib
from typing import Any

from tests.gateway_fixtures import GatewayStack, JsonClient
from tests.helpers import TIMEOUT, LineClient


async def test_the_page_pages_back_and_searches_through_the_gateway(
    make_gateway_stack: Any, ws_clients: Any, tmp_path: pathlib.Path,
) -> None:
    stack: GatewayStack = await make_gateway_stack(
        server={"database": f"sqlite:///{tmp_path / 'chat.db'}", "history": 2})
    bob = await LineClient.connect("127.0.0.1", stack.server_port)
    try:
        await bob.join("bob")
        await bob.send("".join(f"002#bob#line {i} #{i}\n" for i in range(5)))
        await bob.sync()
        assert stack.server.gate is not None and await stack.server.gate.drain(TIMEOUT)
        page: JsonClient = await ws_clients(stack.ws_url, {"Origin": stack.origin})
        await page.join("alice")
        events = await page.recv_until("page")
        assert [e["text"] for e in events if e["type"] == "history"] == ["line 3 #3", "line 4 #4"]
        first = events[-1]
        assert first["room"] == "lobby" and first["count"] == 2 and first["cursor"]
        await page.send({"type": "older", "room": "lobby", "cursor": first["cursor"], "limit": 10})
        events = await page.recv_until("page")
        assert [e["text"] for e in events if e["type"] == "older"] == [f"line {i} #{i}" for i in range(3)]
        assert events[-1] == {"type": "page", "room": "lobby", "count": 3, "cursor": ""}
        await page.send({"type": "search", "room": "lobby", "text": "LINE 4 #"})
        events = await page.recv_until("searched")
        found = [e for e in events if e["type"] == "found"]
        assert [(e["from"], e["text"]) for e in found] == [("bob", "line 4 #4")] and isinstance(found[0]["ts"], int)
        await page.send({"type": "older", "room": "lobby", "cursor": "forged", "limit": 10})
        (error,) = await page.sync()
        assert error["type"] == "error" and error["reason"] == "bad-cursor"
    finally:
        await bob.close()
