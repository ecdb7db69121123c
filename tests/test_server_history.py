"""Recent history (111) for a newcomer on a real server: the last N, with times, and an exact boundary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tcp_server import ChatServer
from tcp_server.protocol import History, Joined, Message, SessionToken, UserList
from tcp_server.room import InMemoryHistory
from tests.helpers import TIMEOUT, LineClient
from tests.test_server_json_output import EventClient

Start = Callable[..., Awaitable[ChatServer]]


async def test_a_newcomer_gets_the_last_n_messages_oldest_first_with_times(make_server: Start) -> None:
    server = await make_server(history=3, resume_grace=30.0)
    bob = await LineClient.connect("127.0.0.1", server.port)
    carol = await LineClient.connect("127.0.0.1", server.port)
    try:
        await bob.join("bob")
        before = time.time_ns() // 1_000_000
        for i in range(5):
            await bob.send(f"002#bob#m{i} # {i}")
        await bob.send("003#bob#bob#a whisper is never history")
        await bob.sync()
        after = time.time_ns() // 1_000_000
        await carol.send("001#carol")
        frames = await carol.recv_until(UserList)
        assert frames == [Joined("carol"), UserList(("bob", "carol"))]
        assert isinstance(await carol.recv(), SessionToken)
        history = [await carol.recv() for _ in range(3)]
        assert [(h.sender, h.message) for h in history if isinstance(h, History)] == [
            ("bob", "m2 # 2"), ("bob", "m3 # 3"), ("bob", "m4 # 4")]
        stamps = [h.ts for h in history if isinstance(h, History)]
        assert before <= stamps[0] <= stamps[1] <= stamps[2] <= after
        assert await carol.sync() == []  # nothing more: no whisper in it
    finally:
        await bob.close()
        await carol.close()


async def test_a_message_sent_during_the_join_is_history_or_live_never_both_never_neither(make_server: Start) -> None:
    server = await make_server(history=1000)
    bob = await LineClient.connect("127.0.0.1", server.port)
    carol = await LineClient.connect("127.0.0.1", server.port)
    try:
        await bob.join("bob")
        count = 300
        halfway = asyncio.Event()

        async def talk() -> None:
            for i in range(count):
                await bob.send(f"002#bob#{i}")
                if i == count // 2:
                    halfway.set()
                await asyncio.sleep(0)  # let carol's join land somewhere in the stream

        await bob.send(f"002#bob#{-1}")  # at least one before
        talker = asyncio.create_task(talk())
        await asyncio.wait_for(halfway.wait(), TIMEOUT)
        await carol.send("001#carol")
        await asyncio.wait_for(talker, TIMEOUT)
        await bob.send("002#bob#end")
        frames = await carol.recv_until(Message("bob", "end"))
        history = [int(f.message) for f in frames if isinstance(f, History)]
        live = [int(f.message) for f in frames if isinstance(f, Message) and f.message != "end"]
        assert history[0] == -1
        assert history + live == list(range(-1, count))  # every message exactly once, in order
    finally:
        await bob.close()
        await carol.close()


async def test_history_is_bounded_in_bytes_and_off_with_zero(make_server: Start) -> None:
    kept = InMemoryHistory(limit=100, max_bytes=1000)
    for i in range(50):
        kept.add(Message("bob", f"{i:02d}" + "x" * 98, 1))
        assert kept.bytes <= 1000
    assert 0 < len(kept) < 10 and kept.recent()[-1].message.startswith("49")

    server = await make_server(history=0)
    assert server.history is None
    bob = await LineClient.connect("127.0.0.1", server.port)
    carol = await LineClient.connect("127.0.0.1", server.port)
    try:
        await bob.join("bob")
        await bob.send("002#bob#hi")
        await bob.sync()
        await carol.join("carol")
        assert await carol.sync() == []
    finally:
        await bob.close()
        await carol.close()


async def test_history_as_json_events_and_as_seed_text_on_the_legacy_port(make_server: Start) -> None:
    server = await make_server(history=5)
    bob = await LineClient.connect("127.0.0.1", server.port)
    jay = EventClient(await LineClient.connect("127.0.0.1", server.port))
    try:
        await bob.join("bob")
        await bob.send("002#bob#hello # all")
        await bob.sync()
        await jay.client.send("007#json\n001#jay")
        events = await jay.recv_until("history")
        assert [e["type"] for e in events] == ["joined", "users", "history"]  # no grace here: no session event
        assert events[-1]["from"] == "bob" and events[-1]["text"] == "hello # all"
        assert isinstance(events[-1]["ts"], int)

        assert server.legacy_port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", server.legacy_port)
        writer.write(b"001#seed")
        got = b""
        while b"bob : hello # all" not in got:
            got += await asyncio.wait_for(reader.read(4096), TIMEOUT)
        assert b"112" not in got and b"111#" not in got  # the seed's text, not frames
        writer.close()
    finally:
        await bob.close()
        await jay.client.close()
