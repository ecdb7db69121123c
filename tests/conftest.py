"""Shared fixtures: a real chat server on an ephemeral loopback port."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tcp_server import ChatServer, ServerConfig
from tests.helpers import LineClient

# Fixture modules: their fixtures are available to every test without importing them by name.
pytest_plugins = [
    "tests.gateway_fixtures", "tests.browser_fixtures", "tests.nginx_fixtures", "tests.client_fixtures",
    "tests.redis_fixtures", "tests.postgres_fixtures",
]

# A chat-server the tests start as a process keeps today's in-memory history unless a test names a database:
# its default (an SQLite file in the data directory) would be the user's own.
os.environ.setdefault("CHAT_DATABASE", "memory")
# Tests that clear the CHAT_* variables still keep the default database out of the user's own state directory.
_STATE = tempfile.mkdtemp(prefix="hanchat-test-state-")
atexit.register(shutil.rmtree, _STATE, True)
os.environ["XDG_STATE_HOME"] = _STATE


def server_config(**overrides: object) -> ServerConfig:
    """Test defaults: port 0, loopback, limits loose enough not to trip by accident;
    no history and no resume grace (a drop is a leave at once) unless a test asks for them."""
    base: dict[str, object] = dict(
        host="127.0.0.1", port=0, legacy_port=0, lang="en", flood_rate=0.0,
        max_per_address=0, max_new_per_minute=0, uvloop=False, history=0, resume_grace=0,
    )
    base.update(overrides)
    return ServerConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., Awaitable[ChatServer]]]:
    """Start servers with config overrides; every one is closed after the test."""
    servers: list[ChatServer] = []

    async def start(**overrides: object) -> ChatServer:
        server = ChatServer(server_config(**overrides))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close(timeout=2.0)


@pytest.fixture
async def server(make_server: Callable[..., Awaitable[ChatServer]]) -> ChatServer:
    return await make_server()


@pytest.fixture
async def line_clients() -> AsyncIterator[Callable[[int], Awaitable[LineClient]]]:
    """Open line clients to a loopback port; all closed after the test."""
    clients: list[LineClient] = []

    async def open_client(port: int) -> LineClient:
        client = await LineClient.connect("127.0.0.1", port)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()


@pytest.fixture
def connect(server: ChatServer, line_clients: Callable[[int], Awaitable[LineClient]],
            ) -> Callable[..., Awaitable[LineClient]]:
    """Open line clients to ``server`` (or another port); all closed after the test."""

    def open_client(port: int | None = None) -> Awaitable[LineClient]:
        return line_clients(port or server.port)

    return open_client
