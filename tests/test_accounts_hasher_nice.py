"""The hashing threads run below the event loop's priority (``--login-nice``): read back from the kernel.

No timing: each pool thread records its own kernel thread ID while it hashes, and the test reads that
thread's nice value from ``/proc/self/task/TID/stat`` (and ``getpriority``) while it is held there.
Raising a thread's niceness needs no privilege: a child process run as ``nobody`` shows it too when the
tests run as root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import argon2
import pytest

from tcp_server.accounts import PasswordHashing
from tcp_server.accounts.hasher import HASH_NICENESS
from tests.clients import TIMEOUT
from tests.helpers import wait_until
from tests.test_accounts_hasher import SMALL

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux: a nice value per thread")


def nice_of(tid: int) -> int:
    """Field 19 of ``/proc/self/task/TID/stat``: the thread's nice value as the kernel holds it."""
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])  # fields after "(comm)" start at field 3


class HeldHasher(argon2.PasswordHasher):
    """The real argon2 hasher; each hash records its thread's kernel ID and waits at ``gate``."""

    def __init__(self) -> None:
        super().__init__(time_cost=SMALL.time_cost, memory_cost=SMALL.memory_cost,
                         parallelism=SMALL.parallelism, type=argon2.Type.ID)
        self.gate = threading.Event()
        self.tids: set[int] = set()
        self._lock = threading.Lock()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self._lock:
            self.tids.add(threading.get_native_id())
        if not self.gate.wait(TIMEOUT):
            raise TimeoutError("the test never opened the gate")
        return super().hash(password, salt=salt)


@pytest.fixture
def held() -> Iterator[Callable[..., tuple[PasswordHashing, HeldHasher]]]:
    made: list[tuple[PasswordHashing, HeldHasher]] = []

    def make(**kwargs: Any) -> tuple[PasswordHashing, HeldHasher]:
        hasher = HeldHasher()
        made.append((PasswordHashing(SMALL, hasher=hasher, **kwargs), hasher))
        return made[-1]

    yield make
    for pool, hasher in made:
        hasher.gate.set()  # never leave a pool thread waiting
        pool.close()


@pytest.mark.parametrize("niceness", [HASH_NICENESS, 3, 0])
async def test_each_hashing_thread_runs_at_the_configured_niceness(
    held: Callable[..., tuple[PasswordHashing, HeldHasher]], niceness: int,
) -> None:
    import asyncio

    loop_nice = nice_of(threading.get_native_id())
    pool, hasher = held(workers=2, niceness=niceness)
    jobs = [asyncio.ensure_future(pool.hash(f"password {i}")) for i in range(2)]
    await wait_until(lambda: len(hasher.tids) == 2, what="both hashing threads at the gate")
    want = min(19, loop_nice + niceness)
    assert {tid: nice_of(tid) for tid in hasher.tids} == dict.fromkeys(hasher.tids, want)
    assert {os.getpriority(os.PRIO_PROCESS, tid) for tid in hasher.tids} == {want}
    assert nice_of(threading.get_native_id()) == loop_nice  # the event loop's thread is left as it was
    hasher.gate.set()
    hashes = await asyncio.wait_for(asyncio.gather(*jobs), TIMEOUT)
    assert all(h.startswith("$argon2id$") for h in hashes)


def test_a_niceness_outside_0_to_19_is_refused() -> None:
    for bad in (-1, 20):
        with pytest.raises(ValueError):
            PasswordHashing(SMALL, niceness=bad)


CHILD = """
import asyncio, threading
from pathlib import Path
import argon2
from tcp_server.accounts import PasswordHashing
from tcp_server.accounts.hasher import HashParams

def nice(tid):
    return int(Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[16])

class Recording(argon2.PasswordHasher):
    tid = 0
    def hash(self, password, *, salt=None):
        Recording.tid = threading.get_native_id()
        return super().hash(password, salt=salt)

async def main():
    pool = PasswordHashing(HashParams(1024, 1, 1), niceness=7,
                           hasher=Recording(time_cost=1, memory_cost=1024, parallelism=1, type=argon2.Type.ID))
    await pool.hash("a password")  # the thread stays in the pool until it closes
    print(__import__("os").getuid(), nice(threading.get_native_id()), nice(Recording.tid))
    pool.close()

asyncio.run(main())
"""


def test_raising_a_threads_niceness_needs_no_privilege() -> None:
    """As root the tests run the pool in a child as ``nobody`` (65534); otherwise as the user they run as."""
    root = os.geteuid() == 0
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if root else []
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run([*prefix, sys.executable, "-c", CHILD], cwd=repo, capture_output=True, text=True,
                          timeout=TIMEOUT, env={**os.environ, "PYTHONPATH": str(repo)}, check=False)
    assert done.returncode == 0, done.stderr
    uid, loop_nice, thread_nice = map(int, done.stdout.split())
    assert uid == (65534 if root else os.geteuid())
    assert thread_nice == min(19, loop_nice + 7)


async def test_the_servers_flag_reaches_its_pool(tmp_path: Path) -> None:
    from tcp_server import ChatServer
    from tests.conftest import server_config

    server = ChatServer(server_config(database=f"sqlite:///{tmp_path / 'chat.db'}", login_nice=4))
    await server.start()
    try:
        assert server.accounts is not None and server.accounts.hashing.niceness == 4
    finally:
        await server.close(timeout=2.0)
