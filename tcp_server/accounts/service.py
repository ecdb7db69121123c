"""A node's accounts: the store's table, the registry of keys, the hashing pool and the guessing counts.

What the connection awaits for ``018``-``020`` (off the loop: the hash in the pool, the row in the
database, each with a timeout). Answers are :class:`Outcome` values; nothing here logs a password
or a hash, and a database error is logged by its kind only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from enum import Enum, auto

from sqlalchemy.ext.asyncio import AsyncEngine

from ..protocol.account_rules import AccountRules
from ..protocol.guessing import GuessCounter, GuessLimits
from ..protocol.passwords import InvalidPassword, Password, prepare_new_password, prepare_password
from ..store.accounts import AccountExists, AccountStore
from .hasher import HASH_NICENESS, Busy, PasswordHashing
from .registry import AccountRegistry

log = logging.getLogger("tcp_server.accounts")

DB_TIMEOUT = 10.0
"""Seconds a read or write of the accounts table may take before the answer is ``109#unavailable``."""
HASH_TIMEOUT = 60.0
"""Seconds a hash may wait in the pool's queue and run (a bounded queue: a storm is refused, not kept)."""


class Outcome(Enum):
    OK = auto()
    BAD = auto()
    LOCKED = auto()
    BUSY = auto()
    UNAVAILABLE = auto()
    EXISTS = auto()
    WEAK = auto()


@dataclass(frozen=True, slots=True)
class Answer:
    outcome: Outcome
    display: str = ""


def _kind(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return f"{type(exc).__name__} ({type(orig).__name__})" if orig is not None else type(exc).__name__


class Accounts:
    """One per node with a durable database (``--database`` not memory)."""

    def __init__(self, engine: AsyncEngine, limits: GuessLimits, *, registration_open: bool = True,
                 guests: bool = True, workers: int = 2, max_waiting: int = 32,
                 niceness: int = HASH_NICENESS, hashing: PasswordHashing | None = None) -> None:
        self.store = AccountStore(engine)
        self.registry = AccountRegistry(self.store)
        self.hashing = hashing if hashing is not None else PasswordHashing(
            workers=workers, max_waiting=max_waiting, niceness=niceness)
        self.guessing = GuessCounter(time.monotonic, limits)
        self.rules = AccountRules(self.registry, self.guessing, registration_open, guests)

    async def start(self) -> None:
        """The registry from the table, and the dummy hash made now (not during the first unknown login)."""
        await asyncio.wait_for(self.registry.refresh(), DB_TIMEOUT)
        await self.hashing.prepare()

    def close(self) -> None:
        self.hashing.close()

    async def refresh(self) -> None:
        """The registry again from the table (registrations on other nodes); a failure keeps what is held."""
        try:
            await asyncio.wait_for(self.registry.refresh(), DB_TIMEOUT)
        except Exception as exc:
            log.warning("the registry of accounts could not be refreshed: %s", _kind(exc))

    def _full(self) -> bool:
        """The hashing queue is full now: a storm's extra logins are refused before they cost a database read."""
        hashing = self.hashing
        return hashing.in_flight >= hashing.workers + hashing.max_waiting

    async def login(self, key: str, password: Password) -> Answer:
        """Verify; an unknown account (and a password that cannot be prepared) costs a dummy verification."""
        if self._full():
            return Answer(Outcome.BUSY)
        try:
            account = await asyncio.wait_for(self.store.get(key), DB_TIMEOUT)
        except Exception as exc:
            log.warning("a login could not read the accounts table: %s", _kind(exc))
            return Answer(Outcome.UNAVAILABLE)
        try:
            prepared: str | None = prepare_password(password.reveal())
        except InvalidPassword:
            prepared = None
        stored = account.hash if account is not None and prepared is not None else None
        try:
            check = await asyncio.wait_for(self.hashing.login(stored, prepared or "-"), HASH_TIMEOUT)
        except (Busy, TimeoutError):
            return Answer(Outcome.BUSY)
        if account is None or prepared is None or not check.ok:
            return Answer(Outcome.BAD)
        if account.locked:
            return Answer(Outcome.LOCKED)
        if check.new_hash is not None:  # the parameters changed: store the new hash (a failure is no refusal)
            try:
                await asyncio.wait_for(self.store.set_hash(key, check.new_hash), DB_TIMEOUT)
            except Exception as exc:
                log.warning("a rehash at login could not be stored: %s", _kind(exc))
        return Answer(Outcome.OK, account.display)

    async def _new_hash(self, display: str, password: Password) -> str | Answer:
        """A new password's hash (register and change alike), or the answer that refuses it."""
        try:
            prepared = prepare_new_password(display, password.reveal())
        except InvalidPassword:
            return Answer(Outcome.WEAK)
        try:
            return await asyncio.wait_for(self.hashing.hash(prepared), HASH_TIMEOUT)
        except (Busy, TimeoutError):
            return Answer(Outcome.BUSY)

    async def register(self, key: str, display: str, password: Password) -> Answer:
        hashed = await self._new_hash(display, password)
        if isinstance(hashed, Answer):
            return hashed
        try:
            await asyncio.wait_for(self.store.create(key, display, hashed), DB_TIMEOUT)
        except AccountExists:
            self.registry.add(key, display)
            return Answer(Outcome.EXISTS)
        except Exception as exc:
            log.warning("a registration could not be stored: %s", _kind(exc))
            return Answer(Outcome.UNAVAILABLE)
        self.registry.add(key, display, holder=True)
        return Answer(Outcome.OK, display)

    async def change(self, key: str, display: str, password: Password) -> Answer:
        hashed = await self._new_hash(display, password)
        if isinstance(hashed, Answer):
            return hashed
        try:
            found = await asyncio.wait_for(self.store.set_hash(key, hashed), DB_TIMEOUT)
        except Exception as exc:
            log.warning("a password change could not be stored: %s", _kind(exc))
            return Answer(Outcome.UNAVAILABLE)
        return Answer(Outcome.OK if found else Outcome.BAD, display)
