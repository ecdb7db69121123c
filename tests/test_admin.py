"""Moderation: chat-admin over the admin socket kicks, bans, mutes and sends notices, on real processes."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import socket
import stat
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tcp_server import ChatServer
from tcp_server.protocol import (
    Error,
    ErrorReason,
    Joined,
    Message,
    ServerNotice,
    SessionToken,
    UserJoined,
    UserLeft,
    UserList,
)
from tests.gateway_fixtures import GatewayStack, JsonClient
from tests.helpers import TIMEOUT, LineClient, wait_until

SECRET = "a-gateway-secret-of-32-characters"


async def chat_admin(sock: str, *args: str) -> tuple[int, str, str]:
    """Run the real ``chat-admin`` command."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tcp_server.admin_client", "--socket", sock, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT * 4)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def admin_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    # A Unix socket path must stay short (108 bytes); pytest's tmp_path can be long.
    short = pathlib.Path(f"/tmp/hanchat-admin-{os.getpid()}-{id(tmp_path) % 100000}")
    short.mkdir()
    yield short  # type: ignore[misc]
    for item in short.iterdir():
        item.unlink()
    short.rmdir()


@pytest.fixture
async def moderated(make_server: Any, admin_dir: pathlib.Path) -> ChatServer:
    server: ChatServer = await make_server(admin_socket=str(admin_dir / "admin.sock"),
                                           bans_file=str(admin_dir / "bans.json"), gateway_secret=SECRET)
    return server


async def test_the_socket_is_private_and_who_lists_users(moderated: ChatServer, connect: Any) -> None:
    sock = moderated.config.admin_socket
    assert sock is not None
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    alice = await connect(moderated.port)
    await alice.join("alice")
    legacy = await LineClient.connect("127.0.0.1", moderated.legacy_port or 0)
    await legacy.send(b"001#seed")
    await wait_until(lambda: "seed" in moderated.room.roster.names())
    code, out, err = await chat_admin(sock, "who")
    assert code == 0, err
    assert "alice" in out and "terminal" in out and "seed" in out and "legacy" in out and "2 user(s)" in out
    code, out, _ = await chat_admin(sock, "--json", "who")
    users = {u["id"]: u for u in json.loads(out)["users"]}
    assert users["alice"]["address"] == "127.0.0.1" and users["alice"]["node"] == moderated.node_name
    await legacy.close()


async def test_kick_a_terminal_user_who_sees_why_while_the_others_see_the_leave(
        moderated: ChatServer, connect: Any, caplog: pytest.LogCaptureFixture) -> None:
    bob, carol = await connect(moderated.port), await connect(moderated.port)
    await bob.join("bob")
    await carol.join("carol")
    code, out, err = await chat_admin(moderated.config.admin_socket or "", "kick", "BOB", "spamming", "links")
    assert code == 0, err
    assert out.strip() == "kicked bob"
    assert (await bob.recv_until(Error))[-1] == Error(ErrorReason.KICKED, "spamming links")
    await bob.closed()
    assert (await carol.recv_until(UserLeft("bob")))[-1] == UserLeft("bob")
    assert "kicked bob" in caplog.text and "uid " in caplog.text  # who did it, and what
    code, _, err = await chat_admin(moderated.config.admin_socket or "", "kick", "nobody")
    assert code == 1 and "not online" in err


async def test_kick_a_browser_user(make_gateway_stack: Any, ws_clients: Any, admin_dir: pathlib.Path) -> None:
    sock = str(admin_dir / "admin.sock")
    stack: GatewayStack = await make_gateway_stack(server={"admin_socket": sock, "gateway_secret": SECRET})
    page: JsonClient = await ws_clients(stack.ws_url, headers={"Origin": stack.origin})
    await page.join("webby")
    other = await LineClient.connect("127.0.0.1", stack.server_port)
    await other.join("other")
    code, out, err = await chat_admin(sock, "who")
    assert code == 0 and "webby" in out and "web" in out, err
    code, _, err = await chat_admin(sock, "kick", "webby", "be nice")
    assert code == 0, err
    events = await page.recv_until(lambda e: e.get("type") == "error" and e.get("reason") == "kicked")
    assert events[-1]["text"] == "be nice"
    assert (await other.recv_until(UserLeft("webby")))[-1] == UserLeft("webby")
    await other.close()


async def test_ban_by_id_and_by_the_real_address_a_gateway_reports(moderated: ChatServer, connect: Any) -> None:
    sock = moderated.config.admin_socket or ""
    mallory = await connect(moderated.port)
    await mallory.join("mallory")
    code, out, err = await chat_admin(sock, "ban", "Mallory", "repeated", "abuse")
    assert code == 0, err
    assert "removed: mallory" in out
    assert await mallory.recv() == Error(ErrorReason.BANNED, "repeated abuse")
    again = await connect(moderated.port)
    await again.send("001#MALLORY")
    assert await again.recv() == Error(ErrorReason.BANNED, "repeated abuse")
    # an address ban applies to the address a trusted gateway names with 000, not the gateway's own
    code, _, err = await chat_admin(sock, "ban", "203.0.113.0/24", "a bad network")
    assert code == 0, err
    backend = await connect(moderated.port)
    await backend.send(f"000#{SECRET}#203.0.113.77\n001#innocent-name")
    assert await backend.recv() == Error(ErrorReason.BANNED, "a bad network")
    fine = await connect(moderated.port)
    await fine.send(f"000#{SECRET}#198.51.100.1")
    assert (await fine.join("fine"))[0] == Joined("fine")
    code, out, _ = await chat_admin(sock, "bans")
    assert "Mallory" in out and "203.0.113.0/24" in out and "2 ban(s)" in out
    code, _, _ = await chat_admin(sock, "unban", "mallory")
    assert code == 0
    assert (await again.join("mallory"))[0] == Joined("mallory")


async def test_an_expired_ban_lets_the_user_back(moderated: ChatServer, connect: Any) -> None:
    code, _, err = await chat_admin(moderated.config.admin_socket or "", "ban", "eve", "--for", "1s", "cool off")
    assert code == 0, err
    eve = await connect(moderated.port)
    await eve.send("001#eve")
    assert await eve.recv() == Error(ErrorReason.BANNED, "cool off")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:  # the ban ends on the server's clock: ask until it lets eve in
        await eve.send("001#eve")
        frame = await eve.recv()
        if frame == Joined("eve"):
            break
        assert frame == Error(ErrorReason.BANNED, "cool off") and loop.time() < deadline
        await asyncio.sleep(0.2)


async def test_mute_and_notice(moderated: ChatServer, connect: Any) -> None:
    sock = moderated.config.admin_socket or ""
    loud, listener = await connect(moderated.port), await connect(moderated.port)
    await loud.join("loud")
    await listener.join("listener")
    legacy = await LineClient.connect("127.0.0.1", moderated.legacy_port or 0)
    await legacy.send(b"001#seed")
    await wait_until(lambda: "seed" in moderated.room.roster.names())
    await listener.sync()
    assert (await chat_admin(sock, "mute", "loud", "--for", "10m"))[0] == 0
    await loud.send("002#loud#HELLO")
    muted = Error(ErrorReason.MUTED, "your message was not delivered")
    assert (await loud.recv_until(Error))[-1] == muted
    await loud.send("003#loud#listener#psst")
    assert await loud.recv() == muted
    assert await listener.sync() == []  # nothing reached anyone
    assert (await chat_admin(sock, "unmute", "loud"))[0] == 0
    await loud.send("002#loud#sorry")
    assert (await listener.recv_until(Message("loud", "sorry")))[-1] == Message("loud", "sorry")
    code, out, err = await chat_admin(sock, "notice", "restart", "at", "22:00", "#", "back", "soon")
    assert code == 0, err
    notice = ServerNotice("restart at 22:00 # back soon")
    assert (await listener.recv_until(notice))[-1] == notice
    assert (await loud.recv_until(notice))[-1] == notice
    text = b""
    while "[서버 공지] restart at 22:00 # back soon".encode() not in text:
        text += await asyncio.wait_for(legacy.reader.read(65536), TIMEOUT)
    await legacy.close()


async def test_bad_requests_get_clear_errors(moderated: ChatServer) -> None:
    sock = moderated.config.admin_socket or ""
    code, _, err = await chat_admin(sock, "ban", "not an id or address")
    assert code == 1 and "neither an address" in err
    code, _, err = await chat_admin(sock, "mute", "x", "--for", "soon")
    assert code == 1 and "not a duration" in err
    code, _, err = await chat_admin("/nonexistent/admin.sock", "who")
    assert code == 2 and "cannot talk to the server" in err

    def raw(line: bytes) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(TIMEOUT)
            s.connect(sock)
            s.sendall(line)
            answer: dict[str, Any] = json.loads(s.makefile().readline())
            return answer

    loop = asyncio.get_running_loop()
    assert (await loop.run_in_executor(None, raw, b"not json\n"))["ok"] is False
    assert "unknown command" in (await loop.run_in_executor(None, raw, b'{"cmd":"reboot"}\n'))["error"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def server_process(admin_dir: pathlib.Path) -> AsyncIterator[Any]:
    procs: list[asyncio.subprocess.Process] = []

    async def start(port: int) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tcp_server", "--port", str(port), "--admin-socket", str(admin_dir / "a.sock"),
            "--bans-file", str(admin_dir / "bans.json"), "--no-uvloop", stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "CHAT_LOG_LEVEL": "INFO"})
        procs.append(proc)
        assert proc.stderr is not None
        log = b""
        while b"Chat server ready" not in log:
            line = await asyncio.wait_for(proc.stderr.readline(), TIMEOUT * 4)
            assert line, log
            log += line
        return proc

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), TIMEOUT * 2)


async def test_a_ban_survives_a_server_restart(server_process: Any, admin_dir: pathlib.Path) -> None:
    port = free_port()
    first = await server_process(port)
    code, _, err = await chat_admin(str(admin_dir / "a.sock"), "ban", "troll", "for good")
    assert code == 0, err
    first.terminate()
    assert await asyncio.wait_for(first.wait(), TIMEOUT * 2) == 0
    await server_process(port)
    client = await LineClient.connect("127.0.0.1", port)
    await client.send("001#troll")
    assert await client.recv() == Error(ErrorReason.BANNED, "for good")
    assert (await client.join("friend"))[0] == Joined("friend")
    await client.close()


async def test_an_admin_socket_path_that_is_a_regular_file_is_refused_not_deleted(
        make_server: Any, admin_dir: pathlib.Path) -> None:
    precious = admin_dir / "admin.sock"
    precious.write_text("someone's data\n")
    with pytest.raises(OSError, match=str(precious)):
        await make_server(admin_socket=str(precious))
    assert precious.read_text() == "someone's data\n"


async def test_a_live_admin_socket_is_refused_and_a_stale_one_replaced(
        moderated: ChatServer, make_server: Any, admin_dir: pathlib.Path) -> None:
    live = moderated.config.admin_socket or ""
    with pytest.raises(OSError, match="in use"):
        await make_server(admin_socket=live)
    assert (await chat_admin(live, "who"))[0] == 0  # the first server's socket still works
    stale = admin_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))  # bound, never listening, then closed: what a crash leaves
    server = await make_server(admin_socket=str(stale))
    assert (await chat_admin(str(stale), "who"))[0] == 0
    assert server.admin is not None


async def test_chat_server_names_the_admin_socket_path_it_refuses(admin_dir: pathlib.Path) -> None:
    precious = admin_dir / "notes.txt"
    precious.write_text("keep me\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tcp_server", "--port", str(free_port()), "--admin-socket", str(precious),
        "--no-uvloop", stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}, "CHAT_LOG_LEVEL": "INFO"})
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT * 4)
    assert proc.returncode == 1
    assert f"{precious} exists and is not a socket" in err.decode() and "Traceback" not in err.decode()
    assert precious.read_text() == "keep me\n"


async def test_deeply_nested_admin_input_gets_a_bad_request_answer(
        moderated: ChatServer, caplog: pytest.LogCaptureFixture) -> None:
    sock = moderated.config.admin_socket or ""

    def raw(line: bytes) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(TIMEOUT)
            s.connect(sock)
            s.sendall(line)
            answer: dict[str, Any] = json.loads(s.makefile().readline())
            return answer

    loop = asyncio.get_running_loop()
    for line in (b"[" * 30000 + b"\n", b'{"cmd": "who", "x": ' + b"[" * 30000 + b"]" * 30000 + b"}\n"):
        answer = await loop.run_in_executor(None, raw, line)
        assert answer["ok"] is False and "bad request" in answer["error"]
    assert "RecursionError" not in caplog.text and "Traceback" not in caplog.text
    # brackets inside strings are text, not nesting
    answer = await loop.run_in_executor(None, raw, b'{"cmd": "notice", "text": "[[[[[[[[[[ ]]]]]]]]]]"}\n')
    assert answer["ok"] is True


async def test_a_network_ban_matches_an_ipv4_mapped_gateway_address(moderated: ChatServer, connect: Any) -> None:
    sock = moderated.config.admin_socket or ""
    code, _, err = await chat_admin(sock, "ban", "198.51.100.0/24", "a bad network")
    assert code == 0, err
    mapped = await connect(moderated.port)
    await mapped.send(f"000#{SECRET}#::ffff:198.51.100.7\n001#sneaky")
    assert await mapped.recv() == Error(ErrorReason.BANNED, "a bad network")
    fine = await connect(moderated.port)
    await fine.send(f"000#{SECRET}#::ffff:203.0.113.9")
    assert (await fine.join("fine"))[0] == Joined("fine")
    code, out, _ = await chat_admin(sock, "--json", "who")
    assert [u["address"] for u in json.loads(out)["users"]] == ["203.0.113.9"]  # one spelling in logs too


async def test_a_gateway_address_with_a_zone_is_refused(moderated: ChatServer, connect: Any,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    backend = await connect(moderated.port)
    await backend.send(f"000#{SECRET}#fe80::1%\x1b[31m" + "x" * 3000)
    frame = await backend.recv()
    assert isinstance(frame, Error) and frame.reason is ErrorReason.MALFORMED
    assert "\x1b" not in caplog.text
    assert (await backend.join("after"))[0] == Joined("after")  # nothing else lost: still a plain connection


@pytest.fixture
async def resumable_moderated(make_server: Any, admin_dir: pathlib.Path) -> ChatServer:
    server: ChatServer = await make_server(admin_socket=str(admin_dir / "admin.sock"), gateway_secret=SECRET,
                                           resume_grace=60.0)
    return server


async def token_of(client: LineClient, name: str, hello: str = "") -> str:
    await client.send(f"{hello}001#{name}")
    frames = await client.recv_until(SessionToken)
    assert frames[0] == Joined(name)
    token = frames[-1]
    assert isinstance(token, SessionToken)
    return token.token


@pytest.mark.parametrize(("hello", "target"), [
    ("", "mallory"),  # by ID
    ("", "127.0.0.1"),  # by the socket peer's address
    (f"000#{SECRET}#203.0.113.66\n", "203.0.113.0/24"),  # a web user, by the address the gateway named
])
async def test_a_ban_ends_a_parked_session_which_cannot_resume(
        resumable_moderated: ChatServer, connect: Any, hello: str, target: str) -> None:
    server = resumable_moderated
    sock = server.config.admin_socket or ""
    bob = await connect(server.port)
    await bob.send(f"000#{SECRET}#198.51.100.1")  # bob's address is not banned
    await token_of(bob, "bob")
    mallory = await connect(server.port)
    token = await token_of(mallory, "mallory", hello)
    await bob.recv_until(UserJoined("mallory"))
    mallory.writer.transport.abort()  # parked, not gone
    await wait_until(lambda: server.sessions_parked() == 1, what="mallory parked")
    code, out, err = await chat_admin(sock, "ban", target, "go away")
    assert code == 0, err
    assert "removed: mallory" in out
    assert (await bob.recv_until(UserLeft("mallory")))[-1] == UserLeft("mallory")  # as when a grace ends
    assert server.sessions_parked() == 0
    back = await connect(server.port)
    await back.send(f"{hello}008#{token}")
    frame = await back.recv()
    assert isinstance(frame, Error) and frame.reason in (ErrorReason.BAD_TOKEN, ErrorReason.BANNED)
    await bob.send("005#bob")
    assert await bob.recv() == UserList(("bob",))


async def test_a_resume_is_checked_against_the_bans_like_a_join(
        resumable_moderated: ChatServer, connect: Any) -> None:
    """008 from a banned network: refused like 001 from it, and the session it named ends (its leave)."""
    server = resumable_moderated
    sock = server.config.admin_socket or ""
    bob = await connect(server.port)
    await token_of(bob, "bob")
    mallory = await connect(server.port)
    token = await token_of(mallory, "mallory", f"000#{SECRET}#198.51.100.7\n")
    await bob.recv_until(UserJoined("mallory"))
    mallory.writer.transport.abort()
    await wait_until(lambda: server.sessions_parked() == 1, what="mallory parked")
    code, _, err = await chat_admin(sock, "ban", "203.0.113.0/24", "a bad network")  # not mallory's (yet)
    assert code == 0, err
    assert server.sessions_parked() == 1
    back = await connect(server.port)
    await back.send(f"000#{SECRET}#::ffff:203.0.113.5\n008#{token}")
    assert await back.recv() == Error(ErrorReason.BANNED, "a bad network")
    assert (await bob.recv_until(UserLeft("mallory")))[-1] == UserLeft("mallory")
    assert server.sessions_parked() == 0 and "mallory" not in server.room.roster.names()
    await back.send("001#mallory")  # the connection goes on; a join from here is refused too
    assert await back.recv() == Error(ErrorReason.BANNED, "a bad network")
