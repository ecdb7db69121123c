"""The accounts table (migration 0003) on a real SQLite file and a real private PostgreSQL, the registry
of keys held in memory, and messages that remember whether their author was logged in."""

from __future__ import annotations

import pathlib
import sqlite3
from collections.abc import AsyncIterator

import pytest
from alembic import command
from sqlalchemy import create_engine

from tcp_server.accounts.registry import AccountRegistry
from tcp_server.store import parse_database
from tcp_server.store.accounts import AccountExists, AccountStore
from tcp_server.store.db import MessageStore, StoredMessage
from tcp_server.store.migrate import alembic_config, head


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[MessageStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'chat.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = await MessageStore.open(parse_database(url))
    yield opened
    await opened.close()


def test_head_is_0004() -> None:
    assert head() == "0004"  # 0004: the SQLite search index filled behind the commit


async def test_create_get_update_delete(store: MessageStore) -> None:
    accounts = AccountStore(store.engine)
    assert await accounts.get("alice") is None
    await accounts.create("alice", "Alice", "$argon2id$fake")
    found = await accounts.get("alice")
    assert found is not None and found.display == "Alice" and not found.locked
    assert "fake" not in repr(found)
    with pytest.raises(AccountExists):
        await accounts.create("alice", "ALICE", "$argon2id$other")
    assert await accounts.set_hash("alice", "$argon2id$new")
    assert await accounts.set_locked("alice", True)
    found = await accounts.get("alice")
    assert found is not None and found.hash == "$argon2id$new" and found.locked
    assert found.updated >= found.created
    assert await accounts.keys() == {"alice": "Alice"}
    assert [a.key for a in await accounts.all()] == ["alice"]
    assert await accounts.delete("alice")
    assert not await accounts.delete("alice")
    assert not await accounts.set_hash("alice", "x")
    assert await accounts.get("alice") is None


async def test_registry_loads_and_keeps_keys(store: MessageStore) -> None:
    accounts = AccountStore(store.engine)
    await accounts.create("bob", "Bob", "h")
    registry = AccountRegistry(accounts)
    assert not registry.registered("bob")
    await registry.refresh()
    assert registry.registered("bob") and len(registry) == 1
    await store.close()  # the database goes away: the keys are still held
    assert registry.registered("bob")
    registry.add("carol", "Carol")
    registry.remove("bob")
    assert registry.registered("carol") and not registry.registered("bob")


async def test_messages_remember_account(store: MessageStore) -> None:
    await store.write([StoredMessage("lobby", 1, 1, "bob", "bob", "guest line"),
                       StoredMessage("lobby", 2, 2, "Alice", "alice", "account line", account=True)])
    rows = await store.before("lobby", None, 10)
    assert [(m.text, m.account) for m in rows] == [("guest line", False), ("account line", True)]


async def test_0002_database_migrates_with_messages_kept(tmp_path: pathlib.Path) -> None:
    """A database at 0002 with messages: 0003 adds the column (false for the old rows) and the table."""
    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
        conn.exec_driver_sql("INSERT INTO messages (room, seq, ts, author, author_key, body, folded) "
                             "VALUES ('lobby', 1, 1, 'bob', 'bob', 'old line', 'old line')")
    engine.dispose()
    opened = await MessageStore.open(parse_database(f"sqlite:///{path}"))
    try:
        rows = await opened.before("lobby", None, 10)
    finally:
        await opened.close()
    assert [(m.text, m.account) for m in rows] == [("old line", False)]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM accounts").fetchone() == (0,)
