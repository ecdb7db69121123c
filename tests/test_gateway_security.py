"""The web path's defences (issue 15): per-address WebSockets, slowloris, DNS rebinding, bad Unicode.

A real gateway in front of a real TCP server on loopback ports; addresses other
than 127.0.0.1 arrive through ``X-Forwarded-For`` from the trusted loopback proxy.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest

from tcp_server.protocol import Message, UserJoined
from tests.gateway_fixtures import GatewayStack
from tests.helpers import TIMEOUT, LineClient, wait_until
from web_gateway.app import WS_PER_ADDRESS
from web_gateway.hosts import forwarded_host, host_allowed, parse_hosts

PROXY = {"trusted_proxy": ("127.0.0.1/32",)}


async def handshake_status(url: str, headers: dict[str, str]) -> int:
    """The HTTP status of a WebSocket handshake (101 when it succeeds); the socket is closed again."""
    async with aiohttp.ClientSession() as session:
        try:
            ws = await asyncio.wait_for(session.ws_connect(url, headers=headers), TIMEOUT)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


# ------------------------------------------------------------ per-address WebSockets


async def test_websockets_per_address_are_capped(make_gateway_stack: Any, ws_clients: Any) -> None:
    """500 unjoined WebSockets from one address were all accepted; now the cap holds, for that address only."""
    stack: GatewayStack = await make_gateway_stack(gateway={**PROXY, "max_ws_per_address": 3})
    mine = {"X-Forwarded-For": "198.51.100.7"}
    pages = [await ws_clients(stack.ws_url, mine) for _ in range(3)]
    for page in pages:
        assert (await page.recv())["state"] == "connected"
    assert await handshake_status(stack.ws_url, mine) == 429
    assert await handshake_status(stack.ws_url, {"X-Forwarded-For": "198.51.100.8"}) == 101
    await pages[0].close()  # a closed one frees its place (once the gateway's handler has returned)
    per_address = stack.runner.app[WS_PER_ADDRESS]
    await wait_until(lambda: per_address.open_count("198.51.100.7") == 2, what="the closed WebSocket released")
    assert await handshake_status(stack.ws_url, mine) == 101
    await wait_until(lambda: len(per_address) == 1, what="only 198.51.100.7 still counted")


async def test_ipv6_addresses_of_one_64_share_the_cap(make_gateway_stack: Any, ws_clients: Any) -> None:
    stack: GatewayStack = await make_gateway_stack(gateway={**PROXY, "max_ws_per_address": 2})
    for host in ("2001:db8:0:1::a", "2001:db8:0:1::b"):
        page = await ws_clients(stack.ws_url, {"X-Forwarded-For": host})
        assert (await page.recv())["state"] == "connected"
    assert await handshake_status(stack.ws_url, {"X-Forwarded-For": "2001:db8:0:1::c"}) == 429
    assert await handshake_status(stack.ws_url, {"X-Forwarded-For": "2001:db8:0:2::a"}) == 101


async def test_messages_per_address_share_one_budget(make_gateway_stack: Any, ws_clients: Any) -> None:
    """19 sockets x 10/s from one address reached everyone; the address's WebSockets now share a budget."""
    stack: GatewayStack = await make_gateway_stack(gateway={**PROXY, "address_rate": 0.001, "address_burst": 5})
    tina = await LineClient.connect("127.0.0.1", stack.server_port)
    try:
        await tina.join("tina")
        pages = []
        for name, address in (("a1", "198.51.100.7"), ("a2", "198.51.100.7"), ("b1", "198.51.100.8")):
            page = await ws_clients(stack.ws_url, {"X-Forwarded-For": address})
            await page.join(name)  # the join is one of the address's messages too
            pages.append(page)
        a1, a2, b1 = pages
        for i in range(3):  # 2 joins + 3: the address's burst of 5 is spent
            await a1.send({"type": "say", "text": f"a1 {i}"})
        await tina.recv_until(Message("a1", "a1 2"))
        await a2.send({"type": "say", "text": "a2 refused"})
        event = await a2.recv_until("error")
        assert event[-1]["reason"] == "flood" and "your address" in event[-1]["text"]
        await b1.send({"type": "say", "text": "b1 fine"})  # another address has its own budget
        frames = await tina.recv_until(Message("b1", "b1 fine"))
        assert Message("a2", "a2 refused") not in frames
    finally:
        await tina.close()


# ------------------------------------------------------------ slowloris


async def test_slow_headers_are_cut_at_the_keepalive_timeout(make_gateway_stack: Any) -> None:
    """A client that sends a header line now and then kept its socket for aiohttp's default hour."""
    stack: GatewayStack = await make_gateway_stack(gateway={"keepalive_timeout": 1.0})
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", stack.gateway_port), TIMEOUT)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        await writer.drain()
        deadline = loop.time() + 10
        closed = False
        while loop.time() < deadline and not closed:
            try:
                data = await asyncio.wait_for(reader.read(100), 0.2)
                closed = data == b""
            except TimeoutError:
                writer.write(b"X-Slow: 1\r\n")  # still sending, never finishing
                await writer.drain()
            except ConnectionError:
                closed = True
        assert closed, "the gateway kept a connection whose headers never ended"
    finally:
        writer.close()


async def test_an_idle_websocket_outlives_the_keepalive_timeout(make_gateway_stack: Any, ws_clients: Any) -> None:
    """The timeout is for requests; a WebSocket is a request being handled, however quiet."""
    stack: GatewayStack = await make_gateway_stack(gateway={"keepalive_timeout": 0.5})
    page = await ws_clients(stack.ws_url)
    await page.join("quiet")
    with pytest.raises(TimeoutError):
        await page.recv(timeout=2.0)  # nothing comes, and nothing closes, for four timeouts' worth
    assert await page.sync() == []


# ------------------------------------------------------------ DNS rebinding


@pytest.mark.parametrize(("host", "allowed", "listen", "ok"), [
    ("127.0.0.1:8080", (), "127.0.0.1", True),
    ("[::1]:8080", (), "127.0.0.1", True),
    ("192.0.2.10", (), "0.0.0.0", True),  # any IP literal: rebinding always brings a name
    ("localhost:8080", (), "127.0.0.1", True),
    ("chat.localhost", (), "127.0.0.1", True),
    ("rebind.evil.example", (), "127.0.0.1", False),
    ("rebind.evil.example:8080", (), "127.0.0.1", False),
    ("chat.example.org", ("chat.example.org",), "127.0.0.1", True),
    ("CHAT.example.org.:443", ("chat.example.org",), "127.0.0.1", True),
    ("evil.chat.example.org", ("chat.example.org",), "127.0.0.1", False),
    ("myhost", (), "myhost", True),  # the listen name
    ("", (), "127.0.0.1", False),
    ("a:b:c", (), "127.0.0.1", False),
])
def test_host_allowed(host: str, allowed: tuple[str, ...], listen: str, ok: bool) -> None:
    assert host_allowed(host, allowed, listen) is ok


def test_allowed_host_values_and_forwarded_host() -> None:
    assert parse_hosts("chat.example.org, Other.example:8443") == ("chat.example.org", "other.example")
    with pytest.raises(ValueError):
        parse_hosts("http://x/")
    assert forwarded_host('for=1.2.3.4;host="chat.example.org:8443";proto=https', None) == "chat.example.org:8443"
    assert forwarded_host("for=1.2.3.4, for=5.6.7.8;host=b.example", "x.example") == "b.example"
    assert forwarded_host("for=1.2.3.4", "a.example, chat.example.org:8443") == "chat.example.org:8443"
    assert forwarded_host(None, None) is None


async def test_rebinding_host_is_refused_on_every_route(make_gateway_stack: Any,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Host and Origin both the attacker's name got the page and a 101; now 421 and a log line that says why."""
    stack: GatewayStack = await make_gateway_stack()
    evil = f"rebind.evil.example:{stack.gateway_port}"
    headers = {"Host": evil, "Origin": f"http://{evil}"}
    caplog.set_level(logging.WARNING, logger="web_gateway")
    assert await handshake_status(stack.ws_url, headers) == 421
    async with aiohttp.ClientSession() as session:
        for path in ("", "static/app.js", "healthz"):
            async with session.get(stack.base_url + path, headers={"Host": evil}) as resp:
                assert resp.status == 421, path
        async with session.get(stack.base_url, headers={"Host": f"localhost:{stack.gateway_port}"}) as resp:
            assert resp.status == 200
    assert any("rebind.evil.example" in r.getMessage() and "--allowed-host" in r.getMessage()
               for r in caplog.records)


async def test_allowed_host_lets_the_named_host_in(make_gateway_stack: Any) -> None:
    stack: GatewayStack = await make_gateway_stack(gateway={"allowed_hosts": ("chat.example.org",)})
    name = f"chat.example.org:{stack.gateway_port}"
    assert await handshake_status(stack.ws_url, {"Host": name, "Origin": f"http://{name}"}) == 101


@pytest.mark.parametrize("header", ["X-Forwarded-Host", "Forwarded"])
async def test_trusted_proxy_forwarded_host_is_used(make_gateway_stack: Any, header: str) -> None:
    """``proxy_set_header Host $host`` on port 8443 drops the port: the Origin check gave 403 with no hint."""
    stack: GatewayStack = await make_gateway_stack(gateway={**PROXY, "allowed_hosts": ("chat.example.org",)})
    value = "chat.example.org:8443" if header == "X-Forwarded-Host" else 'for=192.0.2.1;host="chat.example.org:8443"'
    headers = {"Host": "chat.example.org", "Origin": "https://chat.example.org:8443", header: value}
    assert await handshake_status(stack.ws_url, headers) == 101
    # the same headers from an untrusted peer are not believed
    stack2: GatewayStack = await make_gateway_stack(gateway={"allowed_hosts": ("chat.example.org",)})
    assert await handshake_status(stack2.ws_url, headers) == 403
    # nor may a trusted proxy's forwarded host be a rebinding name
    evil = {**headers, header: value.replace("chat.example.org", "rebind.evil.example")}
    assert await handshake_status(stack.ws_url, evil) == 421


# ------------------------------------------------------------ bad Unicode from the page


@pytest.mark.parametrize("raw", [
    '{"type":"say","text":"a\\ud800b"}',
    '{"type":"whisper","to":"bob","text":"\\udfff"}',
    '{"type":"ping","token":"\\ud800"}',
])
async def test_lone_surrogate_is_malformed_and_the_websocket_stays(make_gateway_stack: Any, ws_clients: Any,
                                                                   raw: str) -> None:
    stack: GatewayStack = await make_gateway_stack()
    page = await ws_clients(stack.ws_url)
    assert (await page.recv())["state"] == "connected"
    await page.join("alice")
    await page.send(raw)
    event = await page.recv()
    assert event["type"] == "error" and event["reason"] == "malformed" and "surrogate" in event["text"]
    assert await page.sync() == []  # still connected, still joined
    await page.send({"type": "say", "text": "still here"})
    assert await page.sync("after") == []


# ------------------------------------------------------------ budgets (issue 26)


async def test_pings_take_the_control_budget_not_a_message_token(make_gateway_stack: Any, ws_clients: Any) -> None:
    """A page acks each message with a ping: 20 messages and their 20 pings fit a 10/s, burst 20
    socket (README: the same bucket as a TCP connection), and pings have a budget of their own."""
    stack: GatewayStack = await make_gateway_stack(gateway={"rate": 0.001, "burst": 21})
    tina = await LineClient.connect("127.0.0.1", stack.server_port)
    try:
        await tina.join("tina")
        page = await ws_clients(stack.ws_url)
        await page.join("alice")  # one message token: 20 left, and (almost) no refill
        for i in range(20):
            await page.send({"type": "say", "text": f"line {i}"})
            await page.send({"type": "ping", "token": f"ack-{i}"})
        events = await page.recv_until(lambda e: e.get("token") == "ack-19")
        assert [e for e in events if e["type"] == "error"] == []
        got = await tina.recv_until(Message("alice", "line 19"))
        assert got == [UserJoined("alice"), *(Message("alice", f"line {i}") for i in range(20))]
        await page.send({"type": "say", "text": "one too many"})  # the message budget is spent
        refused = await page.recv_until("error")
        assert refused[-1]["reason"] == "flood"
        for i in range(100):  # the control budget (20/s, burst 40) runs out: far more than a page acks
            await page.send({"type": "ping", "token": f"p{i}"})
        events = await page.recv_until("error")
        assert events[-1]["reason"] == "flood" and "ping" in events[-1]["text"]
    finally:
        await tina.close()
