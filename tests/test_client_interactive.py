"""The interactive client through prompt_toolkit's pipe input and dummy output, against a real server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from chat_client.config import ClientConfig
from chat_client.interactive import InteractiveFrontend, run_interactive
from chat_client.render import Kind, Line
from tcp_server import ChatServer
from tcp_server.protocol import Message, UserJoined, UserLeft, UserList, WhisperMessage
from tests.helpers import TIMEOUT, LineClient, wait_until

ENTER = "\r"
CTRL_C = "\x03"
CTRL_D = "\x04"
TAB = "\t"
UP = "\x1b[A"


class InteractiveHarness:
    """A running interactive client: type into it, watch what it shows."""

    def __init__(self, config: ClientConfig, pipe: PipeInput) -> None:
        self.pipe = pipe
        self.lines: list[Line] = []
        self.ui = InteractiveFrontend(config, pt_input=pipe, pt_output=DummyOutput(), sink=self.lines.append)
        self.task = asyncio.create_task(run_interactive(config, self.ui))

    def type(self, keys: str) -> None:
        self.pipe.send_text(keys)

    def texts(self) -> list[str]:
        return [line.text for line in self.lines]

    async def shown(self, text: str, kind: Kind | None = None, timeout: float = TIMEOUT) -> Line:
        """Wait until a line with exactly ``text`` (and ``kind``) was shown; return it."""
        def found() -> Line | None:
            return next((ln for ln in self.lines if ln.text == text and (kind is None or ln.kind is kind)), None)
        await wait_until(lambda: found() is not None, timeout, f"the client to show {text!r}")
        line = found()
        assert line is not None
        return line

    @property
    def buffer(self) -> str:
        return self.ui.session.default_buffer.text

    async def wait_buffer(self, text: str) -> None:
        await wait_until(lambda: self.buffer == text, TIMEOUT, f"the input line to read {text!r}")

    async def exit_code(self, timeout: float = TIMEOUT * 2) -> int:
        return await asyncio.wait_for(self.task, timeout)


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(port: int | None, **overrides: object) -> ClientConfig:
    base: dict[str, object] = dict(host="127.0.0.1", port=port, lang="ko", color=False)
    base.update(overrides)
    return ClientConfig(**base)  # type: ignore[arg-type]

Start = Callable[..., Awaitable[InteractiveHarness]]


@pytest.fixture
async def start_client() -> AsyncIterator[Start]:
    """Start interactive clients on pipe input; every one is stopped after the test."""
    running: list[InteractiveHarness] = []
    with ExitStack() as pipes:

        async def start(port: int | None, **overrides: object) -> InteractiveHarness:
            harness = InteractiveHarness(config(port, **overrides), pipes.enter_context(create_pipe_input()))
            running.append(harness)
            return harness

        yield start
        for harness in running:
            if not harness.task.done():
                harness.task.cancel()
            await asyncio.gather(harness.task, return_exceptions=True)


async def test_seed_commands_between_two_users(server: ChatServer, connect: Callable[..., Awaitable[LineClient]],
                                               start_client: Start) -> None:
    bob = await connect()
    await bob.join("bob")
    alice = await start_client(server.port)
    # asked for the ID as the seed does; 101 and 109#bad-id ask again
    alice.type("bob" + ENTER)
    await alice.shown("중복된 ID입니다. ID를 다시 입력해주세요.", Kind.ERROR)
    alice.type("bad id" + ENTER)
    await alice.shown("[오류] 사용할 수 없는 ID입니다. (ID contains a space: U+0020)", Kind.ERROR)
    alice.type("alice" + ENTER)
    await alice.shown("채팅방에 입장하였습니다.", Kind.INFO)
    await alice.shown("=== 접속자 리스트 ===\nbob\nalice\n=====================", Kind.INFO)
    assert await bob.recv() == UserJoined("alice")

    alice.type("/b hi # there" + ENTER)  # sent as typed: '#' kept, no trailing space
    assert await bob.recv() == Message("alice", "hi # there")
    await alice.shown("나 : hi # there", Kind.SELF)
    alice.type("plain text goes to all" + ENTER)
    assert await bob.recv() == Message("alice", "plain text goes to all")
    alice.type("/m bob psst #1" + ENTER)
    assert await bob.recv() == WhisperMessage("alice", "psst #1")
    await alice.shown("나 → bob : psst #1", Kind.SELF)

    await bob.send("002#bob#hello alice")
    await alice.shown("bob : hello alice", Kind.MESSAGE)
    await bob.send("003#bob#alice#secret")
    await alice.shown("bob님의 귓속말 : secret", Kind.WHISPER)

    alice.type("/m carol hi" + ENTER)
    await alice.shown("해당 사용자가 존재하지 않습니다.", Kind.ERROR)
    before = len(alice.lines)
    alice.type("/who" + ENTER)
    listing = "=== 접속자 리스트 ===\nbob\nalice\n====================="
    await wait_until(lambda: alice.texts()[before:].count(listing) == 1)

    alice.type("/x" + ENTER)  # anything else starting with '/': the seed's text and a hint, nothing sent
    await alice.shown("명령어 목록은 /help 를 입력하세요.", Kind.INFO)
    assert "메시지를 정상적으로 입력해주세요." in alice.texts()
    alice.type("/help" + ENTER)
    await wait_until(lambda: any(t.startswith("명령어:") for t in alice.texts()))
    alice.type("/b marker" + ENTER)
    assert await bob.recv() == Message("alice", "marker")  # /x, /help sent nothing

    alice.type("/q" + ENTER)
    assert await bob.recv() == UserLeft("alice")
    assert await alice.exit_code() == 0
    assert alice.texts()[-1] == "채팅방 접속이 해제되었습니다."  # 102 was waited for


async def test_a_message_arriving_mid_line_leaves_the_line_intact(
        server: ChatServer, connect: Callable[..., Awaitable[LineClient]], start_client: Start) -> None:
    bob = await connect()
    await bob.join("bob")
    alice = await start_client(server.port, id="alice")
    await alice.shown("채팅방에 입장하였습니다.")
    await bob.recv()
    alice.type("hello wor")
    await alice.wait_buffer("hello wor")
    await bob.send("002#bob#news flash")
    await alice.shown("bob : news flash")
    assert alice.buffer == "hello wor"
    alice.type("ld" + ENTER)
    assert await bob.recv() == Message("alice", "hello world")
    alice.type(UP)  # history
    await alice.wait_buffer("hello world")
    alice.type(ENTER)
    assert await bob.recv() == Message("alice", "hello world")


async def test_tab_completes_commands_and_online_ids(
        server: ChatServer, connect: Callable[..., Awaitable[LineClient]], start_client: Start) -> None:
    alice = await start_client(server.port, id="alice")
    await alice.shown("채팅방에 입장하였습니다.")
    carol = await connect()
    await carol.join("carol")  # alice learns of carol from 103 alone
    await alice.shown("[공지]carol 사용자가 접속하였습니다.")
    alice.type("/w" + TAB)
    await alice.wait_buffer("/who")
    alice.type(ENTER)
    await alice.shown("=== 접속자 리스트 ===\nalice\ncarol\n=====================")
    alice.type("/m c" + TAB)
    await alice.wait_buffer("/m carol ")
    alice.type("hi" + ENTER)
    assert await carol.recv() == WhisperMessage("alice", "hi")
    assert alice.ui.online() == ["carol"]  # not yourself

    await carol.send("004#carol")
    await alice.shown("[공지]carol 사용자가 퇴장하였습니다.")
    completer = alice.ui.session.completer
    assert completer is not None
    assert list(completer.get_completions(Document("/m c"), CompleteEvent(completion_requested=True))) == []
    assert alice.ui.online() == []


@pytest.mark.parametrize(("key", "lang", "joined", "left"), [
    (CTRL_D, "ko", "채팅방에 입장하였습니다.", "채팅방 접속이 해제되었습니다."),
    (CTRL_C, "en", "You joined the chat room.", "You have left the chat room."),
])
async def test_ctrl_c_and_ctrl_d_leave_cleanly(server: ChatServer, connect: Callable[..., Awaitable[LineClient]],
                                               start_client: Start, key: str, lang: str, joined: str,
                                               left: str) -> None:
    bob = await connect()
    await bob.join("bob")
    alice = await start_client(server.port, id="alice", lang=lang)
    await alice.shown(joined)
    assert await bob.recv() == UserJoined("alice")
    alice.type("hi" + ENTER)
    await alice.shown("나 : hi" if lang == "ko" else "me : hi")
    alice.type(key)
    assert await bob.recv_until(UserLeft) == [Message("alice", "hi"), UserLeft("alice")]
    assert await alice.exit_code() == 0
    assert alice.texts()[-1] == left


async def test_asks_for_host_and_port_and_fails_cleanly_when_unreachable(start_client: Start) -> None:
    port = unused_port()
    alice = await start_client(None, host=None)
    alice.type("127.0.0.1" + ENTER)
    alice.type("ninety" + ENTER)
    await alice.shown("포트 번호는 1~65535 사이의 숫자여야 합니다.", Kind.ERROR)
    alice.type(f"{port}" + ENTER)
    assert await alice.exit_code() == 1
    assert alice.texts()[-1] == f"네트워크 오류가 발생하였습니다. (127.0.0.1:{port}: Connection refused)"


async def test_server_going_away_is_reported(make_server: Callable[..., Awaitable[ChatServer]],
                                             start_client: Start) -> None:
    server = await make_server()
    alice = await start_client(server.port, id="alice")
    await alice.shown("채팅방에 입장하였습니다.")
    alice.type("half a li")
    await alice.wait_buffer("half a li")
    await server.close(timeout=2.0)
    assert await alice.exit_code() == 1
    assert alice.texts()[-2:] == ["[오류] 서버가 종료됩니다. (server shutting down)", "서버와의 연결이 끊어졌습니다."]


async def test_reconnect_rejoins_with_the_same_id(make_server: Callable[..., Awaitable[ChatServer]],
                                                  start_client: Start) -> None:
    first = await make_server()
    port = first.port
    alice = await start_client(port, id="alice", reconnect=True, reconnect_delay=0.05, reconnect_max_delay=0.3)
    await alice.shown("채팅방에 입장하였습니다.")
    await first.close(timeout=2.0)
    await alice.shown("서버와의 연결이 끊어졌습니다.")
    alice.type("/b while away" + ENTER)
    await alice.shown("서버에 연결되어 있지 않아 보내지 못했습니다.", Kind.ERROR)
    await wait_until(lambda: sum(t.endswith("다시 연결합니다...") for t in alice.texts()) >= 2,
                     what="a few refused attempts")
    second = await make_server(port=port)  # the server comes back on the same port
    await alice.shown("서버에 다시 연결되었습니다.")
    bob = await LineClient.connect("127.0.0.1", second.port)
    try:
        assert (await bob.join("bob"))[-1] == UserList(("alice", "bob"))
        alice.type("/b back" + ENTER)
        assert await bob.recv_until(Message) == [Message("alice", "back")]
        alice.type("/q" + ENTER)
        assert await bob.recv() == UserLeft("alice")
        assert await alice.exit_code() == 0
    finally:
        await bob.close()
