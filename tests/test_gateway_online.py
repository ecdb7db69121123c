"""``"online"`` in the gateway's first status event: the room's size as its joined backends hear it,
or as the server says while none of them is in the room."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tcp_server.protocol import UserJoined
from tests.gateway_fixtures import GatewayStack, JsonClient
from tests.helpers import LineClient, wait_until
from tests.test_gateway_resume import join, page, parked
from web_gateway.app import PRESENCE

Make = Callable[..., Awaitable[GatewayStack]]


async def hello(stack: GatewayStack) -> dict[str, Any]:
    """The first status event of a new WebSocket (a page load's welcome screen)."""
    client = await JsonClient.connect(stack.ws_url)
    try:
        first = await client.recv()
    finally:
        await client.close()
    assert first["type"] == "status" and first["state"] == "connected"
    return first


async def test_online_counts_the_room_terminal_users_included(make_gateway_stack: Make) -> None:
    stack = await make_gateway_stack()
    carol = await LineClient.connect("127.0.0.1", stack.server_port)
    dave = await LineClient.connect("127.0.0.1", stack.server_port)
    alice: JsonClient | None = None
    try:
        await carol.join("carol")
        assert (await hello(stack))["online"] == 1  # no page in the room: the server was asked
        alice = await page(stack.ws_url)
        await alice.join("alice")
        assert (await hello(stack))["online"] == 2
        await dave.join("dave")
        await alice.recv_until(lambda e: e == {"type": "user_joined", "id": "dave"})
        assert (await hello(stack))["online"] == 3
        await dave.send("004#dave")
        await alice.recv_until(lambda e: e == {"type": "user_left", "id": "dave"})
        assert (await hello(stack))["online"] == 2
        await alice.send({"type": "leave"})
        await alice.recv_until("left")
        assert (await hello(stack))["online"] == 1  # the last page left: the server says (or said lately)
        assert stack.server.room.roster.names() == ["carol"]
    finally:
        if alice is not None:
            await alice.close()
        await carol.close()
        await dave.close()


async def test_without_a_page_in_the_room_the_gateway_asks_the_server(make_gateway_stack: Make) -> None:
    stack = await make_gateway_stack()
    presence = stack.runner.app[PRESENCE]
    carol = await LineClient.connect("127.0.0.1", stack.server_port)
    tabs: list[JsonClient] = []
    try:
        await carol.join("carol")
        for _ in range(3):  # three page loads within PROBE_TTL: one question to the server
            assert (await hello(stack))["online"] == 1
        assert presence.probes == 1
        assert await carol.sync() == []  # asking told the room nothing: no 103/104 for anyone
        assert stack.server.room.roster.names() == ["carol"]
        tabs.append(alice := await page(stack.ws_url))
        await alice.send({"type": "join", "id": "alice"})  # a page in the room: its count, no probe
        await alice.recv_until("users")
        assert (await hello(stack))["online"] == 2
        assert presence.probes == 1
    finally:
        for tab in tabs:
            await tab.close()
        await carol.close()


async def test_the_probe_names_the_page_to_the_server_with_the_gateway_secret(make_gateway_stack: Make) -> None:
    """With a secret the probe says whose page asks (000 first), as the page's own backend would."""
    stack = await make_gateway_stack(server={"gateway_secret": "a-gateway-secret-of-32-characters"})
    carol = await LineClient.connect("127.0.0.1", stack.server_port)
    try:
        await carol.join("carol")
        assert (await hello(stack))["online"] == 1
        assert stack.runner.app[PRESENCE].probes == 1
        frames_in = stack.server.stats.frames_in
        assert frames_in["000"] == 1 and frames_in["005"] == 1  # the probe's: the page joined nothing
    finally:
        await carol.close()


async def test_with_the_server_down_the_welcome_screen_just_has_no_count(make_gateway_stack: Make) -> None:
    stack = await make_gateway_stack()
    await stack.server.close()
    assert "online" not in await hello(stack)


async def test_a_resume_does_not_count_the_replayed_joins_twice(make_gateway_stack: Make) -> None:
    stack = await make_gateway_stack(server={"resume_grace": 30.0})
    carol = await LineClient.connect("127.0.0.1", stack.server_port)
    dave = await LineClient.connect("127.0.0.1", stack.server_port)
    tabs: list[JsonClient] = []
    try:
        await carol.join("carol")
        tabs.append(alice := await page(stack.ws_url))
        token = await join(alice, "alice")
        tabs.append(bob := await page(stack.ws_url))
        await join(bob, "bob")
        await alice.close()  # a reload: alice is parked, still in the room
        await wait_until(parked(stack, "alice"), what="alice parked")
        await dave.join("dave")  # missed by alice: replayed on her resume
        await carol.recv_until(UserJoined("dave"))
        tabs.append(again := await page(stack.ws_url))
        await again.send({"type": "resume", "token": token})
        events = await again.recv_until("resumed")
        assert {"type": "user_joined", "id": "dave"} in events
        assert (await hello(stack))["online"] == 4
        await bob.send({"type": "leave"})  # bob stops counting; alice's count must be right alone
        await again.recv_until(lambda e: e == {"type": "user_left", "id": "bob"})
        assert (await hello(stack))["online"] == 3
    finally:
        for tab in tabs:
            await tab.close()
        await carol.close()
        await dave.close()
