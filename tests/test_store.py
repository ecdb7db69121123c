"""The durable history (``--database``) on a real SQLite file and a real private PostgreSQL.

What survives a restart (and a ``kill -9``), that a message is committed before any member sees it,
the migrations' refusals and backup, the flags, and that no database library logs a message's text.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tcp_server import ChatServer
from tcp_server.config import parse_config
from tcp_server.protocol import History, Message, UserList
from tcp_server.store import parse_database
from tcp_server.store.db import MessageStore, StoredMessage, fold
from tcp_server.store.migrate import SchemaTooNew
from tests.conftest import server_config
from tests.helpers import TIMEOUT, LineClient
from tests.redis_fixtures import free_port

Start = Callable[..., Awaitable[ChatServer]]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """A fresh database of either kind: an SQLite file, or a database in the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'chat.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def open_store() -> AsyncIterator[Callable[[str], Awaitable[MessageStore]]]:
    stores: list[MessageStore] = []

    async def open_(url: str) -> MessageStore:
        store = await MessageStore.open(parse_database(url))
        stores.append(store)
        return store

    yield open_
    for store in stores:
        await store.close()


@pytest.fixture
async def durable_servers() -> AsyncIterator[Start]:
    """Servers on a database; each closed after the test (a test may close one itself first)."""
    servers: list[ChatServer] = []

    async def start(**overrides: object) -> ChatServer:
        server = ChatServer(server_config(**overrides))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close(timeout=2.0)


async def joined(port: int, name: str) -> tuple[LineClient, list[History]]:
    client = await LineClient.connect("127.0.0.1", port)
    frames = await client.join(name)
    assert isinstance(frames[-1], UserList)
    frames = await client.sync()
    return client, [f for f in frames if isinstance(f, History)]


async def test_the_history_survives_a_restart_of_the_server(database: str, durable_servers: Start) -> None:
    server = await durable_servers(database=database, history=3)
    bob, history = await joined(server.port, "bob")
    assert history == []
    for i in range(5):
        await bob.send(f"002#bob#m{i} # 한글 %_")
    await bob.sync()
    await bob.close()
    await server.close(timeout=2.0)

    again = await durable_servers(database=database, history=3)
    carol, history = await joined(again.port, "carol")
    assert [(h.sender, h.message) for h in history] == [("bob", f"m{i} # 한글 %_") for i in (2, 3, 4)]
    await carol.send("002#carol#after")
    await carol.sync()
    await carol.close()
    store = again.store
    assert store is not None and again.gate is not None
    assert await again.gate.drain(TIMEOUT)  # committed (the sender's pong may overtake its message)
    kept = await store.before("lobby", None, 10)
    assert [(m.seq, m.text) for m in kept][-2:] == [(5, "m4 # 한글 %_"), (6, "after")]  # the order goes on


async def test_a_message_is_committed_before_anyone_receives_it(
    database: str, durable_servers: Start, open_store: Callable[[str], Awaitable[MessageStore]],
) -> None:
    server = await durable_servers(database=database)
    reader = await open_store(database)  # another connection: sees only what is committed
    alice, _ = await joined(server.port, "alice")
    bob, _ = await joined(server.port, "bob")
    for i in range(20):
        await alice.send(f"002#alice#n{i}")
        frame = await bob.recv_until(Message)
        assert frame[-1] == Message("alice", f"n{i}")
        kept = await reader.before("lobby", None, 1)
        assert [m.text for m in kept] == [f"n{i}"]
    await alice.close()
    await bob.close()


async def test_a_flood_is_written_in_batches_in_the_rooms_order(
    database: str, durable_servers: Start,
) -> None:
    server = await durable_servers(database=database, history=1000)
    alice, _ = await joined(server.port, "alice")
    bob, _ = await joined(server.port, "bob")
    count = 300
    await alice.send("".join(f"002#alice#{i}\n" for i in range(count)))
    frames = await bob.recv_until(Message("alice", str(count - 1)))
    live = [int(f.message) for f in frames if isinstance(f, Message)]
    assert live == list(range(count))
    assert server.store is not None
    kept = await server.store.before("lobby", None, 1000)
    assert [(m.seq, m.text) for m in kept] == [(i + 1, str(i)) for i in range(count)]
    assert {m.author_key for m in kept} == {"alice"}
    await alice.close()
    await bob.close()


async def test_store_pages_searches_literally_and_prunes(
    database: str, open_store: Callable[[str], Awaitable[MessageStore]],
) -> None:
    store = await open_store(database)
    from sqlalchemy import text

    async with store.engine.connect() as conn:  # migration 0002's index is there, so searches use it
        if store.postgres:
            found_index = await conn.execute(
                text("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_messages_folded_trgm'"))
            assert found_index.scalar() == 1
        else:
            assert store.fts
    texts = ["100% sure", "a_b", "ÉCOLE", "école", "ﬃ ligature", "SELECT * FROM messages; --", "안녕하세요 여러분",
             "it's \"quoted\"", "back\\slash", "NEAR(a b)", "plain"]
    await store.write([StoredMessage("lobby", i + 1, 1000 + i, "bob", "bob", t) for i, t in enumerate(texts)])
    await store.write([StoredMessage("other", 1, 5000, "eve", "eve", "100% other room")])
    assert [m.text for m in await store.before("lobby", 4, 2)] == ["a_b", "ÉCOLE"]
    assert [m.text for m in await store.before("lobby", None, 2)] == ["NEAR(a b)", "plain"]

    async def found(query: str) -> list[str]:
        return [m.text for m in await store.search("lobby", query, 50)]

    assert await found("%") == ["100% sure"]
    assert await found("_") == ["a_b"]
    assert await found("*") == ["SELECT * FROM messages; --"]
    assert await found("\"") == ["it's \"quoted\""]
    assert await found("\\") == ["back\\slash"]
    assert await found("near(") == ["NEAR(a b)"]
    assert await found("École") == ["école", "ÉCOLE"]  # newest first
    assert await found("FFI") == ["ﬃ ligature"]  # full case folding
    assert await found("하세") == ["안녕하세요 여러분"]
    assert await found("'; DROP TABLE messages; --") == []
    assert fold("E\u0301COLE") == fold("École")  # NFC on both sides
    assert await store.prune("lobby", older_than_ms=1003, keep=None) == 3
    assert await store.prune("lobby", older_than_ms=None, keep=5) == 3
    assert [m.seq for m in await store.before("lobby", None, 50)] == [7, 8, 9, 10, 11]
    assert await found("plain") == ["plain"]
    assert await store.delete_author("bob", "lobby") == 5
    assert await found("plain") == [] and await found("near(") == []  # gone from the index too
    assert [m.text async for m in store.export()] == ["100% other room"]


async def test_searches_the_index_cannot_serve_read_a_bounded_tail_and_all_come_newest_first(
    database: str, open_store: Callable[[str], Awaitable[MessageStore]],
) -> None:
    """Under 3 characters no trigram helps: the scan reads the room's newest ``scan_bound`` messages only.
    3+ characters use the index over the whole room; either way the newest match comes first."""
    store = await open_store(database)
    store.scan_bound = 10
    texts = ["펭귄 zeppelin first"] + [f"filler {i}" for i in range(28)] + ["펭귄 zeppelin last"]
    await store.write([StoredMessage("lobby", i + 1, 1000 + i, "bob", "bob", t) for i, t in enumerate(texts)])
    await store.write([StoredMessage("other", 1, 5000, "eve", "eve", "펭귄 elsewhere")])

    async def found(query: str, limit: int = 50) -> list[str]:
        return [m.text for m in await store.search("lobby", query, limit)]

    assert await found("펭귄") == ["펭귄 zeppelin last"]  # the first is 29 messages back: past the bound
    assert await found("zeppelin") == ["펭귄 zeppelin last", "펭귄 zeppelin first"]  # the index: all of them
    assert await found("ZEPPELIN", 1) == ["펭귄 zeppelin last"]  # the newest first, however many match
    assert await found("filler", 3) == ["filler 27", "filler 26", "filler 25"]
    store.scan_bound = 0  # no bound: the whole room
    assert await found("펭귄") == ["펭귄 zeppelin last", "펭귄 zeppelin first"]


async def test_a_database_newer_than_the_code_is_refused(database: str) -> None:
    store = await MessageStore.open(parse_database(database))
    async with store.engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    await store.close()
    with pytest.raises(SchemaTooNew, match="newer than this chat-server knows"):
        await MessageStore.open(parse_database(database))


def test_an_sqlite_file_is_backed_up_before_a_migration(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "chat.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE keepsake (x TEXT)")
        db.execute("INSERT INTO keepsake VALUES ('precious')")
    db.close()

    async def open_and_close() -> None:
        store = await MessageStore.open(parse_database(f"sqlite:///{path}"))
        await store.close()

    asyncio.run(open_and_close())
    backups = list(tmp_path.glob("chat.db.none-*.bak"))
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as db:
        assert db.execute("SELECT x FROM keepsake").fetchall() == [("precious",)]
    db.close()
    asyncio.run(open_and_close())  # at head now: no second backup
    assert len(list(tmp_path.glob("chat.db.*.bak"))) == 1


def test_the_flags_default_to_an_sqlite_file_in_the_data_directory(tmp_path: pathlib.Path) -> None:
    cfg = parse_config(["--data-dir", str(tmp_path)], environ={})
    assert cfg.database == f"sqlite:///{tmp_path / 'chat.db'}"
    cfg = parse_config([], environ={"CHAT_DATABASE": "memory", "CHAT_HISTORY_DAYS": "30", "CHAT_HISTORY_MAX": "9"})
    assert (cfg.database, cfg.history_days, cfg.history_max) == ("memory", 30.0, 9)
    assert parse_config(["--redis", "redis://127.0.0.1:1/0"], environ={}).database == "memory"
    shared = parse_config(["--redis", "redis://127.0.0.1:1/0", "--database", "postgres://u:p@db/chat"], environ={})
    assert shared.database == "postgres://u:p@db/chat"  # several nodes, one PostgreSQL


@pytest.mark.parametrize(("argv", "words"), [
    (["--redis", "redis://127.0.0.1:1/0", "--database", "sqlite:///x.db"], "an SQLite file"),
    (["--database", "mysql://x"], "--database must be"),
    (["--database", "sqlite:///"], "needs a file path"),
    (["--history-days", "-1"], "--history-days"),
    (["--history-max", "-1"], "--history-max"),
])
def test_bad_database_settings_stop_the_server_naming_why(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse_config(argv, environ={})
    assert words in capsys.readouterr().err


async def test_no_database_library_logs_a_message_or_a_parameter(
    database: str, durable_servers: Start, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy", "sqlalchemy.engine", "aiosqlite", "asyncpg", "alembic"):
        logging.getLogger(name).setLevel(logging.DEBUG)  # even someone turning them up
    server = await durable_servers(database=database)
    alice, _ = await joined(server.port, "alice")
    await alice.send("002#alice#secret-marker-7f3a")
    await alice.sync()
    assert server.store is not None and server.gate is not None
    assert await server.gate.drain(TIMEOUT)
    await server.store.search("lobby", "secret-marker", 5)
    await alice.close()
    leaked = [r for r in caplog.records if "secret-marker" in r.getMessage() or "secret-marker" in str(r.args)]
    assert leaked == []


def spawn(argv: list[str], log_path: pathlib.Path) -> subprocess.Popen[bytes]:
    """A chat-server process, its output in ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


async def test_every_message_a_client_received_is_kept_after_kill_9(tmp_path: pathlib.Path) -> None:
    database = f"sqlite:///{tmp_path / 'chat.db'}"
    port = free_port()
    argv = [sys.executable, "-m", "tcp_server", "--host", "127.0.0.1", "--port", str(port), "--database", database,
            "--history", "1000", "--flood-rate", "0", "--resume-grace", "0", "--no-uvloop"]
    async def start() -> subprocess.Popen[bytes]:
        proc = spawn(argv, tmp_path / "server.log")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            try:
                probe = await LineClient.connect("127.0.0.1", port)
            except OSError:
                if loop.time() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise AssertionError("the server did not start") from None
                await asyncio.sleep(0.05)
                continue
            await probe.close()
            return proc

    proc = await start()
    try:
        alice, _ = await joined(port, "alice")
        bob, _ = await joined(port, "bob")
        received: list[str] = []
        sent = 0
        while len(received) < 1000:  # a flood that keeps up to 200 messages in flight when the kill comes
            await alice.send("".join(f"002#alice#{i}\n" for i in range(sent, sent + 50)))
            sent += 50
            while len(received) < sent - 200:
                frame = await bob.recv()
                if isinstance(frame, Message):
                    received.append(frame.message)
        await alice.send("".join(f"002#alice#{i}\n" for i in range(sent, sent + 200)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
        try:
            while True:
                frame = await bob.recv()
                if isinstance(frame, Message):
                    received.append(frame.message)
        except (ConnectionError, AssertionError):
            pass
        await alice.close()
        await bob.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)

    proc = await start()
    try:
        carol, history = await joined(port, "carol")
        store = await MessageStore.open(parse_database(database))
        try:
            kept = [m.text for m in await store.before("lobby", None, 10_000_000)]
        finally:
            await store.close()
        assert len(received) >= 1000
        assert kept[:len(received)] == received  # all of it, in order (and maybe more that nobody saw)
        assert [h.message for h in history] == kept[-1000:]  # the newcomer's 111: the newest of it
        await carol.close()
    finally:
        proc.terminate()
        proc.wait(timeout=TIMEOUT)


def test_an_older_schema_is_backed_up_then_migrated_and_its_messages_are_searchable(tmp_path: pathlib.Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    from tcp_server.store.migrate import alembic_config

    path = tmp_path / "chat.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:  # a database as the first release left it
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.exec_driver_sql("INSERT INTO messages (room, seq, ts, author, author_key, body, folded) "
                             "VALUES ('lobby', 1, 5, 'bob', 'bob', 'Old News', 'old news')")
        conn.commit()
    engine.dispose()

    async def reopen() -> list[str]:
        store = await MessageStore.open(parse_database(f"sqlite:///{path}"))
        try:
            return [m.text for m in await store.search("lobby", "OLD NEW", 5)]
        finally:
            await store.close()

    assert asyncio.run(reopen()) == ["Old News"]  # the index was built from what was there
    (backup,) = tmp_path.glob("chat.db.0001-*.bak")
    with sqlite3.connect(backup) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
    db.close()


async def test_retention_by_count_holds_with_gaps_in_the_numbers(
    database: str, open_store: Callable[[str], Awaitable[MessageStore]],
) -> None:
    store = await open_store(database)
    seqs = [5 << 20, (5 << 20) + 1, 9 << 20, 12 << 20, (12 << 20) + 7]  # a shared room's numbers
    await store.write([StoredMessage("lobby", s, 1000, "bob", "bob", str(i)) for i, s in enumerate(seqs)])
    assert await store.prune("lobby", older_than_ms=None, keep=2) == 3
    assert [m.seq for m in await store.before("lobby", None, 10)] == seqs[-2:]
    assert await store.prune("lobby", older_than_ms=None, keep=2) == 0


async def test_nodes_starting_at_once_migrate_once(postgres_url: str) -> None:
    """The migrations hold an advisory lock: the other nodes wait, then find the schema at head."""
    stores = await asyncio.gather(*(MessageStore.open(parse_database(postgres_url)) for _ in range(3)))
    try:
        keys = {await store.cursor_key() for store in stores}
        assert len(keys) == 1  # one key, whoever made it
        await stores[0].write([StoredMessage("lobby", 1, 1, "bob", "bob", "hi")])
        assert [m.text for m in await stores[2].before("lobby", None, 5)] == ["hi"]
    finally:
        for store in stores:
            await store.close()


@pytest.mark.parametrize("case", ["newer", "unreachable"])
def test_chat_server_refuses_a_database_it_cannot_use_saying_why(case: str, tmp_path: pathlib.Path) -> None:
    if case == "newer":
        database = f"sqlite:///{tmp_path / 'chat.db'}"

        async def newer() -> None:
            store = await MessageStore.open(parse_database(database))
            async with store.engine.begin() as conn:
                from sqlalchemy import text

                await conn.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
            await store.close()

        asyncio.run(newer())
        expected = "newer than this chat-server knows"
    else:
        database = f"postgresql://nobody@127.0.0.1:{free_port()}/chat"  # nothing listens there
        expected = "cannot open the history database postgresql://nobody@127.0.0.1"
    result = subprocess.run([sys.executable, "-m", "tcp_server", "--port", "0", "--database", database],
                            capture_output=True, text=True, timeout=TIMEOUT * 6)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr


async def test_a_batch_written_twice_is_stored_once(
    database: str, open_store: Callable[[str], Awaitable[MessageStore]],
) -> None:
    """A retry after a commit whose answer was lost, or two nodes storing what they both delivered."""
    store = await open_store(database)
    batch = [StoredMessage("lobby", i, 1000 + i, "bob", "bob", f"once {i}") for i in (1, 2)]
    await store.write(batch)
    await store.write([*batch, StoredMessage("lobby", 3, 1003, "bob", "bob", "once 3")])
    assert [m.text for m in await store.before("lobby", None, 10)] == ["once 1", "once 2", "once 3"]
    assert [m.text for m in await store.search("lobby", "once", 10)] == ["once 3", "once 2", "once 1"]


async def test_a_steady_flow_is_committed_in_batches_a_few_milliseconds_apart() -> None:
    """The gate's group commit: a message after a pause goes at once; under a steady flow batches start at
    least ``group_commit`` apart, so the commits (each of a fixed cost) are fewer than the messages."""
    import asyncio
    import time as _time
    from types import SimpleNamespace

    from tcp_server.protocol import Message as Msg
    from tcp_server.store.gate import StoredWindow, StoreGate

    starts: list[float] = []
    sizes: list[int] = []
    delivered: list[str] = []

    class FakeStore:
        async def write(self, batch: list[StoredMessage]) -> None:
            starts.append(_time.monotonic())
            sizes.append(len(batch))
            await asyncio.sleep(0.0005)

    room = SimpleNamespace(room_event=lambda frame, exclude: delivered.append(frame.message),
                           whisper=None, joined=None)
    gate = StoreGate(room, FakeStore(), StoredWindow(50, 1 << 20), "lobby",  # type: ignore[arg-type]
                     SimpleNamespace(history_dropped=0, history_write_failures=0),  # type: ignore[arg-type]
                     group_commit=0.01)
    gate.room_event(Msg("alice", "first", 1), None)
    await gate.drain(1.0)
    assert sizes == [1] and delivered == ["first"]  # after a pause: at once
    for i in range(60):  # 60 messages, 1 ms apart
        gate.room_event(Msg("alice", f"m{i}", 1), None)
        await asyncio.sleep(0.001)
    assert await gate.drain(1.0)
    assert delivered == ["first"] + [f"m{i}" for i in range(60)]  # all, in order, each after its commit
    assert sum(sizes) == 61 and len(sizes) <= 20  # batched: not one commit per message
    gaps = [b - a for a, b in zip(starts[1:], starts[2:], strict=False)]
    assert min(gaps) >= 0.009
