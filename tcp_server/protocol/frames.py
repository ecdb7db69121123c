"""Frames of wire protocol v1: one dataclass per message.

A frame is one line of UTF-8 text; fields are separated by ``#``. The field
layout of each code, which states accept it, what it costs and how it is shown
live in one table (:mod:`.table`), which also parses and serializes; this module
holds only the frame types, so that a ``match`` over :data:`ServerFrame` ending
in ``assert_never`` makes mypy name every renderer a new frame is missing from.

Frames are values: made once, never changed, compared and hashed by their
fields. They are not ``frozen`` dataclasses only because a frozen one pays an
``object.__setattr__`` per field when made, and a frame is made for every
message a client sends (four times the cost of a plain slotted one, a fifth of
the server's per-message work in the fan-out benchmark).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Union

from .codes import ClientCode, ErrorReason, OutputFormat, ServerCode
from .passwords import Password


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


def replace_control_chars(text: str, replacement: str) -> str:
    """``text`` with every character :func:`has_control_chars` looks for replaced (for display)."""
    return _CONTROL.sub(replacement, text)


# One C scan per message (a Python loop per character was a quarter of the
# server's time in the whisper benchmark).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


# --------------------------------------------------------------------------
# client -> server


@dataclass(slots=True, unsafe_hash=True)
class GatewayHello:
    """``000#SECRET#ADDRESS``: a trusted gateway names the end user's address."""

    secret: str
    address: str
    CODE: ClassVar[str] = ClientCode.GATEWAY

    def fields(self) -> tuple[str, ...]:
        return (self.secret, self.address)


@dataclass(slots=True, unsafe_hash=True)
class Join:
    """``001#ID``: join the room."""

    id: str
    CODE: ClassVar[str] = ClientCode.JOIN

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(slots=True, unsafe_hash=True)
class Broadcast:
    """``002#ID#MESSAGE``: a message to everyone but the sender."""

    id: str
    message: str
    CODE: ClassVar[str] = ClientCode.BROADCAST

    def fields(self) -> tuple[str, ...]:
        return (self.id, self.message)


@dataclass(slots=True, unsafe_hash=True)
class Whisper:
    """``003#ID#TO#MESSAGE``: a message to one user."""

    id: str
    to: str
    message: str
    CODE: ClassVar[str] = ClientCode.WHISPER

    def fields(self) -> tuple[str, ...]:
        return (self.id, self.to, self.message)


@dataclass(slots=True, unsafe_hash=True)
class Leave:
    """``004#ID``: leave the room; the server answers 102 and closes."""

    id: str
    CODE: ClassVar[str] = ClientCode.LEAVE

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(slots=True, unsafe_hash=True)
class ListUsers:
    """``005#ID``: ask for the user list (answered by 107)."""

    id: str
    CODE: ClassVar[str] = ClientCode.LIST

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(slots=True, unsafe_hash=True)
class Ping:
    """``006#TOKEN``: answered by ``110#TOKEN`` after every earlier frame."""

    token: str
    CODE: ClassVar[str] = ClientCode.PING

    def fields(self) -> tuple[str, ...]:
        return (self.token,)


@dataclass(slots=True, unsafe_hash=True)
class SetFormat:
    """``007#FORMAT``: before ``001``, choose what the server writes (frames or JSON events)."""

    format: OutputFormat
    CODE: ClassVar[str] = ClientCode.FORMAT

    def fields(self) -> tuple[str, ...]:
        return (str(self.format),)


@dataclass(slots=True, unsafe_hash=True)
class ResumeSession:
    """``008#TOKEN[#POSITION]``: instead of ``001``, take back the session a ``112`` named.

    POSITION is how many of the session's counted frames (103, 104, 105, 106, 114) the client really
    has: the server replays exactly what follows it. Without it (an older client) the server replays
    what the session missed since it noticed the drop.
    """

    token: str
    position: int | None = None
    CODE: ClassVar[str] = ClientCode.RESUME

    def fields(self) -> tuple[str, ...]:
        return (self.token,) if self.position is None else (self.token, str(self.position))


@dataclass(slots=True, unsafe_hash=True)
class FetchOlder:
    """``016#ROOM#CURSOR#LIMIT``: at most LIMIT (1-200) messages of ROOM older than CURSOR (empty: the newest)."""

    room: str
    cursor: str
    limit: int
    CODE: ClassVar[str] = ClientCode.OLDER

    def fields(self) -> tuple[str, ...]:
        return (self.room, self.cursor, str(self.limit))


@dataclass(slots=True, unsafe_hash=True)
class Search:
    """``017#ROOM#QUERY``: ROOM's stored messages holding QUERY (literal, case-insensitive, 2+ characters)."""

    room: str
    query: str
    CODE: ClassVar[str] = ClientCode.SEARCH

    def fields(self) -> tuple[str, ...]:
        return (self.room, self.query)


# Frames that carry a password: compared (a test's tables) but never hashed (Password has no hash),
# and their repr shows Password(<hidden>).


@dataclass(slots=True)
class Login:
    """``018#ID#PASSWORD``: instead of ``001``, log in as the registered ID (PASSWORD keeps every ``#``)."""

    id: str
    password: Password
    CODE: ClassVar[str] = ClientCode.LOGIN

    def fields(self) -> tuple[str, ...]:
        return (self.id, self.password.reveal())


@dataclass(slots=True)
class Register:
    """``019#PASSWORD``: register the ID this connection joined with as a guest."""

    password: Password
    CODE: ClassVar[str] = ClientCode.REGISTER

    def fields(self) -> tuple[str, ...]:
        return (self.password.reveal(),)


@dataclass(slots=True)
class ChangePassword:
    """``020#NEW``: a new password, on a connection that logged in with ``018`` (or registered) itself."""

    password: Password
    CODE: ClassVar[str] = ClientCode.PASSWORD

    def fields(self) -> tuple[str, ...]:
        return (self.password.reveal(),)


@dataclass(slots=True, unsafe_hash=True)
class ListRooms:
    """``013``: the rooms there are (``126`` each, then ``127``); the lobby is one of them."""

    CODE: ClassVar[str] = ClientCode.ROOMS

    def fields(self) -> tuple[str, ...]:
        return ()


ClientFrame = Union[
    GatewayHello, Join, Broadcast, Whisper, Leave, ListUsers, Ping, SetFormat, ResumeSession, ListRooms, FetchOlder,
    Search, Login, Register, ChangePassword,
]


# --------------------------------------------------------------------------
# server -> client


@dataclass(slots=True, unsafe_hash=True)
class Joined:
    """``100#ID``: you joined as ID; a 107 follows."""

    id: str
    CODE: ClassVar[str] = ServerCode.JOINED

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(slots=True, unsafe_hash=True)
class IdTaken:
    """``101``: the ID is in use; choose another."""

    CODE: ClassVar[str] = ServerCode.ID_TAKEN

    def fields(self) -> tuple[str, ...]:
        return ()


@dataclass(slots=True, unsafe_hash=True)
class Left:
    """``102``: you left; the server closes the connection."""

    CODE: ClassVar[str] = ServerCode.LEFT

    def fields(self) -> tuple[str, ...]:
        return ()


@dataclass(slots=True, unsafe_hash=True)
class UserJoined:
    """``103#ID``: someone joined. ``account`` (not a wire field of 103): it logged in; the frames
    encoder writes a ``132#ID`` right after it, the JSON event carries ``"account": true``."""

    id: str
    account: bool = field(default=False, compare=False)
    CODE: ClassVar[str] = ServerCode.USER_JOINED

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(slots=True, unsafe_hash=True)
class UserLeft:
    """``104#ID``: someone left, by 004 or by dropping."""

    id: str
    CODE: ClassVar[str] = ServerCode.USER_LEFT

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(slots=True, unsafe_hash=True)
class Message:
    """``105#FROM#MESSAGE``: a message to everyone.

    ``ts`` (ms since the epoch, set by the server when it publishes) is not a
    wire field of 105: JSON events carry it, history keeps it. ``seq`` neither: the
    room's order number a shared room's bus gives each message (several nodes store
    it once, in the order the room delivered); None where the node numbers them itself.
    """

    sender: str
    message: str
    ts: int | None = field(default=None, compare=False)
    seq: int | None = field(default=None, compare=False)
    account: bool = field(default=False, compare=False)
    """Its sender had logged in (``018``/``019``): the store remembers it beside the message."""
    CODE: ClassVar[str] = ServerCode.MESSAGE

    def fields(self) -> tuple[str, ...]:
        return (self.sender, self.message)


@dataclass(slots=True, unsafe_hash=True)
class WhisperMessage:
    """``106#FROM#MESSAGE``: a whisper to you (``ts`` as for :class:`Message`, not on the wire)."""

    sender: str
    message: str
    ts: int | None = field(default=None, compare=False)
    CODE: ClassVar[str] = ServerCode.WHISPER

    def fields(self) -> tuple[str, ...]:
        return (self.sender, self.message)


@dataclass(slots=True, unsafe_hash=True)
class UserList:
    """``107#ID#ID#…``: the users online, in join order."""

    ids: tuple[str, ...]
    CODE: ClassVar[str] = ServerCode.USER_LIST

    def fields(self) -> tuple[str, ...]:
        return self.ids


@dataclass(slots=True, unsafe_hash=True)
class NoSuchUser:
    """``108#TO``: nobody called TO is online for your whisper."""

    to: str
    CODE: ClassVar[str] = ServerCode.NO_SUCH_USER

    def fields(self) -> tuple[str, ...]:
        return (self.to,)


@dataclass(slots=True, unsafe_hash=True)
class Error:
    """``109#REASON#TEXT``: your frame was refused, or the server is closing you."""

    reason: ErrorReason
    text: str = ""
    CODE: ClassVar[str] = ServerCode.ERROR

    def fields(self) -> tuple[str, ...]:
        return (str(self.reason), self.text)


@dataclass(slots=True, unsafe_hash=True)
class Pong:
    """``110#TOKEN``: the answer to a ping."""

    token: str
    CODE: ClassVar[str] = ServerCode.PONG

    def fields(self) -> tuple[str, ...]:
        return (self.token,)


@dataclass(slots=True, unsafe_hash=True)
class History:
    """``111#TS#FROM#MESSAGE``: a message to all from before you joined (TS: ms since the epoch, UTC)."""

    ts: int
    sender: str
    message: str
    account: bool = field(default=False, compare=False)
    """Its author had logged in (not a wire field: the JSON event says ``"account": true``)."""
    CODE: ClassVar[str] = ServerCode.HISTORY

    def fields(self) -> tuple[str, ...]:
        return (str(self.ts), self.sender, self.message)


@dataclass(slots=True, unsafe_hash=True)
class SessionToken:
    """``112#TOKEN``: the opaque token that resumes this session with ``008`` (single use)."""

    token: str
    CODE: ClassVar[str] = ServerCode.SESSION

    def fields(self) -> tuple[str, ...]:
        return (self.token,)


@dataclass(slots=True, unsafe_hash=True)
class Resumed:
    """``113#COUNT``: the resume is complete; COUNT missed frames came just before; you are live."""

    missed: int
    CODE: ClassVar[str] = ServerCode.RESUMED

    def fields(self) -> tuple[str, ...]:
        return (str(self.missed),)


@dataclass(slots=True, unsafe_hash=True)
class ServerNotice:
    """``114#TEXT``: a notice from the server's operators to everyone (``chat-admin notice``)."""

    text: str
    CODE: ClassVar[str] = ServerCode.NOTICE

    def fields(self) -> tuple[str, ...]:
        return (self.text,)


@dataclass(slots=True, unsafe_hash=True)
class Older:
    """``140#ROOM#TS#FROM#MESSAGE``: a stored message, answering ``016`` (oldest first)."""

    room: str
    ts: int
    sender: str
    message: str
    account: bool = field(default=False, compare=False)
    """Its author had logged in (not a wire field: the JSON event says ``"account": true``)."""
    CODE: ClassVar[str] = ServerCode.OLDER

    def fields(self) -> tuple[str, ...]:
        return (self.room, str(self.ts), self.sender, self.message)


@dataclass(slots=True, unsafe_hash=True)
class Page:
    """``141#ROOM#N#CURSOR``: N history lines were sent; CURSOR pages further back (empty: nothing older)."""

    room: str
    count: int
    cursor: str
    CODE: ClassVar[str] = ServerCode.PAGE

    def fields(self) -> tuple[str, ...]:
        return (self.room, str(self.count), self.cursor)


@dataclass(slots=True, unsafe_hash=True)
class Found:
    """``142#ROOM#TS#FROM#MESSAGE``: a stored message holding a ``017``'s QUERY (newest first)."""

    room: str
    ts: int
    sender: str
    message: str
    account: bool = field(default=False, compare=False)
    """Its author had logged in (not a wire field: the JSON event says ``"account": true``)."""
    CODE: ClassVar[str] = ServerCode.FOUND

    def fields(self) -> tuple[str, ...]:
        return (self.room, str(self.ts), self.sender, self.message)


@dataclass(slots=True, unsafe_hash=True)
class Searched:
    """``143#ROOM#N``: a search's N ``142`` lines were sent."""

    room: str
    count: int
    CODE: ClassVar[str] = ServerCode.SEARCHED

    def fields(self) -> tuple[str, ...]:
        return (self.room, str(self.count))


@dataclass(slots=True, unsafe_hash=True)
class Registered:
    """``130#ID``: the ID is now this connection's account (an answer to ``019``)."""

    id: str
    CODE: ClassVar[str] = ServerCode.REGISTERED

    def fields(self) -> tuple[str, ...]:
        return (self.id,)


@dataclass(slots=True, unsafe_hash=True)
class PasswordChanged:
    """``131``: the new password is in force (an answer to ``020``)."""

    CODE: ClassVar[str] = ServerCode.PASSWORD_CHANGED

    def fields(self) -> tuple[str, ...]:
        return ()


@dataclass(slots=True, unsafe_hash=True)
class AccountList:
    """``132#ID#ID#…``: which of the online IDs are accounts (logged in), not guests. After ``107`` (those
    of its list), and right after an account's ``103`` (that ID alone, in the same write)."""

    ids: tuple[str, ...]
    CODE: ClassVar[str] = ServerCode.ACCOUNTS

    def fields(self) -> tuple[str, ...]:
        return self.ids


@dataclass(slots=True, unsafe_hash=True)
class RoomListed:
    """``126#ROOM#COUNT#TOPIC``: one room of a ``013`` answer, COUNT members; TOPIC keeps ``#`` (may be empty)."""

    room: str
    count: int
    topic: str
    CODE: ClassVar[str] = ServerCode.ROOM

    def fields(self) -> tuple[str, ...]:
        return (self.room, str(self.count), self.topic)


@dataclass(slots=True, unsafe_hash=True)
class RoomsListed:
    """``127#N``: the end of a ``013`` answer; N rooms in all (the ``126`` lines stop at 200)."""

    total: int
    CODE: ClassVar[str] = ServerCode.ROOMS

    def fields(self) -> tuple[str, ...]:
        return (str(self.total),)


ServerFrame = Union[
    Joined, IdTaken, Left, UserJoined, UserLeft, Message, WhisperMessage,
    UserList, NoSuchUser, Error, Pong, History, SessionToken, Resumed, ServerNotice, Older, Page, Found, Searched,
    Registered, PasswordChanged, AccountList, RoomListed, RoomsListed,
]
Frame = Union[ClientFrame, ServerFrame]
