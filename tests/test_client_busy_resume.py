"""``chat-client --reconnect`` (a real process) whose TCP connection dies under load (issue 26).

40 terminal users talk at an even pace. Alice's client reaches the server through a small TCP relay
(real sockets both sides), which is how a network drop is made: halfway through each round the relay
resets her side (``SO_LINGER`` 0: no FIN) and from then on swallows what the server writes to that
connection, which the server still holds open and believes alive, as it would across a dead link.
Her client reconnects and resumes from its own position: every line of the round must then be on her
screen exactly once, in the room's order, 20 times in a row, with either session store (in Redis
across two nodes). Before positions the resume took over the "live" session with nothing missed, and
every line written into the dead link was lost (13 to 14 a round here).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tcp_server import ChatServer
from tcp_server.protocol import Message
from tests.helpers import TIMEOUT, LineClient, wait_until
from tests.redis_fixtures import MakeNode

USERS = 40
LINES = 6
ROUNDS = 20
PACE = 0.008  # seconds between two lines of the room (the load's pace, not a wait)
CLIENT = os.path.join(os.path.dirname(sys.executable), "chat-client")


class Screen:
    """A chat-client process and the lines it printed so far."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.changed = asyncio.Event()
        assert proc.stdout is not None
        self._reader = asyncio.create_task(self._read(proc.stdout))

    async def _read(self, out: asyncio.StreamReader) -> None:
        while line := await out.readline():
            self.lines.append(line.decode().rstrip("\n"))
            self.changed.set()

    async def wait_for(self, predicate: Callable[[list[str]], bool], what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT * 3
        while not predicate(self.lines):
            self.changed.clear()
            left = deadline - loop.time()
            assert left > 0, f"chat-client did not show {what}; last lines: {self.lines[-5:]}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), TIMEOUT)
        await asyncio.wait_for(self._reader, TIMEOUT)


@pytest.fixture
async def alice_client() -> AsyncIterator[Callable[[int], Awaitable[Screen]]]:
    made: list[Screen] = []

    async def start(port: int) -> Screen:
        proc = await asyncio.create_subprocess_exec(
            CLIENT, "127.0.0.1", str(port), "--id", "alice", "--lang", "en", "--no-color", "--reconnect",
            "--reconnect-delay", "0.2", "--reconnect-max-delay", "0.4",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # stdin stays open: the client stays until killed
        screen = Screen(proc)
        made.append(screen)
        return screen

    yield start
    for screen in made:
        await screen.close()


class Link:
    """One relayed connection: the client's side and the server's."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.dead = False  # cut: what the server writes goes nowhere, and the server is not told

    def cut(self) -> None:
        """The network dies: the client's side is reset (no FIN), the server's stays open and read."""
        self.dead = True
        sock = self.client.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.client.transport.abort()


class Relay:
    """A TCP relay in front of the server whose links can be cut like a dead network."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.links: list[Link] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        sreader, swriter = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.target), TIMEOUT)
        link = Link(cwriter, swriter)
        self.links.append(link)
        for task in (self._pump(creader, link, up=True), self._pump(sreader, link, up=False)):
            t = asyncio.create_task(task)
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, link: Link, up: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if link.dead:
                    continue  # into the void: the peer never sees it
                (link.server if up else link.client).write(data)
        if not link.dead:  # an orderly end is passed on; a dead link tells the server nothing
            (link.server if up else link.client).close()

    def live(self) -> Link:
        (link,) = [link for link in self.links if not link.dead and not link.client.is_closing()]
        return link

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for link in self.links:
            link.client.transport.abort()
            link.server.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def test_a_cut_connection_under_load_resumes_with_nothing_lost_or_doubled(
        make_server: Callable[..., Awaitable[ChatServer]], line_clients: Callable[[int], Awaitable[LineClient]],
        alice_client: Callable[[int], Awaitable[Screen]]) -> None:
    server = await make_server(resume_grace=30.0)
    await cut_under_load(server, server, line_clients, alice_client)


async def test_in_redis_a_cut_connection_under_load_resumes_with_nothing_lost_or_doubled(
        make_node: MakeNode, line_clients: Callable[[int], Awaitable[LineClient]],
        alice_client: Callable[[int], Awaitable[Screen]]) -> None:
    """The talkers on one node, alice on another: her position is counted in Redis, her frames replayed
    from its room log, her live session on her node taken over each time."""
    talk = await make_node(resume_grace=30.0)
    hers = await make_node(resume_grace=30.0)
    await cut_under_load(talk.server, hers.server, line_clients, alice_client)


async def cut_under_load(talk_server: ChatServer, server: ChatServer,
                         line_clients: Callable[[int], Awaitable[LineClient]],
                         alice_client: Callable[[int], Awaitable[Screen]]) -> None:
    talkers = []
    for i in range(USERS):
        client = await line_clients(talk_server.port)
        await client.join(f"u{i}")
        talkers.append(client)
    observer = await line_clients(talk_server.port)
    await observer.join("observer")
    relay = Relay(server.port)
    await relay.start()
    try:
        await talk_through(server, relay, talkers, observer, await alice_client(relay.port))
    finally:
        await relay.close()


async def talk_through(server: ChatServer, relay: Relay, talkers: list[LineClient], observer: LineClient,
                       screen: Screen) -> None:
    """ROUNDS rounds of talk, alice's link dying halfway through each; then what she shows is compared."""
    await wait_until(lambda: any(c.session.name == "alice" and c.session.joined for c in server.connections),
                     what="alice joined")
    for client in (*talkers, observer):
        await client.sync()

    wrong: list[str] = []
    for r in range(ROUNDS):
        tag = f"r{r}"
        resumes = server.stats.resumes
        for k in range(LINES):
            for i, client in enumerate(talkers):
                await client.send(f"002#u{i}#{tag} u{i} line {k}")
                if k == LINES // 2 and i == 0:
                    relay.live().cut()
                await asyncio.sleep(PACE)
        got = await observer.recv_until(Message(f"u{USERS - 1}", f"{tag} u{USERS - 1} line {LINES - 1}"))
        said = [f"{f.sender} : {f.message}" for f in got if isinstance(f, Message) and f.message.startswith(tag + " ")]
        assert len(said) == USERS * LINES
        await wait_until(lambda before=resumes: server.stats.resumes > before, what="alice's resume")
        await screen.wait_for(lambda lines, last=said[-1]: last in lines, f"{tag}'s last line")
        shown = [line for line in screen.lines if f": {tag} " in line]
        if shown != said:
            lost = sorted(set(said) - set(shown))
            doubled = sorted({line for line in shown if shown.count(line) > 1})
            wrong.append(f"{tag}: {len(lost)} lost {lost[:3]}, {len(doubled)} doubled {doubled[:3]}")
    assert wrong == []
    assert server.stats.resumes == ROUNDS  # one resume a cut: never a gap (a fresh join) at this load
