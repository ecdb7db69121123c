"""The seam between one server node and the room it serves: a directory and a bus.

What is one room in one process must be split so that a second implementation
(several nodes sharing Redis) can take its place without touching connection code:

- the **directory** decides who holds which ID (an async claim, since a shared
  directory needs a round trip) and keeps the user list in join order;
- the **bus** carries room events (a message, a join, a leave, a whisper) to
  every node; each node's subscriber (:class:`tcp_server.local_room.LocalRoom`)
  fans them out to its own connections and keeps its roster from them.

ARCHITECTURE.md draws the path of one message across this seam.
"""

from __future__ import annotations

from typing import Protocol

from tcp_server.protocol.frames import WhisperMessage
from tcp_server.protocol.session import RoomFrame


class RoomUnavailable(Exception):
    """The room cannot be reached right now (a shared directory's store is down): the join is refused."""


class Directory(Protocol):
    """Who holds which ID, across every node."""

    async def claim(self, name: str, key: str) -> tuple[str, ...] | None:
        """Take ``name`` (unique by ``key``); everyone in the room in join order (``name`` last), or None if taken.

        Raises :class:`RoomUnavailable` when the directory cannot answer.
        """

    def release(self, key: str) -> None:
        """``key`` is free again. Fire and forget: an implementation that needs a round trip queues it."""


class Subscriber(Protocol):
    """A node's side of the bus: what it does with each room event."""

    def room_event(self, frame: RoomFrame, exclude: str | None) -> None:
        """A frame for every member but the one whose ID key is ``exclude``."""

    def whisper(self, key: str, frame: WhisperMessage) -> None:
        """A frame for the member whose ID key is ``key``, if it is connected to this node."""


class Bus(Protocol):
    """Room events to every node, in order per publisher."""

    def subscribe(self, subscriber: Subscriber) -> None:
        """This node's subscriber (one per node)."""

    def publish(self, frame: RoomFrame, exclude: str | None) -> None:
        """Fire and forget, in order."""

    def deliver(self, key: str, frame: WhisperMessage) -> None:
        """A whisper to the user whose ID key is ``key``."""
