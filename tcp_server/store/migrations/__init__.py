"""Alembic migrations of the stored history (run by :func:`tcp_server.store.migrate.migrate` at start)."""
