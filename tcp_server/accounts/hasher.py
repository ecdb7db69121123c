"""Password hashes: argon2id, computed off the event loop, a bounded number at a time.

Parameters: OWASP Password Storage Cheat Sheet, "Argon2id" (cheatsheetseries.owasp.org,
Password_Storage_Cheat_Sheet.html): "a minimum configuration of 19 MiB of memory, an iteration count
of 2, and 1 degree of parallelism" (m=19456 KiB, t=2, p=1; the first of its equivalent settings).
argon2-cffi's own default (RFC 9106's low-memory profile, 64 MiB, t=3, p=4) costs more than three times
the memory for every login in a storm; OWASP's is what the issue asks for. A stored hash carries its
parameters, so changing them later makes :meth:`PasswordHashing.needs_rehash` true for the old ones,
and a login rehashes (:meth:`PasswordHashing.login`).

Why a dedicated pool: one hash is tens of milliseconds of CPU and 19 MiB. On the event loop it would
stall the room; on the loop's default executor it would queue behind (and in front of) DNS and file
work. ``workers`` threads hash at once (argon2 releases the GIL); at most ``max_waiting`` more wait
their turn, and past that a request gets :class:`Busy` at once (``109#login-busy``): a login storm
is answered, not queued without end, and the room keeps running.

An unknown account costs what a wrong password costs: :meth:`PasswordHashing.verify` with no stored
hash verifies against a dummy hash of the same parameters, and says False.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

T = TypeVar("T")

HASH_NICENESS = 10
"""The default of ``--login-nice``: how much lower the hashing threads run than the event loop (Linux: a
thread's own nice value), so that a login storm takes the CPU the room leaves, not the room's. At +10 a
busy hashing thread weighs 110 against the loop's 1024 in the kernel's fair scheduler (CFS), so a loop
with work gets about nine tenths of a core it shares with one."""


def lower_priority(by: int) -> None:
    """Lower the calling thread's own scheduling priority ``by`` nice steps (capped at 19).

    On Linux a nice value belongs to one thread (``setpriority`` with the thread's ID), so this leaves
    the event loop's thread as it was. Raising niceness needs no privilege; lowering it below the
    start value would (``CAP_SYS_NICE``) and is never asked for. Best effort: where a thread cannot be
    reniced on its own, it runs as before.
    """
    if by <= 0:
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True, slots=True)
class HashParams:
    """argon2id's cost: ``memory_cost`` in KiB, ``time_cost`` passes, ``parallelism`` lanes."""

    memory_cost: int
    time_cost: int
    parallelism: int

    def hasher(self) -> argon2.PasswordHasher:
        return argon2.PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_cost,
                                     parallelism=self.parallelism, type=argon2.Type.ID)


OWASP_ARGON2ID = HashParams(memory_cost=19 * 1024, time_cost=2, parallelism=1)
"""OWASP Password Storage Cheat Sheet's argon2id minimum: 19 MiB, 2 iterations, 1 lane."""


class Busy(Exception):
    """Too many hashes running and waiting: refuse now (``109#login-busy``) rather than queue."""

    def __init__(self) -> None:
        super().__init__("too many password hashes waiting")


@dataclass(frozen=True, slots=True)
class LoginCheck:
    """What a login's verification found: ``ok``, and the new hash to store when the stored one's
    parameters are no longer current (None when nothing is to be stored)."""

    ok: bool
    new_hash: str | None = None

    def __repr__(self) -> str:
        return f"LoginCheck(ok={self.ok}, new_hash={'<hidden>' if self.new_hash else None})"


class PasswordHashing:
    """argon2id hashing and verifying on a small thread pool, with a bounded queue.

    Passwords come in already prepared (:func:`tcp_server.protocol.passwords.prepare_password`);
    nothing here logs or keeps them.
    """

    def __init__(self, params: HashParams = OWASP_ARGON2ID, *, workers: int = 2, max_waiting: int = 32,
                 niceness: int = HASH_NICENESS, hasher: argon2.PasswordHasher | None = None) -> None:
        """``hasher`` replaces the one ``params`` make (a test counts its calls); ``workers`` hash at once,
        ``max_waiting`` more may wait, further ones get :class:`Busy`; the threads run ``niceness``
        steps below the thread that starts them (the event loop, which submits; 0-19; 0: the same priority)."""
        if workers < 1 or max_waiting < 0:
            raise ValueError("workers must be >= 1 and max_waiting >= 0")
        if not 0 <= niceness <= 19:
            raise ValueError("niceness must be 0 to 19")
        self.params = params
        self._hasher = hasher if hasher is not None else params.hasher()
        self.workers = workers
        self.max_waiting = max_waiting
        self.niceness = niceness
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2",
                                            initializer=lower_priority, initargs=(niceness,))
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting; lowered when the pool's job ends, not when its caller goes
        self._dummy: str | None = None
        self.busy_refusals = 0
        """Requests refused with :class:`Busy` (for the metrics)."""

    @property
    def in_flight(self) -> int:
        """Hashes running or waiting in the pool now."""
        with self._lock:
            return self._admitted

    # ------------------------------------------------------------ the API (on the event loop)

    async def hash(self, password: str) -> str:
        """A new argon2id hash of ``password`` (registering, changing); :class:`Busy` if the queue is full."""
        return await self._run(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; None (no such account) runs a real verification
        against a dummy hash and says False. ``ValueError`` if ``stored`` is not an argon2 hash."""
        return (await self._run(self._login, stored, password, False)).ok

    async def login(self, stored: str | None, password: str) -> LoginCheck:
        """:meth:`verify`, plus a new hash in the same job when it matches and ``stored``'s parameters are
        no longer current (store ``new_hash``). One pool slot, so a rehash cannot overtake the queue bound."""
        return await self._run(self._login, stored, password, True)

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than the current ones (cheap: it parses)."""
        return self._hasher.check_needs_rehash(stored)

    async def prepare(self) -> None:
        """Make the dummy hash now (a server's start), not during the first unknown-account login."""
        await self._run(self._dummy_hash)

    def close(self) -> None:
        """Stop the pool: waiting jobs are dropped, running ones finish in their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ in the pool's threads

    def _login(self, stored: str | None, password: str, rehash: bool) -> LoginCheck:
        if stored is None:
            try:
                self._hasher.verify(self._dummy_hash(), password)
            except VerificationError:
                pass
            return LoginCheck(False)  # even in the (2**-128) case of guessing the dummy's random secret
        try:
            self._hasher.verify(stored, password)
        except VerifyMismatchError:
            return LoginCheck(False)
        except InvalidHashError as exc:
            raise ValueError("the stored password hash is not an argon2 hash") from exc
        except VerificationError:
            return LoginCheck(False)
        if rehash and self._hasher.check_needs_rehash(stored):
            return LoginCheck(True, self._hasher.hash(password))
        return LoginCheck(True)

    def _dummy_hash(self) -> str:
        with self._lock:
            dummy = self._dummy
        if dummy is None:
            dummy = self._hasher.hash(secrets.token_urlsafe(32))
            with self._lock:
                if self._dummy is None:
                    self._dummy = dummy
                dummy = self._dummy
        return dummy

    # ------------------------------------------------------------ admission

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            if self._admitted >= self.workers + self.max_waiting:
                self.busy_refusals += 1
                raise Busy()
            self._admitted += 1
        try:
            job: Future[T] = self._executor.submit(fn, *args)
        except BaseException:
            self._release()
            raise
        job.add_done_callback(self._release)  # also when a waiting job is cancelled with its caller
        return await asyncio.wrap_future(job)

    def _release(self, _job: object = None) -> None:
        with self._lock:
            self._admitted -= 1
