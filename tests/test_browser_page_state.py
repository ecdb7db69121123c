"""What the page says about the room and the link, in Debian's Chromium against a real gateway and
server (issue 26, "also found on the page"). Each test fails on the page before the fix."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import expect

from tcp_server.protocol import Message, UserJoined, UserLeft
from tcp_server.room import InMemorySessionStore
from tests.browser_fixtures import join, messages, open_page, say
from tests.gateway_fixtures import GatewayStack
from tests.helpers import LineClient, wait_until
from tests.test_browser_page import HIDDEN_TAB_SCRIPT

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_welcome_count_after_leaving_is_the_room_now(stacks: Any, contexts: Any, terminals: Any) -> None:
    """Two joined after alice and one of them is parked (still in the room): after she leaves the
    welcome screen says 3, not the 2 of her join-time user list."""
    stack: GatewayStack = await stacks(server={"resume_grace": 30.0})
    bob: LineClient = await terminals(stack.server_port)
    await bob.join("bob")
    page, console = await open_page(await contexts(), stack.base_url)
    await expect(page.locator("#online")).to_have_text("1 online now")
    await join(page, "alice")
    carol: LineClient = await terminals(stack.server_port)
    await carol.join("carol")
    dave: LineClient = await terminals(stack.server_port)
    await dave.join("dave")
    await expect(page.locator("#users-title")).to_have_text("Users online: 4")
    dave.writer.transport.abort()  # dropped: parked, still in the room (no 104)
    sessions = stack.server.sessions
    assert isinstance(sessions, InMemorySessionStore)
    await wait_until(lambda: sessions.is_parked("dave"), what="dave parked")
    await say(page, "/q")
    await expect(page.locator("#join-form")).to_be_visible()
    assert await bob.recv_until(UserLeft("alice"))
    await expect(page.locator("#online")).to_have_text("3 online now")
    assert console.errors == []


async def test_a_notice_about_the_link_goes_when_the_link_is_back(stacks: Any, contexts: Any) -> None:
    """The server restarts: "The server is shutting down." goes when the page is back in, not 8 s
    later beside "Reconnected as alice" (in Korean alike)."""
    stack: GatewayStack = await stacks()
    en, en_console = await open_page(await contexts(), stack.base_url)
    await join(en, "alice")
    ko, _ = await open_page(await contexts(locale="ko-KR"), stack.base_url)
    await join(ko, "민수")
    await stack.stop_server()  # 109#shutdown to both backends
    await expect(en.locator("#notice")).to_have_text("The server is shutting down.")
    await expect(ko.locator("#notice")).to_have_text("서버가 종료됩니다.")
    await stack.restart_server()
    await expect(en.locator("#state-text")).to_have_text("Reconnected as alice")
    await expect(en.locator("#notice")).to_be_hidden(timeout=1000)
    await expect(ko.locator("#state-text")).to_have_text("다시 연결됨 (민수)")
    await expect(ko.locator("#notice")).to_be_hidden(timeout=1000)
    assert en_console.errors == []


async def test_twenty_messages_at_once_all_go_at_the_documented_rate(stacks: Any, contexts: Any,
                                                                      terminals: Any) -> None:
    """10/s, burst 20 (README): twenty lines sent at once all go; the ack ping after each is the
    control budget's, not a message token (neither the page's mirror nor the gateway charge it)."""
    stack: GatewayStack = await stacks(gateway={"rate": 10.0, "burst": 20})
    carol: LineClient = await terminals(stack.server_port)
    await carol.join("carol")
    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")
    assert await carol.recv() == UserJoined("alice")
    # Rate limits are about time: a moment in the room gives back the token the join took (0.1 s at 10/s).
    await asyncio.sleep(0.3)
    sent = await page.evaluate("""() => {
        const input = document.getElementById('message');
        const form = document.getElementById('send-form');
        let sent = 0;
        for (let i = 0; i < 20; i++) {
            input.value = `line ${i}`;
            form.requestSubmit();
            if (input.value === '') sent += 1;
        }
        return sent;
    }""")
    assert sent == 20
    got = await carol.recv_until(Message("alice", "line 19"))
    assert got == [Message("alice", f"line {i}") for i in range(20)]
    await expect(page.locator("#log li.own[data-state=sent]")).to_have_count(20)
    await expect(page.locator("#notice")).to_be_hidden()
    assert console.errors == []


async def test_a_whisper_to_oneself_raises_no_notification(stacks: Any, contexts: Any, terminals: Any) -> None:
    stack: GatewayStack = await stacks()
    context = await contexts()
    await context.grant_permissions(["notifications"], origin=stack.origin)
    await context.add_init_script(HIDDEN_TAB_SCRIPT)
    page, console = await open_page(context, stack.base_url)
    await join(page, "carol")
    await page.click("#notify")
    await expect(page.locator("#notify")).to_have_attribute("aria-pressed", "true")
    bob: LineClient = await terminals(stack.server_port)
    await bob.join("bob")
    await page.evaluate("window.__setHidden(true)")
    await say(page, "/m carol note to self")
    await expect(messages(page, "note to self", "whisper")).to_have_count(2)  # sent, and received
    await bob.send("003#bob#carol#psst")
    await page.wait_for_function("() => window.__notes.length >= 1")
    assert await page.evaluate("window.__notes") == [{"title": "Message from bob", "body": "psst"}]
    await expect(page).to_have_title("(1) Chat · hanchat")  # her own whisper is not unread either
    assert console.errors == []


async def test_a_reload_past_the_window_joins_afresh_and_says_so(stacks: Any, contexts: Any, terminals: Any) -> None:
    """More was said during the reload than a resume replays (here 5 frames): the session ends (the
    parked one at its bound; a live one's resume is refused with ``gap``), and the page joins afresh
    with its ID and says that messages may be missing: never a silently short log."""
    from tests.test_browser_resume import parked, reload_while

    stack: GatewayStack = await stacks(server={"resume_grace": 30.0, "resume_max_frames": 5, "history": 3})
    carol: LineClient = await terminals(stack.server_port)
    await carol.join("carol")
    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")
    await carol.send("002#carol#before")
    await expect(messages(page, "before")).to_have_count(1)

    async def meanwhile() -> None:
        await wait_until(parked(stack, "alice"), what="alice parked by the reload")
        for i in range(4):
            await carol.send(f"002#carol#during {i}")
        await carol.sync()

    # four frames missed: still within the window of five
    await reload_while(page, meanwhile)
    await expect(page.locator("#state-text")).to_have_text("Reconnected as alice")
    await expect(messages(page)).to_have_count(5)

    seen: list[object] = []

    async def too_much() -> None:
        await wait_until(parked(stack, "alice"), what="alice parked by the second reload")
        for i in range(8):
            await carol.send(f"002#carol#lost {i}")
        seen.extend(await carol.sync())

    await reload_while(page, too_much)
    await expect(page.locator("#log li[data-kind=notice]").filter(
        has_text="Could not resume the session, so you joined afresh")).to_have_count(1)
    await expect(page.locator("#send-form")).to_be_visible()
    seen.extend(await carol.recv_until(UserJoined("alice")))
    assert [f for f in seen if isinstance(f, (UserJoined, UserLeft))] == [UserLeft("alice"), UserJoined("alice")]
    await expect(messages(page, "lost 7")).to_have_count(1)  # the last three come back as history
    assert console.errors == []
