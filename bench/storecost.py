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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storecost", description=__doc__)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--batches", default="1,3,10,30,100")
    parser.add_argument("--messages", type=int, default=3000, help="messages written per batch size")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU this process (and the cluster) runs on")
    args = parser.parse_args(argv)
    cpus = {args.cpu} if (os.cpu_count() or 1) > args.cpu else None
    if cpus:
        os.sched_setaffinity(0, cpus)
    print("| database | batch | µs CPU per message (server + database) | µs CPU per commit | ms per commit |")
    print("|---|---:|---:|---:|---:|")
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
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
