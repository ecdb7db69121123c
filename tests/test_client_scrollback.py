"""The terminal client's /more and /search against a real server with a real SQLite store."""

from __future__ import annotations

import asyncio
import io
import pathlib
from collections.abc import Awaitable, Callable

from chat_client.client import ChatClient
from chat_client.script import ScriptFrontend
from tcp_server import ChatServer
from tests.client_fixtures import Stdin, config
from tests.helpers import TIMEOUT, LineClient, wait_until


async def test_more_pages_back_and_search_finds_literally(
        make_server: Callable[..., Awaitable[ChatServer]], stdin: Stdin, tmp_path: pathlib.Path) -> None:
    server = await make_server(history=2, database=f"sqlite:///{tmp_path / 'chat.db'}")
    bob = await LineClient.connect("127.0.0.1", server.port)
    out, err = io.StringIO(), io.StringIO()
    cfg = config(server.port, id="alice", lang="en")
    client = ChatClient(cfg, ScriptFrontend(cfg, stdin.lines, out, err, color=False))
    relay: asyncio.Task[int] | None = None
    try:
        await bob.join("bob")
        await bob.send("".join(f"002#bob#old {i} 100%\n" for i in range(25)))
        await bob.sync()
        assert server.gate is not None and await server.gate.drain(TIMEOUT)
        assert await asyncio.wait_for(client.start(), TIMEOUT)
        relay = asyncio.create_task(client.run())
        await wait_until(lambda: client.cursor is not None, what="the join's 141")
        assert "bob : old 24 100%" in out.getvalue()
        assert await asyncio.wait_for(client.submit("/more"), TIMEOUT)
        await wait_until(lambda: "20 earlier message(s) shown." in out.getvalue(), what="the first page")
        assert "bob : old 3 100%" in out.getvalue() and "bob : old 2 100%" not in out.getvalue()
        assert await asyncio.wait_for(client.submit("/more"), TIMEOUT)
        await wait_until(lambda: "There are no earlier messages." in out.getvalue(), what="the last page")
        assert "bob : old 0 100%" in out.getvalue()
        assert await asyncio.wait_for(client.submit("/more"), TIMEOUT)
        await wait_until(lambda: err.getvalue().count("There are no earlier messages.") == 1
                         or out.getvalue().count("There are no earlier messages.") == 2, what="nothing older")
        assert await asyncio.wait_for(client.submit("/search 4 100%"), TIMEOUT)
        await wait_until(lambda: "3 message(s) found." in out.getvalue(), what="the search")
        assert await asyncio.wait_for(client.submit("/search x"), TIMEOUT)
        await wait_until(lambda: "Usage: /search TEXT" in out.getvalue() + err.getvalue(), what="the usage")
        await asyncio.wait_for(client.leave(), TIMEOUT * 2)
        assert await asyncio.wait_for(relay, TIMEOUT) == 0
    finally:
        if relay is not None:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
        await bob.close()


async def test_more_without_a_store_says_so(
        make_server: Callable[..., Awaitable[ChatServer]], stdin: Stdin) -> None:
    server = await make_server(history=2)
    out, err = io.StringIO(), io.StringIO()
    cfg = config(server.port, id="alice", lang="en")
    client = ChatClient(cfg, ScriptFrontend(cfg, stdin.lines, out, err, color=False))
    relay: asyncio.Task[int] | None = None
    try:
        assert await asyncio.wait_for(client.start(), TIMEOUT)
        relay = asyncio.create_task(client.run())
        assert await asyncio.wait_for(client.submit("/more"), TIMEOUT)
        assert "This server keeps no earlier messages." in out.getvalue() + err.getvalue()
        await asyncio.wait_for(client.leave(), TIMEOUT * 2)
        assert await asyncio.wait_for(relay, TIMEOUT) == 0
    finally:
        if relay is not None:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
