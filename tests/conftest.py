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


# The Debian programs the suite drives, with the command that prints each one's version: a failure
# report then says which chromium, nginx, redis-server, ngircd... ran (they are installed by name).
SYSTEM_PROGRAMS: dict[str, list[str]] = {
    "chromium": ["chromium", "--version"],
    "nginx": ["nginx", "-v"],
    "redis-server": ["redis-server", "--version"],
    "ngircd": ["ngircd", "--version"],
    "postgres": ["pg_config", "--version"],
    "tmux": ["tmux", "-V"],
    "node": ["node", "--version"],
}


def system_versions() -> list[str]:
    """One line per program: its first line of version output, or that it is missing."""
    import os
    import shutil
    import subprocess

    lines = []
    for name, command in SYSTEM_PROGRAMS.items():
        exe = shutil.which(command[0]) or shutil.which(command[0], path="/usr/sbin:/usr/bin:/sbin")
        if exe is None:
            lines.append(f"{name}: not installed")
            continue
        try:
            done = subprocess.run([exe, *command[1:]], capture_output=True, text=True, timeout=10,
                                  env={**os.environ, "LC_ALL": "C"})
            out = (done.stdout or done.stderr).strip().splitlines()
            lines.append(f"{name}: {out[0] if out else '(no version printed)'}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            lines.append(f"{name}: version unknown ({exc})")
    return lines


def pytest_report_header() -> list[str]:
    return ["system programs: " + "; ".join(system_versions())]
