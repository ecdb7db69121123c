"""Browser test fixtures: Debian's Chromium driven by Playwright, a gateway stack, terminal users.

Import the fixtures into a test module (``from tests.browser_fixtures import ...``;
``browser`` is module-scoped, so each module shares one Chromium and each test opens its own contexts.
Every await has a timeout (Playwright's ``expect`` and ``WAIT_MS``).
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Locator, Page, async_playwright, expect

from tests.gateway_fixtures import GatewayStack, start_stack
from tests.helpers import LineClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 20_000  # generous: two cores, other suites running
expect.set_options(timeout=WAIT_MS)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def stacks() -> AsyncIterator[Callable[..., Awaitable[GatewayStack]]]:
    made: list[GatewayStack] = []

    async def make(server: Mapping[str, Any] | None = None, gateway: Mapping[str, Any] | None = None) -> GatewayStack:
        stack = await start_stack(server, gateway)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        await stack.close()


@pytest_asyncio.fixture(loop_scope="module")
async def contexts(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[BrowserContext]]]:
    made: list[BrowserContext] = []

    async def make(**kwargs: Any) -> BrowserContext:
        kwargs.setdefault("locale", "en-US")
        context = await browser.new_context(**kwargs)
        context.set_default_timeout(WAIT_MS)
        made.append(context)
        return context

    yield make
    for context in made:
        await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def terminals() -> AsyncIterator[Callable[[int], Awaitable[LineClient]]]:
    made: list[LineClient] = []

    async def make(port: int) -> LineClient:
        client = await LineClient.connect("127.0.0.1", port)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def stored_chat(stacks: Callable[..., Awaitable[GatewayStack]],
                      terminals: Callable[[int], Awaitable[LineClient]], db: pathlib.Path, history: int,
                      lines: list[str]) -> GatewayStack:
    """A stack on an SQLite store (``history`` lines on a join) where the terminal user ``bob`` said ``lines``,
    every one of them committed before it returns."""
    from tests.helpers import TIMEOUT

    stack = await stacks(server={"database": f"sqlite:///{db}", "history": history})
    bob = await terminals(stack.server_port)
    await bob.join("bob")
    await bob.send("".join(f"002#bob#{line}\n" for line in lines))
    await bob.sync()
    assert stack.server.gate is not None and await stack.server.gate.drain(TIMEOUT)
    return stack


class Console:
    """Errors the page logged (a CSP violation is one): a test ends with none."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _on_console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(msg.text)


async def open_page(context: BrowserContext, url: str) -> tuple[Page, Console]:
    page = await context.new_page()
    console = Console(page)
    await page.goto(url)
    await expect(page.locator("#state")).to_have_attribute("data-state", "connected")
    return page, console


async def join(page: Page, name: str) -> None:
    await page.fill("#join-id", name)
    await page.press("#join-id", "Enter")
    await expect(page.locator("#send-form")).to_be_visible()


async def say(page: Page, text: str) -> None:
    """Send from the composer and wait until the server took it (own line marked sent)."""
    await page.fill("#message", text)
    await page.press("#message", "Enter")
    await expect(page.locator("#message")).to_have_value("")
    await expect(page.locator("#log li.own[data-state=pending]")).to_have_count(0)


def messages(page: Page, text: str | None = None, kind: str | None = None) -> Locator:
    """Message lines (``li.msg``), by text and kind (``all``, ``whisper``)."""
    selector = "#log li.msg" + (f'[data-kind="{kind}"]' if kind else "")
    found = page.locator(selector)
    return found.filter(has_text=text) if text is not None else found


def log_line(page: Page, text: str, kind: str | None = None) -> Locator:
    """Any log line (messages, notices) by text and ``data-kind``."""
    selector = "#log li" + (f'[data-kind="{kind}"]' if kind else "")
    return page.locator(selector).filter(has_text=text)


def user_buttons(page: Page) -> Locator:
    return page.locator("#users button.user")


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
