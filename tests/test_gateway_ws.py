"""The gateway against a real TCP server: every JSON ↔ frame mapping, errors, injection, limits.

Browser stand-ins are aiohttp WebSocket clients (pytest-aiohttp's ``aiohttp_client`` for the
gateway app, or a real listening gateway from ``tests.gateway_fixtures``); terminal users are
``LineClient`` s on the server's own port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tcp_server import ChatServer
from tcp_server.protocol import Message, UserJoined, UserLeft, UserList, WhisperMessage
from tests.gateway_fixtures import GatewayStack, JsonClient, gateway_config
from tests.helpers import LineClient, stamped, wait_until
from web_gateway.app import make_app

Connect = Callable[..., Awaitable[LineClient]]
WsClients = Callable[..., Awaitable[JsonClient]]


@pytest.fixture
async def gw(aiohttp_client: Any, server: ChatServer) -> Any:
    """pytest-aiohttp's test client for a gateway in front of the ``server`` fixture."""
    return await aiohttp_client(make_app(gateway_config(server.port)))


async def browser(gw: Any, headers: dict[str, str] | None = None) -> JsonClient:
    ws = await asyncio.wait_for(gw.ws_connect("/ws", headers=headers), 5)
    client = JsonClient(None, ws)
    hello = await client.recv()
    assert hello["type"] == "status" and hello["state"] == "connected"
    return client


def session_of(server: ChatServer, name: str) -> Any:
    for conn in server.connections:
        if conn.session.name == name:
            return conn.session
    raise AssertionError(f"{name} is not on the server")


async def test_every_mapping_both_ways(gw: Any, server: ChatServer, connect: Connect) -> None:
    carol = await connect()
    await carol.join("carol")
    alice = await browser(gw)

    # ping before join is answered without a backend; join → 001 → 100 + 107
    assert await alice.sync("early") == []
    events = await alice.join("alice")
    assert events == [{"type": "joined", "id": "alice"}, {"type": "users", "ids": ["carol", "alice"]}]
    assert await carol.recv() == UserJoined("alice")

    # say → 002 → 105 to the others, not echoed to the sender
    await alice.send({"type": "say", "text": "hi # all"})
    assert await carol.recv() == Message("alice", "hi # all")
    assert await alice.sync() == []

    # 002 from a terminal → message event
    await carol.send("002#carol#hello # alice")
    assert stamped(await alice.recv()) == {"type": "message", "from": "carol", "text": "hello # alice"}

    # whisper → 003 → 106; and 106 back as a whisper event
    await alice.send({"type": "whisper", "to": "carol", "text": "psst"})
    assert await carol.recv() == WhisperMessage("alice", "psst")
    await carol.send("003#carol#alice#psst back")
    assert stamped(await alice.recv()) == {"type": "whisper", "from": "carol", "text": "psst back"}

    # whisper to nobody → 108 → no_such_user
    await alice.send({"type": "whisper", "to": "dave", "text": "?"})
    assert await alice.recv() == {"type": "no_such_user", "to": "dave"}

    # who → 005 → 107
    await alice.send({"type": "who"})
    assert await alice.recv() == {"type": "users", "ids": ["carol", "alice"]}

    # rooms → 013 → 126 (each room) and 127
    await alice.send({"type": "rooms"})
    assert [await alice.recv(), await alice.recv()] == [
        {"type": "room_listed", "room": "lobby", "count": 2, "topic": ""}, {"type": "rooms_listed", "total": 1}]

    # ping → 006 → 110, in order after everything before it
    await alice.send({"type": "ping", "token": "t#1"})
    assert await alice.recv() == {"type": "pong", "token": "t#1"}

    # a terminal joining and leaving → user_joined / user_left
    dave = await connect()
    await dave.join("dave")
    assert await alice.recv() == {"type": "user_joined", "id": "dave"}
    await dave.send("004#dave")
    assert await alice.recv() == {"type": "user_left", "id": "dave"}
    assert await carol.sync() == [UserJoined("dave"), UserLeft("dave")]

    # a second browser: both see each other come and go
    bob = await browser(gw)
    await bob.join("bob")
    assert await carol.recv() == UserJoined("bob")
    assert await alice.recv() == {"type": "user_joined", "id": "bob"}

    # leave → 004 → 102; the others see 104
    await alice.send({"type": "leave"})
    assert await alice.recv() == {"type": "left"}
    assert await carol.recv() == UserLeft("alice")
    assert await bob.recv() == {"type": "user_left", "id": "alice"}
    await wait_until(lambda: len(server.connections) == 2, what="alice's backend connection to close")
    # the WebSocket stays: the user may join again, on a new backend connection
    await alice.join("alice2")
    assert await carol.recv() == UserJoined("alice2")
    await alice.close()
    await bob.close()


async def test_id_taken_and_bad_id_keep_the_page(gw: Any, connect: Connect) -> None:
    carol = await connect()
    await carol.join("carol")
    page = await browser(gw)
    await page.send({"type": "join", "id": "CAROL"})  # taken, case-insensitively
    assert await page.recv() == {"type": "id_taken"}
    await page.send({"type": "join", "id": "ca rol"})  # refused by the gateway before the server
    event = await page.recv()
    assert (event["type"], event["reason"]) == ("error", "bad-id")
    events = await page.join("caroline")  # same backend connection, second try
    assert events[0] == {"type": "joined", "id": "caroline"}
    await page.send({"type": "join", "id": "other"})
    assert (await page.recv())["reason"] == "already-joined"
    await page.close()


async def test_server_errors_pass_through(make_server: Callable[..., Awaitable[ChatServer]],
                                          ws_clients: WsClients, aiohttp_client: Any) -> None:
    server = await make_server(flood_rate=1.0, flood_burst=3, flood_kick=1000)
    gw = await aiohttp_client(make_app(gateway_config(server.port, rate=0.0)))
    page = await browser(gw)
    await page.join("fast")  # 001 takes one token
    for i in range(4):
        await page.send({"type": "say", "text": f"m{i}"})
    events = await page.recv_until(lambda e: e.get("type") == "error")
    assert events[-1]["reason"] == "flood" and events[-1]["text"]  # the server's 109#flood#...
    await page.close()


@pytest.mark.parametrize(("raw", "reason"), [
    ("not json", "bad-json"),
    ("[1]", "bad-json"),
    ('{"id": "x"}', "bad-json"),
    ('{"type": "shout"}', "unknown-type"),
    ('{"type": "say", "text": "x"}', "not-joined"),
    ('{"type": "leave"}', "not-joined"),
    ('{"type": "join", "id": "a#b"}', "bad-id"),
    ('{"type": "ping", "token": "a\\u0000"}', "malformed"),
])
async def test_bad_messages_before_join_get_errors_and_nothing_else(gw: Any, server: ChatServer, raw: str,
                                                                    reason: str) -> None:
    page = await browser(gw)
    await page.send(raw)
    event = await page.recv()
    assert event["type"] == "error" and event["reason"] == reason and event["text"]
    assert await page.sync() == []  # the WebSocket goes on
    assert not server.connections  # and no backend connection was opened for any of it
    await page.close()


async def test_bad_messages_after_join(gw: Any, connect: Connect) -> None:
    carol = await connect()
    await carol.join("carol")
    page = await browser(gw)
    await page.join("alice")
    await carol.recv()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "say", "text": "x" * 5000}, "too-long"),
        ({"type": "say", "text": ""}, "malformed"),
        ({"type": "say", "text": 5}, "malformed"),
        ({"type": "say", "text": "\x1b[31mred"}, "malformed"),
        ({"type": "whisper", "to": "car#ol", "text": "x"}, "bad-id"),
        ({"type": "join", "id": "again"}, "already-joined"),
    ]
    for msg, reason in cases:
        await page.send(msg)
        event = await page.recv()
        assert (event["type"], event["reason"]) == ("error", reason), msg
    await page.ws.send_bytes(b"\x00\x01")
    assert (await page.recv())["reason"] == "bad-json"
    await page.send({"type": "say", "text": "still here"})
    assert await carol.recv() == Message("alice", "still here")  # nothing refused reached carol
    await page.close()


async def test_newlines_cannot_inject_frames(gw: Any, server: ChatServer, connect: Connect) -> None:
    carol = await connect()
    await carol.join("carol")
    page = await browser(gw)
    await page.join("alice")
    await carol.recv()
    await page.send({"type": "say", "text": "hi\n002#carol#forged\r\n004#alice\r003#alice#carol#x"})
    assert await carol.recv() == Message("alice", "hi 002#carol#forged 004#alice 003#alice#carol#x")
    await page.send({"type": "whisper", "to": "carol", "text": "a\n005#alice"})
    assert await carol.recv() == WhisperMessage("alice", "a 005#alice")
    await page.send({"type": "join", "id": "x\n001#y"})
    assert (await page.recv())["reason"] == "already-joined"
    assert await carol.sync() == []  # nothing else arrived: no forged 105, no 104
    assert sorted(c.session.name or "-" for c in server.connections) == ["alice", "carol"]
    await page.close()


async def test_browser_close_sends_004_and_others_see_the_leave(gw: Any, server: ChatServer,
                                                                connect: Connect) -> None:
    carol = await connect()
    await carol.join("carol")
    page = await browser(gw)
    await page.join("alice")
    await carol.recv()
    await page.close()
    assert await carol.recv() == UserLeft("alice")
    await wait_until(lambda: len(server.connections) == 1, what="the backend connection to close")


async def test_vanished_browser_is_dropped_by_heartbeat(make_gateway_stack: Any, connect: Any) -> None:
    stack: GatewayStack = await make_gateway_stack(gateway={"heartbeat": 0.4})
    carol = await LineClient.connect("127.0.0.1", stack.server_port)
    try:
        await carol.join("carol")
        # autoping off and never reading: to the gateway, a browser tab that vanished
        page = await JsonClient.connect(stack.ws_url, autoping=False)
        await page.send({"type": "join", "id": "ghost"})
        assert await carol.recv(10) == UserJoined("ghost")
        assert await carol.recv(10) == UserLeft("ghost")  # the heartbeat found it gone
        await wait_until(lambda: len(stack.server.connections) == 1, what="ghost's backend to close")
        await page.close()
    finally:
        await carol.close()


async def test_server_drop_and_restart(make_gateway_stack: Any, ws_clients: WsClients) -> None:
    stack: GatewayStack = await make_gateway_stack()
    page = await ws_clients(stack.ws_url)
    assert (await page.recv())["state"] == "connected"
    await page.join("alice")
    await stack.stop_server()
    code, events = await page.closed()
    assert {"type": "error", "reason": "shutdown", "text": "server shutting down"} in events
    assert events[-1] == {"type": "status", "state": "disconnected", "reason": "backend-closed"}
    assert code == aiohttp.WSCloseCode.TRY_AGAIN_LATER
    # while the server is down, a join is told so at once
    page = await ws_clients(stack.ws_url)
    await page.recv()
    await page.send({"type": "join", "id": "alice"})
    code, events = await page.closed()
    assert events[0]["reason"] == "backend-unavailable"
    assert events[-1] == {"type": "status", "state": "disconnected", "reason": "backend-unavailable"}
    assert code == aiohttp.WSCloseCode.TRY_AGAIN_LATER
    # the server is back: rejoining with the same ID works
    await stack.restart_server()
    page = await ws_clients(stack.ws_url)
    await page.recv()
    assert (await page.join("alice"))[0] == {"type": "joined", "id": "alice"}


async def test_rate_limit_per_websocket(make_gateway_stack: Any, ws_clients: WsClients) -> None:
    stack: GatewayStack = await make_gateway_stack(gateway={"rate": 0.5, "burst": 4})
    carol = await LineClient.connect("127.0.0.1", stack.server_port)
    try:
        await carol.join("carol")
        page = await ws_clients(stack.ws_url)
        hello = await page.recv()
        assert (hello["rate"], hello["burst"]) == (0.5, 4)  # the page mirrors these
        await page.join("alice")  # one token
        await carol.recv()
        for i in range(4):
            await page.send({"type": "say", "text": f"m{i}"})
        refused = await page.recv()
        assert refused["type"] == "error" and refused["reason"] == "flood" and refused["retry_after"] > 0
        assert [await carol.recv() for _ in range(3)] == [Message("alice", f"m{i}") for i in range(3)]
        # another WebSocket has its own bucket
        other = await ws_clients(stack.ws_url)
        await other.recv()
        await other.join("bob")
        assert await carol.recv() == UserJoined("bob")
    finally:
        await carol.close()


async def test_forwarded_address_reaches_the_server_with_000(make_gateway_stack: Any, ws_clients: WsClients) -> None:
    stack: GatewayStack = await make_gateway_stack(
        server={"gateway_secret": "s3cret"}, gateway={"trusted_proxy": ("127.0.0.1/32",)})
    assert stack.config.gateway_secret == "s3cret"
    cases = [
        ({"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"),
        ({"X-Forwarded-For": "1.2.3.4, 203.0.113.10"}, "203.0.113.10"),  # the client's own entry is ignored
        ({"Forwarded": 'for="[2001:db8::7]:443"', "X-Forwarded-For": "9.9.9.9"}, "2001:db8::7"),
        ({}, "127.0.0.1"),
    ]
    for i, (headers, address) in enumerate(cases):
        page = await ws_clients(stack.ws_url, headers)
        await page.recv()
        await page.join(f"u{i}")
        assert session_of(stack.server, f"u{i}").address == address


async def test_spoofed_headers_from_an_untrusted_peer_are_ignored(make_gateway_stack: Any,
                                                                  ws_clients: WsClients) -> None:
    stack: GatewayStack = await make_gateway_stack(server={"gateway_secret": "s3cret"})  # no trusted proxy
    page = await ws_clients(stack.ws_url, {"X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9"})
    await page.recv()
    await page.join("spoofer")
    assert session_of(stack.server, "spoofer").address == "127.0.0.1"


async def test_per_address_limit_through_the_gateway(make_gateway_stack: Any, ws_clients: WsClients) -> None:
    """Issue 7: 25 users from 25 addresses all get in; of 25 from one address, the 21st on are refused."""
    stack: GatewayStack = await make_gateway_stack(
        server={"gateway_secret": "s3cret", "max_per_address": 20},
        gateway={"trusted_proxy": ("127.0.0.1/32",), "max_ws_per_address": 0})  # the server's limit

    async def user(name: str, address: str) -> tuple[JsonClient, dict[str, Any]]:
        page = await ws_clients(stack.ws_url, {"X-Forwarded-For": address})
        await page.recv()
        await page.send({"type": "join", "id": name})
        events = await page.recv_until(lambda e: e["type"] in ("users", "error"), timeout=15)
        return page, events[-1]

    many = await asyncio.gather(*(user(f"m{i}", f"198.51.100.{i}") for i in range(25)))
    assert all(last["type"] == "users" for _, last in many)
    same: list[tuple[JsonClient, dict[str, Any]]] = []
    for i in range(25):  # one after the other, so "the 21st" is well defined
        same.append(await user(f"s{i}", "203.0.113.5"))
    assert all(last["type"] == "users" for _, last in same[:20])
    for page, last in same[20:]:
        assert last["type"] == "error" and last["reason"] == "address-limit" and "address" in last["text"]
        assert await page.sync() == []  # the page stays, and is told plainly; no backend is held
    assert stack.server.address_limits.open_count("203.0.113.5") == 20
    assert stack.server.address_limits.open_count("127.0.0.1") == 0


async def test_origin_is_checked(make_gateway_stack: Any, ws_clients: WsClients) -> None:
    stack: GatewayStack = await make_gateway_stack()
    page = await ws_clients(stack.ws_url, {"Origin": stack.origin})
    assert (await page.recv())["state"] == "connected"
    for bad in ("http://evil.example", "null", f"http://localhost:{stack.gateway_port}"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await JsonClient.connect(stack.ws_url, {"Origin": bad})
        assert info.value.status == 403
    allow: GatewayStack = await make_gateway_stack(gateway={"allowed_origins": ("https://chat.example.org",)})
    page = await ws_clients(allow.ws_url, {"Origin": "https://chat.example.org"})
    assert (await page.recv())["state"] == "connected"
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await JsonClient.connect(allow.ws_url, {"Origin": allow.origin})


async def test_oversized_websocket_message_closes_only_that_socket(gw: Any, connect: Connect) -> None:
    carol = await connect()
    await carol.join("carol")
    page = await browser(gw)
    await page.send({"type": "say", "text": "x" * 100_000})
    code, _ = await page.closed()
    assert code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert await carol.sync() == []
    other = await browser(gw)
    assert (await other.join("bob"))[0]["type"] == "joined"
    await other.close()


async def test_several_frames_share_one_websocket_message(gw: Any, connect: Connect) -> None:
    carol = await connect()
    await carol.join("carol")
    page = await browser(gw)
    await page.join("alice")
    before = page.messages
    carol.writer.write(b"".join(f"002#carol#m{i}\n".encode() for i in range(50)))
    events = await page.recv_until(lambda e: e.get("text") == "m49")
    assert [e["text"] for e in events] == [f"m{i}" for i in range(50)]
    assert page.messages - before < 50  # batched as NDJSON
    await page.close()


async def test_terminal_user_list_order(gw: Any, connect: Connect) -> None:
    page = await browser(gw)
    await page.join("alice")
    carol = await connect()
    frames = await carol.join("carol")
    assert frames[-1] == UserList(("alice", "carol"))
    await page.close()


async def test_join_right_after_leave_opens_a_new_backend(gw: Any, server: ChatServer, connect: Connect) -> None:
    carol = await connect()
    await carol.join("carol")
    page = await browser(gw)
    await page.join("alice")
    await page.send({"type": "leave"})
    await page.send({"type": "join", "id": "alice"})  # before the server has closed the old connection
    events = await page.recv_until("users")
    assert events[0] == {"type": "left"} and {"type": "joined", "id": "alice"} in events
    assert await carol.recv_until(UserLeft("alice"))
    assert await carol.recv() == UserJoined("alice")
    await page.close()


async def test_no_task_or_socket_outlives_its_user(make_gateway_stack: Any) -> None:
    from web_gateway.app import BRIDGES

    stack: GatewayStack = await make_gateway_stack()
    carol = await LineClient.connect("127.0.0.1", stack.server_port)
    try:
        await carol.join("carol")
        for round_ in range(3):
            pages = [await JsonClient.connect(stack.ws_url) for _ in range(10)]
            for i, page in enumerate(pages):
                await page.join(f"u{round_}-{i}")
            await pages[0].send({"type": "leave"})
            await pages[0].recv_until("left")
            for page in pages:
                await page.close()
        await wait_until(lambda: len(stack.server.connections) == 1, what="every backend connection to close")
        await wait_until(lambda: not stack.runner.app[BRIDGES], what="every bridge to end")
        await wait_until(lambda: not [t for t in asyncio.all_tasks() if t.get_name().startswith("backend-")],
                         what="every backend task to end")
        frames = await carol.sync()
        assert sum(isinstance(f, UserLeft) for f in frames) == 30  # every user seen leaving
    finally:
        await carol.close()
