"""chat-admin with ``--redis``: bans and mutes kept in Redis and enforced by every node; who and kick room-wide."""

from __future__ import annotations

import asyncio
import json
import pathlib

from tcp_server.__main__ import stop_node
from tcp_server.protocol import (
    Error,
    ErrorReason,
    Joined,
    Message,
    ServerNotice,
    SessionToken,
    UserJoined,
    UserLeft,
)
from tests.helpers import TIMEOUT, LineClient, wait_until
from tests.redis_fixtures import Connect, MakeNode
from tests.test_admin import admin_dir, chat_admin  # noqa: F401 - the fixture


async def test_a_ban_on_one_node_kicks_and_refuses_on_every_node_and_outlives_them(
    make_node: MakeNode, node_clients: Connect, admin_dir: pathlib.Path,  # noqa: F811 - the fixture
) -> None:
    sock_a, sock_b = str(admin_dir / "a.sock"), str(admin_dir / "b.sock")
    a, b = await make_node(admin_socket=sock_a), await make_node(admin_socket=sock_b)
    bob, mallory = await node_clients(a), await node_clients(b)
    await bob.join("bob")
    await mallory.join("mallory")
    await bob.recv_until(UserJoined("mallory"))

    code, out, err = await chat_admin(sock_a, "ban", "Mallory", "repeated", "abuse")
    assert code == 0, err
    assert await mallory.recv() == Error(ErrorReason.BANNED, "repeated abuse")  # kicked on node b
    assert await bob.recv() == UserLeft("mallory")
    for node in (a, b):
        again = await node_clients(node)
        await again.send("001#MALLORY")
        assert await again.recv() == Error(ErrorReason.BANNED, "repeated abuse")
    code, out, _ = await chat_admin(sock_b, "bans")
    assert "Mallory" in out and "1 ban(s)" in out
    code, _, err = await chat_admin(sock_b, "notice", "back", "at", "22:00")  # a notice reaches every node
    assert code == 0, err
    assert await bob.recv() == ServerNotice("back at 22:00")

    for node in (a, b):  # every node goes; Redis keeps the ban
        await asyncio.wait_for(stop_node(node.server, node.room), TIMEOUT * 2)
        node.stopped = True
    c = await make_node(admin_socket=sock_b)
    later = await node_clients(c)
    await later.send("001#mallory")
    assert await later.recv() == Error(ErrorReason.BANNED, "repeated abuse")

    await make_node(admin_socket=sock_a)
    code, _, err = await chat_admin(sock_a, "unban", "mallory")  # lifted through another node
    assert code == 0, err
    await wait_until(lambda: c.server.moderation.banned("mallory", None) is None, what="node c reloads the bans")
    code, out, _ = await chat_admin(sock_b, "bans")
    assert "Mallory" not in out
    back = await node_clients(c)
    assert (await back.join("mallory"))[0] == Joined("mallory")


async def test_who_kick_and_mute_reach_every_node(
    make_node: MakeNode, node_clients: Connect, admin_dir: pathlib.Path,  # noqa: F811 - the fixture
) -> None:
    """chat-admin on one node acts on the whole room: who lists both nodes, a kick and a mute reach a user
    on the other node (and a new node learns the mute from Redis)."""
    sock_a = str(admin_dir / "a.sock")
    a, b = await make_node(admin_socket=sock_a), await make_node()
    alice, bob, carol = await node_clients(a), await node_clients(b), await node_clients(b)
    await alice.join("alice")
    await bob.join("bob")
    await carol.join("carol")
    await alice.recv_until(UserJoined("carol"))

    code, out, err = await chat_admin(sock_a, "--json", "who")
    assert code == 0, err
    users = json.loads(out)["users"]
    assert [(u["id"], u["node"]) for u in users] == [("alice", "node0"), ("bob", "node1"), ("carol", "node1")]
    assert users[0]["kind"] == "terminal" and "kind" not in users[1]  # details where the user is
    code, out, err = await chat_admin(sock_a, "who")
    assert code == 0 and "3 user(s)" in out and "node1" in out, err

    code, out, err = await chat_admin(sock_a, "mute", "Bob", "--for", "10m")
    assert code == 0, err
    await wait_until(lambda: b.server.moderation.muted("bob"), what="node b reloads the mutes")
    await bob.send("002#bob#HELLO")
    assert (await bob.recv_until(Error))[-1] == Error(ErrorReason.MUTED, "your message was not delivered")
    late = await make_node()  # a node started later knows the mute from Redis
    assert late.server.moderation.muted("bob")
    code, _, err = await chat_admin(sock_a, "unmute", "bob")
    assert code == 0, err
    await wait_until(lambda: not b.server.moderation.muted("bob"), what="node b reloads the mutes")
    await bob.send("002#bob#sorry")
    assert (await alice.recv_until(Message("bob", "sorry")))[-1] == Message("bob", "sorry")

    code, out, err = await chat_admin(sock_a, "kick", "CAROL", "off", "topic")
    assert code == 0 and "kicked carol on node node1" in out, err
    assert (await carol.recv_until(Error))[-1] == Error(ErrorReason.KICKED, "off topic")
    await carol.closed()
    assert (await alice.recv_until(UserLeft("carol")))[-1] == UserLeft("carol")
    code, _, err = await chat_admin(sock_a, "kick", "carol")
    assert code == 1 and "not online" in err


SECRET = "a-gateway-secret-of-32-characters"


async def parked_token(client: LineClient, name: str, hello: str = "") -> str:
    await client.send(f"{hello}001#{name}")
    token = (await client.recv_until(SessionToken))[-1]
    assert isinstance(token, SessionToken)
    return token.token


async def test_a_ban_ends_a_session_parked_on_another_node_and_no_node_resumes_it(
    make_node: MakeNode, node_clients: Connect, admin_dir: pathlib.Path,  # noqa: F811 - the fixture
) -> None:
    sock_b = str(admin_dir / "b.sock")
    a = await make_node(resume_grace=60.0, gateway_secret=SECRET)
    b = await make_node(resume_grace=60.0, gateway_secret=SECRET, admin_socket=sock_b)
    bob, mallory = await node_clients(b), await node_clients(a)
    await bob.join("bob")
    token = await parked_token(mallory, "mallory", f"000#{SECRET}#203.0.113.66\n")  # a web user on node a
    await bob.recv_until(UserJoined("mallory"))
    mallory.writer.transport.abort()
    await wait_until(lambda: a.server.sessions_parked() == 1, what="mallory parked on node a")
    code, _, err = await chat_admin(sock_b, "ban", "203.0.113.0/24", "a bad network")  # through node b
    assert code == 0, err
    assert (await bob.recv_until(UserLeft("mallory")))[-1] == UserLeft("mallory")  # ended, not at its grace
    for node in (a, b):
        back = await node_clients(node)
        await back.send(f"008#{token}")
        assert await back.recv() == Error(ErrorReason.BAD_TOKEN, "unknown, used or expired token; join with 001")


async def test_every_node_checks_a_resume_against_the_bans(
    make_node: MakeNode, node_clients: Connect, admin_dir: pathlib.Path,  # noqa: F811 - the fixture
) -> None:
    sock_a = str(admin_dir / "a.sock")
    a = await make_node(resume_grace=60.0, gateway_secret=SECRET, admin_socket=sock_a)
    b = await make_node(resume_grace=60.0, gateway_secret=SECRET)
    bob, mallory = await node_clients(a), await node_clients(a)
    await bob.join("bob")
    token = await parked_token(mallory, "mallory", f"000#{SECRET}#198.51.100.7\n")
    await bob.recv_until(UserJoined("mallory"))
    mallory.writer.transport.abort()
    await wait_until(lambda: a.server.sessions_parked() == 1, what="mallory parked on node a")
    code, _, err = await chat_admin(sock_a, "ban", "203.0.113.0/24", "a bad network")  # not where mallory was
    assert code == 0, err
    await wait_until(lambda: b.server.moderation.banned(None, "203.0.113.5") is not None, what="node b reloads")
    back = await node_clients(b)
    await back.send(f"000#{SECRET}#203.0.113.5\n008#{token}")  # from the banned network, on the other node
    assert await back.recv() == Error(ErrorReason.BANNED, "a bad network")
    assert (await bob.recv_until(UserLeft("mallory")))[-1] == UserLeft("mallory")
    again = await node_clients(a)
    await again.send(f"008#{token}")
    assert await again.recv() == Error(ErrorReason.BAD_TOKEN, "unknown, used or expired token; join with 001")
