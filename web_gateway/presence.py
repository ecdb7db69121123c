"""The room's size for a welcome screen while no page of this gateway is in the room: ask the server.

The joined bridges count the room from what they relay anyway (:mod:`.online`). Before any of them
is in it, the gateway asks the chat server who is here with ``005`` before a join, which the server
answers with ``107`` and tells nobody: one short backend connection, at most every ``PROBE_TTL``
seconds however many pages open meanwhile (they share the answer, which may be that old), and none
while a joined bridge counts. A failed probe says nothing (the page shows no count) rather than a guess.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from tcp_server.protocol import GatewayHello, ListUsers, UserList, parse_server, serialize

from .backends import BackendPool
from .online import Online

log = logging.getLogger("web_gateway")

PROBE_TTL = 5.0
"""Seconds a probed count is good for."""
PROBE_TIMEOUT = 0.5
"""Seconds a probe may take to connect, and again to be answered: the welcome screen waits for it
(its first status event carries the count), so a server that is down costs a page a second at most."""
MAX_ANSWER = 64 * 1024
"""Longest answer read: a 107 of every ID in a big room fits; a bounded read all the same."""


class Presence:
    """The room's size: a joined bridge's count, else a recent probe of the server."""

    def __init__(self, online: Online, pool: BackendPool, tls: ssl.SSLContext | None, secret: str | None,
                 timeout: float) -> None:
        self.online = online
        self.pool = pool
        self.tls = tls
        self.secret = secret
        self.timeout = timeout
        self._probed: int | None = None
        self._probed_at = float("-inf")
        self._probe: asyncio.Task[int | None] | None = None
        self.probes = 0  # backend connections opened to ask (tests and logs)

    async def count(self, address: str) -> int | None:
        """Users in the room now, or None when nobody can say; ``address``: the page that asks (its
        real address goes to the server with the gateway's secret, as for its own backend)."""
        known = self.online.current()
        if known is not None:
            return known
        loop = asyncio.get_running_loop()
        if loop.time() - self._probed_at < PROBE_TTL:
            return self._probed
        if self._probe is None:
            self._probe = loop.create_task(self._ask(address), name="presence probe")
        probe = self._probe
        try:
            return await asyncio.shield(probe)
        finally:
            if probe.done() and self._probe is probe:
                self._probe = None

    async def _ask(self, address: str) -> int | None:
        try:
            count = await asyncio.wait_for(self._ask_servers(address), self.timeout * 2)
        except TimeoutError:
            count = None
        self._probed, self._probed_at = count, asyncio.get_running_loop().time()
        return count

    async def _ask_servers(self, address: str) -> int | None:
        for host, port in self.pool.order():
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, ssl=self.tls, limit=MAX_ANSWER), self.timeout)
            except (OSError, TimeoutError) as exc:
                log.debug("presence probe: %s:%d unavailable: %s", host, port, exc)
                continue
            self.probes += 1
            try:
                if self.secret:
                    writer.write(serialize(GatewayHello(self.secret, address)))
                writer.write(serialize(ListUsers("-")))
                line = await asyncio.wait_for(reader.readline(), self.timeout)
            except (OSError, TimeoutError, ValueError) as exc:  # ValueError: an answer over MAX_ANSWER
                log.debug("presence probe of %s:%d failed: %s", host, port, exc)
                continue
            finally:
                writer.close()
            frame = parse_server(line.decode("utf-8", "replace").rstrip("\r\n"))
            return len(frame.ids) if isinstance(frame, UserList) else None
        return None

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
