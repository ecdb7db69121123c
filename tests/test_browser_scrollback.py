"""The page's scrollback (scrolling to the top loads the previous page) and search, in a real browser
against a real gateway and a server with a real SQLite store; a restart keeps the page's history."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import expect

from tests.browser_fixtures import join, messages, open_page, stored_chat
from tests.gateway_fixtures import GatewayStack
from tests.helpers import TIMEOUT

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_scrolling_up_loads_earlier_pages_and_search_lists_matches(
    stacks: Any, contexts: Any, terminals: Any, tmp_path: pathlib.Path,
) -> None:
    stack = await stored_chat(stacks, terminals, tmp_path / "chat.db", 20,
                              [f"line {i:03d} <b>#{i}</b>" for i in range(130)])

    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")
    await expect(messages(page)).to_have_count(20)  # the join's history
    await expect(page.locator("#search-form")).to_be_visible()  # the server keeps a store
    await expect(page.locator("#more")).to_be_visible()
    await page.locator("#log").evaluate("log => { log.scrollTop = 0; }")  # to the top: the page before
    await expect(messages(page)).to_have_count(70)
    first = messages(page).first
    await expect(first.locator(".text")).to_have_text("line 060 <b>#60</b>")  # text, never markup
    await page.locator("#more").click()
    await expect(messages(page)).to_have_count(120)
    await page.locator("#more").click()
    await expect(messages(page)).to_have_count(130)
    await expect(page.locator('#log li[data-kind="start"]')).to_have_text(
        "This is the beginning of the conversation.")
    await expect(page.locator("#more")).to_be_hidden()
    texts = await page.locator("#log li.msg .text").all_text_contents()
    assert texts == [f"line {i:03d} <b>#{i}</b>" for i in range(130)]  # each once, in the room's order

    await page.fill("#search", "x")
    await page.press("#search", "Enter")
    await expect(page.locator("#notice")).to_have_text("Type at least 2 characters.")
    await page.fill("#search", "LINE 12")
    await page.press("#search", "Enter")
    await expect(page.locator("#results-title")).to_have_text("10 found for “LINE 12”")
    found = await page.locator("#results-list li.msg .text").all_text_contents()
    assert found == [f"line {i:03d} <b>#{i}</b>" for i in range(129, 119, -1)]  # newest first
    await page.fill("#search", "%_")
    await page.press("#search", "Enter")
    await expect(page.locator("#results-title")).to_have_text("0 found for “%_”")  # literal, no wildcard

    result = await Axe().run(page)
    bad = [f"{v['id']} ({v['impact']})" for v in result.response["violations"]
           if v["impact"] in ("serious", "critical")]
    assert bad == []
    await page.locator("#results-close").click()
    await expect(page.locator("#results")).to_be_hidden()
    assert console.errors == []


async def test_a_server_restart_does_not_empty_the_pages_history(
    stacks: Any, contexts: Any, terminals: Any, tmp_path: pathlib.Path,
) -> None:
    stack = await stored_chat(stacks, terminals, tmp_path / "chat.db", 50, ["said before the restart"])
    await stack.restart_server()
    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, "carol")
    await expect(messages(page, "said before the restart")).to_have_count(1)
    assert console.errors == []


async def test_a_reloaded_tab_resumes_paging_and_searching_without_repeating_lines(
    stacks: Any, contexts: Any, terminals: Any, tmp_path: pathlib.Path,
) -> None:
    stack: GatewayStack = await stacks(
        server={"database": f"sqlite:///{tmp_path / 'chat.db'}", "history": 5, "resume_grace": 30.0})
    bob = await terminals(stack.server_port)
    await bob.join("bob")
    await bob.send("".join(f"002#bob#r{i:02d}\n" for i in range(80)))
    await bob.sync()
    assert stack.server.gate is not None and await stack.server.gate.drain(TIMEOUT)
    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")
    await expect(messages(page)).to_have_count(5)
    await page.locator("#more").click()
    await expect(messages(page)).to_have_count(55)
    await page.reload()  # the session resumes: no `page` event comes with a resume
    await expect(page.locator("#state-text")).to_have_text("Reconnected as alice")
    await expect(page.locator("#search-form")).to_be_visible()
    await expect(page.locator("#more")).to_be_visible()  # found its place again, from the newest
    await page.locator("#more").click()
    await expect(page.locator('#log li[data-kind="start"]')).to_have_count(1)
    texts = await page.locator("#log li.msg .text").all_text_contents()
    assert texts == [f"r{i:02d}" for i in range(80)]  # every line once, in order
    assert console.errors == []
