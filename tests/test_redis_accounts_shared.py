"""With --redis: registered IDs are held in Redis (``P accounts``), so a registration on one node is refused
to a guest's ``001`` on every node at once, by the claim script itself (atomic with the registrations), and
a deletion frees the ID on every node. Real redis-server, real PostgreSQL, the real chat-admin."""

from __future__ import annotations

import pathlib

from tcp_server.protocol import Error, ErrorReason, UserList
from tcp_server.protocol.frames import Registered
from tcp_server.protocol.ids import id_key
from tests.helpers import TIMEOUT, wait_until
from tests.redis_fixtures import Connect, MakeNode, Node
from tests.test_admin import admin_dir
from tests.test_admin_accounts import PASSWORD, chat_admin

__all__ = ["admin_dir"]  # the fixture, used here by name


def held(node: Node, key: str) -> bool:
    accounts = node.server.accounts
    assert accounts is not None
    return accounts.registry.registered(key)


async def refused(node_clients: Connect, node: Node, name: str) -> ErrorReason | None:
    """A guest's 001 of ``name`` on ``node``: the 109's reason, or None when it joined."""
    client = await node_clients(node)
    await client.send(f"001#{name}")
    last = (await client.recv_until(lambda f: isinstance(f, (Error, UserList))))[-1]
    return last.reason if isinstance(last, Error) else None


async def test_a_registration_on_one_node_is_refused_to_001_on_another_at_once(
    make_node: MakeNode, node_clients: Connect, postgres_url: str,
) -> None:
    a = await make_node(database=postgres_url)
    b = await make_node(database=postgres_url)
    guest = await node_clients(a)
    await guest.join("Dana")
    await guest.send(f"019#{PASSWORD}")
    assert (await guest.recv_until(Registered))[-1] == Registered("Dana")
    await guest.send("004#Dana")
    await guest.closed()
    # the release came after the registration through a's ordered writer: b's claim meets the account
    assert await refused(node_clients, b, "DANA") is ErrorReason.REGISTERED
    assert held(b, id_key("Dana"))  # and b's registry has it (the room event, or the claim's refusal)
    redis = a.room.link.client
    assert await redis.hget(a.room.link.keys.accounts, id_key("Dana")) == "Dana"


async def test_the_claim_script_refuses_a_key_the_node_missed(
    make_node: MakeNode, node_clients: Connect, postgres_url: str,
) -> None:
    """A node whose registry lacks the key (its database was down when it was registered elsewhere) is
    refused by Redis, atomically: 109#registered as a local 001 gets."""
    a = await make_node(database=postgres_url)
    b = await make_node(database=postgres_url)
    guest = await node_clients(a)
    await guest.join("Emre")
    await guest.send(f"019#{PASSWORD}")
    await guest.recv_until(Registered)
    await guest.send("004#Emre")
    await guest.closed()
    accounts = b.server.accounts
    assert accounts is not None
    await wait_until(lambda: held(b, id_key("Emre")), what="the account on node b")
    accounts.registry.learn(id_key("Emre"), None)  # as if b had never heard of it
    assert await refused(node_clients, b, "emre") is ErrorReason.REGISTERED
    assert held(b, id_key("Emre"))  # learnt from the refusal
    # and a node's load of the room brings every account (a node started while its database is down)
    accounts.registry.learn(id_key("Emre"), None)
    await b.room.link._load()
    assert held(b, id_key("Emre"))


async def test_chat_admin_add_and_delete_reach_every_node(
    make_node: MakeNode, node_clients: Connect, postgres_url: str, admin_dir: pathlib.Path,
) -> None:
    sock = str(admin_dir / "a.sock")
    a = await make_node(database=postgres_url, admin_socket=sock)
    b = await make_node(database=postgres_url)
    code, out, err = await chat_admin(sock, (PASSWORD + "\r\n").encode(), "account", "add", "Farah")
    assert code == 0, (out, err)
    assert await refused(node_clients, b, "FARAH") is ErrorReason.REGISTERED
    code, out, err = await chat_admin(sock, b"", "account", "delete", "farah")
    assert code == 0, (out, err)
    await wait_until(lambda: not held(b, id_key("Farah")), timeout=TIMEOUT, what="the deletion on node b")
    assert await refused(node_clients, b, "farah") is None
    assert await a.room.link.client.hget(a.room.link.keys.accounts, id_key("Farah")) is None
