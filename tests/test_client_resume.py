"""The terminal client with --reconnect resumes its session after its TCP connection is killed; history has times."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Awaitable, Callable

from chat_client.client import ChatClient
from chat_client.script import ScriptFrontend
from tcp_server import ChatServer
from tcp_server.protocol import ErrorReason, Message, UserJoined
from tcp_server.room import InMemorySessionStore
from tests.client_fixtures import Stdin, config
from tests.helpers import TIMEOUT, LineClient, wait_until


async def test_reconnect_resumes_with_the_token_and_prints_missed_lines(
        make_server: Callable[..., Awaitable[ChatServer]], stdin: Stdin) -> None:
    server = await make_server(resume_grace=30.0, history=5)
    sessions = server.sessions
    assert isinstance(sessions, InMemorySessionStore)
    bob = await LineClient.connect("127.0.0.1", server.port)
    out, err = io.StringIO(), io.StringIO()
    cfg = config(server.port, id="alice", reconnect=True, reconnect_delay=1.0, reconnect_max_delay=2.0)
    client = ChatClient(cfg, ScriptFrontend(cfg, stdin.lines, out, err, color=False))
    relay: asyncio.Task[int] | None = None
    try:
        await bob.join("bob")
        await bob.send("002#bob#earlier # one")
        await bob.sync()
        assert await asyncio.wait_for(client.start(), TIMEOUT)
        relay = asyncio.create_task(client.run())
        await wait_until(lambda: "bob : earlier # one" in out.getvalue(), what="the history line")
        assert re.search(r"^\[\d\d:\d\d\] bob : earlier # one$", out.getvalue(), re.M), out.getvalue()
        assert await bob.recv() == UserJoined("alice")
        await wait_until(lambda: client.token is not None, what="the session token")
        token = client.token
        assert token is not None and token not in out.getvalue() + err.getvalue()

        # Kill alice's TCP connection on the server side (the server keeps running).
        (conn,) = [c for c in server.connections if c.session.name == "alice"]
        assert conn.transport is not None
        conn.transport.abort()
        await wait_until(lambda: sessions.is_parked("alice"), what="alice parked")
        await bob.send("002#bob#while you were away")
        await wait_until(lambda: "놓친 메시지" in out.getvalue(), what="the resume")
        shown = out.getvalue()
        assert shown.count("bob : while you were away") == 1
        assert "다시 연결되었습니다. 놓친 메시지 1개를 위에 표시했습니다." in shown
        assert client.token is not None and client.token != token  # a fresh one for the next drop
        assert await bob.sync() == []  # bob saw neither a leave nor a join
        assert await asyncio.wait_for(client.submit("/b back"), TIMEOUT)
        assert await bob.recv() == Message("alice", "back")
        await asyncio.wait_for(client.leave(), TIMEOUT * 2)
        assert await asyncio.wait_for(relay, TIMEOUT) == 0
    finally:
        if relay is not None:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
        await bob.close()


async def test_a_kicked_client_rejoins_afresh_and_says_lines_may_be_missing(
        make_server: Callable[..., Awaitable[ChatServer]], stdin: Stdin) -> None:
    """A kick ends the session (its token is spent): no resume is tried, the rejoin says what it cannot show."""
    server = await make_server(resume_grace=30.0)
    out, err = io.StringIO(), io.StringIO()
    cfg = config(server.port, id="alice", reconnect=True, reconnect_delay=0.2, reconnect_max_delay=0.5, lang="en")
    client = ChatClient(cfg, ScriptFrontend(cfg, stdin.lines, out, err, color=False))
    relay: asyncio.Task[int] | None = None
    try:
        assert await asyncio.wait_for(client.start(), TIMEOUT)
        relay = asyncio.create_task(client.run())
        await wait_until(lambda: client.token is not None, what="the session token")
        (conn,) = [c for c in server.connections if c.session.name == "alice"]
        conn.remove(ErrorReason.KICKED, "be nice")
        await wait_until(lambda: "Reconnected" in err.getvalue(), what="the rejoin")
        shown = out.getvalue() + err.getvalue()
        assert "be nice" in shown
        assert "Could not resume the session" in shown  # said once, before the fresh join
        assert shown.count("Could not resume the session") == 1
        assert client.online and client.name == "alice"
        await asyncio.wait_for(client.leave(), TIMEOUT * 2)
        assert await asyncio.wait_for(relay, TIMEOUT) == 0
    finally:
        if relay is not None:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
