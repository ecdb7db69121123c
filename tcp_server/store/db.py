"""The durable history: messages written in batches, read back by page, searched, exported, erased.

SQLAlchemy 2 Core on its async engines (aiosqlite for an SQLite file, asyncpg for PostgreSQL) for the
schema, the migrations and every query; the hot write of each batch goes beside it on the raw driver
(:mod:`.sqlite_writer`, :mod:`.pg_writer`: why, there).
Third-party loggers never print a message's text or a query's parameters: the engine hides
parameters and their levels are pinned (:func:`quiet_loggers`).
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import column, delete, event, func, literal_column, select, table, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .migrate import StoreError, backup_sqlite, check_current, upgrade
from .pg_writer import PgWriter
from .schema import messages, meta
from .sqlite_writer import INDEX_EVERY, WATERMARK, SqliteWriter
from .urls import DatabaseUrl

log = logging.getLogger("tcp_server.store")

THIRD_PARTY_LOGGERS = ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "alembic", "aiosqlite", "asyncpg")
CURSOR_KEY = "cursor_key"
CONNECT_TIMEOUT = 10.0
SCAN_BOUND = 20_000
"""A search no trigram index serves (under 3 characters) reads at most the room's newest this many numbers:
on a million messages that keeps it near the index's speed (BENCHMARKS.md, "Durable history")."""


def quiet_loggers() -> None:
    """Pin the database libraries' loggers at WARNING: at INFO/DEBUG they print statements and rows."""
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def describe(exc: BaseException) -> str:
    """An error of the database, for a log line: its kind only. A driver's message or detail may quote a
    row (a message's text), so none of it is logged."""
    orig = getattr(exc, "orig", None)
    return f"{type(exc).__name__} ({type(orig).__name__})" if orig is not None else type(exc).__name__


def fold(value: str) -> str:
    """What search compares, on both sides: NFC, case folded, NFC again (folding may denormalize)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).casefold())


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message as kept: its room's key, its place in the room's order, time (ms), author and text."""

    room: str
    seq: int
    ts: int
    author: str
    author_key: str
    text: str
    account: bool = False
    """Its author had logged in (an account's message, not a guest's)."""

    def row(self) -> dict[str, Any]:
        return {"room": self.room, "seq": self.seq, "ts": self.ts, "author": self.author,
                "author_key": self.author_key, "body": self.text, "folded": fold(self.text),
                "account": self.account}

    def values(self) -> tuple[str, int, int, str, str, str, str, bool]:
        """The row in the writers' column order (room, seq, ts, author, author_key, body, folded, account)."""
        return (self.room, self.seq, self.ts, self.author, self.author_key, self.text, fold(self.text), self.account)


def _message(row: Any) -> StoredMessage:
    return StoredMessage(row.room, row.seq, row.ts, row.author, row.author_key, row.body, bool(row.account))


_FTS = table("messages_fts", column("rowid"))
"""The FTS5 index of migration 0002 (SQLite), as far as queries join it."""

_COLUMNS = (messages.c.room, messages.c.seq, messages.c.ts, messages.c.author, messages.c.author_key,
            messages.c.body, messages.c.account)


class MessageStore:
    """One database: open (migrating it), write batches, read pages, search; close."""

    def __init__(self, url: DatabaseUrl, engine: AsyncEngine) -> None:
        self.url = url
        self.engine = engine
        self.postgres = url.kind == "postgresql"
        self.fts = False  # SQLite: the FTS5 trigram index of migration 0002 is there
        self.scan_bound = SCAN_BOUND
        self.writer: SqliteWriter | PgWriter | None = None  # the hot write path, made by open()

    @classmethod
    async def open(cls, url: DatabaseUrl, migrate: bool = True, index_every: float = INDEX_EVERY) -> MessageStore:
        """Connect and migrate (an SQLite file is backed up first if a migration will change it).

        Raises :class:`tcp_server.store.migrate.SchemaTooNew` for a database newer than this code.
        ``migrate=False`` (a reader such as ``chat-admin history export``): a database not at this
        code's revision is refused instead, and nothing is created. ``index_every``: seconds between the
        SQLite writer's steps of the search index (tests).
        """
        quiet_loggers()
        options: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": url.kind != "sqlite"}
        if url.kind == "sqlite":
            assert url.path is not None
            if not migrate and not url.path.exists():
                raise FileNotFoundError(f"no history database at {url.path}")
            url.path.parent.mkdir(parents=True, exist_ok=True)
            if migrate:
                backup_sqlite(url.path)
            options["connect_args"] = {"timeout": CONNECT_TIMEOUT}
        else:
            options["connect_args"] = {"timeout": CONNECT_TIMEOUT, "command_timeout": CONNECT_TIMEOUT}
        engine = create_async_engine(url.sqlalchemy_url(), **options)
        if url.kind == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        store = cls(url, engine)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(upgrade if migrate else check_current, url.safe())
                if url.kind == "sqlite":
                    found = await conn.execute(text(
                        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'"))
                    store.fts = found.scalar() is not None
            if url.kind == "sqlite":
                assert url.path is not None
                store.writer = SqliteWriter(url.path, store.fts, CONNECT_TIMEOUT, index_every)
            else:
                store.writer = PgWriter("postgresql://" + url.raw.split("://", 1)[1], CONNECT_TIMEOUT)
        except StoreError:
            await engine.dispose()
            raise
        except (OSError, TimeoutError, DBAPIError) as exc:  # no server there, refused, a locked file...
            await engine.dispose()
            reason = type(exc.orig).__name__ if isinstance(exc, DBAPIError) and exc.orig is not None else exc
            raise StoreError(f"cannot open the history database {url.safe()}: {reason}") from exc
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            await writer.close()
        await self.engine.dispose()

    async def catch_up(self) -> int:
        """SQLite: index every message written so far now (the writer does it in steps every
        :data:`.sqlite_writer.INDEX_EVERY` s); how many it took. Tests and benchmarks."""
        return await self.writer.catch_up() if isinstance(self.writer, SqliteWriter) else 0

    async def cursor_key(self) -> bytes:
        """The key that signs this database's cursors: made once, shared by every node, kept across restarts."""
        async with self.engine.begin() as conn:  # several nodes starting at once: the first one's key wins
            await conn.execute(self._insert(meta).values(key=CURSOR_KEY, value=secrets.token_hex(32))
                               .on_conflict_do_nothing(index_elements=["key"]))
        async with self.engine.connect() as conn:
            found = (await conn.execute(select(meta.c.value).where(meta.c.key == CURSOR_KEY))).scalar_one()
        return bytes.fromhex(found)

    def _insert(self, target: Any) -> Any:
        """The dialect's INSERT (it knows ON CONFLICT)."""
        return postgresql_insert(target) if self.postgres else sqlite_insert(target)

    async def write(self, batch: Sequence[StoredMessage]) -> None:
        """One transaction for the whole batch: committed when this returns."""
        if not batch:
            return
        # Idempotent: every node of a shared room stores what it delivers (each message once), and a batch
        # retried after a commit whose answer was lost (a timeout) must not fail on its own rows forever.
        if self.writer is None:
            raise StoreError("the history database is closed")
        await self.writer.write([m.values() for m in batch])

    async def last_seq(self, room: str) -> int:
        """The room's newest sequence number (0: nothing kept)."""
        async with self.engine.connect() as conn:
            found = (await conn.execute(select(func.max(messages.c.seq)).where(messages.c.room == room))).scalar()
        return int(found or 0)

    async def before(self, room: str, seq: int | None, limit: int) -> list[StoredMessage]:
        """At most ``limit`` messages older than ``seq`` (None: the newest), oldest first."""
        query = select(*_COLUMNS).where(messages.c.room == room)
        if seq is not None:
            query = query.where(messages.c.seq < seq)
        query = query.order_by(messages.c.seq.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_message(row) for row in reversed(rows)]

    async def search(self, room: str, query: str, limit: int) -> list[StoredMessage]:
        """Messages whose text holds ``query`` (literal, case folded), newest first.

        No character of the query is syntax, whatever it is. SQLite: the FTS5 trigram index finds the
        candidates for a query of 3+ characters (the query as one quoted phrase, its quotes doubled),
        newest first, and ``instr`` on the folded column decides; the messages the writer has not indexed
        yet (past the watermark, at most ~:data:`.sqlite_writer.INDEX_EVERY` s of them) are scanned
        first, so a search never misses a message. PostgreSQL: ``LIKE`` with ``\\``,
        ``%`` and ``_`` escaped (the pg_trgm index serves it). A query no trigram index can serve (under
        3 characters, or SQLite without FTS5) scans ``instr``/``LIKE`` over the room's newest
        :attr:`scan_bound` messages only, newest first: its cost is bounded however big the room grows.
        """
        needle = fold(query)
        condition = [messages.c.room == room]
        indexed = len(needle) >= 3 and (self.postgres or self.fts)
        if indexed and not self.postgres:
            return await self._search_fts(room, needle, limit)
        if self.postgres:
            escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            condition.append(messages.c.folded.like(f"%{escaped}%", escape="\\"))
        else:
            condition.append(func.instr(messages.c.folded, needle) > 0)
        async with self.engine.connect() as conn:
            if not indexed and self.scan_bound:
                # The bound as a number, not a subquery: PostgreSQL's planner then sees a range of the
                # (room, seq) index to read, not a trigram index it would scan whole for 2 characters.
                newest = (await conn.execute(select(func.max(messages.c.seq))
                                             .where(messages.c.room == room))).scalar()
                condition.append(messages.c.seq > int(newest or 0) - self.scan_bound)
            stmt = select(*_COLUMNS).where(*condition).order_by(messages.c.seq.desc()).limit(limit)
            rows = (await conn.execute(stmt)).all()
        return sorted((_message(row) for row in rows), key=lambda m: -m.seq)

    async def _search_fts(self, room: str, needle: str, limit: int) -> list[StoredMessage]:
        """SQLite, 3+ characters: the unindexed tail by ``instr``, then the FTS5 index below the watermark.

        Both newest first: on SQLite one node writes a room, in the room's order, so the rowid order is
        the seq order. The index drives, its newest row first (FTS5 walks a term's rowids in either
        order), so a frequent word stops after ``limit`` matches instead of sorting all of them.
        """
        matches = func.instr(messages.c.folded, needle) > 0
        async with self.engine.connect() as conn:
            found = (await conn.execute(select(meta.c.value).where(meta.c.key == WATERMARK))).scalar()
            low = int(found or 0)
            rows = list((await conn.execute(
                select(*_COLUMNS).where(messages.c.id > low, messages.c.room == room, matches)
                .order_by(messages.c.id.desc()).limit(limit))).all())
            if len(rows) < limit:  # the index below the watermark read first: a row is never in both
                phrase = '"' + needle.replace('"', '""') + '"'
                rows += (await conn.execute(
                    select(*_COLUMNS).select_from(_FTS.join(messages, messages.c.id == _FTS.c.rowid))
                    .where(literal_column("messages_fts").op("MATCH")(phrase), _FTS.c.rowid <= low,
                           messages.c.room == room, matches)
                    .order_by(_FTS.c.rowid.desc()).limit(limit - len(rows)))).all()
        return sorted((_message(row) for row in rows), key=lambda m: -m.seq)

    async def _lower_watermark(self, conn: Any) -> None:
        """SQLite, after a delete: SQLite may hand a deleted newest ``id`` to the next row, which the
        watermark would then claim is indexed; it drops to the newest ``id`` left (in the same transaction)."""
        if self.fts:
            await conn.execute(text(
                "UPDATE meta SET value = CAST(min(CAST(value AS INTEGER), "
                "coalesce((SELECT max(id) FROM messages), 0)) AS TEXT) WHERE key = :key"), {"key": WATERMARK})

    async def delete_author(self, author_key: str, room: str | None = None) -> int:
        """Erase an author's stored messages (in one room, or all); how many."""
        stmt = delete(messages).where(messages.c.author_key == author_key)
        if room is not None:
            stmt = stmt.where(messages.c.room == room)
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt)
            await self._lower_watermark(conn)
        return int(result.rowcount)

    async def export(self, room: str | None = None, since_ms: int | None = None,
                     batch: int = 1000) -> AsyncIterator[StoredMessage]:
        """Every kept message (of ``room``, from ``since_ms`` on), by room then order, in batches."""
        last: tuple[str, int] = ("", -1)
        while True:
            stmt = select(*_COLUMNS)
            if room is not None:
                stmt = stmt.where(messages.c.room == room)
            if since_ms is not None:
                stmt = stmt.where(messages.c.ts >= since_ms)
            stmt = stmt.where((messages.c.room > last[0]) | ((messages.c.room == last[0]) & (messages.c.seq > last[1])))
            stmt = stmt.order_by(messages.c.room, messages.c.seq).limit(batch)
            async with self.engine.connect() as conn:
                rows = (await conn.execute(stmt)).all()
            for row in rows:
                yield _message(row)
            if len(rows) < batch:
                return
            last = (rows[-1].room, rows[-1].seq)

    async def prune(self, room: str, older_than_ms: int | None, keep: int | None, batch: int = 1000) -> int:
        """Retention, one batch: delete at most ``batch`` of ``room``'s messages older than ``older_than_ms``
        or beyond the newest ``keep``; how many went (call again while it returns ``batch``)."""
        conditions = []
        if older_than_ms is not None:
            conditions.append(messages.c.ts < older_than_ms)
        if keep is not None:  # by position, not arithmetic: a shared room's numbers have gaps
            async with self.engine.connect() as conn:
                beyond = (await conn.execute(
                    select(messages.c.seq).where(messages.c.room == room).order_by(messages.c.seq.desc())
                    .offset(keep).limit(1))).scalar()
            if beyond is not None:
                conditions.append(messages.c.seq <= beyond)
        if not conditions:
            return 0
        from sqlalchemy import or_

        ids = (select(messages.c.id).where(messages.c.room == room, or_(*conditions))
               .order_by(messages.c.seq).limit(batch).scalar_subquery())
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(messages).where(messages.c.id.in_(ids)))
            await self._lower_watermark(conn)
        return int(result.rowcount)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers do not block the writer) and FULL sync for what goes through the engine (accounts,
    erasures, retention: rare); the messages' writer has its own connection (:mod:`.sqlite_writer`)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
