"""The server's shell (tcp_server/connection.py) driven directly over a fake transport, no sockets.

As websockets tests its protocol: bytes in through ``data_received``, bytes out of ``write``, and
the transport's pause, resume and close observed, with the server node real (the in-memory room).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tcp_server.connection import ChatConnection
from tcp_server.protocol.codes import ErrorReason
from tcp_server.protocol.decoder import server_frame_reader
from tcp_server.protocol.frames import (
    Error,
    FrameError,
    Joined,
    Left,
    Message,
    Resumed,
    ServerFrame,
    SessionToken,
    UserJoined,
    UserLeft,
    UserList,
)
from tcp_server.server import ChatServer

from .helpers import wait_until

MakeServer = Callable[..., Awaitable[ChatServer]]


class FakeTransport(asyncio.Transport):
    """What the connection uses of an asyncio transport, recorded; closing ends the connection in the
    next loop turn, as the loop's own transports do."""

    def __init__(self, protocol: asyncio.Protocol, peer: tuple[str, int] = ("198.51.100.7", 40000)) -> None:
        super().__init__()
        self.protocol = protocol
        self.peer = peer
        self.written = bytearray()
        self.reading = True
        self.closed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.written += data

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default


class Peer:
    """One connection of ``server`` over a fake transport."""

    def __init__(self, server: ChatServer, legacy: bool = False, address: str = "198.51.100.7") -> None:
        self.server = server
        self.conn = ChatConnection(server, legacy=legacy)
        self.transport = FakeTransport(self.conn, (address, 40000))
        self.conn.connection_made(self.transport)

    def send(self, data: bytes) -> None:
        self.conn.data_received(data)

    def frames(self) -> list[ServerFrame]:
        """Everything written to this peer so far (after the room's flush), as frames; then forgotten."""
        self.server.room.flush()
        data, self.transport.written = bytes(self.transport.written), bytearray()
        items = server_frame_reader().feed(data)
        frames = [f for f in items if not isinstance(f, FrameError)]
        assert len(frames) == len(items), items  # the shell writes only whole, valid frames
        return frames

    def raw(self) -> bytes:
        self.server.room.flush()
        data, self.transport.written = bytes(self.transport.written), bytearray()
        return data


async def gone(peer: Peer) -> None:
    await wait_until(lambda: peer.conn.ended, 5.0, "the connection ended")


async def test_join_and_message(make_server: MakeServer) -> None:
    server = await make_server(resume_grace=30)
    alice, bob = Peer(server), Peer(server)
    alice.send(b"001#alice\n")
    joined = alice.frames()
    assert joined[:2] == [Joined("alice"), UserList(("alice",))]
    assert any(isinstance(f, SessionToken) for f in joined)  # a node with sessions issues the 112
    bob.send(b"001#bob\n")
    bob.frames()
    assert alice.frames() == [UserJoined("bob")]
    alice.send(b"002#alice#hello\n")
    [message] = bob.frames()
    assert isinstance(message, Message) and (message.sender, message.message) == ("alice", "hello")
    assert alice.frames() == []  # the sender gets no echo
    assert server.room.members.keys() == {"alice", "bob"}


async def test_a_node_without_sessions_issues_no_token(make_server: MakeServer) -> None:
    server = await make_server(resume_grace=0)
    peer = Peer(server)
    peer.send(b"001#alice\n008#abc\n")
    frames = peer.frames()
    assert frames[:2] == [Joined("alice"), UserList(("alice",))]
    assert not any(isinstance(f, SessionToken) for f in frames)
    assert [f.reason for f in frames if isinstance(f, Error)] == [ErrorReason.ALREADY_JOINED]


async def test_flood_kick_drops_the_connection_and_counts_a_flood_leave(make_server: MakeServer) -> None:
    server = await make_server(flood_rate=0.001, flood_burst=2, flood_kick=2, address_flood_rate=0)
    spammer, watcher = Peer(server), Peer(server, address="198.51.100.8")
    watcher.send(b"001#watcher\n")
    spammer.send(b"001#spam\n")  # token 1
    spammer.frames()
    watcher.frames()
    spammer.send(b"002#spam#1\n")  # token 2: the last
    spammer.send(b"002#spam#2\n002#spam#3\n")  # refused twice: strikes 1, 2
    reasons = [f.reason for f in spammer.frames() if isinstance(f, Error)]
    assert reasons == [ErrorReason.FLOOD, ErrorReason.FLOOD]
    assert spammer.conn.admission.strikes == 2
    spammer.send(b"002#spam#4\n")  # the third in a row: kicked
    assert spammer.transport.closed
    assert [f for f in watcher.frames() if not isinstance(f, Message)] == [UserLeft("spam")]
    await gone(spammer)
    assert server.stats.leaves["flood"] == 1
    assert "spam" not in server.room.members


async def test_reading_pauses_until_the_budget_refills(make_server: MakeServer) -> None:
    server = await make_server(flood_rate=20.0, flood_burst=1)
    peer = Peer(server)
    peer.send(b"001#pacer\n")  # the one token
    assert not peer.transport.reading  # the next frame would be refused: the rest waits in the peer's buffer
    await wait_until(lambda: peer.transport.reading, 5.0, "reading resumed")
    assert peer.frames()[0] == Joined("pacer")


async def test_frames_read_while_a_join_waits_are_held_in_order(make_server: MakeServer) -> None:
    server = await make_server(resume_grace=30)
    peer = Peer(server)
    peer.send(b"008#no-such-token\n001#alice\n")  # the resume is a task: the 001 waits behind it, reading paused
    assert not peer.transport.reading
    await wait_until(lambda: peer.conn.session.joined, 5.0, "the 001 after the refused 008")
    frames = peer.frames()
    assert [f.reason for f in frames if isinstance(f, Error)] == [ErrorReason.BAD_TOKEN]
    assert Joined("alice") in frames and peer.transport.reading


async def test_the_legacy_port_refuses_007_and_008_and_issues_no_token(make_server: MakeServer) -> None:
    server = await make_server(resume_grace=30)  # sessions kept, but not for the seed's client
    seed = Peer(server, legacy=True)
    seed.send(b"007#json")  # the seed's client: a frame a write, no LF
    seed.raw()
    assert server.stats.errors[str(ErrorReason.UNKNOWN_CODE)] == 1
    seed.send(b"008#abc")
    seed.raw()
    assert server.stats.errors[str(ErrorReason.BAD_TOKEN)] == 1
    seed.send(b"001#seed")
    assert seed.conn.session.joined and seed.raw()
    assert seed.conn.session.caps.legacy and seed.conn.session.cursor_key is None
    seed.conn.connection_lost(ConnectionResetError())
    assert server.sessions is not None and server.sessions.parked() == 0  # nothing to resume: it left


async def test_a_dropped_session_resumes_on_a_new_connection(make_server: MakeServer) -> None:
    server = await make_server(resume_grace=30)
    alice, bob = Peer(server), Peer(server, address="198.51.100.8")
    alice.send(b"001#alice\n")
    bob.send(b"001#bob\n")
    [token] = [f.token for f in alice.frames() if isinstance(f, SessionToken)]
    bob.frames()
    alice.conn.connection_lost(ConnectionResetError())  # no 004: parked
    assert server.sessions is not None and server.sessions.parked() == 1
    bob.send(b"002#bob#while you were away\n")
    again = Peer(server)
    again.send(f"008#{token}\n".encode())
    await wait_until(lambda: again.conn.session.joined, 5.0, "resumed")
    frames = again.frames()
    assert frames[0] == Joined("alice") and frames[-1] == Resumed(1)
    assert [f.message for f in frames if isinstance(f, Message)] == ["while you were away"]
    assert any(isinstance(f, SessionToken) and f.token != token for f in frames)  # a fresh token
    assert bob.frames() == []  # silent for the others: no 104, no 103
    assert server.room.members["alice"] is again.conn


async def test_004_leaves_and_closes(make_server: MakeServer) -> None:
    server = await make_server(resume_grace=30)
    alice, bob = Peer(server), Peer(server, address="198.51.100.8")
    alice.send(b"001#alice\n")
    bob.send(b"001#bob\n")
    alice.frames()
    bob.frames()
    alice.send(b"004#alice\n")
    assert alice.frames() == [Left()] and alice.transport.closed and not alice.transport.aborted
    assert bob.frames() == [UserLeft("alice")]
    await gone(alice)
    assert server.stats.leaves["quit"] == 1 and server.stats.leaves["drop"] == 0  # counted once
    assert server.sessions is not None and server.sessions.parked() == 0
    assert "alice" not in server.room.members and alice.conn not in server.connections


async def test_a_kick_says_why_and_leaves_once(make_server: MakeServer) -> None:
    server = await make_server()
    alice, bob = Peer(server), Peer(server, address="198.51.100.8")
    alice.send(b"001#alice\n")
    bob.send(b"001#bob\n")
    alice.frames()
    bob.frames()
    alice.conn.remove(ErrorReason.KICKED, "be nice")
    assert alice.frames() == [Error(ErrorReason.KICKED, "be nice")] and alice.transport.closed
    assert bob.frames() == [UserLeft("alice")]
    await gone(alice)
    assert server.stats.leaves["kick"] == 1 and server.stats.leaves["drop"] == 0
