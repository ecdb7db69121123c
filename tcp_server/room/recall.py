"""The embedded history and session store: in this process, bounded in count and bytes.

What survives what: both live as long as the server process (a restart forgets
them). A multi-node store (Redis) takes their place behind the same seam.
"""

from __future__ import annotations

import asyncio
import heapq
import secrets
from collections import deque
from collections.abc import Callable

from tcp_server.protocol.frames import Message, ServerFrame, WhisperMessage
from tcp_server.protocol.session import RoomFrame

from .base import Resumable

FRAME_OVERHEAD = 16
"""Bytes counted per kept frame beyond its fields (the object, the code, separators): a bound, not a measure."""


def frame_size(frame: ServerFrame) -> int:
    """What a kept frame costs against a byte bound."""
    return FRAME_OVERHEAD + sum(len(value.encode()) for value in frame.fields())


class InMemoryHistory:
    """The last ``limit`` messages to all, and no more than ``max_bytes`` of them."""

    __slots__ = ("limit", "max_bytes", "bytes", "_frames")

    def __init__(self, limit: int, max_bytes: int) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.bytes = 0
        self._frames: deque[tuple[Message, int]] = deque()

    def add(self, frame: Message) -> None:
        size = frame_size(frame)
        frames = self._frames
        frames.append((frame, size))
        self.bytes += size
        while frames and (len(frames) > self.limit or self.bytes > self.max_bytes):
            self.bytes -= frames.popleft()[1]

    def recent(self) -> list[Message]:
        return [frame for frame, _ in self._frames]

    def __len__(self) -> int:
        return len(self._frames)


class _Session:
    """A session; while parked, where it left the room's log and the frames that are its own."""

    __slots__ = ("name", "address", "token", "timer", "start", "start_bytes", "own", "own_bytes", "version", "adj")

    def __init__(self, name: str, address: str = "") -> None:
        self.name = name
        self.address = address  # where its connection came from: an address ban ends it while parked
        self.token: str | None = None
        self.timer: asyncio.TimerHandle | None = None  # set while parked
        self.start = 0  # the room log's position when it parked: it misses what comes from there
        self.start_bytes = 0  # the room log's byte count then
        # Its own frames, each with the log position it goes before: the unsent ones at parking
        # (before everything), then whispers to it (after the room frames logged before them).
        self.own: list[tuple[int, ServerFrame]] = []
        self.own_bytes = 0
        self.version = 0  # its bound entries in the heaps below with another version are stale
        self.adj = 0  # its position (counted frames it was sent) is the store's room count plus this


class InMemorySessionStore:
    """Sessions by ID key, tokens by value; a parked session keeps at most ``max_frames``/``max_bytes``.

    The room's frames are kept once, in one log from the oldest parked session on, whatever
    the number of parked sessions: a message costs one append, not one per parked session (a
    gateway's restart parks every page at once). Each parked session keeps only where it
    left the log and its own frames; it passes its bound when the log grows past a point known
    when it parked (or got a whisper), so two heaps of those points find, per message, only
    the sessions that end.

    **Positions.** Every session, live or parked, has a position: how many counted frames (room
    frames and whispers) it was sent since it joined. Keeping one counter per session would cost
    a step per member per message; instead the store counts room events once (``_count``) and a
    session keeps ``adj``, moved only by its own events (a frame it is excluded from: -1; a whisper
    to it: +1), so its position is ``_count + adj``. The last room frames and whispers sit in one
    window (``_window``, twice the resume bounds); a resume that names a position walks it back from
    the end, taking that session's frames until it has what follows the position, or refuses.
    """

    announces_takes = False  # a take is answered in the caller's turn: nothing can come between

    def __init__(self, grace: float, max_frames: int, max_bytes: int,
                 on_expire: Callable[[str, str], None] | None = None) -> None:
        self.grace = grace
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.on_expire = on_expire
        self._sessions: dict[str, _Session] = {}
        self._tokens: dict[str, str] = {}  # token -> key
        self._parked: dict[str, _Session] = {}  # in the order they parked: the first is the log's oldest reader
        self._log: deque[tuple[RoomFrame, str | None]] = deque()  # (frame, exclude), from position _base on
        self._base = 0
        self._end = 0  # the position after the last logged frame
        self._bytes = 0  # the bytes of every frame ever logged
        self._frame_limits: list[tuple[int, int, str]] = []  # (log end past which it ends, version, key)
        self._byte_limits: list[tuple[int, int, str]] = []  # (log bytes past which it ends, version, key)
        self._count = 0  # room events ever: a session's position is this plus its adj
        # The window: (frame, exclude, whisper target, size) of the last room frames and whispers to sessions.
        self._window: deque[tuple[ServerFrame, str | None, str | None, int]] = deque()
        self._window_bytes = 0
        self.window_frames = 2 * max_frames  # a session's own messages and others' whispers take room too
        self.window_bytes = 2 * max_bytes

    def issue(self, name: str, key: str, address: str = "") -> str:
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = _Session(name, address)
            session.adj = -self._count  # position 0: its first frame is the next one
        else:
            session.address = address or session.address  # (none given: a session given back keeps its own)
            if session.token is not None:
                self._tokens.pop(session.token, None)
        token = secrets.token_urlsafe(24)  # 192 bits
        session.token = token
        self._tokens[token] = key
        return token

    def park(self, key: str, unsent: list[ServerFrame]) -> bool:
        session = self._sessions.get(key)
        if session is None or session.token is None:
            return False
        loop = asyncio.get_running_loop()
        session.timer = loop.call_later(self.grace, self._expire, key)
        session.start, session.start_bytes = self._end, self._bytes
        session.own = [(self._end, frame) for frame in unsent]
        session.own_bytes = sum(frame_size(frame) for frame in unsent)
        self._parked.pop(key, None)  # (last in the parking order: the order of the log positions)
        self._parked[key] = session
        self._bound(key, session)  # past the bound already: this ends it (and its 104 is coming)
        return True

    async def take(self, token: str, ref: str = "", position: int | None = None) -> Resumable | None:
        key = self._tokens.pop(token, None)
        if key is None:
            return None
        session = self._sessions[key]
        session.token = None
        since: list[ServerFrame] | None = None
        if position is not None:
            since = self.since(key, position)
            if since is None:  # refused plainly: the session ends now, its 104 comes (never a short replay)
                parked = key in self._parked
                self.end(key)
                asyncio.get_running_loop().call_soon(self._expired, session.name, key)
                return Resumable(session.name, key, parked, [], gap=True)
        parked = self._parked.pop(key, None) is not None
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
        if since is not None:
            missed = since
        else:
            missed = self._missed(key, session) if parked else []
        session.own, session.own_bytes = [], 0
        self._trim()
        return Resumable(session.name, key, parked, missed)

    async def token_of(self, key: str) -> str | None:
        session = self._sessions.get(key)
        return session.token if session is not None else None

    def end(self, key: str) -> None:
        session = self._sessions.pop(key, None)
        if session is None:
            return
        if self._parked.pop(key, None) is not None:
            self._trim()
        if session.token is not None:
            self._tokens.pop(session.token, None)
        if session.timer is not None:
            session.timer.cancel()

    def end_banned(self, banned: Callable[[str, str], object]) -> list[str]:
        ended = []
        for key, session in list(self._parked.items()):
            if banned(key, session.address):
                self.end(key)
                self._expired(session.name, key)
                ended.append(session.name)
        return ended

    def room_event(self, frame: RoomFrame, exclude: str | None) -> None:
        self._count += 1
        if exclude is not None:
            mine = self._sessions.get(exclude)
            if mine is not None:
                mine.adj -= 1  # it is not sent this one
        self._remember(frame, exclude, None)
        if not self._parked:
            return
        self._log.append((frame, exclude))
        self._end += 1
        self._bytes += frame_size(frame)  # once, however many sessions are parked
        for limits, now in ((self._frame_limits, self._end), (self._byte_limits, self._bytes)):
            while limits and limits[0][0] < now:
                _, version, key = heapq.heappop(limits)
                session = self._parked.get(key)
                if session is not None and session.version == version:
                    self._overflow(key, session)

    def whisper(self, key: str, frame: WhisperMessage) -> None:
        mine = self._sessions.get(key)
        if mine is None:
            return
        mine.adj += 1
        self._remember(frame, None, key)
        session = self._parked.get(key)
        if session is not None:
            session.own.append((self._end, frame))
            session.own_bytes += frame_size(frame)
            self._bound(key, session)

    def parked(self) -> int:
        return len(self._parked)

    def position(self, key: str) -> int | None:
        """How many counted frames the session of ``key`` was sent (None: no session)."""
        session = self._sessions.get(key)
        return None if session is None else self._count + session.adj

    def since(self, key: str, position: int) -> list[ServerFrame] | None:
        """The session's frames after ``position``, in order; None if the window does not hold all of
        them, they pass the resume bounds, or the session was never sent that many."""
        now = self.position(key)
        if now is None:
            return None
        need = now - position
        if need < 0 or need > self.max_frames:
            return None
        out: list[ServerFrame] = []
        size = 0
        for frame, exclude, target, nbytes in reversed(self._window):
            if len(out) == need:
                break
            if (target != key) if target is not None else (exclude == key):
                continue  # a whisper to another, or a room frame it was not sent
            out.append(frame)
            size += nbytes
            if size > self.max_bytes:
                return None
        if len(out) < need:
            return None
        out.reverse()
        return out

    def _remember(self, frame: ServerFrame, exclude: str | None, target: str | None) -> None:
        """One entry in the window (once, however many sessions); the oldest go past its bounds."""
        if type(frame) is Message:  # the hot path: frame_size without its generator
            size = FRAME_OVERHEAD + len(frame.sender.encode()) + len(frame.message.encode())
        else:
            size = frame_size(frame)
        window = self._window
        window.append((frame, exclude, target, size))
        self._window_bytes += size
        while len(window) > self.window_frames or self._window_bytes > self.window_bytes:
            self._window_bytes -= window.popleft()[3]

    def kept(self) -> int:
        """Room frames kept for parked sessions: each once, however many sessions miss it."""
        return len(self._log)

    def is_parked(self, key: str) -> bool:
        return key in self._parked

    def parked_bytes(self, key: str) -> int:
        """What a parked session's kept frames count against ``max_bytes`` (0 if not parked)."""
        session = self._parked.get(key)
        return self._bytes - session.start_bytes + session.own_bytes if session is not None else 0

    def close(self) -> None:
        for session in self._parked.values():
            if session.timer is not None:
                session.timer.cancel()
        self._sessions.clear()
        self._tokens.clear()
        self._parked.clear()
        self._window.clear()
        self._window_bytes = 0
        self._trim()

    def _bound(self, key: str, session: _Session) -> None:
        """Where this session passes its bound, given what it holds now; past it already, it ends now."""
        frame_limit = session.start + self.max_frames - len(session.own)
        byte_limit = session.start_bytes + self.max_bytes - session.own_bytes
        if self._end > frame_limit or self._bytes > byte_limit:
            self._overflow(key, session)
            return
        session.version += 1
        heapq.heappush(self._frame_limits, (frame_limit, session.version, key))
        heapq.heappush(self._byte_limits, (byte_limit, session.version, key))

    def _overflow(self, key: str, session: _Session) -> None:
        # Past the bound: the session ends now (its resume gets bad-token), not in the caller's turn.
        self.end(key)
        asyncio.get_running_loop().call_soon(self._expired, session.name, key)

    def _missed(self, key: str, session: _Session) -> list[ServerFrame]:
        """Its own frames and the room's since it parked, in the order it would have had them."""
        out: list[ServerFrame] = []
        own = iter(session.own)
        mine = next(own, None)
        for position in range(session.start, self._end):
            while mine is not None and mine[0] <= position:
                out.append(mine[1])
                mine = next(own, None)
            frame, exclude = self._log[position - self._base]
            if exclude != key:
                out.append(frame)
        while mine is not None:
            out.append(mine[1])
            mine = next(own, None)
        return out

    def _trim(self) -> None:
        """Forget the log before its oldest parked reader (all of it, and the stale bounds, with nobody parked)."""
        if not self._parked:
            self._log.clear()
            self._base = self._end
            self._frame_limits.clear()
            self._byte_limits.clear()
            return
        oldest = next(iter(self._parked.values())).start
        log = self._log
        while self._base < oldest:
            log.popleft()
            self._base += 1

    def _expire(self, key: str) -> None:
        session = self._parked.get(key)
        if session is None:
            return
        self.end(key)
        self._expired(session.name, key)

    def _expired(self, name: str, key: str) -> None:
        if self.on_expire is not None:
            self.on_expire(name, key)

    def __len__(self) -> int:
        return len(self._sessions)
