"""End to end in a real browser: Debian's Chromium driven by Playwright, against a real gateway and server.

One browser for the module; each test opens its own contexts (separate users). Screenshots of the
main states go to test-artifacts/browser/ (git-ignored).
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tcp_server.protocol import Message, UserJoined, UserLeft, UserList, WhisperMessage
from tests.browser_fixtures import join, log_line, messages, open_page, say, shot, user_buttons
from tests.gateway_fixtures import GatewayStack

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_two_browsers_and_a_terminal_chat(stacks: Any, contexts: Any, terminals: Any) -> None:
    stack: GatewayStack = await stacks()
    carol = await terminals(stack.server_port)
    await carol.join("carol")

    # alice uses only the keyboard: the ID field has focus on load, Enter joins, Enter sends
    alice, alice_console = await open_page(await contexts(), stack.base_url)
    await shot(alice, "01-join-form")
    await alice.keyboard.type("alice")
    await alice.keyboard.press("Enter")
    await expect(alice.locator("#message")).to_be_focused()
    assert await carol.recv() == UserJoined("alice")

    bob, bob_console = await open_page(await contexts(), stack.base_url)
    await join(bob, "bob")
    assert await carol.recv() == UserJoined("bob")
    # the user list counts, and puts you first
    await expect(user_buttons(alice)).to_have_text(["aliceme", "bob", "carol"])
    await expect(user_buttons(bob)).to_have_text(["bobme", "alice", "carol"])
    await expect(alice.locator("#users-title")).to_have_text("Users online: 3")
    await expect(log_line(alice, "[Notice] bob joined.", "notice")).to_have_count(1)

    # to everyone: own line styled as own, the others' as a message
    await alice.keyboard.type("hello # everyone")
    await alice.keyboard.press("Enter")
    own = alice.locator("#log li.msg.own").filter(has_text="hello # everyone")
    await expect(own).to_have_attribute("data-state", "sent")
    await expect(own.locator(".author")).to_have_text("alice")
    line = messages(bob, "hello # everyone", "all")
    await expect(line.locator(".author")).to_have_text("alice")
    await expect(line.locator(".text")).to_have_text("hello # everyone")
    assert await carol.recv() == Message("alice", "hello # everyone")
    await carol.send("002#carol#hi from the terminal")
    for page in (alice, bob):
        await expect(messages(page, "hi from the terminal", "all").locator(".author")).to_have_text("carol")

    # click a user to whisper
    await user_buttons(bob).filter(has_text="alice").click()
    await expect(bob.locator("#message")).to_have_value("/m alice ")
    await expect(bob.locator("#message")).to_be_focused()
    await bob.keyboard.type("psst")
    await bob.keyboard.press("Enter")
    await expect(messages(alice, "psst", "whisper").locator(".badge")).to_have_text("whisper from bob")
    await expect(messages(bob, "psst", "whisper").locator(".badge")).to_have_text("whisper to alice")
    # typed commands: /m to the terminal user, /b, /who, and a bad one
    await say(alice, "/m carol secret for carol")
    assert await carol.recv() == WhisperMessage("alice", "secret for carol")
    await say(alice, "/b broadcast words")
    assert await carol.recv() == Message("alice", "broadcast words")
    await say(alice, "/who")
    await expect(log_line(alice, "=== Users online ===", "notice")).to_contain_text("carol\nalice\nbob")
    await alice.fill("#message", "/nope")
    await alice.press("#message", "Enter")
    await expect(alice.locator("#notice")).to_have_text("Please enter a valid message.")
    await expect(alice.locator("#message")).to_have_value("/nope")  # kept, to be corrected
    await alice.fill("#message", "/m nobody hello?")
    await alice.press("#message", "Enter")
    failed = alice.locator("#log li.own[data-state=failed]")
    await expect(failed).to_contain_text("hello?")
    await expect(alice.locator("#notice")).to_have_text("Not sent: No such user is online.")
    await expect(alice.locator("#message")).to_have_value("/m nobody hello?")  # given back
    await alice.fill("#message", "")
    assert await alice.locator('#log li[data-kind="error"]').count() == 0  # errors are not log lines

    # markup is shown as text, never run or parsed
    evil = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\"><b>bold</b>"
    await say(bob, evil)
    await expect(messages(alice, evil, "all").locator(".text")).to_have_text(evil)
    assert await alice.locator("#log b, #log img, #log script").count() == 0
    assert await alice.evaluate("window.pwned === undefined")
    assert await carol.recv() == Message("bob", evil)
    await shot(alice, "02-chat")
    await shot(bob, "03-chat-bob-whisper")

    # bob leaves with /q: his page returns to the join form, the others see the leave
    await say(bob, "/q")
    await expect(log_line(bob, "You have left the chat room.", "notice")).to_have_count(1)
    await expect(bob.locator("#join-form")).to_be_visible()
    await expect(user_buttons(bob)).to_have_count(0)
    await expect(log_line(alice, "[Notice] bob left.", "notice")).to_have_count(1)
    await expect(user_buttons(alice)).to_have_count(2)
    assert await carol.recv() == UserLeft("bob")
    # the terminal user leaves too
    await carol.send("004#carol")
    await expect(log_line(alice, "[Notice] carol left.", "notice")).to_have_count(1)
    await expect(user_buttons(alice)).to_have_text(["aliceme"])
    # alice closes her tab: the gateway leaves for her
    watcher = await terminals(stack.server_port)
    frames = await watcher.join("watcher")
    assert frames[-1] == UserList(("alice", "watcher"))
    await alice.close()
    assert await watcher.recv() == UserLeft("alice")
    assert alice_console.errors == [] and bob_console.errors == []


async def test_server_restart_page_shows_disconnected_then_rejoins(stacks: Any, contexts: Any,
                                                                   terminals: Any) -> None:
    stack: GatewayStack = await stacks()
    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")
    await stack.stop_server()
    await expect(page.locator("#state")).to_have_attribute("data-state", "disconnected")
    await expect(page.locator("#state-text")).to_contain_text("Disconnected")
    await expect(user_buttons(page)).to_have_count(0)
    await shot(page, "04-disconnected")
    await stack.restart_server()
    await expect(page.locator("#state-text")).to_have_text("Reconnected as alice")
    await expect(page.locator("#state")).to_have_attribute("data-state", "connected")
    await expect(user_buttons(page)).to_have_text(["aliceme"])
    carol = await terminals(stack.server_port)
    frames = await carol.join("carol")
    assert frames[-1] == UserList(("alice", "carol"))
    await expect(log_line(page, "[Notice] carol joined.")).to_have_count(1)
    await say(page, "back again")
    assert await carol.recv() == Message("alice", "back again")
    assert await page.locator('#log li[data-kind="error"]').count() == 0
    await shot(page, "05-rejoined")
    assert console.errors == []  # the gateway stayed up: no failed WebSocket, no script error


async def test_korean_inline_errors_language_switch_rate_notice_under_a_prefix(
        stacks: Any, contexts: Any, terminals: Any) -> None:
    # burst 4 and (almost) no refill: two joins and two messages fit (their acknowledging pings are the
    # control budget's), the next message is held back
    stack: GatewayStack = await stacks(gateway={"base_path": "/chat/", "rate": 0.02, "burst": 4, "lang": "en"})
    assert stack.base_url.endswith("/chat/")
    taken = await terminals(stack.server_port)
    await taken.join("민수")
    page, console = await open_page(await contexts(locale="ko-KR"), stack.base_url)
    await expect(page.locator("html")).to_have_attribute("lang", "ko")
    await expect(page.locator("#join-form button[type=submit]")).to_have_text("입장")

    await page.fill("#join-id", "민 수")  # a space: refused on the page, no message sent
    await page.press("#join-id", "Enter")
    await expect(page.locator("#join-error")).to_contain_text("사용할 수 없는 ID입니다.")
    await expect(page.locator("#join-id")).to_have_attribute("aria-invalid", "true")
    await page.fill("#join-id", "민수")  # taken (by the terminal user)
    await page.press("#join-id", "Enter")
    await expect(page.locator("#join-error")).to_have_text("중복된 ID입니다. ID를 다시 입력해주세요.")
    await shot(page, "06-ko-id-taken")
    await join(page, "지수")
    await expect(log_line(page, "채팅방에 입장하였습니다.")).to_have_count(1)
    await expect(log_line(page, "[공지]")).to_have_count(0)
    assert await taken.recv() == UserJoined("지수")
    await taken.send("002#민수#안녕하세요")
    await expect(messages(page, "안녕하세요", "all").locator(".author")).to_have_text("민수")

    # switch to English: labels change at once, without a reload or a new connection
    await page.click("button[data-set-lang=en]")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#send-form button[type=submit]")).to_have_text("Send")
    await expect(page.locator("#message")).to_have_attribute("placeholder", "Message everyone")
    await expect(page.locator("#state-text")).to_have_text("Connected")

    # rate limited: the page says so plainly and keeps the text
    await say(page, "one")
    assert await taken.recv() == Message("지수", "one")
    await say(page, "two")
    assert await taken.recv() == Message("지수", "two")
    await page.fill("#message", "three")
    await page.press("#message", "Enter")
    await expect(page.locator("#notice")).to_be_visible()
    await expect(page.locator("#notice")).to_contain_text("You are sending too fast")
    await expect(page.locator("#message")).to_have_value("three")
    await shot(page, "07-rate-limited")
    assert await taken.sync() == []  # "three" never left the page

    # on a phone
    phone, phone_console = await open_page(await contexts(viewport={"width": 390, "height": 800}, locale="ko-KR"),
                                           stack.base_url)
    await join(phone, "phone")
    await expect(user_buttons(phone)).to_have_count(3)
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "no sideways scrolling on a phone"
    await shot(phone, "08-phone")
    assert console.errors == [] and phone_console.errors == []
