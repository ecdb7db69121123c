"""A server that goes silent, pings on idle, a join deadline passed while typing: the session survives or says why."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable

from chat_client.client import ChatClient
from chat_client.script import ScriptFrontend, run_script
from tcp_server import ChatServer
from tcp_server.protocol import Message
from tests.client_fixtures import Stdin, config
from tests.helpers import TIMEOUT, LineClient, wait_until


async def test_a_silent_server_is_detected_by_the_idle_ping(stdin: Stdin) -> None:
    received: list[bytes] = []

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answers the join like the real server, then never says anything again."""
        line = await reader.readline()
        name = line.decode().strip().split("#", 1)[1]
        writer.write(f"100#{name}\n107#{name}\n".encode())
        while line:
            received.append(line)
            line = await reader.readline()
        writer.close()

    hole = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    try:
        port = hole.sockets[0].getsockname()[1]
        out, err = io.StringIO(), io.StringIO()
        cfg = config(port, id="alice", ping_interval=0.2, ping_timeout=0.3)
        code = await asyncio.wait_for(run_script(cfg, stdin.lines, out, err, color=False), TIMEOUT * 2)
        assert code == 1
        assert out.getvalue() == "채팅방에 입장하였습니다.\n=== 접속자 리스트 === alice\n"
        assert err.getvalue() == "서버가 0.5초 동안 응답하지 않습니다.\n서버와의 연결이 끊어졌습니다.\n"
        assert b"006#keepalive-1\n" in received
    finally:
        hole.close()
        await asyncio.wait_for(hole.wait_closed(), TIMEOUT)


async def test_idle_pings_keep_a_live_connection_quietly(server: ChatServer, stdin: Stdin,
                                                         connect: Callable[..., Awaitable[LineClient]]) -> None:
    out, err = io.StringIO(), io.StringIO()
    cfg = config(server.port, id="alice", ping_interval=0.05, ping_timeout=5.0)
    client = ChatClient(cfg, ScriptFrontend(cfg, stdin.lines, out, err, color=False))
    assert await asyncio.wait_for(client.start(), TIMEOUT)
    relay = asyncio.create_task(client.run())
    try:
        await wait_until(lambda: client.conn is not None and client.conn.pongs >= 3, what="three idle pongs")
        assert client.online
        bob = await connect()
        await bob.join("bob")
        await wait_until(lambda: "[공지]bob 사용자가 접속하였습니다." in out.getvalue(), what="the notice")
        assert "응답" not in out.getvalue() + err.getvalue()  # the client's own pongs are not shown
        assert await asyncio.wait_for(client.submit("/b still here"), TIMEOUT)
        assert await bob.recv() == Message("alice", "still here")
        await asyncio.wait_for(client.leave(), TIMEOUT * 2)
        assert await asyncio.wait_for(relay, TIMEOUT) == 0
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)


async def test_join_deadline_passed_while_typing_the_id(make_server: Callable[..., Awaitable[ChatServer]],
                                                       stdin: Stdin) -> None:
    server = await make_server(join_timeout=0.2)
    out, err = io.StringIO(), io.StringIO()
    task = asyncio.create_task(run_script(config(server.port), stdin.lines, out, err, color=False))
    try:
        await wait_until(lambda: "사용자 ID : " in err.getvalue(), what="the ID prompt")
        await wait_until(lambda: not server.connections, what="the server to drop the silent connection")
        stdin.write("alice\n")  # too late for that connection: the client connects again
        await wait_until(lambda: "채팅방에 입장하였습니다." in out.getvalue(), what="the join")
        bob = await LineClient.connect("127.0.0.1", server.port)
        try:
            await bob.join("bob")
            stdin.write("/b made it\n")
            assert await bob.recv() == Message("alice", "made it")
            stdin.close()
            assert await asyncio.wait_for(task, TIMEOUT * 2) == 0
        finally:
            await bob.close()
        assert "[오류]" not in out.getvalue() + err.getvalue()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
