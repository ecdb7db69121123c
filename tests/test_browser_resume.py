"""History and resumed sessions in the page (issues 13 and 14), in Debian's Chromium against a real
gateway and server with ``history`` and ``resume_grace`` on.

A reload is made to last long enough for the room to talk meanwhile: the new document's app.js is
held (Playwright's routing) until the old session is parked on the server and a terminal user has
spoken, so "messages sent during the reload" is a fact of the test, not a race.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page, Route, WebSocketRoute, expect

from tcp_server.protocol import Message, ServerFrame, UserJoined, UserLeft
from tcp_server.room import InMemorySessionStore
from tests.browser_fixtures import join, messages, open_page, say, user_buttons
from tests.gateway_fixtures import GatewayStack, gateway_config
from tests.helpers import LineClient, wait_until
from web_gateway.__main__ import start_gateway

pytestmark = pytest.mark.asyncio(loop_scope="module")

RESUMABLE = {"resume_grace": 30.0, "history": 5}
HOLD_TIMEOUT = 20.0


def parked(stack: GatewayStack, name: str) -> Callable[[], bool]:
    sessions = stack.server.sessions
    assert isinstance(sessions, InMemorySessionStore)
    return lambda: sessions.is_parked(name)


async def texts(page: Page) -> list[str]:
    """The text of every message line in the log, top to bottom."""
    return list(await page.locator("#log li.msg .text").all_inner_texts())


def no_presence(frames: list[ServerFrame]) -> list[ServerFrame]:
    """The joins and leaves among ``frames`` (a resume must cause none)."""
    return [f for f in frames if isinstance(f, (UserJoined, UserLeft))]


async def reload_while(page: Page, meanwhile: Callable[[], Awaitable[None]]) -> None:
    """Reload ``page``; ``meanwhile`` runs after the old document is gone and before the new one's script."""
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold(route: Route) -> None:
        held.set()
        await asyncio.wait_for(release.wait(), HOLD_TIMEOUT)
        await route.continue_()

    await page.route("**/static/m/*/app.js", hold)
    reloading = asyncio.create_task(page.reload())
    try:
        await asyncio.wait_for(held.wait(), HOLD_TIMEOUT)
        await meanwhile()
    finally:
        release.set()
        await asyncio.wait_for(reloading, HOLD_TIMEOUT)
        await page.unroute("**/static/m/*/app.js", hold)


async def assert_reconnected(page: Page, name: str, notices: int = 0) -> None:
    """Back in as ``name``, said once in the status area; the log has no more notices than before."""
    await expect(page.locator("#send-form")).to_be_visible()
    await expect(page.locator("#state-text")).to_have_text(f"Reconnected as {name}")
    await expect(page.locator("#log li[data-kind=notice]")).to_have_count(notices)  # no leave/join lines
    assert await page.evaluate("sessionStorage.getItem('hanchat.id')") == name


async def test_a_reload_resumes_the_session_with_what_was_said_meanwhile(stacks: Any, contexts: Any,
                                                                         terminals: Any) -> None:
    stack: GatewayStack = await stacks(server=RESUMABLE)
    carol: LineClient = await terminals(stack.server_port)
    await carol.join("carol")
    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")
    await carol.send("002#carol#hello alice")
    await expect(messages(page, "hello alice")).to_have_count(1)
    await say(page, "before the reload")
    seen = await carol.recv_until(Message("alice", "before the reload"))
    token = await page.evaluate("sessionStorage.getItem('hanchat.session')")
    assert token

    async def meanwhile() -> None:
        await wait_until(parked(stack, "alice"), what="alice parked by the reload")
        await carol.send("002#carol#during # the reload")
        await carol.send("003#carol#alice#psst")
        await carol.send("002#carol#still during")
        await carol.sync()  # the server has kept all three for alice

    await reload_while(page, meanwhile)
    await assert_reconnected(page, "alice")
    # what was on screen comes back (this tab's sessionStorage), then what was missed, once, in order
    await expect(messages(page)).to_have_count(5)
    assert await texts(page) == ["hello alice", "before the reload", "during # the reload", "psst", "still during"]
    await expect(messages(page, "psst", "whisper")).to_have_count(1)
    await expect(page.locator("#log li.own")).to_have_count(1)
    await expect(user_buttons(page)).to_have_count(2)
    new_token = await page.evaluate("sessionStorage.getItem('hanchat.session')")
    assert new_token and new_token != token

    await say(page, "after the reload")
    seen += await carol.recv_until(Message("alice", "after the reload"))
    assert no_presence(seen) == [UserJoined("alice")]  # only the first join: no 104/103 for the reload
    assert await carol.sync() == []
    await expect(messages(page)).to_have_count(6)
    assert console.errors == []


async def test_a_gateway_restart_resumes_the_session(stacks: Any, contexts: Any, terminals: Any) -> None:
    stack: GatewayStack = await stacks(server=RESUMABLE)
    carol: LineClient = await terminals(stack.server_port)
    await carol.join("carol")
    page, _ = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")
    await carol.send("002#carol#before the restart")
    await expect(messages(page, "before the restart")).to_have_count(1)
    seen = await carol.recv_until(UserJoined("alice"))
    notices = await page.locator("#log li[data-kind=notice]").count()  # "You joined" only

    await stack.runner.cleanup()  # the gateway stops: the page hears shutdown, the session is parked
    await wait_until(parked(stack, "alice"), what="alice parked by the gateway stop")
    await expect(page.locator("#state")).to_have_attribute("data-state", "disconnected")
    await carol.send("002#carol#while the gateway was down")
    await carol.send("002#carol#twice")
    await carol.sync()
    runner, port = await start_gateway(gateway_config(stack.server_port, port=stack.gateway_port))
    stack.runner = runner  # closed with the stack
    assert port == stack.gateway_port

    await assert_reconnected(page, "alice", notices)
    await expect(messages(page)).to_have_count(3)
    assert await texts(page) == ["before the restart", "while the gateway was down", "twice"]
    await say(page, "back")
    seen += await carol.recv_until(Message("alice", "back"))
    assert no_presence(seen) == [UserJoined("alice")]
    assert await carol.sync() == []


async def test_a_newcomer_sees_recent_history_above_a_divider_then_live(stacks: Any, contexts: Any,
                                                                       terminals: Any) -> None:
    stack: GatewayStack = await stacks(server=RESUMABLE)
    carol: LineClient = await terminals(stack.server_port)
    await carol.join("carol")
    for i in range(1, 8):
        await carol.send(f"002#carol#old {i}")
    await carol.sync()
    burst = [f"boundary {i}" for i in range(1, 31)]
    talking: list[asyncio.Task[None]] = []

    async def talk() -> None:  # while the join is on its way: each is history or live, never both, never neither
        for text in burst:
            await carol.send(f"002#carol#{text}")

    def route(ws: WebSocketRoute) -> None:
        """The page's own WebSocket to the gateway; carol starts talking as its join leaves the page."""
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if isinstance(message, str) and '"join"' in message and not talking:
                talking.append(asyncio.get_running_loop().create_task(talk()))
            server.send(message)

        ws.on_message(from_page)

    context = await contexts()
    await context.route_web_socket(re.compile(r"/ws$"), route)
    page, console = await open_page(context, stack.base_url)
    await join(page, "dave")
    assert len(talking) == 1
    await asyncio.wait_for(talking[0], 10)
    await carol.send("002#carol#live at last")
    await expect(messages(page, "live at last")).to_have_count(1)

    rows = await page.evaluate("""() => {
        const out = []; let above = true;
        for (const li of document.querySelectorAll('#log li')) {
          if (li.dataset.kind === 'divider') { above = false; out.push({divider: li.textContent}); continue; }
          if (!li.classList.contains('msg')) continue;
          const time = li.querySelector('time');
          out.push({text: li.querySelector('.text').textContent, above,
                    ts: Number(li.dataset.ts), datetime: time && time.dateTime, shown: time && time.textContent});
        }
        return out;
    }""")
    dividers = [r for r in rows if "divider" in r]
    assert [d["divider"] for d in dividers] == ["↑ Earlier messages"]
    shown = [r["text"] for r in rows if "text" in r]
    everything = [f"old {i}" for i in range(1, 8)] + burst + ["live at last"]
    # a contiguous run ending with the last message: nothing lost, nothing twice, in order
    assert shown == everything[len(everything) - len(shown):], shown
    history = [r for r in rows if r.get("above")]
    assert len(history) == 5  # --history 5: the last five before the join, oldest first
    assert rows.index(dividers[0]) == len(history)  # history, then the divider, then live
    order = await page.evaluate("[...document.querySelectorAll('#log li')].map((li) => li.dataset.kind)")
    assert order.index("divider") == len(history) and order[len(history) + 1] == "notice"  # then "You joined"
    for r in history:
        assert r["datetime"] and r["shown"] and abs(r["ts"] - await page.evaluate("Date.now()")) < 60_000
    assert console.errors == []


async def test_an_expired_or_unknown_token_falls_back_to_a_join_with_the_same_id(
        stacks: Any, contexts: Any, terminals: Any) -> None:
    stack: GatewayStack = await stacks(server={"resume_grace": 0.5, "history": 5})
    carol: LineClient = await terminals(stack.server_port)
    await carol.join("carol")

    # expired: the tab goes elsewhere for longer than the grace, then comes back
    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")
    await carol.recv_until(UserJoined("alice"))
    await carol.send("002#carol#hi alice")
    await expect(messages(page, "hi alice")).to_have_count(1)
    await say(page, "brb")
    assert await carol.recv() == Message("alice", "brb")
    stale = await page.evaluate("sessionStorage.getItem('hanchat.session')")
    await page.goto("about:blank")
    assert await carol.recv(10) == UserLeft("alice")  # the grace ran out: one leave
    await carol.send("002#carol#gone?")
    await page.goto(stack.base_url)
    await expect(page.locator("#send-form")).to_be_visible()
    await expect(user_buttons(page).filter(has_text="alice")).to_have_count(1)
    assert await carol.recv() == UserJoined("alice")  # a fresh join with the remembered ID
    # what the tab showed, then the history it had not seen: nothing twice (its own line included)
    await expect(messages(page, "gone?")).to_have_count(1)
    assert await texts(page) == ["hi alice", "brb", "gone?"]
    token = await page.evaluate("sessionStorage.getItem('hanchat.session')")
    assert token and token != stale
    await expect(page.locator("#state-text")).to_have_text("Reconnected as alice")
    await expect(page.locator("#join-error")).to_be_hidden()

    # unknown: a token this server never gave
    context = await contexts()
    await context.add_init_script("""
        if (sessionStorage.getItem('hanchat.id') === null) {
          sessionStorage.setItem('hanchat.id', 'bob');
          sessionStorage.setItem('hanchat.session', 'not-a-token-of-this-server');
        }""")
    other, other_console = await open_page(context, stack.base_url)
    await expect(other.locator("#send-form")).to_be_visible()
    assert await carol.recv() == UserJoined("bob")
    assert await other.evaluate("sessionStorage.getItem('hanchat.session')") != "not-a-token-of-this-server"
    assert console.errors == [] and other_console.errors == []
