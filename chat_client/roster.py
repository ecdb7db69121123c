"""Who is online, as far as this client knows: kept from 100, 103, 104 and 107.

Only used for completion, so it needs no server round trip of its own.
"""

from __future__ import annotations

from tcp_server.protocol.frames import Joined, ServerFrame, UserJoined, UserLeft, UserList
from tcp_server.protocol.ids import id_key


class Roster:
    """Online IDs in join order, unique case-insensitively like the server's."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}  # id_key -> ID as shown

    def apply(self, frame: ServerFrame) -> None:
        """Update from one server frame; other frames leave it unchanged."""
        if isinstance(frame, UserList):
            self._names = {id_key(name): name for name in frame.ids}
        elif isinstance(frame, Joined):
            self._names = {id_key(frame.id): frame.id}  # a 107 follows with everyone
        elif isinstance(frame, UserJoined):
            self._names[id_key(frame.id)] = frame.id
        elif isinstance(frame, UserLeft):
            self._names.pop(id_key(frame.id), None)

    def clear(self) -> None:
        self._names.clear()

    def names(self) -> list[str]:
        return list(self._names.values())

    def others(self, me: str | None) -> list[str]:
        """Everyone but ``me``: whom completion offers after ``/m``."""
        mine = id_key(me) if me else None
        return [name for key, name in self._names.items() if key != mine]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and id_key(name) in self._names
