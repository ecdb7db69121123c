"""The embedded history and session store: in this process, bounded in count and bytes.

What survives what: both live as long as the server process (a restart forgets
them). A multi-node store (Redis) takes their place behind the same seam.
"""

from __future__ import annotations

import asyncio
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
    __slots__ = ("name", "token", "missed", "bytes", "timer")

    def __init__(self, name: str) -> None:
        self.name = name
        self.token: str | None = None
        self.missed: list[ServerFrame] = []
        self.bytes = 0
        self.timer: asyncio.TimerHandle | None = None  # set while parked


class InMemorySessionStore:
    """Sessions by ID key, tokens by value; a parked session keeps at most ``max_frames``/``max_bytes``."""

    def __init__(self, grace: float, max_frames: int, max_bytes: int,
                 on_expire: Callable[[str, str], None] | None = None) -> None:
        self.grace = grace
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.on_expire = on_expire
        self._sessions: dict[str, _Session] = {}
        self._tokens: dict[str, str] = {}  # token -> key
        self._parked: dict[str, _Session] = {}

    def issue(self, name: str, key: str) -> str:
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = _Session(name)
        elif session.token is not None:
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
        self._parked[key] = session
        for frame in unsent:  # past the bound, this already ends it (and its 104 is coming)
            self._keep(key, session, frame, frame_size(frame))
        return True

    async def take(self, token: str) -> Resumable | None:
        key = self._tokens.pop(token, None)
        if key is None:
            return None
        session = self._sessions[key]
        session.token = None
        parked = self._parked.pop(key, None) is not None
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
        missed, session.missed, session.bytes = session.missed, [], 0
        return Resumable(session.name, key, parked, missed)

    def end(self, key: str) -> None:
        session = self._sessions.pop(key, None)
        if session is None:
            return
        self._parked.pop(key, None)
        if session.token is not None:
            self._tokens.pop(session.token, None)
        if session.timer is not None:
            session.timer.cancel()

    def room_event(self, frame: RoomFrame, exclude: str | None) -> None:
        if self._parked:
            size = frame_size(frame)  # once, however many sessions are parked
            for key, session in list(self._parked.items()):
                if key != exclude:
                    self._keep(key, session, frame, size)

    def whisper(self, key: str, frame: WhisperMessage) -> None:
        session = self._parked.get(key)
        if session is not None:
            self._keep(key, session, frame, frame_size(frame))

    def is_parked(self, key: str) -> bool:
        return key in self._parked

    def parked_bytes(self, key: str) -> int:
        """What a parked session's kept frames count against ``max_bytes`` (0 if not parked)."""
        session = self._parked.get(key)
        return session.bytes if session is not None else 0

    def close(self) -> None:
        for session in self._parked.values():
            if session.timer is not None:
                session.timer.cancel()
        self._sessions.clear()
        self._tokens.clear()
        self._parked.clear()

    def _keep(self, key: str, session: _Session, frame: ServerFrame, size: int) -> None:
        if len(session.missed) >= self.max_frames or session.bytes + size > self.max_bytes:
            # Past the bound: the session ends now (its resume gets bad-token), not in the caller's turn.
            self.end(key)
            asyncio.get_running_loop().call_soon(self._expired, session.name, key)
            return
        session.missed.append(frame)
        session.bytes += size

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
