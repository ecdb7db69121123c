"""Search indexes: an FTS5 trigram index on SQLite, a pg_trgm GIN index on PostgreSQL.

Both index ``folded`` (the text in the form searches compare), for a literal substring search
(``017``) that does not read every message. Where the database lacks them (an SQLite built
without FTS5, a PostgreSQL where pg_trgm cannot be created), nothing is made and searches
scan, as they would without this revision.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("tcp_server.store")


def _sqlite_has_trigram(bind: sa.Connection) -> bool:
    version = tuple(int(p) for p in str(bind.exec_driver_sql("SELECT sqlite_version()").scalar()).split("."))
    fts5 = bind.exec_driver_sql("SELECT sqlite_compileoption_used('ENABLE_FTS5')").scalar()
    return bool(fts5) and version >= (3, 34)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        if not _sqlite_has_trigram(bind):
            log.warning("this SQLite has no FTS5 trigram tokenizer: history searches will scan")
            return
        op.execute("CREATE VIRTUAL TABLE messages_fts USING fts5(folded, content='messages', content_rowid='id', "
                   "tokenize='trigram')")
        op.execute("CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
                   "INSERT INTO messages_fts(rowid, folded) VALUES (new.id, new.folded); END")
        op.execute("CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
                   "INSERT INTO messages_fts(messages_fts, rowid, folded) VALUES ('delete', old.id, old.folded); END")
        op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    elif bind.dialect.name == "postgresql":
        try:
            with bind.begin_nested():
                op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except sa.exc.DBAPIError as exc:
            log.warning("pg_trgm cannot be created here (%s): history searches will scan", type(exc.orig).__name__)
            return
        op.execute("CREATE INDEX ix_messages_folded_trgm ON messages USING gin (folded gin_trgm_ops)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS messages_fts_delete")
        op.execute("DROP TRIGGER IF EXISTS messages_fts_insert")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_messages_folded_trgm")
