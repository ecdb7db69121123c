"""The client side of the protocol without any I/O: (state, frame) -> (new state, effects), h11-style."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import pytest

from tcp_server.protocol.client_side import (
    Alive,
    Answer,
    ClientSide,
    Confirmed,
    Connect,
    Effect,
    Ended,
    Phase,
    Refused,
    Replayed,
    Retry,
    RoomCount,
    Show,
    TokenIssued,
    Transmit,
    Unexpected,
    frame_of_event,
    keepalive_ping,
)
from tcp_server.protocol.codes import ErrorReason
from tcp_server.protocol.events import to_event
from tcp_server.protocol.frames import (
    Broadcast,
    ClientFrame,
    Error,
    FrameError,
    History,
    IdTaken,
    Join,
    Joined,
    Leave,
    Left,
    ListUsers,
    Login,
    Message,
    Page,
    Ping,
    Pong,
    Resumed,
    ResumeSession,
    ServerFrame,
    ServerNotice,
    SessionToken,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
)
from tcp_server.protocol.passwords import Password
from tcp_server.protocol.table import BY_CLASS, SERVER_SPECS, FrameSpec
from tests.test_table_edges import sample


@dataclass
class State:
    """A client side's observable state (what a table row starts from and ends in)."""

    phase: Phase
    id: str | None = None
    token: str | None = None
    position: int = 0
    replaying: bool = False
    room: int | None = None
    refusal: ErrorReason | None = None
    left: bool = False

    def make(self) -> ClientSide:
        side = ClientSide()
        for name in ("phase", "id", "token", "position", "replaying", "room", "refusal", "left"):
            setattr(side, name, getattr(self, name))
        return side

    @staticmethod
    def of(side: ClientSide) -> State:
        return State(side.phase, side.id, side.token, side.position, side.replaying, side.room, side.refusal,
                     side.left)


OPEN = State(Phase.OPEN)
JOINING = State(Phase.JOINING)
RESUMING = State(Phase.RESUMING, id="alice", position=7)
JOINED = State(Phase.JOINED, id="alice", token="tok", position=3, room=2)
REPLAYING = State(Phase.JOINED, id="alice", position=7, replaying=True, room=2)
CLOSING = State(Phase.CLOSING, id="alice", position=3, room=2, left=True)
CLOSED = State(Phase.CLOSED, id="alice", token="tok", position=3)


def but(state: State, **changes: Any) -> State:
    return State(**{**state.__dict__, **changes})


def ends(reason: ErrorReason) -> tuple[str, State, ServerFrame, State, list[Effect]]:
    return (f"109#{reason} ends the session", JOINED, Error(reason, "x"),
            but(JOINED, phase=Phase.CLOSING, token=None, left=True), [Show(Error(reason, "x")), Ended(reason)])


NOTICE = ServerNotice("the server restarts at noon")

RECEIVE: list[tuple[str, State, ServerFrame, State, list[Effect]]] = [
    # --- joining
    ("a 100 answers a 001", JOINING, Joined("alice"),
     State(Phase.JOINED, id="alice"), [Confirmed("alice", resumed=False), Show(Joined("alice"))]),
    ("a 100 the shell did not tell us it asked for", OPEN, Joined("alice"),
     State(Phase.JOINED, id="alice"), [Confirmed("alice", resumed=False), Show(Joined("alice"))]),
    ("a fresh join forgets the old session", but(JOINING, id="bob", token="old", position=9), Joined("alice"),
     State(Phase.JOINED, id="alice"), [Confirmed("alice", resumed=False), Show(Joined("alice"))]),
    ("101: another ID may work", JOINING, IdTaken(),
     OPEN, [Refused(None, Retry.ANOTHER_ID), Show(IdTaken())]),
    ("109#bad-id: another ID may work", JOINING, Error(ErrorReason.BAD_ID, "x"),
     but(OPEN, refusal=ErrorReason.BAD_ID),
     [Refused(ErrorReason.BAD_ID, Retry.ANOTHER_ID), Show(Error(ErrorReason.BAD_ID, "x"))]),
    ("109#registered: another ID may work", JOINING, Error(ErrorReason.REGISTERED, "x"),
     but(OPEN, refusal=ErrorReason.REGISTERED),
     [Refused(ErrorReason.REGISTERED, Retry.ANOTHER_ID), Show(Error(ErrorReason.REGISTERED, "x"))]),
    ("109#busy: no retry, said", JOINING, Error(ErrorReason.BUSY, "full"),
     but(OPEN, refusal=ErrorReason.BUSY), [Refused(ErrorReason.BUSY, Retry.NO), Show(Error(ErrorReason.BUSY, "full"))]),
    ("109#not-joined: the join deadline, reconnect, nothing shown", JOINING, Error(ErrorReason.NOT_JOINED, "late"),
     but(OPEN, refusal=ErrorReason.NOT_JOINED), [Refused(ErrorReason.NOT_JOINED, Retry.RECONNECT)]),
    ("a refusal before anything was asked is noted and shown", OPEN, Error(ErrorReason.ADDRESS_LIMIT, "x"),
     but(OPEN, refusal=ErrorReason.ADDRESS_LIMIT), [Show(Error(ErrorReason.ADDRESS_LIMIT, "x"))]),
    ("a 101 without a 001", OPEN, IdTaken(), OPEN, [Unexpected(IdTaken(), "101 answers only a join")]),
    # --- resuming
    ("a 100 answers a 008: the replay starts, nothing shown", RESUMING, Joined("alice"),
     but(RESUMING, phase=Phase.JOINED, replaying=True), [Confirmed("alice", resumed=True)]),
    ("109#gap: join afresh", RESUMING, Error(ErrorReason.GAP, "x"),
     but(RESUMING, phase=Phase.OPEN, refusal=ErrorReason.GAP),
     [Refused(ErrorReason.GAP, Retry.AFRESH), Show(Error(ErrorReason.GAP, "x"))]),
    ("109#bad-token: join afresh", RESUMING, Error(ErrorReason.BAD_TOKEN, "x"),
     but(RESUMING, phase=Phase.OPEN, refusal=ErrorReason.BAD_TOKEN),
     [Refused(ErrorReason.BAD_TOKEN, Retry.AFRESH), Show(Error(ErrorReason.BAD_TOKEN, "x"))]),
    ("109#bad-id to a 008 is no reason to pick another ID", RESUMING, Error(ErrorReason.BAD_ID, "x"),
     but(RESUMING, phase=Phase.OPEN, refusal=ErrorReason.BAD_ID),
     [Refused(ErrorReason.BAD_ID, Retry.NO), Show(Error(ErrorReason.BAD_ID, "x"))]),
    ("a 113 ends the replay", REPLAYING, Resumed(4),
     but(REPLAYING, replaying=False), [Replayed(4), Show(Resumed(4))]),
    ("a replayed join counts in the position, not in the room", REPLAYING, UserJoined("dave"),
     but(REPLAYING, position=8), [Show(UserJoined("dave"))]),
    ("a replayed leave too", REPLAYING, UserLeft("dave"),
     but(REPLAYING, position=8), [Show(UserLeft("dave"))]),
    ("a replayed message", REPLAYING, Message("bob", "hi"),
     but(REPLAYING, position=8), [Show(Message("bob", "hi"))]),
    ("a 113 without a 008", JOINED, Resumed(1), JOINED, [Unexpected(Resumed(1), "113 without a resume")]),
    ("a 113 before the 100", RESUMING, Resumed(1), RESUMING, [Unexpected(Resumed(1), "113 without a resume")]),
    # --- joined
    ("112: keep the token, show nothing", but(JOINED, token=None), SessionToken("t2"),
     but(JOINED, token="t2"), [TokenIssued("t2")]),
    ("a 112 before any join", OPEN, SessionToken("t"), OPEN, [Unexpected(SessionToken("t"), "112 outside a session")]),
    ("a 100 twice", JOINED, Joined("mallory"), JOINED,
     [Unexpected(Joined("mallory"), "100 while already joined")]),
    ("a join counts", JOINED, UserJoined("bob"), but(JOINED, position=4, room=3),
     [Show(UserJoined("bob")), RoomCount(3)]),
    ("a leave counts", JOINED, UserLeft("bob"), but(JOINED, position=4, room=1),
     [Show(UserLeft("bob")), RoomCount(1)]),
    ("a leave never makes the room negative", but(JOINED, room=0), UserLeft("bob"), but(JOINED, position=4, room=0),
     [Show(UserLeft("bob")), RoomCount(0)]),
    ("a join before any 107 moves the position only", but(JOINED, room=None), UserJoined("bob"),
     but(JOINED, position=4, room=None), [Show(UserJoined("bob"))]),
    ("107 sets the room", but(JOINED, room=None), UserList(("alice", "bob", "carol")),
     but(JOINED, room=3), [Show(UserList(("alice", "bob", "carol"))), RoomCount(3)]),
    ("107 before a join (005) counts the room too", OPEN, UserList(("bob",)),
     but(OPEN, room=1), [Show(UserList(("bob",))), RoomCount(1)]),
    ("a message counts", JOINED, Message("bob", "hi"), but(JOINED, position=4), [Show(Message("bob", "hi"))]),
    ("a whisper counts", JOINED, WhisperMessage("bob", "hi"), but(JOINED, position=4),
     [Show(WhisperMessage("bob", "hi"))]),
    ("a notice counts", JOINED, NOTICE, but(JOINED, position=4), [Show(NOTICE)]),
    ("history does not count", JOINED, History(1, "bob", "hi"), JOINED, [Show(History(1, "bob", "hi"))]),
    ("a page does not count", JOINED, Page("lobby", 0, ""), JOINED, [Show(Page("lobby", 0, ""))]),
    ("a message before any join", OPEN, Message("bob", "hi"), OPEN,
     [Unexpected(Message("bob", "hi"), "105 outside the room")]),
    ("our keepalive's pong is shown to nobody", JOINED, Pong("keepalive-3"), JOINED, [Alive()]),
    ("someone else's pong is shown", JOINED, Pong("ack-1"), JOINED, [Show(Pong("ack-1"))]),
    ("109#muted changes nothing", JOINED, Error(ErrorReason.MUTED, "x"), JOINED, [Show(Error(ErrorReason.MUTED, "x"))]),
    ("109#shutdown keeps the token: the session may resume elsewhere", JOINED, Error(ErrorReason.SHUTDOWN, "x"),
     JOINED, [Show(Error(ErrorReason.SHUTDOWN, "x"))]),
    # --- the end
    ("102 after our 004", CLOSING, Left(), CLOSING, [Show(Left()), Ended(None)]),
    ("102 unasked ends the session too", JOINED, Left(), but(JOINED, phase=Phase.CLOSING, token=None, left=True),
     [Show(Left()), Ended(None)]),
    ("a 102 without a join", OPEN, Left(), OPEN, [Unexpected(Left(), "102 outside the room")]),
    *[ends(reason) for reason in (ErrorReason.KICKED, ErrorReason.REPLACED, ErrorReason.BANNED, ErrorReason.FORBIDDEN)],
    ("a kick ends a replay", REPLAYING, Error(ErrorReason.KICKED, "x"),
     but(REPLAYING, phase=Phase.CLOSING, replaying=False, left=True),
     [Show(Error(ErrorReason.KICKED, "x")), Ended(ErrorReason.KICKED)]),
    ("what comes while closing is still shown", CLOSING, Message("bob", "bye"), but(CLOSING, position=4),
     [Show(Message("bob", "bye"))]),
    ("a 100 after the connection closed", CLOSED, Joined("alice"), CLOSED,
     [Unexpected(Joined("alice"), "100 while not connected")]),
]


@pytest.mark.parametrize(("start", "frame", "after", "effects"), [row[1:] for row in RECEIVE],
                         ids=[row[0] for row in RECEIVE])
def test_receive(start: State, frame: ServerFrame, after: State, effects: list[Effect]) -> None:
    side = start.make()
    assert side.receive(frame) == effects
    assert State.of(side) == after


PASSWORD = Password("correct horse")

SEND: list[tuple[str, State, ClientFrame, State, list[Effect]]] = [
    ("001 asks to join", OPEN, Join("alice"), JOINING, [Transmit(Join("alice"))]),
    ("018 asks to join", OPEN, Login("alice", PASSWORD), JOINING, [Transmit(Login("alice", PASSWORD))]),
    ("008 spends the token", but(OPEN, token="tok", position=7), ResumeSession("tok", 7),
     but(OPEN, phase=Phase.RESUMING, position=7), [Transmit(ResumeSession("tok", 7))]),
    ("004 closes", JOINED, Leave("alice"), but(JOINED, phase=Phase.CLOSING, left=True), [Transmit(Leave("alice"))]),
    ("a 001 while joined goes as it is (the server says already-joined)", JOINED, Join("bob"), JOINED,
     [Transmit(Join("bob"))]),
    ("a message while joined", JOINED, Broadcast("alice", "hi"), JOINED, [Transmit(Broadcast("alice", "hi"))]),
    ("a ping on a connection", OPEN, Ping("ack-1"), OPEN, [Transmit(Ping("ack-1"))]),
    ("005 before a join goes", OPEN, ListUsers("x"), OPEN, [Transmit(ListUsers("x"))]),
    # nothing to send on
    ("no connection: a ping is answered here", CLOSED, Ping("ack-1"), CLOSED, [Answer(Pong("ack-1"))]),
    ("closing: a ping is answered here", CLOSING, Ping("ack-1"), CLOSING, [Answer(Pong("ack-1"))]),
    ("no connection: a join needs one", CLOSED, Join("alice"), CLOSED, [Connect(Join("alice"))]),
    ("closing: a join needs a new one", CLOSING, Join("alice"), CLOSING, [Connect(Join("alice"))]),
    ("no connection: a resume needs one", CLOSED, ResumeSession("tok", 3), CLOSED,
     [Connect(ResumeSession("tok", 3))]),
    ("no connection: a message is refused here", CLOSED, Broadcast("alice", "hi"), CLOSED,
     [Answer(Error(ErrorReason.NOT_JOINED, "join first"))]),
    ("closing: a 004 again is refused here", CLOSING, Leave("alice"), CLOSING,
     [Answer(Error(ErrorReason.NOT_JOINED, "join first"))]),
]


@pytest.mark.parametrize(("start", "frame", "after", "effects"), [row[1:] for row in SEND],
                         ids=[row[0] for row in SEND])
def test_send(start: State, frame: ClientFrame, after: State, effects: list[Effect]) -> None:
    side = start.make()
    assert side.send(frame) == effects
    assert State.of(side) == after


def test_a_whole_session_join_drop_resume_replay_leave() -> None:
    side = ClientSide()
    side.send(Join("alice"))
    side.receive(Joined("alice"))
    side.receive(UserList(("alice", "bob")))
    assert side.receive(SessionToken("t1")) == [TokenIssued("t1")]
    side.receive(Message("bob", "one"))
    side.receive(UserJoined("carol"))
    assert (side.position, side.room) == (2, 3)
    side.closed()
    assert not side.connected and side.room is None and side.token == "t1" and side.id == "alice"
    side.opened()
    assert side.send(ResumeSession("t1", side.position)) == [Transmit(ResumeSession("t1", 2))]
    assert side.token is None
    assert side.receive(Joined("alice")) == [Confirmed("alice", resumed=True)]
    side.receive(UserList(("alice", "bob", "dave")))
    side.receive(UserJoined("dave"))  # replayed: already in the 107
    assert side.room == 3 and side.position == 3
    assert side.receive(Resumed(1)) == [Replayed(1), Show(Resumed(1))]
    assert side.receive(UserLeft("bob")) == [Show(UserLeft("bob")), RoomCount(2)]
    side.receive(SessionToken("t2"))
    side.send(Leave("alice"))
    assert side.receive(Left()) == [Show(Left()), Ended(None)]
    assert side.left and side.token is None and not side.joined


def test_a_new_connection_forgets_the_last_ones_refusal_and_end() -> None:
    side = ClientSide()
    side.send(Join("alice"))
    side.receive(Error(ErrorReason.KICKED, "x"))  # (a refusal here: not in the room yet)
    assert side.refusal is ErrorReason.KICKED
    side.closed()
    side.opened()
    assert side.refusal is None and not side.left and side.phase is Phase.OPEN


def test_the_byte_scans_count_moves_only_outside_a_replay() -> None:
    side = JOINED.make()
    assert side.room_moved(2) == [RoomCount(4)]
    assert side.room_moved(-9) == [RoomCount(0)]
    assert REPLAYING.make().room_moved(1) == []
    assert but(JOINED, room=None).make().room_moved(1) == []


def test_keepalive_pings_are_ours() -> None:
    assert ClientSide().receive(Pong(keepalive_ping(7).token)) == [Alive()]


SAMPLES: list[ServerFrame] = [
    Joined("김"), IdTaken(), Left(), UserJoined("bob"), UserLeft("bob"), Message("bob", "a#b"),
    WhisperMessage("bob", "hi"), UserList(("a", "b")), Error(ErrorReason.BUSY, "full"), Pong("x"),
    History(12, "bob", "hi"), SessionToken("tok-1_A"), Resumed(3), NOTICE, Page("lobby", 2, "c")]


@pytest.mark.parametrize("frame", SAMPLES, ids=[type(frame).__name__ for frame in SAMPLES])
def test_the_position_counts_what_the_table_counts(frame: ServerFrame) -> None:
    side = but(JOINED, token=None).make()
    side.receive(frame)
    assert side.position == JOINED.position + (1 if BY_CLASS[type(frame)].counted else 0)


@pytest.mark.parametrize("frame", SAMPLES, ids=[type(frame).__name__ for frame in SAMPLES])
def test_an_event_reads_back_as_its_frame(frame: ServerFrame) -> None:
    assert frame_of_event(to_event(frame)) == frame


def test_every_event_type_is_known() -> None:
    for spec in SERVER_SPECS:
        with pytest.raises(KeyError) if spec.keys else contextlib.nullcontext():
            frame_of_event({"type": spec.event})  # a keyless one is its frame; the rest miss a key, not a type


@pytest.mark.parametrize("spec", SERVER_SPECS, ids=[spec.code for spec in SERVER_SPECS])
def test_every_server_frame_means_something_to_a_joined_client(spec: FrameSpec) -> None:
    """A new frame needs no case here unless it moves the client's state: it is shown, counted as the table says,
    and reads back from its JSON event (what the bridge feeds)."""
    frame = sample(spec)
    side = but(REPLAYING, token=None).make()
    effects = side.receive(frame)
    assert effects and not any(isinstance(effect, Unexpected) for effect in effects) or isinstance(
        frame, (Joined, IdTaken)), effects  # (the two that answer a join this client did not ask for)
    assert side.position == REPLAYING.position + (1 if spec.counted else 0)
    assert frame_of_event(to_event(frame)) == frame


@pytest.mark.parametrize("event", [
    {"type": "nope"}, {"type": "error", "reason": "no-such-reason", "text": ""},
    {"type": "session", "token": "bad token"}, {"type": "users", "ids": "alice"}, {"type": "resumed", "missed": -1},
])
def test_a_malformed_event_is_refused_like_a_bad_line(event: dict[str, Any]) -> None:
    with pytest.raises(FrameError):
        frame_of_event(event)
