"""Test helpers: a line-protocol client on real sockets, with timeouts everywhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tcp_server.protocol import FrameError, ServerFrame, server_frame_reader
from tests.clients import TIMEOUT, Receiver


class LineClient(Receiver[ServerFrame]):
    """A raw wire-protocol client for tests: send lines, await parsed frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self.reader = reader
        self.writer = writer
        self._decoder = server_frame_reader()
        self.raw = bytearray()

    @classmethod
    async def connect(cls, host: str, port: int) -> LineClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
        return cls(reader, writer)

    async def send(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        if isinstance(line, str) and not line.endswith("\n"):
            data += b"\n"
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), TIMEOUT)

    async def read_items(self, timeout: float) -> list[ServerFrame]:
        data = await asyncio.wait_for(self.reader.read(65536), timeout)
        if not data:
            raise ConnectionError("server closed the connection")
        self.raw += data
        frames: list[ServerFrame] = []
        for item in self._decoder.feed(data):
            if isinstance(item, FrameError):
                raise AssertionError(f"server sent a bad frame: {item}")
            frames.append(item)
        return frames

    async def sync(self, token: str = "sync") -> list[ServerFrame]:
        """Ping and collect everything before the pong: all earlier frames are handled."""
        from tcp_server.protocol import Pong

        await self.send(f"006#{token}")
        frames = await self.recv_until(Pong(token))
        return frames[:-1]

    async def join(self, name: str) -> list[ServerFrame]:
        from tcp_server.protocol import UserList

        await self.send(f"001#{name}")
        return await self.recv_until(UserList)

    async def closed(self, timeout: float = TIMEOUT) -> bytes:
        """Read to EOF; what arrived before it."""
        rest = bytearray()
        while True:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                return bytes(rest)
            rest += data

    async def close(self) -> None:
        await close_writer(self.writer)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a test connection; a peer that already went away is fine."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)
    except (TimeoutError, ConnectionError):
        pass


async def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    """Poll ``predicate`` (server-side state that has no event of its own) until true, or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def stamped(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` without its server timestamp, after checking it is one (ms since the epoch, just now)."""
    event = dict(event)
    ts = event.pop("ts")
    assert isinstance(ts, int) and abs(ts - time.time() * 1000) < 60_000, ts
    return event
