"""The core of a node's Redis link: its client, its scripts and the ordered writer.

One writer task drains a queue of publishes, releases, writes and script calls in order, pipelined (one round
trip per batch; the messages queued in one turn go out as one script call), so a claim never overtakes this
node's earlier release of the same ID and a storm of joins is a few round trips on one connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Literal, Protocol

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from tcp_server.protocol.frames import Message

from . import redis_lua
from .base import RoomUnavailable, RoomWatcher
from .redis_settings import COMMAND_TIMEOUT, MAX_OUTBOX, POOL_SIZE, RedisKeys, RedisSettings

if TYPE_CHECKING:
    from tcp_server.stats import ServerStats

log = logging.getLogger("tcp_server.redis")


class ChannelReader(Protocol):
    """What the follower hands the room channel to (the ``RedisBus``): a protocol here, so the writer's
    module needs no import of the bus's, which imports the link's (no import cycle)."""

    def received(self, data: Any) -> None: ...

    def load(self, names: list[str], accounts: Collection[str] = ()) -> None: ...

WriterOp = Literal["publish", "release", "write", "call"]
"""What the ordered writer does with a queued value (see :meth:`LinkCore.queue`); local, never on the wire."""


class LinkCore:
    """This node's Redis client and ordered writer: the state the follower, liveness and moderation share."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.node = settings.node_id or ""
        self.keys = RedisKeys(settings.prefix, self.node)
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.url, max_connections=POOL_SIZE, timeout=COMMAND_TIMEOUT, socket_timeout=COMMAND_TIMEOUT,
            socket_connect_timeout=COMMAND_TIMEOUT, retry=Retry(NoBackoff(), 0), decode_responses=True,
        )
        self.client: aioredis.Redis = aioredis.Redis.from_pool(pool)
        c = self.client
        self._scripts: list[AsyncScript] = []  # the writer's: loaded on each (re)connection, run by SHA
        self.claim_script = self.script(redis_lua.CLAIM)
        self.release_script = self.script(redis_lua.RELEASE)
        self.heartbeat_script = c.register_script(redis_lua.HEARTBEAT)
        self.reap_script = c.register_script(redis_lua.REAP)
        self.reconcile_script = c.register_script(redis_lua.RECONCILE)
        self.publish_script = self.script(redis_lua.PUBLISH)
        self.account_gone_script = self.script(redis_lua.ACCOUNT_GONE)
        self.sync_accounts_script = self.script(redis_lua.SYNC_ACCOUNTS)
        self.expire_script = c.register_script(redis_lua.EXPIRE)
        self.last_id = ""  # the last room-log entry this node received ("" before it loaded the room)
        self.loaded_id: tuple[int, int] = (0, 0)  # events up to this one were in the load: skipped
        self.on_history: Callable[[list[Message]], None] | None = None  # the history stream, at each load
        self.on_adopted: Callable[[list[str]], None] | None = None  # dead nodes' sessions this node parks
        self.watcher: RoomWatcher | None = None  # the node: members to let go, health, shared moderation
        self.stats: ServerStats | None = None  # the node's metrics: round trips, bus lag, live nodes
        self.on_room_lost: Callable[[], None] | None = None  # Redis restarted empty (before re-registering)
        self.mine: dict[str, str] = {}  # ID keys this node holds -> IDs, in join order
        self.bus: ChannelReader | None = None  # the RedisBus, once made
        self.ready = asyncio.Event()  # set while the room channel is followed: the node knows the room
        self.ever_ready = False  # it was once: the node has started
        self._idle = asyncio.Event()  # set when the writer has nothing queued or in flight
        self._idle.set()
        self.commands = 0  # Redis commands sent (a pipeline counts each), for measuring
        self.reaper_rounds = 0  # dead-node checks done (tests wait on it)
        # In order: ("publish", (kind, payload)), ("release", key), ("write", call),
        # ("call", (script, keys, args, future)): see queue()
        self._outbox: list[tuple[WriterOp, Any]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._beat = settings.node_timeout / 4  # a beat every quarter; the key lives two beats
        self._ttl_ms = max(int(settings.node_timeout * 500), 100)
        self._epoch: str | None = None  # the room's state this node registered in
        self._beat_lock = asyncio.Lock()
        self._reloads: set[asyncio.Task[None]] = set()

    def timed(self, started: float) -> None:
        """One round trip to Redis (a pipeline, a script) took since ``started`` (``time.perf_counter``)."""
        if self.stats is not None:
            self.stats.redis_round_trip_seconds.observe(time.perf_counter() - started)

    def script(self, source: str) -> AsyncScript:
        """A script the ordered writer runs (by SHA in its pipeline: no ``SCRIPT EXISTS`` per batch)."""
        script = self.client.register_script(source)
        self._scripts.append(script)
        return script

    def run_in(self, pipe: Pipeline, script: AsyncScript, keys: list[str], args: list[Any]) -> None:
        """Queue ``script`` in the writer's pipeline; it was loaded when the link (re)connected."""
        self.commands += 1
        pipe.evalsha(script.sha, len(keys), *keys, *args)


    @property
    def subscribed(self) -> bool:
        return self.ready.is_set()

    # ------------------------------------------------------------ the ordered writer

    def queue(self, kind: WriterOp, value: Any) -> None:
        """Fire and forget, in order: ``publish`` sends ``value`` (``(kind, payload)``) on the room channel,
        ``release`` releases key ``value``, ``write`` calls ``value(pipeline)`` (a session store's script);
        ``call`` runs a script and answers its future (see :meth:`call`)."""
        if not self._tasks:
            if kind == "call":
                value[3].set_exception(RoomUnavailable("the node is stopping"))
            return  # stopped
        if len(self._outbox) >= MAX_OUTBOX:
            log.warning("Redis is not keeping up: a room event was dropped")
            if kind == "call":  # a join or resume waits for this one: it is refused now, not at its timeout
                value[3].set_exception(RoomUnavailable("Redis is not keeping up"))
            return
        self._outbox.append((kind, value))
        self._idle.clear()
        self._wake.set()

    async def _writer(self) -> None:
        k = self.keys
        while True:
            await self._wake.wait()
            batch, self._outbox = self._outbox, []
            waiting: list[tuple[int, asyncio.Future[Any]]] = []  # (place in the pipeline, who waits: see call())
            try:
                pipe = self.client.pipeline(transaction=False)
                run: list[tuple[str, str]] = []  # consecutive events: one PUBLISH of them all
                for kind, value in batch:
                    if kind == "publish":
                        run.append(value)
                        continue
                    if run:
                        self._publish(pipe, run)
                        run = []
                    if kind == "write":
                        value(pipe)
                    elif kind == "call":
                        script, keys, args, future = value
                        waiting.append((len(pipe), future))
                        self.run_in(pipe, script, keys, args)
                    else:
                        self.mine.pop(value, None)
                        self.run_in(pipe, self.release_script, [k.names, k.owner, k.order, k.held],
                                    [value, self.node, k.channel])
                if run:
                    self._publish(pipe, run)
                started = time.perf_counter()
                results = await asyncio.wait_for(pipe.execute(raise_on_error=False), COMMAND_TIMEOUT)
                self.timed(started)
                failed = next((r for r in results if isinstance(r, Exception)), None)
                if failed is not None:
                    log.warning("a Redis write of %d room events failed in part: %s", len(batch), failed)
                for at, future in waiting:
                    self._answer(future, results[at])
            except (RedisError, OSError, TimeoutError) as exc:
                # Lost: the senders were not told they were delivered, and a release is redone by
                # the reconciliation when Redis is back (this node no longer holds those IDs).
                log.warning("Redis write failed, %d room events lost: %s", len(batch), exc)
                for _, future in waiting:
                    self._answer(future, RoomUnavailable(str(exc)))
            finally:
                if not self._outbox:
                    self._wake.clear()
                    self._idle.set()

    async def call(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """``script``'s answer, run by the ordered writer: after this node's earlier writes (a claim after
        the release of the same ID, a take after the parking of its session), many in one round trip.
        Raises :class:`RoomUnavailable` when Redis fails or does not answer in time."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queue("call", (script, keys, args, future))
        try:
            return await asyncio.wait_for(future, COMMAND_TIMEOUT * 2)  # a batch in flight, then this one
        except TimeoutError:
            raise RoomUnavailable("the shared room's Redis did not answer") from None

    def _answer(self, future: asyncio.Future[Any], result: Any) -> None:
        """A script's answer to the join or resume waiting for it (a failure: the room is unavailable)."""
        if future.done():  # the caller gave up meanwhile (and undoes what it asked for, in order)
            return
        if isinstance(result, Exception):
            future.set_exception(result if isinstance(result, RoomUnavailable) else RoomUnavailable(str(result)))
        else:
            future.set_result(result)

    def _publish(self, pipe: Pipeline, events: list[tuple[str, str]]) -> None:
        """One event as it is; several queued in one turn as one JSON array of them (``[[...], [...]]``).

        One script call: messages go to the room log and the history stream too (see :mod:`.redis_lua`).
        """
        combined = events[0][1] if len(events) == 1 else "[" + ",".join(p for _, p in events) + "]"
        args: list[str | int] = [self.keys.channel, self.settings.history, combined]
        for kind, payload in events:
            args += (kind, payload)
        self.run_in(pipe, self.publish_script, [self.keys.history], args)
