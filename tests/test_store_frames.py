"""Scrollback (016 → 140…141) and search (017 → 142…143) on a real server with a real database."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tcp_server import ChatServer
from tcp_server.protocol import Error, ErrorReason, Found, History, Older, Page, Searched, UserList
from tcp_server.protocol.frames import ServerFrame
from tcp_server.protocol.scrollback import open_cursor
from tests.conftest import server_config
from tests.helpers import TIMEOUT, LineClient

Start = Callable[..., Awaitable[ChatServer]]


@pytest.fixture
async def start(tmp_path: pathlib.Path) -> AsyncIterator[Start]:
    """Servers on one SQLite file of this test's (a database URL may be given instead)."""
    servers: list[ChatServer] = []

    async def start_(**overrides: object) -> ChatServer:
        overrides.setdefault("database", f"sqlite:///{tmp_path / 'chat.db'}")
        server = ChatServer(server_config(**overrides))
        await server.start()
        servers.append(server)
        return server

    yield start_
    for server in servers:
        await server.close(timeout=2.0)


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[int], Awaitable[LineClient]]]:
    opened: list[LineClient] = []

    async def open_(port: int) -> LineClient:
        client = await LineClient.connect("127.0.0.1", port)
        opened.append(client)
        return client

    yield open_
    for client in opened:
        await client.close()


async def join(client: LineClient, name: str) -> list[ServerFrame]:
    """Everything a fresh join sends after 107, up to and including its 141."""
    frames = await client.join(name)
    assert isinstance(frames[-1], UserList)
    return await client.recv_until(Page)


async def say(server: ChatServer, client: LineClient, name: str, messages: list[str]) -> None:
    """Send, then wait until the room has them: committed and handed on (the sender's own replies
    may overtake its messages, which wait for their commit)."""
    await client.send("".join(f"002#{name}#{m}\n" for m in messages))
    await client.sync()
    assert server.gate is not None
    assert await server.gate.drain(TIMEOUT)


async def page(client: LineClient, cursor: str, limit: int, room: str = "lobby") -> tuple[list[Older], Page]:
    await client.send(f"016#{room}#{cursor}#{limit}")
    frames = await client.recv_until(Page)
    assert all(isinstance(f, Older) for f in frames[:-1]), frames
    last = frames[-1]
    assert isinstance(last, Page)
    return [f for f in frames if isinstance(f, Older)], last


async def refused(client: LineClient, line: str) -> ErrorReason:
    await client.send(line)
    frame = await client.recv()
    assert isinstance(frame, Error), frame
    assert await client.sync() == []  # nothing else came, and the connection goes on
    return frame.reason


async def test_a_join_ends_with_141_and_016_pages_back_to_the_first_message(
    start: Start, clients: Callable[[int], Awaitable[LineClient]],
) -> None:
    server = await start(history=5)
    bob = await clients(server.port)
    first = await join(bob, "bob")
    assert first == [Page("lobby", 0, "")]  # an empty room: nothing sent, nothing older
    await say(server, bob, "bob", [f"m{i} #{i}" for i in range(23)])
    carol = await clients(server.port)
    frames = await join(carol, "carol")
    assert [f.message for f in frames if isinstance(f, History)] == [f"m{i} #{i}" for i in range(18, 23)]
    end = frames[-1]
    assert isinstance(end, Page) and end.count == 5 and end.cursor
    seen: list[str] = []
    cursor = end.cursor
    while cursor:
        older, end = await page(carol, cursor, 7)
        seen = [o.message for o in older] + seen
        assert end.count == len(older)
        cursor = end.cursor
    assert seen == [f"m{i} #{i}" for i in range(18)]  # every older message once, in the room's order
    newest, end = await page(carol, "", 3)  # an empty cursor: from the newest
    assert [o.message for o in newest] == ["m20 #20", "m21 #21", "m22 #22"]
    assert open_cursor(server.cursor_key or b"", "lobby", end.cursor) == 21


async def test_history_0_sends_nothing_on_join_but_the_store_still_serves(
    start: Start, clients: Callable[[int], Awaitable[LineClient]],
) -> None:
    server = await start(history=0)
    bob = await clients(server.port)
    await join(bob, "bob")
    await say(server, bob, "bob", ["one", "two"])
    carol = await clients(server.port)
    frames = await join(carol, "carol")
    assert not any(isinstance(f, History) for f in frames)
    end = frames[-1]
    assert isinstance(end, Page) and end.count == 0
    older, _ = await page(carol, end.cursor, 10)
    assert [o.message for o in older] == ["one", "two"]
    await carol.send("017#lobby#tw")
    assert [f for f in await carol.recv_until(Searched) if isinstance(f, Found)][0].message == "two"


async def test_cursors_survive_a_restart(start: Start, clients: Callable[[int], Awaitable[LineClient]]) -> None:
    server = await start(history=2)
    bob = await clients(server.port)
    await join(bob, "bob")
    await say(server, bob, "bob", ["a", "b", "c", "d"])
    carol = await clients(server.port)
    end = (await join(carol, "carol"))[-1]
    assert isinstance(end, Page)
    await server.close(timeout=2.0)
    again = await start(history=2)
    dave = await clients(again.port)
    await join(dave, "dave")
    older, _ = await page(dave, end.cursor, 10)
    assert [o.message for o in older] == ["a", "b"]


@pytest.mark.parametrize(("line", "reason"), [
    ("016#lobby##0", ErrorReason.MALFORMED),
    ("016#lobby##10000", ErrorReason.MALFORMED),
    ("016#lobby#bm90LWEtY3Vyc29y#10", ErrorReason.BAD_CURSOR),
    ("016#lobby#" + "A" * 200 + "#10", ErrorReason.BAD_CURSOR),
    ("016#another-room##10", ErrorReason.NOT_IN_ROOM),
    ("017#lobby#a", ErrorReason.MALFORMED),
    ("017#another-room#hello", ErrorReason.NOT_IN_ROOM),
])
async def test_bad_scrollback_and_search_get_a_clear_109_and_lose_nothing(
    start: Start, clients: Callable[[int], Awaitable[LineClient]], line: str, reason: ErrorReason,
) -> None:
    server = await start()
    bob = await clients(server.port)
    await join(bob, "bob")
    assert await refused(bob, line) is reason


async def test_a_cursor_of_another_database_is_refused(
    start: Start, clients: Callable[[int], Awaitable[LineClient]], tmp_path: pathlib.Path,
) -> None:
    one = await start()
    other = await start(database=f"sqlite:///{tmp_path / 'other.db'}")
    bob = await clients(one.port)
    await join(bob, "bob")
    await say(one, bob, "bob", ["x", "y"])
    carol = await clients(one.port)
    end = (await join(carol, "carol"))[-1]
    _, theirs = await page(carol, "", 1)
    assert isinstance(end, Page) and theirs.cursor
    eve = await clients(other.port)
    await join(eve, "eve")
    assert await refused(eve, f"016#lobby#{theirs.cursor}#5") is ErrorReason.BAD_CURSOR


@pytest.mark.parametrize("query", ["%", "_", "*", "\"", "NEAR", "a.*b", "[x]", "' OR 1=1 --", "\\", "%_", "^$"])
async def test_search_is_literal_whatever_the_query_holds(
    start: Start, clients: Callable[[int], Awaitable[LineClient]], query: str,
) -> None:
    server = await start()
    bob = await clients(server.port)
    await join(bob, "bob")
    plain = ["plain words", "nothing special here", "NEA R"]
    await say(server, bob, "bob", [*plain, f"with {query} inside"])
    if len(query) < 2:
        assert await refused(bob, f"017#lobby#{query}") is ErrorReason.MALFORMED
        query = f"{query} i"  # the same character, searched with what follows it
    await bob.send(f"017#lobby#{query}")
    frames = await bob.recv_until(Searched)
    assert [f.message for f in frames if isinstance(f, Found)] == [f"with {query.removesuffix(' i')} inside"]
    assert frames[-1] == Searched("lobby", 1)


async def test_search_folds_case_and_normalization_newest_first_at_most_50(
    start: Start, clients: Callable[[int], Awaitable[LineClient]],
) -> None:
    server = await start(flood_rate=0.0)
    bob = await clients(server.port)
    await join(bob, "bob")
    await say(server, bob, "bob", ["Straße", "STRASSE", "e\u0301cole", "ÉCOLE", "안녕하세요", "다른 말"])
    await say(server, bob, "bob", [f"hit {i}" for i in range(60)])

    async def search(query: str) -> list[str]:
        await bob.send(f"017#lobby#{query}")
        frames = await bob.recv_until(Searched)
        return [f.message for f in frames if isinstance(f, Found)]

    assert await search("strasse") == ["STRASSE", "Straße"]
    assert await search("École") == ["ÉCOLE", "e\u0301cole"]
    assert await search("녕하") == ["안녕하세요"]
    hits = await search("HIT ")
    assert hits == [f"hit {i}" for i in range(59, 9, -1)]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_longest_message_is_stored_and_returned_byte_for_byte(
    start: Start, clients: Callable[[int], Awaitable[LineClient]], kind: str, request: pytest.FixtureRequest,
) -> None:
    server = await (start(database=request.getfixturevalue("postgres_url")) if kind == "postgresql" else start())
    bob = await clients(server.port)
    await join(bob, "bob")
    prefix = "002#bob#"
    allowed = "".join(chr(c) for c in range(0x20, 0x7F)) + "\t한글 ﬃ 𝄞 e\u0301 \u200d👩‍👩‍👧 #"
    message = (allowed * 200).encode()[:4095 - len(prefix)].decode(errors="ignore")
    line = prefix + message
    assert len(line.encode()) <= 4095  # 4,096 with the LF
    await bob.send(line)
    await bob.sync()
    assert server.gate is not None and await server.gate.drain(TIMEOUT)
    older, _ = await page(bob, "", 1)
    assert older[0].message == message
    assert older[0].message.encode() == message.encode()
    await bob.send(f"017#lobby#{message[-40:]}")  # and found by its own text, whatever it holds
    frames = await bob.recv_until(Searched)
    assert [f.message for f in frames if isinstance(f, Found)] == [message]


async def test_searches_have_their_own_bucket(start: Start, clients: Callable[[int], Awaitable[LineClient]]) -> None:
    server = await start(flood_rate=10.0, flood_burst=20, search_rate=0.001, search_burst=3)
    bob = await clients(server.port)
    await join(bob, "bob")
    for _ in range(3):
        await bob.send("017#lobby#anything")
        assert (await bob.recv_until(Searched))[-1] == Searched("lobby", 0)
    assert await refused(bob, "017#lobby#anything") is ErrorReason.FLOOD
    await say(server, bob, "bob", ["messages still go"])  # the message bucket is untouched
    older, _ = await page(bob, "", 1)
    assert [o.message for o in older] == ["messages still go"]


async def test_frames_sent_while_a_query_runs_wait_in_order(
    start: Start, clients: Callable[[int], Awaitable[LineClient]],
) -> None:
    server = await start()
    bob = await clients(server.port)
    await join(bob, "bob")
    await bob.send("016#lobby##5\n006#after\n017#lobby#zz\n006#last")
    frames = [type(f).__name__ for f in await bob.recv_until(lambda f: getattr(f, "token", None) == "last")]
    assert frames == ["Page", "Pong", "Searched", "Pong"]


async def test_without_a_store_there_is_no_141_and_016_is_unavailable(
    make_server: Start, clients: Callable[[int], Awaitable[LineClient]],
) -> None:
    server = await make_server(history=5)  # --database memory: today's behaviour
    bob = await clients(server.port)
    await bob.join("bob")
    assert await bob.sync() == []
    assert await refused(bob, "016#lobby##5") is ErrorReason.UNAVAILABLE


async def test_the_legacy_port_never_gets_141(start: Start, clients: Callable[[int], Awaitable[LineClient]]) -> None:
    server = await start(history=5)
    assert server.legacy_port is not None
    bob = await clients(server.port)
    await join(bob, "bob")
    await say(server, bob, "bob", ["before"])
    reader, writer = await asyncio.open_connection("127.0.0.1", server.legacy_port)
    try:
        writer.write("001#레거시".encode())
        await writer.drain()
        got = b""
        while b"before" not in got:
            got += await asyncio.wait_for(reader.read(4096), TIMEOUT)
        await say(server, bob, "bob", ["after"])
        while b"after" not in got:
            got += await asyncio.wait_for(reader.read(4096), TIMEOUT)
        text = got.decode()
        assert "이전 메시지" not in text and "141" not in text
    finally:
        writer.close()


async def test_a_message_sent_during_a_join_is_history_or_live_never_both_never_neither(
    start: Start, clients: Callable[[int], Awaitable[LineClient]],
) -> None:
    from tcp_server.protocol import Message

    server = await start(history=1000)
    bob = await clients(server.port)
    await join(bob, "bob")
    count = 300
    halfway = asyncio.Event()

    async def talk() -> None:
        for i in range(count):
            await bob.send(f"002#bob#{i}")
            if i == count // 2:
                halfway.set()
            await asyncio.sleep(0)  # let carol's join land somewhere in the stream (and in a batch being written)

    await say(server, bob, "bob", ["-1"])
    talker = asyncio.create_task(talk())
    await asyncio.wait_for(halfway.wait(), TIMEOUT)
    carol = await clients(server.port)
    await carol.send("001#carol")
    await asyncio.wait_for(talker, TIMEOUT)
    await bob.send("002#bob#end")
    frames = await carol.recv_until(Message("bob", "end"))
    history = [int(f.message) for f in frames if isinstance(f, History)]
    live = [int(f.message) for f in frames if isinstance(f, Message) and f.message != "end"]
    assert history[0] == -1
    assert history + live == list(range(-1, count))  # every message exactly once, in order


async def test_retention_deletes_past_the_bounds_at_start(
    start: Start, clients: Callable[[int], Awaitable[LineClient]],
) -> None:
    server = await start()
    bob = await clients(server.port)
    await join(bob, "bob")
    await say(server, bob, "bob", [f"r{i}" for i in range(10)])
    await server.close(timeout=2.0)
    again = await start(history_max=4)
    assert again.store is not None
    kept: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while kept != ["r6", "r7", "r8", "r9"]:  # the retention task runs at start, in the background: polled
        assert loop.time() < deadline, kept
        kept = [m.text for m in await again.store.before("lobby", None, 100)]
        await asyncio.sleep(0.02)
