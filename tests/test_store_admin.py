"""chat-admin history delete (through the server's socket) and history export (from the database itself)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

from tcp_server import ChatServer
from tcp_server.protocol import History, Page, UserList
from tests.helpers import TIMEOUT, LineClient
from tests.test_admin import admin_dir, chat_admin

__all__ = ["admin_dir"]  # the fixture, used here by name

Start = Callable[..., Awaitable[ChatServer]]


async def talk(server: ChatServer, lines: list[tuple[str, str]]) -> None:
    """Each (ID, message) said by a client of that ID; all committed when this returns."""
    clients: dict[str, LineClient] = {}
    try:
        for name, message in lines:
            if name not in clients:
                clients[name] = await LineClient.connect("127.0.0.1", server.port)
                await clients[name].join(name)
            await clients[name].send(f"002#{name}#{message}")
            await clients[name].sync()
        assert server.gate is not None and await server.gate.drain(TIMEOUT)
    finally:
        for client in clients.values():
            await client.close()


async def test_history_delete_erases_an_author_from_the_store_and_the_window(
    make_server: Start, admin_dir: pathlib.Path, tmp_path: pathlib.Path,
) -> None:
    server = await make_server(admin_socket=str(admin_dir / "admin.sock"), history=10,
                               database=f"sqlite:///{tmp_path / 'chat.db'}")
    await talk(server, [("alice", "one"), ("bob", "two"), ("alice", "three"), ("carol", "four")])
    code, out, err = await chat_admin(server.config.admin_socket or "", "history", "delete", "--author", "ALICE")
    assert code == 0, err
    assert out.strip() == "erased 2 stored message(s) of ALICE"
    assert server.store is not None
    assert [m.text for m in await server.store.before("lobby", None, 10)] == ["two", "four"]
    dave = await LineClient.connect("127.0.0.1", server.port)
    try:
        frames = await dave.join("dave")
        assert isinstance(frames[-1], UserList)
        frames = await dave.recv_until(Page)
        assert [f.message for f in frames if isinstance(f, History)] == ["two", "four"]
    finally:
        await dave.close()
    code, out, err = await chat_admin(server.config.admin_socket or "", "history", "delete", "--author", "bob",
                                      "--room", "elsewhere")
    assert code == 0 and "erased 0" in out


async def test_history_delete_without_a_store_says_why(make_server: Start, admin_dir: pathlib.Path) -> None:
    server = await make_server(admin_socket=str(admin_dir / "admin.sock"))
    code, _, err = await chat_admin(server.config.admin_socket or "", "history", "delete", "--author", "bob")
    assert code == 1 and "no stored history" in err


async def test_history_export_writes_json_lines_from_the_database(
    make_server: Start, admin_dir: pathlib.Path, tmp_path: pathlib.Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'chat.db'}"
    server = await make_server(admin_socket=str(admin_dir / "admin.sock"), database=database)
    await talk(server, [("alice", "one # 하나"), ("bob", "two \"quoted\"")])
    code, out, err = await chat_admin("-", "history", "export", "--database", database)
    assert code == 0, err
    rows: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    assert [(r["room"], r["seq"], r["from"], r["text"]) for r in rows] == [
        ("lobby", 1, "alice", "one # 하나"), ("lobby", 2, "bob", "two \"quoted\"")]
    assert rows[0]["time"].endswith("+00:00") and isinstance(rows[0]["ts"], int)
    code, out, _ = await chat_admin("-", "history", "export", "--database", database, "--since", "2999-01-01")
    assert code == 0 and out == ""
    code, out, _ = await chat_admin("-", "history", "export", "--database", database, "--room", "LOBBY",
                                    "--since", "2000-01-01T00:00:00+09:00")
    assert code == 0 and len(out.splitlines()) == 2
    code, _, err = await chat_admin("-", "history", "export", "--database", database, "--since", "yesterday")
    assert code == 2 and "--since" in err
    code, _, err = await chat_admin("-", "history", "export", "--database", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2 and "no history database" in err
