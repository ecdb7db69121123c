"""SQLite's search index filled behind the commit (migration 0004, ``tcp_server.store.sqlite_writer``).

A search never misses a message the index has not reached yet (the tail past the watermark is scanned),
the writer catches up on its own, erasures keep the index and the watermark true, and while the database
cannot be written the chat goes on live and the messages wait, then are written in order.
"""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace

import pytest

from tcp_server.protocol import Message, ServerNotice
from tcp_server.store import parse_database
from tcp_server.store.db import MessageStore, StoredMessage
from tcp_server.store.gate import StoredWindow, StoreGate
from tcp_server.store.sqlite_writer import WATERMARK
from tests.helpers import TIMEOUT, wait_until

Open = Callable[..., Awaitable[MessageStore]]


@pytest.fixture
async def open_store(tmp_path: pathlib.Path) -> AsyncIterator[Open]:
    stores: list[MessageStore] = []

    async def open_(index_every: float = 3600.0) -> MessageStore:
        store = await MessageStore.open(parse_database(f"sqlite:///{tmp_path / 'chat.db'}"), index_every=index_every)
        assert store.fts  # this SQLite has the trigram tokenizer: the index path is what is tested
        stores.append(store)
        return store

    yield open_
    for store in stores:
        await store.close()


def mark(store: MessageStore) -> int:
    """The watermark as the database holds it (a connection of the test's own)."""
    assert store.url.path is not None
    with sqlite3.connect(store.url.path) as db:
        found = db.execute("SELECT value FROM meta WHERE key = ?", (WATERMARK,)).fetchone()
    db.close()
    return int(found[0])


def integrity(store: MessageStore) -> None:
    """FTS5's own check that the index holds exactly the content table's rows (raises if not)."""
    assert store.url.path is not None
    with sqlite3.connect(store.url.path) as db:
        db.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
    db.close()


def lines(start: int, texts: list[str], author: str = "bob") -> list[StoredMessage]:
    return [StoredMessage("lobby", start + i, 1000 + start + i, author, author, t) for i, t in enumerate(texts)]


async def test_messages_the_index_has_not_reached_are_found_and_never_twice(open_store: Open) -> None:
    store = await open_store()  # no background step within the test: only catch_up indexes
    await store.write(lines(1, ["zeppelin one", "filler", "Zeppelin two"]))
    assert mark(store) == 0  # nothing indexed yet ...
    found = [m.text for m in await store.search("lobby", "zeppelin", 50)]
    assert found == ["Zeppelin two", "zeppelin one"]  # ... and the search found them anyway
    assert await store.catch_up() == 3
    assert mark(store) == 3
    await store.write(lines(4, ["zeppelin three", "zeppelin four"]))  # a tail on top of the index
    found = [m.text for m in await store.search("lobby", "ZEPPELIN", 50)]
    assert found == ["zeppelin four", "zeppelin three", "Zeppelin two", "zeppelin one"]  # newest first, once
    assert [m.text for m in await store.search("lobby", "zeppelin", 3)] == found[:3]  # the limit spans both
    assert [m.text for m in await store.search("lobby", "zeppelin", 1)] == found[:1]
    await store.write([StoredMessage("other", 1, 5000, "eve", "eve", "zeppelin elsewhere")])
    assert len(await store.search("lobby", "zeppelin", 50)) == 4  # the tail's scan keeps to its room
    assert await store.catch_up() == 3
    integrity(store)


async def test_the_writer_indexes_in_the_background_while_messages_arrive(open_store: Open) -> None:
    store = await open_store(index_every=0.05)
    await store.write(lines(1, [f"background {i}" for i in range(20)]))
    newest = 20
    while mark(store) < 20:  # a steady flow: the writer takes index steps between the batches
        newest += 1
        assert newest <= 1000, "the index never moved while messages arrived"
        await store.write(lines(newest, [f"background {newest}"]))
        await asyncio.sleep(0.005)  # a pace, not a synchronisation: the flow goes on until the index moves
    await wait_until(lambda: mark(store) == newest, what="the index to catch up once the flow stops")
    assert await store.catch_up() == 0  # nothing was left for it
    integrity(store)
    assert len(await store.search("lobby", "background", 200)) == newest


async def test_erasing_keeps_the_index_and_the_watermark_true(open_store: Open) -> None:
    """Deleting the newest rows lets SQLite give their ids again: the watermark drops with them, or the
    next messages would count as indexed and no search would find them."""
    store = await open_store()
    await store.write(lines(1, [f"keep {i}" for i in range(8)]) + lines(9, ["gone a", "gone b"], author="eve"))
    await store.catch_up()
    assert mark(store) == 10
    await store.write(lines(11, ["gone c (not indexed yet)"], author="eve"))
    assert await store.delete_author("eve") == 3
    assert mark(store) == 8
    await store.write(lines(12, ["fresh words", "fresh again"]))  # take ids 9 and 10 again
    assert [m.text for m in await store.search("lobby", "fresh", 50)] == ["fresh again", "fresh words"]
    assert await store.search("lobby", "gone", 50) == []
    assert await store.catch_up() == 2
    integrity(store)
    assert [m.text for m in await store.search("lobby", "fresh", 50)] == ["fresh again", "fresh words"]
    assert await store.prune("lobby", older_than_ms=None, keep=3) == 7  # retention: indexed rows go cleanly
    integrity(store)
    assert [m.text for m in await store.search("lobby", "keep", 50)] == ["keep 7"]


async def test_a_locked_database_keeps_the_chat_live_and_the_messages_wait_in_order(open_store: Open) -> None:
    """The writer cannot commit (another process holds the write lock): the batch times out, the chat
    goes on live, everyone is told once each way, and the waiting messages are written in order."""
    store = await open_store()
    delivered: list[object] = []
    three = asyncio.Event()

    def room_event(frame: object, exclude: str | None) -> None:
        delivered.append(frame)
        if len([f for f in delivered if isinstance(f, Message)]) == 3:
            three.set()

    room = SimpleNamespace(room_event=room_event, whisper=None, joined=None)
    stats = SimpleNamespace(history_dropped=0, history_write_failures=0)
    gate = StoreGate(room, store, StoredWindow(50, 1 << 20), "lobby", stats,  # type: ignore[arg-type]
                     write_timeout=0.3)
    assert store.url.path is not None
    locker = sqlite3.connect(store.url.path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        for i in range(3):
            gate.room_event(Message("alice", f"during {i}", 1), None)
        await asyncio.wait_for(three.wait(), TIMEOUT)  # delivered once the batch timed out, not stored
        assert gate.degraded
        assert [f.message for f in delivered if isinstance(f, Message)] == ["during 0", "during 1", "during 2"]
        assert [f.text for f in delivered if isinstance(f, ServerNotice)] == [
            "The chat history is not being saved right now; messages still reach everyone."]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert await gate.drain(3 * TIMEOUT)
    assert not gate.degraded and stats.history_write_failures >= 1 and stats.history_dropped == 0
    assert [(m.seq, m.text) for m in await store.before("lobby", None, 10)] == [
        (1, "during 0"), (2, "during 1"), (3, "during 2")]
    assert [f.text for f in delivered if isinstance(f, ServerNotice)][-1] == "The chat history is being saved again."
    await gate.stop()
