"""Bans and mutes shared by every node (the ``P bans`` / ``P mutes`` hashes, reloaded on a notice), and
chat-admin's room-wide acts: kick another node's member, forget an author, read who is where."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from tcp_server.protocol.ids import id_key

from .base import RoomUnavailable
from .redis_events import AccountChanged, BansChanged, ForgetAuthor, Kick, MutesChanged, RoomEvent, encode
from .redis_settings import ACCOUNT_TOMBSTONE_MS, COMMAND_TIMEOUT
from .redis_writer import LinkCore

log = logging.getLogger("tcp_server.redis")


class SharedModeration(LinkCore):
    """What chat-admin changes on one node, for every node."""

    def save_ban(self, key: str, ban: dict[str, Any] | None) -> None:
        """A ban added (``ban``) or lifted (None) here: into the ``P bans`` hash, and every node told to reload.

        In order after this node's earlier events; the notice is not logged (a resume does not replay it).
        """
        k = self.keys

        def write(pipe: Pipeline) -> None:
            self.commands += 1
            if ban is None:
                pipe.hdel(k.bans, key)
            else:
                pipe.hset(k.bans, key, json.dumps(ban, ensure_ascii=False))
            self._notify(pipe, BansChanged())
        self.queue("write", write)

    def save_account(self, key: str, name: str | None, holder: bool = False) -> None:
        """An account registered as ``name`` (None: deleted) here: into ``P accounts`` (what the claim script
        refuses a guest), and every node's registry told at once. Not logged, like a ban.

        A deletion leaves a tombstone (``P accounts:gone``) that keeps any node's periodic sync from adding
        the key back from a database read made before it; a registration clears its key's tombstone."""
        k = self.keys

        def write(pipe: Pipeline) -> None:
            if name is None:
                self.run_in(pipe, self.account_gone_script, [k.accounts, k.accounts_gone], [key])
            else:
                self.commands += 2
                pipe.hset(k.accounts, key, name)
                pipe.hdel(k.accounts_gone, key)
            self._notify(pipe, AccountChanged(key, name, 1 if holder else None))
        self.queue("write", write)

    def sync_accounts(self, accounts: dict[str, str]) -> None:
        """The database's accounts (a node's periodic reload) into ``P accounts``: Redis gets any it missed
        (made while Redis was down, an upgrade's first start). Added only: a reload read just before another
        node's registration must not take that key out; deletions reach Redis with their own write, and a key
        deleted lately (anywhere) is not added back: the read may be older than the deletion."""
        if not accounts:
            return
        k = self.keys
        args: list[Any] = [ACCOUNT_TOMBSTONE_MS]
        for key, name in accounts.items():
            args += (key, name)

        def write(pipe: Pipeline) -> None:
            self.run_in(pipe, self.sync_accounts_script, [k.accounts, k.accounts_gone], args)
        self.queue("write", write)

    def _accounts_loaded(self, accounts: dict[str, str]) -> None:
        if self.watcher is not None:
            self.watcher.accounts_loaded({str(key): str(name) for key, name in accounts.items()})

    def _notify(self, pipe: Pipeline, event: RoomEvent) -> None:
        """An event for every node on the room channel, outside the room log (a resume does not replay it)."""
        self.commands += 1
        pipe.publish(self.keys.channel, f"- {time.time():.6f} {encode(event)}")

    def reload_bans(self) -> None:
        """Another node changed the bans: read them all (one ``HVALS``), in a task of its own."""
        self._reload("bans", self.client.hvals(self.keys.bans), self._bans_loaded)

    def reload_mutes(self) -> None:
        """Another node changed the mutes: read them all (one ``HGETALL``)."""
        self._reload("mutes", self.client.hgetall(self.keys.mutes), self._mutes_loaded)

    def _reload(self, what: str, read: Any, loaded: Callable[[Any], None]) -> None:
        async def reload() -> None:
            try:
                value = await asyncio.wait_for(read, COMMAND_TIMEOUT)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("could not reload the %s: %s (they are read again when Redis is back)", what, exc)
                return
            self.commands += 1
            loaded(value)
        task = asyncio.get_running_loop().create_task(reload(), name=f"reload {what}")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    # ------------------------------------------------------------ the admin socket, room-wide

    def save_mute(self, key: str, until: float | None, lifted: bool = False) -> None:
        """A mute set (until ``until``, None: until lifted) or ``lifted`` here: into ``P mutes``, every node reloads."""
        k = self.keys

        def write(pipe: Pipeline) -> None:
            self.commands += 1
            if lifted:
                pipe.hdel(k.mutes, key)
            else:
                pipe.hset(k.mutes, key, json.dumps(until))
            self._notify(pipe, MutesChanged())
        self.queue("write", write)

    def _mutes_loaded(self, values: dict[str, Any]) -> None:
        if self.watcher is None:
            return
        mutes: dict[str, float | None] = {}
        for key, value in values.items():
            try:
                until = json.loads(value)
                mutes[str(key)] = None if until is None else float(until)
            except (ValueError, TypeError):
                log.warning("a malformed mute in Redis was ignored: %r", str(value)[:200])
        self.watcher.mutes_changed(mutes)

    def kick(self, key: str, reason: str) -> None:
        """``chat-admin kick`` of a member of another node: that node removes it (told why)."""
        self.queue("write", lambda pipe: self._notify(pipe, Kick(key, reason)))

    def forget_author(self, key: str) -> None:
        """``chat-admin history delete``: every node's window of recent messages forgets the author too."""
        self.queue("write", lambda pipe: self._notify(pipe, ForgetAuthor(key)))

    async def holder(self, key: str) -> tuple[str, str] | None:
        """The ID that holds ``key`` and its node (``chat-admin kick`` of another node's user)."""
        k = self.keys
        pipe = self.client.pipeline(transaction=True)
        pipe.hget(k.names, key)
        pipe.hget(k.owner, key)
        name, node = await self._read(pipe, 2)
        return (str(name), str(node)) if name is not None and node is not None else None

    async def _read(self, pipe: Pipeline, commands: int) -> list[Any]:
        """An admin's reading of the room (not through the writer: nothing to order it after)."""
        try:
            results: list[Any] = await asyncio.wait_for(pipe.execute(), COMMAND_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            raise RoomUnavailable(f"the shared room's Redis did not answer ({exc})") from exc
        self.commands += commands
        return results

    async def everyone(self) -> list[tuple[str, str]]:
        """The whole room in join order, with the node that holds each ID (``chat-admin who``)."""
        k = self.keys
        pipe = self.client.pipeline(transaction=True)
        pipe.zrange(k.order, 0, -1)
        pipe.hgetall(k.owner)
        names, owners = await self._read(pipe, 2)
        return [(str(name), str(owners.get(id_key(str(name)), "?"))) for name in names]

    def _bans_loaded(self, values: list[Any]) -> None:
        if self.watcher is None:
            return
        bans = []
        for value in values:
            try:
                bans.append(json.loads(value))
            except ValueError:
                log.warning("a malformed ban in Redis was ignored: %r", str(value)[:200])
        self.watcher.bans_changed(bans)
