"""The client side of the protocol, pure: what a server frame means to a client, and what a client may send.

Like h11's role-agnostic state machine, it does no I/O: a shell (the terminal
client, the gateway's bridge) tells it what it sends (:meth:`ClientSide.send`),
what the server said (:meth:`ClientSide.receive`) and when its connection
opened or closed, and gets back *effects* to carry out. It keeps what every
client of this protocol must know and used to work out by hand: whether it is
joined and as whom (``100``), its resume token (``112``), its position (how many
counted frames it has, for ``008#TOKEN#POSITION``), whether a resume's replay is
under way (``100`` after ``008`` until ``113``), whether the session ended
(``102``, or a ``109`` that ends it), which pongs answer its own keepalive, and
the room's size (``107``, ``103``, ``104``).

A shell that does not parse every frame (the bridge relays JSON event lines as
bytes) feeds only the few it must know about; :func:`frame_of_event` turns one
such event back into its frame through the table, and :meth:`ClientSide.room_moved`
takes a net count of joins and leaves found by a byte scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from typing import Any, Union

from .codes import ErrorReason
from .frames import (
    ClientFrame,
    Error,
    FrameError,
    IdTaken,
    Join,
    Joined,
    Leave,
    Left,
    Login,
    Ping,
    Pong,
    Resumed,
    ResumeSession,
    ServerFrame,
    SessionToken,
    UserJoined,
    UserLeft,
    UserList,
)
from .table import SERVER_SPECS, FrameSpec, counted

KEEPALIVE_PREFIX = "keepalive-"
"""Tokens of a client's own idle pings: their pongs say the server is alive and are shown to nobody."""


def keepalive_ping(number: int) -> Ping:
    """The ``number``-th idle ping of a connection."""
    return Ping(f"{KEEPALIVE_PREFIX}{number}")


class Phase(Enum):
    """Where a client's connection is, as far as the protocol goes."""

    CLOSED = auto()
    """No connection (before the first one, or after one ended): a join, login or resume needs a new one."""
    OPEN = auto()
    """Connected, not in the room: may ``001``/``018``/``008`` (again, after a refusal)."""
    JOINING = auto()
    """``001`` or ``018`` sent: a ``100`` answers it, or a ``101``/``109``."""
    RESUMING = auto()
    """``008`` sent: a ``100``, the replay and ``113``; or a ``109``."""
    JOINED = auto()
    CLOSING = auto()
    """``004`` sent, ``102`` received, or a ``109`` that ends the session: the server closes this
    connection, and nothing more goes on it."""


class Retry(Enum):
    """What a client may do after its join, login or resume was refused."""

    ANOTHER_ID = auto()
    """``101``, ``109#bad-id``, ``109#registered``: the connection stays; another ID may work."""
    AFRESH = auto()
    """``109#bad-token``, ``109#gap`` (to ``008``): the session is over; join afresh with ``001``, and say
    that lines may be missing."""
    RECONNECT = auto()
    """``109#not-joined``: the join deadline passed and the server is closing; connect and ask again."""
    NO = auto()
    """Any other reason (busy, banned, bad-login, ...): the user must be told, not retried for."""


ANOTHER_ID_REASONS = frozenset({ErrorReason.BAD_ID, ErrorReason.REGISTERED})
AFRESH_REASONS = frozenset({ErrorReason.BAD_TOKEN, ErrorReason.GAP})
SESSION_ENDING = frozenset({ErrorReason.REPLACED, ErrorReason.KICKED, ErrorReason.BANNED, ErrorReason.FORBIDDEN})
"""``109`` reasons that end a joined session: the server closes, and the session's token is spent. (Not
``shutdown``: a parked session may outlive its node, and the client resumes it elsewhere.)"""

_IN_ROOM = (Phase.JOINED, Phase.CLOSING)
_CONNECTED = (Phase.OPEN, Phase.JOINING, Phase.RESUMING, Phase.JOINED)
_NOT_JOINED = Error(ErrorReason.NOT_JOINED, "join first")

# ----------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send this frame on the connection."""

    frame: ClientFrame


@dataclass(frozen=True, slots=True)
class Connect:
    """There is no usable connection: open a new one, then send this frame on it."""

    frame: ClientFrame


@dataclass(frozen=True, slots=True)
class Answer:
    """Nothing goes to the server: answer the user with this frame yourself (a pong, a ``not-joined``)."""

    frame: ServerFrame


@dataclass(frozen=True, slots=True)
class Show:
    """A frame for the user."""

    frame: ServerFrame


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The server took the join, login or resume: ``id`` is the ID as it confirmed it (after NFC)."""

    id: str
    resumed: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """The join, login or resume asked for was refused (``reason`` None: a ``101``)."""

    reason: ErrorReason | None
    retry: Retry


@dataclass(frozen=True, slots=True)
class TokenIssued:
    """Keep this resume token (never show or log it): a reconnect resumes with it."""

    token: str


@dataclass(frozen=True, slots=True)
class Replayed:
    """The resume's replay is over (``113``): ``missed`` frames came again."""

    missed: int


@dataclass(frozen=True, slots=True)
class RoomCount:
    """The room's size as this client now knows it."""

    count: int


@dataclass(frozen=True, slots=True)
class Alive:
    """A pong to our own keepalive: the server is there; nothing to show."""


@dataclass(frozen=True, slots=True)
class Ended:
    """The session is over (``reason`` None: the ``102`` to our ``004``); the server closes the connection."""

    reason: ErrorReason | None


@dataclass(frozen=True, slots=True)
class Unexpected:
    """A frame out of order (a ``113`` without ``008``, a second ``100``): it changed nothing; log it."""

    frame: ServerFrame
    why: str


Effect = Union[Transmit, Connect, Answer, Show, Confirmed, Refused, TokenIssued, Replayed, RoomCount, Alive, Ended,
               Unexpected]

# ----------------------------------------------------------------------------- the state machine


class ClientSide:
    """One client's view of its session with the server, across its connections (a resume keeps it)."""

    __slots__ = ("phase", "id", "token", "position", "replaying", "room", "refusal", "left")

    def __init__(self, *, connected: bool = True) -> None:
        self.phase = Phase.OPEN if connected else Phase.CLOSED
        self.id: str | None = None
        """Our ID as the server last confirmed it (kept after a drop: a rejoin asks for it again)."""
        self.token: str | None = None
        """The resume token (``112``) not yet spent: single use, gone when the session ends."""
        self.position = 0
        """How many counted frames of this session we have: a resume asks for what follows."""
        self.replaying = False
        self.room: int | None = None
        """The room's size from the last ``107`` and the ``103``/``104`` after it (None: not heard yet)."""
        self.refusal: ErrorReason | None = None
        """Until this connection joins: the reason of the server's last ``109`` (a refusal of one user or of all)."""
        self.left = False
        """This connection's session ended on purpose (``004``, ``102``, an ending ``109``): its close is expected."""

    # ------------------------------------------------------------ what is known

    @property
    def joined(self) -> bool:
        """In the room, on an open connection: frames that need an ID may be sent."""
        return self.phase is Phase.JOINED

    @property
    def connected(self) -> bool:
        """A connection that may carry frames (not closed, not closing)."""
        return self.phase in _CONNECTED

    # ------------------------------------------------------------ the connection

    def opened(self) -> None:
        """A new connection: not in the room yet, but the ID, token and position are kept for a resume."""
        self.phase = Phase.OPEN
        self.replaying = False
        self.room = None
        self.refusal = None
        self.left = False

    def closed(self) -> None:
        """The connection is gone (``left`` and ``id`` stay readable: was its close expected, had it joined)."""
        self.phase = Phase.CLOSED
        self.replaying = False
        self.room = None

    # ------------------------------------------------------------ client -> server

    def send(self, frame: ClientFrame) -> list[Effect]:
        """What to do with a frame the user wants sent (the shell sends only what comes back as Transmit)."""
        phase = self.phase
        if phase not in _CONNECTED:
            if isinstance(frame, Ping):
                return [Answer(Pong(frame.token))]  # nothing to ask a server that is not there
            if isinstance(frame, (Join, Login, ResumeSession)):
                return [Connect(frame)]
            return [Answer(_NOT_JOINED)]
        if phase is Phase.OPEN:
            if isinstance(frame, (Join, Login)):
                self.phase = Phase.JOINING
            elif isinstance(frame, ResumeSession):
                self.phase = Phase.RESUMING
                self.token = None  # single use, whatever the answer
        elif phase is Phase.JOINED and isinstance(frame, Leave):
            self.phase = Phase.CLOSING
            self.left = True
        return [Transmit(frame)]

    # ------------------------------------------------------------ server -> client

    def receive(self, frame: ServerFrame) -> list[Effect]:
        """What a frame from the server means to this client."""
        if counted(frame):  # (the table says which frames a position counts)
            if self.phase not in _IN_ROOM:
                return [Unexpected(frame, f"{frame.CODE} outside the room")]
            self.position += 1
        match frame:
            case Joined():
                return self._joined(frame)
            case IdTaken():
                if self.phase is not Phase.JOINING:
                    return [Unexpected(frame, "101 answers only a join")]
                self.phase = Phase.OPEN
                return [Refused(None, Retry.ANOTHER_ID), Show(frame)]
            case Error():
                return self._error(frame)
            case Left():
                if self.phase not in _IN_ROOM:
                    return [Unexpected(frame, "102 outside the room")]
                self._end()
                return [Show(frame), Ended(None)]
            case UserJoined() | UserLeft():
                if self.replaying or self.room is None:
                    return [Show(frame)]  # a replayed join or leave is already in the 107 that came first
                return [Show(frame), *self.room_moved(1 if isinstance(frame, UserJoined) else -1)]
            case UserList():
                self.room = len(frame.ids)  # (a 005 before the join counts the room too)
                return [Show(frame), RoomCount(self.room)]
            case Pong():
                return [Alive()] if frame.token.startswith(KEEPALIVE_PREFIX) else [Show(frame)]
            case SessionToken():
                if self.phase is not Phase.JOINED:
                    return [Unexpected(frame, "112 outside a session")]
                self.token = frame.token
                return [TokenIssued(frame.token)]
            case Resumed():
                if not self.replaying or self.phase is not Phase.JOINED:
                    return [Unexpected(frame, "113 without a resume")]
                self.replaying = False
                return [Replayed(frame.missed), Show(frame)]
            case _:
                # Every other frame is for the user only: a new frame needs nothing here unless it moves
                # the client's state (whether it counts in the position is the table's `counted`).
                return [Show(frame)]

    def room_moved(self, delta: int) -> list[Effect]:
        """``delta`` more joins than leaves, outside a replay (a byte scan's count): the room's new size."""
        if self.room is None or self.replaying:
            return []
        self.room = max(0, self.room + delta)
        return [RoomCount(self.room)]

    def _joined(self, frame: Joined) -> list[Effect]:
        phase = self.phase
        if phase is Phase.RESUMING:
            self.phase = Phase.JOINED
            self.id = frame.id
            self.replaying = True  # what followed our position comes next, then 113
            return [Confirmed(frame.id, resumed=True)]  # the user never saw us leave: nothing to show
        if phase is Phase.OPEN or phase is Phase.JOINING:  # (OPEN: a shell that relays its 001 unseen)
            self.phase = Phase.JOINED
            self.id = frame.id
            self.position = 0  # a fresh session
            self.token = None
            self.replaying = False
            self.refusal = None
            return [Confirmed(frame.id, resumed=False), Show(frame)]
        return [Unexpected(frame, "100 while " + ("already joined" if phase in _IN_ROOM else "not connected"))]

    def _error(self, frame: Error) -> list[Effect]:
        reason = frame.reason
        phase = self.phase
        if phase is Phase.JOINED:
            if reason in SESSION_ENDING:
                self._end()
                return [Show(frame), Ended(reason)]
            return [Show(frame)]
        if phase is Phase.CLOSING:
            return [Show(frame)]
        self.refusal = reason
        if phase is Phase.JOINING or phase is Phase.RESUMING:
            self.phase = Phase.OPEN
            if reason is ErrorReason.NOT_JOINED:
                return [Refused(reason, Retry.RECONNECT)]  # the join deadline: nothing for the user
            if phase is Phase.RESUMING and reason in AFRESH_REASONS:
                return [Refused(reason, Retry.AFRESH), Show(frame)]
            if phase is Phase.JOINING and reason in ANOTHER_ID_REASONS:
                return [Refused(reason, Retry.ANOTHER_ID), Show(frame)]
            return [Refused(reason, Retry.NO), Show(frame)]
        return [Show(frame)]  # OPEN or CLOSED: a refusal before anything was asked (busy at once)

    def _end(self) -> None:
        self.phase = Phase.CLOSING
        self.left = True
        self.token = None
        self.replaying = False


# ----------------------------------------------------------------------------- JSON events

_BY_EVENT: dict[str, FrameSpec] = {spec.event: spec for spec in SERVER_SPECS}


def frame_of_event(event: dict[str, Any]) -> ServerFrame:
    """The server frame a JSON event (``007#json``, :mod:`.events`) stands for, checked as a line would be.

    Raises :class:`FrameError` (or KeyError/TypeError for a malformed event) like a bad line.
    """
    spec = _BY_EVENT.get(str(event.get("type")))
    if spec is None:
        raise FrameError(ErrorReason.UNKNOWN_CODE, f"unknown event {str(event.get('type'))[:16]!r}")
    code, checks = spec.code, spec.fields
    if spec.variadic:
        values = event[spec.keys[0]]
        if not isinstance(values, list):
            raise FrameError(ErrorReason.MALFORMED, f"{spec.event}: {spec.keys[0]} is not a list")
        frame: ServerFrame = spec.cls(tuple(checks[0](code, str(value)) for value in values))
        return frame
    frame = spec.cls(*[check(code, str(event[key])) for check, key in zip(checks, spec.keys, strict=True)])
    return frame

