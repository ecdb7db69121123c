"""A reload, or a gateway restart, in a busy room (issue 26), in Debian's Chromium against a real gateway
and server: 40 terminal users each say 6 lines at an even pace while alice's tab reloads (or the
gateway restarts) in the middle. Her log must then hold every one of the 240 lines exactly once, in
the order the room said them, 20 times in a row.

Before positions, the page kept its log at ``pagehide`` while the server counted as delivered
everything it wrote to the old WebSocket until it noticed the drop: 6 to 56 lines went missing.
An observer (a 41st terminal user) records the room's own order to compare with. The reload is also
run with the session store in Redis (the talkers on one node, the gateway on another).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tcp_server.__main__ import start_node, stop_node
from tcp_server.protocol import Message
from tests.browser_fixtures import join, open_page
from tests.conftest import server_config
from tests.gateway_fixtures import GatewayStack, gateway_config
from tests.helpers import TIMEOUT, LineClient
from tests.redis_fixtures import NODE_TIMEOUT, RedisServer
from web_gateway.__main__ import start_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

USERS = 40
LINES = 6
ROUNDS = 20
PACE = 0.008  # seconds between two lines of the room: 240 lines in about 2 s, an even pace
BUSY = {"resume_grace": 30.0, "history": 5}


async def room_of(stack: GatewayStack, terminals: Any) -> tuple[list[LineClient], LineClient]:
    """The 40 talkers and an observer, all joined (and past their own joins' noise)."""
    talkers = []
    for i in range(USERS):
        client: LineClient = await terminals(stack.server_port)
        await client.join(f"u{i}")
        talkers.append(client)
    observer: LineClient = await terminals(stack.server_port)
    await observer.join("observer")
    for client in (*talkers, observer):
        await client.sync()
    return talkers, observer


async def talk(talkers: list[LineClient], tag: str, halfway: asyncio.Event) -> None:
    """Every talker says LINES lines, one line of the room every PACE seconds (the load's pace, not a wait)."""
    said = 0
    for k in range(LINES):
        for i, client in enumerate(talkers):
            await client.send(f"002#u{i}#{tag} u{i} line {k}")
            said += 1
            if said == USERS * LINES // 2:
                halfway.set()
            await asyncio.sleep(PACE)


async def room_order(observer: LineClient, tag: str) -> list[str]:
    """The room's own order of this round's lines, as a terminal user got them."""
    got = await observer.recv_until(Message(f"u{USERS - 1}", f"{tag} u{USERS - 1} line {LINES - 1}"))
    return [f.message for f in got if isinstance(f, Message) and f.message.startswith(tag + " ")]


async def page_lines(page: Page, tag: str) -> list[str]:
    """This round's lines in alice's log, top to bottom, once all of them are there (or as many as came)."""
    lines = page.locator("#log li.msg .text").filter(has_text=f"{tag} u")
    try:
        await expect(lines).to_have_count(USERS * LINES)
    except AssertionError:
        pass  # what is there is compared below, which says what was lost or doubled
    shown: list[str] = await page.evaluate(
        "(tag) => [...document.querySelectorAll('#log li.msg .text')].map((e) => e.textContent)"
        ".filter((t) => t.startsWith(tag + ' '))", tag)
    return shown


def compare(tag: str, shown: list[str], said: list[str]) -> str:
    """'' when the page shows exactly what the room said, in its order; else what is wrong."""
    if shown == said:
        return ""
    lost = sorted(set(said) - set(shown))
    doubled = sorted({line for line in shown if shown.count(line) > 1})
    return f"{tag}: {len(lost)} lost {lost[:5]}, {len(doubled)} doubled {doubled[:5]}, out of order otherwise"


async def rounds(page: Page, talkers: list[LineClient], observer: LineClient,
                 disrupt: Callable[[], Awaitable[None]], settle: Callable[[], Awaitable[None]]) -> list[str]:
    """ROUNDS rounds of talk with ``disrupt`` at each round's halfway point; what went wrong in each."""
    wrong: list[str] = []
    for r in range(ROUNDS):
        tag = f"r{r}"
        halfway = asyncio.Event()
        talking = asyncio.create_task(talk(talkers, tag, halfway))
        try:
            await asyncio.wait_for(halfway.wait(), 30)
            await disrupt()
            await asyncio.wait_for(talking, 60)
        finally:
            talking.cancel()
        said = await room_order(observer, tag)
        assert len(said) == USERS * LINES
        await settle()
        if problem := compare(tag, await page_lines(page, tag), said):
            wrong.append(problem)
    return wrong


async def test_a_reload_in_a_busy_room_loses_nothing_and_doubles_nothing(stacks: Any, contexts: Any,
                                                                         terminals: Any) -> None:
    stack: GatewayStack = await stacks(server=BUSY)
    talkers, observer = await room_of(stack, terminals)
    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")

    async def reload() -> None:
        await page.reload()

    async def back() -> None:
        await expect(page.locator("#state-text")).to_have_text("Reconnected as alice")

    assert await rounds(page, talkers, observer, reload, back) == []
    assert await observer.sync() == []  # no leave or join for alice, ever
    assert console.errors == []


async def test_a_gateway_restart_under_load_loses_nothing_and_doubles_nothing(stacks: Any, contexts: Any,
                                                                              terminals: Any) -> None:
    stack: GatewayStack = await stacks(server=BUSY)
    talkers, observer = await room_of(stack, terminals)
    page, _ = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")

    async def restart() -> None:
        await stack.runner.cleanup()  # the page hears shutdown; its session is kept on the server
        runner, port = await start_gateway(gateway_config(stack.server_port, port=stack.gateway_port))
        stack.runner = runner  # closed with the stack
        assert port == stack.gateway_port

    async def back() -> None:
        await expect(page.locator("#state-text")).to_have_text("Reconnected as alice")

    assert await rounds(page, talkers, observer, restart, back) == []
    assert await observer.sync() == []


async def test_in_redis_a_reload_in_a_busy_room_loses_nothing_and_doubles_nothing(
        contexts: Any, terminals: Any, redis_server: RedisServer) -> None:
    """The same with the session store in Redis: the talkers on one node, the gateway (and alice) on another."""
    nodes = []
    runner = None
    try:
        for i in range(2):
            cfg = server_config(redis=redis_server.url, node_id=f"node{i}", node_timeout=NODE_TIMEOUT, **BUSY)
            server, room = await asyncio.wait_for(start_node(cfg), TIMEOUT)
            nodes.append((server, room))
            assert room is not None
            await asyncio.wait_for(room.link.ready.wait(), TIMEOUT)
        (talk, _), (hers, _) = nodes
        talkers = []
        for i in range(USERS):
            client: LineClient = await terminals(talk.port)
            await client.join(f"u{i}")
            talkers.append(client)
        observer: LineClient = await terminals(talk.port)
        await observer.join("observer")
        for client in (*talkers, observer):
            await client.sync()
        runner, port = await start_gateway(gateway_config(hers.port))
        page, console = await open_page(await contexts(), f"http://127.0.0.1:{port}/")
        await join(page, "alice")

        async def reload() -> None:
            await page.reload()

        async def back() -> None:
            await expect(page.locator("#state-text")).to_have_text("Reconnected as alice")

        assert await rounds(page, talkers, observer, reload, back) == []
        assert await observer.sync() == []
        assert console.errors == []
    finally:
        if runner is not None:
            await runner.cleanup()
        for server, room in nodes:
            await asyncio.wait_for(stop_node(server, room), TIMEOUT * 2)
