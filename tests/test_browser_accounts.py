"""Accounts on the page, in Debian's Chromium against a real gateway and server on a real SQLite file:
keep this ID, log in (a form a password manager understands), change password, the refusals in the
page's language, the registered marks, a reload that resumes, no password kept; axe stays clean."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from tests.browser_fixtures import join, messages, open_page, say, user_buttons
from tests.gateway_fixtures import GatewayStack

pytestmark = pytest.mark.asyncio(loop_scope="module")

PASSWORD = "Page # pass-4411"
NEW = "Page # changed-8822"


async def no_password_kept(page: Page) -> None:
    for field in ("#login-password", "#register-password", "#register-again", "#passwd-password", "#passwd-again"):
        await expect(page.locator(field)).to_have_value("")
    stored = await page.evaluate("() => JSON.stringify({...sessionStorage}) + JSON.stringify({...localStorage})")
    assert "Page #" not in stored


def serious(result: Any) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
            for v in result.response["violations"] if v["impact"] in ("serious", "critical")]


async def test_keep_this_id_then_log_in_change_password_and_resume(
    stacks: Any, contexts: Any, tmp_path: pathlib.Path,
) -> None:
    stack: GatewayStack = await stacks(server={"database": f"sqlite:///{tmp_path / 'chat.db'}",
                                               "resume_grace": 30})
    axe = Axe()
    page, console = await open_page(await contexts(locale="en-US"), stack.base_url)
    # the welcome screen: log in beside join as a guest, fields a password manager understands
    await expect(page.locator("#login-id")).to_have_attribute("autocomplete", "username")
    await expect(page.locator("#login-password")).to_have_attribute("autocomplete", "current-password")
    assert serious(await axe.run(page)) == []
    await join(page, "Hana")
    await expect(page.locator("#register-form")).to_be_visible()
    await expect(page.locator("#register-password")).to_have_attribute("autocomplete", "new-password")
    await page.fill("#register-password", "password")
    await page.fill("#register-again", "password")
    await page.click("#register-form button[type=submit]")
    await expect(page.locator("#account-error")).to_have_text("That password is one of the most common ones; "
                                                               "choose another.")
    await page.fill("#register-password", PASSWORD)
    await page.fill("#register-again", PASSWORD)
    await page.click("#register-form button[type=submit]")
    await expect(page.locator("#log")).to_contain_text("The ID Hana is now registered.")
    await expect(page.locator("#register-form")).to_be_hidden()
    await expect(user_buttons(page).filter(has_text="registered")).to_have_count(1)
    assert serious(await axe.run(page)) == []
    await no_password_kept(page)
    await page.click("#leave")
    await page.click("#leave-ok")
    await expect(page.locator("#join-form")).to_be_visible()

    # a guest join of the registered ID is refused, in the page's language, by the login form
    await page.fill("#join-id", "hana")
    await page.press("#join-id", "Enter")
    await expect(page.locator("#login-error")).to_have_text("That ID is registered; log in with its password.")
    await page.fill("#login-id", "hana")
    await page.fill("#login-password", "not the password")
    await page.press("#login-password", "Enter")
    await expect(page.locator("#login-error")).to_have_text("Wrong ID or password.")
    await no_password_kept(page)
    await page.fill("#login-password", PASSWORD)
    await page.press("#login-password", "Enter")
    await expect(page.locator("#send-form")).to_be_visible()
    await expect(page.locator("#passwd-form")).to_be_visible()
    await say(page, "hello as an account")
    await page.fill("#passwd-password", NEW)
    await page.fill("#passwd-again", NEW + "x")
    await page.click("#passwd-form button[type=submit]")
    await expect(page.locator("#account-error")).to_have_text("The two passwords differ.")
    await page.fill("#passwd-password", NEW)
    await page.fill("#passwd-again", NEW)
    await page.click("#passwd-form button[type=submit]")
    await expect(page.locator("#log")).to_contain_text("Your password was changed.")
    await no_password_kept(page)

    # another page sees the mark beside the account's messages
    other, _ = await open_page(await contexts(locale="ko-KR"), stack.base_url)
    await join(other, "guest2")
    await say(page, "marked line")
    await expect(messages(other, "marked line").locator(".badge.account")).to_have_text("등록")
    await expect(user_buttons(other).filter(has_text="Hana").locator(".tag.account")).to_have_count(1)
    # Korean sentences for a refusal
    await other.click("#leave")
    await other.click("#leave-ok")
    await other.fill("#login-id", "Hana")
    await other.fill("#login-password", "wrong-wrong-wrong")
    await other.press("#login-password", "Enter")
    await expect(other.locator("#login-error")).to_have_text("ID 또는 비밀번호가 올바르지 않습니다.")

    # a reload resumes the account's session (and then may not change the password: a resume)
    await page.reload()
    await expect(page.locator("#send-form")).to_be_visible()
    await expect(page.locator("#passwd-form")).to_be_hidden()
    await no_password_kept(page)
    assert console.errors == []
