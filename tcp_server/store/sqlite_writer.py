"""SQLite's hot write path: each batch is one ``executemany`` and one commit on a raw ``sqlite3`` connection,
made on the event loop's thread when the write lock is free at once, else by a writer thread; that thread also
fills the FTS5 trigram index behind the commits, in larger steps, and checkpoints the WAL.

Why not SQLAlchemy/aiosqlite here (they keep the schema, the migrations and every query): each call through
aiosqlite is a round trip to its thread, and a batch took several, which cost more CPU than the insert itself
at the rates fan-out produces. Why on the loop's thread: in WAL mode with ``synchronous=NORMAL`` a commit
appends to the WAL file and does not ``fsync`` (~30 µs for a few messages), cheaper than handing the batch to
a thread and back (two wake-ups, ~100 µs measured under load). What could block there is moved off it: the
connection never waits for a lock (``timeout=0``: a busy database sends the batch to the thread, which waits),
and never checkpoints (the thread does, ``PASSIVE``, not blocking the writer). BENCHMARKS.md, "Durable history".

Why the index is filled behind the commit: the FTS5 trigram index costs ~45 µs per row when each small
transaction adds its own rows, and ~5-10 µs per row in steps of hundreds. The index therefore holds the rows up
to a watermark (``meta.fts_indexed``, moved in the same transaction as the rows it covers), and
:meth:`tcp_server.store.db.MessageStore.search` scans the rows past it, so a search never misses a message.

Durability: WAL with ``synchronous=NORMAL``. A commit is in the WAL file (the operating system's cache) when it
returns, so it survives ``kill -9`` of the server; a power cut may lose the last commits (FULL would add an
``fsync`` per commit: README, "History").
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
CHECKPOINT_EVERY = 1.0
"""Seconds at least between the thread's WAL checkpoints while messages are written."""
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
    """The hot write path of one SQLite file (see the module's docstring)."""

    def __init__(self, path: Path, fts: bool, busy_timeout: float,
                 index_every: float = INDEX_EVERY, index_rows: int = INDEX_ROWS) -> None:
        self.path = path
        self.fts = fts
        self.busy_timeout = busy_timeout
        self.index_every = index_every
        self.index_rows = index_rows
        self.inline = True  # False: every batch goes to the thread (benchmarks compare the two)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._pending = 0  # jobs handed to the thread and not finished: later batches queue behind them
        self._loop_conn: sqlite3.Connection | None = None
        self._conn: sqlite3.Connection | None = None  # the thread's
        self._written = 1  # batches committed (on either thread); the thread indexes when it moved
        self._index_failed = False
        self._thread = threading.Thread(target=self._run, name="history-sqlite-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ the event loop's side

    async def _call(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        if not self._thread.is_alive():
            raise StoreError("the history writer has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending += 1
        try:
            self._jobs.put((fn, arg, loop, future))
            return await future
        finally:
            self._pending -= 1

    async def write(self, rows: Sequence[Row]) -> None:
        """One transaction: committed when this returns."""
        if self.inline and self._pending == 0:
            conn = self._loop_conn
            if conn is None:
                conn = self._loop_conn = _connect(self.path, 0.0)
                conn.execute("PRAGMA wal_autocheckpoint=0")  # the thread checkpoints
            try:
                self._insert(conn, rows)
                return
            except sqlite3.OperationalError as exc:
                if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF != sqlite3.SQLITE_BUSY:  # extended codes too
                    raise
        await self._call(self._insert_here, rows)  # the lock is taken (or a batch waits): the thread waits

    async def catch_up(self) -> int:
        """Index everything written so far (tests, benchmarks); how many rows it took."""
        return int(await self._call(self._index_all, None))

    async def close(self) -> None:
        """Finish the jobs queued, then stop the thread (the index's backlog waits for the next start)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join, CLOSE_TIMEOUT)
        conn, self._loop_conn = self._loop_conn, None
        if conn is not None:
            conn.close()

    def _insert(self, conn: sqlite3.Connection, rows: Sequence[Row]) -> None:
        conn.execute("BEGIN IMMEDIATE")  # the write lock first: busy means nothing was done
        try:
            conn.executemany(INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        self._written += 1

    # ------------------------------------------------------------ the thread

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _connect(self.path, self.busy_timeout)
        return self._conn

    def _insert_here(self, rows: Sequence[Row]) -> None:
        self._insert(self._connection(), rows)

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
        return total

    def _index(self) -> bool:
        """One step of the background indexing; True if it was a full one (more may wait). A failure (a full
        disk) is logged once and tried again at the next step."""
        try:
            done = index_step(self._connection(), self.index_rows)
        except sqlite3.Error as exc:
            if not self._index_failed:
                log.warning("the search index could not be updated (%s); searches scan the messages not in it",
                            type(exc).__name__)
            self._index_failed = True
            return False
        if self._index_failed:
            log.warning("the search index is being updated again")
        self._index_failed = False
        return done >= self.index_rows

    def _checkpoint(self) -> None:
        """Copy the WAL into the database (PASSIVE: never waits for, nor blocks, the writers)."""
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.debug("WAL checkpoint failed: %s", type(exc).__name__)

    def _run(self) -> None:
        """Jobs as they come; every ``index_every`` s, if anything was written, an index step and (every
        :data:`CHECKPOINT_EVERY` s) a checkpoint. A full index step is followed by the next one at once
        (after the jobs queued meanwhile), so a backlog is worked off in steps, the writes going first."""
        jobs = self._jobs
        indexed = checkpointed = 0  # the values of _written at the last index step and checkpoint
        last_checkpoint = time.monotonic()
        next_step = last_checkpoint + self.index_every  # a backlog left by a crash too, searched as a tail till then
        try:
            while True:
                try:
                    job = jobs.get(timeout=max(0.0, next_step - time.monotonic()))
                    if job is None:
                        return
                    self._do(job)
                except queue.Empty:
                    pass
                now = time.monotonic()
                if now < next_step:
                    continue
                written = self._written
                more = False
                if self.fts and written != indexed:
                    more = self._index()
                    if not more and not self._index_failed:
                        indexed = written
                if written != checkpointed and now - last_checkpoint >= CHECKPOINT_EVERY:
                    self._checkpoint()
                    checkpointed, last_checkpoint = written, now
                next_step = time.monotonic() + (0.0 if more else self.index_every)
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn
