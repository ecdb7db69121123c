"""``/healthz``: does the TCP server (each of them, with several) answer a ping right now?

A probe opens a connection, names itself with ``000`` when the gateway has a
secret (so per-address limits count the prober, not the gateway), sends
``006`` and waits for the matching ``110``. Results are reused for a second,
so a busy health checker cannot hammer the server. With several servers
(``--server A:9000,B:9000``) each is probed and reported on its own line; the
gateway is healthy while one of them answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from tcp_server.protocol import Error, FrameError, GatewayHello, Ping, Pong, serialize, server_frame_reader
from tcp_server.tls import backend_context

from .config import GatewayConfig

CACHE_SECONDS = 1.0


async def ping_server(
    config: GatewayConfig, address: str, timeout: float = 2.0, server: tuple[str, int] | None = None,
) -> tuple[bool, str]:
    """(True, "ok") when the server (``config.server`` unless given) answered the ping in time, else (False, why)."""
    host, port = server or config.server
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
                self._result = await self._probe(address)
                self._at = loop.time()
            return self._result

    async def _probe(self, address: str) -> tuple[bool, str]:
        servers = self.config.backends
        if len(servers) == 1:
            return await ping_server(self.config, address, server=servers[0])
        results = await asyncio.gather(*(ping_server(self.config, address, server=s) for s in servers))
        lines = [f"{host}:{port} {why}" for (host, port), (_, why) in zip(servers, results, strict=True)]
        return any(ok for ok, _ in results), "\n".join(lines)
