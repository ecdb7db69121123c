"""The database goes away and comes back: the chat keeps working live, everyone is told once each way,
and the messages of the outage are written in order (those over the bound are counted, not stored)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tcp_server import ChatServer
from tcp_server.protocol import Message, ServerNotice
from tests.conftest import server_config
from tests.helpers import LineClient
from tests.postgres_fixtures import PostgresCluster

OUTAGE_TIMEOUT = 30.0  # the writer retries with a backoff of at most 5 s


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def cut(cluster: PostgresCluster, url: str) -> None:
    """The database refuses new connections and drops the open ones: down, as far as the server can tell."""
    name = database_name(url)
    cluster.psql(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    cluster.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")


def restore(cluster: PostgresCluster, url: str) -> None:
    cluster.psql(f'ALTER DATABASE "{database_name(url)}" WITH ALLOW_CONNECTIONS true')


@pytest.fixture
async def server(postgres_url: str, postgres_cluster: PostgresCluster) -> AsyncIterator[ChatServer]:
    node = ChatServer(server_config(database=postgres_url, history=100))
    await node.start()
    try:
        yield node
    finally:
        restore(postgres_cluster, postgres_url)
        await node.close(timeout=2.0)


async def test_an_outage_keeps_the_chat_live_and_loses_nothing_within_the_bound(
    server: ChatServer, postgres_url: str, postgres_cluster: PostgresCluster,
) -> None:
    alice = await LineClient.connect("127.0.0.1", server.port)
    bob = await LineClient.connect("127.0.0.1", server.port)
    try:
        await alice.join("alice")
        await bob.join("bob")
        await alice.send("002#alice#before")
        assert (await bob.recv_until(Message))[-1] == Message("alice", "before")
        cut(postgres_cluster, postgres_url)
        for i in range(5):
            await alice.send(f"002#alice#during {i}")
        frames = await bob.recv_until(Message("alice", "during 4"), timeout=OUTAGE_TIMEOUT)
        if not any(isinstance(f, ServerNotice) for f in frames):  # the batch that failed comes first
            frames += await bob.recv_until(ServerNotice, timeout=OUTAGE_TIMEOUT)
        assert [f.message for f in frames if isinstance(f, Message)] == [f"during {i}" for i in range(5)]
        notices = [f for f in frames if isinstance(f, ServerNotice)]
        assert len(notices) == 1 and "not being saved" in notices[0].text
        await alice.send("002#alice#still during")
        frames = await bob.recv_until(Message("alice", "still during"), timeout=OUTAGE_TIMEOUT)
        assert not any(isinstance(f, ServerNotice) for f in frames)  # told once
        assert server.gate is not None and server.gate.degraded
        restore(postgres_cluster, postgres_url)
        frames = await bob.recv_until(ServerNotice, timeout=OUTAGE_TIMEOUT)
        assert "saved again" in frames[-1].text  # type: ignore[union-attr]
        assert server.store is not None
        kept = await server.store.before("lobby", None, 100)
        assert [(m.seq, m.text) for m in kept] == list(enumerate(
            ["before", *(f"during {i}" for i in range(5)), "still during"], start=1))
        assert server.stats.history_write_failures >= 1 and server.stats.history_dropped == 0
        await alice.send("002#alice#after")
        assert (await bob.recv_until(Message))[-1] == Message("alice", "after")
        assert not server.gate.degraded
    finally:
        await alice.close()
        await bob.close()


async def test_past_the_bound_the_oldest_waiting_messages_are_counted_not_stored(
    server: ChatServer, postgres_url: str, postgres_cluster: PostgresCluster,
) -> None:
    assert server.gate is not None
    server.gate.max_pending = 3
    alice = await LineClient.connect("127.0.0.1", server.port)
    bob = await LineClient.connect("127.0.0.1", server.port)
    try:
        await alice.join("alice")
        await bob.join("bob")
        cut(postgres_cluster, postgres_url)
        await alice.send("002#alice#m0")
        await bob.recv_until(ServerNotice, timeout=OUTAGE_TIMEOUT)
        for i in range(1, 8):
            await alice.send(f"002#alice#m{i}")
        await bob.recv_until(Message("alice", "m7"), timeout=OUTAGE_TIMEOUT)  # everyone still got everything
        restore(postgres_cluster, postgres_url)
        await bob.recv_until(ServerNotice, timeout=OUTAGE_TIMEOUT)
        assert server.store is not None
        kept = await server.store.before("lobby", None, 100)
        assert [(m.seq, m.text) for m in kept] == [(6, "m5"), (7, "m6"), (8, "m7")]
        assert server.stats.history_dropped == 5
    finally:
        await alice.close()
        await bob.close()
