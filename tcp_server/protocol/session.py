"""One connection's protocol logic, pure: a frame in, the effects out (websockets' ``Protocol`` style).

The session decides and the I/O shell carries out: reply to this connection,
publish to the room, deliver to one user, ask the directory for an ID, free
it, close. The session never waits: claiming an ID may need a round trip
(several server nodes share one directory), so it answers :class:`Claim` and the
shell reports back with :meth:`Session.claimed` or :meth:`Session.taken`.
The connection's state moves only along :mod:`.states`' table.
"""

from __future__ import annotations

import hmac
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Union, assert_never

from .codes import ErrorReason, OutputFormat
from .frames import (
    Broadcast,
    ClientFrame,
    Error,
    FetchOlder,
    Found,
    FrameError,
    GatewayHello,
    History,
    IdTaken,
    Join,
    Joined,
    Leave,
    Left,
    ListUsers,
    Message,
    NoSuchUser,
    Older,
    Page,
    Ping,
    Pong,
    Resumed,
    ResumeSession,
    Search,
    Searched,
    ServerFrame,
    ServerNotice,
    SessionToken,
    SetFormat,
    UserJoined,
    UserLeft,
    UserList,
    Whisper,
    WhisperMessage,
)
from .ids import InvalidId, id_key, normalize_id
from .moderation import Moderation
from .roster import Roster
from .scrollback import LOBBY, MAX_LIMIT, MIN_LIMIT, MIN_QUERY, Row, open_cursor, page_cursor, room_key
from .states import ConnState, Move, next_state
from .table import BY_CLASS

RoomFrame = Union[UserJoined, UserLeft, Message, ServerNotice]
"""What the room fans out to every member."""

# ----------------------------------------------------------------------------- effects
# Plain (not frozen) slotted dataclasses: one is made for every frame a client sends, and a frozen
# dataclass pays an object.__setattr__ per field. Nothing keeps or hashes them.


@dataclass(slots=True)
class Reply:
    """Send ``frame`` to this connection."""

    frame: ServerFrame


@dataclass(slots=True)
class Publish:
    """Give ``frame`` to every member of the room but the one whose ID key is ``exclude``."""

    frame: RoomFrame
    exclude: str | None


@dataclass(slots=True)
class Deliver:
    """Give ``frame`` to the user whose ID key is ``key`` (a whisper), wherever that user is connected."""

    key: str
    frame: WhisperMessage


@dataclass(slots=True)
class Claim:
    """Ask the directory for ``name``; answer with :meth:`Session.claimed` or :meth:`Session.taken`."""

    name: str
    key: str


@dataclass(slots=True)
class Release:
    """``name`` is free again (its ``104`` is already published)."""

    name: str
    key: str


@dataclass(slots=True)
class Close:
    """Write what is queued, then close the connection."""


@dataclass(slots=True)
class UseFormat:
    """Encode this connection's output as ``format`` from now on."""

    format: OutputFormat


@dataclass(slots=True)
class Rehome:
    """A trusted gateway named the real user: count this connection's limits on ``address``."""

    address: str


@dataclass(slots=True)
class Reattach:
    """Look up the session ``token`` names; answer with :meth:`Session.resumed`, :meth:`Session.refused`
    or :meth:`Session.gap` (``position``: what the client has, None for an older client)."""

    token: str
    position: int | None = None


@dataclass(slots=True)
class FetchPage:
    """Read at most ``limit`` stored messages of ``room`` older than ``before`` (None: the newest);
    answer with :meth:`Session.paged`."""

    room: str
    before: int | None
    limit: int


@dataclass(slots=True)
class FindText:
    """Search ``room``'s stored messages for ``query``; answer with :meth:`Session.found`."""

    room: str
    query: str


Effect = Union[Reply, Publish, Deliver, Claim, Release, Close, UseFormat, Rehome, Reattach, FetchPage, FindText]

_CLOSE = Close()

# ----------------------------------------------------------------------------- the session


class Session:
    """Protocol state for one connection: where it stands, and as whom."""

    __slots__ = ("roster", "moderation", "clock", "gateway_secret", "state", "name", "key", "address",
                 "format_chosen", "_before_join", "cursor_key")

    def __init__(self, roster: Roster, address: str, gateway_secret: str | None = None,
                 moderation: Moderation | None = None, clock: Callable[[], int] | None = None) -> None:
        self.roster = roster  # the room as this node sees it: for 005 and a whisper's target
        self.moderation = moderation  # bans and mutes, when the node has an operator
        self.clock = clock  # the server's time for a message (ms since the epoch); None: messages carry none
        self.gateway_secret = gateway_secret
        self.state = ConnState.NEW
        self.name: str | None = None
        self.key: str | None = None
        self.address = address
        self.format_chosen = False
        self._before_join = ConnState.NEW
        self.cursor_key: bytes | None = None  # the store's cursor key; None: no stored history (016/017 refused)

    @property
    def joined(self) -> bool:
        return self.state is ConnState.JOINED

    def _move(self, move: Move) -> None:
        self.state = next_state(self.state, move, self._before_join)

    def handle(self, item: Union[ClientFrame, FrameError]) -> list[Effect]:
        """Apply one frame (or decoding error) from the peer."""
        if isinstance(item, FrameError):
            return [Reply(Error(item.reason, item.detail))]
        if self.state not in BY_CLASS[type(item)].states:
            return self._wrong_state(item)
        match item:
            case Broadcast(sender, message):
                if not self._is_self(sender):
                    return self._mismatch()
                if self.moderation is not None and self.moderation.mutes and self.moderation.muted(self.key):
                    return [Reply(Error(ErrorReason.MUTED, "your message was not delivered"))]
                assert self.name is not None
                return [Publish(Message(self.name, message, self.clock() if self.clock else None), self.key)]
            case Whisper(sender, to, message):
                if not self._is_self(sender):
                    return self._mismatch()
                if self.moderation is not None and self.moderation.mutes and self.moderation.muted(self.key):
                    return [Reply(Error(ErrorReason.MUTED, "your message was not delivered"))]
                return self._whisper(to, message)
            case Ping(token):
                return [Reply(Pong(token))]
            case ListUsers(sender):
                # Before a join anyone may ask who is here (any ID in the field: there is none to check).
                if self.state is not ConnState.JOINED:
                    return [Reply(self.roster.user_list())]
                if not self._is_self(sender):
                    return self._mismatch()
                return [Reply(self.roster.user_list())]
            case Join(raw):
                return self._join(raw)
            case ResumeSession(token, position):
                self._before_join = self.state
                self._move(Move.JOIN)
                return [Reattach(token, position)]
            case Leave(sender):
                if not self._is_self(sender):
                    return self._mismatch()
                return [Reply(Left()), *self._leave(), _CLOSE]
            case GatewayHello():
                return self._gateway(item)
            case SetFormat(fmt):
                if self.format_chosen:
                    return [Reply(Error(ErrorReason.FORBIDDEN, "007 may come only once"))]
                self.format_chosen = True
                return [UseFormat(fmt)]
            case FetchOlder(room, cursor, limit):
                return self._older(room, cursor, limit)
            case Search(room, query):
                return self._search(room, query)
            case _:
                assert_never(item)

    def _wrong_state(self, item: ClientFrame) -> list[Effect]:
        if isinstance(item, GatewayHello):
            return self._refuse_gateway()
        if self.state is ConnState.JOINED:
            detail = "007 must come before 001" if isinstance(item, SetFormat) else f"you are {self.name}"
            return [Reply(Error(ErrorReason.ALREADY_JOINED, detail))]
        return [Reply(Error(ErrorReason.NOT_JOINED, "send 001#ID first"))]

    def _is_self(self, sender: str) -> bool:
        return sender == self.name or id_key(sender) == self.key

    def _mismatch(self) -> list[Effect]:
        return [Reply(Error(ErrorReason.ID_MISMATCH, f"you are {self.name}"))]

    def _whisper(self, raw_to: str, message: str) -> list[Effect]:
        assert self.name is not None
        try:
            to = normalize_id(raw_to)
        except InvalidId as exc:
            # Not echoed: the target field may hold anything a terminal should not print.
            return [Reply(Error(ErrorReason.MALFORMED, f"003: the target is not a valid ID ({exc})"))]
        key = id_key(to)
        if self.roster.name_of(key) is None:
            return [Reply(NoSuchUser(to))]
        return [Deliver(key, WhisperMessage(self.name, message, self.clock() if self.clock else None))]

    def _join(self, raw: str) -> list[Effect]:
        try:
            name = normalize_id(raw)
        except InvalidId as exc:
            return [Reply(Error(ErrorReason.BAD_ID, str(exc)))]
        if self.moderation is not None and (ban := self.moderation.banned(id_key(name), self.address)):
            return [Reply(Error(ErrorReason.BANNED, ban.reason))]
        self._before_join = self.state
        self._move(Move.JOIN)
        self.name = name
        self.key = id_key(name)
        return [Claim(name, self.key)]

    def claimed(
        self, users: tuple[str, ...], token: str | None = None, history: Sequence[Message] = (),
        oldest_seq: int | None = None,
    ) -> list[Effect]:
        """The directory gave us the ID; ``users`` is everyone now in the room, in join order (us last).

        ``token`` (when sessions can resume) goes out as ``112``, then ``history`` (the room's last
        messages, oldest first, taken in the same turn the connection joined the fan-out) as ``111``.
        With a store (``cursor_key``) and ``oldest_seq`` (the room's number of the oldest line sent, or
        of the next message when none was), ``141`` follows: how many, and the cursor to page back.
        """
        self._move(Move.CLAIMED)
        assert self.name is not None
        effects: list[Effect] = [Publish(UserJoined(self.name), self.key), Reply(Joined(self.name)),
                                 Reply(UserList(users))]
        if token is not None:
            effects.append(Reply(SessionToken(token)))
        effects += [Reply(History(m.ts or 0, m.sender, m.message)) for m in history]
        if self.cursor_key is not None and oldest_seq is not None:
            effects.append(Reply(Page(LOBBY, len(history), page_cursor(self.cursor_key, LOBBY, oldest_seq))))
        return effects

    def _room(self, room: str) -> tuple[str | None, list[Effect]]:
        """The key of a room this session may read the history of, or the 109 that says why not."""
        if self.cursor_key is None:
            return None, [Reply(Error(ErrorReason.UNAVAILABLE, "this server keeps no stored history"))]
        key = room_key(room)
        if key != LOBBY:
            return None, [Reply(Error(ErrorReason.NOT_IN_ROOM, "you are not in that room"))]
        return key, []

    def _older(self, room: str, cursor: str, limit: int) -> list[Effect]:
        if not MIN_LIMIT <= limit <= MAX_LIMIT:
            return [Reply(Error(ErrorReason.MALFORMED, f"016: LIMIT is {MIN_LIMIT}-{MAX_LIMIT}"))]
        key, refusal = self._room(room)
        if key is None:
            return refusal
        before: int | None = None
        if cursor:
            assert self.cursor_key is not None
            before = open_cursor(self.cursor_key, key, cursor)
            if before is None:
                return [Reply(Error(ErrorReason.BAD_CURSOR, "016: not a cursor this server gave for that room"))]
        return [FetchPage(key, before, limit)]

    def _search(self, room: str, query: str) -> list[Effect]:
        if len(unicodedata.normalize("NFC", query)) < MIN_QUERY:
            return [Reply(Error(ErrorReason.MALFORMED, f"017: a search is at least {MIN_QUERY} characters"))]
        key, refusal = self._room(room)
        if key is None:
            return refusal
        return [FindText(key, query)]

    def paged(self, room: str, rows: Sequence[Row], limit: int) -> list[Effect]:
        """The store's answer to a ``016``: ``140`` lines (oldest first), then ``141`` with the next cursor."""
        assert self.cursor_key is not None
        effects: list[Effect] = [Reply(Older(LOBBY, ts, author, text)) for _, ts, author, text in rows]
        oldest = rows[0][0] if len(rows) == limit else None  # fewer than asked: nothing older
        effects.append(Reply(Page(LOBBY, len(rows), page_cursor(self.cursor_key, room, oldest))))
        return effects

    def found(self, rows: Sequence[Row]) -> list[Effect]:
        """The store's answer to a ``017``: ``142`` lines (newest first), then ``143``."""
        effects: list[Effect] = [Reply(Found(LOBBY, ts, author, text)) for _, ts, author, text in rows]
        effects.append(Reply(Searched(LOBBY, len(rows))))
        return effects

    def taken(self) -> list[Effect]:
        """The ID is someone else's: ask again."""
        self._move(Move.TAKEN)
        self.name = self.key = None
        return [Reply(IdTaken())]

    def resumed(
        self, name: str, users: tuple[str, ...], token: str, missed: Sequence[ServerFrame],
    ) -> list[Effect]:
        """The token was good: we are ``name`` again, silently for the others; the frames we missed, then 113."""
        self._move(Move.CLAIMED)
        self.name = name
        self.key = id_key(name)
        return [Reply(Joined(name)), Reply(UserList(users)), Reply(SessionToken(token)),
                *(Reply(frame) for frame in missed), Reply(Resumed(len(missed)))]

    def resume_banned(self, name: str) -> list[Effect] | None:
        """A ban keeps ``name`` or this address out: checked on ``008`` as on ``001``. The session the
        token named is over (its holder let go when the token was taken): its leave for the others and
        its ID freed, as when a grace ends; this connection hears why and may send ``001`` (also
        checked). None: no ban, the resume goes on."""
        if self.moderation is None:
            return None
        key = id_key(name)
        ban = self.moderation.banned(key, self.address)
        if ban is None:
            return None
        self._move(Move.TAKEN)
        return [Publish(UserLeft(name), key), Release(name, key), Reply(Error(ErrorReason.BANNED, ban.reason))]

    def refused(self) -> list[Effect]:
        """The token is unknown, used or expired: the peer may join with 001 instead."""
        self._move(Move.TAKEN)
        return [Reply(Error(ErrorReason.BAD_TOKEN, "unknown, used or expired token; join with 001"))]

    def gap(self, kept: int) -> list[Effect]:
        """The position is older than the ``kept`` frames the server can replay: the store ended the
        session (its leave is published); the peer joins afresh with 001 and says what it lost."""
        self._move(Move.TAKEN)
        return [Reply(Error(ErrorReason.GAP, f"the server keeps the last {kept} frames; join with 001"))]

    def detach(self) -> None:
        """The connection is gone but the session lives on (parked for a resume, or taken over):
        no leave, no release; nothing more is handled here."""
        self._move(Move.CLOSE)

    def _leave(self) -> list[Effect]:
        name, key = self.name, self.key
        assert name is not None and key is not None
        self._move(Move.LEAVE)
        return [Publish(UserLeft(name), key), Release(name, key)]

    def _gateway(self, hello: GatewayHello) -> list[Effect]:
        secret = self.gateway_secret
        if not secret or not hmac.compare_digest(hello.secret.encode(), secret.encode()):
            return self._refuse_gateway()
        self._move(Move.GATEWAY)
        self.address = hello.address
        return [Rehome(hello.address)]

    def _refuse_gateway(self) -> list[Effect]:
        refusal = Reply(Error(ErrorReason.FORBIDDEN, "000 is only for a trusted gateway, before 001"))
        return [refusal, *self.drop(), _CLOSE]

    def drop(self) -> list[Effect]:
        """The connection is gone (or being closed): leave the room if in it.

        A claim still pending stays the shell's to undo: when it succeeds after
        this, the shell releases the ID without anyone having seen it join.
        """
        if self.state is ConnState.CLOSED:
            return []
        if self.state is ConnState.JOINED:
            return self._leave()
        self._move(Move.CLOSE)
        return []
