"""The shipped nginx block's defences (issue 15, items 4, 7, 12), with Debian's real nginx.

nginx runs deploy/nginx/chat.conf with only ports and names changed
(tests/nginx_fixtures.py), in front of a real gateway and TCP server. Other
client addresses are other loopback addresses (127.0.0.2), bound by the client.
"""

from __future__ import annotations

import asyncio
import pathlib
import ssl
import warnings
from typing import Any

import aiohttp
import pytest
import trustme

from tests.helpers import TIMEOUT
from tests.nginx_fixtures import Nginx, StackMaker, Tls, deployed, free_port, start_nginx, stop_nginx, ws_through


async def get_status(nginx: Nginx, path: str = "/chat/", *, host: str | None = None,
                     local_addr: str | None = None) -> int:
    """The status of a GET through nginx; 0 when nginx closes the connection without answering (444)."""
    connector = aiohttp.TCPConnector(local_addr=(local_addr, 0)) if local_addr else None
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            async with http.get(nginx.base_url + path, headers={"Host": host} if host else None,
                                timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as resp:
                await resp.read()
                return resp.status
        except aiohttp.ServerDisconnectedError:
            return 0


async def handshake_status(nginx: Nginx) -> int:
    """The status of a WebSocket handshake on nginx's /chat/ws (101 when it succeeds; closed again)."""
    async with aiohttp.ClientSession() as http:
        try:
            ws = await asyncio.wait_for(http.ws_connect(f"ws://127.0.0.1:{nginx.port}/chat/ws",
                                                        headers={"Origin": nginx.base_url}), TIMEOUT)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


async def test_unknown_host_gets_no_answer_and_no_version(make_gateway_stack: StackMaker, nginx_for: Any) -> None:
    """Host + Origin = rebind.evil.example got the page and a 101 through nginx; now the default server drops it."""
    stack = await deployed(make_gateway_stack)
    nginx = nginx_for(stack)
    assert await get_status(nginx, host="rebind.evil.example") == 0
    assert await get_status(nginx, "/chat/ws", host=f"rebind.evil.example:{nginx.port}") == 0
    async with aiohttp.ClientSession() as http, http.get(f"{nginx.base_url}/chat/") as resp:
        assert resp.status == 200
        assert resp.headers.get("Server") == "nginx"  # server_tokens off: no version


async def test_websockets_per_address_are_limited_by_nginx(make_gateway_stack: StackMaker, nginx_for: Any,
                                                           clients: list[Any]) -> None:
    """Idle WebSockets from one address exhausted worker_connections; now limit_conn stops them at 20."""
    stack = await deployed(make_gateway_stack, max_ws_per_address=0)  # nginx's own limit, not the gateway's
    nginx = nginx_for(stack)
    for _ in range(20):
        client = await ws_through(nginx)
        clients.append(client)
        assert (await client.recv())["state"] == "connected"
    assert await handshake_status(nginx) == 429
    assert await get_status(nginx, local_addr="127.0.0.2") == 200  # another address still gets the page


async def test_request_rate_per_address_is_limited_by_nginx(make_gateway_stack: StackMaker, nginx_for: Any) -> None:
    stack = await deployed(make_gateway_stack)
    nginx = nginx_for(stack)
    statuses: list[int] = []
    async with aiohttp.ClientSession() as http:  # one connection, one request after the other
        for _ in range(80):
            async with http.get(f"{nginx.base_url}/chat/static/style.css") as resp:
                await resp.read()
                statuses.append(resp.status)
    assert statuses.count(200) >= 40 and 429 in statuses  # a burst of 40 passes, the flood does not
    assert await get_status(nginx, local_addr="127.0.0.2") == 200


async def test_the_gateway_caps_websockets_per_real_address_behind_nginx(
        make_gateway_stack: StackMaker, nginx_for: Any, clients: list[Any]) -> None:
    """The gateway counts the address nginx forwards, not nginx's own."""
    stack = await deployed(make_gateway_stack, max_ws_per_address=2)
    nginx = nginx_for(stack)
    for _ in range(2):
        client = await ws_through(nginx)
        clients.append(client)
        assert (await client.recv())["state"] == "connected"
    assert await handshake_status(nginx) == 429
    other = await ws_through(nginx, local_addr="127.0.0.2")
    clients.append(other)
    assert (await other.recv())["state"] == "connected"


async def test_tls_block_sends_hsts_and_speaks_tls_1_2_or_later(make_gateway_stack: StackMaker,
                                                                 tmp_path: pathlib.Path) -> None:
    """The shipped TLS lines, uncommented: HSTS on every answer, no version, no TLS 1.1, no unknown name."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "chain.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    stack = await deployed(make_gateway_stack)
    tls = Tls(free_port(), tmp_path / "chain.pem", tmp_path / "key.pem")
    nginx = start_nginx(tmp_path / "nginx", stack.gateway_port, tls=tls)
    try:
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        async with aiohttp.ClientSession() as http, http.get(f"https://localhost:{tls.port}/chat/",
                                                             ssl=client_ctx) as resp:
            assert resp.status == 200
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
            assert resp.headers["Server"] == "nginx"
        old = ssl.create_default_context()
        ca.configure_trust(old)
        with warnings.catch_warnings():  # deprecated indeed: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        with pytest.raises((ssl.SSLError, aiohttp.ClientError)):
            async with aiohttp.ClientSession() as http, http.get(f"https://localhost:{tls.port}/chat/", ssl=old):
                pass
        unknown = ssl.create_default_context()
        ca.configure_trust(unknown)
        unknown.check_hostname = False
        with pytest.raises((ssl.SSLError, aiohttp.ClientError)):  # ssl_reject_handshake: no certificate at all
            async with aiohttp.ClientSession() as http, http.get(
                    f"https://localhost:{tls.port}/chat/", ssl=unknown,
                    server_hostname="rebind.evil.example"):
                pass
    finally:
        stop_nginx(nginx)
