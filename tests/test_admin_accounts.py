"""chat-admin account add/list/delete/reset/lock/unlock through a real server's socket, the real command."""

from __future__ import annotations

import asyncio
import pathlib
import sys
from collections.abc import Awaitable, Callable

from tcp_server import ChatServer
from tcp_server.protocol import Error, ErrorReason, Joined, SessionToken, UserList
from tests.helpers import TIMEOUT, LineClient
from tests.test_admin import admin_dir

__all__ = ["admin_dir"]  # the fixture, used here by name

Start = Callable[..., Awaitable[ChatServer]]
PASSWORD = "Admin-given # pass 42"


async def chat_admin(sock: str, stdin: bytes, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tcp_server.admin_client", "--socket", sock, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), TIMEOUT * 4)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def login(server: ChatServer, name: str, password: str) -> tuple[LineClient, list[object]]:
    client = await LineClient.connect("127.0.0.1", server.port)
    await client.send(f"018#{name}#{password}")
    frames = await client.recv_until(lambda f: isinstance(f, (Error, SessionToken)))
    return client, list(frames)


async def test_account_commands(make_server: Start, admin_dir: pathlib.Path, tmp_path: pathlib.Path,
                                caplog: object) -> None:
    server = await make_server(admin_socket=str(admin_dir / "admin.sock"), resume_grace=30,
                               database=f"sqlite:///{tmp_path / 'chat.db'}")
    sock = server.config.admin_socket or ""
    clients: list[LineClient] = []
    try:
        guest = await LineClient.connect("127.0.0.1", server.port)
        clients.append(guest)
        await guest.join("Kim")
        code, out, err = await chat_admin(sock, (PASSWORD + "\r\n").encode(), "account", "add", "Kim")
        assert code == 0, err
        assert "added Kim" in out and PASSWORD not in out
        kicked = await guest.recv_until(Error)
        assert isinstance(kicked[-1], Error) and kicked[-1].reason is ErrorReason.KICKED  # a guest held it
        client, frames = await login(server, "kim", PASSWORD)  # the line ending was not part of it
        clients.append(client)
        assert Joined("Kim") in frames
        # generated password, printed once
        code, out, _ = await chat_admin(sock, b"", "account", "add", "Lee")
        assert code == 0 and "password (shown once): " in out
        generated = out.rsplit("password (shown once): ", 1)[1].strip()
        other, frames = await login(server, "lee", generated)
        clients.append(other)
        assert isinstance(frames[-1], SessionToken)
        code, out, _ = await chat_admin(sock, b"", "account", "list")
        assert code == 0 and "Kim" in out and "Lee" in out and "2 account(s)" in out
        # lock: the session ends (the others see its leave); logins refused
        code, out, _ = await chat_admin(sock, b"", "account", "lock", "KIM")
        assert code == 0 and "locked KIM; ended: Kim" in out
        error = (await client.recv_until(Error))[-1]
        assert isinstance(error, Error) and error.reason is ErrorReason.KICKED
        again, frames = await login(server, "kim", PASSWORD)
        clients.append(again)
        assert isinstance(frames[-1], Error) and frames[-1].reason is ErrorReason.ACCOUNT_LOCKED
        code, _, _ = await chat_admin(sock, b"", "account", "unlock", "kim")
        assert code == 0
        # reset: the old password fails, the new one works, Lee's session ends
        code, out, _ = await chat_admin(sock, b"Reset-to # this one\n", "account", "reset", "Lee")
        assert code == 0 and "ended: Lee" in out
        old, frames = await login(server, "lee", generated)
        clients.append(old)
        assert isinstance(frames[-1], Error) and frames[-1].reason is ErrorReason.BAD_LOGIN
        # weak password refused
        code, _, err = await chat_admin(sock, b"password\n", "account", "reset", "Lee")
        assert code == 1 and "weak password" in err
        # delete: the ID is anyone's again
        code, out, _ = await chat_admin(sock, b"", "account", "delete", "lee")
        assert code == 0
        free = await LineClient.connect("127.0.0.1", server.port)
        clients.append(free)
        assert isinstance((await free.join("Lee"))[-1], UserList)
        # a ban of the ID holds for its account
        code, _, _ = await chat_admin(sock, b"", "ban", "kim")
        banned, frames = await login(server, "Kim", PASSWORD)
        clients.append(banned)
        assert isinstance(frames[-1], Error) and frames[-1].reason is ErrorReason.BANNED
        assert PASSWORD not in caplog.text and "Reset-to" not in caplog.text  # type: ignore[attr-defined]
    finally:
        for c in clients:
            await c.close()
