"""chat-admin with ``--redis``: bans and mutes kept in Redis and enforced by every node; who and kick room-wide."""

from __future__ import annotations

import asyncio
import json
import pathlib

from tcp_server.__main__ import stop_node
from tcp_server.protocol import Error, ErrorReason, Joined, Message, ServerNotice, UserJoined, UserLeft
from tests.helpers import TIMEOUT, wait_until
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
