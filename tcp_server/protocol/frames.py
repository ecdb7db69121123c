"""Frames of wire protocol v1: one dataclass per message, one parse, one serialize.

A frame is one line of UTF-8 text; fields are separated by ``#``. Each code
has a fixed number of fields; for messages (002, 003, 105, 106) and the other
free-text tails (000's address, 006/110's token, 109's text) the last field is
the rest of the line and keeps every ``#`` in it. ``001``'s ID is also the rest
of the line, so that an ID containing ``#`` is reported as ``bad-id`` rather
than as a malformed frame.

Parsing works on a decoded line (no LF); serializing returns bytes ending in LF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Union

from .codes import ClientCode, ErrorReason, OutputFormat, ServerCode


class FrameError(ValueError):
    """A peer sent something that breaks the protocol.

    ``reason`` goes on the wire as the 109 REASON, ``detail`` as its TEXT.
    """

    def __init__(self, reason: ErrorReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def has_control_chars(text: str) -> bool:
    """True if ``text`` holds a C0/C1 control character other than TAB, or DEL.

    Such characters could rewrite another user's terminal (escape sequences)
    or, for CR/LF, forge a frame; messages and tokens must not carry them.
    """
    return _CONTROL.search(text) is not None


# One C scan per message (a Python loop per character was a quarter of the
# server's time in the whisper benchmark).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


# --------------------------------------------------------------------------
# client -> server


@dataclass(frozen=True, slots=True)
class GatewayHello:
    """``000#SECRET#ADDRESS``: a trusted gateway names the end user's address."""

    secret: str
    address: str
    CODE: ClassVar[str] = ClientCode.GATEWAY

    def fields(self) -> tuple[str, ...]:
        return (self.secret, self.address)


@dataclass(frozen=True, slots=True)
class Join:
    """``001#ID``: join the room."""

    id: str
    CODE: ClassVar[str] = ClientCode.JOIN

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(frozen=True, slots=True)
class Broadcast:
    """``002#ID#MESSAGE``: a message to everyone but the sender."""

    id: str
    message: str
    CODE: ClassVar[str] = ClientCode.BROADCAST

    def fields(self) -> tuple[str, ...]:
        return (self.id, self.message)


@dataclass(frozen=True, slots=True)
class Whisper:
    """``003#ID#TO#MESSAGE``: a message to one user."""

    id: str
    to: str
    message: str
    CODE: ClassVar[str] = ClientCode.WHISPER

    def fields(self) -> tuple[str, ...]:
        return (self.id, self.to, self.message)


@dataclass(frozen=True, slots=True)
class Leave:
    """``004#ID``: leave the room; the server answers 102 and closes."""

    id: str
    CODE: ClassVar[str] = ClientCode.LEAVE

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(frozen=True, slots=True)
class ListUsers:
    """``005#ID``: ask for the user list (answered by 107)."""

    id: str
    CODE: ClassVar[str] = ClientCode.LIST

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(frozen=True, slots=True)
class Ping:
    """``006#TOKEN``: answered by ``110#TOKEN`` after every earlier frame."""

    token: str
    CODE: ClassVar[str] = ClientCode.PING

    def fields(self) -> tuple[str, ...]:
        return (self.token,)


@dataclass(frozen=True, slots=True)
class SetFormat:
    """``007#FORMAT``: before ``001``, choose what the server writes (frames or JSON events)."""

    format: OutputFormat
    CODE: ClassVar[str] = ClientCode.FORMAT

    def fields(self) -> tuple[str, ...]:
        return (str(self.format),)


ClientFrame = Union[GatewayHello, Join, Broadcast, Whisper, Leave, ListUsers, Ping, SetFormat]


# --------------------------------------------------------------------------
# server -> client


@dataclass(frozen=True, slots=True)
class Joined:
    """``100#ID``: you joined as ID; a 107 follows."""

    id: str
    CODE: ClassVar[str] = ServerCode.JOINED

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(frozen=True, slots=True)
class IdTaken:
    """``101``: the ID is in use; choose another."""

    CODE: ClassVar[str] = ServerCode.ID_TAKEN

    def fields(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Left:
    """``102``: you left; the server closes the connection."""

    CODE: ClassVar[str] = ServerCode.LEFT

    def fields(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class UserJoined:
    """``103#ID``: someone joined."""

    id: str
    CODE: ClassVar[str] = ServerCode.USER_JOINED

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(frozen=True, slots=True)
class UserLeft:
    """``104#ID``: someone left, by 004 or by dropping."""

    id: str
    CODE: ClassVar[str] = ServerCode.USER_LEFT

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(frozen=True, slots=True)
class Message:
    """``105#FROM#MESSAGE``: a message to everyone."""

    sender: str
    message: str
    CODE: ClassVar[str] = ServerCode.MESSAGE

    def fields(self) -> tuple[str, ...]:
        return (self.sender, self.message)


@dataclass(frozen=True, slots=True)
class WhisperMessage:
    """``106#FROM#MESSAGE``: a whisper to you."""

    sender: str
    message: str
    CODE: ClassVar[str] = ServerCode.WHISPER

    def fields(self) -> tuple[str, ...]:
        return (self.sender, self.message)


@dataclass(frozen=True, slots=True)
class UserList:
    """``107#ID#ID#…``: the users online, in join order."""

    ids: tuple[str, ...]
    CODE: ClassVar[str] = ServerCode.USER_LIST

    def fields(self) -> tuple[str, ...]:
        return self.ids


@dataclass(frozen=True, slots=True)
class NoSuchUser:
    """``108#TO``: nobody called TO is online for your whisper."""

    to: str
    CODE: ClassVar[str] = ServerCode.NO_SUCH_USER

    def fields(self) -> tuple[str, ...]:
        return (self.to,)


@dataclass(frozen=True, slots=True)
class Error:
    """``109#REASON#TEXT``: your frame was refused, or the server is closing you."""

    reason: ErrorReason
    text: str = ""
    CODE: ClassVar[str] = ServerCode.ERROR

    def fields(self) -> tuple[str, ...]:
        return (str(self.reason), self.text)


@dataclass(frozen=True, slots=True)
class Pong:
    """``110#TOKEN``: the answer to a ping."""

    token: str
    CODE: ClassVar[str] = ServerCode.PONG

    def fields(self) -> tuple[str, ...]:
        return (self.token,)


ServerFrame = Union[
    Joined, IdTaken, Left, UserJoined, UserLeft, Message, WhisperMessage,
    UserList, NoSuchUser, Error, Pong,
]
Frame = Union[ClientFrame, ServerFrame]

# --------------------------------------------------------------------------
# serialize

# Codes whose last field is free text (may hold '#').
_TAIL_KEEPS_HASH = frozenset({"000", "001", "002", "003", "006", "105", "106", "109", "110"})


def serialize(frame: Frame) -> bytes:
    """Encode ``frame`` as one LF-terminated line.

    Raises ValueError for a field that would break framing (CR/LF anywhere, or
    ``#`` in a field that is not the free-text tail): the caller's bug, not the peer's.
    """
    fields = frame.fields()
    code = frame.CODE
    last = len(fields) - 1
    for i, value in enumerate(fields):
        if "\n" in value or "\r" in value:
            raise ValueError(f"{code}: field {i} contains CR or LF")
        if "#" in value and not (i == last and code in _TAIL_KEEPS_HASH):
            raise ValueError(f"{code}: field {i} contains '#'")
    if not fields:
        return f"{code}\n".encode()
    return ("#".join((code, *fields)) + "\n").encode()


# Hot-path encoders: the server builds these frames for every message, so they
# skip the dataclass. Inputs come from parsed frames and are already valid.
def encode_message(sender: str, message: str) -> bytes:
    return f"105#{sender}#{message}\n".encode()


def encode_whisper(sender: str, message: str) -> bytes:
    return f"106#{sender}#{message}\n".encode()


def encode_error(reason: ErrorReason, text: str) -> bytes:
    return serialize(Error(reason, text.replace("\n", " ").replace("\r", " ")))


# --------------------------------------------------------------------------
# parse


def _split(line: str, code: str, nfields: int, tail: bool) -> list[str]:
    """Split the fields after the code; exactly ``nfields`` or FrameError."""
    rest = line[4:] if len(line) > 3 else None
    if len(line) > 3 and line[3] != "#":
        raise FrameError(ErrorReason.MALFORMED, f"{code}: code must be followed by '#'")
    if rest is None:
        parts: list[str] = []
    elif tail:
        parts = rest.split("#", nfields - 1)
    else:
        parts = rest.split("#")
    if len(parts) != nfields:
        raise FrameError(ErrorReason.MALFORMED, f"{code} takes {nfields} field(s), got {len(parts)}")
    return parts


def _need_text(code: str, what: str, value: str) -> str:
    if not value:
        raise FrameError(ErrorReason.MALFORMED, f"{code}: empty {what}")
    if has_control_chars(value):
        raise FrameError(ErrorReason.MALFORMED, f"{code}: control characters in {what}")
    return value


def _need_id(code: str, value: str) -> str:
    if not value:
        raise FrameError(ErrorReason.MALFORMED, f"{code}: empty ID")
    return value


def parse_client(line: str) -> ClientFrame:
    """Parse one client line (without LF) or raise :class:`FrameError`.

    IDs are returned as sent; the room validates and normalises them.
    """
    code = line[:3]
    if code == "002":
        sid, msg = _split(line, code, 2, True)
        return Broadcast(_need_id(code, sid), _need_text(code, "message", msg))
    if code == "003":
        sid, to, msg = _split(line, code, 3, True)
        return Whisper(_need_id(code, sid), _need_id(code, to), _need_text(code, "message", msg))
    if code == "001":
        (name,) = _split(line, code, 1, True)
        return Join(name)
    if code == "004":
        (sid,) = _split(line, code, 1, False)
        return Leave(_need_id(code, sid))
    if code == "005":
        (sid,) = _split(line, code, 1, False)
        return ListUsers(_need_id(code, sid))
    if code == "006":
        (token,) = _split(line, code, 1, True)
        if has_control_chars(token):
            raise FrameError(ErrorReason.MALFORMED, "006: control characters in token")
        return Ping(token)
    if code == "000":
        secret, address = _split(line, code, 2, True)
        return GatewayHello(secret, _need_text(code, "address", address))
    if code == "007":
        (name,) = _split(line, code, 1, False)
        try:
            return SetFormat(OutputFormat(name))
        except ValueError:
            raise FrameError(ErrorReason.MALFORMED, f"007: unknown format {name[:16]!r}") from None
    raise FrameError(ErrorReason.UNKNOWN_CODE, f"unknown code {code[:16]!r}")


def parse_server(line: str) -> ServerFrame:
    """Parse one server line (without LF) or raise :class:`FrameError`."""
    code = line[:3]
    if code == "105":
        sender, msg = _split(line, code, 2, True)
        return Message(sender, msg)
    if code == "106":
        sender, msg = _split(line, code, 2, True)
        return WhisperMessage(sender, msg)
    if code == "103":
        return UserJoined(*_split(line, code, 1, False))
    if code == "104":
        return UserLeft(*_split(line, code, 1, False))
    if code == "107":
        if line == "107":
            return UserList(())
        return UserList(tuple(_split(line, code, line.count("#"), False)))
    if code == "100":
        return Joined(*_split(line, code, 1, False))
    if code == "101":
        _split(line, code, 0, False)
        return IdTaken()
    if code == "102":
        _split(line, code, 0, False)
        return Left()
    if code == "108":
        return NoSuchUser(*_split(line, code, 1, False))
    if code == "109":
        rest = line[4:]
        if len(line) > 3 and line[3] != "#" or not rest:
            raise FrameError(ErrorReason.MALFORMED, "109 needs a reason")
        reason_text, _, text = rest.partition("#")
        try:
            reason = ErrorReason(reason_text)
        except ValueError:
            raise FrameError(ErrorReason.MALFORMED, f"109: unknown reason {reason_text[:32]!r}") from None
        return Error(reason, text)
    if code == "110":
        (token,) = _split(line, code, 1, True)
        return Pong(token)
    raise FrameError(ErrorReason.UNKNOWN_CODE, f"unknown code {code[:16]!r}")
