"""Accounts in the durable store: one row per registered ID key (migration 0003).

Rows hold a hash, never a password; nothing here logs a row. The in-memory registry of keys
(:class:`tcp_server.accounts.registry.AccountRegistry`) is filled from :meth:`AccountStore.keys`
at start and told of every change, so ``001`` refuses registered IDs during an outage too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .schema import accounts


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Account:
    """One account as stored (its hash's repr hidden: a log of this never shows it)."""

    key: str
    display: str
    hash: str
    created: int
    updated: int
    locked: bool

    def __repr__(self) -> str:
        return (f"Account(key={self.key!r}, display={self.display!r}, hash=<hidden>, created={self.created}, "
                f"updated={self.updated}, locked={self.locked})")


class AccountExists(Exception):
    """The ID's key is registered already (``109#already-registered``)."""


class AccountStore:
    """Reads and writes the ``accounts`` table on the store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, key: str) -> Account | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(accounts).where(accounts.c.key == key))).first()
        if row is None:
            return None
        return Account(row.key, row.display, row.hash, row.created, row.updated, bool(row.locked))

    async def keys(self) -> dict[str, str]:
        """Every registered key and its ID as registered (the registry's load)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(accounts.c.key, accounts.c.display))).all()
        return {row.key: row.display for row in rows}

    async def all(self) -> list[Account]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(accounts).order_by(accounts.c.key))).all()
        return [Account(r.key, r.display, r.hash, r.created, r.updated, bool(r.locked)) for r in rows]

    async def create(self, key: str, display: str, password_hash: str) -> None:
        """Register; :class:`AccountExists` if the key is taken (two registrations at once: one wins)."""
        now = now_ms()
        try:
            async with self.engine.begin() as conn:
                await conn.execute(accounts.insert().values(key=key, display=display, hash=password_hash,
                                                            created=now, updated=now, locked=False))
        except IntegrityError:
            raise AccountExists(key) from None

    async def set_hash(self, key: str, password_hash: str) -> bool:
        """A new password (or a rehash at login); False: no such account."""
        async with self.engine.begin() as conn:
            result = await conn.execute(update(accounts).where(accounts.c.key == key)
                                        .values(hash=password_hash, updated=now_ms()))
        return bool(result.rowcount)

    async def set_locked(self, key: str, locked: bool) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(update(accounts).where(accounts.c.key == key)
                                        .values(locked=locked, updated=now_ms()))
        return bool(result.rowcount)

    async def delete(self, key: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(accounts).where(accounts.c.key == key))
        return bool(result.rowcount)
