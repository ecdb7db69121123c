"""One connection's protocol state machine, pure (h11 style).

The I/O layer feeds it parsed frames (or the decoder's errors); it answers
through ``member.send`` and the room, and tells the I/O layer what to do with
the connection by its return value.
"""

from __future__ import annotations

import hmac
from enum import Enum, auto
from typing import Union

from .codes import ErrorReason, OutputFormat
from .frames import (
    Broadcast,
    ClientFrame,
    FrameError,
    GatewayHello,
    IdTaken,
    Join,
    Leave,
    ListUsers,
    NoSuchUser,
    Ping,
    Pong,
    SetFormat,
    Whisper,
    encode_error,
    serialize,
)
from .ids import InvalidId, id_key, normalize_id
from .room import Member, Room

_IDTAKEN = serialize(IdTaken())
_LEFT = b"102\n"


class Outcome(Enum):
    """What the I/O layer does after a frame."""

    CONTINUE = auto()
    CLOSE = auto()
    """Flush what was sent, then close (after 102, or a refused 000)."""
    JOINED = auto()
    GATEWAY = auto()
    """A trusted gateway named the real address: see ``Session.address``."""
    FORMAT = auto()
    """The peer chose what the server writes to it: see ``Session.output``."""


class Session:
    """Protocol state for one connection: joined or not, and as whom."""

    __slots__ = ("room", "member", "gateway_secret", "name", "key", "address", "output", "_was_gateway")

    def __init__(self, room: Room, member: Member, address: str, gateway_secret: str | None = None) -> None:
        self.room = room
        self.member = member
        self.gateway_secret = gateway_secret
        self.name: str | None = None
        self.key: str | None = None
        self.address = address
        self.output = OutputFormat.FRAMES
        self._was_gateway = False

    @property
    def joined(self) -> bool:
        return self.name is not None

    def error(self, reason: ErrorReason, detail: str) -> None:
        self.member.send(encode_error(reason, detail))

    def handle(self, item: Union[ClientFrame, FrameError]) -> Outcome:
        """Apply one frame (or decoding error) from the peer."""
        if isinstance(item, Broadcast):
            if self._check_sender(item.id):
                self.room.broadcast(self.member, item.message)
            return Outcome.CONTINUE
        if isinstance(item, FrameError):
            self.error(item.reason, item.detail)
            return Outcome.CONTINUE
        if isinstance(item, Whisper):
            if self._check_sender(item.id) and not self.room.whisper(self.member, item.to, item.message):
                self.member.send(serialize(NoSuchUser(item.to)))
            return Outcome.CONTINUE
        if isinstance(item, Ping):
            self.member.send(serialize(Pong(item.token)))
            return Outcome.CONTINUE
        if isinstance(item, ListUsers):
            if self._check_sender(item.id):
                self.room.send_list(self.member)
            return Outcome.CONTINUE
        if isinstance(item, Join):
            return self._join(item.id)
        if isinstance(item, Leave):
            if not self._check_sender(item.id):
                return Outcome.CONTINUE
            self.member.send(_LEFT)
            self.room.leave(self.member)
            self.name = self.key = None
            return Outcome.CLOSE
        if isinstance(item, GatewayHello):
            return self._gateway(item)
        if isinstance(item, SetFormat):
            if self.name is not None:
                self.error(ErrorReason.ALREADY_JOINED, "007 must come before 001")
                return Outcome.CONTINUE
            self.output = item.format
            return Outcome.FORMAT
        raise TypeError(f"not a client frame: {item!r}")  # pragma: no cover

    def _check_sender(self, sender: str) -> bool:
        if self.key is None:
            self.error(ErrorReason.NOT_JOINED, "send 001#ID first")
            return False
        if sender != self.name and id_key(sender) != self.key:
            self.error(ErrorReason.ID_MISMATCH, f"you are {self.name}")
            return False
        return True

    def _join(self, raw: str) -> Outcome:
        if self.name is not None:
            self.error(ErrorReason.ALREADY_JOINED, f"you are {self.name}")
            return Outcome.CONTINUE
        try:
            name = normalize_id(raw)
        except InvalidId as exc:
            self.error(ErrorReason.BAD_ID, str(exc))
            return Outcome.CONTINUE
        if not self.room.join(self.member, name):
            self.member.send(_IDTAKEN)
            return Outcome.CONTINUE
        self.name = name
        self.key = id_key(name)
        return Outcome.JOINED

    def _gateway(self, hello: GatewayHello) -> Outcome:
        secret = self.gateway_secret
        if (
            not secret
            or self.name is not None
            or self._was_gateway
            or not hmac.compare_digest(hello.secret.encode(), secret.encode())
        ):
            self.error(ErrorReason.FORBIDDEN, "000 is only for a trusted gateway, before 001")
            return Outcome.CLOSE
        self._was_gateway = True
        self.address = hello.address
        return Outcome.GATEWAY

    def drop(self) -> str | None:
        """The connection is gone: leave the room (others get 104). The name it had."""
        name = self.name
        if name is not None:
            self.room.leave(self.member)
            self.name = self.key = None
        return name
