"""Who is online, in join order, kept from the room's frames (100, 103, 104, 107).

Pure, and shared: a server node keeps one from the room events its bus delivers
(it answers ``005`` and finds a whisper's target without asking anyone), and the
terminal client keeps one from what the server sends it (for completion).
IDs are unique by :func:`id_key`, like the directory's claims.
"""

from __future__ import annotations

from .frames import AccountList, Joined, ServerFrame, UserJoined, UserLeft, UserList
from .ids import id_key


class Roster:
    """Online IDs in join order, unique by their key; which of them are accounts (logged in)."""

    __slots__ = ("_names", "_list", "_accounts")

    def __init__(self) -> None:
        self._names: dict[str, str] = {}  # id_key -> ID as shown
        self._list: UserList | None = UserList(())  # the 107 for the current names, made at most once
        self._accounts: set[str] = set()  # the keys of those that logged in (103 with account, 132)

    def apply(self, frame: ServerFrame) -> None:
        """Update from one server frame; other frames leave it unchanged."""
        if isinstance(frame, UserList):
            self._names = {id_key(name): name for name in frame.ids}
            self._accounts.intersection_update(self._names)  # (a 132 follows with the accounts)
        elif isinstance(frame, Joined):
            self._names = {id_key(frame.id): frame.id}  # a 107 follows with everyone
            self._accounts.clear()
        elif isinstance(frame, UserJoined):
            key = id_key(frame.id)
            self._names[key] = frame.id
            if frame.account:
                self._accounts.add(key)
            else:
                self._accounts.discard(key)
        elif isinstance(frame, UserLeft):
            key = id_key(frame.id)
            self._names.pop(key, None)
            self._accounts.discard(key)
        elif isinstance(frame, AccountList):
            self._accounts.update(key for key in map(id_key, frame.ids) if key in self._names)
            return
        else:
            return
        self._list = None

    def clear(self) -> None:
        self._names.clear()
        self._accounts.clear()
        self._list = None

    def is_account(self, key: str) -> bool:
        return key in self._accounts

    def mark_account(self, key: str) -> None:
        """An online guest registered its ID (``019``)."""
        if key in self._names:
            self._accounts.add(key)

    def account_list(self) -> AccountList:
        """The ``132`` for the accounts online, in join order."""
        if not self._accounts:
            return AccountList(())
        return AccountList(tuple(name for key, name in self._names.items() if key in self._accounts))

    def name_of(self, key: str) -> str | None:
        return self._names.get(key)

    def names(self) -> list[str]:
        return list(self._names.values())

    def user_list(self) -> UserList:
        """The ``107`` for everyone online (the same object until someone joins or leaves)."""
        frame = self._list
        if frame is None:
            frame = self._list = UserList(tuple(self._names.values()))
        return frame

    def others(self, me: str | None) -> list[str]:
        """Everyone but ``me``: whom the client's completion offers after ``/m``."""
        mine = id_key(me) if me else None
        return [name for key, name in self._names.items() if key != mine]

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and id_key(name) in self._names
