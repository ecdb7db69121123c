"""The gateway behind a real nginx running the shipped deploy/nginx/chat.conf (issue 5).

Every test starts Debian's nginx on an ephemeral loopback port with the shipped
server block (only ports, server name and, where a test says so, the read
timeout changed), in front of a real gateway under ``/chat/`` and a real TCP
server, and stops all of them after.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tcp_server.protocol import Message, UserJoined, UserLeft
from tests.gateway_fixtures import GatewayStack
from tests.helpers import TIMEOUT, LineClient, stamped, wait_until
from tests.nginx_fixtures import StackMaker, deployed, ws_through
from web_gateway.__main__ import start_gateway

ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / "test-artifacts" / "nginx"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]

@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="en-US")
    yield await context.new_page()
    await context.close()


async def terminal_user(stack: GatewayStack, clients: list[Any], name: str = "tina") -> LineClient:
    """A joined terminal-protocol user, straight on the TCP server."""
    terminal = await LineClient.connect("127.0.0.1", stack.server_port)
    clients.append(terminal)
    await terminal.join(name)
    return terminal


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def join_in_page(page: Page, url: str, name: str) -> None:
    await page.goto(url)
    await page.fill("#join-id", name)
    await page.press("#join-id", "Enter")
    await expect(page.locator("#send-form")).to_be_visible(timeout=TIMEOUT * 1000)
    await expect(page.locator("#state")).to_have_attribute("data-state", "connected", timeout=TIMEOUT * 1000)


# ---------------------------------------------------------------- the page under /chat/


async def test_page_static_and_ws_under_the_sub_path(make_gateway_stack: StackMaker, nginx_for: Any,
                                                     clients: list[Any]) -> None:
    stack = await deployed(make_gateway_stack)
    nginx = nginx_for(stack)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{nginx.base_url}/chat", allow_redirects=False) as resp:
            assert resp.status == 301
            assert resp.headers["Location"].endswith("/chat/")
        async with http.get(f"{nginx.base_url}/chat/") as resp:
            assert resp.status == 200
            page = await resp.text()
            assert "Content-Security-Policy" in resp.headers
        assert 'href="static/style.css?v=' in page and 'src="static/m/' in page  # relative: /chat/static/...
        for asset, kind in (("static/style.css", "text/css"), ("static/app.js", "javascript")):
            async with http.get(f"{nginx.base_url}/chat/{asset}") as resp:
                assert resp.status == 200, asset
                assert kind in resp.headers["Content-Type"]
        async with http.get(f"{nginx.base_url}/chat/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{nginx.base_url}/chat/no-such-page") as resp:
            assert resp.status == 404

    terminal = await terminal_user(stack, clients)
    web = await ws_through(nginx)
    clients.append(web)
    await web.join("wendy")
    await terminal.recv_until(UserJoined("wendy"))
    await web.send({"type": "say", "text": "through nginx #1"})
    await terminal.recv_until(Message("wendy", "through nginx #1"))
    await terminal.send("003#tina#wendy#back at you")
    await web.recv_until(lambda e: e.get("type") == "whisper" and stamped(e) == {"type": "whisper", "from": "tina",
                                                                            "text": "back at you"})


async def test_chromium_chats_through_nginx(make_gateway_stack: StackMaker, nginx_for: Any, page: Page,
                                            clients: list[Any]) -> None:
    stack = await deployed(make_gateway_stack)
    nginx = nginx_for(stack)
    terminal = await terminal_user(stack, clients)
    await join_in_page(page, f"{nginx.base_url}/chat/", "paula")
    await terminal.recv_until(UserJoined("paula"))
    await terminal.send("002#tina#hello page behind nginx")
    await expect(page.locator("#log")).to_contain_text("hello page behind nginx", timeout=TIMEOUT * 1000)
    await page.fill("#message", "hello terminal")
    await page.press("#message", "Enter")
    await terminal.recv_until(Message("paula", "hello terminal"))
    await expect(page.locator("#users")).to_contain_text("tina")
    await shot(page, "chat-through-nginx")


# ---------------------------------------------------------------- the real address


async def test_server_logs_the_real_address_not_a_spoofed_one(make_gateway_stack: StackMaker, nginx_for: Any,
                                                               clients: list[Any],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """nginx (127.0.0.1, trusted) appends the peer it saw; the client's own X-Forwarded-For is not believed."""
    caplog.set_level(logging.INFO, logger="tcp_server")
    stack = await deployed(make_gateway_stack)
    nginx = nginx_for(stack)
    spoofed = {"X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9", "X-Real-IP": "203.0.113.9"}
    web = await ws_through(nginx, local_addr="127.0.0.2", headers=spoofed)
    clients.append(web)
    await web.join("mallory")

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if "mallory connected" in r.getMessage()]

    await wait_until(lambda: bool(logged()), TIMEOUT, "the server logs mallory's join")
    assert logged() == ["mallory connected. [127.0.0.2]"]
    assert not any("203.0.113.9" in r.getMessage() for r in caplog.records)
    # The address is what the server limits by, too.
    (conn,) = [c for c in stack.server.connections if c.session.name == "mallory"]
    assert conn.session.address == "127.0.0.2"


# ---------------------------------------------------------------- idle WebSockets


async def test_idle_websocket_outlives_nginx_read_timeout(make_gateway_stack: StackMaker, nginx_for: Any,
                                                          clients: list[Any]) -> None:
    """Heartbeats (1 s) inside nginx's read timeout (3 s): a user quiet for 7 s is still there."""
    stack = await deployed(make_gateway_stack, heartbeat=1.0)
    nginx = nginx_for(stack, read_timeout="3s")
    web = await ws_through(nginx)
    clients.append(web)
    await web.join("quiet")
    with pytest.raises(TimeoutError):  # nothing at all for 7 s: no event and, above all, no close
        await web.recv(timeout=7.0)
    assert await web.sync("still-here") == []
    assert stack.server.room.roster.names() == ["quiet"]


async def test_without_heartbeats_nginx_cuts_the_idle_websocket(make_gateway_stack: StackMaker, nginx_for: Any,
                                                                clients: list[Any]) -> None:
    """The control for the test above: heartbeats slower than the timeout, and nginx closes at 1 s.

    The gateway then leaves for the user (004), so nobody keeps a ghost.
    """
    stack = await deployed(make_gateway_stack, heartbeat=60.0)
    nginx = nginx_for(stack, read_timeout="1s")
    terminal = await terminal_user(stack, clients)
    web = await ws_through(nginx)
    clients.append(web)
    await web.join("dozer")
    await terminal.recv_until(UserJoined("dozer"))
    await web.closed(timeout=10.0)
    await terminal.recv_until(UserLeft("dozer"), timeout=10.0)


# ---------------------------------------------------------------- gateway restart


async def test_pages_reconnect_after_a_gateway_restart(make_gateway_stack: StackMaker, nginx_for: Any,
                                                       page: Page, clients: list[Any]) -> None:
    stack = await deployed(make_gateway_stack)
    nginx = nginx_for(stack)
    terminal = await terminal_user(stack, clients)
    await join_in_page(page, f"{nginx.base_url}/chat/", "phoenix")
    await terminal.recv_until(UserJoined("phoenix"))

    await stack.runner.cleanup()  # as systemctl restart's SIGTERM: the page is told, its user leaves
    await terminal.recv_until(UserLeft("phoenix"))
    await expect(page.locator("#state")).not_to_have_attribute("data-state", "connected",
                                                              timeout=TIMEOUT * 1000)
    await shot(page, "gateway-down")

    runner, port = await start_gateway(replace(stack.config, port=stack.gateway_port))
    stack.runner = runner  # closed by the fixture
    assert port == stack.gateway_port
    await terminal.recv_until(UserJoined("phoenix"), timeout=30.0)  # rejoined by itself
    await expect(page.locator("#state")).to_have_attribute("data-state", "connected", timeout=TIMEOUT * 1000)
    await terminal.send("002#tina#welcome back")
    await expect(page.locator("#log")).to_contain_text("welcome back", timeout=TIMEOUT * 1000)
    await shot(page, "gateway-back")
