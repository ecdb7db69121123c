"""``python -m bench.logins``: a login storm while a 1,000-user room carries a moderate fan-out.

Issue 24's target: 500 logins (``018``) at once while 1,000 users talk; the others' message latency
p99 stays at or under 50 ms. Reports logins/s, the room's latency before and during the storm, the
server's own view of the same windows, and the server's memory before and at its peak (the hashing
pool's share: argon2id's 19 MiB per worker while it runs).

The server runs as its own process (``chat-server``, a fresh SQLite file); the accounts are written
straight into its database before it starts (one argon2id hash shared by all: the storm costs what 500
verifications cost). The room: 50 probes, 10 senders (this process), and the ~940 members that only
have to be present and read in a ``python -m bench.sinks`` process of their own at nice 19, so that
this process (which times) is not the one reading every join and leave 1,000 times (``--sinks inline``
puts them back here: the earlier generator). Senders stamp each message with the wall clock; a probe
notes its delay at its read and at the kernel's arrival stamp on its socket (``SO_TIMESTAMPNS``),
which this process's own lateness (a 10 ms ticker, also reported) cannot inflate. The server's side,
scraped from its ``--metrics-port`` at the window's edges: its loop-lag timer's late ticks and its
fan-out flushes' durations. The storm lasts from the first ``018`` until the server counts the room
back at its size (every storm client joined, then left).

A ``109#login-busy`` is tried again on the same connection after ``--retry`` (2-5 s): neither real
client retries by itself (the terminal client stops, the page shows the refusal by its form), so a
retry is a person pressing "log in" again. ``--storm guests`` is the control: the same joins
(``001``), leaves and ``107`` lists, no password hash, optionally at a set rate (``--pace``).
``--generator-cpus`` and ``--server-cpus`` pin the two processes; ``--login-nice`` is the server's
flag. The server's ``--join-timeout`` is raised to 120 s so that every login of a slow storm gets in.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import socket
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

TIMEOUT = 30.0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The checkout, where ``python -m bench.sinks`` is found."""


def cpu_list(raw: str) -> set[int]:
    """``0``, ``0,1``, ``0-3``: a set of CPU numbers."""
    cpus: set[int] = set()
    for part in raw.split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


class Ticker:
    """How late this process's own event loop runs: a 10 ms timer, its lateness noted (ms)."""

    def __init__(self) -> None:
        self.late: list[float] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            due = time.monotonic() + 0.01
            await asyncio.sleep(0.01)
            self.late.append((time.monotonic() - due) * 1000)


@dataclass
class Latencies:
    """Delays (ms) of the messages the probes read, split into before and during the storm: to the
    probe's read (``before``/``during``: includes this process's own lateness) and to the kernel's
    arrival stamp on the probe's socket (``arrived_*``: the server and loopback, not this process)."""

    before: list[float] = field(default_factory=list)
    during: list[float] = field(default_factory=list)
    arrived_before: list[float] = field(default_factory=list)
    arrived_during: list[float] = field(default_factory=list)
    storm: bool = False
    began: float = 0.0  # the storm's start (monotonic s)
    worst: dict[int, float] = field(default_factory=dict)  # the storm's second -> its worst arrival delay (ms)

    def add(self, ms: float, arrived_ms: float | None = None) -> None:
        (self.during if self.storm else self.before).append(ms)
        if self.storm and arrived_ms is not None:
            second = int(time.monotonic() - self.began)
            self.worst[second] = max(self.worst.get(second, 0.0), arrived_ms)
        if arrived_ms is not None:
            (self.arrived_during if self.storm else self.arrived_before).append(arrived_ms)

    def clear(self) -> None:
        for values in (self.before, self.during, self.arrived_before, self.arrived_during):
            values.clear()


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def p99(values: list[float]) -> float:
    return quantile(values, 0.99)


def spread(values: list[float]) -> str:
    """p50 / p90 / p99 / max, in ms."""
    return (f"p50 {quantile(values, 0.5):.1f} / p90 {quantile(values, 0.9):.1f} / p99 {p99(values):.1f} / "
            f"max {max(values, default=float('nan')):.1f} ms ({len(values)} samples)")


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


async def make_accounts(db: Path, count: int, password: str) -> None:
    """``count`` accounts ``user0``... with one real argon2id hash, written through the store's own code."""
    from tcp_server.accounts.hasher import PasswordHashing
    from tcp_server.protocol.ids import id_key
    from tcp_server.store import parse_database
    from tcp_server.store.accounts import AccountStore
    from tcp_server.store.db import MessageStore

    hashing = PasswordHashing()
    try:
        hashed = await hashing.hash(password)
    finally:
        hashing.close()
    store = await MessageStore.open(parse_database(f"sqlite:///{db}"))
    try:
        accounts = AccountStore(store.engine)
        for i in range(count):
            await accounts.create(id_key(f"acct{i}"), f"acct{i}", hashed)
    finally:
        await store.close()


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of process ``pid`` (or of its thread ``tid``)."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hash_memory(workers: int, rounds: int = 20) -> int:
    """argon2id's memory alone: ``workers`` threads verifying ``rounds`` times each with the OWASP
    parameters, this process's RSS before, after and at its peak (``VmHWM``). Run it with
    ``MALLOC_MMAP_THRESHOLD_=131072`` to see the memory given back when the hashing ends."""
    import threading

    from tcp_server.accounts.hasher import OWASP_ARGON2ID

    hasher = OWASP_ARGON2ID.hasher()
    stored = hasher.hash("bench password 1")  # (its own 19 MiB, before the baseline)
    before, _ = rss_kib(os.getpid())

    def work() -> None:
        for _ in range(rounds):
            hasher.verify(stored, "bench password 1")

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after, peak = rss_kib(os.getpid())
    print(f"{workers} threads x {rounds} argon2id verifications (m = {OWASP_ARGON2ID.memory_cost // 1024} MiB): "
          f"RSS {before / 1024:.1f} MiB before, {peak / 1024:.1f} MiB at the peak (+{(peak - before) / 1024:.1f}), "
          f"{after / 1024:.1f} MiB after; MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', 'unset')}")
    return 0


HISTOGRAMS = ("hanchat_loop_lag_seconds", "hanchat_flush_duration_seconds")


def scrape(port: int) -> dict[str, dict[str, float]]:
    """The server's own view, from its /metrics: for each of HISTOGRAMS its cumulative bucket counts by
    ``le`` and its ``sum`` (the loop-lag timer's lateness; each fan-out flush's duration)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    out: dict[str, dict[str, float]] = {name: {} for name in HISTOGRAMS}
    for line in text.splitlines():
        if line.startswith("hanchat_users_online "):
            out["users"] = {"online": float(line.rsplit(" ", 1)[1])}
        for name in HISTOGRAMS:
            if line.startswith(f"{name}_bucket{{"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                out[name][le] = float(line.rsplit(" ", 1)[1])
            elif line.startswith(f"{name}_sum "):
                out[name]["sum"] = float(line.rsplit(" ", 1)[1])
    return out


def lag_share(before: dict[str, float], after: dict[str, float], bound: str) -> tuple[float, float]:
    """(observations between the scrapes, the share of them above ``bound`` seconds)."""
    total = after["+Inf"] - before["+Inf"]
    late = total - (after[bound] - before[bound])
    return total, (late / total if total else float("nan"))


def server_view(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], seconds: float) -> str:
    """One line: the loop-lag timer's late ticks and the flushes' durations between two scrapes."""
    lag, flush = "hanchat_loop_lag_seconds", "hanchat_flush_duration_seconds"
    ticks, lag50 = lag_share(before[lag], after[lag], "0.05")
    _, lag250 = lag_share(before[lag], after[lag], "0.25")
    _, lag10 = lag_share(before[lag], after[lag], "0.01")
    flushes, flush10 = lag_share(before[flush], after[flush], "0.01")
    _, flush50 = lag_share(before[flush], after[flush], "0.05")
    busy = after[flush].get("sum", 0.0) - before[flush].get("sum", 0.0)
    return (f"loop-lag timer {ticks:.0f} ticks, {lag10:.1%} later than 10 ms, {lag50:.1%} later than 50 ms, "
            f"{lag250 * ticks:.0f} later than 250 ms; "
            f"flushes {flushes:.0f} ({flushes / seconds:.0f}/s), {flush10:.2%} longer than 10 ms, "
            f"{flush50:.2%} longer than 50 ms, flushing {busy / seconds:.0%} of the loop's time")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_port(port: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise TimeoutError("the server did not start")


class Member(asyncio.Protocol):
    """One room member, read in the transport's callback (no stream, no task per socket): the generator
    spends microseconds per arrival, so a probe's timestamp is not taken after 999 other sockets' wakeups.
    A probe (``latencies``) notes each stamped message's delay; the others discard what they read."""

    def __init__(self, name: str, latencies: Latencies | None) -> None:
        self.name = name
        self.latencies = latencies
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.WriteTransport | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # (uvloop's is not an asyncio subclass)
        self.transport.write(f"001#{self.name}\n".encode())

    def data_received(self, data: bytes) -> None:
        if self.latencies is None and self.joined.done():
            return
        now = time.time_ns()
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            if line.startswith(b"107") and not self.joined.done():
                self.joined.set_result(None)
            elif self.latencies is not None and line.startswith(b"105#") and b"#t=" in line:
                stamp = int(line.rsplit(b"#t=", 1)[1].split(b" ", 1)[0])
                self.latencies.add((now - stamp) / 1e6)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"{self.name} was closed before it joined"))

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # (Linux's value; Python 3.11 does not name it)


class Probe:
    """A timing member on a raw socket with ``SO_TIMESTAMPNS``: each read carries the kernel's arrival
    time, so a message's delay to its arrival excludes this process's own lateness in reading it. (TCP
    stamps a read with its last segment's arrival: a read of several segments overstates the earlier
    ones' delay, never understates it.)"""

    def __init__(self, sock: socket.socket, latencies: Latencies) -> None:
        self.sock = sock
        self.latencies = latencies
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = b""

    def readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(1 << 16, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return
        except OSError:
            data, ancillary = b"", []
        now = time.time_ns()
        if not data:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            if not self.joined.done():
                self.joined.set_exception(ConnectionError("a probe was closed before it joined"))
            return
        arrived = now
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanos = struct.unpack("qq", raw[:16])
                arrived = seconds * 1_000_000_000 + nanos
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            if line.startswith(b"107") and not self.joined.done():
                self.joined.set_result(None)
            elif line.startswith(b"105#") and b"#t=" in line:
                stamp = int(line.rsplit(b"#t=", 1)[1].split(b" ", 1)[0])
                self.latencies.add((now - stamp) / 1e6, (arrived - stamp) / 1e6)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


async def probe(port: int, name: str, latencies: Latencies) -> Probe:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), TIMEOUT)
    sock.send(f"001#{name}\n".encode())
    made = Probe(sock, latencies)
    loop.add_reader(sock.fileno(), made.readable)
    await asyncio.wait_for(made.joined, TIMEOUT)
    return made


class Sinks:
    """The members that only read, in a ``python -m bench.sinks`` process of their own at a low priority."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, port: int, first: int, count: int, nice: int) -> Sinks:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.sinks", "--port", str(port), "--first", str(first), "--count", str(count),
            "--nice", str(nice), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=REPO)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 300)
        if not line.startswith(b"ready"):
            raise RuntimeError(f"the sink process did not join its members: {line!r}")
        return cls(proc)

    async def stop(self) -> tuple[int, int]:
        """(bytes the sinks read, connections the server closed on them)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        line = await asyncio.wait_for(self.proc.stdout.readline(), TIMEOUT)
        await asyncio.wait_for(self.proc.wait(), TIMEOUT)
        _, nbytes, closed = line.split()
        return int(nbytes), int(closed)

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


async def member(port: int, name: str, latencies: Latencies | None) -> Member:
    loop = asyncio.get_running_loop()
    _, joined = await asyncio.wait_for(
        loop.create_connection(lambda: Member(name, latencies), "127.0.0.1", port), TIMEOUT)
    await asyncio.wait_for(joined.joined, TIMEOUT)
    return joined


async def sender(writer: Member, name: str, rate: float, stop: asyncio.Event) -> None:
    pad = "x" * 60
    while not stop.is_set():
        writer.write(f"002#{name}#t={time.time_ns()} {pad}\n".encode())  # (wall clock: the kernel stamps so)
        await asyncio.sleep(random.expovariate(rate))


async def login(port: int, i: int, password: str, busy: list[int], refused: dict[str, int],
                guest: bool = False, delay: float = 0.0, retry: tuple[float, float] = (2.0, 5.0)) -> float | None:
    """One login, tried again on the same connection ``retry`` (a uniform range, s) after each
    ``109#login-busy``; when it joined (monotonic s), or None if refused (counted in ``refused`` by the
    109's reason). ``guest``: a ``001`` join instead (the control: the same joins, leaves and ``107``
    without a password hash); ``delay``: seconds before it starts.

    Neither real client retries by itself: the terminal client reports the refusal and stops, the page
    shows it by the login form and the person presses "log in" again. The default range is that person."""
    if delay:
        await asyncio.sleep(delay)
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, limit=1 << 20), TIMEOUT)
    try:
        while True:
            writer.write((f"001#guest{i}" if guest else f"018#acct{i}#{password}").encode() + b"\n")
            while True:
                line = await asyncio.wait_for(reader.readline(), 120.0)
                if line.startswith(b"100#"):
                    return time.monotonic()
                if line.startswith(b"109#login-busy"):
                    busy[0] += 1
                    await asyncio.sleep(random.uniform(*retry))  # a person reading the refusal, trying again
                    break
                if line.startswith(b"109#"):
                    reason = line.decode(errors="replace").split("#")[1].strip()
                    refused[reason] = refused.get(reason, 0) + 1
                    return None
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="hanchat-logins-"))
    password = "bench # storm-password-1"
    db = work / "chat.db"
    await make_accounts(db, args.logins, password)
    port = args.port or free_port()
    metrics = free_port()
    server_bin = shutil.which("chat-server", path=str(Path(sys.executable).parent)) or "chat-server"
    pin = ["taskset", "-c", args.server_cpus] if args.server_cpus else []
    if args.generator_cpus:
        os.sched_setaffinity(0, cpu_list(args.generator_cpus))
    proc = await asyncio.create_subprocess_exec(
        *pin, server_bin, *["--port", str(port), "--host", "127.0.0.1", "--database", f"sqlite:///{db}",
         "--flood-rate", "0", "--max-per-address", "0", "--max-new-per-minute", "0", "--max-clients", "5000",
         "--history", "0", "--resume-grace", "0", "--join-timeout", "120", "--login-per-address", "0",
         "--log-level", "WARNING",
         "--login-workers", str(args.workers), "--login-queue", str(args.queue), "--login-nice", str(args.nice),
         "--metrics-port", str(metrics)],
        env={**os.environ, "CHAT_LANG": "en"})
    assert proc.pid is not None
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    writers: list[Member] = []
    probes: list[Probe] = []
    sinks: Sinks | None = None
    retry = cast(tuple[float, float], tuple(float(x) for x in args.retry.split("-", 1)))
    try:
        await wait_port(port)
        latencies = Latencies()
        # The room: probes u0.. (timed, here), the silent members (a sink process, or here with --sinks
        # inline: the old generator), the senders last (here; they read and discard in a callback).
        silent = args.users - args.probes - args.senders
        assert silent >= 0, "--users must cover --probes and --senders"
        for start in range(0, args.probes, 100):
            probes += await asyncio.gather(*(probe(port, f"u{i}", latencies)
                                             for i in range(start, min(args.probes, start + 100))))
        if args.sinks == "process":
            sinks = await Sinks.start(port, args.probes, silent, args.sink_nice)
            first_here = args.probes + silent
        else:
            first_here = args.probes
        for start in range(first_here, args.users, 100):
            writers += await asyncio.gather(*(member(port, f"u{i}", None)
                                              for i in range(start, min(args.users, start + 100))))
        for i in range(args.senders):
            tasks.append(asyncio.create_task(sender(writers[-1 - i], f"u{args.users - 1 - i}",
                                                    args.rate / args.senders, stop)))
        ticker = Ticker()
        tasks.append(asyncio.create_task(ticker.run(stop)))
        await asyncio.sleep(args.warmup)
        latencies.clear()
        ticker.late.clear()
        view_start = await asyncio.to_thread(scrape, metrics)
        await asyncio.sleep(args.baseline)
        gen_before = list(ticker.late)
        ticker.late.clear()
        rss_before, _ = rss_kib(proc.pid)
        view_before = await asyncio.to_thread(scrape, metrics)
        cpu_before, loop_before = cpu_seconds(proc.pid), cpu_seconds(proc.pid, proc.pid)
        sink_cpu_before = cpu_seconds(sinks.proc.pid) if sinks else 0.0
        print(f"the storm begins (server PID {proc.pid})", file=sys.stderr, flush=True)  # (a profiler's cue)
        latencies.storm, latencies.began = True, time.monotonic()
        busy = [0]
        refused: dict[str, int] = {}
        began = time.monotonic()
        peak = rss_before

        async def watch() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, rss_kib(proc.pid)[0])
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        results = await asyncio.gather(*(login(port, i, password, busy, refused, args.storm == "guests",
                                               i / args.pace if args.pace else 0.0, retry)
                                         for i in range(args.logins)))
        joined_all = time.monotonic()
        # The storm lasts until the server has seen every storm client leave (their leaves are a
        # fan-out to the room too): its users online back to the room's size.
        for _ in range(int(TIMEOUT / 0.05)):
            if (await asyncio.to_thread(scrape, metrics))["users"]["online"] <= args.users:
                break
            await asyncio.sleep(0.05)
        ended = time.monotonic()
        latencies.storm = False
        gen_during = list(ticker.late)
        cpu_storm = cpu_seconds(proc.pid) - cpu_before
        loop_storm = cpu_seconds(proc.pid, proc.pid) - loop_before
        sink_cpu = (cpu_seconds(sinks.proc.pid) - sink_cpu_before) if sinks else float("nan")
        view_after = await asyncio.to_thread(scrape, metrics)
        ok = [r for r in results if r is not None]
        elapsed = ended - began
        stop.set()
        await watcher
        sink_bytes, sink_closed = await sinks.stop() if sinks else (0, 0)
        sinks = None
        print(f"users {args.users}, senders {args.senders}, {args.rate:g} msg/s to the room "
              f"({args.rate * (args.users - 1):,.0f} deliveries/s), probes {args.probes}, silent members "
              f"{silent} ({'a sink process at nice ' + str(args.sink_nice) if args.sinks == 'process' else 'inline'}); "
              f"storm: {args.logins} {args.storm}" + (f" at {args.pace:g}/s" if args.pace else " at once") +
              f", login-busy retried after {args.retry} s; login workers {args.workers}, queue {args.queue}, "
              f"nice {args.nice}; CPUs: server {args.server_cpus or 'any'}, generator {args.generator_cpus or 'any'}"
              f"; load average before {os.getloadavg()[0]:.2f}")
        print(f"logins: {len(ok)}/{args.logins} joined in {joined_all - began:.2f} s = "
              f"{len(ok) / (joined_all - began):.1f} logins/s (the last one gone {elapsed:.2f} s after the start); "
              f"login-busy answers retried: {busy[0]}; refused: {refused or 'none'}")
        print(f"room latency before the storm, to the probe's read: {spread(latencies.before)}")
        print(f"room latency during the storm, to the probe's read: {spread(latencies.during)}")
        print(f"room latency before the storm, to the kernel's arrival: {spread(latencies.arrived_before)}")
        print(f"room latency during the storm, to the kernel's arrival: {spread(latencies.arrived_during)}")
        worst = sorted(latencies.worst.items(), key=lambda kv: -kv[1])[:5]
        print("the storm's worst seconds (second: worst arrival delay): " +
              ", ".join(f"{second}: {ms:.0f} ms" for second, ms in sorted(worst)))
        print(f"generator's own loop lateness p99: before {p99(gen_before):.1f} ms, "
              f"during the storm {p99(gen_during):.1f} ms (max {max(gen_during, default=float('nan')):.1f} ms)")
        print(f"server before the storm: {server_view(view_start, view_before, args.baseline)}")
        print(f"server during the storm: {server_view(view_before, view_after, elapsed)}")
        print(f"server CPU during the storm: {cpu_storm / elapsed:.0%} of a core, its event loop's thread "
              f"{loop_storm / elapsed:.0%}, the other threads (hashing, database) "
              f"{(cpu_storm - loop_storm) / elapsed:.0%}; the sink process {sink_cpu / elapsed:.0%} "
              f"({sink_bytes / 1e6:.0f} MB read in the whole run, {sink_closed} closed by the server)")
        print(f"server RSS: {rss_before / 1024:.1f} MiB before, {peak / 1024:.1f} MiB at the storm's peak "
              f"(+{(peak - rss_before) / 1024:.1f} MiB)")
        from tcp_server.accounts.hasher import OWASP_ARGON2ID

        print(f"argon2id's own memory: {OWASP_ARGON2ID.memory_cost / 1024:.0f} MiB x {args.workers} hashes at once "
              f"= {OWASP_ARGON2ID.memory_cost * args.workers / 1024:.0f} MiB")
        return 0 if len(ok) == args.logins and not sink_closed else 1
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        for writer in writers:
            if writer.transport is not None:
                writer.transport.close()
        for made in probes:
            made.close()
        if sinks is not None:
            sinks.kill()
            await sinks.proc.wait()
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.logins", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--rate", type=float, default=20.0, help="messages a second to the room, all senders together")
    p.add_argument("--probes", type=int, default=50, help="room members that time every message")
    p.add_argument("--logins", type=int, default=500)
    p.add_argument("--workers", type=int, default=2, help="the server's --login-workers")
    p.add_argument("--queue", type=int, default=32, help="the server's --login-queue")
    p.add_argument("--storm", choices=("logins", "guests"), default="logins",
                   help="guests: the control, 001 joins instead of 018 logins (no hashing)")
    p.add_argument("--pace", type=float, default=0.0,
                   help="start the storm's clients at this many a second (0: all at once)")
    p.add_argument("--nice", type=int, default=10, help="the server's --login-nice")
    p.add_argument("--retry", default="2-5", metavar="MIN-MAX",
                   help="seconds before a storm client tries again after 109#login-busy, uniform in the range "
                        "(default 2-5: a person pressing log in again; the earlier runs used 0.2-0.4)")
    p.add_argument("--sinks", choices=("process", "inline"), default="process",
                   help="where the members that only read live: a low-priority process of their own (default) "
                        "or this one (the earlier generator)")
    p.add_argument("--sink-nice", type=int, default=19, help="the sink process's nice increment")
    p.add_argument("--server-cpus", default="", help="CPUs the server runs on (taskset -c; default: any)")
    p.add_argument("--generator-cpus", default="", help="CPUs this load generator runs on (default: any)")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--baseline", type=float, default=5.0)
    p.add_argument("--port", type=int, default=0, help="the server's port (0: a free one)")
    p.add_argument("--hash-memory", action="store_true",
                   help="only measure argon2id's memory: --workers threads hashing in this process")
    args = p.parse_args()
    if args.hash_memory:
        sys.exit(hash_memory(args.workers))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
