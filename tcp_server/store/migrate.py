"""Schema migrations at start (Alembic): a backup first (SQLite), a lock while several nodes start (PostgreSQL),
and a refusal to run on a database newer than this code."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from .errors import SchemaOutdated, SchemaTooNew, StoreError

__all__ = ["SchemaOutdated", "SchemaTooNew", "StoreError", "backup_sqlite", "check_current", "head", "upgrade"]

log = logging.getLogger("tcp_server.store")

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK_ID = 0x68616E63  # "hanc": the advisory lock every node takes around its migrations


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    """The newest revision this code knows."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def current(connection: Connection) -> str | None:
    """The database's revision (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def check_known(revision: str | None, where: str) -> None:
    """Refuse a revision this code does not know (a newer chat-server migrated the database)."""
    if revision is None:
        return
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if revision not in known:
        raise SchemaTooNew(
            f"the database {where} has schema revision {revision}, newer than this chat-server knows "
            f"(its newest is {head()}): run the chat-server that migrated it, or restore a backup")


def backup_sqlite(path: Path) -> Path | None:
    """Copy an existing SQLite file that a migration is about to change (the online backup API: consistent
    even if another process writes); None when there is nothing to keep yet."""
    if not path.exists():
        return None
    with sqlite3.connect(path) as probe:
        has_version = probe.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'").fetchone()
        revision = probe.execute("SELECT version_num FROM alembic_version").fetchone() if has_version else None
    probe.close()
    if revision is not None:
        check_known(revision[0], str(path))
        if revision[0] == head():
            return None
    elif not has_version and path.stat().st_size == 0:
        return None
    target = path.with_name(f"{path.name}.{revision[0] if revision else 'none'}-{time.strftime('%Y%m%dT%H%M%S')}.bak")
    source = sqlite3.connect(path)
    dest = sqlite3.connect(target)
    try:
        source.backup(dest)
    finally:
        dest.close()
        source.close()
    log.info("backed up %s to %s before migrating it", path, target)
    return target


def check_current(connection: Connection, where: str) -> None:
    """For readers that do not migrate: the database must be at this code's revision."""
    revision = current(connection)
    check_known(revision, where)
    if revision != head():
        raise SchemaOutdated(f"the database {where} is at schema revision {revision or 'none'}, not {head()}: "
                           "start chat-server on it once (it migrates), then try again")


def upgrade(connection: Connection, where: str) -> None:
    """Bring the database to :func:`head` (a sync connection: run through ``AsyncConnection.run_sync``)."""
    postgres = connection.dialect.name == "postgresql"
    if postgres:  # several nodes starting at once: one migrates, the others wait and find it done
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": LOCK_ID})
        connection.commit()
    try:
        revision = current(connection)
        check_known(revision, where)
        if revision != head():
            log.info("migrating the history database %s from %s to %s", where, revision or "empty", head())
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
            connection.commit()
    finally:
        if postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK_ID})
            connection.commit()
