"""The servers under test, each started privately on a loopback port and stopped by the bench.

Ours runs as ``python -m tcp_server`` with flood control and per-address limits
off (a benchmark is one address sending as fast as asked). ngircd runs from a
config generated into a temporary directory with its flood penalties off, so
that neither server is throttled by a policy the other lacks. The gateway runs
as ``python -m web_gateway`` in front of a server of ours, its per-WebSocket
rate limit off and its heartbeat an hour (the counting receivers do not answer
pings mid-step, though the generator does answer them).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("bench")

NGIRCD_PATHS = ("/usr/sbin/ngircd", "/usr/local/sbin/ngircd")
CHANNEL = "#bench"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def check_loopback(host: str) -> None:
    """Nothing of the benchmark leaves the machine."""
    if not host.startswith("127."):
        raise ValueError(f"the benchmark only runs on loopback addresses, not {host}")


@dataclass
class ServerHandle:
    """A running server process and how to reach it."""

    name: str  # "hanchat", "ngircd"
    proto: str  # the agent's protocol: "chat" or "irc"
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    tmpdir: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    backlog: int = 128  # its listen() backlog: joins keep fewer unanswered connections than this
    # processes that serve along with this one (the chat server behind a gateway): CPU is summed over all
    companions: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # more processes whose CPU counts with the server's, found afresh each time (a database's backends)
    more_pids: Callable[[], list[int]] | None = None
    # bytes the server's durable store takes on disk now (ours-durable, ours-durable-pg)
    store_bytes: Callable[[], int] | None = None
    # commits the store has made so far, where the database can say (PostgreSQL's xact_commit)
    store_commits: Callable[[], int] | None = None

    def accept_window(self, concurrency: int) -> int:
        """Unanswered connections to keep in flight: a full accept queue drops SYNs (1 s retransmits)."""
        return max(1, min(concurrency, self.backlog - 2))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self) -> dict[str, int]:
        """VmRSS/VmHWM and friends from /proc/PID/status, in KiB."""
        out: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.startswith("Vm") or key.startswith("Rss"):
                out[key] = int(value.split()[0])
        return out

    def rss_kib(self) -> int:
        return self.status()["VmRSS"]

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def _more(self) -> list[int]:
        return self.more_pids() if self.more_pids else []

    def cpu_seconds(self) -> float:
        """User plus system CPU time so far (all threads), of this process, its companions and ``more_pids``.

        A process of ``more_pids`` that ended between two readings takes its time with it: the database's
        backends live as long as the server's pooled connections, i.e. the whole run.
        """
        total = 0.0
        for pid in (self.proc.pid, *(p.pid for p in self.companions), *self._more()):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / _CLK_TCK
        return total

    def cpu_times(self) -> dict[str, tuple[float, float]]:
        """User and system CPU seconds so far of each process (the server, then its companions)."""
        out: dict[str, tuple[float, float]] = {}
        for i, proc in enumerate((self.proc, *self.companions)):
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()
            out[self.name if i == 0 else "hanchat behind it" if i == 1 else f"companion {i}"] = (
                int(fields[11]) / _CLK_TCK, int(fields[12]) / _CLK_TCK)
        more = self._more()
        if more:
            user = system = 0.0
            for pid in more:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                except OSError:
                    continue
                user += int(fields[11]) / _CLK_TCK
                system += int(fields[12]) / _CLK_TCK
            out["database"] = (user, system)
        return out

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in (self.proc, *self.companions))


def _pin(cpus: set[int] | None) -> None:
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError:
            pass


def wait_listening(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Until ``port`` accepts a connection, or fail if the process died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port} after {timeout:.0f} s")


def listening_ports(pid: int) -> list[int]:
    """TCP ports that process ``pid`` listens on, from /proc (lets a server start on port 0)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(set(ports))


def wait_port(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """The port a server started on port 0 ended up listening on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening")
        ports = listening_ports(proc.pid)
        if ports:
            return ports[0]
        time.sleep(0.05)
    raise RuntimeError(f"server not listening after {timeout:.0f} s")


def free_port(host: str) -> int:
    """A port nobody listens on now (for servers that cannot be told port 0)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        # as both servers do: a port whose old connections sit in TIME_WAIT is free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_port_free(host: str, port: int, timeout: float = 65.0) -> bool:
    """Whether ``port`` is free, waiting up to a TIME_WAIT period for the previous server's sockets."""
    deadline = time.monotonic() + timeout
    while not port_free(host, port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def run_ours(
    port: int, host: str = "127.0.0.1", cpus: set[int] | None = None, extra_args: tuple[str, ...] = (),
    pythonpath: str | None = None, name: str = "hanchat", env_extra: dict[str, str] | None = None,
) -> Iterator[ServerHandle]:
    """This project's TCP server, benchmark settings (no flood control, no per-address limits).

    ``pythonpath`` runs another copy of ``tcp_server`` (an older commit, say) for before/after figures;
    ``env_extra`` sets ``CHAT_*`` variables (history and resume are off unless it turns them on).
    """
    check_loopback(host)
    if port and not wait_port_free(host, port):
        raise RuntimeError(f"port {port} is taken; pick another with --port")
    cmd = [
        sys.executable, "-m", "tcp_server", "--host", host, "--port", str(port),
        "--flood-rate", "0", "--max-per-address", "0", "--max-new-per-minute", "0",
        "--max-clients", "20000", "--log-level", "WARNING", *extra_args,
    ]
    env = dict(os.environ)
    # The load generator counts every line after 107 as a delivery: no 112/111 (an older copy ignores these).
    env.setdefault("CHAT_RESUME_GRACE", "0")
    env.setdefault("CHAT_HISTORY", "0")
    # Today's in-memory history unless a kind asks for a database (the server's own default is an SQLite file).
    env.setdefault("CHAT_DATABASE", "memory")
    env.update(env_extra or {})
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log.info("starting our server: %s%s", " ".join(cmd), f" (PYTHONPATH={pythonpath})" if pythonpath else "")
    # ``-m`` puts the working directory first on sys.path: run from the copy being measured
    proc = subprocess.Popen(cmd, env=env, cwd=pythonpath or None, preexec_fn=(lambda: _pin(cpus)) if cpus else None)
    try:
        if port == 0:
            port = wait_port(proc)
        wait_listening(host, port, proc)
        yield ServerHandle(name, "chat", host, port, proc, backlog=1024)
    finally:
        _stop(proc)


@contextmanager
def scraped(url: str, every: float = 1.0) -> Iterator[None]:
    """Scrape ``url`` every ``every`` seconds while the block runs (a Prometheus more eager than most)."""
    import threading
    import urllib.request

    stop = threading.Event()

    def scrape() -> None:
        while not stop.wait(every):
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    answer.read()
            except OSError as exc:
                log.warning("scraping %s failed: %s", url, exc)

    thread = threading.Thread(target=scrape, name="scraper", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


@contextmanager
def run_ours_redis(
    port: int, host: str = "127.0.0.1", cpus: set[int] | None = None, pythonpath: str | None = None,
    nodes: int = 1,
) -> Iterator[ServerHandle]:
    """Our server as ``nodes`` (1 or 2) nodes of a shared room (``--redis``), with a private redis-server.

    Redis runs unpinned (it is the shared engine, not a node under test); its CPU and the
    second node's are counted with the first node's, so the figure is what the shared room
    costs in all. With two nodes the generator sends every odd user to the second node.
    """
    check_loopback(host)
    redis_port = free_port(host)
    tmp = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    redis = subprocess.Popen(
        [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(redis_port), "--bind", host,
         "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(host, redis_port, redis)
        url = f"redis://{host}:{redis_port}/0"
        with run_ours(port, host, cpus, ("--redis", url, "--node-id", "bench-1"), pythonpath) as handle:
            handle.name = "hanchat-redis"
            handle.companions.append(redis)
            handle.extra["redis"] = url
            if nodes == 1:
                yield handle
                return
            with run_ours(0, host, cpus, ("--redis", url, "--node-id", "bench-2"), pythonpath) as second:
                handle.name = "hanchat-redis2"
                handle.companions.append(second.proc)
                handle.extra["port2"] = str(second.port)
                yield handle
    finally:
        _stop(redis)
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def run_gateway(
    port: int, host: str = "127.0.0.1", cpus: set[int] | None = None, pythonpath: str | None = None,
    name: str = "gateway",
) -> Iterator[ServerHandle]:
    """Our server on a free port and the web gateway in front of it on ``port``, both on ``cpus``.

    The pair gets the same CPU as a server alone: the comparison with direct TCP
    is of one core's worth of serving either way.
    """
    check_loopback(host)
    if port == 0:
        port = free_port(host)
    if not wait_port_free(host, port):
        raise RuntimeError(f"port {port} is taken; pick another with --port")
    with run_ours(0, host, cpus, pythonpath=pythonpath) as backend:
        cmd = [
            sys.executable, "-m", "web_gateway", "--host", host, "--port", str(port),
            "--server", f"{host}:{backend.port}", "--rate", "0", "--heartbeat", "3600", "--log-level", "WARNING",
        ]
        if not pythonpath:  # this checkout's per-address limits; an older copy may not know the flags
            cmd += ["--address-rate", "0", "--max-ws-per-address", "0"]
        log.info("starting the gateway: %s", " ".join(cmd))
        env = dict(os.environ)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.Popen(cmd, env=env, cwd=pythonpath or None,
                                preexec_fn=(lambda: _pin(cpus)) if cpus else None)
        try:
            wait_listening(host, port, proc)
            yield ServerHandle(name, "ws", host, port, proc, backlog=1024, companions=[backend.proc],
                               extra={"backend_port": str(backend.port)})
        finally:
            _stop(proc)


def sqlite_bytes(path: Path) -> int:
    """An SQLite database's size on disk after a checkpoint: its file (the WAL folded in, then truncated)."""
    import sqlite3

    if path.exists():
        with sqlite3.connect(path, timeout=30) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file() and ".bak" not in p.name)


@contextmanager
def run_ours_pg(port: int, host: str = "127.0.0.1", cpus: set[int] | None = None,
                name: str = "hanchat-durable-pg") -> Iterator[ServerHandle]:
    """``ours-durable`` on a private PostgreSQL cluster (``bench/pg.py``), started here and removed after.

    The cluster runs on the server's CPUs and its processes' CPU counts with the server's: the
    figure is what serving with a PostgreSQL store costs in all, on the same core as without.
    """
    from . import pg

    with pg.cluster(cpus) as cluster:
        url = cluster.database("chat")
        with run_ours(port, host, cpus, name=name,
                      env_extra={"CHAT_HISTORY": "50", "CHAT_RESUME_GRACE": "60", "CHAT_DATABASE": url}) as handle:
            handle.more_pids = cluster.pids
            handle.store_bytes = lambda: cluster.db_bytes("chat")
            handle.store_commits = lambda: int(cluster.psql(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = 'chat'").strip())
            handle.extra["database"] = "postgresql (private cluster, fsync on)"
            yield handle


def ngircd_binary() -> str:
    for path in NGIRCD_PATHS:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("ngircd")
    if found:
        return found
    raise RuntimeError("ngircd is not installed: run scripts/install-system-deps.sh bench")


def ngircd_config(host: str, port: int) -> str:
    """A private ngircd config: loopback only, flood penalties off, no per-IP or join limits.

    PingTimeout is a day so that idle receivers (which only count lines and never
    answer) are not pinged mid-run; DNS and ident lookups are off so registration
    does not wait on them.
    """
    return f"""\
[Global]
\tName = bench.local
\tInfo = chat-bench private instance
\tAdminInfo1 = chat-bench
\tAdminInfo2 = loopback only
\tAdminEMail = bench@localhost
\tListen = {host}
\tPorts = {port}
\tMotdPhrase = "bench"
[Limits]
\tMaxConnections = 0
\tMaxConnectionsIP = 0
\tMaxJoins = 0
\tMaxNickLength = 31
\tMaxPenaltyTime = 0
\tMaxListSize = 100
\tPingTimeout = 86400
\tPongTimeout = 3600
[Options]
\tPAM = no
\tDNS = no
\tIdent = no
\tMorePrivacy = no
"""


@contextmanager
def run_ngircd(port: int, host: str = "127.0.0.1", cpus: set[int] | None = None) -> Iterator[ServerHandle]:
    """ngircd on a generated config in a temporary directory, in the foreground (-n)."""
    check_loopback(host)
    if port == 0:
        port = free_port(host)
    if not wait_port_free(host, port):
        raise RuntimeError(f"port {port} is taken; pick another with --port")
    binary = ngircd_binary()
    tmp = Path(tempfile.mkdtemp(prefix="chat-bench-ngircd-"))
    conf = tmp / "ngircd.conf"
    conf.write_text(ngircd_config(host, port))
    conf.chmod(0o644)
    tmp.chmod(0o755)  # ngircd drops root to "nobody" and re-reads nothing, but be readable anyway
    cmd = [binary, "-n", "-f", str(conf)]
    log.info("starting ngircd: %s", " ".join(cmd))
    log_file = (tmp / "ngircd.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                            preexec_fn=(lambda: _pin(cpus)) if cpus else None)
    try:
        wait_listening(host, port, proc)
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        # ngircd listens with a backlog of 10 (ss -ltn shows it)
        yield ServerHandle("ngircd", "irc", host, port, proc, tmp, {"version": version.splitlines()[0]}, backlog=10)
    finally:
        _stop(proc)
        log_file.close()
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def run_server(kind: str, port: int, host: str = "127.0.0.1", cpus: set[int] | None = None,
               pythonpath: str | None = None) -> Iterator[ServerHandle]:
    """``kind`` is "ours", "ours-before" (``--ours-path``'s copy), "ours-history" (history and resume on),
    "ours-history-before" (``--ours-path``'s copy, history and resume on),
    "ours-metrics" (metrics on and scraped), "ours-durable" (ours-history with its SQLite store),
    "ours-redis" / "ours-redis2" (one / two nodes of a shared room in Redis), "ngircd" or "gateway" (ours
    behind the web gateway)."""
    if kind == "gateway":
        with run_gateway(port, host, cpus) as handle:
            yield handle
    elif kind == "gateway-before":
        if not pythonpath:
            raise ValueError("gateway-before needs --ours-path (a checkout of the commit to compare with)")
        with run_gateway(port, host, cpus, pythonpath=pythonpath, name="gateway-before") as handle:
            yield handle
    elif kind == "ours":
        with run_ours(port, host, cpus) as handle:
            yield handle
    elif kind == "ours-before":
        if not pythonpath:
            raise ValueError("ours-before needs --ours-path (a checkout of the commit to compare with)")
        with run_ours(port, host, cpus, pythonpath=pythonpath, name="hanchat-before") as handle:
            yield handle
    elif kind == "ours-history":  # the product's defaults: the last 50 messages kept, sessions resumable for 60 s
        with run_ours(port, host, cpus, name="hanchat-history",
                      env_extra={"CHAT_HISTORY": "50", "CHAT_RESUME_GRACE": "60"}) as handle:
            yield handle
    elif kind == "ours-history-before":  # --ours-path's copy with the same defaults (a store's cost, before/after)
        if not pythonpath:
            raise ValueError("ours-history-before needs --ours-path (a checkout of the commit to compare with)")
        with run_ours(port, host, cpus, pythonpath=pythonpath, name="hanchat-history-before",
                      env_extra={"CHAT_HISTORY": "50", "CHAT_RESUME_GRACE": "60"}) as handle:
            yield handle
    elif kind == "ours-durable":  # the product's defaults with its durable history: an SQLite file, 50 on join
        with tempfile.TemporaryDirectory(prefix="hanchat-bench-") as data, run_ours(
                port, host, cpus, name="hanchat-durable",
                env_extra={"CHAT_HISTORY": "50", "CHAT_RESUME_GRACE": "60",
                           "CHAT_DATABASE": f"sqlite:///{data}/chat.db"}) as handle:
            handle.store_bytes = lambda: sqlite_bytes(Path(data) / "chat.db")
            yield handle
    elif kind == "ours-durable-pg":  # the same with a private PostgreSQL (pinned with the server; fsync on)
        with run_ours_pg(port, host, cpus) as handle:
            yield handle
    elif kind == "ours-metrics":  # the metrics port on, scraped every second
        metrics_port = free_port(host)
        with run_ours(port, host, cpus, extra_args=("--metrics-port", str(metrics_port)),
                      name="hanchat-metrics") as handle, scraped(f"http://{host}:{metrics_port}/metrics"):
            yield handle
    elif kind in ("ours-redis", "ours-redis2"):
        with run_ours_redis(port, host, cpus, pythonpath=pythonpath, nodes=2 if kind == "ours-redis2" else 1) as handle:
            yield handle
    elif kind == "ngircd":
        with run_ngircd(port, host, cpus) as handle:
            yield handle
    else:
        raise ValueError(f"unknown server {kind!r}")
