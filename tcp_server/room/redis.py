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
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from tcp_server.protocol.frames import Message, ServerNotice, UserJoined, UserLeft, WhisperMessage
from tcp_server.protocol.ids import id_key
from tcp_server.protocol.session import RoomFrame

from . import redis_lua
from .base import LATER, Later, RoomUnavailable, Subscriber

if TYPE_CHECKING:
    from tcp_server.stats import ServerStats

log = logging.getLogger("tcp_server.redis")

COMMAND_TIMEOUT = 2.0
"""Seconds one Redis round trip may take before the room counts as unavailable."""
RETRY_PAUSE = 0.5
"""Seconds between attempts to reach Redis again."""
MAX_OUTBOX = 100_000
"""Publishes queued while Redis is slow; past it they are dropped (and logged), not hoarded."""
POOL_SIZE = 16
"""Redis connections a node may open (the channel, the writer, the liveness, resumes in flight):
past it a command waits for a free one (up to ``COMMAND_TIMEOUT``) instead of failing. Joins do not
count: they ride the writer's pipeline."""


LOGGED = frozenset(("m", "j", "l", "n", "w"))
"""Events that have an entry in the room log (their IDs head the channel's message, in order)."""
LOADED = frozenset(("m", "j", "l"))
"""Logged events whose effect a node's load of the room already holds (the others are delivered anyway)."""
"""The channel's events that are in the room log (see :mod:`.redis_lua`)."""


def entry_id(ident: str) -> tuple[int, int]:
    """A stream entry ID (``ms-seq``) as something that orders."""
    ms, _, seq = ident.partition("-")
    return int(ms), int(seq or 0)


def room_seq(place: tuple[int, int]) -> int:
    """A message's place in the room's order as one number (the durable store's ``seq``): from its log entry
    ID, which Redis assigns in publishing order and which keeps growing across a Redis restart (time-based)."""
    ms, n = place
    return (ms << 20) | min(n, (1 << 20) - 1)


def default_node_id(port: int) -> str:
    return f"{socket.gethostname()}:{port}"


@dataclass
class RedisSettings:
    """Where the shared room lives and who this node is."""

    url: str
    node_id: str | None = None  # default: hostname:port, known once the node listens
    prefix: str = "hanchat:"
    node_timeout: float = 15.0
    history: int = 0  # messages kept in the room's history stream (0: none)
    resume_grace: float = 0.0  # seconds a dropped session is kept (0: no resume)
    resume_max_frames: int = 1000  # what a parked session may miss, in frames...
    resume_max_bytes: int = 256 * 1024  # ...and in bytes
    ids: bool = False  # every message needs its log ID: its place in the room's order (a durable store)

    @property
    def log_cap(self) -> int:
        """Entries kept in the room log: enough for a parked session's bound (a cursor older than that is
        past its bound anyway); a short log when only history needs IDs."""
        if self.resume_grace > 0:
            # Whispers to others and a session's own messages are in it too: twice the bound (a
            # resume from a position walks it back; it is refused, never cut short, past its start).
            return 2 * self.resume_max_frames + 1
        return 1 if self.history > 0 or self.ids else 0


@dataclass
class _Keys:
    prefix: str
    node: str
    names: str = field(init=False)
    owner: str = field(init=False)
    order: str = field(init=False)
    seq: str = field(init=False)
    nodes: str = field(init=False)
    epoch: str = field(init=False)
    alive: str = field(init=False)
    held: str = field(init=False)
    channel: str = field(init=False)
    log: str = field(init=False)
    history: str = field(init=False)
    logcap: str = field(init=False)
    parked: str = field(init=False)
    seen: str = field(init=False)
    bans: str = field(init=False)
    mutes: str = field(init=False)

    def __post_init__(self) -> None:
        p = self.prefix
        self.names, self.owner, self.order, self.seq = p + "names", p + "owner", p + "order", p + "seq"
        self.nodes, self.channel, self.epoch = p + "nodes", p + "room", p + "epoch"
        self.alive, self.held = f"{p}alive:{self.node}", f"{p}users:{self.node}"
        self.log, self.history, self.logcap = p + "room:log", p + "room:history", p + "room:logcap"
        self.parked, self.seen, self.bans, self.mutes = p + "parked", p + "seen", p + "bans", p + "mutes"


class RedisLink:
    """This node's Redis: the command client, the ordered writer, the room channel and the node's liveness."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.node = settings.node_id or ""
        self.keys = _Keys(settings.prefix, self.node)
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
        self.expire_script = c.register_script(redis_lua.EXPIRE)
        self.last_id = ""  # the last room-log entry this node received ("" before it loaded the room)
        self.loaded_id: tuple[int, int] = (0, 0)  # events up to this one were in the load: skipped
        self.on_history: Callable[[list[Message]], None] | None = None  # the history stream, at each load
        self.on_adopted: Callable[[list[str]], None] | None = None  # dead nodes' sessions this node parks
        self.on_replaced: Callable[[str], None] | None = None  # a member's session resumed on another node
        self.on_bans: Callable[[list[dict[str, Any]]], None] | None = None  # the bans in Redis, at each (re)load
        self.on_mutes: Callable[[dict[str, float | None]], None] | None = None  # the mutes in Redis, likewise
        self.on_kick: Callable[[str, str], None] | None = None  # chat-admin kicked this node's member (key, reason)
        self.on_forget: Callable[[str], None] | None = None  # chat-admin erased an author's stored messages (key)
        self.stats: ServerStats | None = None  # the node's metrics: round trips, bus lag, live nodes
        self.on_room_lost: Callable[[], None] | None = None  # Redis restarted empty (before re-registering)
        self.mine: dict[str, str] = {}  # ID keys this node holds -> IDs, in join order
        self.on_lost: Callable[[str], None] | None = None  # a member whose place in the room is gone
        self.on_degraded: Callable[[], None] | None = None  # the room channel was lost (told once per outage)
        self.bus: RedisBus | None = None
        self.ready = asyncio.Event()  # set while the room channel is followed: the node knows the room
        self.ever_ready = False  # it was once: the node has started
        self._idle = asyncio.Event()  # set when the writer has nothing queued or in flight
        self._idle.set()
        self.commands = 0  # Redis commands sent (a pipeline counts each), for measuring
        self.reaper_rounds = 0  # dead-node checks done (tests wait on it)
        # In order: ("p", (kind, payload)), ("r", key), ("c", call), ("k", (script, keys, args, future)): see call()
        self._outbox: list[tuple[str, Any]] = []
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

    # ------------------------------------------------------------ lifecycle

    async def start(self, port: int) -> None:
        """Start following the room; when Redis is down the node starts anyway (joins refused until it is back).

        ``port``: the node's line port, for the default node ID.
        """
        self.node = self.settings.node_id or default_node_id(port)
        self.keys = _Keys(self.settings.prefix, self.node)
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

    @property
    def subscribed(self) -> bool:
        return self.ready.is_set()

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

    # ------------------------------------------------------------ the ordered writer

    def queue(self, kind: str, value: Any) -> None:
        """Fire and forget, in order: ``p`` publishes ``value`` (``(kind, payload)``) on the room channel,
        ``r`` releases key ``value``, ``c`` calls ``value(pipeline)`` (a session store's script);
        ``k`` runs a script and answers its future (see :meth:`call`)."""
        if not self._tasks:
            if kind == "k":
                value[3].set_exception(RoomUnavailable("the node is stopping"))
            return  # stopped
        if len(self._outbox) >= MAX_OUTBOX:
            log.warning("Redis is not keeping up: a room event was dropped")
            if kind == "k":  # a join or resume waits for this one: it is refused now, not at its timeout
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
                    if kind == "p":
                        run.append(value)
                        continue
                    if run:
                        self._publish(pipe, run)
                        run = []
                    if kind == "c":
                        value(pipe)
                    elif kind == "k":
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
        self.queue("k", (script, keys, args, future))
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

    # ------------------------------------------------------------ the room channel

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
                    if self.on_degraded is not None:
                        self.on_degraded()
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
        _, names, last, history, bans, mutes = await asyncio.wait_for(pipe.execute(), COMMAND_TIMEOUT)
        self.commands += 6
        self._bans_loaded(bans)
        self._mutes_loaded(mutes)
        self.last_id = str(last[0][0]) if last else "0-0"
        self.loaded_id = entry_id(self.last_id)
        if self.bus is not None:
            self.bus.load([str(n) for n in names])
        if self.on_history is not None and self.settings.history > 0:
            frames = []
            for _, fields in reversed(history):
                event = json.loads(fields["e"])
                frames.append(Message(event[2], event[3], event[4] if len(event) > 4 else None,
                                      account=len(event) > 5 and event[5] == 1))
            self.on_history(frames)

    # ------------------------------------------------------------ bans

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
            self._notify(pipe, ["b"])
        self.queue("c", write)

    def _notify(self, pipe: Pipeline, event: list[Any]) -> None:
        """An event for every node on the room channel, outside the room log (a resume does not replay it)."""
        self.commands += 1
        pipe.publish(self.keys.channel, f"- {time.time():.6f} {json.dumps(event, ensure_ascii=False)}")

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
            self._notify(pipe, ["u"])
        self.queue("c", write)

    def _mutes_loaded(self, values: dict[str, Any]) -> None:
        if self.on_mutes is None:
            return
        mutes: dict[str, float | None] = {}
        for key, value in values.items():
            try:
                until = json.loads(value)
                mutes[str(key)] = None if until is None else float(until)
            except (ValueError, TypeError):
                log.warning("a malformed mute in Redis was ignored: %r", str(value)[:200])
        self.on_mutes(mutes)

    def kick(self, key: str, reason: str) -> None:
        """``chat-admin kick`` of a member of another node: that node removes it (told why)."""
        self.queue("c", lambda pipe: self._notify(pipe, ["k", key, reason]))

    def forget_author(self, key: str) -> None:
        """``chat-admin history delete``: every node's window of recent messages forgets the author too."""
        self.queue("c", lambda pipe: self._notify(pipe, ["h", key]))

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
        if self.on_bans is None:
            return
        bans = []
        for value in values:
            try:
                bans.append(json.loads(value))
            except ValueError:
                log.warning("a malformed ban in Redis was ignored: %r", str(value)[:200])
        self.on_bans(bans)

    # ------------------------------------------------------------ liveness

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
        if self.on_lost is not None:
            self.on_lost(key)

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
        # The node: see Subscriber.joined; a fifth element marks an account's join (older nodes read four).
        payload = json.dumps(["j", key, name, link.node, *([1] if account else [])], ensure_ascii=False)
        # Through the ordered writer: a claim comes after this node's earlier releases (a user who
        # leaves and joins again is not told their own ID is taken), and a storm of joins shares
        # one round trip per batch.
        try:
            users = await link.call(link.claim_script,
                                    [k.names, k.owner, k.order, k.seq, k.held, f"{link.settings.prefix}sess:{key}"],
                                    [key, name, link.node, k.channel, payload,
                                     "1" if link.settings.resume_grace > 0 else "0"])
        except RoomUnavailable:
            link.queue("r", key)  # in case Redis took the claim before failing us: undone, in order
            raise
        if users is None:
            return None
        link.mine[key] = name
        return tuple(str(u) for u in users)

    def release(self, key: str) -> None:
        self.link.queue("r", key)


class RedisBus:
    """Room events through one Redis channel; this node's subscriber gets them in the channel's order.

    Joins and leaves are published by the directory's scripts (atomically with
    the claim or the release), so :meth:`publish` sends only messages.
    """

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        link.bus = self
        self._subscriber: Subscriber | None = None
        self.view: dict[str, str] = {}  # the room as this node knows it: ID key -> ID, in join order

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber
        for key, name in self.view.items():
            subscriber.room_event(UserJoined(name), key)

    def publish(self, frame: RoomFrame, exclude: str | None) -> None:
        if isinstance(frame, Message):  # the kind names who is not sent it: the sessions' positions
            event: list[Any] = ["m", exclude, frame.sender, frame.message, frame.ts]
            if frame.account:  # an account's message: a sixth element (older nodes read five)
                event.append(1)
            self.link.queue("p", ("m" if exclude is None else f"m {exclude}", json.dumps(event, ensure_ascii=False)))
        elif isinstance(frame, ServerNotice):  # chat-admin notice: to every node
            self.link.queue("p", ("n", json.dumps(["n", frame.text], ensure_ascii=False)))
        # UserJoined / UserLeft: already published by the claim / release script.

    def deliver(self, key: str, frame: WhisperMessage) -> None:
        self.link.queue("p", (f"w {key}", json.dumps(["w", key, frame.sender, frame.message, frame.ts],
                                                      ensure_ascii=False)))

    # ------------------------------------------------------------ from the channel

    def load(self, names: list[str]) -> None:
        """The room from Redis (at start, or after an outage): tell the subscriber only what changed."""
        fresh = {id_key(name): name for name in names}
        old = self.view
        self.view = fresh
        sub = self._subscriber
        if sub is None:
            return
        for key, name in old.items():
            if fresh.get(key) != name:  # gone, or someone else holds the ID now (another spelling)
                sub.room_event(UserLeft(name), key)
        for key, name in fresh.items():
            if old.get(key) != name:
                sub.room_event(UserJoined(name), key)

    def received(self, data: Any) -> None:
        """One event, or a batch of them, from the channel (``IDS TS JSON``, see :mod:`.redis_lua`).

        Each logged event (a message, a join, a leave) has its log ID in IDS, in order: this node's
        ``last_id`` moves as each is handled, so a whisper kept for a parked session knows exactly
        which logged events came before it.
        """
        link = self.link
        try:
            ident, stamp, text = str(data).split(" ", 2)
            if link.stats is not None:
                link.stats.bus_lag_seconds.observe(max(time.time() - float(stamp), 0.0))
            event = json.loads(text)
        except ValueError:
            log.exception("malformed room event %r", data)
            return
        ids = iter(() if ident == "-" else ident.split(","))
        for one in (event if event and isinstance(event[0], list) else (event,)):
            seq = None
            if one and one[0] in LOGGED:
                logged = next(ids, None)
                if logged is not None:
                    place = entry_id(logged)
                    if place > link.loaded_id:
                        link.last_id = logged
                        seq = room_seq(place)
                    elif one[0] in LOADED:
                        continue  # already in the load
            self._dispatch(one, seq)

    def _dispatch(self, event: Any, seq: int | None = None) -> None:
        try:
            kind = event[0]
            sub = self._subscriber
            if kind == "m":
                if sub is not None:
                    sub.room_event(Message(event[2], event[3], event[4] if len(event) > 4 else None, seq,
                                           account=len(event) > 5 and event[5] == 1), event[1])
            elif kind == "w":
                if sub is not None:
                    sub.whisper(event[1], WhisperMessage(event[2], event[3], event[4] if len(event) > 4 else None))
            elif kind == "n":
                if sub is not None:
                    sub.room_event(ServerNotice(event[1]), None)
            elif kind == "b":
                self.link.reload_bans()
            elif kind == "u":
                self.link.reload_mutes()
            elif kind == "h":
                if self.link.on_forget is not None:
                    self.link.on_forget(event[1])
            elif kind == "k":
                if event[1] in self.view and self.link.on_kick is not None:
                    self.link.on_kick(event[1], event[2])
            elif kind == "x":
                if event[2] != self.link.node:
                    self.link.mine.pop(event[1], None)
                    if self.link.on_replaced is not None:
                        self.link.on_replaced(event[1])
                elif sub is not None and len(event) > 3:
                    sub.joined(event[3], event[1])  # this node's take: the resumed member takes the room from here
            elif kind == "j":
                key, name = event[1], event[2]
                if key not in self.view:  # already there: the load saw it
                    self.view[key] = name
                    if sub is not None:
                        sub.room_event(UserJoined(name, len(event) > 4 and event[4] == 1), key)
                if sub is not None and len(event) > 3 and event[3] == self.link.node:
                    sub.joined(key, key)  # this node's claim: its joiner takes the room from here
            elif kind == "l":
                key, name = event[1], event[2]
                if self.view.pop(key, None) is not None and sub is not None:
                    sub.room_event(UserLeft(name), key)
            else:
                log.warning("unknown room event %r", kind)
        except (ValueError, IndexError, TypeError, KeyError):
            log.exception("malformed room event %r", event)


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
