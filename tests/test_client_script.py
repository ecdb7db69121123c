"""Scriptable mode: chat-client as a subprocess reading commands from a pipe."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from tcp_server import ChatServer
from tcp_server.protocol import Message, UserJoined, UserLeft, WhisperMessage
from tests.helpers import TIMEOUT, LineClient

CHAT_CLIENT = str(Path(sys.executable).parent / "chat-client")
RUN_TIMEOUT = TIMEOUT * 4  # a Python start-up on a busy 2-core machine


async def spawn(*args: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "NO_COLOR"))}
    return await asyncio.create_subprocess_exec(
        CHAT_CLIENT, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )


async def run(stdin: str, *args: str) -> tuple[int, list[str], str]:
    """Run chat-client to the end with ``stdin``; (exit code, stdout lines, stderr)."""
    proc = await spawn(*args)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), RUN_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode().splitlines(), err.decode()


async def test_printf_script_chats_and_leaves(server: ChatServer,
                                              connect: Callable[..., Awaitable[LineClient]]) -> None:
    bob = await connect()
    await bob.join("bob")
    script = "/b hi # all\nplain text\n/m bob psst\n/x\n/who\n/q\n/b never sent\n"
    code, out, err = await run(script, "127.0.0.1", str(server.port), "--id", "bot", "--lang", "ko")
    assert code == 0, err
    assert out == [
        "채팅방에 입장하였습니다.",
        "=== 접속자 리스트 === bob bot",  # one line per server frame, 107 too
        "=== 접속자 리스트 === bob bot",
        "채팅방 접속이 해제되었습니다.",
    ]
    # the client's own words go to stderr: the seed's error and a hint for /x
    assert err == "메시지를 정상적으로 입력해주세요.\n명령어 목록은 /help 를 입력하세요.\n"
    assert await bob.recv_until(UserLeft) == [
        UserJoined("bot"), Message("bot", "hi # all"), Message("bot", "plain text"),
        WhisperMessage("bot", "psst"), UserLeft("bot"),
    ]
    assert await bob.sync() == []  # nothing after /q


async def test_end_of_input_leaves_with_004(server: ChatServer,
                                           connect: Callable[..., Awaitable[LineClient]]) -> None:
    bob = await connect()
    await bob.join("bob")
    code, out, _ = await run("/b bye\n", "127.0.0.1", str(server.port), "--id", "bot", "--lang", "en")
    assert code == 0
    assert out[0] == "You joined the chat room." and out[-1] == "You have left the chat room."
    assert await bob.recv_until(UserLeft) == [UserJoined("bot"), Message("bot", "bye"), UserLeft("bot")]


async def test_prints_each_frame_as_it_arrives(server: ChatServer,
                                              connect: Callable[..., Awaitable[LineClient]]) -> None:
    bob = await connect()
    await bob.join("bob")
    proc = await spawn("127.0.0.1", str(server.port), "--id", "bot", "--lang", "ko", "--timestamps")
    assert proc.stdin is not None and proc.stdout is not None
    stdout = proc.stdout
    try:
        async def line() -> str:
            raw: bytes = await asyncio.wait_for(stdout.readline(), RUN_TIMEOUT)
            return raw.decode().rstrip("\n")

        stamp = r"^\[\d\d:\d\d:\d\d\] "
        assert re.match(stamp + "채팅방에 입장하였습니다.$", await line())
        assert re.match(stamp + "=== 접속자 리스트 === bob bot$", await line())
        assert await bob.recv() == UserJoined("bot")
        await bob.send("002#bob#one")
        await bob.send("003#bob#bot#two # three")
        await bob.send("004#bob")
        assert re.match(stamp + "bob : one$", await line())
        assert re.match(stamp + "bob님의 귓속말 : two # three$", await line())
        assert re.match(stamp + r"\[공지\]bob 사용자가 퇴장하였습니다.$", await line())
        proc.stdin.write(b"/who\n")
        assert re.match(stamp + "=== 접속자 리스트 === bot$", await line())
        proc.stdin.close()
        assert re.match(stamp + "채팅방 접속이 해제되었습니다.$", await line())
        assert await asyncio.wait_for(proc.wait(), RUN_TIMEOUT) == 0
        assert b"\x1b" not in await proc.stdout.read()  # no colour on a pipe
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_asks_like_the_seed_and_asks_again_after_101_and_bad_id(
        server: ChatServer, connect: Callable[..., Awaitable[LineClient]]) -> None:
    bob = await connect()
    await bob.join("bob")
    stdin = f"127.0.0.1\n{server.port}\nbob\nbad id\nbot\n/b hi\n"
    code, out, err = await run(stdin, "--lang", "ko")
    assert code == 0, err
    assert out[:4] == [
        "중복된 ID입니다. ID를 다시 입력해주세요.",
        "[오류] 사용할 수 없는 ID입니다. (ID contains a space: U+0020)",
        "채팅방에 입장하였습니다.",
        "=== 접속자 리스트 === bob bot",
    ]
    assert err.count("사용자 ID : ") == 3
    assert "Enter server IP : " in err and "Enter server Port : " in err
    assert await bob.recv_until(Message) == [UserJoined("bot"), Message("bot", "hi")]


async def test_a_taken_id_from_the_command_line_is_an_error(
        server: ChatServer, connect: Callable[..., Awaitable[LineClient]]) -> None:
    bob = await connect()
    await bob.join("bob")
    code, out, err = await run("/b hi\n", "127.0.0.1", str(server.port), "--id", "BOB", "--lang", "en")
    assert code == 1
    assert out == ["That ID is taken. Please enter another ID."]
    assert err == "Could not join as BOB.\n"  # the next line is a command, not another ID
    assert await bob.sync() == []


async def test_unreachable_server_is_one_clear_line_and_a_non_zero_exit() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        code, out, err = await run("", "127.0.0.1", str(port), "--id", "bot", "--lang", "ko")
    assert code == 1
    assert out == []
    assert err == f"네트워크 오류가 발생하였습니다. (127.0.0.1:{port}: Connection refused)\n"


async def test_sigint_leaves_cleanly(server: ChatServer, connect: Callable[..., Awaitable[LineClient]]) -> None:
    bob = await connect()
    await bob.join("bob")
    proc = await spawn("127.0.0.1", str(server.port), "--id", "bot", "--lang", "en")
    assert proc.stdout is not None
    try:
        assert await bob.recv() == UserJoined("bot")
        proc.send_signal(signal.SIGINT)
        assert await bob.recv() == UserLeft("bot")
        assert await asyncio.wait_for(proc.wait(), RUN_TIMEOUT) == 0
        out = (await proc.stdout.read()).decode().splitlines()
        assert out[-1] == "You have left the chat room."
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
