"""What ``--database`` names: the in-memory history of old, an SQLite file, or a PostgreSQL server."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MEMORY = "memory"
DB_FILE = "chat.db"


class DatabaseUrlError(ValueError):
    """``--database`` names nothing this server can use."""


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A parsed ``--database``: ``kind`` is memory, sqlite or postgresql."""

    kind: str
    raw: str
    path: Path | None = None  # sqlite's file

    @property
    def durable(self) -> bool:
        return self.kind != MEMORY

    def sqlalchemy_url(self) -> str:
        """The async driver's URL (aiosqlite, asyncpg)."""
        if self.kind == "sqlite":
            return f"sqlite+aiosqlite:///{self.path}"
        if self.kind == "postgresql":
            return "postgresql+asyncpg://" + self.raw.split("://", 1)[1]
        raise DatabaseUrlError("the in-memory history has no database URL")

    def safe(self) -> str:
        """For logs: no password."""
        if self.kind != "postgresql":
            return self.raw
        scheme, rest = self.raw.split("://", 1)
        if "@" in rest:
            creds, host = rest.rsplit("@", 1)
            user = creds.split(":", 1)[0]
            return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
        return self.raw


def default_data_dir(environ: dict[str, str] | None = None) -> str:
    """systemd's ``StateDirectory=`` when set, else ``$XDG_STATE_HOME/hanchat`` (``~/.local/state/hanchat``)."""
    env = os.environ if environ is None else environ
    state = env.get("STATE_DIRECTORY")
    if state:
        return state.split(":", 1)[0]
    xdg = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(xdg) / "hanchat")


def default_database(data_dir: str) -> str:
    """A bare ``chat-server`` keeps its history in an SQLite file of the data directory."""
    return f"sqlite:///{Path(data_dir) / DB_FILE}"


def parse_database(raw: str) -> DatabaseUrl:
    """``memory``, ``sqlite:///PATH`` (relative or absolute) or ``postgresql://…`` (``postgres://`` too)."""
    value = raw.strip()
    if value == MEMORY:
        return DatabaseUrl(MEMORY, value)
    if value.startswith("sqlite:///"):
        path = value[len("sqlite:///"):]
        if not path or path == ":memory:":
            raise DatabaseUrlError("--database sqlite:///PATH needs a file path (use 'memory' for no file)")
        return DatabaseUrl("sqlite", value, Path(path))
    if value.startswith(("postgresql://", "postgres://")):
        return DatabaseUrl("postgresql", "postgresql://" + value.split("://", 1)[1])
    raise DatabaseUrlError(f"--database must be 'memory', sqlite:///PATH or postgresql://..., not {raw!r}")
