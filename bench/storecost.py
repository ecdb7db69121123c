"""The durable store's own CPU per message, by batch size: ``python -m bench.storecost``.

What the server pays per message for its history, apart from fan-out (which the same-run fan-out
comparison drowns in the shared machine's noise): :meth:`MessageStore.write` of batches of B chat
lines, back to back, in this process pinned to one CPU; its CPU (all threads: the SQLite writer's too,
with the search index it fills in the background, caught up before the CPU is read) and,
for PostgreSQL, the private cluster's processes (pinned with it), per message and per commit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .history import chat_line

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return total


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def measure(url: str, batch: int, messages: int,
                  more_pids: Callable[[], list[int]] | None = None) -> dict[str, float]:
    from tcp_server.store.db import MessageStore, StoredMessage
    from tcp_server.store.urls import parse_database

    store = await MessageStore.open(parse_database(url))
    try:
        rng = random.Random(batch)
        start = await store.last_seq("lobby")
        rows = [StoredMessage("lobby", start + i + 1, 1_767_225_600_000 + i, "user1", "user1", chat_line(rng))
                for i in range(messages)]
        await store.write(rows[:batch])  # the pool's connection made, the statement cached
        await store.catch_up()
        rows = rows[batch:]
        pids = more_pids() if more_pids else []  # the backend serving the pool's connection is there now
        cpu0, db0, t0 = _self_cpu(), _proc_cpu(pids), time.perf_counter()
        for i in range(0, len(rows), batch):
            await store.write(rows[i:i + batch])
        wall = time.perf_counter() - t0
        indexed = await store.catch_up()  # SQLite: what the writer's background steps had not indexed yet
        cpu, db = _self_cpu() - cpu0, _proc_cpu(pids) - db0
    finally:
        await store.close()
    n = len(rows)
    commits = (n + batch - 1) // batch
    return {"batch": batch, "messages": n, "us_per_message": (cpu + db) / n * 1e6,
            "server_us_per_message": cpu / n * 1e6, "database_us_per_message": db / n * 1e6,
            "us_per_commit": (cpu + db) / commits * 1e6, "ms_per_commit_wall": wall / commits * 1e3,
            "indexed_at_end": indexed}


class _Room:
    """Where the gate hands messages (the fan-out's place): it notes how long each was held."""

    def __init__(self, sent: dict[int, float], held: list[float]) -> None:
        self.sent = sent
        self.held = held

    def room_event(self, frame: Any, exclude: str | None) -> None:
        t0 = self.sent.pop(id(frame), None)
        if t0 is not None:
            self.held.append(time.perf_counter() - t0)


async def flow(url: str | None, rate: float, secs: float,
               more_pids: Callable[[], list[int]] | None = None) -> dict[str, float]:
    """``rate`` chat lines a second for ``secs`` through :class:`StoreGate` and the store (``url`` None: straight
    to the room, the in-memory server's path): the process's CPU (and the cluster's) in cores, and how long
    the gate held each message before handing it on (its commit's latency, the group commit's wait included)."""
    from types import SimpleNamespace

    from tcp_server.protocol import Message
    from tcp_server.store.db import MessageStore
    from tcp_server.store.gate import StoredWindow, StoreGate
    from tcp_server.store.urls import parse_database

    sent: dict[int, float] = {}
    held: list[float] = []
    room = _Room(sent, held)
    store = await MessageStore.open(parse_database(url)) if url else None
    target: Any = room
    gate = None
    if store is not None:
        stats = SimpleNamespace(history_dropped=0, history_write_failures=0)
        gate = target = StoreGate(room, store, StoredWindow(50, 1 << 20), "lobby", stats)  # type: ignore[arg-type]
    rng = random.Random(7)
    texts = [chat_line(rng) for _ in range(1000)]
    try:
        for phase in ("warm", "measure"):
            pids = more_pids() if more_pids else []
            cpu0, db0 = _self_cpu(), _proc_cpu(pids)
            t0 = time.perf_counter()
            n = 0
            length = 1.0 if phase == "warm" else secs
            while (now := time.perf_counter()) - t0 < length:
                due = int((now - t0) * rate)
                while n < due:
                    frame = Message(f"user{n % 100}", texts[n % len(texts)], 1_767_225_600_000 + n)
                    sent[id(frame)] = time.perf_counter()
                    target.room_event(frame, None)
                    n += 1
                await asyncio.sleep(0.001)
            if gate is not None:
                await gate.drain(10.0)
            if store is not None:
                await store.catch_up()  # the index's steps still due: their CPU is counted
            wall = time.perf_counter() - t0
            cpu, db = _self_cpu() - cpu0, _proc_cpu(pids) - db0
            if phase == "warm":
                held.clear()
    finally:
        if gate is not None:
            await gate.stop()
        if store is not None:
            await store.close()
    held.sort()
    return {"messages": n, "cores": (cpu + db) / wall, "server_cores": cpu / wall, "database_cores": db / wall,
            "us_per_message": (cpu + db) / n * 1e6,
            "held_p50_ms": held[len(held) // 2] * 1e3 if held else 0.0,
            "held_p99_ms": held[int(len(held) * 0.99)] * 1e3 if held else 0.0}


def _flows(kinds: list[str], rates: list[float], secs: float, repeat: int, cpus: set[int] | None) -> None:
    """Per rate and run: the in-memory path, then each store, interleaved (same-run ratios)."""
    print("| rate/s | run | path | cores (server + database) | µs CPU per message | added µs per message | "
          "held p50 / p99 ms |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for rate in rates:
        for run in range(1, repeat + 1):
            base = asyncio.run(flow(None, rate, secs))
            rows = [("memory", base)]
            for kind in kinds:
                if kind == "sqlite":
                    data = tempfile.mkdtemp(prefix="chat-bench-storecost-")
                    try:
                        rows.append((kind, asyncio.run(flow(f"sqlite:///{data}/chat.db", rate, secs))))
                    finally:
                        shutil.rmtree(data, ignore_errors=True)
                else:
                    from . import pg

                    with pg.cluster(cpus) as cluster:
                        url = cluster.database("chat")
                        rows.append((kind, asyncio.run(flow(url, rate, secs, cluster.pids))))
            for name, r in rows:
                added = r["us_per_message"] - base["us_per_message"]
                print(f"| {rate:.0f} | {run} | {name} | {r['cores']:.3f} ({r['server_cores']:.3f} + "
                      f"{r['database_cores']:.3f}) | {r['us_per_message']:.1f} | "
                      f"{'' if name == 'memory' else f'{added:+.1f}'} | "
                      f"{r['held_p50_ms']:.2f} / {r['held_p99_ms']:.2f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storecost", description=__doc__)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--batches", default="1,3,10,30,100")
    parser.add_argument("--messages", type=int, default=3000, help="messages written per batch size")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU this process (and the cluster) runs on")
    parser.add_argument("--flow", default="", help="rates (messages/s, comma-separated): instead of batches back "
                        "to back, a steady flow through the server's StoreGate, against the same flow in memory")
    parser.add_argument("--secs", type=float, default=5.0, help="seconds per flow")
    parser.add_argument("--repeat", type=int, default=3, help="runs per flow rate, interleaved")
    args = parser.parse_args(argv)
    cpus = {args.cpu} if (os.cpu_count() or 1) > args.cpu else None
    if cpus:
        os.sched_setaffinity(0, cpus)
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    if args.flow:
        _flows(kinds, [float(r) for r in args.flow.split(",")], args.secs, args.repeat, cpus)
        return
    print("| database | batch | µs CPU per message (server + database) | µs CPU per commit | ms per commit |")
    print("|---|---:|---:|---:|---:|")
    for kind in kinds:
        for batch in (int(b) for b in args.batches.split(",")):
            if kind == "sqlite":
                data = tempfile.mkdtemp(prefix="chat-bench-storecost-")
                try:
                    r = asyncio.run(measure(f"sqlite:///{data}/chat.db", batch, args.messages))
                finally:
                    shutil.rmtree(data, ignore_errors=True)
            else:
                from . import pg

                with pg.cluster(cpus) as cluster:
                    url = cluster.database("chat")
                    r = asyncio.run(measure(url, batch, args.messages, cluster.pids))
            print(f"| {kind} | {batch} | {r['us_per_message']:.1f} ({r['server_us_per_message']:.1f} + "
                  f"{r['database_us_per_message']:.1f}) | {r['us_per_commit']:.0f} | {r['ms_per_commit_wall']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
