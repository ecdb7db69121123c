"""Following the room channel: subscribe, load the room (roster, log end, history, bans, mutes,
accounts), then hand
each event to the bus; on a failure, again until it works."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from tcp_server.protocol.frames import Message

from .redis_events import MalformedEvent, RoomMessage, decode
from .redis_liveness import Liveness
from .redis_moderation import SharedModeration
from .redis_settings import COMMAND_TIMEOUT, RETRY_PAUSE, entry_id

log = logging.getLogger("tcp_server.redis")


class Follower(SharedModeration, Liveness):
    """The room channel's subscription and the room's load."""

    async def _follow(self) -> None:
        """Subscribe, load the room, follow it; on a failure, again until it works."""
        while True:
            pubsub: PubSub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await asyncio.wait_for(pubsub.subscribe(self.keys.channel), COMMAND_TIMEOUT)
                # Subscribed first, loaded second: whatever changes between is in the channel after the load.
                # This node's own users are registered again (after a Redis restart) before the load.
                # After an outage, releases queued meanwhile may be lost, and a claim may have timed out
                # after Redis took it: register this node's users again, drop what it no longer holds.
                await self._check_in(resync=self.ever_ready)
                await self._load()
                self.ready.set()
                self.ever_ready = True
                log.info("node %s follows the room on %s", self.node, self.settings.url)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and self.bus is not None:
                        self.bus.received(message["data"])
            except (RedisError, OSError, TimeoutError) as exc:
                if self.subscribed:
                    log.warning("lost the room channel (%s); joins are refused until Redis is back", exc)
                    self.ready.clear()
                    if self.watcher is not None:
                        self.watcher.degraded()
            finally:
                try:
                    await asyncio.wait_for(pubsub.aclose(), COMMAND_TIMEOUT)
                except (RedisError, OSError, TimeoutError):
                    pass
            await asyncio.sleep(RETRY_PAUSE)

    async def _load(self) -> None:
        """The room, the log's end and the history, in one transaction: what the channel then brings
        that is already in them (log IDs up to the loaded one) is skipped."""
        k = self.keys
        for script in self._scripts:  # Redis may have restarted (and forgotten them)
            script.sha = await asyncio.wait_for(self.client.script_load(script.script), COMMAND_TIMEOUT)
        pipe = self.client.pipeline(transaction=True)
        pipe.set(k.logcap, self.settings.log_cap)
        pipe.zrange(k.order, 0, -1)
        pipe.xrevrange(k.log, "+", "-", count=1)
        pipe.xrevrange(k.history, "+", "-", count=max(self.settings.history, 1))
        pipe.hvals(k.bans)
        pipe.hgetall(k.mutes)
        pipe.hgetall(k.accounts)
        _, names, last, history, bans, mutes, accounts = await asyncio.wait_for(pipe.execute(), COMMAND_TIMEOUT)
        self.commands += 7
        self._bans_loaded(bans)
        self._mutes_loaded(mutes)
        self._accounts_loaded(accounts)
        self.last_id = str(last[0][0]) if last else "0-0"
        self.loaded_id = entry_id(self.last_id)
        if self.bus is not None:
            self.bus.load([str(n) for n in names], {str(key) for key in accounts})
        if self.on_history is not None and self.settings.history > 0:
            frames = []
            for _, fields in reversed(history):
                try:
                    event = decode(fields["e"])
                except MalformedEvent as exc:
                    log.warning("a malformed history entry was skipped: %s", exc)
                    continue
                if isinstance(event, RoomMessage):
                    frames.append(Message(event.sender, event.text, event.ts, account=event.account == 1))
            self.on_history(frames)
