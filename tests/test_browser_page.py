"""The page as people expect it, in Debian's Chromium against a real gateway and server (issue 14).

Each defect test would fail on the old page (flat text lines, errors as log lines, no pre-send checks).
One browser for the module; each test opens its own contexts.
"""

from __future__ import annotations

import io
import pathlib
import re
import unicodedata
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from PIL import Image, ImageChops
from playwright.async_api import Page, expect

from tcp_server.protocol import Message, UserJoined, UserLeft, is_valid_id
from tests.browser_fixtures import ROOT, join, log_line, messages, open_page, say, shot, user_buttons
from tests.gateway_fixtures import GatewayStack, JsonClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCREENSHOTS = ROOT / "docs" / "screenshots"

# A hidden tab, and a record of desktop notifications, around the browser's own Notification API.
HIDDEN_TAB_SCRIPT = """
(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, 'visibilityState',
                        { get() { return hidden ? 'hidden' : 'visible'; }, configurable: true });
  Object.defineProperty(Document.prototype, 'hidden', { get() { return hidden; }, configurable: true });
  window.__setHidden = (h) => { hidden = h; document.dispatchEvent(new Event('visibilitychange')); };
  window.__notes = [];
  window.__asked = 0;
  const Real = window.Notification;
  class Recorded extends Real {
    constructor(title, options) { super(title, options); window.__notes.push({ title, body: options.body }); }
  }
  Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
  Recorded.requestPermission = () => { window.__asked += 1; return Real.requestPermission(); };
  window.Notification = Recorded;
})();
"""


async def in_view(page: Page, selector: str) -> bool:
    """The last element matching ``selector`` is inside the log's visible area."""
    return bool(await page.evaluate("""(sel) => {
        const log = document.getElementById('log');
        const els = log.querySelectorAll(sel);
        const el = els[els.length - 1];
        const a = log.getBoundingClientRect(), b = el.getBoundingClientRect();
        return b.top >= a.top - 1 && b.bottom <= a.bottom + 1;
    }""", selector))


# ---------------------------------------------------------------- defects


async def test_a_refused_message_is_said_beside_the_field_and_kept(stacks: Any, contexts: Any,
                                                                   terminals: Any) -> None:
    stack: GatewayStack = await stacks()
    carol = await terminals(stack.server_port)
    await carol.join("carol")
    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")
    assert await carol.recv() == UserJoined("alice")
    notice = page.locator("#notice")

    # 5,000 characters: 5,000 + "alice" + the frame's 6 bytes, over the 4,096-byte frame
    long_text = "x" * 5000
    await page.fill("#message", long_text)
    await page.press("#message", "Enter")
    await expect(notice).to_have_text("Message too long: 5011 of 4096 bytes. Shorten it and send again.")
    await expect(page.locator("#message")).to_have_value(long_text)
    # counted in UTF-8 bytes: 1,400 Hangul syllables are 4,200 bytes
    await page.fill("#message", "가" * 1400)
    await page.press("#message", "Enter")
    await expect(notice).to_contain_text("4211 of 4096 bytes")
    # a pasted terminal escape
    await page.fill("#message", "ring \x07 the bell \x1b[2J")
    await page.press("#message", "Enter")
    await expect(notice).to_have_text(
        "The message holds control characters that cannot be sent. Remove them and send again.")
    await expect(page.locator("#message")).to_have_value("ring \x07 the bell \x1b[2J")
    assert await page.locator("#log li.msg").count() == 0  # nothing looks sent
    assert await carol.sync() == []  # and nothing was

    # accepted: pending, then sent once the server has taken it; the notice is gone
    await page.fill("#message", "this one is fine")
    await page.press("#message", "Enter")
    await expect(notice).to_be_hidden()
    own = messages(page, "this one is fine")
    await expect(own).to_have_attribute("data-state", "sent")
    assert await carol.recv() == Message("alice", "this one is fine")
    # refused by the server: marked failed, the text comes back to the field
    await page.fill("#message", "/m nobody are you there")
    await page.press("#message", "Enter")
    failed = messages(page, "are you there")
    await expect(failed).to_have_attribute("data-state", "failed")
    await expect(failed.locator(".send-state")).to_have_text("not sent: No such user is online.")
    await expect(page.locator("#message")).to_have_value("/m nobody are you there")
    assert console.errors == []


async def test_white_space_and_bidi_controls_cannot_forge_an_author(stacks: Any, contexts: Any, terminals: Any,
                                                                    ) -> None:
    stack: GatewayStack = await stacks()
    page, console = await open_page(await contexts(viewport={"width": 1280, "height": 800}), stack.base_url)
    await join(page, "alice")
    bob = await terminals(stack.server_port)
    await bob.join("bob")
    await bob.send("002#bob#hi" + " " * 150 + "alice : bob, send me your password")
    mallory = await JsonClient.connect(stack.ws_url, {"Origin": stack.origin})
    try:
        await mallory.join("mallory")
        await mallory.send({"type": "say", "text": "hi" + "\n" * 150 + "alice : hand me the keys"})
        await mallory.send({"type": "say", "text": "\u202eevil text : ecila"})
        await mallory.sync()
    finally:
        await mallory.close()
    await expect(messages(page, "ecila")).to_have_count(1)
    lines = await page.evaluate("""() => [...document.querySelectorAll('#log li.msg')].map((li) => {
        const author = li.querySelector('.author'), text = li.querySelector('.text');
        const style = getComputedStyle(text);
        return { author: author.textContent, authorBold: Number(getComputedStyle(author).fontWeight),
                 textBold: Number(style.fontWeight), lines: text.getBoundingClientRect().height
                 / parseFloat(style.lineHeight), whiteSpace: style.whiteSpace, bidi: style.unicodeBidi,
                 authorBidi: getComputedStyle(author).unicodeBidi,
                 apart: li.classList.contains('cont')  // grouped: the header is the line above
                        || text.getBoundingClientRect().top >= author.getBoundingClientRect().bottom - 1 };
    })""")
    assert [line["author"] for line in lines] == ["bob", "mallory", "mallory"]
    for line in lines:
        assert line["lines"] < 1.5, line  # runs of white space make no second, alice-looking line
        assert line["whiteSpace"] == "normal" and line["bidi"] == "isolate" and line["authorBidi"] == "isolate"
        assert line["apart"] and line["authorBold"] >= 700 > line["textBold"], line
    assert await page.locator('#log li.msg[data-from="alice"]').count() == 0
    assert console.errors == []


async def test_the_log_follows_after_a_rate_notice_and_counts_what_arrives_above(
        stacks: Any, contexts: Any, terminals: Any) -> None:
    # burst 4 at 1/s: the join and a message or two (each with its acknowledging ping) fit, then one is held back
    stack: GatewayStack = await stacks(gateway={"rate": 1.0, "burst": 4})
    carol = await terminals(stack.server_port)
    await carol.join("carol")
    page, console = await open_page(await contexts(viewport={"width": 1024, "height": 600}), stack.base_url)
    await join(page, "alice")
    for i in range(30):
        await carol.send(f"002#carol#line {i}")
    await expect(messages(page, "line 29")).to_have_count(1)
    assert await in_view(page, "li.msg")
    notice = page.locator("#notice")
    held = False
    for _ in range(4):  # the page's check is synchronous: the notice shows on the press that is over
        await page.fill("#message", "two")
        await page.press("#message", "Enter")
        held = await notice.is_visible()
        if held:
            break
        await expect(page.locator("#log li.own[data-state=pending]")).to_have_count(0)
    assert held
    await expect(notice).to_have_text("You are sending too fast. Wait a moment, then send again; your text is kept.")
    await expect(page.locator("#message")).to_have_value("two")
    for i in range(5):
        await carol.send(f"002#carol#after the notice {i}")
    await expect(messages(page, "after the notice 4")).to_have_count(1)
    assert await in_view(page, "li.msg"), "the log still follows the conversation"
    await expect(page.locator("#jump")).to_be_hidden()

    # once the bucket has refilled "two" goes, and the notice that said it was not sent goes with it
    await page.wait_for_function("""() => {
        if (document.getElementById('message').value === '') return true;
        document.querySelector('#send-form button[type=submit]').click();
        return document.getElementById('message').value === '';
    }""", polling=250)
    assert await notice.is_hidden()
    assert (await carol.recv_until(Message("alice", "two")))[-1] == Message("alice", "two")

    # scrolled up to read: new lines do not pull the reader down, a button counts them
    await page.evaluate("document.getElementById('log').scrollTop = 0")
    await page.wait_for_function("() => document.getElementById('log').scrollTop === 0")
    await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    for i in range(3):
        await carol.send(f"002#carol#while away {i}")
    jump = page.locator("#jump")
    await expect(jump).to_have_text("3 new ↓")
    assert not await in_view(page, "li.msg")
    assert await page.evaluate("document.getElementById('log').scrollTop") == 0
    await jump.click()
    await expect(jump).to_be_hidden()
    assert await in_view(page, "li.msg")
    assert console.errors == []


async def test_the_korean_page_shows_only_korean(stacks: Any, contexts: Any, terminals: Any) -> None:
    stack: GatewayStack = await stacks(gateway={"lang": "en"})
    await stack.stop_server()
    page, console = await open_page(await contexts(locale="ko-KR"), stack.base_url)
    await page.fill("#join-id", "지수")
    await page.press("#join-id", "Enter")  # the chat server cannot be reached: said in the status area
    await expect(page.locator("#state-text")).to_contain_text("채팅 서버에 연결할 수 없음")
    await stack.restart_server()
    await expect(page.locator("#send-form")).to_be_visible()  # joins by itself once the server is back
    await page.fill("#message", "/m 없는사람 안녕")
    await page.press("#message", "Enter")
    await expect(page.locator("#notice")).to_have_text("보내지 못했습니다: 해당 사용자가 존재하지 않습니다.")
    await page.fill("#message", "x" * 5000)
    await page.press("#message", "Enter")
    await expect(page.locator("#notice")).to_contain_text("메시지가 너무 깁니다")
    text = await page.evaluate("document.body.innerText + ' ' + document.title")
    words = set(re.findall(r"[A-Za-z]{3,}", text)) - {"hanchat", "English", "who"}
    assert words == set(), f"English on the Korean page: {words}"
    assert console.errors == [] or all("WebSocket" in e for e in console.errors)


async def test_an_outage_is_one_updating_status_line(stacks: Any, contexts: Any, terminals: Any) -> None:
    stack: GatewayStack = await stacks()
    page, _ = await open_page(await contexts(), stack.base_url)
    await join(page, "alice")
    lines = await page.locator("#log li").count()
    await stack.stop_server()
    await expect(page.locator("#state")).to_have_attribute("data-state", "disconnected")
    for _ in range(3):  # three more tries while the server is away
        await page.wait_for_event("websocket")
    await expect(page.locator("#state-text")).to_contain_text(re.compile("Chat server unreachable|Disconnected"))
    assert await page.locator("#log li").count() == lines, "the log stays the conversation"
    assert await page.locator("#state").count() == 1
    # Enter while disconnected says so, and keeps the text
    await page.fill("#message", "anyone?")
    await page.press("#message", "Enter")
    await expect(page.locator("#notice")).to_have_text("Not connected. Send again once reconnected; your text is kept.")
    await expect(page.locator("#message")).to_have_value("anyone?")
    await stack.restart_server()
    await expect(page.locator("#state-text")).to_have_text("Reconnected as alice")
    assert await page.locator("#log li").count() == lines
    await page.press("#message", "Enter")
    await expect(messages(page, "anyone?")).to_have_attribute("data-state", "sent")


async def test_leave_asks_long_ids_get_an_ellipsis_hints_keep_words_on_a_phone(
        stacks: Any, contexts: Any, terminals: Any) -> None:
    stack: GatewayStack = await stacks()
    carol = await terminals(stack.server_port)
    await carol.join("carol")
    long_id = "a_rather_long_identifier_" + "x" * 7
    assert len(long_id) == 32
    page, console = await open_page(await contexts(), stack.base_url)
    await join(page, long_id)
    assert await carol.recv() == UserJoined(long_id)
    me = user_buttons(page).first
    await expect(me).to_have_attribute("title", long_id)
    clipped = await me.locator(".name").evaluate(
        "(el) => ({ overflow: getComputedStyle(el).textOverflow, clipped: el.scrollWidth > el.clientWidth })")
    assert clipped == {"overflow": "ellipsis", "clipped": True}
    # Leave is away from Send and asks first
    assert await page.locator("#send-form #leave").count() == 0
    await page.click("#leave")
    await expect(page.locator("#leave-dialog")).to_be_visible()
    await page.click("#leave-cancel")
    await expect(page.locator("#leave-dialog")).to_be_hidden()
    assert await carol.sync() == []
    await page.click("#leave")
    await page.click("#leave-ok")
    await expect(page.locator("#join-form")).to_be_visible()
    assert await carol.recv() == UserLeft(long_id)

    phone, phone_console = await open_page(
        await contexts(viewport={"width": 390, "height": 844}, locale="ko-KR", is_mobile=True, has_touch=True),
        stack.base_url)
    # the join screen: a welcome and the ID field in the middle, not in a bottom bar
    card = await phone.locator("#join-id").bounding_box()
    assert card is not None and 844 * 0.2 < card["y"] < 844 * 0.8
    await expect(phone.locator("#welcome h2")).to_have_text("hanchat에 오신 것을 환영합니다")
    await join(phone, "폰사용자")
    for hint in ("#message-hint", ".users-pane .hint", "#join-hint"):
        assert await phone.locator(hint).evaluate("(el) => getComputedStyle(el).wordBreak") == "keep-all"
    assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert console.errors == [] and phone_console.errors == []


# ---------------------------------------------------------------- what people expect


async def test_messages_times_groups_links_mentions_whispers(stacks: Any, contexts: Any, terminals: Any) -> None:
    stack: GatewayStack = await stacks()
    carol = await terminals(stack.server_port)
    await carol.join("carol")
    page, console = await open_page(await contexts(viewport={"width": 1280, "height": 800}), stack.base_url)
    await join(page, "alice")
    await carol.send("002#carol#first")
    await carol.send("002#carol#second")
    await expect(messages(page, "second")).to_have_class(re.compile(r"\bcont\b"))  # grouped under one header
    assert "cont" not in (await messages(page, "first").get_attribute("class") or "")
    stamp = await messages(page, "first").locator("time").get_attribute("datetime")
    assert stamp and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d", stamp)
    await expect(messages(page, "first").locator("time")).to_have_text(re.compile(r"\d:\d\d"))

    # links: http(s) only, opened safely, built as elements; a long one wraps instead of widening the page
    long_link = "https://example.com/" + "very-long-path/" * 25 + "end"
    await carol.send(f"002#carol#see {long_link}, or javascript:alert(1) or ftp://example.com/x")
    link = messages(page, "see https").locator("a")
    await expect(link).to_have_count(1)
    await expect(link).to_have_attribute("href", long_link)
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(link).to_have_attribute("target", "_blank")
    assert await page.evaluate("document.getElementById('log').scrollWidth <= document.getElementById('log')"
                               ".clientWidth")

    # a mention of your ID is highlighted
    await carol.send("002#carol#hey Alice, look at this")
    mention = messages(page, "look at this")
    await expect(mention).to_have_class(re.compile(r"\bmention\b"))
    await expect(mention.locator("mark")).to_have_text("Alice")
    await carol.send("002#carol#malice is not a mention")
    await expect(messages(page, "malice")).not_to_have_class(re.compile(r"\bmention\b"))

    # whispers are marked both ways, upright (no synthetic italics on Hangul)
    await carol.send("003#carol#alice#귓속말 테스트")
    whisper = messages(page, "귓속말 테스트", "whisper")
    await expect(whisper.locator(".badge")).to_have_text("whisper from carol")
    assert await whisper.evaluate("(el) => getComputedStyle(el).fontStyle") == "normal"
    await say(page, "/m carol back to you")
    await expect(messages(page, "back to you", "whisper").locator(".badge")).to_have_text("whisper to carol")

    # your own messages stand apart; notices are quieter than messages
    await say(page, "my own words")
    styles = await page.evaluate("""() => {
        const bg = (sel) => getComputedStyle(document.querySelector(sel)).backgroundColor;
        const size = (sel) => parseFloat(getComputedStyle(document.querySelector(sel)).fontSize);
        return { own: bg('#log li.msg.own'), other: bg('#log li.msg[data-from=carol]:not(.mention)'),
                 notice: size('#log li.notice'), message: size('#log li.msg .text') };
    }""")
    assert styles["own"] != styles["other"] and styles["notice"] < styles["message"]
    assert await page.locator('#log li[data-kind="error"]').count() == 0
    await shot(page, "10-messages")
    assert console.errors == []


async def test_a_hidden_tab_counts_unread_and_notifies_whispers_and_mentions(
        stacks: Any, contexts: Any, terminals: Any) -> None:
    stack: GatewayStack = await stacks()
    context = await contexts()
    await context.grant_permissions(["notifications"], origin=stack.origin)
    await context.add_init_script(HIDDEN_TAB_SCRIPT)
    page, console = await open_page(context, stack.base_url)
    await join(page, "alice")
    carol = await terminals(stack.server_port)
    await carol.join("carol")
    await expect(page).to_have_title("Chat · hanchat")
    assert await page.evaluate("window.__asked") == 0  # never asked unprompted
    await page.click("#notify")  # a user gesture
    await expect(page.locator("#notify")).to_have_attribute("aria-pressed", "true")
    assert await page.evaluate("window.__asked") == 1

    await page.evaluate("window.__setHidden(true)")
    await carol.send("003#carol#alice#are you there?")
    await expect(page).to_have_title("(1) Chat · hanchat")
    await page.wait_for_function("() => window.__notes.length === 1")
    assert await page.evaluate("window.__notes") == [{"title": "Message from carol", "body": "are you there?"}]
    await carol.send("002#carol#ping alice")
    await expect(page).to_have_title("(2) Chat · hanchat")
    await page.wait_for_function("() => window.__notes.length === 2")
    await page.evaluate("window.__setHidden(false)")
    await expect(page).to_have_title("Chat · hanchat")
    await expect(messages(page, "ping alice")).to_have_class(re.compile(r"\bmention\b"))
    assert console.errors == []


async def test_a_reload_mid_conversation_rejoins_with_the_same_id(stacks: Any, contexts: Any,
                                                                  terminals: Any) -> None:
    stack: GatewayStack = await stacks()
    carol = await terminals(stack.server_port)
    await carol.join("carol")
    context = await contexts()
    page, console = await open_page(context, stack.base_url)
    await join(page, "alice")
    await say(page, "before the reload")
    assert (await carol.recv_until(Message("alice", "before the reload")))[-1] == Message("alice", "before the reload")
    await page.reload()
    await expect(page.locator("#send-form")).to_be_visible()  # back in, without typing the ID again
    await expect(user_buttons(page).first).to_contain_text("alice")
    await say(page, "after the reload")
    assert (await carol.recv_until(Message("alice", "after the reload")))[-1] == Message("alice", "after the reload")
    # the ID is remembered per tab, in sessionStorage: no cookie, nothing in the URL
    assert await page.evaluate("sessionStorage.getItem('hanchat.id')") == "alice"
    assert await context.cookies() == [] and "alice" not in page.url
    # a new tab is a new user
    other, _ = await open_page(context, stack.base_url)
    await expect(other.locator("#join-form")).to_be_visible()
    assert console.errors == []


async def test_the_welcome_screen_says_who_is_online(stacks: Any, contexts: Any, terminals: Any) -> None:
    stack: GatewayStack = await stacks()
    carol = await terminals(stack.server_port)
    await carol.join("carol")
    context = await contexts()
    first, _ = await open_page(context, stack.base_url)
    await expect(first.locator("#online")).to_have_text("1 online now")  # no page in the room: the server is asked
    await join(first, "alice")
    second, console = await open_page(context, stack.base_url)
    await expect(second.locator("#online")).to_have_text("2 online now")  # a terminal user counts too
    await second.click("[data-set-lang=ko]")
    await expect(second.locator("#online")).to_have_text("지금 2명 접속 중")
    assert console.errors == []


async def test_dark_mode_and_the_id_rule_in_the_browser(stacks: Any, contexts: Any) -> None:
    stack: GatewayStack = await stacks()
    page, _ = await open_page(await contexts(color_scheme="dark"), stack.base_url)
    background = await page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    red, green, blue = (int(v) for v in re.findall(r"\d+", background)[:3])
    assert max(red, green, blue) < 60, background
    # the page's quick ID check (a JavaScript class) never refuses an ID the core accepts; the core has the
    # last word on the rest (PRECIS and UTS #39 are not one character class), and the page shows its 109#bad-id
    verdicts = await page.evaluate("""() => {
        const rules = JSON.parse(document.getElementById('page-strings').textContent).rules;
        const re = new RegExp(rules.id_forbidden, 'u');
        const out = [];
        for (let c = 0; c < 0x3000; c++) out.push(re.test(String.fromCodePoint(c)));
        return out;
    }""")
    wrong = [hex(c) for c, refused in enumerate(verdicts)
             if unicodedata.category(chr(c)) != "Cn" and refused and is_valid_id("a" + chr(c))]
    assert wrong == []


async def test_the_page_says_which_id_rule_the_server_side_check_found(stacks: Any, contexts: Any) -> None:
    """What the page cannot check itself (emoji, look-alike letters of another script) comes back as the
    rule it broke, said in the page's language, with the character at fault."""
    stack: GatewayStack = await stacks()
    page, console = await open_page(await contexts(locale="ko-KR"), stack.base_url + "?lang=ko")
    await page.fill("#join-id", "alice\U0001f600")
    await page.press("#join-id", "Enter")
    await expect(page.locator("#join-error")).to_have_text("ID에는 기호나 이모지를 넣을 수 없습니다. (U+1F600)")
    await page.fill("#join-id", "\u0430lice")  # a Cyrillic а
    await page.press("#join-id", "Enter")
    await expect(page.locator("#join-error")).to_contain_text("ID에 여러 문자 체계가 섞여 있습니다")
    await page.click("[data-set-lang=en]")
    await page.fill("#join-id", "alice\U0001f600")
    await page.press("#join-id", "Enter")
    await expect(page.locator("#join-error")).to_have_text("An ID cannot contain symbols or emoji. (U+1F600)")
    await join(page, "alice")  # and a good ID still gets in
    assert console.errors == []


# ---------------------------------------------------------------- accessibility and screenshots


async def conversation(stack: GatewayStack, page: Page, terminals: Any, me: str) -> None:
    """A short, mixed conversation as ``me`` sees it (both languages, a whisper, a mention, a link)."""
    minsu = await terminals(stack.server_port)
    await minsu.join("민수")
    bob = await terminals(stack.server_port)
    await bob.join("bob")
    await join(page, me)
    await minsu.send("002#민수#오늘 점심 뭐 먹을까요?")
    await bob.send("002#bob#Ramen? The place around the corner opened again.")
    await minsu.send("002#민수#좋아요. 12시 반에 로비에서 만나요.")
    await minsu.send("002#민수#안녕하세요! 오늘 회의는 3시에 시작합니다.")
    await minsu.send("002#민수#자료는 https://example.com/agenda 에 있어요.")
    await bob.send(f"002#bob#Thanks {me}, I'll be there.")
    await say(page, "좋아요, 곧 갈게요.")
    await minsu.send(f"003#민수#{me}#회의 끝나고 잠깐 얘기할 수 있어요?")
    await bob.send("002#bob#Has anyone seen the new build?")
    await expect(messages(page, "new build")).to_have_count(1)


async def test_axe_finds_no_serious_violations_light_and_dark(stacks: Any, contexts: Any, terminals: Any) -> None:
    axe = Axe()
    found: dict[str, list[str]] = {}
    for scheme in ("light", "dark"):
        stack: GatewayStack = await stacks()
        page, _ = await open_page(await contexts(color_scheme=scheme), stack.base_url)
        results = {"join": await axe.run(page)}
        await conversation(stack, page, terminals, f"a11y_{scheme}")
        await page.fill("#message", "x" * 5000)
        await page.press("#message", "Enter")  # the composer notice is audited too
        await expect(page.locator("#notice")).to_be_visible()
        results["chat"] = await axe.run(page)
        for screen, result in results.items():
            bad = [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
                   for v in result.response["violations"] if v["impact"] in ("serious", "critical")]
            found[f"{scheme}/{screen}"] = bad
    assert found == {"light/join": [], "light/chat": [], "dark/join": [], "dark/chat": []}


async def test_readme_screenshots(stacks: Any, contexts: Any, terminals: Any) -> None:
    """docs/screenshots/desktop.png and phone.png, shown in README, are made here so they stay true."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, options in (("desktop", {"viewport": {"width": 1280, "height": 760}}),
                          ("phone", {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                                     "has_touch": True, "device_scale_factor": 2})):
        stack: GatewayStack = await stacks(gateway={"lang": "ko"})
        context = await contexts(locale="ko-KR", color_scheme="light", **options)
        page = await context.new_page()
        await page.clock.set_fixed_time("2026-05-04T14:05:00")
        await page.goto(stack.base_url)
        await expect(page.locator("#state")).to_have_attribute("data-state", "connected")
        await conversation(stack, page, terminals, "지수" if name == "desktop" else "하나")
        await page.evaluate("document.activeElement.blur()")
        keep_if_same(SCREENSHOTS / f"{name}.png", await page.screenshot())


def keep_if_same(path: pathlib.Path, png: bytes) -> None:
    """Write ``png`` unless the committed file shows the same pixels (PNG bytes vary run to run)."""
    image = Image.open(io.BytesIO(png))
    assert image.width >= 390 and len(image.getcolors(1 << 16) or range(1 << 16)) > 50  # not a blank page
    if path.exists():
        old = Image.open(path).convert("RGBA")
        if old.size == image.size and not ImageChops.difference(old, image.convert("RGBA")).getbbox():
            return
    path.write_bytes(png)


# ---------------------------------------------------------------- moderation


async def test_a_server_notice_shows_and_a_kick_is_not_undone_by_a_rejoin(stacks: Any, contexts: Any,
                                                                          tmp_path: pathlib.Path) -> None:
    from tests.test_admin import chat_admin

    sock = f"/tmp/hanchat-page-{id(tmp_path) % 100000}.sock"
    stack: GatewayStack = await stacks(server={"admin_socket": sock})
    page, console = await open_page(await contexts(locale="ko-KR"), stack.base_url + "?lang=ko")
    await join(page, "alice")
    assert (await chat_admin(sock, "notice", "점검", "22:00"))[0] == 0
    await expect(log_line(page, "[서버 공지] 점검 22:00")).to_be_visible()
    assert (await chat_admin(sock, "kick", "alice", "please", "rest"))[0] == 0
    await expect(page.locator("#join-form")).to_be_visible()
    await expect(page.locator("#join-error")).to_contain_text("운영자가 채팅방에서 내보냈습니다. (please rest)")
    # the page reconnects to the gateway, but does not join again by itself
    await expect(page.locator("#state")).to_have_attribute("data-state", "connected")
    assert await page.evaluate("sessionStorage.getItem('hanchat.id')") is None
    assert stack.server.room.roster.names() == []
    assert console.errors == []
