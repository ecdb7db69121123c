"""SQLite's hot write path: one thread owns a raw ``sqlite3`` connection and writes each batch as one
``executemany`` and one commit; between batches it fills the FTS5 trigram index in larger steps.

Why not SQLAlchemy/aiosqlite here (they keep the schema, the migrations and every query): each call through
aiosqlite is a round trip to its thread, and a batch took several, which cost more CPU than the insert itself
at the rates fan-out produces; here a batch is one hand-over each way (BENCHMARKS.md, "Durable history").

Why the index is filled behind the commit: the FTS5 trigram index costs ~45 µs per row when each small
transaction adds its own rows, and ~5-10 µs per row in steps of hundreds. The index therefore holds the rows up
to a watermark (``meta.fts_indexed``, moved in the same transaction as the rows it covers), and
:meth:`tcp_server.store.db.MessageStore.search` scans the rows past it, so a search never misses a message.

Durability: WAL with ``synchronous=NORMAL``. A commit is in the WAL file (the operating system's cache) when it
returns, so it survives ``kill -9`` of the server; a power cut may lose the last commits (FULL would add an
``fsync`` per commit, README "History").
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import StoreError

log = logging.getLogger("tcp_server.store")

INSERT = ("INSERT INTO messages (room, seq, ts, author, author_key, body, folded, account) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (room, seq) DO NOTHING")
"""One batch's rows: the columns of :data:`.schema.messages`; idempotent (a retried batch, two nodes)."""

WATERMARK = "fts_indexed"
"""``meta`` key: every message whose ``id`` is at most this is in ``messages_fts`` (migration 0004)."""
INDEX_EVERY = 0.25
"""Seconds between index steps while messages arrive: how far behind the index may run (searches scan the rest)."""
INDEX_ROWS = 500
"""Rows per index step at most: one step holds the writer ~3-5 ms, so a batch waits at most that long."""
CLOSE_TIMEOUT = 10.0

Row = tuple[str, int, int, str, str, str, str, bool]
_Job = tuple[Callable[[Any], Any], Any, asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled by a timeout: nobody waits for it
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def watermark(conn: sqlite3.Connection) -> int:
    found = conn.execute("SELECT value FROM meta WHERE key = ?", (WATERMARK,)).fetchone()
    return int(found[0]) if found is not None else 0


def index_step(conn: sqlite3.Connection, rows: int) -> int:
    """Move up to ``rows`` messages past the watermark into the index, in one transaction; how many."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        low = watermark(conn)
        top = conn.execute("SELECT max(id) FROM (SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?)",
                           (low, rows)).fetchone()[0]
        if top is None:
            conn.execute("COMMIT")
            return 0
        cursor = conn.execute("INSERT INTO messages_fts(rowid, folded) SELECT id, folded FROM messages "
                              "WHERE id > ? AND id <= ?", (low, top))
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                     "excluded.value", (WATERMARK, str(top)))
        conn.execute("COMMIT")
        return max(cursor.rowcount, 0)
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class SqliteWriter:
    """The writer thread of one SQLite file (see the module's docstring)."""

    def __init__(self, path: Path, fts: bool, busy_timeout: float,
                 index_every: float = INDEX_EVERY, index_rows: int = INDEX_ROWS) -> None:
        self.path = path
        self.fts = fts
        self.busy_timeout = busy_timeout
        self.index_every = index_every
        self.index_rows = index_rows
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        self._dirty = fts  # rows may wait for the index (a backlog after a crash, too)
        self._index_failed = False
        self._thread = threading.Thread(target=self._run, name="history-sqlite-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ the event loop's side

    async def _call(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        if not self._thread.is_alive():
            raise StoreError("the history writer has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((fn, arg, loop, future))
        return await future

    async def write(self, rows: Sequence[Row]) -> None:
        """One transaction: committed when this returns."""
        await self._call(self._insert, rows)

    async def catch_up(self) -> int:
        """Index everything written so far (tests, benchmarks, shutdown); how many rows it took."""
        return int(await self._call(self._index_all, None))

    async def close(self) -> None:
        """Finish the jobs queued, then stop the thread (the index's backlog waits for the next start)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join, CLOSE_TIMEOUT)

    # ------------------------------------------------------------ the thread

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _insert(self, rows: Sequence[Row]) -> None:
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            conn.executemany(INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        self._dirty = self.fts

    @staticmethod
    def _do(job: _Job) -> None:
        fn, arg, loop, future = job
        try:
            result, error = fn(arg), None
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting coroutine
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(_settle, future, result, error)
        except RuntimeError:  # the loop is closed: nobody waits
            pass

    def _index_all(self, _: None) -> int:
        if not self.fts:
            return 0
        total = 0
        while (done := index_step(self._connection(), self.index_rows)) > 0:
            total += done
        self._dirty = False
        return total

    def _index(self) -> None:
        """One step of the background indexing; a failure (a full disk) is logged once and tried again later."""
        try:
            done = index_step(self._connection(), self.index_rows)
        except sqlite3.Error as exc:
            if not self._index_failed:
                log.warning("the search index could not be updated (%s); searches scan the messages not in it",
                            type(exc).__name__)
            self._index_failed = True
            return
        if self._index_failed:
            log.warning("the search index is being updated again")
        self._index_failed = False
        self._dirty = done >= self.index_rows  # a full step: more may wait

    def _run(self) -> None:
        jobs = self._jobs
        next_index = time.monotonic()
        try:
            while True:
                job: _Job | None = None
                wait = max(0.0, next_index - time.monotonic()) if self._dirty else None
                try:
                    job = jobs.get(timeout=wait)
                    if job is None:
                        return
                except queue.Empty:  # nothing to write: time to index
                    pass
                if job is not None:
                    self._do(job)
                if self._dirty and time.monotonic() >= next_index:
                    self._index()
                    if self._index_failed:
                        self._dirty = True
                    # a full step leaves more to index: the next one follows the writes queued meanwhile
                    next_index = time.monotonic() + (0.0 if self._dirty and not self._index_failed
                                                     else self.index_every)
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
