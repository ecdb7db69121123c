"""A node's liveness: a heartbeat key with a TTL, a reaper that removes (or parks) dead nodes' users, each
``104`` announced once whichever node runs it, and what a beat says about this node's past (a Redis restart,
its own presumed death)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from redis.exceptions import RedisError

from .redis_settings import COMMAND_TIMEOUT
from .redis_writer import LinkCore

log = logging.getLogger("tcp_server.redis")


class Liveness(LinkCore):
    """The heartbeat, the reaper and the re-registration of this node's users."""

    async def _liveness(self) -> None:
        """Beat; remove dead nodes' users."""
        k = self.keys
        while True:
            try:
                if self.subscribed:
                    await self._check_in()
                grace_ms = int(self.settings.resume_grace * 1000)
                started = time.perf_counter()
                gone, nodes, *adopted = await asyncio.wait_for(
                    self.reap_script(keys=[k.names, k.owner, k.order, k.nodes, k.parked, k.seen],
                                     args=[self.settings.prefix, self.node, k.channel, grace_ms]), COMMAND_TIMEOUT,
                )
                self.timed(started)
                if self.stats is not None:
                    self.stats.nodes = int(nodes)
                if gone:
                    log.info("removed %d users of dead nodes", gone)
                if adopted:
                    log.info("parked %d sessions of dead nodes for their grace", len(adopted))
                    if self.on_adopted is not None:
                        self.on_adopted([str(key) for key in adopted])
                if grace_ms:
                    ended = await asyncio.wait_for(
                        self.expire_script(args=[self.settings.prefix, k.channel]), COMMAND_TIMEOUT)
                    if ended:
                        log.info("%d parked sessions ended (grace over)", ended)
                self.reaper_rounds += 1
            except (RedisError, OSError, TimeoutError) as exc:
                log.debug("heartbeat failed: %s", exc)
            await asyncio.sleep(self._beat)

    async def _check_in(self, resync: bool = False) -> None:
        """One beat, and what it says about this node's past: nothing, a restart of Redis, or its own death.

        - Redis lost the room (a new epoch): this node registers its live users again.
        - Other nodes removed this node (a pause longer than the node timeout): its users are gone from
          the room; they are closed, not resurrected.
        - The heartbeat had lapsed but nobody removed the node yet: registering again keeps everyone.
        """
        k = self.keys
        async with self._beat_lock:
            alive, member, epoch = await asyncio.wait_for(
                self.heartbeat_script(keys=[k.alive, k.nodes, k.epoch, k.seen],
                                      args=[self.node, self._ttl_ms, secrets.token_hex(8), self.last_id]),
                COMMAND_TIMEOUT,
            )
            epoch = str(epoch)
            known, self._epoch = self._epoch, epoch
            if known is None:
                if member:  # a previous run of this node ID died without cleaning up: its users are ghosts
                    log.warning("node %s: removing the users of its previous run", self.node)
                    await self._reconcile()
                return
            if alive and member and epoch == known:
                if resync:
                    await self._reconcile()
                return
            if epoch != known:
                if self.on_room_lost is not None:
                    self.on_room_lost()  # parked sessions went with it: not registered again
                log.warning("Redis lost the room (restarted?): node %s registers its %d users again",
                            self.node, len(self.mine))
                await self._reconcile()
            elif not member:
                log.warning("node %s was presumed dead and removed: closing its %d stale users",
                            self.node, len(self.mine))
                lost, self.mine = list(self.mine), {}
                for key in lost:
                    self._lose(key)
            else:
                await self._reconcile()

    def _lose(self, key: str) -> None:
        if self.watcher is not None:
            self.watcher.lost(key)

    async def _reconcile(self) -> None:
        """Register this node's live users again; members whose ID someone else took meanwhile are lost."""
        k = self.keys
        args: list[str] = [self.node, k.channel]
        for key, name in self.mine.items():
            args += (key, name)
        conflicts = await asyncio.wait_for(
            self.reconcile_script(keys=[k.names, k.owner, k.order, k.seq, k.held], args=args), COMMAND_TIMEOUT,
        )
        for key in conflicts:
            self.mine.pop(str(key), None)
            log.warning("ID key %r was taken elsewhere while this node was away", key)
            self._lose(str(key))
