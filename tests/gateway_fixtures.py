"""A real TCP server and a real web gateway on ephemeral loopback ports, and a JSON WebSocket client.

Reusable by any test module (the nginx tests put nginx in front of ``stack.gateway_port``):

    stack = await start_stack(server={"max_per_address": 20}, gateway={"base_path": "/chat/"})
    try:
        ws = await JsonClient.connect(stack.ws_url)
        ...
    finally:
        await stack.close()

or the ``gateway_stack`` / ``make_gateway_stack`` fixtures (import them into a test module or conftest).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tcp_server import ChatServer
from tests.clients import Receiver
from tests.conftest import server_config
from tests.helpers import TIMEOUT
from web_gateway.__main__ import start_gateway
from web_gateway.config import GatewayConfig
from web_gateway.forwarded import parse_networks

Event = dict[str, Any]


def gateway_config(server_port: int, **overrides: Any) -> GatewayConfig:
    """Test defaults: port 0, loopback, no rate limit unless asked, a short heartbeat."""
    base: dict[str, Any] = dict(host="127.0.0.1", port=0, server=("127.0.0.1", server_port), rate=0.0,
                                address_rate=0.0, heartbeat=5.0, lang="en", uvloop=False)
    base.update(overrides)
    if base.get("trusted_proxy"):
        base["trusted_proxy"] = parse_networks(base["trusted_proxy"])  # CIDR strings are fine
    return GatewayConfig(**base)


@dataclass
class GatewayStack:
    """A ChatServer and a gateway in front of it, both in this event loop."""

    server: ChatServer
    runner: web.AppRunner
    gateway_port: int
    config: GatewayConfig
    server_overrides: dict[str, Any] = field(default_factory=dict)
    _closed: bool = False

    @property
    def server_port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        """The page's URL (with the base path, ending in /)."""
        return f"http://127.0.0.1:{self.gateway_port}{self.config.base_path}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}{self.config.base_path}ws"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    async def stop_server(self) -> None:
        """Stop the TCP server (109#shutdown to every connection), keep the gateway."""
        await self.server.close(timeout=2.0)

    async def restart_server(self) -> ChatServer:
        """A new TCP server on the same port, as after a restart."""
        if not self.server.closing:
            await self.stop_server()
        overrides = {**self.server_overrides, "port": self.server.port}
        server = ChatServer(server_config(**overrides))
        await server.start()
        self.server = server
        return server

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.runner.cleanup()
        await self.server.close(timeout=2.0)


async def start_stack(
    server: Mapping[str, Any] | None = None, gateway: Mapping[str, Any] | None = None,
) -> GatewayStack:
    """Start a TCP server (``tests.conftest.server_config`` overrides) and a gateway in front of it.

    A ``gateway_secret`` in ``server`` is given to the gateway too, unless ``gateway`` says otherwise.
    """
    server_overrides = dict(server or {})
    chat = ChatServer(server_config(**server_overrides))
    await chat.start()
    gw = dict(gateway or {})
    if "gateway_secret" in server_overrides:
        gw.setdefault("gateway_secret", server_overrides["gateway_secret"])
    config = gateway_config(chat.port, **gw)
    try:
        runner, port = await start_gateway(config)
    except BaseException:
        await chat.close(timeout=2.0)
        raise
    return GatewayStack(chat, runner, port, replace(config, port=port), server_overrides)


@pytest.fixture
async def make_gateway_stack() -> AsyncIterator[Callable[..., Awaitable[GatewayStack]]]:
    """``await make_gateway_stack(server={...}, gateway={...})``; every stack is closed after the test."""
    stacks: list[GatewayStack] = []

    async def make(server: Mapping[str, Any] | None = None, gateway: Mapping[str, Any] | None = None) -> GatewayStack:
        stack = await start_stack(server, gateway)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        await stack.close()


@pytest.fixture
async def gateway_stack(make_gateway_stack: Callable[..., Awaitable[GatewayStack]]) -> GatewayStack:
    return await make_gateway_stack()


class JsonClient(Receiver[Event]):
    """A browser stand-in: JSON messages out, NDJSON events in, timeouts everywhere."""

    def __init__(self, session: aiohttp.ClientSession | None, ws: aiohttp.ClientWebSocketResponse) -> None:
        super().__init__()
        self.session = session  # closed with the client when it is the client's own
        self.ws = ws
        self.close_code: int | None = None  # from the gateway's close frame
        self.messages = 0  # WebSocket messages received (events may share one)

    @classmethod
    async def connect(
        cls, url: str, headers: Mapping[str, str] | None = None, *, autoping: bool = True,
        session: aiohttp.ClientSession | None = None,
    ) -> JsonClient:
        own = session is None
        session = session or aiohttp.ClientSession()
        try:
            ws = await asyncio.wait_for(session.ws_connect(url, headers=headers, autoping=autoping), TIMEOUT)
        except BaseException:
            if own:
                await session.close()
            raise
        return cls(session if own else None, ws)

    async def send(self, msg: Mapping[str, Any] | str) -> None:
        data = msg if isinstance(msg, str) else json.dumps(msg)
        await asyncio.wait_for(self.ws.send_str(data), TIMEOUT)

    async def read_items(self, timeout: float) -> list[Event]:
        """One WebSocket message's events; ConnectionError when the gateway closed the WebSocket."""
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        if msg.type is aiohttp.WSMsgType.TEXT:
            self.messages += 1
            return [json.loads(line) for line in msg.data.split("\n")]
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            if msg.type is aiohttp.WSMsgType.CLOSE and self.close_code is None:
                self.close_code = int(msg.data)
            raise ConnectionError(f"WebSocket closed ({self.close_code or self.ws.close_code})")
        if msg.type is aiohttp.WSMsgType.ERROR:
            raise ConnectionError(f"WebSocket error: {msg.data}")
        return []

    async def sync(self, token: str = "sync") -> list[Event]:
        """Ping through the gateway and the server: every earlier message has been handled."""
        await self.send({"type": "ping", "token": token})
        events = await self.recv_until(lambda e: e == {"type": "pong", "token": token})
        return events[:-1]

    async def join(self, name: str) -> list[Event]:
        """Join and wait for the user list that follows ``joined`` (the hello status may come first)."""
        await self.send({"type": "join", "id": name})
        return await self.recv_until("users")

    async def closed(self, timeout: float = TIMEOUT) -> tuple[int | None, list[Event]]:
        """Read to the close; the close code and the events before it."""
        events: list[Event] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                events.append(await self.recv(max(0.01, deadline - loop.time())))
            except ConnectionError:
                return self.close_code or self.ws.close_code, events

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ws.close(), TIMEOUT)
        except (TimeoutError, ConnectionError):
            pass
        if self.session is not None:
            await self.session.close()


@pytest.fixture
async def ws_clients() -> AsyncIterator[Callable[..., Awaitable[JsonClient]]]:
    """``await ws_clients(url, headers=...)``: JSON WebSocket clients, all closed after the test."""
    clients: list[JsonClient] = []

    async def open_client(url: str, headers: Mapping[str, str] | None = None, **kwargs: Any) -> JsonClient:
        client = await JsonClient.connect(url, headers, **kwargs)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()
