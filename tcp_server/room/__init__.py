"""The room seam (directory + bus) and its implementations: see :mod:`.base`."""

from .base import Bus, Directory, RoomUnavailable, Subscriber
from .memory import InMemoryBus, InMemoryDirectory

__all__ = ["Bus", "Directory", "InMemoryBus", "InMemoryDirectory", "RoomUnavailable", "Subscriber"]
