"""A node's Redis link, assembled: the ordered writer, the follower, the liveness and the shared moderation,
started and stopped together."""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from .redis_follower import Follower
from .redis_settings import COMMAND_TIMEOUT, RedisKeys, default_node_id

log = logging.getLogger("tcp_server.redis")


class RedisLink(Follower):
    """This node's Redis: the command client, the ordered writer, the room channel and the node's liveness."""

    async def start(self, port: int) -> None:
        """Start following the room; when Redis is down the node starts anyway (joins refused until it is back).

        ``port``: the node's line port, for the default node ID.
        """
        self.node = self.settings.node_id or default_node_id(port)
        self.keys = RedisKeys(self.settings.prefix, self.node)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._writer(), name="redis writer"),
            loop.create_task(self._follow(), name="redis room channel"),
            loop.create_task(self._liveness(), name="redis liveness"),
        ]
        try:
            await asyncio.wait_for(self.ready.wait(), COMMAND_TIMEOUT * 2)
        except TimeoutError:
            log.warning("Redis at %s is not reachable yet: joins are refused until it is", self.settings.url)

    async def close(self) -> None:
        """Write what is queued (the releases of a shutdown), leave the node list, disconnect."""
        try:
            await asyncio.wait_for(self._idle.wait(), COMMAND_TIMEOUT)
        except TimeoutError:
            log.warning("%d room events not written to Redis before shutdown", len(self._outbox))
        self._cancel()
        try:
            await asyncio.wait_for(self._leave(), COMMAND_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("could not remove node %s from Redis: %s", self.node, exc)
        await self.client.aclose()

    async def _leave(self) -> None:
        """This node is dead from now on: another node's next check removes whatever it still held
        (nothing, when every release was written), announcing each once."""
        await self.client.delete(self.keys.alive)

    async def abort(self) -> None:
        """Stop without a word to Redis (what a crash looks like to the other nodes; for tests)."""
        self._cancel()
        self._outbox.clear()
        await self.client.aclose()

    def _cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        self.ready.clear()
