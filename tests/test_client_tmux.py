"""One real terminal: chat-client in tmux keeps a half-typed line intact while a message arrives."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from tcp_server import ChatServer
from tcp_server.protocol import Message, UserJoined, UserLeft
from tests.helpers import TIMEOUT, LineClient

CHAT_CLIENT = str(Path(sys.executable).parent / "chat-client")
WAIT = TIMEOUT * 4  # a Python start-up inside tmux on a busy machine


class Tmux:
    """A private tmux server (``-L``) so that nothing collides with another test or a user's tmux."""

    def __init__(self) -> None:
        binary = shutil.which("tmux")
        assert binary, "tmux is missing: scripts/install-system-deps.sh installs it"
        self.binary = binary
        self.socket = f"hanchat-test-{uuid.uuid4().hex[:12]}"

    async def __call__(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            self.binary, "-u", "-L", self.socket, "-f", "/dev/null", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
        assert proc.returncode == 0, f"tmux {args[0]}: {err.decode()}"
        return out.decode()

    async def rows(self) -> list[str]:
        """The pane's non-empty rows, trailing blanks removed."""
        text = await self("capture-pane", "-p", "-t", "chat")
        return [row.rstrip() for row in text.splitlines() if row.strip()]

    async def until(self, predicate: Callable[[list[str]], bool], what: str) -> list[str]:
        """Poll the pane until ``predicate`` holds for its rows, or fail after WAIT seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            rows = await self.rows()
            if predicate(rows):
                return rows
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the pane shows:\n" + "\n".join(rows))
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            self.binary, "-L", self.socket, "kill-server",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        await asyncio.wait_for(proc.wait(), TIMEOUT)


async def test_half_typed_line_survives_an_incoming_message(
        server: ChatServer, connect: Callable[..., Awaitable[LineClient]]) -> None:
    bob = await connect()
    await bob.join("bob")
    tmux = Tmux()
    # The shell reports the client's exit status on the pane, then keeps the pane open.
    command = f"{CHAT_CLIENT} 127.0.0.1 {server.port} --id alice --lang ko --no-color; echo exit=$?; exec cat"
    await tmux("new-session", "-d", "-s", "chat", "-x", "120", "-y", "30", "-e", "LANG=C.UTF-8", command)
    try:
        await tmux.until(lambda rows: "채팅방에 입장하였습니다." in rows and rows[-1] == "alice>", "the prompt")
        assert await bob.recv() == UserJoined("alice")

        await tmux("send-keys", "-t", "chat", "-l", "hello wor")
        await tmux.until(lambda rows: rows[-1] == "alice> hello wor", "the half-typed line")
        await bob.send("002#bob#news flash")
        # The message goes above the prompt, and the prompt comes back with the half line intact.
        rows = await tmux.until(lambda rows: rows[-2:] == ["bob : news flash", "alice> hello wor"], "bob's message")
        assert sum("news flash" in row for row in rows) == 1 and sum("hello wor" in row for row in rows) == 1

        await tmux("send-keys", "-t", "chat", "-l", "ld")
        await tmux("send-keys", "-t", "chat", "Enter")
        assert await bob.recv() == Message("alice", "hello world")
        await tmux.until(lambda rows: rows[-2:] == ["나 : hello world", "alice>"], "the local echo")

        await tmux("send-keys", "-t", "chat", "C-d")  # leave: 004, then wait for 102
        assert await bob.recv() == UserLeft("alice")
        rows = await tmux.until(lambda rows: rows[-1].startswith("exit="), "the client to exit")
        assert rows[-2:] == ["채팅방 접속이 해제되었습니다.", "exit=0"]
    finally:
        await tmux.kill()
