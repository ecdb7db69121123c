"""History and resumable sessions in Redis (``--redis``): a resume may land on any node, history outlives nodes.

Design (the keys are listed in :mod:`.redis_lua`):

- **The room log.** Every room event and whisper is appended to one capped
  stream (``XADD MAXLEN ~``) by the same script that publishes it, and each
  publish carries its entry ID; each node remembers the last ID it received.
  That costs one ``XADD`` per event for the whole room, not per node nor per
  user. A parked session is a **cursor** into that stream, not a copy of frames:
  parking costs one script call, and a message costs nothing per parked session.
- **History** is a second capped stream holding messages only (``XADD MAXLEN ~ N``
  in the publish script), so its length counts messages, not joins. A Stream
  rather than a list with ``LTRIM``: entries carry their own time-ordered IDs,
  the same kind the log's cursors use, and a node that starts (or comes back
  after an outage) loads the last N in the transaction that loads the room, then
  skips whatever the channel brings that was already in the load. Each node
  keeps the loaded messages in an :class:`InMemoryHistory` fed from the channel,
  so a newcomer's ``111`` is read in the same turn as its entry into the fan-out
  (each message is history or live, never both). Bounds: N entries (Redis) and
  ``--history``/bytes in each node's copy; every entry is one bounded frame.
- **Sessions.** ``P sess:KEY`` holds name, token, node, parked, cursor; ``P tok:T``
  names the key (single use: ``take`` deletes it in the same script that moves
  the session and its ID to the taking node). For a resume without a position
  (an older client) the whispers to a parked session come from what the node
  that parked it (or adopted it from a dead node) keeps in ``P missed:KEY``, with
  the log ID they came after, so a resume merges them into the log's events in
  order (the log's own copies of whispers are skipped there). Counts and bytes are
  kept in the session; past either bound the session ends at the next sweep (its
  resume fails with ``bad-token``). Events replayed from the log count against the
  same bounds at ``take``; the log holds 2 × ``--resume-max-frames`` + 1 entries,
  so a cursor that fell off it is past its bound anyway.
- **Positions** (``008#TOKEN#POSITION``): a session's position is ``P room:n``
  (one ``INCR`` per logged room event, in the script that logs it) plus the
  ``adj`` of its ``P sess:KEY`` (-1 for an event it is not sent, +1 for a whisper
  to it: only the sender's or the target's session is touched). ``TAKE`` with a
  position walks the log back from its end, taking that session's frames until it
  has what follows the position, for a live session as for a parked one; the log
  holds twice the frame bound. Past it the session ends at once (its ``104`` in the
  same script) and the taker is told ``gap``; never a short replay.
- **Grace.** ``P parked`` scores each parked key by the end of its grace (Redis
  time). Every node's liveness loop runs one sweep script; the atomic ``ZREM``
  makes each expiry, its release and its ``104`` happen exactly once, whichever
  node runs it. A dead node's users with a session are parked by the reaper
  (instead of removed) from the log ID their node last reported in its heartbeat:
  frames after that may repeat on resume (at least once for a crash).
- **Taking.** ``TAKE`` runs in the node's ordered writer (after its own parking of
  that session) and announces ``["x", key, node, ref]`` on the channel right
  after the log entries it returns: the taking node lets its member in at that
  announcement (an :class:`tcp_server.local_room.Arrival`), so the missed frames
  and the live ones meet exactly there, however far behind the node's channel is.
  A whisper that reaches the parking node just before a take, but whose keeping
  script runs after it, is published again for the session's new holder (after
  the take's announcement: it comes live, a little later, not lost).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any, assert_never

from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from tcp_server.protocol.frames import Message, ServerFrame, ServerNotice, UserJoined, UserLeft, WhisperMessage
from tcp_server.protocol.session import RoomFrame
from tcp_server.protocol.table import parse_server, serialize

from . import redis_events as events
from . import redis_lua
from .base import Resumable, RoomUnavailable
from .recall import InMemoryHistory, frame_size
from .redis_link import RedisLink
from .redis_settings import COMMAND_TIMEOUT, entry_id

log = logging.getLogger("tcp_server.redis")


class RedisHistory(InMemoryHistory):
    """This node's copy of the room's history stream: loaded from Redis, then fed from the channel."""

    def load(self, frames: list[Message]) -> None:
        """The stream's last messages (at start, or after an outage) replace what was kept."""
        self._frames.clear()
        self.bytes = 0
        for frame in frames:
            self.add(frame)


def encode(frame: ServerFrame, key: str) -> str:
    """A frame kept for a parked session, as the channel's events spell it (times kept)."""
    if isinstance(frame, Message):
        return events.encode(events.RoomMessage(None, frame.sender, frame.message, frame.ts,
                                                1 if frame.account else None))
    if isinstance(frame, WhisperMessage):
        return events.encode(events.Whisper(key, frame.sender, frame.message, frame.ts))
    return events.encode(events.KeptFrame(serialize(frame).decode().rstrip("\n")))


def decode(raw: Any, key: str, whispers: bool = True) -> ServerFrame | None:
    """A kept frame or a logged room event, as the session ``key`` sees it (None: its own, not its, or none).

    ``whispers``: take the log's whispers to ``key`` (a resume from a position); without one, a
    parked session's whispers come from what its node kept, not from the log.
    """
    try:
        event = events.from_list(raw)
    except events.MalformedEvent as exc:
        log.warning("a malformed kept or logged event was skipped: %s", exc)
        return None
    match event:
        case events.RoomMessage(exclude, sender, text, ts, account):
            return None if exclude == key else Message(sender, text, ts, account=account == 1)
        case events.Whisper(to, sender, text, ts):
            return WhisperMessage(sender, text, ts) if whispers and to == key else None
        case events.Notice(text):
            return ServerNotice(text)
        case events.Joined(who, name, _, account):
            return None if who == key else UserJoined(name, account == 1)
        case events.Left(who, name):
            return None if who == key else UserLeft(name)
        case events.KeptFrame(line):
            return parse_server(line)
        case (events.Taken() | events.BansChanged() | events.MutesChanged() | events.Kick()
              | events.ForgetAuthor() | events.AccountChanged()):
            return None  # not in the log: nothing a session is sent
        case _:
            assert_never(event)


def merge(kept: list[str], events: list[str], key: str, whispers: bool = False) -> list[ServerFrame]:
    """Kept frames (``ID JSON``: the log ID they came after) merged into the log's events, in order.

    ``whispers``: the log's whispers to ``key`` are its own (a resume from a position, nothing kept).
    """
    logged = [(entry_id(ident), json.loads(text)) for ident, _, text in (e.partition(" ") for e in events)]
    out: list[ServerFrame] = []
    i = 0
    for entry in kept:
        ident, _, text = entry.partition(" ")
        after = entry_id(ident)
        while i < len(logged) and logged[i][0] <= after:
            _append(out, logged[i][1], key, whispers)
            i += 1
        _append(out, json.loads(text), key, True)
    for _, event in logged[i:]:
        _append(out, event, key, whispers)
    return out


def _append(out: list[ServerFrame], event: list[Any], key: str, whispers: bool) -> None:
    frame = decode(event, key, whispers)
    if frame is not None:
        out.append(frame)


class RedisSessionStore:
    """Sessions in Redis, resumable on any node (see the module's docstring for the design)."""

    announces_takes = True  # the TAKE script publishes ["x", key, node, ref] where its missed frames end

    def __init__(self, link: RedisLink, on_expire: Callable[[str, str], None] | None = None) -> None:
        self.link = link
        self.on_expire = on_expire  # unused: a sweep script ends sessions and announces their 104 itself
        self._issue = link.script(redis_lua.ISSUE)
        self._park = link.script(redis_lua.PARK)
        self._keep = link.script(redis_lua.KEEP)
        self._end = link.script(redis_lua.END)
        self._take = link.script(redis_lua.TAKE)  # by the writer: after this node's parking of the session
        self._end_banned_script = link.script(redis_lua.END_BANNED)
        self._tasks: set[asyncio.Task[None]] = set()
        self._mine: dict[str, str] = {}  # ID key -> ID: sessions live on this node
        self._parked: set[str] = set()  # parked on (or adopted by) this node: their whispers are kept here
        self._closed = False
        link.on_adopted = self._parked.update
        link.on_room_lost = self._room_lost

    @property
    def _prefix(self) -> str:
        return self.link.settings.prefix

    def _run(self, script: AsyncScript, keys: list[str], args: list[Any]) -> None:
        """Queued on the link's ordered writer: after every event this node published before it."""
        link = self.link
        link.queue("write", lambda pipe: link.run_in(pipe, script, keys, args))

    def issue(self, name: str, key: str, address: str = "") -> str:
        token = secrets.token_urlsafe(24)  # 192 bits
        self._mine[key] = name
        self._parked.discard(key)
        p = self._prefix
        self._run(self._issue, [f"{p}sess:{key}", f"{p}tok:{token}"], [p, key, name, token, self.link.node, address])
        return token

    def end_banned(self, banned: Callable[[str, str], object]) -> list[str]:
        """The sessions parked on (or adopted by) this node that ``banned`` matches end, a round trip from
        now: their addresses are in Redis (adopted ones were another node's). Every node runs this on
        every change of the bans, so each parked session is checked by the node that keeps it."""
        keys = list(self._parked)
        if keys and not self._closed:
            task = asyncio.get_running_loop().create_task(self._end_banned(keys, banned), name="end banned sessions")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return []

    async def _end_banned(self, keys: list[str], banned: Callable[[str, str], object]) -> None:
        link, p = self.link, self._prefix
        pipe = link.client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(f"{p}sess:{key}", "addr")
        try:
            addresses = await asyncio.wait_for(pipe.execute(), COMMAND_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("could not check parked sessions against the bans: %s", exc)
            return
        link.commands += len(keys)
        ended = [key for key, address in zip(keys, addresses, strict=True) if banned(key, str(address or ""))]
        if ended:
            log.info("a ban ends %d parked session(s)", len(ended))
            self._run(self._end_banned_script, [], [p, link.keys.channel, *ended])

    def park(self, key: str, unsent: list[ServerFrame]) -> bool:
        link = self.link
        if self._closed or key not in self._mine or not link.subscribed:
            return False
        del self._mine[key]
        self._parked.add(key)
        s = link.settings
        args: list[Any] = [key, link.node, link.last_id or "0-0", int(s.resume_grace * 1000),
                           s.resume_max_frames, s.resume_max_bytes]
        for frame in unsent:  # they came before the cursor
            args += (f"0-0 {encode(frame, key)}", frame_size(frame))
        p = self._prefix
        self._run(self._park, [f"{p}sess:{key}", f"{p}missed:{key}", link.keys.parked], args)
        return True

    async def take(self, token: str, ref: str = "", position: int | None = None) -> Resumable | None:
        link = self.link
        if not link.subscribed:
            raise RoomUnavailable("the shared room's Redis is not reachable")
        s = link.settings
        result = await link.call(self._take, [], [s.prefix, token, link.node, link.keys.channel,
                                                  s.resume_max_frames, s.resume_max_bytes, ref,
                                                  "" if position is None else position])
        if not result:
            return None
        kind, name, key = str(result[0]), str(result[1]), str(result[2])
        self._parked.discard(key)
        if kind == "gap":  # the script ended it and announced its 104
            self._mine.pop(key, None)
            link.mine.pop(key, None)
            return Resumable(name, key, False, [], gap=True)
        link.mine[key] = name  # the ID is this node's now
        count = int(result[3])
        kept = [str(e) for e in result[4:4 + count]]
        events = [str(e) for e in result[4 + count:]]
        return Resumable(name, key, kind == "parked", merge(kept, events, key, whispers=position is not None))

    async def token_of(self, key: str) -> str | None:
        link = self.link
        if not link.subscribed:
            raise RoomUnavailable("the shared room's Redis is not reachable")
        token = await asyncio.wait_for(link.client.hget(f"{self._prefix}sess:{key}", "token"), COMMAND_TIMEOUT)
        link.commands += 1
        return str(token) if token else None

    def end(self, key: str) -> None:
        self._mine.pop(key, None)
        self._parked.discard(key)
        p = self._prefix
        self._run(self._end, [], [p, key])

    def parked(self) -> int:
        return len(self._parked)  # parked on (or adopted by) this node

    def forget(self, key: str) -> None:
        """The session was resumed on another node: nothing of it is kept here."""
        self._mine.pop(key, None)
        self._parked.discard(key)

    def room_event(self, frame: RoomFrame, exclude: str | None) -> None:
        if exclude is not None and type(frame) is UserLeft and exclude in self._parked:
            # Its grace ended (a sweep released its ID): nothing of it is this node's any more.
            self._parked.discard(exclude)
            self.link.mine.pop(exclude, None)

    def whisper(self, key: str, frame: WhisperMessage) -> None:
        if key in self._parked:
            link, s, p = self.link, self.link.settings, self._prefix
            self._run(self._keep, [f"{p}sess:{key}", f"{p}missed:{key}", link.keys.parked],
                      [key, link.node, f"{link.last_id or '0-0'} {encode(frame, key)}", frame_size(frame),
                       s.resume_max_frames, s.resume_max_bytes, link.keys.channel])

    def _room_lost(self) -> None:
        """Redis restarted empty: the parked sessions are gone with it, so their IDs are not registered
        again (the room's reload then shows their leave); the live ones get fresh tokens on their next join."""
        for key in self._parked:
            self.link.mine.pop(key, None)
        self._parked.clear()

    def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        self._mine.clear()
        self._parked.clear()
