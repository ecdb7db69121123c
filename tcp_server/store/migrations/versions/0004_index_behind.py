"""SQLite: the FTS5 trigram index is filled behind the commit, in larger steps, instead of by a trigger per row.

Filled row by row in each small transaction the index cost ~45 µs per message, in steps of hundreds
~5-10 µs (BENCHMARKS.md, "Durable history"). The insert trigger goes; ``meta.fts_indexed`` is the
watermark: every message with ``id`` at most it is indexed (all of them now, the trigger kept it so).
The writer (:mod:`tcp_server.store.sqlite_writer`) moves it; searches scan the messages past it. The
delete trigger only removes what the index holds (an external-content FTS5 table must never be told
to delete a row it does not have). PostgreSQL: nothing changes (its GIN index's ``fastupdate``, on by
default, already defers the work to a pending list).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

_CONDITIONAL_DELETE = (
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages "
    "WHEN old.id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_indexed') BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, folded) VALUES ('delete', old.id, old.folded); END")


def _has_fts(bind: sa.Connection) -> bool:
    found = bind.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'")
    return found.scalar() is not None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite" or not _has_fts(bind):
        return
    op.execute("DROP TRIGGER IF EXISTS messages_fts_insert")
    op.execute("DROP TRIGGER IF EXISTS messages_fts_delete")
    op.execute("INSERT INTO meta (key, value) SELECT 'fts_indexed', CAST(coalesce(max(id), 0) AS TEXT) "
               "FROM messages WHERE true ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    op.execute(_CONDITIONAL_DELETE)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite" or not _has_fts(bind):
        return
    op.execute("DROP TRIGGER IF EXISTS messages_fts_delete")
    op.execute("DELETE FROM meta WHERE key = 'fts_indexed'")
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    op.execute("CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
               "INSERT INTO messages_fts(rowid, folded) VALUES (new.id, new.folded); END")
    op.execute("CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
               "INSERT INTO messages_fts(messages_fts, rowid, folded) VALUES ('delete', old.id, old.folded); END")
