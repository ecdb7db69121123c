"""Why the history database cannot be used (no database library here: the programs' start-up catches these)."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The history database cannot be used: the server does not start (the message says why)."""


class SchemaError(StoreError):
    """The database's schema is not one this code may use as it is."""


class SchemaTooNew(SchemaError):
    """The database was migrated by a newer chat-server: running this one could damage it."""


class SchemaOutdated(SchemaError):
    """A reader that does not migrate found an older (or empty) schema."""
