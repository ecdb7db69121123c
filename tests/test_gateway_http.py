"""The page, its static files, /healthz and the security headers, over real HTTP."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from tcp_server import ChatServer
from tests.gateway_fixtures import GatewayStack, gateway_config
from tests.helpers import TIMEOUT
from web_gateway.app import HEALTH, make_app


async def get(url: str, **kwargs: Any) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=TIMEOUT),
                               **kwargs) as resp:
            return resp.status, dict(resp.headers), await resp.text()


async def test_page_static_and_headers(aiohttp_client: Any, server: ChatServer) -> None:
    client = await aiohttp_client(make_app(gateway_config(server.port)))
    resp = await client.get("/")
    assert resp.status == 200
    html = await resp.text()
    csp = resp.headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'",
                      "base-uri 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    # no inline script (the JSON strings block is data), no inline style or handler; every URL relative
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert all('type="application/json"' in attrs or ("src=" in attrs and not body.strip())
               for attrs, body in scripts)
    assert not re.search(r"\son\w+=", html) and "style=" not in html
    for url in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert not url.startswith(("/", "http")), url
    for path, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        resp = await client.get(path)
        assert resp.status == 200 and kind in resp.headers["Content-Type"]
        assert resp.headers["Content-Security-Policy"] == csp
    assert (await client.get("/static/../web_gateway/app.py")).status in (403, 404)
    assert (await client.get("/nope")).status == 404


@pytest.mark.parametrize(("accept", "query", "lang", "label"), [
    ("ko-KR,ko;q=0.9", "", "ko", "입장"),
    ("en-US,en;q=0.9", "", "en", "Join"),
    ("en-US", "?lang=ko", "ko", "입장"),
])
async def test_page_language(aiohttp_client: Any, server: ChatServer, accept: str, query: str, lang: str,
                             label: str) -> None:
    client = await aiohttp_client(make_app(gateway_config(server.port, lang="en")))
    resp = await client.get("/" + query, headers={"Accept-Language": accept})
    html = await resp.text()
    assert f'<html lang="{lang}">' in html and f">{label}</button>" in html


async def test_base_path(make_gateway_stack: Any, ws_clients: Any) -> None:
    stack: GatewayStack = await make_gateway_stack(gateway={"base_path": "/chat/"})
    root = f"http://127.0.0.1:{stack.gateway_port}"
    status, _, html = await get(root + "/chat/")
    assert status == 200 and '<script type="module" src="static/m/' in html
    status, headers, _ = await get(root + "/chat?lang=ko")
    assert status == 301 and headers["Location"] == "/chat/?lang=ko"
    assert (await get(root + "/chat/static/app.js"))[0] == 200
    assert (await get(root + "/chat/healthz"))[0] == 200
    assert (await get(root + "/"))[0] == 404
    assert (await get(root + "/static/app.js"))[0] == 404
    page = await ws_clients(stack.ws_url)
    assert stack.ws_url.endswith("/chat/ws")
    assert (await page.recv())["state"] == "connected"
    assert (await page.join("alice"))[0] == {"type": "joined", "id": "alice"}


async def test_healthz_follows_the_server(make_gateway_stack: Any) -> None:
    stack: GatewayStack = await make_gateway_stack(server={"gateway_secret": "s3cret", "max_per_address": 1})
    url = stack.base_url + "healthz"
    status, headers, body = await get(url)
    assert (status, body.strip()) == (200, "ok") and headers["Cache-Control"] == "no-store"
    await stack.stop_server()
    stack.runner.app[HEALTH].invalidate()  # answers are reused for a second
    status, _, body = await get(url)
    assert status == 503 and "cannot be reached" in body
    await stack.restart_server()
    stack.runner.app[HEALTH].invalidate()  # answers are reused for a second
    assert (await get(url))[0] == 200
