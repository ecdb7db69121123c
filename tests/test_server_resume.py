"""Sessions that resume (008/112/113) on a real server over real sockets: drops, expiry, floods, takeover."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from tcp_server import ChatServer
from tcp_server.protocol import (
    Error,
    ErrorReason,
    Joined,
    Left,
    Message,
    Resumed,
    SessionToken,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
)
from tcp_server.room import InMemorySessionStore
from tests.helpers import LineClient, wait_until

Open = Callable[[], Awaitable[LineClient]]


@pytest.fixture
async def resumable(make_server: Callable[..., Awaitable[ChatServer]]) -> ChatServer:
    return await make_server(resume_grace=30.0)


@pytest.fixture
def open_client(resumable: ChatServer, line_clients: Callable[[int], Awaitable[LineClient]]) -> Open:
    return lambda: line_clients(resumable.port)


def store(server: ChatServer) -> InMemorySessionStore:
    assert isinstance(server.sessions, InMemorySessionStore)
    return server.sessions


async def join_with_token(client: LineClient, name: str) -> str:
    frames = await client.join(name)
    assert frames[-2:] == [Joined(name), frames[-1]] and isinstance(frames[-1], UserList)
    token = await client.recv()
    assert isinstance(token, SessionToken)
    return token.token


async def drop(server: ChatServer, client: LineClient, name: str) -> None:
    """Kill the TCP connection (a reset, no 004) and wait for the server to park the session."""
    client.writer.transport.abort()
    await wait_until(lambda: store(server).is_parked(name), what=f"{name} parked")


async def resume(client: LineClient, token: str) -> tuple[str, list[object]]:
    """008: 100, 107, a fresh 112, the missed frames, 113; returns the new token and the missed frames."""
    await client.send(f"008#{token}")
    frames = await client.recv_until(Resumed)
    assert isinstance(frames[0], Joined) and isinstance(frames[1], UserList) and isinstance(frames[2], SessionToken)
    assert frames[2].token != token
    missed = frames[3:-1]
    assert frames[-1] == Resumed(len(missed))
    return frames[2].token, missed


async def test_drop_and_resume_mid_conversation(resumable: ChatServer, open_client: Open) -> None:
    alice, bob = await open_client(), await open_client()
    token = await join_with_token(alice, "alice")
    await join_with_token(bob, "bob")
    assert await alice.recv() == UserJoined("bob")
    await bob.send("002#bob#before")
    assert await alice.recv() == Message("bob", "before")

    await drop(resumable, alice, "alice")
    await bob.send("002#bob#are you # there?")
    await bob.send("003#bob#alice#psst")  # a whisper to a parked user is kept, not refused
    carol = await open_client()
    await carol.join("carol")
    await carol.send("004#carol")
    await carol.recv_until(Left)
    bob_saw = await bob.sync()
    assert UserLeft("alice") not in bob_saw and bob_saw[-2:] == [UserJoined("carol"), UserLeft("carol")]

    again = await open_client()
    await again.send(f"008#{token}")
    frames = await again.recv_until(Resumed)
    assert frames[:2] == [Joined("alice"), UserList(("alice", "bob"))]  # same ID, same place
    assert isinstance(frames[2], SessionToken) and frames[2].token != token
    assert frames[3:] == [Message("bob", "are you # there?"), WhisperMessage("bob", "psst"), UserJoined("carol"),
                          UserLeft("carol"), Resumed(4)]
    await bob.send("002#bob#live again")
    assert await again.recv() == Message("bob", "live again")  # once, live
    assert await again.sync() == []
    assert await bob.sync() == []  # no 104, no 103 for alice, ever


async def test_grace_expiry_gives_exactly_one_104_and_frees_the_id(make_server: Callable[..., Awaitable[ChatServer]],
                                                                     ) -> None:
    server = await make_server(resume_grace=0.3)
    alice = await LineClient.connect("127.0.0.1", server.port)
    bob = await LineClient.connect("127.0.0.1", server.port)
    try:
        token = await join_with_token(alice, "alice")
        await join_with_token(bob, "bob")
        await alice.recv()
        await drop(server, alice, "alice")
        assert await bob.recv_until(UserLeft) == [UserLeft("alice")]
        await wait_until(lambda: len(server.directory) == 1, what="alice's ID freed")  # type: ignore[arg-type]
        assert await bob.sync() == []  # exactly one
        late = await LineClient.connect("127.0.0.1", server.port)
        await late.send(f"008#{token}")
        assert await late.recv() == Error(ErrorReason.BAD_TOKEN, "unknown, used or expired token; join with 001")
        assert (await late.join("alice"))[-2] == Joined("alice")  # the ID is free; the connection may 001
        assert await bob.recv() == UserJoined("alice")
        await late.close()
    finally:
        await alice.close()
        await bob.close()


async def test_a_flood_during_the_grace_stays_bounded_then_ends_the_session(
        make_server: Callable[..., Awaitable[ChatServer]]) -> None:
    bound = 4096
    server = await make_server(resume_grace=30.0, resume_max_bytes=bound)
    alice = await LineClient.connect("127.0.0.1", server.port)
    bob = await LineClient.connect("127.0.0.1", server.port)
    try:
        token = await join_with_token(alice, "alice")
        await join_with_token(bob, "bob")
        await alice.recv()
        await drop(server, alice, "alice")
        sizes: list[int] = []
        bob_saw = []
        for i in range(60):
            await bob.send(f"002#bob#{i:03d} " + "x" * 100)
            bob_saw += await bob.sync(f"s{i}")
            sizes.append(store(server).parked_bytes("alice"))
            assert sizes[-1] <= bound
        assert max(sizes) > bound // 2  # it was kept, up to the bound
        assert sizes[-1] == 0 and not store(server).is_parked("alice")  # past it: the session ended
        bob_saw += await bob.sync()
        assert bob_saw == [UserLeft("alice")]  # exactly once
        late = await LineClient.connect("127.0.0.1", server.port)
        await late.send(f"008#{token}")
        assert isinstance(err := await late.recv(), Error) and err.reason is ErrorReason.BAD_TOKEN
        assert (await late.join("alice"))[-2] == Joined("alice")
        await late.close()
    finally:
        await alice.close()
        await bob.close()


async def test_tokens_are_single_use_dead_after_004_and_never_logged(
        resumable: ChatServer, open_client: Open, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    alice = await open_client()
    first = await join_with_token(alice, "alice")
    assert len(first) >= 22 and all(c.isalnum() or c in "-_" for c in first)  # at least 128 bits, URL-safe
    await drop(resumable, alice, "alice")
    second_conn = await open_client()
    second, _ = await resume(second_conn, first)
    reuse = await open_client()
    await reuse.send(f"008#{first}")  # used up
    assert isinstance(err := await reuse.recv(), Error) and err.reason is ErrorReason.BAD_TOKEN
    assert await reuse.sync() == []  # the connection stays, free to join

    await second_conn.send("004#alice")
    assert await second_conn.recv() == Left()
    after = await open_client()
    await after.send(f"008#{second}")
    assert isinstance(err := await after.recv(), Error) and err.reason is ErrorReason.BAD_TOKEN
    await after.join("alice")  # 004 freed the ID at once
    third = await after.recv()
    assert isinstance(third, SessionToken) and len({first, second, third.token}) == 3
    for token in (first, second, third.token):
        assert token not in caplog.text
    assert "resumed" in caplog.text  # the log did see the resume, without its token


async def test_a_second_connection_takes_over_an_open_session(resumable: ChatServer, open_client: Open) -> None:
    alice, bob = await open_client(), await open_client()
    token = await join_with_token(alice, "alice")
    await join_with_token(bob, "bob")
    await alice.recv()
    tab = await open_client()
    _, missed = await resume(tab, token)
    assert missed == []
    assert await alice.recv() == Error(ErrorReason.REPLACED, "this session was resumed by another connection")
    await alice.closed()
    await bob.send("002#bob#who is there?")
    assert await tab.recv() == Message("bob", "who is there?")
    assert await bob.sync() == []  # no 104 for the replaced connection, no 103 for the new one
    assert [c.session.name for c in resumable.connections if c.session.joined] .count("alice") == 1


async def test_bad_tokens_and_the_legacy_port(resumable: ChatServer, open_client: Open) -> None:
    probe = await open_client()
    await probe.send("008#nosuchtoken")
    assert isinstance(err := await probe.recv(), Error) and err.reason is ErrorReason.BAD_TOKEN
    await probe.send("008#")
    assert isinstance(err := await probe.recv(), Error) and err.reason is ErrorReason.MALFORMED
    # The seed's client cannot resume: no 112 for it, and its drop is a leave at once.
    bob = await open_client()
    await join_with_token(bob, "bob")
    assert resumable.legacy_port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", resumable.legacy_port)
    writer.write(b"001#seed")
    await asyncio.wait_for(writer.drain(), 5)
    assert await bob.recv() == UserJoined("seed")
    writer.transport.abort()
    assert await bob.recv() == UserLeft("seed")
    assert not store(resumable).is_parked("seed")


async def test_a_flooder_the_server_drops_leaves_at_once_and_cannot_resume(
        make_server: Callable[..., Awaitable[ChatServer]]) -> None:
    server = await make_server(resume_grace=30.0, flood_rate=0.5, flood_burst=2, flood_kick=3)
    alice = await LineClient.connect("127.0.0.1", server.port)
    bob = await LineClient.connect("127.0.0.1", server.port)
    try:
        token = await join_with_token(alice, "alice")
        await join_with_token(bob, "bob")
        await alice.send("".join(f"002#alice#spam {i}\n" for i in range(10)).encode())
        assert (await bob.recv_until(UserLeft))[-1] == UserLeft("alice")
        assert not store(server).is_parked("alice")
        late = await LineClient.connect("127.0.0.1", server.port)
        await late.send(f"008#{token}")
        assert isinstance(err := await late.recv(), Error) and err.reason is ErrorReason.BAD_TOKEN
        await late.close()
    finally:
        await alice.close()
        await bob.close()


# ----------------------------------------------------------------------------- positions (issue 26)


async def test_a_resume_from_a_position_gets_what_went_into_the_dying_connection(
        resumable: ChatServer, open_client: Open) -> None:
    """The server has written ten messages to alice's connection, but she read only four before it
    died (it has not noticed): a resume from her position gets exactly the other six, once."""
    alice, bob = await open_client(), await open_client()
    token = await join_with_token(alice, "alice")
    await join_with_token(bob, "bob")
    assert await alice.recv() == UserJoined("bob")
    await alice.send("002#alice#mine")  # not sent to her: not counted
    await alice.send("003#alice#alice#to myself")
    assert await alice.recv() == WhisperMessage("alice", "to myself")
    for i in range(10):
        await bob.send(f"002#bob#m{i}")
    await bob.sync()
    got = [await alice.recv() for _ in range(4)]
    assert got == [Message("bob", f"m{i}") for i in range(4)]
    position = 1 + 1 + 4  # 103 bob, her whisper, four messages
    tab = await open_client()
    await tab.send(f"008#{token}#{position}")
    frames = await tab.recv_until(Resumed)
    assert frames[3:] == [*(Message("bob", f"m{i}") for i in range(4, 10)), Resumed(6)]
    assert frames[:2] == [Joined("alice"), UserList(("alice", "bob"))]
    assert isinstance(frames[2], SessionToken)
    assert (await alice.recv_until(Error))[-1].reason is ErrorReason.REPLACED
    await bob.send("002#bob#live")
    assert await tab.recv() == Message("bob", "live")
    assert await bob.sync() == []  # no 104, no 103
    assert store(resumable).position("alice") == position + 6 + 1


async def test_a_resume_past_the_window_is_refused_and_joins_afresh(
        make_server: Callable[..., Awaitable[ChatServer]]) -> None:
    server = await make_server(resume_grace=30.0, resume_max_frames=5)
    alice = await LineClient.connect("127.0.0.1", server.port)
    bob = await LineClient.connect("127.0.0.1", server.port)
    tab = await LineClient.connect("127.0.0.1", server.port)
    try:
        token = await join_with_token(alice, "alice")
        await join_with_token(bob, "bob")
        for i in range(8):
            await bob.send(f"002#bob#m{i}")
        await bob.sync()
        await tab.send(f"008#{token}#1")  # seven to replay: more than five
        err = await tab.recv()
        assert isinstance(err, Error) and err.reason is ErrorReason.GAP
        assert await bob.recv_until(UserLeft("alice")) == [UserLeft("alice")]  # the session ended plainly
        await tab.join("alice")  # the ID is free: a fresh join
        assert await bob.recv() == UserJoined("alice")
    finally:
        for client in (alice, bob, tab):
            await client.close()
