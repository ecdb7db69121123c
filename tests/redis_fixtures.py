"""A real redis-server for tests: a free loopback port, a private config, no persistence; stopped after.

It can also be stopped and started again on the same port mid-test, for the failure tests.
"""

from __future__ import annotations

import asyncio
import pathlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest

from tcp_server import ChatServer
from tcp_server.__main__ import start_node, stop_node
from tcp_server.room.redis import RedisRoom
from tests.conftest import server_config
from tests.helpers import TIMEOUT, LineClient, wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ping(port: int, timeout: float = 0.5) -> bool:
    """True when a Redis answers PING on ``port`` (RESP by hand: no client library needed here)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One private redis-server process."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "yes"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not ping(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.workdir / 'redis.log').read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not answer PING in time")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill it (no goodbye to clients: what a crash looks like to them) and wait for it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait(timeout=START_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def redis_server(tmp_path: pathlib.Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own; stopped after it."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


NODE_TIMEOUT = 2.0  # short, so that a dead node is noticed quickly; a beat every 0.5 s


@dataclass
class Node:
    server: ChatServer
    room: RedisRoom
    stopped: bool = False

    @property
    def port(self) -> int:
        return self.server.port

    async def kill(self) -> None:
        """Gone without a word: Redis connections dropped, nothing released; its sockets then close."""
        await self.room.link.abort()
        await self.server.close(timeout=2.0)
        self.stopped = True


async def more_reaper_rounds(*nodes: Node, rounds: int = 2) -> None:
    """Wait until each node has checked for dead nodes ``rounds`` more times."""
    targets = [(n, n.room.link.reaper_rounds + rounds) for n in nodes]
    await wait_until(lambda: all(n.room.link.reaper_rounds >= t for n, t in targets), timeout=NODE_TIMEOUT * 3,
                     what="more dead-node checks")


MakeNode = Callable[..., Awaitable[Node]]
Connect = Callable[[Node], Awaitable[LineClient]]


@pytest.fixture
async def make_node(redis_server: RedisServer) -> AsyncIterator[MakeNode]:
    nodes: list[Node] = []

    async def start(**overrides: object) -> Node:
        overrides.setdefault("node_timeout", NODE_TIMEOUT)
        overrides.setdefault("node_id", f"node{len(nodes)}")
        cfg = server_config(redis=redis_server.url, **overrides)
        server, room = await asyncio.wait_for(start_node(cfg), TIMEOUT)
        assert room is not None
        node = Node(server, room)
        nodes.append(node)
        await asyncio.wait_for(room.link.ready.wait(), TIMEOUT)
        return node

    yield start
    for node in nodes:
        if not node.stopped:
            await asyncio.wait_for(stop_node(node.server, node.room), TIMEOUT * 2)


@pytest.fixture
def node_clients(line_clients: Callable[[int], Awaitable[LineClient]]) -> Connect:
    """Open line clients to a node; all closed after the test."""
    return lambda node: line_clients(node.port)
