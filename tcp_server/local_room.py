"""This node's part of the room: its members, its roster, the fan-out log and its paced flushes.

The bus hands every room event to :meth:`LocalRoom.room_event` (it is the
node's :class:`tcp_server.room.Subscriber`): one append to the fan-out log,
whatever the number of members. A flush then writes each member's part of the
log, encoded once per encoder for all of them, in one write per member.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from tcp_server.protocol.encoders import Encoder
from tcp_server.protocol.frames import AccountList, Message, ServerFrame, WhisperMessage
from tcp_server.protocol.roster import Roster
from tcp_server.protocol.session import RoomFrame

from .fanout import Cursor, FanoutLog
from .room.base import RecentHistory, SessionStore
from .stats import ServerStats

# Flush pacing. A flush costs one write per member with output, so a join into
# a room of thousands (a 103 to every member) or a message to it costs that many
# syscalls. When a flush took FLUSH_PAUSE_FROM or more, the next one waits half
# as long as it took (at most FLUSH_PAUSE_MAX): the input arriving meanwhile
# (more joins, more messages) then shares one write per member instead of each
# event paying for a round of writes of its own. A 5,000-user join storm went
# from 92 s to 2 s with this and the shared fan-out log (BENCHMARKS.md). Cheap
# flushes, i.e. rooms of a few hundred, still run at the end of the same turn.
FLUSH_PAUSE_FROM = 0.002
FLUSH_PAUSE_SCALE = 0.5
FLUSH_PAUSE_MAX = 0.050

ARRIVAL_TIMEOUT = 5.0
"""Seconds a shared store's claim or resume may wait for its own echo on the bus."""


class Arrival:
    """A join (a claim) or a resume (a take) this node asked a shared store for, until the joiner enters.

    The store's answer and the bus's events travel apart. From the request's echo on the bus
    (:meth:`LocalRoom.entered`) the room's frames are kept here for the joiner, with the history as
    it stood then: it enters when the answer is there too, and gets exactly what followed its
    join or resume, whichever of the two came first.
    """

    __slots__ = ("echoed", "key", "frames", "history", "users", "oldest")

    def __init__(self) -> None:
        self.echoed = asyncio.Event()
        self.key: str | None = None  # the ID key, from the echo on (a resume names it only then)
        self.frames: list[ServerFrame] = []
        self.history: list[Message] = []
        self.users: tuple[str, ...] = ()  # the room at the echo (a resume's 107)
        self.oldest: int | None = None  # with a durable store: the room's number of the history's oldest line


@runtime_checkable
class Numbered(Protocol):
    """A history that knows each line's place in the room's order (the durable store's window)."""

    def oldest_seq(self) -> int:
        """The number of the oldest line kept (of the next message when none is)."""


class Member(Protocol):
    """A connection in the room, as the room sees it."""

    encoder: Encoder
    cursor: Cursor | None

    def send(self, frame: ServerFrame) -> None:
        """Queue one frame for this member alone (after what the log already holds for it)."""

    def catch_up(self) -> None:
        """Move the log's frames this member has not had into its own queue, ahead of what comes next."""

    def flush(self) -> None:
        """Write everything queued (its part of the log first)."""

    def take_log(self, chunks: list[bytes], pos: int, shared: bytes) -> None:
        """A flush's encoded log from ``pos`` on (``shared``: all of it joined, for shareable encoders)."""

    def replaced(self, detail: str = ...) -> None:
        """Another connection resumed this member's session (or logged in to its account): leave quietly,
        tell the peer, close."""


class LocalRoom:
    """The room's members on this node, and the fan-out to them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stats: ServerStats | None = None,
                 history: RecentHistory | None = None, sessions: SessionStore | None = None) -> None:
        self.loop = loop
        self.stats = stats if stats is not None else ServerStats()
        self.history = history  # fed here, in the same turn as the log: a newcomer gets each message once
        self.sessions = sessions  # keeps what parked sessions miss
        self.roster = Roster()  # the whole room, as the bus told this node
        self.log = FanoutLog()
        self.members: dict[str, Member] = {}  # ID key -> member on this node
        self._groups: dict[Encoder, dict[Member, None]] = {}  # members by encoder, for the once-per-encoder memo
        self.arriving: dict[str, Arrival] = {}  # ref (see expect) -> a claim or take of this node, not entered yet
        self._dirty: list[Member] = []
        self._flush_handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._flushed_at = 0.0  # loop time when the last flush ended
        self._flush_pause = 0.0  # how long the next flush waits after that

    # ------------------------------------------------------------ membership

    def enter(self, key: str, member: Member) -> None:
        """``member`` joined as ``key``: it takes the log from here on."""
        member.cursor = self.log.cursor()
        self.members[key] = member
        self._groups.setdefault(member.encoder, {})[member] = None

    def exit(self, key: str | None, member: Member) -> None:
        """``member`` left or is gone: no more of the log for it."""
        if key is not None and self.members.get(key) is member:
            del self.members[key]
        group = self._groups.get(member.encoder)
        if group is not None:
            group.pop(member, None)
        member.cursor = None

    def account_registered(self, key: str, name: str) -> None:
        """``key``'s online holder registered it (``019``, on any node): every member but the holder (who has
        its ``130``) is told ``132#ID`` at once, not counted (a resume's ``132`` says it again); once."""
        roster = self.roster
        if roster.name_of(key) is None or roster.is_account(key):
            return
        roster.mark_account(key)
        frame = AccountList((roster.name_of(key) or name,))
        for member_key, member in self.members.items():
            if member_key != key:
                member.send(frame)

    def expect(self, ref: str) -> Arrival | None:
        """A shared store's claim (``ref``: the ID key) or take (a reference of its own) starts here;
        None: one with this reference is already on its way from this node."""
        if ref in self.arriving:
            return None
        arrival = self.arriving[ref] = Arrival()
        return arrival

    def arrived(self, ref: str) -> None:
        """The store answered (or failed): the joiner enters now, or not at all; nothing more is kept."""
        self.arriving.pop(ref, None)

    # ------------------------------------------------------------ the bus's subscriber

    def entered(self, ref: str, key: str) -> None:
        arrival = self.arriving.get(ref)
        if arrival is not None and not arrival.echoed.is_set():
            arrival.key = key
            arrival.history = self.history.recent() if self.history is not None else []
            arrival.oldest = self.history.oldest_seq() if isinstance(self.history, Numbered) else None
            arrival.users = self.roster.user_list().ids
            arrival.echoed.set()

    def room_event(self, frame: RoomFrame, exclude: str | None) -> None:
        """One append for every member; ``exclude`` (the sender, or the one who joined) skips it."""
        if type(frame) is Message:  # the hot path: a message changes no roster
            if self.history is not None:
                self.history.add(frame)
        else:
            self.roster.apply(frame)
        if self.sessions is not None:
            self.sessions.room_event(frame, exclude)
        if self.arriving:
            for arrival in self.arriving.values():
                if arrival.key is not None and arrival.key != exclude:  # echoed: it keeps what follows
                    arrival.frames.append(frame)
        log = self.log
        sender = self.members.get(exclude) if exclude is not None else None
        cursor = sender.cursor if sender is not None else None
        if sender is not None and cursor is not None:
            sender.catch_up()  # what the log held for it comes before its own next frame
            log.append(frame)
            log.skip(cursor)
        else:
            log.append(frame)
        if self._flush_handle is None:
            self._schedule_flush()

    def whisper(self, key: str, frame: WhisperMessage) -> None:
        sessions = self.sessions
        member = self.members.get(key)
        if member is not None:
            member.send(frame)
            if sessions is not None:
                sessions.whisper(key, frame)  # in its window: a resume may need it even though it was sent
            return
        # (an arrival has its key from its echo on: it keeps what comes after)
        arrival = next((a for a in self.arriving.values() if a.key == key), None) if self.arriving else None
        if arrival is not None:
            arrival.frames.append(frame)
        elif sessions is not None:
            sessions.whisper(key, frame)

    # ------------------------------------------------------------ flushing

    def mark_dirty(self, member: Member) -> None:
        """``member`` has output: flush it (with all others) at the end of this turn, or paced (see above)."""
        self._dirty.append(member)
        if self._flush_handle is None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_pause:
            self._flush_handle = self.loop.call_at(self._flushed_at + self._flush_pause, self.flush)
        else:
            self._flush_handle = self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_handle = None
        dirty = self._dirty
        self._dirty = []
        loop = self.loop
        start = loop.time()
        for member in dirty:
            member.flush()  # takes its part of the log first, so its own frames keep their place
        log = self.log
        deliveries = nbytes = 0
        if log.entries:
            n = len(log.entries)
            gen = log.gen
            for encoder, group in self._groups.items():
                if not group:
                    continue
                chunks = log.encoded(encoder)
                shared = b"".join(chunks) if encoder.shareable else b""
                whole = 0  # members that take all of the log: counted once below
                for member in list(group):
                    cursor = member.cursor
                    if cursor is None:
                        continue
                    if cursor.gen != gen:  # took nothing of this flush's log yet: all of it, the shared bytes
                        whole += 1
                        member.take_log(chunks, 0, shared)
                    elif cursor.pos < n:  # took its own part already (a sender catching up)
                        pos = cursor.pos
                        member.take_log(chunks, pos, shared)
                        deliveries += n - pos
                        nbytes += sum(map(len, chunks[pos:]))
                deliveries += whole * n
                nbytes += whole * (len(shared) if shared else sum(map(len, chunks)))
            log.reset()
        end = self._flushed_at = loop.time()
        cost = end - start
        self.stats.flushed(cost, deliveries, nbytes)
        self._flush_pause = min(cost * FLUSH_PAUSE_SCALE, FLUSH_PAUSE_MAX) if cost >= FLUSH_PAUSE_FROM else 0.0

    def close(self) -> None:
        """Write whatever is pending now (shutdown)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.flush()
