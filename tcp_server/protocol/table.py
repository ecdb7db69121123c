"""The protocol table: one entry per code, and the one parse and one serialize built from it.

Like h11's ``READERS``/``WRITERS``: everything the program needs to know about a
code that is data (its frame type, field layout, which connection states accept
it, which budget it is charged to, its JSON event type, its text key) is one
:class:`FrameSpec` here. What is behaviour (the session's handler, the JSON
fields, the terminal and legacy renderings) is an exhaustive ``match`` ending in
``assert_never`` elsewhere, so ``mypy --strict`` names every place a new frame
must be handled. Adding a frame: a class in :mod:`.frames`, an entry here, its
handler in :mod:`.session` (client frames) or its renderings (server frames).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from .codes import ErrorReason, OutputFormat
from .frames import (
    AccountList,
    Broadcast,
    ChangePassword,
    ClientFrame,
    Error,
    FetchOlder,
    Found,
    Frame,
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
    SessionToken,
    SetFormat,
    UserJoined,
    UserLeft,
    UserList,
    Whisper,
    WhisperMessage,
    has_control_chars,
)
from .limits import canonical_address
from .passwords import Password
from .states import ConnState

# ----------------------------------------------------------------------------- fields

FieldCheck = Callable[[str, str], Any]
"""``check(code, raw)``: the field's value, or FrameError naming what is wrong."""


def raw(code: str, value: str) -> str:
    """Anything the line holds (IDs are judged later by the ID rules: ``bad-id``, not ``malformed``)."""
    return value


def non_empty(code: str, value: str) -> str:
    """An ID in a sender or target field: validated against the session's own ID later."""
    if not value:
        raise FrameError(ErrorReason.MALFORMED, f"{code}: empty ID")
    return value


def text(code: str, value: str) -> str:
    """A message: something, and nothing that could rewrite a terminal or forge a line."""
    if not value:
        raise FrameError(ErrorReason.MALFORMED, f"{code}: empty message")
    if has_control_chars(value):
        raise FrameError(ErrorReason.MALFORMED, f"{code}: control characters in message")
    return value


def token(code: str, value: str) -> str:
    """A ping token: echoed back, so no control characters; may be empty."""
    if has_control_chars(value):
        raise FrameError(ErrorReason.MALFORMED, f"{code}: control characters in token")
    return value


_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_RESUME_TOKEN = 128


def resume_token(code: str, value: str) -> str:
    """A resume token: URL-safe base64 characters, something, not absurdly long (it is opaque otherwise)."""
    if not value:
        raise FrameError(ErrorReason.MALFORMED, f"{code}: empty token")
    if len(value) > MAX_RESUME_TOKEN or not _TOKEN_CHARS.issuperset(value):
        raise FrameError(ErrorReason.MALFORMED, f"{code}: a token is up to {MAX_RESUME_TOKEN} URL-safe characters")
    return value


MAX_ROOM = 200
MAX_CURSOR = 128


def room(code: str, value: str) -> str:
    """A room's name: something, bounded, nothing a terminal would obey."""
    if not value or len(value) > MAX_ROOM or has_control_chars(value):
        raise FrameError(ErrorReason.MALFORMED, f"{code}: a room is 1-{MAX_ROOM} characters, no control characters")
    return value


def cursor(code: str, value: str) -> str:
    """A paging cursor as the server gave it, or empty: judged by its signature later (``bad-cursor``)."""
    if has_control_chars(value):
        raise FrameError(ErrorReason.MALFORMED, f"{code}: control characters in the cursor")
    if len(value) > MAX_CURSOR:
        raise FrameError(ErrorReason.BAD_CURSOR, f"{code}: not a cursor this server gave")
    return value


def count(code: str, value: str) -> int:
    """A non-negative decimal number (a timestamp in ms, a frame count): ASCII digits only."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 18:
        raise FrameError(ErrorReason.MALFORMED, f"{code}: {value[:20]!r} is not a number")
    return int(value)


def address(code: str, value: str) -> str:
    """The real address a gateway names: an IP address without a zone, written canonically (IPv4-mapped
    IPv6 as IPv4), once, before bans, per-address limits and logs see it."""
    if not value:
        raise FrameError(ErrorReason.MALFORMED, f"{code}: empty address")
    try:
        return canonical_address(value)
    except ValueError:
        raise FrameError(ErrorReason.MALFORMED, f"{code}: the address must be an IP address without a zone") from None


def password(code: str, value: str) -> Password:
    """A password: anything (the password rules judge it later, and never echo it); hidden from here on."""
    return Password(value)


def output_format(code: str, value: str) -> OutputFormat:
    try:
        return OutputFormat(value)
    except ValueError:
        raise FrameError(ErrorReason.MALFORMED, f"{code}: unknown format {value[:16]!r}") from None


def reason(code: str, value: str) -> ErrorReason:
    try:
        return ErrorReason(value)
    except ValueError:
        raise FrameError(ErrorReason.MALFORMED, f"{code}: unknown reason {value[:32]!r}") from None


# ----------------------------------------------------------------------------- the table


class Delivery(Enum):
    """Who sends a server frame to a session, and so which edges carry it."""

    ANSWER = auto()
    """The session's own news or an answer to its own request: written by its own connection only."""
    ROOM = auto()
    """The room sends it to its members: the fan-out log, the Redis channel (:mod:`..room.redis_bus`), the
    parked sessions' windows (both stores) and the resume replay carry it; it is counted."""
    DIRECT = auto()
    """One member sends it to another (a whisper): the Redis channel carries it to the holder's node, the
    parked session's window keeps it; it is counted."""


class Tone(Enum):
    """What a server frame is to the person reading it: the terminal's colour, the page's style."""

    INFO = "info"
    """News of one's own session, answers (joined, left, the user list, a page of history)."""
    NOTICE = "notice"
    """News of the room (someone joined or left, an operator's notice)."""
    MESSAGE = "message"
    WHISPER = "whisper"
    ERROR = "error"


SELF = "@self"
"""In :attr:`FrameSpec.browser_keys`: this field is the gateway's own confirmed ID, never the browser's."""


class Budget(Enum):
    """Which of a connection's token buckets a client frame is charged to."""

    MESSAGE = auto()
    """The flood bucket (``--flood-rate``/``--flood-burst``): what reaches other people."""
    CONTROL = auto()
    """A separate, generous bucket: pings and the once-only set-up frames still cost something."""
    SEARCH = auto()
    """Searches of the stored history (``--search-rate``): each one reads the database."""


@dataclass(frozen=True, slots=True)
class FrameSpec:
    """One code of the protocol."""

    cls: type[Any]
    code: str
    fields: tuple[FieldCheck, ...]
    """One check per field, in wire order (the frame class's constructor order)."""
    tail: bool = False
    """The last field is the rest of the line: it keeps every ``#``."""
    variadic: bool = False
    """Any number of fields, all of one kind (107)."""
    optional_last: bool = False
    """The last field may be missing altogether (109's TEXT)."""
    # client frames
    states: tuple[ConnState, ...] = ()
    """Connection states that accept this frame; in any other the session refuses it. A tuple, not a
    set: ``in`` compares enum members by identity, with no Python-level hash per frame."""
    budget: Budget | None = None
    browser: str = ""
    """The browser's JSON ``type`` for this frame (PROTOCOL.md, "Browser JSON"); empty: the gateway
    sends it itself (``000``, ``007``), never a page."""
    browser_keys: tuple[str, ...] = ()
    """The JSON key of each field, in wire order (:data:`SELF`: the gateway fills in the confirmed ID)."""
    # server frames
    event: str = ""
    """Its JSON event type (PROTOCOL.md, "Browser JSON")."""
    keys: tuple[str, ...] = ()
    """The JSON event's key for each field, in wire order (a variadic frame's one key holds a list)."""
    delivery: Delivery = Delivery.ANSWER
    counted: bool = field(init=False, default=False)
    """Derived from :attr:`delivery`: a frame the room or a whisper sends a session (not an answer to
    its own request). The session's position (``008#TOKEN#POSITION``) is how many of these it has,
    and a parked session keeps every one of them (``114`` included), in both stores."""
    tone: Tone = Tone.INFO
    legacy: bool = True
    """The seed's client (the legacy port) is sent it, as its Korean text; not what it cannot use."""
    text_keys: tuple[str, ...] = ()
    """The sentences (:mod:`.texts`) its rendering uses: the page is given these (in both languages)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "counted", self.delivery is not Delivery.ANSWER)


_PRE_JOIN = (ConnState.NEW, ConnState.GATEWAY)
_JOINED = (ConnState.JOINED,)
_OPEN = (ConnState.JOINED, ConnState.NEW, ConnState.GATEWAY)

CLIENT_SPECS: tuple[FrameSpec, ...] = (
    FrameSpec(GatewayHello, "000", (raw, address), tail=True, states=(ConnState.NEW,),
              budget=Budget.CONTROL),
    FrameSpec(Join, "001", (raw,), tail=True, states=_PRE_JOIN, budget=Budget.MESSAGE,
              browser="join", browser_keys=("id",)),
    FrameSpec(Broadcast, "002", (non_empty, text), tail=True, states=_JOINED, budget=Budget.MESSAGE,
              browser="say", browser_keys=(SELF, "text")),
    FrameSpec(Whisper, "003", (non_empty, non_empty, text), tail=True, states=_JOINED, budget=Budget.MESSAGE,
              browser="whisper", browser_keys=(SELF, "to", "text")),
    FrameSpec(Leave, "004", (non_empty,), states=_JOINED, budget=Budget.MESSAGE, browser="leave",
              browser_keys=(SELF,)),
    # 005 before a join too: who is here before one picks an ID (a page's welcome screen asks it).
    FrameSpec(ListUsers, "005", (non_empty,), states=(*_PRE_JOIN, *_JOINED), budget=Budget.MESSAGE,
              browser="who", browser_keys=(SELF,)),
    FrameSpec(Ping, "006", (token,), tail=True, states=_OPEN, budget=Budget.CONTROL, browser="ping",
              browser_keys=("token",)),
    FrameSpec(SetFormat, "007", (output_format,), states=_PRE_JOIN, budget=Budget.CONTROL),
    FrameSpec(ResumeSession, "008", (resume_token, count), optional_last=True, states=_PRE_JOIN,
              budget=Budget.MESSAGE, browser="resume", browser_keys=("token", "position")),
    FrameSpec(ListRooms, "013", (), states=_JOINED, budget=Budget.MESSAGE, browser="rooms"),
    FrameSpec(FetchOlder, "016", (room, cursor, count), states=_JOINED, budget=Budget.MESSAGE,
              browser="older", browser_keys=("room", "cursor", "limit")),
    FrameSpec(Search, "017", (room, text), tail=True, states=_JOINED, budget=Budget.SEARCH,
              browser="search", browser_keys=("room", "text")),
    FrameSpec(Login, "018", (raw, password), tail=True, states=_PRE_JOIN, budget=Budget.MESSAGE,
              browser="login", browser_keys=("id", "password")),
    FrameSpec(Register, "019", (password,), tail=True, states=_JOINED, budget=Budget.MESSAGE,
              browser="register", browser_keys=("password",)),
    FrameSpec(ChangePassword, "020", (password,), tail=True, states=_JOINED, budget=Budget.MESSAGE,
              browser="passwd", browser_keys=("password",)),
)

SERVER_SPECS: tuple[FrameSpec, ...] = (
    FrameSpec(Joined, "100", (raw,), event="joined", keys=("id",), text_keys=("joined",)),
    FrameSpec(IdTaken, "101", (), event="id_taken", text_keys=("id_taken",), tone=Tone.ERROR),
    FrameSpec(Left, "102", (), event="left", text_keys=("left",)),
    FrameSpec(UserJoined, "103", (raw,), event="user_joined", keys=("id",), delivery=Delivery.ROOM,
              text_keys=("user_joined",), tone=Tone.NOTICE),
    FrameSpec(UserLeft, "104", (raw,), event="user_left", keys=("id",), delivery=Delivery.ROOM,
              text_keys=("user_left",), tone=Tone.NOTICE),
    FrameSpec(Message, "105", (raw, raw), tail=True, event="message", keys=("from", "text"),
              delivery=Delivery.ROOM, text_keys=("message",), tone=Tone.MESSAGE),
    FrameSpec(WhisperMessage, "106", (raw, raw), tail=True, event="whisper", keys=("from", "text"),
              delivery=Delivery.DIRECT, text_keys=("whisper",), tone=Tone.WHISPER),
    FrameSpec(UserList, "107", (raw,), variadic=True, event="users", keys=("ids",)),
    FrameSpec(NoSuchUser, "108", (raw,), event="no_such_user", keys=("to",), text_keys=("no_such_user",),
              tone=Tone.ERROR),
    FrameSpec(Error, "109", (reason, raw), tail=True, optional_last=True, event="error", keys=("reason", "text"),
              text_keys=("error",), tone=Tone.ERROR),
    FrameSpec(Pong, "110", (token,), tail=True, event="pong", keys=("token",), text_keys=("pong",), legacy=False),
    FrameSpec(History, "111", (count, raw, raw), tail=True, event="history", keys=("ts", "from", "text"),
              text_keys=("message",), tone=Tone.MESSAGE),
    # The seed's client cannot resume, nor tell accounts from guests.
    FrameSpec(SessionToken, "112", (resume_token,), event="session", keys=("token",), text_keys=("session",),
              legacy=False),
    FrameSpec(Resumed, "113", (count,), event="resumed", keys=("missed",), text_keys=("resumed",), legacy=False),
    FrameSpec(ServerNotice, "114", (raw,), tail=True, event="notice", keys=("text",), delivery=Delivery.ROOM,
              text_keys=("server_notice",), tone=Tone.NOTICE),
    FrameSpec(RoomListed, "126", (raw, count, raw), tail=True, event="room_listed", keys=("room", "count", "topic"),
              text_keys=("room_listed",)),
    FrameSpec(RoomsListed, "127", (count,), event="rooms_listed", keys=("total",), text_keys=("rooms_listed",)),
    FrameSpec(Registered, "130", (raw,), event="registered", keys=("id",), text_keys=("registered",)),
    FrameSpec(PasswordChanged, "131", (), event="password_changed", text_keys=("password_changed",)),
    FrameSpec(AccountList, "132", (raw,), variadic=True, event="accounts", keys=("ids",), text_keys=("accounts",),
              legacy=False),
    FrameSpec(Older, "140", (raw, count, raw, raw), tail=True, event="older", keys=("room", "ts", "from", "text"),
              text_keys=("message",), tone=Tone.MESSAGE),
    FrameSpec(Page, "141", (raw, count, raw), event="page", keys=("room", "count", "cursor"),
              text_keys=("page", "page_end")),
    FrameSpec(Found, "142", (raw, count, raw, raw), tail=True, event="found", keys=("room", "ts", "from", "text"),
              text_keys=("message",), tone=Tone.MESSAGE),
    FrameSpec(Searched, "143", (raw, count), event="searched", keys=("room", "count"), text_keys=("searched",)),
)

CLIENT: dict[str, FrameSpec] = {spec.code: spec for spec in CLIENT_SPECS}
SERVER: dict[str, FrameSpec] = {spec.code: spec for spec in SERVER_SPECS}
BY_CLASS: dict[type[Any], FrameSpec] = {spec.cls: spec for spec in (*CLIENT_SPECS, *SERVER_SPECS)}


BROWSER: dict[str, FrameSpec] = {spec.browser: spec for spec in CLIENT_SPECS if spec.browser}
"""The browser's JSON message types (PROTOCOL.md, "Browser JSON") and the client frame each becomes."""

TEXT_KEYS: tuple[str, ...] = tuple(dict.fromkeys(key for spec in SERVER_SPECS for key in spec.text_keys))
"""Every sentence a server frame's rendering uses, once: what the page is given in both languages."""

COUNTED_EVENTS: tuple[str, ...] = tuple(spec.event for spec in SERVER_SPECS if spec.counted)
"""The JSON event types a position counts (the page is given this list, never a copy)."""


def spec_of(frame: Frame) -> FrameSpec:
    return BY_CLASS[type(frame)]


def counted(frame: ServerFrame) -> bool:
    """``frame`` moves its session's position by one (see :attr:`FrameSpec.counted`)."""
    return BY_CLASS[type(frame)].counted


# ----------------------------------------------------------------------------- parse


def _parse(line: str, specs: dict[str, FrameSpec]) -> Any:
    code = line[:3]
    spec = specs.get(code)
    if spec is None:
        raise FrameError(ErrorReason.UNKNOWN_CODE, f"unknown code {code[:16]!r}")
    checks = spec.fields
    if len(line) > 3:
        if line[3] != "#":
            raise FrameError(ErrorReason.MALFORMED, f"{code}: code must be followed by '#'")
        rest: str | None = line[4:]
    else:
        rest = None
    if spec.variadic:
        parts = [] if rest is None else rest.split("#")
        check = checks[0]
        return spec.cls(tuple(check(code, part) for part in parts))
    n = len(checks)
    if rest is None:
        parts = []
    elif spec.tail:
        parts = rest.split("#", n - 1)
    else:
        parts = rest.split("#")
    if len(parts) != n and not (spec.optional_last and len(parts) == n - 1 and rest):
        raise FrameError(ErrorReason.MALFORMED, f"{code} takes {n} field(s), got {len(parts)}")
    # Unrolled for the usual arities: this runs once for every frame a client sends (the whisper
    # benchmark's hot path), and a generator per frame cost more than the checks themselves.
    if n == 2 and len(parts) == 2:
        return spec.cls(checks[0](code, parts[0]), checks[1](code, parts[1]))
    if n == 1 and parts:
        return spec.cls(checks[0](code, parts[0]))
    if n == 3:
        return spec.cls(checks[0](code, parts[0]), checks[1](code, parts[1]), checks[2](code, parts[2]))
    return spec.cls(*[check(code, part) for check, part in zip(checks, parts, strict=False)])


def parse_client(line: str) -> ClientFrame:
    """Parse one client line (without LF) or raise :class:`FrameError`.

    IDs are returned as sent; the session validates and normalises them.
    """
    frame: ClientFrame = _parse(line, CLIENT)
    return frame


def parse_server(line: str) -> ServerFrame:
    """Parse one server line (without LF) or raise :class:`FrameError`."""
    frame: ServerFrame = _parse(line, SERVER)
    return frame


# ----------------------------------------------------------------------------- serialize


def serialize(frame: Frame) -> bytes:
    """Encode ``frame`` as one LF-terminated line.

    Raises ValueError for a field that would break framing (CR/LF anywhere, or
    ``#`` in a field that is not the free-text tail): the caller's bug, not the peer's.
    """
    fields = frame.fields()
    code = frame.CODE
    if not fields:
        return f"{code}\n".encode()
    line = "#".join((code, *fields))
    if "\n" in line or "\r" in line:
        raise ValueError(f"{code}: a field contains CR or LF")
    tail = BY_CLASS[type(frame)].tail
    if line.count("#") != len(fields) and (not tail or any("#" in value for value in fields[:-1])):
        raise ValueError(f"{code}: '#' in a field that is not the free-text tail")
    return (line + "\n").encode()


def fits(frame: Frame, max_line: int) -> bool:
    """``frame`` is at most ``max_line`` bytes on the wire: what a client checks before sending, to say why."""
    return len(serialize(frame)) <= max_line


def encode_error(reason: ErrorReason, detail: str) -> bytes:
    """A 109 with any CR/LF in the detail folded to spaces (details may quote the peer)."""
    return serialize(Error(reason, detail.replace("\n", " ").replace("\r", " ")))
