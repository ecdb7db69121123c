"""A private PostgreSQL cluster for the bench: initdb into a temporary directory, a free loopback port, removed after.

Debian's ``postgresql`` binaries (``/usr/lib/postgresql/N/bin``), never the system service. ``initdb``
refuses root, so as root the cluster belongs to the ``postgres`` user. Unlike the tests' cluster this
one keeps ``fsync`` on: a commit costs what it costs in production.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("bench")
START_TIMEOUT = 60.0


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run scripts/install-system-deps.sh test")
    return Path(found[-1]).parent


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int
    user: str
    proc: subprocess.Popen[bytes] | None = None
    databases: list[str] = field(default_factory=list)

    def _cmd(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if os.geteuid() == 0 else list(argv)

    def run(self, *argv: str) -> str:
        return subprocess.run(self._cmd(*argv), capture_output=True, text=True, timeout=START_TIMEOUT,
                              check=True).stdout

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self.run(str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql)

    def database(self, name: str) -> str:
        """A fresh database; its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def pids(self) -> list[int]:
        """The postmaster and its children (backends, writer, WAL writer...): whose CPU the store costs."""
        if self.proc is None:
            return []
        master = _postmaster(self.proc.pid)
        out = [master] if master else []
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split() if master else []
        except OSError:
            children = []
        return out + [int(c) for c in children]

    def db_bytes(self, name: str) -> int:
        return int(self.psql(f"SELECT pg_database_size('{name}')").strip())


def _postmaster(pid: int) -> int | None:
    """``runuser`` forks postgres as its child: the postmaster is that child (or ``pid`` itself)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        if comm.startswith("postgres"):
            return pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(children[0]) if children else None
    except OSError:
        return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def cluster(cpus: set[int] | None = None, fsync: bool = True, settings: tuple[str, ...] = ()) -> Iterator[Cluster]:
    """Start a private cluster (pinned to ``cpus``, as the chat server it serves); stop and remove it after."""
    bindir = postgres_bin()
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    root = Path(tempfile.mkdtemp(prefix="chat-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user)
    c = Cluster(bindir, root, _free_port(), user)
    try:
        c.run(str(bindir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
              "--locale=C.UTF-8", "--no-sync")
        opts = ["-c", f"fsync={'on' if fsync else 'off'}", "-c", "max_connections=100",
                "-c", "shared_buffers=256MB", "-c", "listen_addresses=127.0.0.1"]
        for s in settings:
            opts += ["-c", s]
        logf = open(root / "postgres.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            c.proc = subprocess.Popen(
                c._cmd(str(bindir / "postgres"), "-D", str(root / "data"), "-k", str(root), "-p", str(c.port),
                       *opts),
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        finally:
            logf.close()
        deadline = time.monotonic() + START_TIMEOUT
        while subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(c.port)],
                             capture_output=True, timeout=START_TIMEOUT).returncode != 0:
            if c.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + (root / "postgres.log").read_text()[-2000:])
            if time.monotonic() > deadline:
                raise RuntimeError("postgres did not start in time")
            time.sleep(0.1)
        log.info("private PostgreSQL on 127.0.0.1:%d (%s, fsync %s)", c.port, root, "on" if fsync else "off")
        yield c
    finally:
        if c.proc is not None and c.proc.poll() is None:
            c.proc.terminate()
            try:
                c.proc.wait(START_TIMEOUT)
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)
