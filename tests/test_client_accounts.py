"""chat-client and accounts: /register, --login with --password-file or CHAT_PASSWORD, /passwd, the new
frames rendered; the real command against a real server on a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import pathlib
from collections.abc import AsyncIterator

import pytest

from tcp_server import ChatServer
from tests.conftest import server_config
from tests.test_client_script import CHAT_CLIENT, RUN_TIMEOUT

PASSWORD = "Terminal # pass-77"


@pytest.fixture
async def durable(tmp_path: pathlib.Path) -> AsyncIterator[ChatServer]:
    server = ChatServer(server_config(database=f"sqlite:///{tmp_path / 'chat.db'}"))
    await server.start()
    yield server
    await server.close(timeout=2.0)


async def run(stdin: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "NO_COLOR"))}
    proc = await asyncio.create_subprocess_exec(
        CHAT_CLIENT, *args, "--lang", "en", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**base, **(env or {})})
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), RUN_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_register_login_and_change_password(durable: ChatServer, tmp_path: pathlib.Path) -> None:
    port = str(durable.port)
    code, out, err = await run(f"/register\n{PASSWORD}\n{PASSWORD}\n/who\n/q\n", "127.0.0.1", port, "--id", "Pat")
    assert code == 0, err
    assert "The ID Pat is now registered" in out
    assert PASSWORD not in out and PASSWORD not in err
    # mismatched confirmation: nothing sent
    code, out, err = await run("/passwd\na-first-password\nanother-one-here\n/q\n", "127.0.0.1", port,
                               "--login", "pat", env={"CHAT_PASSWORD": PASSWORD})
    assert code == 0, err
    assert "You joined the chat room." in out and "The two passwords differ" in err
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    new = "Changed # pass-88"
    code, out, err = await run(f"/passwd\n{new}\n{new}\n/q\n", "127.0.0.1", port, "--login", "PAT",
                               "--password-file", str(secret))
    assert code == 0, err
    assert "Your password was changed." in out
    code, out, err = await run("/q\n", "127.0.0.1", port, "--login", "pat", env={"CHAT_PASSWORD": PASSWORD})
    assert code == 1
    assert "Wrong ID or password" in out
    code, out, _ = await run("/q\n", "127.0.0.1", port, "--id", "pat")  # a guest cannot take it
    assert code != 0 and "registered" in out
    for stream in (out, err):
        assert new not in stream
