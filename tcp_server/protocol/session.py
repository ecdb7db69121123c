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

from .account_rules import AccountRules, JoinedBy
from .codes import ErrorReason, OutputFormat
from .frames import (
    AccountList,
    Broadcast,
    ChangePassword,
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
    ListRooms,
    ListUsers,
    Login,
    Message,
    NoSuchUser,
    Older,
    Page,
    PasswordChanged,
    Ping,
    Pong,
    Register,
    Registered,
    Resumed,
    ResumeSession,
    RoomListed,
    RoomsListed,
    Search,
    Searched,
    ServerFrame,
    ServerNotice,
    SetFormat,
    UserJoined,
    UserLeft,
    UserList,
    Whisper,
    WhisperMessage,
)
from .guessing import Lockout
from .ids import InvalidId, id_key, normalize_id
from .moderation import Moderation
from .passwords import Password, check_password
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
class IssueToken:
    """Give this connection a token to resume the session of ``key`` with, and send it as ``112``
    (in this place among the replies)."""

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


@dataclass(slots=True)
class Authenticate:
    """``018``: verify ``password`` for the account of ``key`` (off the loop); answer with
    :meth:`Session.verified`, :meth:`Session.bad_login` or :meth:`Session.login_refused`."""

    name: str
    key: str
    password: Password


@dataclass(slots=True)
class Enter:
    """A login was verified: join as ``name`` (the ID as registered), taking over any session the
    account has (on this node or another: ``109#replaced`` there, no leave, no join); answer with
    :meth:`Session.claimed` (a fresh join) or :meth:`Session.took_over`."""

    name: str
    key: str


@dataclass(slots=True)
class Enroll:
    """``019``: register ``name`` with ``password`` (hash, store, registry); answer with
    :meth:`Session.enrolled` or :meth:`Session.account_refused`."""

    name: str
    key: str
    password: Password


@dataclass(slots=True)
class Rekey:
    """``020``: store a hash of ``password`` for the account of ``key``; answer with
    :meth:`Session.rekeyed` or :meth:`Session.account_refused`."""

    key: str
    password: Password


@dataclass(slots=True)
class LockedOut:
    """A failed login started a lockout: the shell logs it (never the password) and counts it."""

    account: str
    address: str
    lockout: Lockout


Effect = Union[Reply, Publish, Deliver, Claim, Release, Close, UseFormat, Rehome, Reattach, FetchPage, FindText,
               Authenticate, Enter, Enroll, Rekey, LockedOut, IssueToken]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the connection's kind (and its node) allow, fixed when it opens: the session decides from
    these, so the shell never asks which port a connection came in on."""

    legacy: bool = False
    """The seed's client on the legacy port: its own text, no ``007``, no resume (no ``112``, ``008``
    refused), no scrollback (no ``141``); a registered ID is its ``101``."""
    resumable: bool = True
    """The node keeps sessions for a resume (and the kind can resume): ``112`` on a join, ``008`` taken."""


LINE_PORT = Capabilities()
"""A connection on the main or the TLS port, on a node that keeps sessions."""
LEGACY_PORT = Capabilities(legacy=True, resumable=False)

_CLOSE = Close()

# ----------------------------------------------------------------------------- the session


class Session:
    """Protocol state for one connection: where it stands, and as whom."""

    __slots__ = ("roster", "moderation", "clock", "gateway_secret", "state", "name", "key", "address",
                 "format_chosen", "_before_join", "cursor_key", "accounts", "protected", "caps", "joined_by",
                 "account")

    def __init__(self, roster: Roster, address: str, gateway_secret: str | None = None,
                 moderation: Moderation | None = None, clock: Callable[[], int] | None = None,
                 accounts: AccountRules | None = None, protected: bool = True, caps: Capabilities = LINE_PORT,
                 cursor_key: bytes | None = None) -> None:
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
        # The store's cursor key; None: no stored history (016/017 refused), as on the legacy port (no 141).
        self.cursor_key: bytes | None = None if caps.legacy else cursor_key
        self.accounts = accounts  # None: accounts are off (no durable database): 018-020 get 109#unavailable
        self.protected = protected  # TLS, loopback, or --allow-plaintext-login: passwords may travel here
        self.caps = caps
        self.joined_by: JoinedBy | None = None
        self.account = False  # in the room as an account (logged in, or registered here)

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
                return [Publish(Message(self.name, message, self.clock() if self.clock else None,
                                        account=self.account), self.key)]
            case Whisper(sender, to, message):
                if not self._is_self(sender):
                    return self._mismatch()
                if self.moderation is not None and self.moderation.mutes and self.moderation.muted(self.key):
                    return [Reply(Error(ErrorReason.MUTED, "your message was not delivered"))]
                return self._whisper(to, message)
            case Ping(token):
                return [Reply(Pong(token))]
            case ListRooms():
                # Rooms are the next step (PROTOCOL.md, 010-015): until then the lobby is the one room.
                return [Reply(RoomListed(LOBBY, len(self.roster.names()), "")), Reply(RoomsListed(1))]
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
                if not self.caps.resumable:  # no sessions kept here (or the legacy port): no token is good
                    return self.refused()
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
                if self.caps.legacy:
                    return [Reply(Error(ErrorReason.UNKNOWN_CODE, "007 is not available on the legacy port"))]
                return [UseFormat(fmt)]
            case FetchOlder(room, cursor, limit):
                return self._older(room, cursor, limit)
            case Search(room, query):
                return self._search(room, query)
            case Login(raw_id, password):
                return self._login(raw_id, password)
            case Register(password):
                return self._register(password)
            case ChangePassword(password):
                return self._change_password(password)
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
        key = id_key(name)
        if self.moderation is not None and (ban := self.moderation.banned(key, self.address)):
            return [Reply(Error(ErrorReason.BANNED, ban.reason))]
        rules = self.accounts
        if rules is not None:
            if rules.registry.registered(key):  # any spelling with that key, online or not
                if self.caps.legacy:
                    return [Reply(IdTaken())]
                return [Reply(Error(ErrorReason.REGISTERED, f"{name} is registered; log in with 018"))]
            if not rules.guests:
                return [Reply(Error(ErrorReason.NEEDS_LOGIN, "this server admits accounts only; log in with 018"))]
        self._before_join = self.state
        self._move(Move.JOIN)
        self.name = name
        self.key = key
        self.joined_by = JoinedBy.GUEST
        return [Claim(name, self.key)]

    # ------------------------------------------------------------ accounts

    def _password_path(self) -> list[Effect]:
        """Why a password may not be sent here (accounts off, or a plaintext path); [] if it may."""
        if self.accounts is None:
            return [Reply(Error(ErrorReason.UNAVAILABLE, "this server has no accounts"))]
        if not self.protected:
            return [Reply(Error(ErrorReason.NEEDS_TLS, "send passwords over TLS only"))]
        return []

    def _login(self, raw_id: str, password: Password) -> list[Effect]:
        refusal = self._password_path()
        if refusal:
            return refusal
        rules = self.accounts
        assert rules is not None
        try:
            name = normalize_id(raw_id)
        except InvalidId as exc:
            return [Reply(Error(ErrorReason.BAD_ID, str(exc)))]
        key = id_key(name)
        if self.moderation is not None and (ban := self.moderation.banned(key, self.address)):
            return [Reply(Error(ErrorReason.BANNED, ban.reason))]
        lock = rules.guessing.locked(key, self.address)
        if lock is not None:  # at once, the right password included: no hashing while it lasts
            return [Reply(Error(ErrorReason.TOO_MANY_ATTEMPTS, str(lock.seconds)))]
        self._before_join = self.state
        self._move(Move.JOIN)
        self.name = name
        self.key = key
        return [Authenticate(name, key, password)]

    def verified(self, display: str) -> list[Effect]:
        """The password was right: the account's count starts again; join as the ID as registered."""
        assert self.key is not None and self.accounts is not None
        self.accounts.guessing.success(self.key, self.address)
        self.name = display
        self.joined_by = JoinedBy.LOGIN
        self.account = True
        return [Enter(display, self.key)]

    def bad_login(self) -> list[Effect]:
        """Wrong password or no such account (the same answer): counted; a lockout it starts is logged."""
        key = self.key
        assert key is not None and self.accounts is not None
        lockout = self.accounts.guessing.failure(key, self.address)
        effects: list[Effect] = []
        if lockout is not None:
            effects.append(LockedOut(key, self.address, lockout))
        effects += self.login_refused(ErrorReason.BAD_LOGIN, "wrong ID or password")
        return effects

    def login_refused(self, reason: ErrorReason, detail: str) -> list[Effect]:
        """A login that did not happen (locked account, busy, database down): the connection may try again."""
        self._move(Move.TAKEN)
        self.name = self.key = None
        self.joined_by = None
        self.account = False
        return [Reply(Error(reason, detail))]

    def _register(self, password: Password) -> list[Effect]:
        refusal = self._password_path()
        if refusal:
            return refusal
        rules = self.accounts
        assert rules is not None and self.name is not None and self.key is not None
        if self.joined_by is JoinedBy.RESUME:
            return [Reply(Error(ErrorReason.NEEDS_LOGIN, "019 only on the connection that joined with 001"))]
        if self.account or rules.registry.registered(self.key):
            return [Reply(Error(ErrorReason.ALREADY_REGISTERED, f"{self.name} is registered already"))]
        if not rules.registration_open:
            return [Reply(Error(ErrorReason.REGISTRATION_CLOSED, "an operator creates accounts here"))]
        weak = check_password(self.name, password.reveal())
        if weak is not None:
            return [Reply(Error(ErrorReason.WEAK_PASSWORD, f"{weak.reason}: {weak.text}"))]
        return [Enroll(self.name, self.key, password)]

    def enrolled(self) -> list[Effect]:
        """Registered: this connection is the account's from now on (it may change the password)."""
        assert self.name is not None and self.key is not None
        self.joined_by = JoinedBy.LOGIN
        self.account = True
        self.roster.mark_account(self.key)
        return [Reply(Registered(self.name))]

    def _change_password(self, password: Password) -> list[Effect]:
        refusal = self._password_path()
        if refusal:
            return refusal
        assert self.name is not None and self.key is not None
        if self.joined_by is not JoinedBy.LOGIN:
            return [Reply(Error(ErrorReason.NEEDS_LOGIN, "020 only on a connection that logged in with 018"))]
        weak = check_password(self.name, password.reveal())
        if weak is not None:
            return [Reply(Error(ErrorReason.WEAK_PASSWORD, f"{weak.reason}: {weak.text}"))]
        return [Rekey(self.key, password)]

    def rekeyed(self) -> list[Effect]:
        return [Reply(PasswordChanged())]

    def account_refused(self, reason: ErrorReason, detail: str) -> list[Effect]:
        """A ``019``/``020`` the shell could not carry out (registered meanwhile, busy, database down)."""
        return [Reply(Error(reason, detail))]

    def _accounts_online(self, users: Sequence[str]) -> list[Effect]:
        """The ``132`` after a ``107``: which of ``users`` are accounts (none: not sent)."""
        if self.accounts is None:
            return []
        # From the roster's few account keys, not an id_key per user: a join in a big room stays cheap.
        ids = list(self.roster.account_list().ids)
        if self.account and self.name is not None and self.key is not None and not self.roster.is_account(self.key):
            ids.append(self.name)  # our own join: the roster hears it after these replies
        return [Reply(AccountList(tuple(ids)))] if ids else []

    def took_over(self, users: tuple[str, ...], history: Sequence[Message] = (),
                  oldest_seq: int | None = None) -> list[Effect]:
        """A login took over the account's session (the older connection got ``109#replaced``): in the
        room again without a leave or a join; the usual replies otherwise."""
        return self.claimed(users, history, oldest_seq, announce=False)

    def claimed(
        self, users: tuple[str, ...], history: Sequence[Message] = (),
        oldest_seq: int | None = None, announce: bool = True,
    ) -> list[Effect]:
        """The directory gave us the ID; ``users`` is everyone now in the room, in join order (us last).

        A token (when sessions can resume here) goes out as ``112``, then ``history`` (the room's last
        messages, oldest first, taken in the same turn the connection joined the fan-out) as ``111``.
        With a store (``cursor_key``) and ``oldest_seq`` (the room's number of the oldest line sent, or
        of the next message when none was), ``141`` follows: how many, and the cursor to page back.
        """
        self._move(Move.CLAIMED)
        assert self.name is not None and self.key is not None
        effects: list[Effect] = [Publish(UserJoined(self.name, self.account), self.key)] if announce else []
        effects += [Reply(Joined(self.name)), Reply(UserList(users)), *self._accounts_online(users)]
        if self.caps.resumable:
            effects.append(IssueToken(self.name, self.key))
        effects += [Reply(History(m.ts or 0, m.sender, m.message, m.account)) for m in history]
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

    def paged(self, room: str, rows: Sequence[Row], limit: int, accounts: Sequence[bool] = ()) -> list[Effect]:
        """The store's answer to a ``016``: ``140`` lines (oldest first), then ``141`` with the next cursor.
        ``accounts``: for each row, whether its author had logged in."""
        assert self.cursor_key is not None
        marks = list(accounts) or [False] * len(rows)
        effects: list[Effect] = [Reply(Older(LOBBY, ts, author, text, account))
                                 for (_, ts, author, text), account in zip(rows, marks, strict=True)]
        oldest = rows[0][0] if len(rows) == limit else None  # fewer than asked: nothing older
        effects.append(Reply(Page(LOBBY, len(rows), page_cursor(self.cursor_key, room, oldest))))
        return effects

    def found(self, rows: Sequence[Row], accounts: Sequence[bool] = ()) -> list[Effect]:
        """The store's answer to a ``017``: ``142`` lines (newest first), then ``143``."""
        marks = list(accounts) or [False] * len(rows)
        effects: list[Effect] = [Reply(Found(LOBBY, ts, author, text, account))
                                 for (_, ts, author, text), account in zip(rows, marks, strict=True)]
        effects.append(Reply(Searched(LOBBY, len(rows))))
        return effects

    def registered_elsewhere(self) -> list[Effect]:
        """The shared directory knows the ID as an account (registered on another node meanwhile): the
        refusal a local ``001`` of a registered ID gets, and the client may ask again."""
        name = self.name
        self._move(Move.TAKEN)
        self.name = self.key = None
        self.joined_by = None
        if self.caps.legacy:
            return [Reply(IdTaken())]
        return [Reply(Error(ErrorReason.REGISTERED, f"{name} is registered; log in with 018"))]

    def taken(self) -> list[Effect]:
        """The ID is someone else's: ask again."""
        self._move(Move.TAKEN)
        self.name = self.key = None
        self.joined_by = None
        return [Reply(IdTaken())]

    def resumed(self, name: str, users: tuple[str, ...], missed: Sequence[ServerFrame]) -> list[Effect]:
        """The token was good: we are ``name`` again, silently for the others; the frames we missed, then 113."""
        self._move(Move.CLAIMED)
        self.name = name
        self.key = id_key(name)
        self.joined_by = JoinedBy.RESUME
        self.account = self.accounts is not None and self.accounts.registry.registered(self.key)
        return [Reply(Joined(name)), Reply(UserList(users)), *self._accounts_online(users),
                IssueToken(name, self.key), *(Reply(frame) for frame in missed), Reply(Resumed(len(missed)))]

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
