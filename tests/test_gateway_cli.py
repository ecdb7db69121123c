"""chat-gateway and chat-run as operators run them: real processes, real signals."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from tcp_server import ChatServer
from tcp_server.protocol import Error, ErrorReason, SessionToken, UserJoined, UserLeft
from tests.gateway_fixtures import JsonClient
from tests.helpers import LineClient

STARTUP = 30.0  # a cold interpreter on a busy 2-core machine


async def read_until(stream: asyncio.StreamReader, pattern: str, timeout: float = STARTUP) -> re.Match[str]:
    seen = ""
    async with asyncio.timeout(timeout):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"process ended before {pattern!r}; output:\n{seen}")
            seen += line
            match = re.search(pattern, line)
            if match:
                return match


async def stop(proc: asyncio.subprocess.Process, sig: signal.Signals) -> int:
    proc.send_signal(sig)
    return await asyncio.wait_for(proc.wait(), 20)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_gateway_signal_tells_pages_and_sends_004(make_server: Callable[..., Awaitable[ChatServer]],
                                                        sig: signal.Signals) -> None:
    server = await make_server()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web_gateway", "--port", "0", "--server", f"127.0.0.1:{server.port}",
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "CHAT_LOG_LEVEL": "INFO"},
    )
    assert proc.stderr is not None
    carol = await LineClient.connect("127.0.0.1", server.port)
    page: JsonClient | None = None
    try:
        url = (await read_until(proc.stderr, r"web gateway ready: (http://\S+)")).group(1)
        await carol.join("carol")
        page = await JsonClient.connect(url.replace("http://", "ws://") + "ws")
        await page.join("alice")
        assert await carol.recv() == UserJoined("alice")
        proc.send_signal(sig)
        code, events = await page.closed(20)
        assert events[-1] == {"type": "status", "state": "shutdown"}
        assert code == aiohttp.WSCloseCode.GOING_AWAY
        assert await carol.recv(20) == UserLeft("alice")
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if page is not None:
            await page.close()
        await carol.close()


async def test_run_command_starts_everything_and_says_where() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web_gateway.launcher", "--port", "0", "--legacy-port", "0", "--gateway-port", "0",
        "--metrics-port", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "CHAT_UVLOOP": "off"},
    )
    assert proc.stdout is not None
    carol: LineClient | None = None
    page: JsonClient | None = None
    try:
        match = await read_until(proc.stdout, r"Open (http://127\.0\.0\.1:\d+/) in a browser; terminal clients: "
                                              r"chat-client 127\.0\.0\.1 (\d+)")
        url, tcp_port = match.group(1), int(match.group(2))
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "healthz") as resp:
                assert resp.status == 200
            async with session.get(url) as resp:
                assert resp.status == 200 and "/app.js" in await resp.text()
        carol = await LineClient.connect("127.0.0.1", tcp_port)
        await carol.join("carol")
        page = await JsonClient.connect(url.replace("http://", "ws://") + "ws")
        await page.join("alice")
        joining = await carol.recv_until(UserJoined)  # after carol's own 112 (resume is on by default)
        assert joining[-1] == UserJoined("alice") and all(isinstance(f, SessionToken) for f in joining[:-1])
        assert await stop(proc, signal.SIGINT) == 0
        frames = await carol.recv_until(Error)
        # The gateway stopped first without 004 (alice's session could resume), then the server went down.
        assert UserLeft("alice") not in frames
        assert frames[-1] == Error(ErrorReason.SHUTDOWN, "server shutting down")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if page is not None:
            await page.close()
        if carol is not None:
            await carol.close()
