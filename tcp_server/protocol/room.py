"""The room's rules: who is in, and who receives what.

Pure: members are anything with ``send(bytes)``; the room never waits for
them. A broadcast encodes its frame once and hands the same bytes to every
recipient, so fan-out costs one call per recipient and nothing more.

:class:`Room` is the interface the server's connections talk to; the in-memory
implementation serves one process, and a shared implementation (Redis, say)
can replace it for several nodes without touching connection code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .frames import encode_message, encode_whisper
from .ids import id_key


class Member(Protocol):
    """A joined connection, as the room sees it."""

    def send(self, data: bytes) -> None:
        """Queue one encoded frame; must not block."""


class Room(Protocol):
    """What a connection may ask of the room. Names are already normalised."""

    def join(self, member: Member, name: str) -> bool:
        """Add ``member`` as ``name`` unless taken; send 103/100/107. False if taken."""

    def leave(self, member: Member) -> str | None:
        """Remove ``member`` and send 104 to the others; its name, if it had joined."""

    def broadcast(self, member: Member, message: str) -> None:
        """Send 105 to every member but ``member``."""

    def whisper(self, member: Member, to: str, message: str) -> bool:
        """Send 106 to ``to``; False if nobody by that name is in."""

    def send_list(self, member: Member) -> None:
        """Send 107 to ``member``."""

    def users(self) -> list[str]:
        """Names in join order."""


Fanout = Callable[[bytes, "Member | None"], None]
"""``fanout(frame, exclude)``: hand ``frame`` to every member but ``exclude``, in order with what each gets."""


class InMemoryRoom:
    """The single-process room.

    With a ``fanout`` (the server passes its own), a frame for many members is
    handed over once and the I/O layer gives it to all of them in one write
    each: no Python work per recipient. Without one, the room sends to each
    member itself, which is what unit tests and simple embedders want.
    """

    __slots__ = ("_members", "_by_key", "_list_frame", "_fanout")

    def __init__(self, fanout: Fanout | None = None) -> None:
        self._fanout = fanout
        self._members: dict[Member, str] = {}  # insertion order = join order
        self._by_key: dict[str, Member] = {}
        # 107 kept encoded and extended on each join, so joins stay O(1) in Python
        # work; rebuilt lazily after a leave.
        self._list_frame: bytes | None = b"107\n"

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, name: str) -> bool:
        return id_key(name) in self._by_key

    def users(self) -> list[str]:
        return list(self._members.values())

    def name_of(self, member: Member) -> str | None:
        return self._members.get(member)

    def _user_list_frame(self) -> bytes:
        frame = self._list_frame
        if frame is None:
            frame = ("#".join(("107", *self._members.values())) + "\n").encode()
            self._list_frame = frame
        return frame

    def join(self, member: Member, name: str) -> bool:
        key = id_key(name)
        if key in self._by_key or member in self._members:
            return False
        notice = f"103#{name}\n".encode()
        if self._fanout is not None:
            self._fanout(notice, None)
        else:
            for other in self._members:
                other.send(notice)
        self._members[member] = name
        self._by_key[key] = member
        if self._list_frame is not None:
            self._list_frame = self._list_frame[:-1] + b"#" + name.encode() + b"\n"
        member.send(f"100#{name}\n".encode())
        member.send(self._user_list_frame())
        return True

    def leave(self, member: Member) -> str | None:
        name = self._members.pop(member, None)
        if name is None:
            return None
        del self._by_key[id_key(name)]
        self._list_frame = None
        notice = f"104#{name}\n".encode()
        if self._fanout is not None:
            self._fanout(notice, member)  # out of the room already; it must not get its own 104
        else:
            for other in self._members:
                other.send(notice)
        return name

    def broadcast(self, member: Member, message: str) -> None:
        name = self._members[member]
        data = encode_message(name, message)
        if self._fanout is not None:
            self._fanout(data, member)
            return
        for other in self._members:
            if other is not member:
                other.send(data)

    def whisper(self, member: Member, to: str, message: str) -> bool:
        target = self._by_key.get(id_key(to))
        if target is None:
            return False
        target.send(encode_whisper(self._members[member], message))
        return True

    def send_list(self, member: Member) -> None:
        member.send(self._user_list_frame())
