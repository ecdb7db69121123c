"""The TCP server on real sockets: every row of PROTOCOL.md's tables, and bad input."""

from __future__ import annotations

import asyncio

import pytest

from tcp_server import ChatServer
from tcp_server.protocol import (
    Error,
    ErrorReason,
    IdTaken,
    Joined,
    Left,
    Message,
    NoSuchUser,
    Pong,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
)
from tcp_server.protocol.frames import RoomListed, RoomsListed
from tcp_server.room import InMemoryBus
from tests.helpers import LineClient


async def test_every_client_and_server_row(connect) -> None:
    a, b = await connect(), await connect()
    await a.send("006#early")  # ping before join
    assert await a.recv() == Pong("early")
    assert await a.join("alice") == [Joined("alice"), UserList(("alice",))]
    assert await b.join("bob") == [Joined("bob"), UserList(("alice", "bob"))]
    assert await a.recv() == UserJoined("bob")
    c = await connect()
    await c.send("001#ALICE")
    assert await c.recv() == IdTaken()
    await a.send("002#alice#hi # everyone")
    assert await b.recv() == Message("alice", "hi # everyone")
    await a.send("003#alice#bob#just you")
    assert await b.recv() == WhisperMessage("alice", "just you")
    await a.send("003#alice#nobody#hello?")
    assert await a.recv() == NoSuchUser("nobody")
    await b.send("005#bob")
    assert await b.recv() == UserList(("alice", "bob"))
    await b.send("013")  # the rooms: the lobby, until there are others
    assert [await b.recv(), await b.recv()] == [RoomListed("lobby", 2, ""), RoomsListed(1)]
    await b.send("004#bob")
    assert await b.recv() == Left()
    assert await b.closed() == b""
    assert await a.recv() == UserLeft("bob")
    assert await a.sync() == []  # the sender got nothing of its own broadcast


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("999#x", ErrorReason.UNKNOWN_CODE),
        ("002#alice", ErrorReason.MALFORMED),
        ("002#alice#", ErrorReason.MALFORMED),
        ("002#alice#\x1b[31mred", ErrorReason.MALFORMED),
        ("002#bob#spoofed", ErrorReason.ID_MISMATCH),
        ("003#bob#alice#spoofed", ErrorReason.ID_MISMATCH),
        ("004#bob", ErrorReason.ID_MISMATCH),
        ("005#bob", ErrorReason.ID_MISMATCH),
        ("001#again", ErrorReason.ALREADY_JOINED),
        ("000#secret#1.2.3.4", ErrorReason.FORBIDDEN),
    ],
)
async def test_bad_input_gets_its_error_and_nothing_else_is_lost(connect, line: str, reason: ErrorReason) -> None:
    a, b = await connect(), await connect()
    await a.join("alice")
    await b.join("bob")
    await a.recv()  # 103 bob
    await a.send(line)
    err = await a.recv()
    assert isinstance(err, Error) and err.reason is reason
    if reason is ErrorReason.FORBIDDEN:
        await a.closed()  # 000 without a configured secret closes
        assert await b.recv() == UserLeft("alice")
        return
    assert await b.sync() == []  # nothing was delivered to bob
    await a.send("002#alice#still here")
    assert await b.recv() == Message("alice", "still here")


async def test_not_joined_and_bad_id(connect) -> None:
    a = await connect()
    for line in ("002#x#hi", "003#x#y#z", "004#x"):
        await a.send(line)
        assert await a.recv() == Error(ErrorReason.NOT_JOINED, "send 001#ID first")
    await a.send("005#x")  # who is here may be asked before a join (nobody yet)
    assert await a.recv() == UserList(())
    for bad in ("has space", "a#b", "x" * 33, "zero\u200bwidth"):
        await a.send(f"001#{bad}")
        frame = await a.recv()
        assert isinstance(frame, Error) and frame.reason is ErrorReason.BAD_ID
    assert (await a.join("fine"))[0] == Joined("fine")


async def test_too_long_and_invalid_utf8_keep_the_connection(connect, server: ChatServer) -> None:
    a, b = await connect(), await connect()
    await a.join("alice")
    await b.join("bob")
    await a.recv()
    await a.send(b"002#alice#" + b"x" * 10_000 + b"\n")
    err = await a.recv()
    assert isinstance(err, Error) and err.reason is ErrorReason.TOO_LONG
    await a.send(b"002#alice#\xff\xfe\n")
    err = await a.recv()
    assert isinstance(err, Error) and err.reason is ErrorReason.MALFORMED
    limit = server.config.max_frame
    at_limit = "002#alice#" + "y" * (limit - len("002#alice#") - 1)
    await a.send(at_limit)
    assert await b.recv() == Message("alice", "y" * (limit - len("002#alice#") - 1))
    assert await b.sync() == []


async def test_a_client_sending_endless_bytes_without_lf_stays_bounded(connect, server: ChatServer) -> None:
    a = await connect()
    await a.join("alice")
    for _ in range(64):
        await a.send(b"z" * 16384)  # 1 MiB, no LF
    conn = next(c for c in server.connections if c.session.name == "alice")
    assert await a.recv() == Error(ErrorReason.TOO_LONG, "frame longer than 4096 bytes")
    assert conn.reader.buffered == 0
    await a.send(b"\n006#alive\n")
    assert await a.recv() == Pong("alive")


async def test_two_frames_in_one_write_and_one_frame_byte_by_byte(connect) -> None:
    a, b = await connect(), await connect()
    await a.join("alice")
    await b.join("bob")
    await a.recv()
    await a.send(b"002#alice#one\n002#alice#two\n")
    assert [await b.recv(), await b.recv()] == [Message("alice", "one"), Message("alice", "two")]
    data = "002#alice#한글 split\n".encode()
    for i in range(len(data)):
        await a.send(data[i:i + 1])
    assert await b.recv() == Message("alice", "한글 split")


async def test_thousand_frame_burst_arrives_complete_and_in_order(connect) -> None:
    a, b = await connect(), await connect()
    await a.join("alice")
    await b.join("bob")
    await a.recv()
    await a.send(b"".join(f"002#alice#m{i}\n".encode() for i in range(1000)))
    got = [await b.recv() for _ in range(1000)]
    assert got == [Message("alice", f"m{i}") for i in range(1000)]


async def test_a_client_that_never_reads_is_dropped_and_others_keep_receiving(make_server) -> None:
    server = await make_server(max_queue=64 * 1024)
    a = await LineClient.connect("127.0.0.1", server.port)
    b = await LineClient.connect("127.0.0.1", server.port)
    stuck = await LineClient.connect("127.0.0.1", server.port)
    try:
        await a.join("alice")
        await b.join("bob")
        await stuck.join("stuck")  # and never reads again
        await a.recv_until(UserJoined("stuck"))
        await b.recv_until(UserJoined("stuck"))
        payload = "p" * 3000
        received = 0
        dropped = False
        for i in range(2000):  # ~6 MB to each reader: far past stuck's socket buffers + 64 KiB
            await a.send(f"002#alice#{i}{payload}")
            while True:
                frame = await b.recv()
                if frame == UserLeft("stuck"):
                    dropped = True
                    continue
                break
            assert frame == Message("alice", f"{i}{payload}")
            received += 1
            if dropped and i > 50:
                break
        assert dropped, "the stuck reader was never dropped"
        assert "stuck" not in server.room.roster.names()
    finally:
        for c in (a, b, stuck):
            await c.close()


async def test_an_id_is_free_again_after_its_owner_leaves_or_drops(connect) -> None:
    a = await connect()
    await a.join("alice")
    await a.send("004#alice")
    await a.recv_until(Left)
    b = await connect()
    assert (await b.join("Alice"))[0] == Joined("Alice")
    await b.close()
    c = await connect()
    for _ in range(50):  # the drop is noticed asynchronously; retry until the ID is free
        await c.send("001#alice")
        frame = await c.recv()
        if frame == Joined("alice"):
            break
        assert frame == IdTaken()
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the ID stayed taken after its owner dropped")


async def test_connection_cap_answers_busy(make_server) -> None:
    server = await make_server(max_clients=2)
    keep = [await LineClient.connect("127.0.0.1", server.port) for _ in range(2)]
    for c in keep:
        await c.sync()
    extra = await LineClient.connect("127.0.0.1", server.port)
    assert await extra.recv() == Error(ErrorReason.BUSY, "too many connections")
    await extra.closed()
    for c in keep + [extra]:
        await c.close()


async def test_shutdown_tells_everyone(make_server) -> None:
    server = await make_server()
    a = await LineClient.connect("127.0.0.1", server.port)
    await a.join("alice")
    await server.close()
    assert await a.recv() == Error(ErrorReason.SHUTDOWN, "server shutting down")
    await a.closed()
    await a.close()


async def test_keepalive_is_set_on_accepted_sockets(connect, server: ChatServer) -> None:
    import socket

    a = await connect()
    await a.sync()
    (conn,) = server.connections
    sock = conn.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    # set once on the listening socket, inherited by every accepted one
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 5


class BrokenBus(InMemoryBus):
    """A bus with a bug in publishing messages: stands for any bug of ours."""

    __slots__ = ()

    def publish(self, frame: object, exclude: object) -> None:  # type: ignore[override]
        if isinstance(frame, Message):
            raise RuntimeError("secret internals")
        super().publish(frame, exclude)  # type: ignore[arg-type]


async def test_internal_errors_are_logged_and_the_peer_sees_only_a_generic_error(caplog) -> None:
    from tests.conftest import server_config

    server = ChatServer(server_config(), bus=BrokenBus())
    await server.start()
    a = await LineClient.connect("127.0.0.1", server.port)
    try:
        await a.join("alice")
        await a.send("002#alice#boom")
        assert await a.recv() == Error(ErrorReason.INTERNAL, "internal server error")
        assert "secret internals" in caplog.text
        assert "secret" not in bytes(a.raw).decode()
        assert await a.sync() == []
    finally:
        await a.close()
        await server.close()
