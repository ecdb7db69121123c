"""A parked session keeps an operator's notice (``114``), with one behaviour in both stores (PROTOCOL.md,
"Positions": 114 is a counted frame, and a parked session keeps every counted frame).

Real servers, the real ``chat-admin``: in memory, and two nodes on a real redis-server (the notice sent through
the node that does not hold the parked session, resumed on it).
"""

from __future__ import annotations

import pathlib
from typing import Any

from tcp_server import ChatServer
from tcp_server.protocol import Message, ServerNotice, UserJoined
from tests.redis_fixtures import Connect, MakeNode, RedisServer
from tests.test_admin import admin_dir, chat_admin  # noqa: F401 - the fixture
from tests.test_redis_recall import join_with_token as join_on_node
from tests.test_redis_recall import parked_in_redis
from tests.test_redis_recall import resume as resume_on_node
from tests.test_server_resume import drop, join_with_token, resume


async def test_a_parked_session_keeps_a_notice_in_memory(
    make_server: Any, line_clients: Any, admin_dir: pathlib.Path,  # noqa: F811 - the fixture
) -> None:
    server: ChatServer = await make_server(resume_grace=30.0, admin_socket=str(admin_dir / "admin.sock"))
    alice, bob = await line_clients(server.port), await line_clients(server.port)
    token = await join_with_token(alice, "alice")
    await join_with_token(bob, "bob")
    assert await alice.recv() == UserJoined("bob")
    await drop(server, alice, "alice")

    code, _, err = await chat_admin(str(admin_dir / "admin.sock"), "notice", "back # at noon")
    assert code == 0, err
    assert await bob.recv() == ServerNotice("back # at noon")
    await bob.send("002#bob#after it")

    _, missed = await resume(await line_clients(server.port), token)
    assert missed == [ServerNotice("back # at noon"), Message("bob", "after it")]


async def test_a_parked_session_keeps_a_notice_in_redis(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
    admin_dir: pathlib.Path,  # noqa: F811 - the fixture
) -> None:
    a = await make_node(resume_grace=30.0)
    b = await make_node(resume_grace=30.0, admin_socket=str(admin_dir / "b.sock"))
    alice, bob = await node_clients(a), await node_clients(b)
    token = await join_on_node(alice, "alice")
    await join_on_node(bob, "bob")
    assert await alice.recv_until(UserJoined("bob"))
    alice.writer.transport.abort()
    await parked_in_redis(redis_server, "alice")

    code, _, err = await chat_admin(str(admin_dir / "b.sock"), "notice", "back # at noon")
    assert code == 0, err
    assert await bob.recv() == ServerNotice("back # at noon")
    await bob.send("002#bob#after it")

    _, missed = await resume_on_node(await node_clients(b), token)
    assert missed == [ServerNotice("back # at noon"), Message("bob", "after it")]
