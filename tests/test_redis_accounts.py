"""With --redis (and one PostgreSQL): a login on any node takes over the account's session on any other
node, live or parked, like a resume: the old connection gets 109#replaced, the room sees no leave or join."""

from __future__ import annotations

from tcp_server.protocol import Error, ErrorReason, Joined, Message, SessionToken, UserJoined, UserLeft
from tcp_server.protocol.frames import AccountList, Registered
from tests.helpers import TIMEOUT
from tests.redis_fixtures import Connect, MakeNode

PASSWORD = "Redis # account-99"


async def test_a_login_on_another_node_takes_over_live_and_parked(
    make_node: MakeNode, node_clients: Connect, postgres_url: str,
) -> None:
    a = await make_node(database=postgres_url, resume_grace=30.0)
    b = await make_node(database=postgres_url, resume_grace=30.0)
    first = await node_clients(a)
    await first.join("Alice")
    await first.send(f"019#{PASSWORD}")
    assert (await first.recv_until(Registered))[-1] == Registered("Alice")
    watcher = await node_clients(a)
    await watcher.join("watcher")
    # a login on node b while Alice is live on node a
    second = await node_clients(b)
    await second.send(f"018#alice#{PASSWORD}")
    frames = await second.recv_until(SessionToken)
    assert Joined("Alice") in frames
    replaced = (await first.recv_until(Error))[-1]
    assert isinstance(replaced, Error) and replaced.reason is ErrorReason.REPLACED
    # parked on node b (dropped without 004), then a login on node a
    second.writer.transport.abort()
    third = await node_clients(a)
    await third.send(f"018#Alice#{PASSWORD}")
    frames = await third.recv_until(lambda f: isinstance(f, (SessionToken, Error)))
    assert isinstance(frames[-1], SessionToken), frames
    await watcher.send("006#done")
    seen = await watcher.recv_until(lambda f: getattr(f, "token", None) == "done")
    assert not [f for f in seen if isinstance(f, (UserJoined, UserLeft)) and f.id == "Alice"]
    # an account's message crosses the nodes with its mark: node b's store keeps it as an account's
    listener = await node_clients(b)
    await listener.join("listener")
    # and an account's join too: node b's members see 103 then 132 for a login on node a
    fourth_name = "Bora"
    guest = await node_clients(a)
    await guest.join(fourth_name)
    await guest.send(f"019#{PASSWORD}")
    await guest.recv_until(Registered)
    frames = await listener.recv_until(AccountList((fourth_name,)))  # its registration, told live
    assert UserJoined(fourth_name) in frames
    await guest.send(f"004#{fourth_name}")
    await guest.closed()
    assert (await listener.recv_until(UserLeft))[-1] == UserLeft(fourth_name)
    back = await node_clients(a)
    await back.send(f"018#bora#{PASSWORD}")
    await back.recv_until(SessionToken)
    frames = await listener.recv_until(AccountList)
    assert frames == [UserJoined(fourth_name), AccountList((fourth_name,))]
    await third.send("002#Alice#across the nodes")
    assert (await listener.recv_until(Message))[-1] == Message("Alice", "across the nodes")
    for node in (a, b):
        gate = node.server.gate
        assert gate is not None and await gate.drain(TIMEOUT)
    store = b.server.store
    assert store is not None
    rows = await store.before("lobby", None, 10)
    assert [(m.text, m.account) for m in rows if m.text == "across the nodes"] == [("across the nodes", True)]


async def test_a_registration_on_one_node_is_told_to_the_room_on_every_node(
    make_node: MakeNode, node_clients: Connect, postgres_url: str,
) -> None:
    a = await make_node(database=postgres_url)
    b = await make_node(database=postgres_url)
    near, far = await node_clients(a), await node_clients(b)
    await near.join("near")
    await far.join("far")
    guest = await node_clients(a)
    await guest.join("Dana")
    await guest.send(f"019#{PASSWORD}")
    assert (await guest.recv_until(Registered))[-1] == Registered("Dana")
    for member in (near, far):  # once each: the origin node hears its own announcement again and skips it
        assert (await member.recv_until(AccountList))[-1] == AccountList(("Dana",))
        await member.send("006#once")
        seen = await member.recv_until(lambda f: getattr(f, "token", None) == "once")
        assert AccountList(("Dana",)) not in seen
