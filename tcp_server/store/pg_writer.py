"""PostgreSQL's hot write path: a batch is one statement on a connection of its own, one round trip.

Why beside SQLAlchemy (which keeps the schema, the migrations and every query): through the engine a batch
was a pool checkout, ``BEGIN``, an ``executemany`` and ``COMMIT``: several round trips and ~1 ms of CPU
for a one-message batch. Here the batch's columns travel as arrays in one ``INSERT … SELECT FROM unnest(…)``:
a single statement outside a transaction block commits on its own (atomically: all its rows or none), so
one round trip writes the batch whatever its size (BENCHMARKS.md, "Durable history").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

INSERT = ("INSERT INTO messages (room, seq, ts, author, author_key, body, folded, account) "
          "SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], "
          "$7::text[], $8::boolean[]) ON CONFLICT (room, seq) DO NOTHING")

Row = tuple[str, int, int, str, str, str, str, bool]


class PgWriter:
    """One connection for the writes, made when first needed and again after any failure."""

    def __init__(self, dsn: str, timeout: float) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self._conn: Any = None  # asyncpg.Connection (asyncpg ships no type hints)

    async def write(self, rows: Sequence[Row]) -> None:
        """One statement, committed when this returns."""
        conn = self._conn
        try:
            if conn is None:
                import asyncpg  # type: ignore[import-untyped]

                conn = self._conn = await asyncpg.connect(self.dsn, timeout=self.timeout,
                                                          command_timeout=self.timeout)
            await conn.execute(INSERT, *(list(column) for column in zip(*rows, strict=True)))
        except BaseException:
            self._drop()  # a broken, refused or interrupted connection: the next batch makes a new one
            raise

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self.timeout)
