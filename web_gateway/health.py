"""``/healthz``: does the TCP server answer a ping right now?

A probe opens a connection, names itself with ``000`` when the gateway has a
secret (so per-address limits count the prober, not the gateway), sends
``006`` and waits for the matching ``110``. Results are reused for a second,
so a busy health checker cannot hammer the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from tcp_server.protocol import Error, FrameError, GatewayHello, Ping, Pong, serialize, server_frame_reader
from tcp_server.tls import backend_context

from .config import GatewayConfig

CACHE_SECONDS = 1.0


async def ping_server(config: GatewayConfig, address: str, timeout: float = 2.0) -> tuple[bool, str]:
    """(True, "ok") when the server answered the ping in time, else (False, why)."""
    host, port = config.server
    token = "healthz-" + secrets.token_hex(4)
    try:
        async with asyncio.timeout(timeout):
            tls = backend_context(config.server_tls, config.server_ca)
            reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            try:
                out = b""
                if config.gateway_secret:
                    out += serialize(GatewayHello(config.gateway_secret, address))
                writer.write(out + serialize(Ping(token)))
                frames = server_frame_reader()
                while True:
                    data = await reader.read(65536)
                    if not data:
                        return False, "the chat server closed the connection"
                    for item in frames.feed(data):
                        if isinstance(item, Pong) and item.token == token:
                            return True, "ok"
                        if isinstance(item, Error):
                            return False, f"the chat server refused: {item.reason}"
                        if isinstance(item, FrameError):
                            return False, "the chat server sent an unreadable frame"
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
    except TimeoutError:
        return False, "the chat server did not answer in time"
    except OSError as exc:
        return False, f"the chat server cannot be reached: {exc.strerror or exc}"


class HealthCheck:
    """One probe at a time; its answer is reused for ``CACHE_SECONDS``."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._lock = asyncio.Lock()
        self._result: tuple[bool, str] = (False, "not checked yet")
        self._at = float("-inf")

    def invalidate(self) -> None:
        """Forget the cached answer: the next check probes."""
        self._at = float("-inf")

    async def check(self, address: str) -> tuple[bool, str]:
        loop = asyncio.get_running_loop()
        async with self._lock:
            if loop.time() - self._at >= CACHE_SECONDS:
                self._result = await ping_server(self.config, address)
                self._at = loop.time()
            return self._result
