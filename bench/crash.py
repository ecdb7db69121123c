"""``chat-bench crash``: ``kill -9`` the server under fan-out; is every message a client got in the history after?

Each run, on a fresh store (an SQLite file, or a database of a private PostgreSQL cluster):

1. the server starts on it (the product's defaults: 50 on join, resume on);
2. an **observer** (a Python client over a real socket) joins and records every ``105`` it receives;
3. the C generator joins ``--users`` users and sends at ``--rate`` offered deliveries a second;
4. after a random 1.5–3.5 s of that load the server gets ``SIGKILL`` (nothing runs at exit);
5. the server starts again on the same store, and the store is read back (the server's own
   :meth:`MessageStore.export`, while the restarted server runs).

**Missing** counts the messages the observer received that are not in the stored history (the
rule is that nothing reaches a member before it is committed: this must be 0). **Stored, not
received** counts rows committed whose delivery the kill cut off (allowed). The observer receives
every message but its own (it sends none), so it sees what every receiver sees.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .agent import Agent, AgentError, StepSpec
from .servers import run_ours

log = logging.getLogger("bench")


@contextmanager
def store_url(kind: str, cpus: set[int] | None) -> Iterator[str]:
    if kind == "sqlite":
        data = Path(tempfile.mkdtemp(prefix="chat-bench-crash-"))
        try:
            yield f"sqlite:///{data / 'chat.db'}"
        finally:
            shutil.rmtree(data, ignore_errors=True)
    else:
        from . import pg

        with pg.cluster(cpus) as cluster:
            yield cluster.database("chat")


class Observer:
    """A client that joins and keeps every room message it receives, in a thread of its own."""

    def __init__(self, host: str, port: int, name: str = "observer") -> None:
        self.host, self.port, self.name = host, port, name
        self.received: list[tuple[str, str]] = []
        self.joined = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="observer", daemon=True)

    def start(self) -> None:
        self.thread.start()
        if not self.joined.wait(20):
            raise RuntimeError(f"the observer did not join: {self.error!r}")

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - reported by start()/the run
            self.error = exc

    async def _run(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        writer.write(f"001#{self.name}\n".encode())
        in_room = False
        async with asyncio.timeout(600):
            while True:
                raw = await reader.readline()
                if not raw:
                    return  # the server was killed
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if not in_room:
                    if line.startswith("141#"):
                        in_room = True
                        self.joined.set()
                    continue
                if line.startswith("105#"):
                    _, author, text = line.split("#", 2)
                    self.received.append((author, text))


async def _stored(url: str) -> list[tuple[str, str]]:
    from tcp_server.protocol.scrollback import LOBBY
    from tcp_server.store.db import MessageStore
    from tcp_server.store.urls import parse_database

    store = await MessageStore.open(parse_database(url), migrate=False)
    try:
        return [(m.author, m.text) async for m in store.export(LOBBY)]
    finally:
        await store.close()


def one_run(kind: str, users: int, rate: float, senders: int, cpus: set[int] | None,
            agent_cpus: set[int] | None, rng: random.Random) -> dict[str, Any]:
    env_base = {"CHAT_HISTORY": "50", "CHAT_RESUME_GRACE": "60"}
    out: dict[str, Any] = {"database": kind, "users": users, "offered_deliveries_per_s": rate}
    with store_url(kind, cpus) as url:
        env = {**env_base, "CHAT_DATABASE": url}
        with run_ours(0, cpus=cpus, env_extra=env, name=f"hanchat-{kind}") as server:
            observer = Observer(server.host, server.port)
            observer.start()
            with Agent(server.port, "chat", prefix="u", host=server.host, max_secs=300, cpus=agent_cpus) as agent:
                joined = agent.connect(users - 1, 100, 120.0, wait_notices=True,
                                       accept_window=server.accept_window(100))
                if joined["joined"] < users - 1:
                    raise RuntimeError(f"only {joined['joined']} users joined")
                agent.settle(500, 60.0)
                n0 = len(observer.received)
                after = rng.uniform(1.5, 3.5)
                spec = StepSpec(rate=rate / max(1, users - 1), secs=after + 3.0, senders=senders, probes=4,
                                drain_secs=3.0, quiet_ms=500)
                killer = threading.Timer(after, lambda: os.kill(server.pid, signal.SIGKILL))
                killer.start()
                try:
                    step = agent.step(spec)
                except AgentError as exc:  # the generator may find its users gone mid-step
                    step = {"error": str(exc)}
                killer.join()
                server.proc.wait(10)
                out["killed_after_s"] = round(after, 2)
                out["sent_before_kill"] = step.get("sent")
                out["exit"] = server.proc.returncode
            observer.thread.join(10)
            received = observer.received[n0:]
        # Restart on the same store: it must come up, and what it kept is read back.
        t0 = time.monotonic()
        with run_ours(0, cpus=cpus, env_extra=env, name=f"hanchat-{kind}") as again:
            out["restart_secs"] = round(time.monotonic() - t0, 2)
            stored = asyncio.run(_stored(url))
            assert again.alive()
    got, kept = Counter(received), Counter(stored)
    out["received"] = len(received)
    out["stored"] = len(stored)
    out["missing"] = sum((got - kept).values())
    out["stored_not_received"] = sum((kept - got).values())
    return out


def run(kind: str, runs: int, users: int, rate: float, senders: int, cpus: set[int] | None,
        agent_cpus: set[int] | None, seed: int = 9) -> dict[str, Any]:
    rng = random.Random(seed)
    report: dict[str, Any] = {"scenario": "crash", "database": kind, "loadavg_before": os.getloadavg(),
                              "runs": []}
    for i in range(runs):
        r = one_run(kind, users, rate, senders, cpus, agent_cpus, rng)
        r["run"] = i + 1
        log.info("crash run %d (%s): killed after %.2f s, received %d, stored %d, missing %d, "
                 "stored not received %d", i + 1, kind, r["killed_after_s"], r["received"], r["stored"],
                 r["missing"], r["stored_not_received"])
        report["runs"].append(r)
    report["loadavg_after"] = os.getloadavg()
    return report


def table(reports: list[dict[str, Any]]) -> str:
    lines = ["| database | run | users | offered deliveries/s | killed after s | messages received | stored after "
             "restart | **missing** | stored, not received | restart s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for rep in reports:
        for r in rep["runs"]:
            lines.append(f"| {r['database']} | {r['run']} | {r['users']:,} | {r['offered_deliveries_per_s']:,.0f} | "
                         f"{r['killed_after_s']} | {r['received']:,} | {r['stored']:,} | **{r['missing']}** | "
                         f"{r['stored_not_received']} | {r['restart_secs']} |")
    for rep in reports:
        lines.append(f"\n{rep['database']}: missing over {len(rep['runs'])} runs: "
                     f"**{sum(r['missing'] for r in rep['runs'])}**; load average {rep['loadavg_before'][0]:.2f} "
                     f"before, {rep['loadavg_after'][0]:.2f} after")
    return "\n".join(lines)
