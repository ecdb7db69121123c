"""The room's rules and the per-connection state machine, without any I/O."""

from __future__ import annotations

from tcp_server.protocol import ErrorReason, client_frame_reader, parse_server
from tcp_server.protocol.frames import (
    Error,
    IdTaken,
    Joined,
    Left,
    Message,
    NoSuchUser,
    Pong,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
)
from tcp_server.protocol.limits import AddressLimits, TokenBucket
from tcp_server.protocol.room import InMemoryRoom
from tcp_server.protocol.session import Outcome, Session


class Inbox:
    """A member that records what the room sends it."""

    def __init__(self) -> None:
        self.frames: list[object] = []

    def send(self, data: bytes) -> None:
        self.frames.append(parse_server(data.decode().rstrip("\n")))

    def take(self) -> list[object]:
        out, self.frames = self.frames, []
        return out


def session(room: InMemoryRoom, secret: str | None = None) -> tuple[Session, Inbox]:
    inbox = Inbox()
    return Session(room, inbox, "192.0.2.1", secret), inbox


def feed(s: Session, line: str) -> Outcome:
    (item,) = client_frame_reader().feed(line.encode() + b"\n")
    return s.handle(item)


def test_join_order_broadcast_whisper_list_leave() -> None:
    room = InMemoryRoom()
    a, ia = session(room)
    b, ib = session(room)
    assert feed(a, "001#alice") is Outcome.JOINED
    assert ia.take() == [Joined("alice"), UserList(("alice",))]
    assert feed(b, "001#Bob") is Outcome.JOINED
    assert ia.take() == [UserJoined("Bob")]
    assert ib.take() == [Joined("Bob"), UserList(("alice", "Bob"))]
    feed(a, "002#alice#hi # all")
    assert ib.take() == [Message("alice", "hi # all")] and ia.take() == []
    feed(a, "003#ALICE#bob#psst")  # own ID in another case; recipient case-insensitive
    assert ib.take() == [WhisperMessage("alice", "psst")]
    feed(a, "003#alice#carol#psst")
    assert ia.take() == [NoSuchUser("carol")]
    feed(a, "003#alice#alice#note to self")
    assert ia.take() == [WhisperMessage("alice", "note to self")]
    feed(b, "005#Bob")
    assert ib.take() == [UserList(("alice", "Bob"))]
    assert feed(b, "004#Bob") is Outcome.CLOSE
    assert ib.take() == [Left()]
    assert ia.take() == [UserLeft("Bob")]
    assert room.users() == ["alice"]


def test_id_rules() -> None:
    room = InMemoryRoom()
    a, ia = session(room)
    b, ib = session(room)
    feed(a, "001#Alice")
    ia.take()
    assert feed(b, "001#aLiCe") is Outcome.CONTINUE
    assert ib.take() == [IdTaken()]
    feed(b, "001#has space")
    assert [f.reason for f in ib.take()] == [ErrorReason.BAD_ID]  # type: ignore[attr-defined]
    feed(b, "001#a#b")
    assert [f.reason for f in ib.take()] == [ErrorReason.BAD_ID]  # type: ignore[attr-defined]
    assert feed(b, "001#bob") is Outcome.JOINED
    ib.take()
    feed(b, "001#bob2")
    assert [f.reason for f in ib.take()] == [ErrorReason.ALREADY_JOINED]  # type: ignore[attr-defined]


def test_not_joined_and_mismatch_deliver_nothing() -> None:
    room = InMemoryRoom()
    a, ia = session(room)
    b, ib = session(room)
    for line in ("002#x#hi", "003#x#y#hi", "004#x", "005#x"):
        feed(b, line)
    assert [f.reason for f in ib.take()] == [ErrorReason.NOT_JOINED] * 4  # type: ignore[attr-defined]
    feed(a, "001#alice")
    feed(b, "001#bob")
    ia.take(), ib.take()
    for line in ("002#alice#spoof", "003#alice#bob#spoof", "004#alice", "005#alice"):
        assert feed(b, line) is Outcome.CONTINUE
    assert [f.reason for f in ib.take()] == [ErrorReason.ID_MISMATCH] * 4  # type: ignore[attr-defined]
    assert ia.take() == []
    assert room.users() == ["alice", "bob"]


def test_ping_answers_before_and_after_join() -> None:
    room = InMemoryRoom()
    a, ia = session(room)
    feed(a, "006#x#y")
    assert ia.take() == [Pong("x#y")]


def test_gateway_hello_rules() -> None:
    room = InMemoryRoom()
    s, inbox = session(room, secret="s3")
    assert feed(s, "000#s3#203.0.113.9") is Outcome.GATEWAY
    assert s.address == "203.0.113.9"
    assert feed(s, "000#s3#203.0.113.10") is Outcome.CLOSE  # only once
    assert inbox.take() == [Error(ErrorReason.FORBIDDEN, "000 is only for a trusted gateway, before 001")]
    wrong, wi = session(room, secret="s3")
    assert feed(wrong, "000#nope#1.2.3.4") is Outcome.CLOSE
    unset, ui = session(room, secret=None)
    assert feed(unset, "000##1.2.3.4") is Outcome.CLOSE
    late, li = session(room, secret="s3")
    feed(late, "001#late")
    assert feed(late, "000#s3#1.2.3.4") is Outcome.CLOSE
    assert late.address == "192.0.2.1"


def test_output_format_is_chosen_before_the_join() -> None:
    from tcp_server.protocol import OutputFormat

    room = InMemoryRoom()
    s, inbox = session(room)
    assert s.output is OutputFormat.FRAMES
    assert feed(s, "007#json") is Outcome.FORMAT
    assert s.output is OutputFormat.JSON
    assert feed(s, "007#frames") is Outcome.FORMAT  # may change its mind until it joins
    assert s.output is OutputFormat.FRAMES
    feed(s, "007#json")
    feed(s, "001#alice")
    inbox.take()
    assert feed(s, "007#frames") is Outcome.CONTINUE
    assert inbox.take() == [Error(ErrorReason.ALREADY_JOINED, "007 must come before 001")]
    assert s.output is OutputFormat.JSON


def test_drop_sends_104_and_frees_the_id() -> None:
    room = InMemoryRoom()
    a, ia = session(room)
    b, ib = session(room)
    feed(a, "001#alice")
    feed(b, "001#bob")
    ia.take()
    assert b.drop() == "bob"
    assert ia.take() == [UserLeft("bob")]
    c, ic = session(room)
    assert feed(c, "001#BOB") is Outcome.JOINED
    assert ic.take()[1] == UserList(("alice", "BOB"))


def test_user_list_stays_right_through_joins_and_leaves() -> None:
    room = InMemoryRoom()
    sessions = [session(room) for _ in range(6)]
    for i, (s, _) in enumerate(sessions):
        feed(s, f"001#u{i}")
    sessions[2][0].drop()
    sessions[4][0].drop()
    s, inbox = session(room)
    feed(s, "001#late")
    assert inbox.take()[1] == UserList(("u0", "u1", "u3", "u5", "late"))


def test_token_bucket() -> None:
    b = TokenBucket(rate=10, burst=3, now=0.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.wait_time() > 0
    assert b.take(0.1)
    assert not b.take(0.1)
    assert [b.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_address_limits() -> None:
    lim = AddressLimits(max_open=2, max_per_minute=3)
    assert lim.admit("a", 0) and lim.admit("a", 1)
    assert not lim.admit("a", 2)  # two open
    lim.release("a", 3)
    assert lim.admit("a", 4)  # third new one this minute
    lim.release("a", 5)
    assert not lim.admit("a", 6)  # three new ones within the minute
    assert lim.admit("a", 61)  # the window moved on
    assert lim.admit("b", 6)  # another address is unaffected
    for _ in range(2):
        lim.release("a", 200)
    lim.release("b", 200)
    assert len(lim) == 0  # nothing kept for idle addresses
    assert lim.admit("c", 300)
    lim.release("c", 301)  # closed within the window: its history is kept...
    assert len(lim) == 1
    lim.sweep(400)  # ...until a sweep after the window
    assert len(lim) == 0
