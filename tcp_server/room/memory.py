"""The embedded room: one process, no round trips (the default; ``./run.sh`` needs nothing else)."""

from __future__ import annotations

from tcp_server.protocol.frames import WhisperMessage
from tcp_server.protocol.session import RoomFrame

from .base import Subscriber


class InMemoryDirectory:
    """IDs held in this process, in join order."""

    __slots__ = ("_names",)

    def __init__(self) -> None:
        self._names: dict[str, str] = {}  # key -> ID, insertion order = join order

    def try_claim(self, name: str, key: str, account: bool = False) -> tuple[str, ...] | None:
        names = self._names
        if key in names:
            return None
        names[key] = name
        return tuple(names.values())

    async def claim(self, name: str, key: str, account: bool = False) -> tuple[str, ...] | None:
        return self.try_claim(name, key)

    def release(self, key: str) -> None:
        self._names.pop(key, None)

    def __len__(self) -> int:
        return len(self._names)


class InMemoryBus:
    """Events go straight to the one subscriber, in the caller's turn."""

    __slots__ = ("_subscriber",)

    def __init__(self) -> None:
        self._subscriber: Subscriber | None = None

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscriber = subscriber

    def publish(self, frame: RoomFrame, exclude: str | None) -> None:
        if self._subscriber is not None:
            self._subscriber.room_event(frame, exclude)

    def deliver(self, key: str, frame: WhisperMessage) -> None:
        if self._subscriber is not None:
            self._subscriber.whisper(key, frame)
