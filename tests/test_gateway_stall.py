"""Pages that never read (issue 15, item 5): the gateway must not hold their memory, or its own exit, for them.

The heartbeat is off (an hour) so that what is tested is the stall rule, not aiohttp dropping a
page that does not answer pings (a page that sends any byte keeps that from firing).

RawPage (tests/test_gateway_relay.py) is a WebSocket page on a bare socket with a
small receive buffer that reads only when told to, like a stalled browser tab.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from tcp_server.protocol import UserLeft
from tests.gateway_fixtures import GatewayStack
from tests.helpers import wait_until
from tests.test_gateway_relay import RawPage, flood, terminal
from web_gateway.app import BRIDGES
from web_gateway.bridge import PAGE_BUFFER_HIGH


async def joined_raw_page(stack: GatewayStack, name: str) -> RawPage:
    page = await RawPage.connect(stack.gateway_port)
    assert (await page.recv())["state"] == "connected"
    page.send({"type": "join", "id": name})
    await page.recv_until("users")
    return page


def bridges(stack: GatewayStack) -> set[Any]:
    return stack.runner.app[BRIDGES]


def paused_count(stack: GatewayStack) -> int:
    return sum(1 for b in bridges(stack) if b.backend is not None and b.backend.paused)


async def test_a_page_paused_past_the_stall_timeout_is_closed_and_leaves(
        make_gateway_stack: Any, caplog: pytest.LogCaptureFixture) -> None:
    """It used to keep its ~1 MB and the backend's kernel buffers for as long as it stayed connected."""
    stack: GatewayStack = await make_gateway_stack(server={"max_queue": 256 * 1024 * 1024},
                                                   gateway={"stall_timeout": 1.0, "heartbeat": 3600.0})
    caplog.set_level(logging.WARNING, logger="web_gateway")
    slow = await joined_raw_page(stack, "slow")
    try:
        carol = await terminal(stack, "carol")
        await flood(carol, 8000, 4000)  # 32 MB: the page's backend pauses
        await wait_until(lambda: not bridges(stack), timeout=30, what="the stalled page to be closed")
        assert UserLeft("slow") in await carol.recv_until(UserLeft("slow"), timeout=30)  # its 004 was sent
        assert any("read nothing for 1 s" in r.getMessage() for r in caplog.records)
        await carol.close()
    finally:
        await slow.close()


async def test_the_server_closing_a_paused_backend_is_noticed(
        make_gateway_stack: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A paused backend was not read, so the server closing it went unseen and the page was never let go."""
    stack: GatewayStack = await make_gateway_stack(server={"max_queue": 256 * 1024 * 1024},
                                                   gateway={"stall_timeout": 3600.0, "heartbeat": 3600.0})
    caplog.set_level(logging.WARNING, logger="web_gateway")
    slow = await joined_raw_page(stack, "slow")
    carol = None
    try:
        carol = await terminal(stack, "carol")
        body = "y" * 3990
        sent = 0
        while not paused_count(stack):  # just past the pause, so the server's close is not stuck behind data
            assert sent < 20_000, "the backend never paused"
            carol.writer.write(b"".join(f"002#carol#{i:06d} {body}\n".encode() for i in range(sent, sent + 10)))
            sent += 10
            await carol.sync()  # the server has written them to the backend
        await stack.stop_server()  # the server closes every connection, the paused one too
        await wait_until(lambda: not bridges(stack), timeout=30, what="the page of a closed backend to be let go")
        assert any("chat server closed its connection" in r.getMessage() for r in caplog.records)
    finally:
        if carol is not None:
            await carol.close()
        await slow.close()


async def test_pongs_before_join_count_against_the_page_buffer(make_gateway_stack: Any) -> None:
    """Pings without reading the pongs grew the gateway's buffer for that page without bound."""
    stack: GatewayStack = await make_gateway_stack(gateway={"stall_timeout": 2.0, "rate": 0.0, "heartbeat": 3600.0})
    page = await RawPage.connect(stack.gateway_port)
    try:
        assert (await page.recv())["state"] == "connected"
        (bridge,) = bridges(stack)
        high = 0

        def watch() -> bool:
            nonlocal high
            high = max(high, bridge.page_buffered())
            return not bridges(stack)

        for i in range(60_000):  # ~6.6 MB of pongs
            page.send({"type": "ping", "token": f"{i:06d}" + "p" * 74})
        await wait_until(watch, timeout=60, what="the page that reads no pongs to be closed")
        assert high <= PAGE_BUFFER_HIGH + 64 * 1024, high
    finally:
        await page.close()


async def test_shutdown_with_stuck_pages_ends_well_within_systemds_stop_timeout(make_gateway_stack: Any) -> None:
    """SIGTERM with 3 stuck pages took 32 s, past systemd's TimeoutStopSec=15."""
    stack: GatewayStack = await make_gateway_stack(server={"max_queue": 256 * 1024 * 1024},
                                                   gateway={"stall_timeout": 3600.0, "heartbeat": 3600.0})
    pages = [await joined_raw_page(stack, f"stuck{i}") for i in range(3)]
    try:
        carol = await terminal(stack, "carol")
        await flood(carol, 8000, 4000)
        await wait_until(lambda: paused_count(stack) == 3, timeout=30, what="all three backends to pause")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(stack.runner.cleanup(), 12)  # what SIGTERM runs; fails if it takes longer
        logging.getLogger(__name__).info("cleanup took %.1f s", loop.time() - started)
        assert not bridges(stack)
        await carol.close()
    finally:
        for page in pages:
            await page.close()
