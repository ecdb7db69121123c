"""The composer's commands beyond the seed's (static/commands.js: the terminal client's list), in a real
browser against a real gateway and a server with a store: /help, /search, /more, /register, and a
command the page does not know."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser_fixtures import join, messages, open_page, stored_chat

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_terminal_clients_commands_work_in_the_composer(
    stacks: Any, contexts: Any, terminals: Any, tmp_path: pathlib.Path,
) -> None:
    stack = await stored_chat(stacks, terminals, tmp_path / "chat.db", 5, [f"note {i:02d}" for i in range(60)])
    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")
    await expect(messages(page)).to_have_count(5)  # the join's history

    async def typed(line: str) -> None:
        await page.fill("#message", line)
        await page.press("#message", "Enter")

    await typed("/help")  # the commands, in the log; nothing is sent
    await expect(page.locator("#log li[data-kind=notice]").last).to_contain_text("/m ID text: whisper")
    await expect(page.locator("#message")).to_have_value("")

    await typed("/more")  # the page before the oldest shown, as the button there asks
    await expect(messages(page)).to_have_count(55)

    await typed("/search note 5")  # the search beside the users
    await expect(page.locator("#results-title")).to_have_text("10 found for “note 5”")
    await typed("/search x")  # too short: said, and the text stays
    await expect(page.locator("#notice")).to_have_text("Type at least 2 characters.")
    await expect(page.locator("#message")).to_have_value("/search x")

    await typed("/register")  # to the form that asks the password twice
    await expect(page.locator("#register-password")).to_be_focused()

    await typed("/dance now")  # not a command: said, kept, nothing sent
    await expect(page.locator("#notice")).to_have_text("Please enter a valid message.")
    await expect(page.locator("#message")).to_have_value("/dance now")
    assert console.errors == []
