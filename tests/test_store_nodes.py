"""Several nodes sharing a room (Redis) and a PostgreSQL store: each message stored once, in the room's
order, by whichever node delivers it first; a node that dies loses nothing any client received."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys

from tcp_server.protocol import History, Message, Page, UserList
from tests.helpers import TIMEOUT, LineClient
from tests.redis_fixtures import Connect, MakeNode, RedisServer, free_port


async def test_two_nodes_store_each_message_once_in_the_rooms_order(
    make_node: MakeNode, node_clients: Connect, postgres_url: str,
) -> None:
    a = await make_node(database=postgres_url, history=10)
    b = await make_node(database=postgres_url, history=10)
    alice = await node_clients(a)
    bob = await node_clients(b)
    await alice.join("alice")
    await bob.join("bob")
    await alice.recv_until(Page)
    await bob.recv_until(Page)
    for i in range(20):
        await (alice if i % 2 else bob).send(f"002#{'alice' if i % 2 else 'bob'}#m{i}")
    await alice.recv_until(Message("bob", "m18"))
    await bob.recv_until(Message("alice", "m19"))
    for node in (a, b):
        assert node.server.gate is not None and await node.server.gate.drain(TIMEOUT)
    assert a.server.store is not None
    kept = await a.server.store.before("lobby", None, 100)
    assert sorted(m.text for m in kept) == sorted(f"m{i}" for i in range(20))  # each once
    seqs = [m.seq for m in kept]
    assert seqs == sorted(set(seqs))
    carol = await node_clients(a)  # a newcomer on either node gets the same history, in the stored order
    dave = await node_clients(b)
    for client, name in ((carol, "carol"), (dave, "dave")):
        frames = await client.join(name)
        assert isinstance(frames[-1], UserList)
        frames = await client.recv_until(Page)
        assert [f.message for f in frames if isinstance(f, History)] == [m.text for m in kept][-10:]


def spawn(argv: list[str], log_path: pathlib.Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


async def test_a_node_killed_mid_flood_loses_nothing_a_client_received(
    redis_server: RedisServer, postgres_url: str, tmp_path: pathlib.Path,
) -> None:
    ports = [free_port(), free_port()]

    def argv(port: int, node: str) -> list[str]:
        return [sys.executable, "-m", "tcp_server", "--host", "127.0.0.1", "--port", str(port),
                "--redis", redis_server.url, "--node-id", node, "--node-timeout", "2", "--database", postgres_url,
                "--history", "0", "--flood-rate", "0", "--resume-grace", "0", "--no-uvloop",
                "--max-per-address", "0", "--max-new-per-minute", "0"]

    async def up(port: int, proc: subprocess.Popen[bytes]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT * 4
        while True:
            assert proc.poll() is None, (tmp_path / f"{port}.log").read_text()
            try:
                probe = await LineClient.connect("127.0.0.1", port)
            except OSError:
                assert loop.time() < deadline, "the node did not start"
                await asyncio.sleep(0.1)  # polling a process that has no event to wait for
                continue
            await probe.close()
            return

    procs = [spawn(argv(port, f"n{i}"), tmp_path / f"{port}.log") for i, port in enumerate(ports)]
    try:
        for port, proc in zip(ports, procs, strict=True):
            await up(port, proc)
        alice = await LineClient.connect("127.0.0.1", ports[0])
        bob = await LineClient.connect("127.0.0.1", ports[1])
        await alice.join("alice")
        await bob.join("bob")
        received: list[str] = []
        sent = 0
        while len(received) < 500:  # a flood with up to 200 messages in flight when the kill comes
            await alice.send("".join(f"002#alice#{i}\n" for i in range(sent, sent + 50)))
            sent += 50
            while len(received) < sent - 200:
                frame = await bob.recv(timeout=TIMEOUT * 2)
                if isinstance(frame, Message):
                    received.append(frame.message)
        await alice.send("".join(f"002#alice#{i}\n" for i in range(sent, sent + 200)))
        os.kill(procs[0].pid, signal.SIGKILL)  # alice's node
        procs[0].wait(timeout=TIMEOUT)
        try:
            while True:
                frame = await bob.recv(timeout=1.0)  # what bob's node still had for it
                if isinstance(frame, Message):
                    received.append(frame.message)
        except TimeoutError:
            pass
        await alice.close()
        await bob.close()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=TIMEOUT)
    from tcp_server.store import parse_database
    from tcp_server.store.db import MessageStore

    store = await MessageStore.open(parse_database(postgres_url))
    try:
        kept = [m.text for m in await store.before("lobby", None, 100_000)]
    finally:
        await store.close()
    assert len(received) >= 500
    assert set(received) <= set(kept)  # every message bob's node delivered was committed first
    assert kept[:len(received)] == received  # and in the room's order


async def test_a_message_during_a_join_on_another_node_is_history_or_live_never_both(
    make_node: MakeNode, node_clients: Connect, postgres_url: str,
) -> None:
    a = await make_node(database=postgres_url, history=1000)
    b = await make_node(database=postgres_url, history=1000)
    bob = await node_clients(a)
    await bob.join("bob")
    count = 300
    halfway = asyncio.Event()

    async def talk() -> None:
        for i in range(count):
            await bob.send(f"002#bob#{i}")
            if i == count // 2:
                halfway.set()
            await asyncio.sleep(0)  # let carol's join land somewhere in the stream

    await bob.send("002#bob#-1")
    talker = asyncio.create_task(talk())
    await asyncio.wait_for(halfway.wait(), TIMEOUT)
    carol = await node_clients(b)
    await carol.send("001#carol")
    await asyncio.wait_for(talker, TIMEOUT)
    await bob.send("002#bob#end")
    frames = await carol.recv_until(Message("bob", "end"), timeout=TIMEOUT * 2)
    history = [int(f.message) for f in frames if isinstance(f, History)]
    live = [int(f.message) for f in frames if isinstance(f, Message) and f.message != "end"]
    assert history[0] == -1
    assert history + live == list(range(-1, count))  # each once, in order
    assert any(isinstance(f, Page) for f in frames)


async def test_history_delete_reaches_every_nodes_recent_window(
    make_node: MakeNode, node_clients: Connect, postgres_url: str,
) -> None:
    from tcp_server.protocol import id_key
    from tests.helpers import wait_until

    a = await make_node(database=postgres_url, history=10)
    b = await make_node(database=postgres_url, history=10)
    mallory = await node_clients(a)
    await mallory.join("mallory")
    await mallory.send("002#mallory#something to erase")
    await mallory.send("002#mallory#and this")
    assert b.server.history is not None
    history_b = b.server.history
    await wait_until(lambda: len(history_b.recent()) == 2, what="node b's window")
    assert await a.server.delete_history(id_key("mallory"), None) == 2  # by key, as chat-admin asks
    await wait_until(lambda: history_b.recent() == [], what="node b forgetting mallory")
    carol = await node_clients(b)
    await carol.join("carol")
    frames = await carol.recv_until(Page)
    assert not any(isinstance(f, History) for f in frames)
