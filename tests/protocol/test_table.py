"""Every frame, both ways, from one table; and the malformed lines with their errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tcp_server.protocol import (
    Broadcast,
    Error,
    ErrorReason,
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
    OutputFormat,
    Page,
    Ping,
    Pong,
    Resumed,
    ResumeSession,
    Search,
    Searched,
    ServerNotice,
    SessionToken,
    SetFormat,
    UserJoined,
    UserLeft,
    UserList,
    Whisper,
    WhisperMessage,
    parse_client,
    parse_server,
    serialize,
)
from tcp_server.protocol.frames import (
    AccountList,
    ChangePassword,
    ListRooms,
    Login,
    PasswordChanged,
    Register,
    Registered,
    RoomListed,
    RoomsListed,
    has_control_chars,
)
from tcp_server.protocol.passwords import Password
from tcp_server.protocol.states import ConnState
from tcp_server.protocol.table import CLIENT_SPECS, SERVER_SPECS, Budget, encode_error

# (wire line without LF, frame) — parse(line) == frame and serialize(frame) == line + LF
CLIENT_CASES = [
    ("000#s3cret#203.0.113.7", GatewayHello("s3cret", "203.0.113.7")),
    ("000#s3cret#2001:db8::1", GatewayHello("s3cret", "2001:db8::1")),
    ("001#alice", Join("alice")),
    ("001#김철수", Join("김철수")),
    ("001#a#b", Join("a#b")),  # the ID is the rest of the line: reported as bad-id later
    ("002#alice#hello", Broadcast("alice", "hello")),
    ("002#alice#a # b ## c#", Broadcast("alice", "a # b ## c#")),
    ("002#alice#안녕하세요 ", Broadcast("alice", "안녕하세요 ")),
    ("002#alice#tab\there", Broadcast("alice", "tab\there")),
    ("003#alice#bob#psst", Whisper("alice", "bob", "psst")),
    ("003#alice#bob#x#y#z", Whisper("alice", "bob", "x#y#z")),
    ("004#alice", Leave("alice")),
    ("005#alice", ListUsers("alice")),
    ("006#t1", Ping("t1")),
    ("006#", Ping("")),
    ("006#a#b", Ping("a#b")),
    ("007#json", SetFormat(OutputFormat.JSON)),
    ("007#frames", SetFormat(OutputFormat.FRAMES)),
    ("008#AbC-_09xyz", ResumeSession("AbC-_09xyz")),
    ("008#AbC-_09xyz#0", ResumeSession("AbC-_09xyz", 0)),
    ("008#AbC-_09xyz#1234", ResumeSession("AbC-_09xyz", 1234)),
    ("016#lobby##50", FetchOlder("lobby", "", 50)),
    ("016#Lobby#AAAAAAAAAAc-_x#1", FetchOlder("Lobby", "AAAAAAAAAAc-_x", 1)),
    ("016#lobby#c#0", FetchOlder("lobby", "c", 0)),  # LIMIT's range is the session's: 109#malformed there
    ("017#lobby#hello # there", Search("lobby", "hello # there")),
    ("017#lobby#%_*\"NEAR(", Search("lobby", "%_*\"NEAR(")),
    ("017#lobby#안녕", Search("lobby", "안녕")),
    ("018#alice#correct horse", Login("alice", Password("correct horse"))),
    ("018#alice#pa#ss##word#", Login("alice", Password("pa#ss##word#"))),  # PASSWORD is the tail
    ("018#alice#", Login("alice", Password(""))),  # empty: the password rules answer (bad-login)
    ("018#a#b#c", Login("a", Password("b#c"))),
    ("018##pw", Login("", Password("pw"))),  # the ID is judged later: bad-id
    ("018#alice#bell\x07 ctl", Login("alice", Password("bell\x07 ctl"))),  # judged by the rules, not echoed
    ("019#correct # horse", Register(Password("correct # horse"))),
    ("019#", Register(Password(""))),
    ("020#new#pass#word", ChangePassword(Password("new#pass#word"))),
    ("020#비밀번호는 길게", ChangePassword(Password("비밀번호는 길게"))),
    ("013", ListRooms()),
]

SERVER_CASES = [
    ("100#alice", Joined("alice")),
    ("101", IdTaken()),
    ("102", Left()),
    ("103#bob", UserJoined("bob")),
    ("104#bob", UserLeft("bob")),
    ("105#alice#hi # there", Message("alice", "hi # there")),
    ("106#alice#secret#sauce", WhisperMessage("alice", "secret#sauce")),
    ("107#alice#bob#김철수", UserList(("alice", "bob", "김철수"))),
    ("107#alice", UserList(("alice",))),
    ("107", UserList(())),
    ("108#nobody", NoSuchUser("nobody")),
    ("109#flood#slow down", Error(ErrorReason.FLOOD, "slow down")),
    ("109#malformed#002 takes 2 field(s)#really", Error(ErrorReason.MALFORMED, "002 takes 2 field(s)#really")),
    ("109#busy#", Error(ErrorReason.BUSY, "")),
    ("110#t1", Pong("t1")),
    ("111#1700000000123#alice#hi # there", History(1700000000123, "alice", "hi # there")),
    ("111#0#김철수#안녕", History(0, "김철수", "안녕")),
    ("112#Zm9v-YmFy_", SessionToken("Zm9v-YmFy_")),
    ("113#0", Resumed(0)),
    ("113#42", Resumed(42)),
    ("114#maintenance at 22:00 # back soon", ServerNotice("maintenance at 22:00 # back soon")),
    ("140#lobby#1700000000123#alice#hi # there", Older("lobby", 1700000000123, "alice", "hi # there")),
    ("141#lobby#3#AAAAAAAAAAc-_x", Page("lobby", 3, "AAAAAAAAAAc-_x")),
    ("141#lobby#0#", Page("lobby", 0, "")),
    ("142#lobby#1700000000123#김철수#안녕 # 하세요", Found("lobby", 1700000000123, "김철수", "안녕 # 하세요")),
    ("143#lobby#0", Searched("lobby", 0)),
    ("143#lobby#50", Searched("lobby", 50)),
    ("130#Alice", Registered("Alice")),
    ("131", PasswordChanged()),
    ("132#Alice#김철수", AccountList(("Alice", "김철수"))),
    ("132", AccountList(())),
    ("126#lobby#3#welcome # all", RoomListed("lobby", 3, "welcome # all")),
    ("126#study#1#", RoomListed("study", 1, "")),
    ("127#1", RoomsListed(1)),
]


@pytest.mark.parametrize(("line", "frame"), CLIENT_CASES, ids=[c[0] for c in CLIENT_CASES])
def test_client_frame_both_ways(line: str, frame: object) -> None:
    assert parse_client(line) == frame
    assert serialize(frame) == (line + "\n").encode()  # type: ignore[arg-type]


@pytest.mark.parametrize(("line", "frame"), SERVER_CASES, ids=[c[0] for c in SERVER_CASES])
def test_server_frame_both_ways(line: str, frame: object) -> None:
    assert parse_server(line) == frame
    assert serialize(frame) == (line + "\n").encode()  # type: ignore[arg-type]


def test_every_code_has_a_case() -> None:
    from tcp_server.protocol import ClientCode, ServerCode

    assert {c[0][:3] for c in CLIENT_CASES} == {c.value for c in ClientCode}
    assert {c[0][:3] for c in SERVER_CASES} == {c.value for c in ServerCode}


MALFORMED_CLIENT = [
    ("999#x", ErrorReason.UNKNOWN_CODE),
    ("hello", ErrorReason.UNKNOWN_CODE),
    ("01", ErrorReason.UNKNOWN_CODE),
    ("100#alice", ErrorReason.UNKNOWN_CODE),  # a server code from a client
    ("001", ErrorReason.MALFORMED),
    ("013#lobby", ErrorReason.MALFORMED),  # no fields
    ("001x", ErrorReason.MALFORMED),
    ("002#alice", ErrorReason.MALFORMED),
    ("002#alice#", ErrorReason.MALFORMED),  # empty message
    ("002##hi", ErrorReason.MALFORMED),  # empty ID
    ("002alice#hi", ErrorReason.MALFORMED),
    ("002#alice#bell\x07", ErrorReason.MALFORMED),
    ("002#alice#esc\x1b[2J", ErrorReason.MALFORMED),
    ("002#alice#cr\rin", ErrorReason.MALFORMED),
    ("002#alice#c1\x85", ErrorReason.MALFORMED),
    ("003#alice#bob", ErrorReason.MALFORMED),
    ("003#alice#bob#", ErrorReason.MALFORMED),
    ("003#alice##hi", ErrorReason.MALFORMED),
    ("004", ErrorReason.MALFORMED),
    ("004#", ErrorReason.MALFORMED),
    ("004#alice#extra", ErrorReason.MALFORMED),
    ("005#alice#extra", ErrorReason.MALFORMED),
    ("006", ErrorReason.MALFORMED),
    ("006#\x00", ErrorReason.MALFORMED),
    ("000#secret", ErrorReason.MALFORMED),
    ("000#secret#", ErrorReason.MALFORMED),
    ("000#secret#not-an-address", ErrorReason.MALFORMED),  # it reaches logs: an IP address or nothing
    ("000#secret#1.2.3.4\u202e", ErrorReason.MALFORMED),
    ("000#secret#fe80::1%\x1b[31m", ErrorReason.MALFORMED),  # a zone carried escapes into the log
    ("000#secret#fe80::1%eth0", ErrorReason.MALFORMED),  # any zone: meaningless from another host
    ("003#alice#bob#\rx", ErrorReason.MALFORMED),
    ("007", ErrorReason.MALFORMED),
    ("007#", ErrorReason.MALFORMED),
    ("007#xml", ErrorReason.MALFORMED),
    ("007#JSON", ErrorReason.MALFORMED),
    ("007#json#x", ErrorReason.MALFORMED),
    ("009#json", ErrorReason.UNKNOWN_CODE),
    ("008", ErrorReason.MALFORMED),
    ("008#", ErrorReason.MALFORMED),
    ("008#a#b", ErrorReason.MALFORMED),
    ("008#a#", ErrorReason.MALFORMED),
    ("008#a#-1", ErrorReason.MALFORMED),
    ("008#a#1.5", ErrorReason.MALFORMED),
    ("008#a#١٢", ErrorReason.MALFORMED),  # Arabic-Indic digits are digits, not ASCII ones
    ("008#a#1#2", ErrorReason.MALFORMED),
    ("008##5", ErrorReason.MALFORMED),
    ("008#to ken", ErrorReason.MALFORMED),
    ("008#tok\x1b[2J", ErrorReason.MALFORMED),
    ("008#" + "a" * 129, ErrorReason.MALFORMED),
    ("112#abc", ErrorReason.UNKNOWN_CODE),  # a server code from a client
    ("016", ErrorReason.MALFORMED),
    ("016#lobby", ErrorReason.MALFORMED),
    ("016#lobby#", ErrorReason.MALFORMED),
    ("016#lobby##", ErrorReason.MALFORMED),  # LIMIT missing
    ("016#lobby##x", ErrorReason.MALFORMED),
    ("016#lobby##-1", ErrorReason.MALFORMED),
    ("016#lobby##10000000000000000000", ErrorReason.MALFORMED),
    ("016##c#10", ErrorReason.MALFORMED),  # no room
    ("016#lobby#c#10#x", ErrorReason.MALFORMED),
    ("016#lobby#c\x1b#10", ErrorReason.MALFORMED),
    ("016#lobby#" + "a" * 129 + "#10", ErrorReason.BAD_CURSOR),
    ("016#lob\x07by#c#10", ErrorReason.MALFORMED),
    ("017", ErrorReason.MALFORMED),
    ("017#lobby", ErrorReason.MALFORMED),
    ("017#lobby#", ErrorReason.MALFORMED),  # empty query
    ("017##hello", ErrorReason.MALFORMED),
    ("017#lobby#esc\x1b[2J", ErrorReason.MALFORMED),
    ("140#lobby#1#a#b", ErrorReason.UNKNOWN_CODE),  # a server code from a client
    ("018", ErrorReason.MALFORMED),
    ("018#alice", ErrorReason.MALFORMED),  # no password field at all
    ("018alice#pw", ErrorReason.MALFORMED),
    ("019", ErrorReason.MALFORMED),
    ("020", ErrorReason.MALFORMED),
    ("020x", ErrorReason.MALFORMED),
    ("130#Alice", ErrorReason.UNKNOWN_CODE),  # a server code from a client
]


def test_password_frames_hide_the_password() -> None:
    """A log of a parsed frame, or of the error a malformed one raised, never shows the password."""
    frame = parse_client("018#alice#hunter2-SECRET")
    assert "hunter2-SECRET" not in repr(frame) and "hunter2-SECRET" not in str(frame)
    for line in ("018#hunter2-SECRET", "019hunter2-SECRET", "020hunter2-SECRET"):
        with pytest.raises(FrameError) as caught:
            parse_client(line)
        assert "hunter2-SECRET" not in str(caught.value) and "SECRET" not in caught.value.detail


@pytest.mark.parametrize(("line", "reason"), MALFORMED_CLIENT, ids=[repr(c[0]) for c in MALFORMED_CLIENT])
def test_malformed_client_lines(line: str, reason: ErrorReason) -> None:
    with pytest.raises(FrameError) as info:
        parse_client(line)
    assert info.value.reason is reason


MALFORMED_SERVER = [
    "101#x", "102#", "103", "103#a#b", "105#alice", "108", "109", "109#", "109#nonsense#x", "110", "999",
    "111#x#a#b", "111#-5#a#b", "111#12#a", "111", "111#١٢#a#b", "112", "112#", "112#a b", "112#a#b",
    "113", "113#", "113#x", "113#-1", "113#1#2",
    "140#lobby#x#a#b", "140#lobby#1#a", "141#lobby#1", "141#lobby#x#c", "141#lobby#1#c#d", "142#lobby#1",
    "143#lobby", "143#lobby#x", "143#lobby#1#2",
]


@pytest.mark.parametrize("line", MALFORMED_SERVER)
def test_malformed_server_lines(line: str) -> None:
    with pytest.raises(FrameError):
        parse_server(line)


@pytest.mark.parametrize(
    "frame",
    [Join("a\nb"), Broadcast("a#b", "x"), Whisper("a", "b#c", "x"), Message("a", "x\r"), UserList(("a", "b#c"))],
)
def test_serialize_refuses_fields_that_break_framing(frame: object) -> None:
    with pytest.raises(ValueError):
        serialize(frame)  # type: ignore[arg-type]


def test_encode_error_folds_line_breaks_in_the_detail() -> None:
    assert encode_error(ErrorReason.BUSY, "a\nb\rc") == serialize(Error(ErrorReason.BUSY, "a b c"))


def test_the_table_has_one_entry_per_code_and_class() -> None:
    specs = (*CLIENT_SPECS, *SERVER_SPECS)
    assert len({s.code for s in specs}) == len({s.cls for s in specs}) == len(specs)
    for spec in specs:
        assert spec.cls.CODE == spec.code


def test_every_client_frame_is_accepted_somewhere_and_costs_something() -> None:
    """The flood policy comes from the table: no frame is free (a flood of pings froze the room once)."""
    for spec in CLIENT_SPECS:
        assert spec.states and ConnState.CLOSED not in spec.states and ConnState.JOINING not in spec.states
        assert spec.budget in (Budget.MESSAGE, Budget.CONTROL, Budget.SEARCH)
        assert not spec.event


def test_every_server_frame_has_a_json_event_type() -> None:
    events = [spec.event for spec in SERVER_SPECS]
    assert all(events) and len(set(events)) == len(events)


@given(st.text())
def test_has_control_chars_matches_its_definition(text: str) -> None:
    """C0 but TAB, DEL and C1: the regex says what the docstring says."""
    expected = any((ord(ch) < 0x20 and ch != "\t") or 0x7F <= ord(ch) <= 0x9F for ch in text)
    assert has_control_chars(text) is expected
    assert has_control_chars(text + "\x9f") and has_control_chars("\x00" + text)


@pytest.mark.parametrize(("line", "address"), [
    ("000#s3cret#::ffff:198.51.100.7", "198.51.100.7"),  # IPv4-mapped: one spelling for bans, limits, logs
    ("000#s3cret#2001:DB8:0::1", "2001:db8::1"),
])
def test_a_gateway_address_is_normalised_once_when_parsed(line: str, address: str) -> None:
    assert parse_client(line) == GatewayHello("s3cret", address)


def test_a_position_counts_what_the_room_and_whispers_send_never_answers() -> None:
    """The counted frames are the table's (008#TOKEN#POSITION); the page gets their events from it."""
    from tcp_server.protocol.table import COUNTED_EVENTS, SERVER_SPECS, counted

    assert {spec.code for spec in SERVER_SPECS if spec.counted} == {"103", "104", "105", "106", "114"}
    assert COUNTED_EVENTS == ("user_joined", "user_left", "message", "whisper", "notice")
    assert counted(Message("bob", "hi")) and not counted(Pong("t")) and not counted(Resumed(3))
