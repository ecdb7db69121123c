"""A Hypothesis state machine against a live server.

Random interleavings of join, broadcast, whisper, list, quit, drop, garbage and
over-long frames from several clients. After every step each open client pings
and must have received exactly what the model predicts, in order. From that:
the server answers pings, the user list equals the set of joined users, every
broadcast reaches every other joined user exactly once and in order, and no ID
is held by two connections.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tcp_server import ChatServer
from tcp_server.protocol import (
    Error,
    ErrorReason,
    IdTaken,
    Joined,
    Left,
    Message,
    NoSuchUser,
    Pong,
    ServerFrame,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
    id_key,
    is_valid_id,
    normalize_id,
    server_frame_reader,
)
from tests.conftest import server_config

TIMEOUT = 5.0
SLOTS = 4
NAMES = ["ann", "Ann", "bob", "철수", "z", "has space", "a#b", "x" * 33]
MESSAGES = st.text(alphabet=st.sampled_from("ab #한\t"), min_size=1, max_size=12).filter(lambda m: m.strip("\t") != "")


class ThreadedServer:
    """A real ChatServer on its own event loop thread, for synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = ChatServer(server_config(legacy_port=None, max_frame=256))

    def call(self, coro_fn):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(TIMEOUT)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        self.call(self.server.start)
        return self

    def users(self) -> list[str]:
        async def read() -> list[str]:
            return self.server.room.roster.names()

        return list(self.call(read))

    def __exit__(self, *exc: object) -> None:
        self.call(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()


class Client:
    """A blocking line client."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.decoder = server_frame_reader()
        self.pending: list[ServerFrame] = []
        self.name: str | None = None
        self.tokens = 0

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> ServerFrame:
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the server")
            for item in self.decoder.feed(data):
                assert not isinstance(item, Exception), item
                self.pending.append(item)
        return self.pending.pop(0)

    def sync(self) -> list[ServerFrame]:
        """Everything that arrived before the answer to a fresh ping."""
        self.tokens += 1
        token = f"t{self.tokens}"
        self.send(f"006#{token}\n".encode())
        frames: list[ServerFrame] = []
        while (frame := self.recv()) != Pong(token):
            frames.append(frame)
        return frames

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def live_server() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


class ChatMachine(RuleBasedStateMachine):
    server: ThreadedServer

    def __init__(self) -> None:
        super().__init__()
        self.clients: list[Client | None] = [None] * SLOTS
        self.expected: list[list[ServerFrame]] = [[] for _ in range(SLOTS)]
        self.order: list[int] = []  # joined slots in join order

    @initialize()
    def clean_room_and_connect(self) -> None:
        assert self.server.users() == []
        for slot in range(SLOTS):  # start connected: more of each run goes to chatting
            self.connect(slot)

    # helpers ---------------------------------------------------------------
    def joined(self) -> list[int]:
        return list(self.order)

    def check(self, first: int | None = None) -> None:
        """Sync the acting client first (its frames are handled), then everyone else."""
        slots = [s for s in range(SLOTS) if self.clients[s] is not None]
        if first is not None and first in slots:
            slots.remove(first)
            slots.insert(0, first)
        for s in slots:
            client = self.clients[s]
            assert client is not None
            assert client.sync() == self.expected[s], f"slot {s}"
            self.expected[s] = []

    def teardown(self) -> None:
        for client in self.clients:
            if client is not None:
                client.close()
        self.wait_for_users(lambda users: users == [])  # the server notices closes on its own thread

    # rules -----------------------------------------------------------------
    @rule(slot=st.integers(0, SLOTS - 1))
    def connect(self, slot: int) -> None:
        if self.clients[slot] is None:
            self.clients[slot] = Client(self.server.server.port)
            self.check(slot)

    @rule(slot=st.integers(0, SLOTS - 1), raw=st.sampled_from(NAMES[:5]) | st.sampled_from(NAMES))
    def join(self, slot: int, raw: str) -> None:
        client = self.clients[slot]
        if client is None:
            return
        client.send(f"001#{raw}\n".encode())
        if client.name is not None:
            self.expected[slot].append(Error(ErrorReason.ALREADY_JOINED, f"you are {client.name}"))
        elif not is_valid_id(raw):
            self.expected[slot].append(Error(ErrorReason.BAD_ID, "placeholder"))
        elif any(id_key(self.clients[s].name or "") == id_key(normalize_id(raw)) for s in self.order):  # type: ignore[union-attr]
            self.expected[slot].append(IdTaken())
        else:
            name = normalize_id(raw)
            for s in self.order:
                self.expected[s].append(UserJoined(name))
            client.name = name
            self.order.append(slot)
            names = tuple(self.clients[s].name or "" for s in self.order)  # type: ignore[union-attr]
            self.expected[slot] += [Joined(name), UserList(names)]
        self.check_with_loose_errors(slot)

    def check_with_loose_errors(self, first: int) -> None:
        """Like check, but an error's detail text is not part of the contract."""
        client = self.clients[first]
        assert client is not None
        got = client.sync()
        want = self.expected[first]
        self.expected[first] = []
        assert [self._loose(f) for f in got] == [self._loose(f) for f in want]
        self.check()

    @staticmethod
    def _loose(frame: ServerFrame) -> object:
        return ("109", frame.reason) if isinstance(frame, Error) else frame

    @precondition(lambda self: bool(self.order))
    @rule(data=st.data(), message=MESSAGES)
    def broadcast(self, data: st.DataObject, message: str) -> None:
        slot = data.draw(st.sampled_from(self.order))
        client = self.clients[slot]
        assert client is not None and client.name is not None
        client.send(f"002#{client.name}#{message}\n".encode())
        for s in self.order:
            if s != slot:
                self.expected[s].append(Message(client.name, message))
        self.check(slot)

    @precondition(lambda self: bool(self.order))
    @rule(data=st.data(), to=st.sampled_from(NAMES), message=MESSAGES)
    def whisper(self, data: st.DataObject, to: str, message: str) -> None:
        slot = data.draw(st.sampled_from(self.order))
        client = self.clients[slot]
        assert client is not None and client.name is not None
        if "#" in to or " " in to:
            return
        client.send(f"003#{client.name}#{to}#{message}\n".encode())
        target = [s for s in self.order if id_key(self.clients[s].name or "") == id_key(to)]  # type: ignore[union-attr]
        if not is_valid_id(to):  # validated like an ID, never echoed
            self.expected[slot].append(Error(ErrorReason.MALFORMED, ""))
        elif target:
            self.expected[target[0]].append(WhisperMessage(client.name, message))
        else:
            self.expected[slot].append(NoSuchUser(to))
        self.check_with_loose_errors(slot)

    @precondition(lambda self: bool(self.order))
    @rule(data=st.data())
    def list_users(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from(self.order))
        client = self.clients[slot]
        assert client is not None and client.name is not None
        client.send(f"005#{client.name}\n".encode())
        self.expected[slot].append(UserList(tuple(self.clients[s].name or "" for s in self.order)))  # type: ignore[union-attr]
        self.check(slot)

    @precondition(lambda self: bool(self.order))
    @rule(data=st.data())
    def quit(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from(self.order))
        client = self.clients[slot]
        assert client is not None and client.name is not None
        client.send(f"004#{client.name}\n".encode())
        assert client.recv() == Left()
        assert client.sock.recv(1) == b""  # then the server closes
        assert self.expected[slot] == []
        self.order.remove(slot)
        for s in self.order:
            self.expected[s].append(UserLeft(client.name))
        client.close()
        self.clients[slot] = None
        self.check()

    @rule(slot=st.integers(0, SLOTS - 1))
    def drop(self, slot: int) -> None:
        client = self.clients[slot]
        if client is None:
            return
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()  # RST: an abrupt drop
        self.clients[slot] = None
        self.expected[slot] = []
        if slot in self.order:
            self.order.remove(slot)
            for s in self.order:  # the drop is noticed asynchronously: wait for its 104 first
                other = self.clients[s]
                assert other is not None
                assert other.recv() == UserLeft(client.name or "")
            self.wait_for_users(lambda users: client.name not in users)
        self.check()

    def wait_for_users(self, done: object) -> None:
        """Poll the server's room (on its thread) until ``done(users)``, or fail."""
        for _ in range(250):
            if done(self.server.users()):  # type: ignore[operator]
                return
            threading.Event().wait(0.02)
        raise AssertionError(f"server's users stayed {self.server.users()}")

    @rule(slot=st.integers(0, SLOTS - 1), junk=st.sampled_from([b"999#x\n", b"\xff\xfe\n", b"0\n", b"002\n"]))
    def garbage(self, slot: int, junk: bytes) -> None:
        client = self.clients[slot]
        if client is None:
            return
        client.send(junk)
        unknown = {b"999#x\n", b"0\n"}
        reason = ErrorReason.UNKNOWN_CODE if junk in unknown else ErrorReason.MALFORMED
        self.expected[slot].append(Error(reason, ""))
        self.check_with_loose_errors(slot)

    @rule(slot=st.integers(0, SLOTS - 1), size=st.integers(257, 3000))
    def overlong(self, slot: int, size: int) -> None:
        client = self.clients[slot]
        if client is None:
            return
        client.send(b"002#x#" + b"y" * size + b"\n")
        self.expected[slot].append(Error(ErrorReason.TOO_LONG, ""))
        self.check_with_loose_errors(slot)

    @invariant()
    def no_id_twice_and_list_matches(self) -> None:
        names = [self.clients[s].name for s in self.order]  # type: ignore[union-attr]
        assert len({id_key(n or "") for n in names}) == len(names)
        assert self.server.users() == names


def test_random_interleavings_keep_the_invariants(live_server: ThreadedServer) -> None:
    ChatMachine.server = live_server
    run = ChatMachine.TestCase
    run.settings = settings(max_examples=100, stateful_step_count=40, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow])
    run().runTest()
