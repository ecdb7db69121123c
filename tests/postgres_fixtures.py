"""A real PostgreSQL for tests: a private cluster per test session on a free loopback port, removed after.

Debian's ``postgresql`` (scripts/install-system-deps.sh); never the system service. ``initdb``
refuses root, so when the tests run as root the cluster belongs to the ``postgres`` user. Each
test that asks for ``postgres_url`` gets a database of its own in that cluster.
"""

from __future__ import annotations

import glob
import itertools
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

START_TIMEOUT = 30.0


def postgres_bin() -> pathlib.Path | None:
    """The newest installed server's bin directory."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return pathlib.Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresCluster:
    """One private cluster; :meth:`database` makes a fresh database in it."""

    bindir: pathlib.Path
    root: pathlib.Path
    port: int
    user: str
    proc: subprocess.Popen[bytes] | None = None

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT, check=True)

    @property
    def data(self) -> pathlib.Path:
        return self.root / "data"

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")

    def start(self) -> None:
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - handed to the child, closed below
        command = [str(self.bindir / "postgres"), "-D", str(self.data), "-k", str(self.root), "-h", "127.0.0.1",
                   "-p", str(self.port), "-c", "fsync=off", "-c", "max_connections=200"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        try:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ready():
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + (self.root / "postgres.log").read_text())
            if time.monotonic() > deadline:
                raise RuntimeError("postgres did not start in time")
            time.sleep(0.05)

    def ready(self) -> bool:
        result = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                capture_output=True, timeout=START_TIMEOUT)
        return result.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._run(str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                         "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql).stdout

    def database(self, name: str) -> str:
        """A fresh, empty database; its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()  # SIGTERM: a smart shutdown; the child of runuser gets it too
        try:
            proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=START_TIMEOUT)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    bindir = postgres_bin()
    if bindir is None:
        pytest.fail("PostgreSQL is not installed: run scripts/install-system-deps.sh test")
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    root = pathlib.Path(tempfile.mkdtemp(prefix="hanchat-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user)
    cluster = PostgresCluster(bindir, root, _free_port(), user)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


_names = itertools.count()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A database of this test's own in the session's cluster."""
    return postgres_cluster.database(f"t{os.getpid()}_{next(_names)}")
