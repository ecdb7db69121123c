"""The durable history (``--database``): an SQLite file by default, PostgreSQL for several nodes.

- :mod:`.urls` what ``--database`` and ``--data-dir`` name (no database library: imported by the flags);
- :mod:`.errors` why a database cannot be used (caught by the programs' start-up);
- :mod:`.schema` and :mod:`.migrations` the tables, migrated at start (:mod:`.migrate`);
- :mod:`.db` :class:`MessageStore`, the queries (SQLAlchemy 2 Core, async);
- :mod:`.sqlite_writer`, :mod:`.pg_writer` the hot write of each batch on the raw drivers (why: there);
- :mod:`.gate` :class:`StoreGate`, where the store meets the message path: every message is
  committed before the flush that delivers it, one transaction per batch.

Only :mod:`.urls` is imported here: a server on ``--database memory`` never loads SQLAlchemy.
"""

import logging

from .urls import MEMORY, DatabaseUrl, DatabaseUrlError, default_data_dir, default_database, parse_database

# Alembic logs at INFO as soon as it is imported; no database library logs below WARNING (db.quiet_loggers).
logging.getLogger("alembic").setLevel(logging.WARNING)

__all__ = ["MEMORY", "DatabaseUrl", "DatabaseUrlError", "default_data_dir", "default_database", "parse_database"]
