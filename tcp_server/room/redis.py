"""The shared room: several server nodes, one room, state in Redis (``chat-server --redis URL``).

- :class:`RedisDirectory` holds IDs in Redis, unique by their key across nodes;
  a claim is one Lua script that takes the ID, records its join order and its
  node, and publishes the ``103`` in the same atomic step (see :mod:`.redis_lua`).
  Claims go through the link's ordered writer like releases: a claim never
  overtakes this node's earlier release of the same ID, and a storm of joins is
  a few pipelined round trips on one connection, not one connection per join.
- :class:`RedisBus` is Redis pub/sub on **one channel** for the whole room,
  whispers included (each carries its target key; a node drops the ones not
  for its members). One channel is one total order: every node sees every
  event in the same order, so rosters agree with the directory's join order and
  a sender's messages and whispers keep their order for every receiver. The
  cost, every node receiving every whisper, is small next to the messages all
  nodes receive anyway.
- :class:`RedisLink` is the node's connection: one writer task drains a queue of
  publishes and releases in order, pipelined (one round trip per batch; the
  messages queued in one turn go out as one script call: one ``PUBLISH`` of all
  of them, and each message appended to the room log and the history streams,
  so a message costs O(1) commands whatever the number of users, nodes or parked
  sessions), and the node's liveness: a heartbeat key with a TTL, and a reaper
  that removes a dead node's users (or parks their sessions for the resume
  grace), announcing each ``104`` once (one atomic script, whichever node runs it).
- History and resumable sessions in Redis are :mod:`.redis_recall`; bans and mutes
  are hashes (``P bans``, ``P mutes``) that every node reloads on a ``["b"]`` /
  ``["u"]`` notice on the channel; a ``["k", key, reason]`` notice asks the node
  holding ``key`` to kick it (``chat-admin`` on any node acts on the whole room);
  an ``["h", key]`` notice makes every node's window of recent messages forget an
  author whose stored messages were erased (``chat-admin history delete``).

When Redis cannot be reached, claims raise :class:`RoomUnavailable` (the
connection answers ``109#unavailable``); the link keeps trying, and when Redis
is back it registers this node's live users again and catches the roster up.

This module holds the directory and assembles the room; the rest is split by job
(and re-exported here): :mod:`.redis_settings` (settings, key names, limits),
:mod:`.redis_events` (the channel's event table and codec), :mod:`.redis_writer`
(the client and the ordered writer), :mod:`.redis_follower` (the channel and the
room's load), :mod:`.redis_liveness` (heartbeat, reaper), :mod:`.redis_moderation`
(shared bans and mutes, chat-admin's room-wide acts), :mod:`.redis_link` (all of
them started and stopped together), :mod:`.redis_bus` (publishing and dispatching
the room's events), :mod:`.redis_lua` (the scripts), :mod:`.redis_recall`
(history and resumable sessions).
"""


from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .base import LATER, IdRegistered, Later, RoomUnavailable
from .redis_bus import RedisBus
from .redis_events import Joined, encode
from .redis_link import RedisLink
from .redis_settings import (
    COMMAND_TIMEOUT,
    MAX_OUTBOX,
    POOL_SIZE,
    RETRY_PAUSE,
    RedisKeys,
    RedisSettings,
    default_node_id,
    entry_id,
    room_seq,
)

__all__ = [
    "COMMAND_TIMEOUT", "MAX_OUTBOX", "POOL_SIZE", "RETRY_PAUSE", "RedisBus", "RedisDirectory", "RedisKeys", "RedisLink",
    "RedisRoom", "RedisSettings", "default_node_id", "entry_id", "room_seq",
]


class RedisDirectory:
    """IDs in Redis, unique by key across nodes; everyone in join order on each claim."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    def try_claim(self, name: str, key: str, account: bool = False) -> Later:
        return LATER  # a claim is a script in Redis: always a round trip

    async def claim(self, name: str, key: str, account: bool = False) -> tuple[str, ...] | None:
        link = self.link
        if not link.subscribed:
            if link.ever_ready:
                raise RoomUnavailable("the shared room's Redis is not reachable")
            try:  # the node is starting: the first joins wait for the room (a moment) rather than fail
                await asyncio.wait_for(link.ready.wait(), COMMAND_TIMEOUT)
            except TimeoutError:
                raise RoomUnavailable("the shared room's Redis is not reachable yet") from None
        k = link.keys
        # The node: see Subscriber.entered; an account's join is marked (older nodes read four fields).
        payload = encode(Joined(key, name, link.node, 1 if account else None))
        # Through the ordered writer: a claim comes after this node's earlier releases (a user who
        # leaves and joins again is not told their own ID is taken), and a storm of joins shares
        # one round trip per batch.
        try:
            users = await link.call(link.claim_script,
                                    [k.names, k.owner, k.order, k.seq, k.held, f"{link.settings.prefix}sess:{key}",
                                     k.accounts],
                                    [key, name, link.node, k.channel, payload,
                                     "1" if link.settings.resume_grace > 0 else "0", "1" if account else "0"])
        except RoomUnavailable:
            link.queue("release", key)  # in case Redis took the claim before failing us: undone, in order
            raise
        if users is None:
            return None
        if isinstance(users, str):  # 'registered': an account's key (see CLAIM)
            raise IdRegistered(name)
        link.mine[key] = name
        return tuple(str(u) for u in users)

    def release(self, key: str) -> None:
        self.link.queue("release", key)


@dataclass
class RedisRoom:
    """The three parts a node needs, made together."""

    link: RedisLink
    directory: RedisDirectory
    bus: RedisBus

    @classmethod
    def create(cls, settings: RedisSettings) -> RedisRoom:
        link = RedisLink(settings)
        return cls(link, RedisDirectory(link), RedisBus(link))
