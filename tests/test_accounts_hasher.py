"""argon2id hashing off the event loop (tcp_server/accounts/hasher.py): real argon2, real threads.

Most tests use small parameters (1 MiB, 1 pass) to spare the shared CPU; the OWASP ones are checked
once. A "gated" hasher holds its threads at a gate the test opens, so the queue bound and the loop's
responsiveness are shown by state, not by timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

import argon2
import pytest

from tcp_server.accounts import OWASP_ARGON2ID, Busy, HashParams, LoginCheck, PasswordHashing
from tests.clients import TIMEOUT
from tests.helpers import wait_until

SMALL = HashParams(memory_cost=1024, time_cost=1, parallelism=1)
SMALLER = HashParams(memory_cost=512, time_cost=1, parallelism=1)


class CountingHasher(argon2.PasswordHasher):
    """The real argon2 hasher, recording what it was asked and on which thread."""

    def __init__(self, params: HashParams) -> None:
        super().__init__(time_cost=params.time_cost, memory_cost=params.memory_cost,
                         parallelism=params.parallelism, type=argon2.Type.ID)
        self.verified: list[tuple[str, str]] = []  # (hash, thread name)
        self.hashed: list[str] = []  # thread names

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.hashed.append(threading.current_thread().name)
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append((str(hash), threading.current_thread().name))
        return super().verify(hash, password)


class GatedHasher(CountingHasher):
    """Each hash waits at ``gate`` (in its pool thread) before doing the real work."""

    def __init__(self, params: HashParams) -> None:
        super().__init__(params)
        self.gate = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self._lock:
            self.waiting += 1
        if not self.gate.wait(TIMEOUT):
            raise TimeoutError("the test never opened the gate")
        return super().hash(password, salt=salt)


@pytest.fixture
def pools() -> Iterator[Callable[..., PasswordHashing]]:
    made: list[PasswordHashing] = []

    def make(*args: Any, **kwargs: Any) -> PasswordHashing:
        made.append(PasswordHashing(*args, **kwargs))
        return made[-1]

    yield make
    for pool in made:
        pool.close()


@pytest.fixture
async def gated() -> AsyncIterator[GatedHasher]:
    hasher = GatedHasher(SMALL)
    try:
        yield hasher
    finally:
        hasher.gate.set()  # never leave a pool thread waiting


async def test_owasp_parameters_round_trip(pools: Callable[..., PasswordHashing]) -> None:
    hashing = pools()
    stored = await hashing.hash("비밀 번호 이야기")
    params = argon2.extract_parameters(stored)
    assert (params.type, params.memory_cost, params.time_cost, params.parallelism) == (argon2.Type.ID, 19456, 2, 1)
    assert OWASP_ARGON2ID == HashParams(memory_cost=19 * 1024, time_cost=2, parallelism=1)
    assert await hashing.verify(stored, "비밀 번호 이야기")
    assert not await hashing.verify(stored, "비밀 번호 이야기 ")
    assert not hashing.needs_rehash(stored)


async def test_wrong_password_and_salts(pools: Callable[..., PasswordHashing]) -> None:
    hashing = pools(SMALL)
    first, second = await hashing.hash("correct horse battery"), await hashing.hash("correct horse battery")
    assert first != second  # a salt each
    assert await hashing.verify(first, "correct horse battery")
    assert await hashing.verify(second, "correct horse battery")
    assert not await hashing.verify(first, "Correct horse battery")
    assert not await hashing.verify(first, "")
    assert "correct" not in first and "horse" not in first


async def test_unknown_account_runs_a_real_verification(pools: Callable[..., PasswordHashing]) -> None:
    counting = CountingHasher(SMALL)
    hashing = pools(SMALL, hasher=counting)
    await hashing.prepare()
    assert len(counting.hashed) == 1  # the dummy, made once, at the start
    stored = await hashing.hash("correct horse battery")
    counting.hashed.clear()

    assert not await hashing.verify(None, "correct horse battery")  # unknown account
    assert not await hashing.verify(stored, "wrong horse battery")  # known account, wrong password
    assert not await hashing.verify(None, "another guess at all")

    # The same work each time: one argon2 verification, in the pool, against a hash of the current
    # parameters; the unknown account's against the dummy (never the same as a real one); no hashing.
    assert counting.hashed == []
    assert len(counting.verified) == 3
    (dummy, t1), (real, t2), (dummy_again, t3) = counting.verified
    assert real == stored and dummy == dummy_again != stored
    assert argon2.extract_parameters(dummy) == argon2.extract_parameters(stored)
    assert all(name.startswith("argon2") for name in (t1, t2, t3))


async def test_dummy_is_made_on_first_use_without_prepare(pools: Callable[..., PasswordHashing]) -> None:
    counting = CountingHasher(SMALL)
    hashing = pools(SMALL, hasher=counting)
    assert not await hashing.verify(None, "whatever it is")
    assert not await hashing.verify(None, "whatever it is")
    assert len(counting.hashed) == 1 and len(counting.verified) == 2


async def test_rehash_when_parameters_change(pools: Callable[..., PasswordHashing]) -> None:
    old, new = pools(SMALLER), pools(SMALL)
    stored = await old.hash("correct horse battery")
    assert not old.needs_rehash(stored)
    assert new.needs_rehash(stored)

    counting = CountingHasher(SMALL)
    verifying = pools(SMALL, hasher=counting)
    assert await verifying.verify(stored, "correct horse battery")
    assert counting.hashed == []  # verify alone never rehashes (changing a password checks the old one so)

    wrong = await new.login(stored, "wrong horse battery")
    assert wrong == LoginCheck(False)  # no new hash for a failure
    right = await new.login(stored, "correct horse battery")
    assert right.ok and right.new_hash is not None
    assert argon2.extract_parameters(right.new_hash).memory_cost == SMALL.memory_cost
    assert not new.needs_rehash(right.new_hash)
    assert await new.verify(right.new_hash, "correct horse battery")
    assert await new.login(right.new_hash, "correct horse battery") == LoginCheck(True)  # current: nothing to store
    assert right.new_hash not in repr(right) and "hidden" in repr(right)


async def test_a_stored_value_that_is_no_hash_is_an_error(pools: Callable[..., PasswordHashing]) -> None:
    hashing = pools(SMALL)
    with pytest.raises(ValueError, match="not an argon2 hash"):
        await hashing.verify("plaintext!", "plaintext!")


async def test_queue_bound_refuses_at_once_and_the_loop_keeps_running(
        pools: Callable[..., PasswordHashing], gated: GatedHasher) -> None:
    hashing = pools(SMALL, workers=2, max_waiting=6, hasher=gated)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    beating = asyncio.create_task(heartbeat())
    try:
        passwords = [f"password number {i}" for i in range(8)]
        jobs = [asyncio.create_task(hashing.hash(p)) for p in passwords]
        await wait_until(lambda: hashing.in_flight == 8 and gated.waiting == 2, what="8 admitted, 2 in threads")

        # The 9th, hashing or verifying, is refused at once (the gate is shut: waiting would hang here).
        with pytest.raises(Busy):
            await asyncio.wait_for(hashing.hash("one too many"), TIMEOUT)
        with pytest.raises(Busy):
            await asyncio.wait_for(hashing.verify(None, "one too many"), TIMEOUT)
        assert hashing.busy_refusals == 2

        # The loop runs while all 8 are held: the heartbeat ticks on.
        before = ticks
        await wait_until(lambda: ticks >= before + 20, what="the heartbeat")
        assert not any(job.done() for job in jobs) and gated.waiting == 2

        gated.gate.set()
        hashes = await asyncio.wait_for(asyncio.gather(*jobs), TIMEOUT)
    finally:
        beating.cancel()
    assert hashing.in_flight == 0
    assert gated.hashed and all(name.startswith("argon2") for name in gated.hashed)
    for password, stored in zip(passwords, hashes, strict=True):
        assert await hashing.verify(stored, password)
    assert await hashing.hash("room again") != ""  # capacity is back


async def test_a_cancelled_caller_frees_its_slot_only_when_its_job_ends(
        pools: Callable[..., PasswordHashing], gated: GatedHasher) -> None:
    hashing = pools(SMALL, workers=1, max_waiting=1, hasher=gated)
    running = asyncio.create_task(hashing.hash("first in the pool"))
    queued = asyncio.create_task(hashing.hash("second, waiting"))
    await wait_until(lambda: hashing.in_flight == 2 and gated.waiting == 1, what="one running, one waiting")

    queued.cancel()  # a waiting job is dropped with its caller: its slot frees at once
    running.cancel()  # a running one keeps its thread busy, so its slot stays taken until it ends
    await wait_until(lambda: hashing.in_flight == 1, what="the queued job's slot")
    with pytest.raises(asyncio.CancelledError):
        await queued
    with pytest.raises(asyncio.CancelledError):
        await running
    third = asyncio.create_task(hashing.hash("third takes the free place"))
    await wait_until(lambda: hashing.in_flight == 2, what="the third admitted")
    with pytest.raises(Busy):  # the cancelled running job still counts
        await asyncio.wait_for(hashing.hash("no room yet"), TIMEOUT)

    gated.gate.set()
    assert await asyncio.wait_for(hashing.verify(await asyncio.wait_for(third, TIMEOUT), "third takes the free place"),
                                  TIMEOUT)
    await wait_until(lambda: hashing.in_flight == 0, what="the running job to end")
    assert gated.waiting == 2  # the first and the third: the cancelled queued one never reached argon2


async def test_nothing_shown_holds_a_password(pools: Callable[..., PasswordHashing]) -> None:
    hashing = pools(SMALL, workers=1, max_waiting=0)
    assert str(Busy()) == "too many password hashes waiting"
    check = await hashing.login(await hashing.hash("correct horse battery"), "correct horse battery")
    assert "correct" not in repr(check)


def test_bad_pool_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        PasswordHashing(SMALL, workers=0)
    with pytest.raises(ValueError):
        PasswordHashing(SMALL, max_waiting=-1)
