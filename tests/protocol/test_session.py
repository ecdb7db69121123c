"""The room's rules and the per-connection state machine, without any I/O."""

from __future__ import annotations

from tcp_server.protocol import ErrorReason, OutputFormat, client_frame_reader
from tcp_server.protocol.frames import (
    Error,
    History,
    IdTaken,
    Join,
    Joined,
    Left,
    Message,
    NoSuchUser,
    Pong,
    Resumed,
    ResumeSession,
    ServerFrame,
    SetFormat,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
)
from tcp_server.protocol.ids import id_key
from tcp_server.protocol.limits import AddressLimits, TokenBucket
from tcp_server.protocol.moderation import Moderation
from tcp_server.protocol.roster import Roster
from tcp_server.protocol.session import (
    LEGACY_PORT,
    Capabilities,
    Claim,
    Close,
    Deliver,
    Effect,
    IssueToken,
    Publish,
    Reattach,
    Rehome,
    Release,
    Reply,
    Session,
    UseFormat,
)
from tcp_server.protocol.states import ConnState


class Room:
    """The effects carried out at once, in one process: what the server's shell does, minus the I/O."""

    def __init__(self) -> None:
        self.roster = Roster()
        self.claims: dict[str, str] = {}
        self.inboxes: dict[Session, list[ServerFrame]] = {}
        self.members: dict[str, Session] = {}
        self.closed: set[Session] = set()

    def session(self, secret: str | None = None) -> Session:
        s = Session(self.roster, "192.0.2.1", secret)
        self.inboxes[s] = []
        return s

    def take(self, s: Session) -> list[ServerFrame]:
        out, self.inboxes[s] = self.inboxes[s], []
        return out

    def run(self, s: Session, effects: list[Effect]) -> list[Effect]:
        for effect in effects:
            match effect:
                case Reply(frame):
                    self.inboxes[s].append(frame)
                case Publish(frame, exclude):
                    self.roster.apply(frame)
                    for key, member in self.members.items():
                        if key != exclude:
                            self.inboxes[member].append(frame)
                case Deliver(key, frame):
                    self.inboxes[self.members[key]].append(frame)
                case Claim(name, key):
                    if key in self.claims:
                        self.run(s, s.taken())
                    else:
                        self.claims[key] = name
                        self.members[key] = s
                        self.run(s, s.claimed(tuple(self.claims.values())))
                case Release(_, key):
                    del self.claims[key]
                    del self.members[key]
                case Close():
                    self.closed.add(s)
                case UseFormat() | Rehome():
                    pass
        return effects

    def feed(self, s: Session, line: str) -> list[Effect]:
        (item,) = client_frame_reader().feed(line.encode() + b"\n")
        return self.run(s, s.handle(item))


def reasons(frames: list[ServerFrame]) -> list[ErrorReason]:
    return [f.reason for f in frames if isinstance(f, Error)]


def test_join_order_broadcast_whisper_list_leave() -> None:
    room = Room()
    a, b = room.session(), room.session()
    assert [type(e) for e in room.feed(a, "001#alice")] == [Claim]
    assert a.state is ConnState.JOINED
    assert room.take(a) == [Joined("alice"), UserList(("alice",))]
    room.feed(b, "001#Bob")
    assert room.take(a) == [UserJoined("Bob")]
    assert room.take(b) == [Joined("Bob"), UserList(("alice", "Bob"))]
    assert room.feed(a, "002#alice#hi # all") == [Publish(Message("alice", "hi # all"), "alice")]
    assert room.take(b) == [Message("alice", "hi # all")] and room.take(a) == []
    room.feed(a, "003#ALICE#bob#psst")  # own ID in another case; recipient case-insensitive
    assert room.take(b) == [WhisperMessage("alice", "psst")]
    room.feed(a, "003#alice#carol#psst")
    assert room.take(a) == [NoSuchUser("carol")]
    room.feed(a, "003#alice#alice#note to self")
    assert room.take(a) == [WhisperMessage("alice", "note to self")]
    room.feed(b, "005#Bob")
    assert room.take(b) == [UserList(("alice", "Bob"))]
    assert room.feed(b, "004#Bob")[-1] == Close()
    assert room.take(b) == [Left()]
    assert room.take(a) == [UserLeft("Bob")]
    assert room.roster.names() == ["alice"] and list(room.claims) == ["alice"]
    assert b.state is ConnState.CLOSED


def test_id_rules() -> None:
    room = Room()
    a, b = room.session(), room.session()
    room.feed(a, "001#Alice")
    room.take(a)
    room.feed(b, "001#aLiCe")
    assert room.take(b) == [IdTaken()]
    assert b.state is ConnState.NEW and b.name is None  # may try again
    room.feed(b, "001#has space")
    room.feed(b, "001#a#b")
    assert reasons(room.take(b)) == [ErrorReason.BAD_ID] * 2
    room.feed(b, "001#bob")
    room.take(b)
    room.feed(b, "001#bob2")
    assert reasons(room.take(b)) == [ErrorReason.ALREADY_JOINED]


def test_not_joined_and_mismatch_deliver_nothing() -> None:
    room = Room()
    a, b = room.session(), room.session()
    for line in ("002#x#hi", "003#x#y#hi", "004#x"):
        room.feed(b, line)
    assert reasons(room.take(b)) == [ErrorReason.NOT_JOINED] * 3
    room.feed(a, "001#alice")
    room.feed(b, "001#bob")
    room.take(a), room.take(b)
    for line in ("002#alice#spoof", "003#alice#bob#spoof", "004#alice", "005#alice"):
        effects = room.feed(b, line)
        assert all(isinstance(e, Reply) for e in effects)
    assert reasons(room.take(b)) == [ErrorReason.ID_MISMATCH] * 4
    assert room.take(a) == []
    assert room.roster.names() == ["alice", "bob"]


def test_who_is_here_may_be_asked_before_joining() -> None:
    """005 before a join answers the room (a welcome screen's count); it joins nobody and tells nobody."""
    room = Room()
    a, b = room.session(), room.session()
    room.feed(a, "001#alice")
    room.take(a)
    room.feed(b, "005#anything")
    assert room.take(b) == [UserList(("alice",))]
    assert room.take(a) == [] and room.roster.names() == ["alice"]
    room.feed(b, "001#bob")  # and then joins as usual
    assert room.take(b)[-1] == UserList(("alice", "bob"))


def test_a_whisper_target_is_validated_and_normalised_like_an_id() -> None:
    room = Room()
    a, b = room.session(), room.session()
    room.feed(a, "001#alice")
    room.feed(b, "001#Jos\u00e9")
    room.take(a), room.take(b)
    room.feed(a, "003#alice#jose\u0301#hola")  # NFD spelling of an online user reaches them
    assert room.take(b) == [WhisperMessage("alice", "hola")]
    for target in ("bo\rb", "es\x1bc", "has space"):
        room.feed(a, f"003#alice#{target}#x")
        frames = room.take(a)
        assert reasons(frames) == [ErrorReason.MALFORMED]
        assert target not in frames[0].text  # type: ignore[union-attr]  # never echoed


def test_ping_answers_before_and_after_join() -> None:
    room = Room()
    a = room.session()
    room.feed(a, "006#x#y")
    assert room.take(a) == [Pong("x#y")]
    room.feed(a, "001#alice")
    room.take(a)
    room.feed(a, "006#z")
    assert room.take(a) == [Pong("z")]


def test_gateway_hello_rules() -> None:
    room = Room()
    s = room.session(secret="s3")
    assert room.feed(s, "000#s3#203.0.113.9") == [Rehome("203.0.113.9")]
    assert s.address == "203.0.113.9" and s.state is ConnState.GATEWAY
    assert room.feed(s, "000#s3#203.0.113.10")[-1] == Close()  # only once
    assert room.take(s) == [Error(ErrorReason.FORBIDDEN, "000 is only for a trusted gateway, before 001")]
    wrong = room.session(secret="s3")
    assert room.feed(wrong, "000#nope#1.2.3.4")[-1] == Close()
    unset = room.session(secret=None)
    assert room.feed(unset, "000##1.2.3.4")[-1] == Close()
    late = room.session(secret="s3")
    room.feed(late, "001#late")
    effects = room.feed(late, "000#s3#1.2.3.4")
    assert effects[-1] == Close() and Publish(UserLeft("late"), "late") in effects  # the others see it go
    assert late.address == "192.0.2.1"


def test_output_format_is_chosen_once_before_the_join() -> None:
    room = Room()
    s = room.session()
    assert room.feed(s, "007#json") == [UseFormat(OutputFormat.JSON)]
    room.feed(s, "007#frames")
    assert room.take(s) == [Error(ErrorReason.FORBIDDEN, "007 may come only once")]
    room.feed(s, "001#alice")
    room.take(s)
    room.feed(s, "007#frames")
    assert room.take(s) == [Error(ErrorReason.ALREADY_JOINED, "007 must come before 001")]


def test_drop_publishes_104_and_frees_the_id() -> None:
    room = Room()
    a, b = room.session(), room.session()
    room.feed(a, "001#alice")
    room.feed(b, "001#bob")
    room.take(a)
    room.run(b, b.drop())
    assert room.take(a) == [UserLeft("bob")]
    assert b.drop() == []  # once
    c = room.session()
    room.feed(c, "001#BOB")
    assert room.take(c)[1] == UserList(("alice", "BOB"))


def test_a_drop_while_the_claim_is_pending_leaves_it_to_the_shell() -> None:
    room = Room()
    s = room.session()
    (claim,) = s.handle(client_frame_reader().feed(b"001#alice\n")[0])  # type: ignore[arg-type]
    assert claim == Claim("alice", "alice") and s.state is ConnState.JOINING
    assert s.drop() == [] and s.state is ConnState.CLOSED


def test_user_list_stays_right_through_joins_and_leaves() -> None:
    room = Room()
    sessions = [room.session() for _ in range(6)]
    for i, s in enumerate(sessions):
        room.feed(s, f"001#u{i}")
    room.run(sessions[2], sessions[2].drop())
    room.run(sessions[4], sessions[4].drop())
    s = room.session()
    room.feed(s, "001#late")
    assert room.take(s)[1] == UserList(("u0", "u1", "u3", "u5", "late"))
    room.feed(s, "005#late")
    assert room.take(s) == [UserList(("u0", "u1", "u3", "u5", "late"))]


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


def test_resume_asks_the_shell_and_a_refusal_leaves_the_connection_free_to_join() -> None:
    room = Room()
    s = room.session()
    assert room.feed(s, "008#abc") == [Reattach("abc")]
    assert s.state is ConnState.JOINING
    assert s.refused() == [Reply(Error(ErrorReason.BAD_TOKEN, "unknown, used or expired token; join with 001"))]
    assert s.state is ConnState.NEW
    room.feed(s, "001#alice")
    assert s.joined and room.take(s) == [Joined("alice"), UserList(("alice",))]
    room.feed(s, "008#abc")
    assert reasons(room.take(s)) == [ErrorReason.ALREADY_JOINED]


def test_a_resume_names_its_position_and_a_gap_leaves_the_connection_free_to_join() -> None:
    room = Room()
    s = room.session()
    assert room.feed(s, "008#abc#57") == [Reattach("abc", 57)]
    assert s.gap(1000) == [Reply(Error(ErrorReason.GAP, "the server keeps the last 1000 frames; join with 001"))]
    assert s.state is ConnState.NEW
    room.feed(s, "001#alice")
    assert s.joined


def test_resumed_replies_joined_users_token_missed_then_resumed() -> None:
    s = Session(Roster(), "192.0.2.1")
    s.handle(ResumeSession("old"))
    missed = [Message("bob", "1"), UserJoined("carol"), WhisperMessage("bob", "psst")]
    effects = s.resumed("Alice", ("bob", "Alice", "carol"), missed)
    assert [e.frame if isinstance(e, Reply) else e for e in effects] == [
        Joined("Alice"), UserList(("bob", "Alice", "carol")), IssueToken("Alice", "alice"), *missed, Resumed(3)]
    assert len(effects) == 7  # nothing published: the others see no 103
    assert s.joined and s.key == "alice"


def test_a_fresh_join_gets_its_token_then_history() -> None:
    room = Room()
    s = room.session()
    s.handle(Join("alice"))
    effects = s.claimed(("alice",), [Message("bob", "earlier", 1700000000123)])
    assert [e.frame if isinstance(e, Reply) else e for e in effects if not isinstance(e, Publish)] == [
        Joined("alice"), UserList(("alice",)), IssueToken("alice", "alice"), History(1700000000123, "bob", "earlier")]


def test_the_legacy_port_gets_no_token_no_007_no_resume() -> None:
    s = Session(Roster(), "192.0.2.1", caps=LEGACY_PORT, cursor_key=b"k" * 32)
    assert s.cursor_key is None  # no 141 there: the seed's client has no scrollback
    assert s.handle(SetFormat(OutputFormat.JSON)) == [
        Reply(Error(ErrorReason.UNKNOWN_CODE, "007 is not available on the legacy port"))]
    assert s.handle(ResumeSession("abc")) == [
        Reply(Error(ErrorReason.BAD_TOKEN, "unknown, used or expired token; join with 001"))]
    assert s.state is ConnState.NEW
    s.handle(Join("alice"))
    assert not any(isinstance(e, IssueToken) for e in s.claimed(("alice",)))


def test_a_node_without_sessions_refuses_008_and_issues_no_token() -> None:
    s = Session(Roster(), "192.0.2.1", caps=Capabilities(resumable=False))
    assert [type(e) for e in s.handle(ResumeSession("abc"))] == [Reply]
    s.handle(Join("alice"))
    assert not any(isinstance(e, IssueToken) for e in s.claimed(("alice",)))


def test_a_detached_session_neither_leaves_nor_releases() -> None:
    room = Room()
    s = room.session()
    room.feed(s, "001#alice")
    s.detach()
    assert s.state is ConnState.CLOSED and s.drop() == []


def test_a_resume_is_checked_against_the_bans_and_a_banned_one_ends_the_session() -> None:
    moderation = Moderation(lambda: 1000.0)
    s = Session(Roster(), "203.0.113.5", moderation=moderation)
    s.handle(ResumeSession("tok"))
    assert s.resume_banned("Mallory") is None  # no ban: the shell goes on with resumed()
    moderation.ban("203.0.113.0/24", "a bad network")
    assert s.resume_banned("Mallory") == [
        Publish(UserLeft("Mallory"), id_key("Mallory")), Release("Mallory", id_key("Mallory")),
        Reply(Error(ErrorReason.BANNED, "a bad network"))]
    assert s.state is ConnState.NEW and not s.joined  # free to 001 (which is checked too)
    s.handle(ResumeSession("tok2"))
    moderation.unban("203.0.113.0/24")
    moderation.ban("MALLORY")
    assert s.resume_banned("mallory") is not None  # by ID, any spelling
