"""The three encoders, pure: frames, JSON events (one table both ways, the broadcast short path, the marker), legacy."""

from __future__ import annotations

import json

import pytest

from tcp_server.protocol import (
    Error,
    ErrorReason,
    Found,
    History,
    IdTaken,
    Joined,
    Left,
    Message,
    NoSuchUser,
    Older,
    Page,
    Pong,
    Resumed,
    Searched,
    ServerCode,
    ServerNotice,
    SessionToken,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
    parse_server,
)
from tcp_server.protocol.encoders import FRAMES, JSON, LEGACY
from tcp_server.protocol.events import JOINED_MARK, encode_event, encode_events, to_event
from tcp_server.protocol.frames import AccountList, PasswordChanged, Registered, RoomListed, RoomsListed
from tcp_server.protocol.table import serialize

# (server line without LF, its frame, its event)
TO_EVENT = [
    ("100#alice", Joined("alice"), {"type": "joined", "id": "alice"}),
    ("101", IdTaken(), {"type": "id_taken"}),
    ("102", Left(), {"type": "left"}),
    ("103#bob", UserJoined("bob"), {"type": "user_joined", "id": "bob"}),
    ("104#bob", UserLeft("bob"), {"type": "user_left", "id": "bob"}),
    ("105#bob#hi # there", Message("bob", "hi # there"), {"type": "message", "from": "bob", "text": "hi # there"}),
    ("106#bob#psst", WhisperMessage("bob", "psst"), {"type": "whisper", "from": "bob", "text": "psst"}),
    ("107#alice#bob", UserList(("alice", "bob")), {"type": "users", "ids": ["alice", "bob"]}),
    ("107", UserList(()), {"type": "users", "ids": []}),
    ("108#carol", NoSuchUser("carol"), {"type": "no_such_user", "to": "carol"}),
    ("109#flood#too many", Error(ErrorReason.FLOOD, "too many"),
     {"type": "error", "reason": "flood", "text": "too many"}),
    ("109#shutdown", Error(ErrorReason.SHUTDOWN, ""), {"type": "error", "reason": "shutdown", "text": ""}),
    ("110#t1", Pong("t1"), {"type": "pong", "token": "t1"}),
    ("111#1700000000123#bob#hi # there", History(1700000000123, "bob", "hi # there"),
     {"type": "history", "ts": 1700000000123, "from": "bob", "text": "hi # there"}),
    ("112#tok-EN_1", SessionToken("tok-EN_1"), {"type": "session", "token": "tok-EN_1"}),
    ("113#3", Resumed(3), {"type": "resumed", "missed": 3}),
    ("114#back soon", ServerNotice("back soon"), {"type": "notice", "text": "back soon"}),
    ("140#lobby#1700000000123#bob#hi # there", Older("lobby", 1700000000123, "bob", "hi # there"),
     {"type": "older", "room": "lobby", "ts": 1700000000123, "from": "bob", "text": "hi # there"}),
    ("141#lobby#2#Zm9v", Page("lobby", 2, "Zm9v"), {"type": "page", "room": "lobby", "count": 2, "cursor": "Zm9v"}),
    ("141#lobby#0#", Page("lobby", 0, ""), {"type": "page", "room": "lobby", "count": 0, "cursor": ""}),
    ("142#lobby#1700000000123#bob#안녕", Found("lobby", 1700000000123, "bob", "안녕"),
     {"type": "found", "room": "lobby", "ts": 1700000000123, "from": "bob", "text": "안녕"}),
    ("143#lobby#1", Searched("lobby", 1), {"type": "searched", "room": "lobby", "count": 1}),
    ("130#Alice", Registered("Alice"), {"type": "registered", "id": "Alice"}),
    ("131", PasswordChanged(), {"type": "password_changed"}),
    ("132#Alice#bob", AccountList(("Alice", "bob")), {"type": "accounts", "ids": ["Alice", "bob"]}),
    ("132", AccountList(()), {"type": "accounts", "ids": []}),
    ("126#lobby#2#hi # all", RoomListed("lobby", 2, "hi # all"),
     {"type": "room_listed", "room": "lobby", "count": 2, "topic": "hi # all"}),
    ("127#1", RoomsListed(1), {"type": "rooms_listed", "total": 1}),
]


def test_an_accounts_join_is_103_then_132_and_one_event() -> None:
    """103 keeps its seed meaning; an account's join adds 132#ID in the same write (not counted), and
    the JSON event says ``account``. A guest's join is unchanged."""
    assert FRAMES.encode(UserJoined("Alice", account=True)) == b"103#Alice\n132#Alice\n"
    assert FRAMES.encode(UserJoined("bob")) == b"103#bob\n"
    assert json.loads(JSON.encode(UserJoined("Alice", account=True))) == {
        "type": "user_joined", "id": "Alice", "account": True}
    assert json.loads(JSON.encode(UserJoined("bob"))) == {"type": "user_joined", "id": "bob"}
    assert json.loads(JSON.encode(Message("Alice", "hi", 5, account=True))) == {
        "type": "message", "from": "Alice", "text": "hi", "ts": 5, "account": True}
    assert LEGACY.encode(AccountList(("Alice",))) == b""
    assert b"Alice" in LEGACY.encode(UserJoined("Alice", account=True))


@pytest.mark.parametrize(("line", "frame", "event"), TO_EVENT)
def test_server_frame_to_event(line: str, frame: object, event: dict[str, object]) -> None:
    parsed = parse_server(line)
    assert parsed == frame
    assert to_event(parsed) == event


def test_every_server_code_has_an_event() -> None:
    assert {line[:3] for line, _, _ in TO_EVENT} == {c.value for c in ServerCode}


def test_events_are_ndjson_one_per_line_even_with_newlines_inside() -> None:
    events = [{"type": "message", "from": "b", "text": "a\nb\u2028c"}, {"type": "user_left", "id": "b"}]
    data = encode_events(events)
    lines = data.split("\n")
    assert len(lines) == 2
    assert [json.loads(line) for line in lines] == events


# Messages that look like JSON, escapes, markers: the short path for 105 must give the generic bytes.
TRICKY_TEXTS = [
    "hi # there", '{"type":"joined","id":"x"}', '{"type":"left"}', 'back\\slash "quoted"', "안녕하세요 👋",
    "line\u2028sep\u2029para", "tab\there", "#", "##", " ",
]


@pytest.mark.parametrize("line", [line for line, _, _ in TO_EVENT] + [f"105#bob#{t}" for t in TRICKY_TEXTS]
                         + [f"106#bob#{t}" for t in TRICKY_TEXTS])
def test_json_encoder_gives_each_frame_its_event_line(line: str) -> None:
    frame = parse_server(line)
    expected = encode_event(to_event(frame))
    assert JSON.encode(frame) == (expected + "\n").encode()  # the 105 short path included
    assert json.loads(expected) == to_event(frame)


@pytest.mark.parametrize("line", [line for line, _, _ in TO_EVENT] + [f"105#bob#{t}" for t in TRICKY_TEXTS])
def test_frames_encoder_is_serialize(line: str) -> None:
    frame = parse_server(line)
    assert FRAMES.encode(frame) == serialize(frame)
    assert parse_server(FRAMES.encode(frame).decode()[:-1]) == frame


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_server_timestamp_is_in_json_events_but_not_on_the_wire(text: str) -> None:
    """105/106 keep their two fields; the server's ts rides only in the JSON event (short path included)."""
    for frame in (Message("bob", text, 1700000000123), WhisperMessage("bob", text, 1700000000123)):
        event = to_event(frame)
        assert event["ts"] == 1700000000123
        assert JSON.encode(frame) == (encode_event(event) + "\n").encode()
        assert FRAMES.encode(frame) == serialize(type(frame)("bob", text))
        assert parse_server(FRAMES.encode(frame).decode()[:-1]) == frame  # ts does not take part in ==
    assert "ts" not in to_event(Message("bob", text))


def test_shareable_encoders_batch_into_one_write() -> None:
    chunks = [FRAMES.encode(f) for _, f, _ in TO_EVENT]
    assert FRAMES.batch(chunks) == [b"".join(chunks)] and FRAMES.shareable and JSON.shareable
    assert not LEGACY.shareable


LEGACY_CASES = [
    (IdTaken(), b"101"),
    (Error(ErrorReason.BAD_ID, "empty ID"), b"101"),  # the seed's client asks again
    (Left(), b"102"),
    (Pong("x"), b""),
    (Joined("alice"), "채팅방에 입장하였습니다.".encode()),
    (UserJoined("bob"), "[공지]bob 사용자가 접속하였습니다.".encode()),
    (UserLeft("bob"), "[공지]bob 사용자가 퇴장하였습니다.".encode()),
    (Message("bob", "hi # x"), b"bob : hi # x"),
    (WhisperMessage("bob", "psst"), "bob님의 귓속말 : psst".encode()),
    (NoSuchUser("carol"), "해당 사용자가 존재하지 않습니다.".encode()),
    (History(1700000000123, "bob", "earlier # x"), b"bob : earlier # x"),  # history reads as the messages it was
    (SessionToken("tok"), b""),  # the seed's client cannot resume: nothing to show
    (Resumed(2), b""),
    (ServerNotice("점검 예정"), "[서버 공지] 점검 예정".encode()),
]


@pytest.mark.parametrize(("frame", "text"), LEGACY_CASES)
def test_legacy_encoder_speaks_the_seeds_text(frame: object, text: bytes) -> None:
    assert LEGACY.encode(frame) == text  # type: ignore[arg-type]


def test_legacy_batch_sends_101_and_102_alone_and_joins_the_rest() -> None:
    chunks = [LEGACY.encode(f) for f in (Message("a", "1"), Message("a", "2"), IdTaken(), Pong("t"), Left(),
                                          Message("a", "3"))]
    assert LEGACY.batch(chunks) == [b"a : 1\na : 2", b"101", b"102", b"a : 3"]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_the_joined_marker_only_starts_its_own_event(text: str) -> None:
    """A gateway finds its user's joined event with a byte scan: no other event may contain the marker."""
    for line in (f"105#bob#{text}", f"106#bob#{text}", f"109#flood#{text}", f"110#{text}"):
        assert JOINED_MARK not in JSON.encode(parse_server(line))
    assert JSON.encode(Joined("alice")).startswith(JOINED_MARK)
    assert JOINED_MARK not in JSON.encode(UserJoined("joined"))
