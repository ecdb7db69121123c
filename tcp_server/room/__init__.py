"""The room seam (directory, bus, history, sessions) and its implementations: see :mod:`.base`."""

from .base import (
    LATER,
    Bus,
    Directory,
    IdRegistered,
    Later,
    RecentHistory,
    Resumable,
    RoomUnavailable,
    SessionStore,
    Subscriber,
)
from .memory import InMemoryBus, InMemoryDirectory
from .recall import InMemoryHistory, InMemorySessionStore

__all__ = [
    "LATER", "Bus", "Directory", "RecentHistory", "InMemoryBus", "InMemoryDirectory", "InMemoryHistory",
    "IdRegistered", "InMemorySessionStore", "Later", "Resumable", "RoomUnavailable", "SessionStore", "Subscriber",
]
