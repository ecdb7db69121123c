"""The server's side of the security review (issue 15): every frame costs, limits hold per real address."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tcp_server import ChatServer
from tcp_server.protocol import Error, ErrorReason, Joined, Message, UserList
from tests.helpers import TIMEOUT, LineClient

SECRET = "a-gateway-secret-of-32-characters"


async def connect_from(server: ChatServer, local: str) -> LineClient:
    """A client whose socket is bound to ``local`` (any 127.0.0.0/8 address is this machine)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", server.port, local_addr=(local, 0)), TIMEOUT)
    return LineClient(reader, writer)


async def test_an_unjoined_ping_flood_is_charged_paced_and_dropped(make_server) -> None:
    """High finding 1: pings were free; one connection could take the whole loop."""
    server: ChatServer = await make_server(flood_rate=10, flood_burst=20, flood_kick=50)
    alice = await LineClient.connect("127.0.0.1", server.port)
    bob = await LineClient.connect("127.0.0.1", server.port)
    flooder = await LineClient.connect("127.0.0.1", server.port)
    try:
        await alice.join("alice")
        await bob.join("bob")
        await flooder.send(b"".join(f"006#p{i}\n".encode() for i in range(5000)))
        await alice.send("002#alice#still here")
        assert (await bob.recv_until(Message("alice", "still here")))[-1] == Message("alice", "still here")
        rest = (await flooder.closed(timeout=10)).decode()
        assert "109#flood#disconnected for flooding" in rest
        assert rest.count("110#") <= 40 + 5  # the control burst and what it refilled, not 5,000
        assert server.stats.flood_refusals >= 50
    finally:
        for c in (alice, bob, flooder):
            await c.close()


async def test_a_second_007_is_refused(connect) -> None:
    c = await connect()
    await c.send("007#frames\n007#json")
    assert await c.recv() == Error(ErrorReason.FORBIDDEN, "007 may come only once")


async def test_over_limit_connections_are_refused_at_once_without_a_gateway_secret(make_server) -> None:
    """Medium 2: with no gateway configured there is no grace to wait in, so no total to exhaust."""
    server: ChatServer = await make_server(max_clients=60, max_per_address=5)
    crowd = [await connect_from(server, "127.0.0.1") for _ in range(70)]
    other = await connect_from(server, "127.0.0.2")  # while the crowd is still there
    try:
        assert (await other.join("other"))[0] == Joined("other")
        for client in crowd[5:]:
            frames = await client.recv_until(Error)
            assert frames[-1] == Error(ErrorReason.ADDRESS_LIMIT, "too many connections from your address")
    finally:
        for client in (*crowd, other):
            await client.close()


async def test_gateway_backends_give_back_the_gateways_own_budget(make_server) -> None:
    """Medium 6: 125 web joins used up the gateway host's new-connections-a-minute on the server."""
    server: ChatServer = await make_server(gateway_secret=SECRET, max_per_address=0, max_new_per_minute=120)
    backends = []
    try:
        for i in range(125):
            backend = await LineClient.connect("127.0.0.1", server.port)
            await backend.send(f"000#{SECRET}#198.51.100.{i}\n001#web{i}")
            backends.append(backend)
            frames = await backend.recv_until(UserList)
            assert frames[0] == Joined(f"web{i}")
        terminal = await LineClient.connect("127.0.0.1", server.port)
        frames = await terminal.join("terminal")
        assert frames[0].id == "terminal"  # type: ignore[union-attr]
        await terminal.close()
    finally:
        for backend in backends:
            await backend.close()


async def test_several_sockets_of_one_address_share_one_message_budget(make_server) -> None:
    """Medium 8: 19 sockets x 10/s from one address fanned out 240 messages a second to everyone."""
    server: ChatServer = await make_server(flood_rate=10, flood_burst=20, flood_kick=10_000,
                                           address_flood_rate=10, address_flood_burst=20)
    reader = await connect_from(server, "127.0.0.2")
    senders = [await connect_from(server, "127.0.0.1") for _ in range(5)]
    try:
        await reader.join("reader")
        for i, sender in enumerate(senders):
            await sender.join(f"s{i}")
        await reader.sync()
        started = asyncio.get_running_loop().time()
        for i, sender in enumerate(senders):
            await sender.send(b"".join(f"002#s{i}#m{j}\n".encode() for j in range(20)))
        for sender in senders:
            await sender.sync()
        delivered = [f for f in await reader.sync() if isinstance(f, Message)]
        refilled = 10 * (asyncio.get_running_loop().time() - started)
        # Each socket alone could send its burst of 20 (100 in all); the address may send 20 together,
        # less the five joins, plus what refilled meanwhile.
        assert len(delivered) <= 20 + refilled + 1
        assert len(delivered) >= 10
    finally:
        for c in (reader, *senders):
            await c.close()


async def test_ipv6_addresses_of_one_64_count_as_one_user(make_server) -> None:
    """Medium 8: three addresses of one /64 were three users to the per-address limits."""
    server: ChatServer = await make_server(gateway_secret=SECRET, max_per_address=2)
    clients = []
    try:
        for host in ("2001:db8:1:2::1", "2001:db8:1:2::2"):
            client = await LineClient.connect("127.0.0.1", server.port)
            await client.send(f"000#{SECRET}#{host}")
            await client.sync()
            clients.append(client)
        third = await LineClient.connect("127.0.0.1", server.port)
        clients.append(third)
        await third.send(f"000#{SECRET}#2001:db8:1:2:ffff::3")
        assert (await third.closed()).startswith(b"109#address-limit")
        other = await LineClient.connect("127.0.0.1", server.port)
        await other.send(f"000#{SECRET}#2001:db8:1:3::1")  # the next /64 is someone else
        assert (await other.join("neighbour"))[0].id == "neighbour"  # type: ignore[union-attr]
        clients.append(other)
    finally:
        for client in clients:
            await client.close()


@pytest.mark.parametrize("target", ["bo\rb", "es\x1b[2Jc", "two words"])
async def test_a_bad_whisper_target_is_a_clear_error_not_an_internal_one(connect, target: str,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Low 10: 003#me#bo\\rb#x gave 109#internal with a traceback, and an ESC was echoed back raw."""
    caplog.set_level(logging.WARNING)
    me = await connect()
    await me.join("me")
    await me.send(f"003#me#{target}#x".encode() + b"\n")
    frame = await me.recv()
    assert isinstance(frame, Error) and frame.reason is ErrorReason.MALFORMED
    assert "\x1b" not in bytes(me.raw).decode()
    assert "Traceback" not in caplog.text and "internal" not in caplog.text


async def test_the_gateway_address_must_be_an_ip_address(make_server) -> None:
    """Low 11: the 000 address was free text (a bidi override reached the log)."""
    server: ChatServer = await make_server(gateway_secret=SECRET)
    client = await LineClient.connect("127.0.0.1", server.port)
    try:
        await client.send(f"000#{SECRET}#evil\u202ename")
        frame = await client.recv()
        assert isinstance(frame, Error) and frame.reason is ErrorReason.MALFORMED
        assert "IP address" in frame.text
    finally:
        await client.close()
