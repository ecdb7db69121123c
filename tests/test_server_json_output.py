"""``007#json``: the server writes JSON events (the web gateway's backends), frames to everyone else."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tcp_server import ChatServer
from tcp_server.protocol import ErrorReason, Message, ServerFrame, UserJoined, UserLeft, WhisperMessage
from tcp_server.protocol.encoders import JsonEncoder
from tests.clients import Receiver
from tests.helpers import TIMEOUT, LineClient, stamped


class EventClient(Receiver[dict[str, Any]]):
    """A raw connection that asked for JSON events: each line must be one JSON object."""

    def __init__(self, client: LineClient) -> None:
        super().__init__()
        self.client = client
        self.buf = b""

    async def read_items(self, timeout: float) -> list[dict[str, Any]]:
        data = await asyncio.wait_for(self.client.reader.read(65536), timeout)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data
        *whole, self.buf = self.buf.split(b"\n")
        events = [json.loads(line) for line in whole]
        assert all(isinstance(event, dict) for event in events), whole
        return events

    async def sync(self, token: str = "sync") -> list[dict[str, Any]]:
        await self.client.send(f"006#{token}")
        seen = await self.recv_until("pong")
        assert seen[-1] == {"type": "pong", "token": token}
        return seen[:-1]


async def test_a_json_connection_gets_every_frame_as_its_event(connect) -> None:
    jay = EventClient(await connect())
    await jay.client.send("007#json\n001#jay")
    assert await jay.recv_until("users") == [{"type": "joined", "id": "jay"}, {"type": "users", "ids": ["jay"]}]

    fran = await connect()
    await fran.join("fran")
    assert await jay.recv() == {"type": "user_joined", "id": "fran"}

    await fran.send('002#fran#hi # "there" \\ 안녕')
    assert stamped(await jay.recv()) == {"type": "message", "from": "fran", "text": 'hi # "there" \\ 안녕'}
    await fran.send("003#fran#jay#psst")
    assert stamped(await jay.recv()) == {"type": "whisper", "from": "fran", "text": "psst"}

    await jay.client.send("002#jay#yo")  # the frame user gets a frame; no echo for jay
    assert await fran.recv() == Message("jay", "yo")
    assert await jay.sync("a") == []
    await jay.client.send("003#jay#nobody#x\n005#jay\n999#x\n002#fran#spoof")
    assert await jay.sync("b") == [
        {"type": "no_such_user", "to": "nobody"},
        {"type": "users", "ids": ["jay", "fran"]},
        {"type": "error", "reason": "unknown-code", "text": "unknown code '999'"},
        {"type": "error", "reason": "id-mismatch", "text": "you are jay"},
    ]
    await jay.client.send("007#frames")  # too late: stays JSON
    assert await jay.sync("c") == [{"type": "error", "reason": "already-joined", "text": "007 must come before 001"}]

    await jay.client.send("004#jay")
    assert await jay.recv() == {"type": "left"}
    assert await jay.client.closed() == b""
    assert await fran.recv() == UserLeft("jay")


async def test_room_frames_keep_their_order_around_a_json_users_own_replies(connect) -> None:
    jay = EventClient(await connect())
    await jay.client.send("007#json\n001#jay")
    await jay.recv_until("users")
    fran = await connect()
    await fran.join("fran")
    await jay.recv()
    for i in range(20):
        await fran.send(f"002#fran#m{i}")
    # jay's ping and fran's messages travel on different connections: the pong may come between
    # them, but every message reaches jay once, in order, whichever side of the pong.
    await jay.client.send("006#after")
    events = await jay.recv_until("pong")
    texts = [e["text"] for e in events if e["type"] == "message"]
    assert texts == [f"m{i}" for i in range(len(texts))]  # a prefix, in order, before the pong
    rest = [e["text"] for e in [await jay.recv() for _ in range(20 - len(texts))]]
    assert texts + rest == [f"m{i}" for i in range(20)]


async def test_a_broadcast_is_translated_once_for_all_json_members(connect, monkeypatch) -> None:
    translated: list[ServerFrame] = []
    real = JsonEncoder.encode

    def counting(frame: ServerFrame) -> bytes:
        translated.append(frame)
        return real(frame)

    monkeypatch.setattr(JsonEncoder, "encode", staticmethod(counting))
    members = []
    for name in ("j1", "j2", "j3", "j4"):
        member = EventClient(await connect())
        await member.client.send(f"007#json\n001#{name}")
        await member.recv_until("users")
        members.append(member)
    fran = await connect()
    await fran.join("fran")
    plain = await connect()
    await plain.join("plain")
    await fran.sync()
    translated.clear()
    for i in range(50):
        await fran.send(f"002#fran#n{i}")
    for member in members:
        got = []
        while len(got) < 50:
            event = await member.recv()
            if event["type"] == "message":
                got.append(event["text"])
        assert got == [f"n{i}" for i in range(50)]
    frames = await plain.recv_until(Message("fran", "n49"))
    assert [f for f in frames if isinstance(f, Message)] == [Message("fran", f"n{i}") for i in range(50)]
    broadcasts = [t for t in translated if isinstance(t, Message)]
    assert len(broadcasts) == 50  # once each, not once per JSON member (that would be 200)


async def test_json_and_frame_users_see_the_same_room(connect) -> None:
    fran = await connect()
    await fran.join("fran")
    jay = EventClient(await connect())
    await jay.client.send("007#json\n001#jay")
    assert await jay.recv_until("users") == [{"type": "joined", "id": "jay"}, {"type": "users", "ids": ["fran", "jay"]}]
    assert await fran.recv() == UserJoined("jay")
    await jay.client.send("003#jay#fran#hello fran")
    assert await fran.recv() == WhisperMessage("jay", "hello fran")
    await jay.client.close()
    assert await fran.recv() == UserLeft("jay")


@pytest.mark.parametrize("line", ["007#xml", "007", "007#json#x"])
async def test_a_bad_007_is_malformed_and_the_connection_goes_on(connect, line: str) -> None:
    client = await connect()
    await client.send(line)
    frames = await client.sync()
    assert len(frames) == 1 and frames[0].reason is ErrorReason.MALFORMED  # type: ignore[union-attr]
    assert (await client.join("still-frames"))[0].id == "still-frames"  # type: ignore[union-attr]


async def test_the_legacy_port_keeps_its_text(server: ChatServer) -> None:
    assert server.legacy_port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.legacy_port)
    try:
        writer.write(b"007#json")
        await writer.drain()
        refusal = await asyncio.wait_for(reader.read(4096), TIMEOUT)
        assert not refusal.startswith(b"{")
        writer.write(b"001#old")
        await writer.drain()
        joined = await asyncio.wait_for(reader.read(4096), TIMEOUT)
        assert b"{" not in joined and joined.strip(), joined
    finally:
        writer.close()
