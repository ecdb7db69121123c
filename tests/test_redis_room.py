"""Several real server nodes sharing one room through a real redis-server (``chat-server --redis``)."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from tcp_server.__main__ import start_node, stop_node
from tcp_server.protocol import (
    Error,
    ErrorReason,
    IdTaken,
    Joined,
    Message,
    NoSuchUser,
    Pong,
    SessionToken,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
)
from tcp_server.room.redis import POOL_SIZE
from tests.conftest import server_config
from tests.helpers import TIMEOUT, LineClient, wait_until
from tests.redis_fixtures import NODE_TIMEOUT, Connect, MakeNode, Node, RedisServer, free_port, more_reaper_rounds


async def test_ids_are_unique_across_nodes_case_insensitively(make_node: MakeNode, node_clients: Connect) -> None:
    a, b = await make_node(), await make_node()
    alice = await node_clients(a)
    assert (await alice.join("Alice"))[-1] == UserList(("Alice",))
    other = await node_clients(b)
    await other.send("001#ALICE")
    assert await other.recv() == IdTaken()
    await alice.send("004#Alice")
    await alice.closed()
    # The release is fire-and-forget; its 104 on the room channel says it is done.
    await wait_until(lambda: len(b.server.room.roster) == 0, what="Alice's leave seen on the other node")
    again = await node_clients(b)
    assert (await again.join("alice"))[-1] == UserList(("alice",))


async def test_a_race_of_two_joins_on_two_nodes_has_one_winner(make_node: MakeNode, node_clients: Connect) -> None:
    a, b = await make_node(), await make_node()
    for round_ in range(10):
        name = f"racer{round_}"
        x, y = await node_clients(a), await node_clients(b)
        x.writer.write(f"001#{name}\n".encode())
        y.writer.write(f"001#{name.upper()}\n".encode())
        results = await asyncio.gather(x.recv(), y.recv())
        won = [r for r in results if r == Joined(name) or r == Joined(name.upper())]
        lost = [r for r in results if r == IdTaken()]
        assert len(won) == 1 and len(lost) == 1, results


async def test_a_join_storm_is_served_on_a_few_redis_connections(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
) -> None:
    """150 joins at once on one node: every one gets in (no ``109#unavailable`` because the node ran
    out of Redis connections), and the node keeps to its small pool whatever the storm."""
    node = await make_node()
    users = [await node_clients(node) for _ in range(150)]
    for i, u in enumerate(users):
        u.writer.write(f"001#storm{i}\n".encode())
    answers = await asyncio.gather(*(u.recv() for u in users))
    assert answers == [Joined(f"storm{i}") for i in range(150)]
    probe = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        clients = await asyncio.wait_for(probe.client_list(), TIMEOUT)
    finally:
        await probe.aclose()
    assert len(clients) - 1 <= POOL_SIZE  # the probe's own connection aside
    assert len(node.server.room.roster) == 150


async def test_everyone_who_joins_during_a_storm_sees_the_whole_room(
    make_node: MakeNode, node_clients: Connect,
) -> None:
    """Each user's 107 and the 103s after it add up to the whole room, however the joins interleave
    on two nodes: a node lets a joiner in at its own join's place in the room channel, not when the
    claim's answer happens to arrive (an answer may come before or after the channel's events)."""
    a, b = await make_node(), await make_node()
    users = [await node_clients(a if i % 2 else b) for i in range(120)]
    for i, u in enumerate(users):
        u.writer.write(f"001#crowd{i}\n".encode())
    for node in (a, b):
        await wait_until(lambda node=node: len(node.server.room.roster) == 120, what="every join seen")
    everyone = {f"crowd{i}" for i in range(120)}
    for i, u in enumerate(users):
        frames = await u.sync()
        assert frames[0] == Joined(f"crowd{i}"), frames[:3]
        assert isinstance(frames[1], UserList)
        seen = set(frames[1].ids) | {f.id for f in frames[2:] if isinstance(f, UserJoined)}
        assert seen == everyone, (f"crowd{i}", sorted(everyone - seen), frames[:6], len(frames))


async def test_leaving_and_joining_again_at_once_keeps_the_id(make_node: MakeNode, node_clients: Connect) -> None:
    """A release and the next claim of the same ID on one node reach Redis in that order."""
    node = await make_node()
    for round_ in range(10):
        name = f"back{round_}"
        first = await node_clients(node)
        await first.join(name)
        await first.send(f"004#{name}")
        await first.closed()
        again = await node_clients(node)
        await again.send(f"001#{name}")
        assert await again.recv() == Joined(name)
        await again.send(f"004#{name}")
        await again.closed()


async def test_the_room_across_nodes(make_node: MakeNode, node_clients: Connect) -> None:
    a, b = await make_node(), await make_node()
    alice, bob, carol = await node_clients(a), await node_clients(b), await node_clients(a)
    await alice.join("alice")
    assert (await bob.join("bob"))[-1] == UserList(("alice", "bob"))
    assert (await carol.join("carol"))[-1] == UserList(("alice", "bob", "carol"))
    assert await alice.recv() == UserJoined("bob")
    assert await alice.recv() == UserJoined("carol")
    assert await bob.recv() == UserJoined("carol")
    # 005 on either node: everyone in join order.
    await bob.send("005#bob")
    assert await bob.recv() == UserList(("alice", "bob", "carol"))
    await alice.send("005#alice")
    assert await alice.recv() == UserList(("alice", "bob", "carol"))
    # A message reaches both nodes, not its sender.
    await bob.send("002#bob#안녕 everyone")
    assert await alice.recv() == Message("bob", "안녕 everyone")
    assert await carol.recv() == Message("bob", "안녕 everyone")
    assert await bob.sync() == []
    # Whispers cross nodes; a missing user is 108.
    await carol.send("003#carol#BOB#psst")
    assert await bob.recv() == WhisperMessage("carol", "psst")
    await bob.send("003#bob#nobody#hello?")
    assert await bob.recv() == NoSuchUser("nobody")
    assert await alice.sync() == []
    # A leave on one node is a 104 on the other.
    await carol.send("004#carol")
    assert await bob.recv() == UserLeft("carol")
    assert await alice.recv() == UserLeft("carol")


async def test_each_senders_order_is_kept_for_every_receiver(make_node: MakeNode, node_clients: Connect) -> None:
    a, b = await make_node(), await make_node()
    s1, s2, r1, r2 = await node_clients(a), await node_clients(b), await node_clients(a), await node_clients(b)
    for c, name in ((s1, "s1"), (s2, "s2"), (r1, "r1"), (r2, "r2")):
        await c.join(name)
    n = 200
    s1.writer.write("".join(f"002#s1#{i}\n" for i in range(n)).encode())
    s2.writer.write("".join(f"002#s2#{i}\n" for i in range(n)).encode())
    for receiver in (r1, r2):
        got: dict[str, list[int]] = {"s1": [], "s2": []}
        while len(got["s1"]) < n or len(got["s2"]) < n:
            frame = await receiver.recv()
            if isinstance(frame, Message):
                got[frame.sender].append(int(frame.message))
        assert got == {"s1": list(range(n)), "s2": list(range(n))}


async def test_a_node_that_dies_loses_its_users_once(make_node: MakeNode, node_clients: Connect) -> None:
    a, b, c = await make_node(), await make_node(), await make_node()
    watchers = [await node_clients(a), await node_clients(b)]
    await watchers[0].join("wa")
    await watchers[1].join("wb")
    doomed = [await node_clients(c) for _ in range(3)]
    for i, d in enumerate(doomed):
        await d.join(f"ghost{i}")
    for w in watchers:
        await w.recv_until(UserJoined("ghost2"))
    await c.kill()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for w in watchers:
        frames: list[object] = []
        while len([f for f in frames if isinstance(f, UserLeft)]) < 3:
            frames.append(await w.recv(timeout=NODE_TIMEOUT * 2))
        assert sorted(f.id for f in frames if isinstance(f, UserLeft)) == ["ghost0", "ghost1", "ghost2"]
    assert loop.time() - start < NODE_TIMEOUT * 2
    # Exactly once: after two more dead-node checks on each survivor, nothing else arrived.
    await more_reaper_rounds(a, b)
    for w in watchers:
        assert await w.sync() == []
        await w.send(f"005#{'wa' if w is watchers[0] else 'wb'}")
        assert await w.recv() == UserList(("wa", "wb"))
    again = await node_clients(a)
    assert (await again.join("ghost1"))[-1] == UserList(("wa", "wb", "ghost1"))


async def test_redis_down_refuses_joins_and_recovers(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
) -> None:
    a, b = await make_node(), await make_node()
    alice = await node_clients(a)
    await alice.join("alice")
    redis_server.stop()
    await wait_until(lambda: not a.room.link.subscribed and not b.room.link.subscribed, what="the outage noticed")
    degraded = Error(ErrorReason.UNAVAILABLE, "the room is degraded: messages are not delivered until it recovers")
    assert await alice.recv() == degraded
    late = await node_clients(b)
    await late.send("001#bob")
    assert await late.recv() == Error(ErrorReason.UNAVAILABLE, "the room is unavailable; try again later")
    assert await late.closed() == b""
    # Nothing crashed: the connected user is still served.
    assert await alice.sync("still") == []  # told once, and still served
    redis_server.start()
    await wait_until(lambda: a.room.link.subscribed and b.room.link.subscribed, timeout=10.0, what="reconnection")
    # Alice was registered again (Redis lost everything): her ID is still hers.
    bob = await node_clients(b)
    assert (await bob.join("bob"))[-1] == UserList(("alice", "bob"))
    thief = await node_clients(b)
    await thief.send("001#ALICE")
    assert await thief.recv() == IdTaken()
    await bob.send("002#bob#back")
    assert await alice.recv_until(Message("bob", "back"))


async def test_one_message_costs_one_redis_command(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
) -> None:
    """O(1) per message, not per user: 50 users on two nodes, 20 messages, at most 20 PUBLISHes
    (with history and resumable sessions on: parked sessions cost nothing per message)."""
    a, b = (await make_node(history=10, resume_grace=30), await make_node(history=10, resume_grace=30))
    users = []
    for i in range(50):
        u = await node_clients(a if i % 2 else b)
        await u.join(f"u{i}")
        users.append(u)
    for u in users:
        await u.sync()
    probe = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        before = await asyncio.wait_for(probe.info("commandstats"), TIMEOUT)
        for i in range(20):
            await users[0].send(f"002#u0#m{i}")
        await users[1].recv_until(Message("u0", "m19"))
        await users[2].recv_until(Message("u0", "m19"))
        after = await asyncio.wait_for(probe.info("commandstats"), TIMEOUT)
    finally:
        await probe.aclose()

    def calls(stats: dict[str, dict[str, int]], cmd: str) -> int:
        return int(stats.get(f"cmdstat_{cmd}", {}).get("calls", 0))

    assert 1 <= calls(after, "publish") - calls(before, "publish") <= 20  # messages of one turn share one
    # Each message is appended to the room log and the history stream (one XADD each, in the publish script).
    assert calls(after, "xadd") - calls(before, "xadd") == 2 * 20
    # Positions (issue 26): the room's count moves once per message (INCR), and only the sender's own
    # session is touched (EXISTS + HINCRBY): nothing per member.
    assert calls(after, "incr") - calls(before, "incr") == 20
    assert calls(after, "hincrby") - calls(before, "hincrby") == 20
    # Nothing else but the nodes' timed heartbeat, dead-node and grace scripts (EVALSHA, and the commands
    # they run), and our own INFO.
    others = {c for c in after if calls(after, c.removeprefix("cmdstat_")) != calls(before, c.removeprefix("cmdstat_"))}
    assert others <= {"cmdstat_publish", "cmdstat_evalsha", "cmdstat_info", "cmdstat_xadd", "cmdstat_get",
                      "cmdstat_zrangebyscore", "cmdstat_smembers", "cmdstat_exists", "cmdstat_sismember",
                      "cmdstat_set", "cmdstat_sadd", "cmdstat_hset", "cmdstat_time", "cmdstat_incr",
                      "cmdstat_hincrby"}, others


class NodeProcess:
    """A chat-server node in a process of its own, to be killed or paused like a real one."""

    def __init__(self, redis_url: str, node_id: str, log_path: pathlib.Path, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tcp_server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--redis", redis_url, "--node-id", node_id, "--node-timeout", str(NODE_TIMEOUT),
                 "--flood-rate", "0", "--max-per-address", "0", "--max-new-per-minute", "0", "--uvloop", "false",
                 "--lang", "en", "--history", "0", "--resume-grace", "0", *extra],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )

    async def ready(self) -> None:
        """Wait until it accepts a join (it follows the room by then)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT * 2
        while True:
            assert self.proc.poll() is None, f"the node exited: {self.log_path.read_text()}"
            try:
                probe = await LineClient.connect("127.0.0.1", self.port)
            except (OSError, TimeoutError):
                probe = None
            if probe is not None:
                await probe.send("006#up")
                ok = await probe.recv() == Pong("up")
                await probe.close()
                if ok:
                    return
            assert loop.time() < deadline, "the node did not come up"
            await asyncio.sleep(0.1)  # polling a process that has no event to wait for

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)


@pytest.fixture
async def node_process(redis_server: RedisServer) -> AsyncIterator[Callable[..., Awaitable[NodeProcess]]]:
    procs: list[NodeProcess] = []

    async def start(node_id: str, *extra: str) -> NodeProcess:
        proc = NodeProcess(redis_server.url, node_id, redis_server.workdir / f"{node_id}.log", extra)
        procs.append(proc)
        await proc.ready()
        return proc

    yield start
    for proc in procs:
        proc.stop()


async def test_a_node_killed_with_sigkill_loses_its_users_once(
    make_node: MakeNode, node_clients: Connect, node_process: Callable[[str], Awaitable[NodeProcess]],
) -> None:
    a, b = await make_node(), await make_node()
    wa, wb = await node_clients(a), await node_clients(b)
    await wa.join("wa")
    await wb.join("wb")
    victim = await node_process("victim")
    users = [await LineClient.connect("127.0.0.1", victim.port) for _ in range(2)]
    try:
        for i, u in enumerate(users):
            await u.join(f"k{i}")
        for w in (wa, wb):
            await w.recv_until(UserJoined("k1"))
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=TIMEOUT)
        for w in (wa, wb):
            got = [await w.recv(timeout=NODE_TIMEOUT * 2), await w.recv(timeout=NODE_TIMEOUT * 2)]
            assert sorted(got, key=str) == [UserLeft("k0"), UserLeft("k1")]
        await more_reaper_rounds(a, b)  # both survivors checked again: still nothing new
        assert await wa.sync() == [] and await wb.sync() == []
    finally:
        for u in users:
            await u.close()


async def test_a_paused_node_does_not_resurrect_its_users(
    make_node: MakeNode, node_clients: Connect, node_process: Callable[[str], Awaitable[NodeProcess]],
) -> None:
    a = await make_node()
    watcher = await node_clients(a)
    await watcher.join("w")
    sleeper = await node_process("sleeper")
    stale = await LineClient.connect("127.0.0.1", sleeper.port)
    try:
        await stale.join("zed")
        await watcher.recv_until(UserJoined("zed"))
        os.kill(sleeper.proc.pid, signal.SIGSTOP)
        assert await watcher.recv(timeout=NODE_TIMEOUT * 2) == UserLeft("zed")
        taker = await node_clients(a)
        assert (await taker.join("ZED"))[-1] == UserList(("w", "ZED"))
        os.kill(sleeper.proc.pid, signal.SIGCONT)
        frames = await stale.recv_until(Error, timeout=NODE_TIMEOUT * 2)
        assert frames[-1] == Error(ErrorReason.UNAVAILABLE, "this server lost your place in the room; please reconnect")
        assert await stale.closed() == b""
        # The room still has the new ZED, and no ghost came back.
        await watcher.send("005#w")
        assert (await watcher.recv_until(UserList))[-1] == UserList(("w", "ZED"))
        assert await watcher.sync() == []
    finally:
        await stale.close()


async def test_a_node_shut_down_tells_its_users_and_the_others_see_them_leave(
    make_node: MakeNode, node_clients: Connect,
) -> None:
    a, b = await make_node(), await make_node()
    stay, go = await node_clients(a), await node_clients(b)
    await stay.join("stay")
    await go.join("go")
    await stay.recv_until(UserJoined("go"))
    await asyncio.wait_for(stop_node(b.server, b.room), TIMEOUT * 2)  # what SIGTERM runs
    b.stopped = True
    assert (await go.recv_until(Error))[-1].reason is ErrorReason.SHUTDOWN  # type: ignore[union-attr]
    assert await stay.recv() == UserLeft("go")  # at once, not after the node timeout
    assert await stay.sync() == []


async def test_legacy_and_line_users_mix_across_nodes(make_node: MakeNode, node_clients: Connect) -> None:
    a, b = await make_node(), await make_node()
    alice = await node_clients(a)
    await alice.join("alice")
    assert b.server.legacy_port is not None
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", b.server.legacy_port), TIMEOUT)
    try:
        writer.write(b"001#lee")
        await asyncio.wait_for(writer.drain(), TIMEOUT)
        assert await alice.recv() == UserJoined("lee")
        await alice.send("002#alice#반가워요")
        seen = b""
        while "alice : 반가워요".encode() not in seen:
            chunk = await asyncio.wait_for(reader.read(4096), TIMEOUT)
            assert chunk, seen
            seen += chunk
    finally:
        writer.close()
    assert await alice.recv() == UserLeft("lee")


async def test_after_a_redis_restart_an_id_taken_meanwhile_closes_the_later_holder(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
    node_process: Callable[[str], Awaitable[NodeProcess]],
) -> None:
    b = await make_node()
    sleeper = await node_process("sleeper")
    alice = await LineClient.connect("127.0.0.1", sleeper.port)
    try:
        await alice.join("alice")
        os.kill(sleeper.proc.pid, signal.SIGSTOP)  # it misses the restart and reconnects late
        redis_server.stop()
        await wait_until(lambda: not b.room.link.subscribed, what="node b noticed the outage")
        redis_server.start()
        await wait_until(lambda: b.room.link.subscribed, timeout=10.0, what="node b back on Redis")
        other = await node_clients(b)
        assert (await other.join("ALICE"))[-1] == UserList(("ALICE",))  # Redis forgot her: the ID was free
        os.kill(sleeper.proc.pid, signal.SIGCONT)
        lost = Error(ErrorReason.UNAVAILABLE, "this server lost your place in the room; please reconnect")
        frames = await alice.recv_until(lost, timeout=10.0)
        degraded = Error(ErrorReason.UNAVAILABLE, "the room is degraded: messages are not delivered until it recovers")
        # told once that the room was cut off, then closed, no ghost (its join's 112 may come first)
        assert [f for f in frames if not isinstance(f, SessionToken)] == [degraded, lost]
        assert await alice.closed() == b""
        await other.send("005#ALICE")
        assert (await other.recv_until(UserList))[-1] == UserList(("ALICE",))
    finally:
        await alice.close()


async def test_a_node_starts_without_redis_and_refuses_joins_clearly(node_clients: Connect) -> None:
    cfg = server_config(redis=f"redis://127.0.0.1:{free_port()}/0", node_id="alone", node_timeout=NODE_TIMEOUT)
    server, room = await asyncio.wait_for(start_node(cfg), TIMEOUT * 2)
    assert room is not None
    node = Node(server, room)
    try:
        assert not room.link.subscribed
        user = await node_clients(node)
        await user.send("001#alice")
        assert await user.recv(timeout=TIMEOUT * 2) == Error(
            ErrorReason.UNAVAILABLE, "the room is unavailable; try again later")
        assert await user.closed() == b""
        other = await node_clients(node)
        assert await other.sync("alive") == []  # the node still serves
    finally:
        await asyncio.wait_for(stop_node(server, room), TIMEOUT * 2)


async def test_a_node_restarted_under_its_old_id_clears_its_ghosts(make_node: MakeNode, node_clients: Connect) -> None:
    """systemd restarts a crashed chat-server@9000 as the same node ID well within the node timeout."""
    a = await make_node(node_timeout=60.0)  # a dead node would not be noticed in this test's time
    b = await make_node(node_timeout=60.0)
    watcher = await node_clients(a)
    await watcher.join("w")
    ghost = await node_clients(b)
    await ghost.join("ghost")
    await watcher.recv_until(UserJoined("ghost"))
    await b.kill()
    node_id = b.room.link.node
    again = await make_node(node_timeout=60.0, node_id=node_id)
    assert await watcher.recv() == UserLeft("ghost")
    user = await node_clients(again)
    assert (await user.join("ghost"))[-1] == UserList(("w", "ghost"))


async def test_after_a_lost_connection_a_node_drops_what_it_no_longer_holds(
    make_node: MakeNode, node_clients: Connect, redis_server: RedisServer,
) -> None:
    """A release lost in a blip (or a claim Redis took after the node gave up on it) is undone on reconnection."""
    a = await make_node()
    alice = await node_clients(a)
    await alice.join("alice")
    node = a.room.link.node
    probe = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        # What Redis holds for the node after a release that never arrived: "ghost", no longer on the node.
        await asyncio.wait_for(probe.hset("hanchat:names", "ghost", "ghost"), TIMEOUT)
        await asyncio.wait_for(probe.hset("hanchat:owner", "ghost", node), TIMEOUT)
        await asyncio.wait_for(probe.zadd("hanchat:order", {"ghost": 1_000_000}), TIMEOUT)
        await asyncio.wait_for(probe.sadd(f"hanchat:users:{node}", "ghost"), TIMEOUT)
        await asyncio.wait_for(probe.client_kill_filter(_type="pubsub"), TIMEOUT)  # the blip
        degraded = Error(ErrorReason.UNAVAILABLE, "the room is degraded: messages are not delivered until it recovers")
        assert await alice.recv() == degraded
        await wait_until(lambda: a.room.link.subscribed, timeout=10.0, what="reconnection")
        assert await asyncio.wait_for(probe.zrange("hanchat:order", 0, -1), TIMEOUT) == ["alice"]
    finally:
        await probe.aclose()
    again = await node_clients(a)
    assert (await again.join("ghost"))[-1] == UserList(("alice", "ghost"))
    assert await alice.recv() == UserJoined("ghost")  # no churn of alice herself meanwhile
