"""Server frames as JSON events, pure: one table both ways, the broadcast short path, the markers."""

from __future__ import annotations

import json

import pytest

from tcp_server.protocol import (
    Error,
    ErrorReason,
    FrameError,
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
    parse_server,
)
from tcp_server.protocol.events import (
    JOINED_MARK,
    LEFT_MARK,
    encode_event,
    encode_events,
    event_lines,
    to_event,
)

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
]


@pytest.mark.parametrize(("line", "frame", "event"), TO_EVENT)
def test_server_frame_to_event(line: str, frame: object, event: dict[str, object]) -> None:
    parsed = parse_server(line)
    assert parsed == frame
    assert to_event(parsed) == event


def test_every_server_code_has_an_event() -> None:
    assert {line[:3] for line, _, _ in TO_EVENT} == {str(c) for c in range(100, 111)}


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
def test_event_lines_give_each_frame_its_event_line(line: str) -> None:
    expected = encode_event(to_event(parse_server(line)))
    assert event_lines((line + "\n").encode()) == (expected + "\n").encode()
    assert json.loads(expected) == to_event(parse_server(line))


def test_event_lines_translate_a_chunk_of_frames_in_order() -> None:
    chunk = "".join(line + "\n" for line, _, _ in TO_EVENT).encode()
    out = event_lines(chunk)
    assert out.endswith(b"\n")
    assert [json.loads(x) for x in out.decode().split("\n")[:-1]] == [event for _, _, event in TO_EVENT]
    assert event_lines(b"") == b""


@pytest.mark.parametrize("line", ["105#bob", "999#x", "101#x", "109#nonsense#x"])
def test_event_lines_refuse_what_is_not_a_server_frame(line: str) -> None:
    with pytest.raises(FrameError):
        event_lines((line + "\n").encode())


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_markers_only_start_their_own_events(text: str) -> None:
    """A gateway finds joined/left with a byte scan: no message may contain the markers."""
    for frame in (f"105#bob#{text}", f"106#bob#{text}", f"109#flood#{text}", f"110#{text}"):
        line = event_lines((frame + "\n").encode())
        assert JOINED_MARK not in line and LEFT_MARK not in line
    assert event_lines(b"100#alice\n").startswith(JOINED_MARK)
    assert event_lines(b"102\n").startswith(LEFT_MARK)
    assert LEFT_MARK not in event_lines(b"104#left\n") and JOINED_MARK not in event_lines(b"103#joined\n")
