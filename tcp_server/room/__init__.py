"""The room seam (directory, bus, history, sessions) and its implementations: see :mod:`.base`."""

from .base import Bus, Directory, History, Resumable, RoomUnavailable, SessionStore, Subscriber
from .memory import InMemoryBus, InMemoryDirectory
from .recall import InMemoryHistory, InMemorySessionStore

__all__ = [
    "Bus", "Directory", "History", "InMemoryBus", "InMemoryDirectory", "InMemoryHistory", "InMemorySessionStore",
    "Resumable", "RoomUnavailable", "SessionStore", "Subscriber",
]
