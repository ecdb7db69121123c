"""The page's HTTP side: versioned static URLs and their caching, and the rules the page gets from the gateway."""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import re
from typing import Any

from tcp_server import ChatServer
from tcp_server.protocol import MAX_ID_LENGTH, has_control_chars
from tests.gateway_fixtures import gateway_config
from web_gateway.app import STATIC_DIR, make_app, modules_version, static_versions
from web_gateway.i18n import all_strings, page_rules


def page_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="page-strings">(.*?)</script>', html, re.S)
    assert match
    data: dict[str, Any] = json.loads(html_lib.unescape(match.group(1)))
    return data


async def test_static_urls_carry_the_files_hash_and_cache_for_a_year(aiohttp_client: Any, server: ChatServer) -> None:
    client = await aiohttp_client(make_app(gateway_config(server.port)))
    resp = await client.get("/")
    assert resp.headers["Cache-Control"] == "no-store"  # the page itself: always fresh, so its URLs are too
    html = await resp.text()
    for name in ("style.css", "favicon.svg"):
        digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
        url = f"static/{name}?v={digest}"
        assert f'"{url}"' in html, name
        resp = await client.get("/" + url)
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        # an old or missing version is served, but must be revalidated: never kept stale for long
        for other in (f"/static/{name}", f"/static/{name}?v=000000000000"):
            resp = await client.get(other)
            assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache", other
    assert (await client.get("/static/nope.js?v=1")).status == 404


async def test_modules_come_from_one_versioned_directory_kept_for_a_year(aiohttp_client: Any,
                                                                         server: ChatServer) -> None:
    """The page's ES modules import each other by relative URL, so they share one versioned directory:
    each is JavaScript (a module needs its MIME type), kept for a year under the current version, and
    revalidated under any other."""
    client = await aiohttp_client(make_app(gateway_config(server.port)))
    html = await (await client.get("/")).text()
    match = re.search(r'<script type="module" src="static/m/([0-9a-f]{12})/app\.js"></script>', html)
    assert match
    version = match.group(1)
    assert version == modules_version(static_versions(STATIC_DIR))
    imported = set(re.findall(r"from '\./([a-z0-9]+\.js)'", (STATIC_DIR / "app.js").read_text()))
    assert {"protocol.js", "connection.js", "log.js"} <= imported
    for name in sorted(imported | {"app.js"}):
        resp = await client.get(f"/static/m/{version}/{name}")
        assert resp.status == 200, name
        assert "javascript" in resp.headers["Content-Type"], name
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable", name
        assert await resp.read() == (STATIC_DIR / name).read_bytes()
        old = await client.get(f"/static/m/000000000000/{name}")  # a tab from before an upgrade
        assert old.status == 200 and old.headers["Cache-Control"] == "no-cache", name
    for path in ("nope.js", "style.css", "..%2Fapp.py", "%2E%2E/templates/index.html"):
        assert (await client.get(f"/static/m/{version}/{path}")).status == 404, path


async def test_a_changed_file_gets_a_new_url(aiohttp_client: Any, server: ChatServer, tmp_path: Any,
                                             monkeypatch: Any) -> None:
    import web_gateway.app as gateway_app

    for path in STATIC_DIR.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "app.js").write_text("// a new release\n")
    monkeypatch.setattr(gateway_app, "STATIC_DIR", tmp_path)
    client = await aiohttp_client(make_app(gateway_config(server.port)))
    html = await (await client.get("/")).text()
    new = hashlib.sha256(b"// a new release\n").hexdigest()[:12]
    assert f'"static/app.js?v={new}"' not in html  # the page links its modules' directory, not app.js
    versions = static_versions(tmp_path)
    assert versions["app.js"] == new
    assert f'"static/m/{modules_version(versions)}/app.js"' in html
    assert modules_version(versions) != modules_version(static_versions(STATIC_DIR))


async def test_the_page_gets_its_rules_and_texts_from_the_gateway(aiohttp_client: Any, server: ChatServer) -> None:
    client = await aiohttp_client(make_app(gateway_config(server.port, max_message=2048, rate=3.0, burst=7)))
    data = page_data(await (await client.get("/")).text())
    assert data["strings"] == all_strings()
    rules = data["rules"]
    assert rules["max_message"] == 2048 and rules["rate"] == 3.0 and rules["burst"] == 7
    assert rules["id_max"] == MAX_ID_LENGTH
    # the scripts keep no copy of the ID rule, the limits or any sentence
    script = "".join(path.read_text() for path in sorted(STATIC_DIR.glob("*.js")))
    assert len(script) > 10_000
    for copy in ("4096", str(MAX_ID_LENGTH), "Malformed", "too long", "cannot be reached", "#\\s"):
        assert copy not in script, copy
    for strings in all_strings().values():
        for value in strings.values():
            if len(value) > 12:
                assert value not in script, value


def test_message_rule_matches_the_core() -> None:
    # the JavaScript class \uXXXX escapes read the same in Python's re
    pattern = re.compile(page_rules(4096, 10, 20)["message_forbidden"])
    for code in range(0x3000):
        ch = chr(code)
        if ch in "\r\n":
            assert not pattern.search(ch)  # folded to a space on the way, never refused
        else:
            assert bool(pattern.search(ch)) == has_control_chars(ch), hex(code)


def test_overheads_are_the_frames() -> None:
    rules = page_rules(4096, 10, 20)
    assert len(b"002#a#b\n") - 2 == rules["say_overhead"]
    assert len(b"003#a#b#c\n") - 3 == rules["whisper_overhead"]
