"""Accounts under abuse and outage, on real sockets and real databases: 1,000 wrong passwords from one
address and from 1,000 addresses at one account, a full hashing queue, and a PostgreSQL outage (018-020
unavailable, 001 still refusing registered IDs from memory)."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator

import pytest

from tcp_server import ChatServer
from tcp_server.protocol import Error, ErrorReason, Joined, UserList
from tcp_server.protocol.frames import Registered
from tests.conftest import server_config
from tests.helpers import LineClient
from tests.postgres_fixtures import PostgresCluster
from tests.test_store_outage import cut, restore

PASSWORD = "Abuse # resistant-31"
SECRET = "gateway-secret-for-tests-0123456789"


@pytest.fixture
async def sqlite_server(tmp_path: pathlib.Path) -> AsyncIterator[ChatServer]:
    server = ChatServer(server_config(database=f"sqlite:///{tmp_path / 'chat.db'}", gateway_secret=SECRET))
    await server.start()
    yield server
    await server.close(timeout=2.0)


async def registered(server: ChatServer, name: str) -> None:
    client = await LineClient.connect("127.0.0.1", server.port)
    try:
        await client.join(name)
        await client.send(f"019#{PASSWORD}")
        assert (await client.recv_until(Registered))[-1] == Registered(name)
        await client.send(f"004#{name}")
        await client.closed()
    finally:
        await client.close()


async def answer(client: LineClient) -> Error | Joined:
    frames = await client.recv_until(lambda f: isinstance(f, (Error, Joined)))
    last = frames[-1]
    assert isinstance(last, (Error, Joined))
    return last


async def test_a_thousand_wrong_passwords_from_one_address(sqlite_server: ChatServer) -> None:
    await registered(sqlite_server, "victim")
    client = await LineClient.connect("127.0.0.1", sqlite_server.port)
    try:
        reasons: dict[str, int] = {}
        for i in range(1000):
            await client.send(f"018#victim#guess-number-{i}")
            got = await answer(client)
            assert isinstance(got, Error)
            reasons[got.reason] = reasons.get(got.reason, 0) + 1
        assert reasons == {"bad-login": 10, "too-many-attempts": 990}
        await client.send(f"018#victim#{PASSWORD}")  # the right one too, while the lockout lasts
        got = await answer(client)
        assert isinstance(got, Error) and got.reason is ErrorReason.TOO_MANY_ATTEMPTS
        assert sqlite_server.stats.lockouts["account-address"] >= 1
        assert isinstance((await client.join("bystander"))[-1], UserList)  # nothing else was lost
    finally:
        await client.close()


async def test_a_thousand_addresses_at_one_account(sqlite_server: ChatServer) -> None:
    await registered(sqlite_server, "target")
    reasons: dict[str, int] = {}

    async def one(i: int) -> None:
        client = await LineClient.connect("127.0.0.1", sqlite_server.port)
        try:
            await client.send(f"000#{SECRET}#198.18.{i // 250}.{i % 250 + 1}")
            await client.send(f"018#target#wrong-{i}")
            got = await answer(client)
            assert isinstance(got, Error)
            reasons[got.reason] = reasons.get(got.reason, 0) + 1
        finally:
            await client.close()

    for start in range(0, 1000, 50):  # 50 at a time: the machine has 2 cores
        await asyncio.gather(*(one(i) for i in range(start, start + 50)))
    assert reasons.get("bad-login", 0) <= 100 + 50  # the account's limit (a batch in flight may pass it)
    assert reasons.get("too-many-attempts", 0) >= 850
    assert sqlite_server.stats.lockouts["account"] >= 1


async def test_a_full_hashing_queue_says_login_busy_and_the_connection_stays(tmp_path: pathlib.Path) -> None:
    server = ChatServer(server_config(database=f"sqlite:///{tmp_path / 'chat.db'}", login_workers=1,
                                      login_queue=0))
    await server.start()
    clients = [await LineClient.connect("127.0.0.1", server.port) for _ in range(6)]
    try:
        for i, client in enumerate(clients):
            await client.send(f"018#someone#password-{i}")
        answers = [await answer(client) for client in clients]
        reasons = [a.reason for a in answers if isinstance(a, Error)]
        assert ErrorReason.LOGIN_BUSY in reasons and ErrorReason.BAD_LOGIN in reasons
        busy = clients[reasons.index(ErrorReason.LOGIN_BUSY)]
        assert isinstance((await busy.join("still-here"))[-1], UserList)
    finally:
        for client in clients:
            await client.close()
        await server.close(timeout=2.0)


async def test_an_outage_refuses_018_to_020_and_001_still_knows_registered_ids(
    postgres_url: str, postgres_cluster: PostgresCluster,
) -> None:
    server = ChatServer(server_config(database=postgres_url))
    await server.start()
    client = await LineClient.connect("127.0.0.1", server.port)
    try:
        await registered(server, "owner")
        cut(postgres_cluster, postgres_url)
        await client.send(f"018#owner#{PASSWORD}")
        got = await answer(client)
        assert isinstance(got, Error) and got.reason is ErrorReason.UNAVAILABLE
        await client.send("001#OWNER")
        got = await answer(client)
        assert isinstance(got, Error) and got.reason is ErrorReason.REGISTERED
        await client.join("guest")
        await client.send(f"019#{PASSWORD}")
        got = await answer(client)
        assert isinstance(got, Error) and got.reason is ErrorReason.UNAVAILABLE
        restore(postgres_cluster, postgres_url)
        other = await LineClient.connect("127.0.0.1", server.port)
        try:
            await other.send(f"018#owner#{PASSWORD}")
            assert isinstance(await answer(other), Joined)
        finally:
            await other.close()
    finally:
        restore(postgres_cluster, postgres_url)
        await client.close()
        await server.close(timeout=2.0)
