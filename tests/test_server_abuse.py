"""Abuse resistance on real sockets: floods, per-address limits, join deadline, churn."""

from __future__ import annotations

import asyncio
import os
import random

from tcp_server import ChatServer
from tcp_server.protocol import Error, ErrorReason, Joined, Message, UserLeft
from tests.helpers import LineClient, wait_until


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


OVER_LIMIT = Error(ErrorReason.ADDRESS_LIMIT, "too many connections from your address")


async def test_flooder_gets_flood_and_cannot_slow_a_second_client(make_server) -> None:
    server: ChatServer = await make_server(flood_rate=10, flood_burst=20, flood_kick=10_000)
    flooder, sender, reader = [await LineClient.connect("127.0.0.1", server.port) for _ in range(3)]
    try:
        await flooder.join("flooder")
        await sender.join("sender")
        await reader.join("reader")
        await reader.sync()
        started = asyncio.get_running_loop().time()
        await flooder.send(b"".join(f"002#flooder#f{i}\n".encode() for i in range(200)))
        for i in range(10):  # the normal user goes on, unaffected
            await sender.send(f"002#sender#s{i}")
        got_from_sender: list[str] = []
        got_from_flooder: list[str] = []
        while len(got_from_sender) < 10:
            frame = await reader.recv()
            assert isinstance(frame, Message)
            (got_from_sender if frame.sender == "sender" else got_from_flooder).append(frame.message)
        assert got_from_sender == [f"s{i}" for i in range(10)]  # complete and in order
        refused = [f for f in await flooder.sync() if isinstance(f, Error) and f.reason is ErrorReason.FLOOD]
        got_from_flooder += [f.message for f in await reader.sync() if isinstance(f, Message)]
        assert len(got_from_flooder) + len(refused) == 200
        # the burst (less the token its 001 spent), plus what the rate refilled meanwhile (a slow machine
        # takes longer, so the bound follows the time this took)
        refilled = 10 * (asyncio.get_running_loop().time() - started)
        assert 19 <= len(got_from_flooder) <= 20 + refilled + 1
        assert got_from_flooder == [f"f{i}" for i in range(len(got_from_flooder))]
        assert "flooder" in server.room.roster.names()  # not dropped: the connection stays
    finally:
        for c in (flooder, sender, reader):
            await c.close()


async def test_a_gateways_000_costs_its_user_no_token(make_server) -> None:
    """The gateway's ``000`` is a control frame: a user behind it gets the same burst as a direct one."""
    server: ChatServer = await make_server(flood_rate=0.001, flood_burst=5, gateway_secret="s3cret")
    user, reader = [await LineClient.connect("127.0.0.1", server.port) for _ in range(2)]
    try:
        await reader.join("reader")
        await user.send("000#s3cret#192.0.2.7")
        await user.join("viagw")  # token 1
        await user.send(b"002#viagw#one\n002#viagw#two\n002#viagw#three\n")  # tokens 2-4
        (conn,) = [c for c in server.connections if c.session.name == "viagw"]
        assert conn.admission.message is not None
        bucket = conn.admission.message
        await wait_until(lambda: bucket.tokens < 1.5, 5.0, "three messages handled")
        assert bucket.tokens >= 0.99  # one left of five: 000 took none (else reads would now be paused)
        assert not [f for f in await user.sync() if isinstance(f, Error)]
        messages = [f for f in await reader.sync() if isinstance(f, Message)]
        assert messages == [Message("viagw", "one"), Message("viagw", "two"), Message("viagw", "three")]
    finally:
        for c in (user, reader):
            await c.close()


async def test_a_persistent_flooder_is_dropped(make_server) -> None:
    server: ChatServer = await make_server(flood_rate=5, flood_burst=5, flood_kick=30)
    flooder = await LineClient.connect("127.0.0.1", server.port)
    other = await LineClient.connect("127.0.0.1", server.port)
    try:
        await flooder.join("flooder")
        await other.join("other")
        flooder.writer.write(b"".join(b"002#flooder#x\n" for _ in range(1000)))
        rest = (await flooder.closed()).decode()
        assert rest.endswith("109#flood#disconnected for flooding\n")
        assert await other.recv_until(UserLeft("flooder"))
        assert "flooder" not in server.room.roster.names()
    finally:
        await flooder.close()
        await other.close()


async def test_reads_from_a_flooder_are_paced(make_server) -> None:
    server: ChatServer = await make_server(flood_rate=10, flood_burst=10, flood_kick=10_000)
    flooder = await LineClient.connect("127.0.0.1", server.port)
    try:
        await flooder.join("flooder")
        flooder.writer.write(b"".join(b"005#flooder\n" for _ in range(100)))
        (conn,) = [c for c in server.connections if c.session.name == "flooder"]
        await wait_until(lambda: conn.paused, what="the server to pause reading from the flooder")
    finally:
        await flooder.close()


async def test_the_21st_connection_from_one_address_is_busy(make_server) -> None:
    server: ChatServer = await make_server(max_per_address=20)
    clients = [await LineClient.connect("127.0.0.1", server.port) for _ in range(25)]
    try:
        results = []
        for i, c in enumerate(clients):
            await c.send(f"001#u{i}")
            results.append(await c.recv())
        assert results[:20] == [Joined(f"u{i}") for i in range(20)]
        assert all(r == OVER_LIMIT for r in results[20:])
        for c in clients[20:]:
            await c.closed()
        await clients[0].send("004#u0")  # one leaves: there is room for one more
        await clients[0].closed()
        again = await LineClient.connect("127.0.0.1", server.port)
        clients.append(again)
        assert (await again.join("again"))[0] == Joined("again")
    finally:
        for c in clients:
            await c.close()


async def test_new_connections_per_minute_are_limited(make_server) -> None:
    server: ChatServer = await make_server(max_new_per_minute=5)
    clients = []
    try:
        for i in range(5):
            c = await LineClient.connect("127.0.0.1", server.port)
            clients.append(c)
            await c.join(f"u{i}")
            await c.send(f"004#u{i}")
            await c.closed()
        sixth = await LineClient.connect("127.0.0.1", server.port)
        clients.append(sixth)
        await sixth.send("001#six")
        assert await sixth.recv() == OVER_LIMIT
    finally:
        for c in clients:
            await c.close()


async def test_gateway_users_are_limited_by_their_real_address_not_the_gateways(make_server) -> None:
    server: ChatServer = await make_server(max_per_address=20, gateway_secret="s3cret")

    async def gateway_user(i: int, address: str) -> tuple[LineClient, object]:
        c = await LineClient.connect("127.0.0.1", server.port)
        await c.send(f"000#s3cret#{address}\n001#g{i}")
        return c, await c.recv()

    # 25 users from 25 addresses, all at once, through one gateway address: all get in.
    many = await asyncio.gather(*(gateway_user(i, f"198.51.100.{i}") for i in range(25)))
    try:
        assert sorted(str(f) for _, f in many) == sorted(str(Joined(f"g{i}")) for i in range(25))
        # 25 from one real address: the 21st and later are refused.
        same = await asyncio.gather(*(gateway_user(100 + i, "203.0.113.5") for i in range(25)))
        many += same
        joined = [f for _, f in same if isinstance(f, Joined)]
        busy = [f for _, f in same if f == OVER_LIMIT]
        assert (len(joined), len(busy)) == (20, 5)
        assert server.address_limits.open_count("127.0.0.1") == 0  # the gateway itself holds nothing
    finally:
        for c, _ in many:
            await c.close()


async def test_over_limit_connection_that_is_not_a_gateway_is_refused_within_the_grace(make_server) -> None:
    server: ChatServer = await make_server(max_per_address=1)
    first = await LineClient.connect("127.0.0.1", server.port)
    second = await LineClient.connect("127.0.0.1", server.port)
    try:
        await first.join("first")
        # second says nothing at all: it is refused when the gateway grace runs out
        assert await second.recv(timeout=10) == OVER_LIMIT
        await second.closed()
    finally:
        await first.close()
        await second.close()


async def test_join_deadline_closes_idle_connections(make_server) -> None:
    server: ChatServer = await make_server(join_timeout=0.3)
    idle = await LineClient.connect("127.0.0.1", server.port)
    joined = await LineClient.connect("127.0.0.1", server.port)
    try:
        await joined.join("joined")
        assert await idle.recv() == Error(ErrorReason.NOT_JOINED, "join deadline passed")
        await idle.closed()
        await joined.sync()  # the joined one stays
        assert server.room.roster.names() == ["joined"]
    finally:
        await idle.close()
        await joined.close()


async def test_churn_leaves_nothing_behind(make_server) -> None:
    server: ChatServer = await make_server(join_timeout=30)
    watcher = await LineClient.connect("127.0.0.1", server.port)
    await watcher.join("watcher")
    rng = random.Random(7)
    sem = asyncio.Semaphore(50)

    async def cycle(i: int) -> None:
        async with sem:
            c = await LineClient.connect("127.0.0.1", server.port)
            kind = i % 3
            if kind == 0:  # joins, then quits with 004
                await c.join(f"q{i}")
                await c.send(f"004#q{i}")
                await c.closed()
            elif kind == 1:  # joins, talks, then vanishes abruptly
                await c.join(f"a{i}")
                await c.send(f"002#a{i}#bye{rng.random()}")
                c.writer.transport.abort()
            await c.close()  # kind 2 never joins at all

    async def run(start: int, count: int) -> None:
        await asyncio.gather(*(cycle(i) for i in range(start, start + count)))

    async def settle() -> None:
        await wait_until(lambda: len(server.connections) == 1 and len(server.room.roster.names()) == 1, timeout=10,
                         what="the server to notice the last closes")
        await watcher.sync()

    await run(0, 300)  # warm-up: caches, allocator pools
    await settle()
    fds, rss = open_fds(), rss_kib()
    await run(300, 2000)
    await settle()
    assert server.room.roster.names() == ["watcher"]
    assert len(server.connections) == 1
    assert open_fds() == fds
    assert rss_kib() - rss < 8 * 1024, "memory grew by more than 8 MiB over 2,000 cycles"
    await watcher.close()
