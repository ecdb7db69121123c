"""Browser JSON → frames, pure: every mapping, every refusal, the CR/LF policy.

Server frames → JSON events are the core's (tests/test_protocol_events.py).
"""

from __future__ import annotations

import pytest

from tcp_server.protocol import (
    Broadcast,
    FetchOlder,
    Join,
    Leave,
    ListUsers,
    Ping,
    ResumeSession,
    Search,
    Whisper,
    parse_client,
    serialize,
)
from tcp_server.protocol.frames import ChangePassword, Login, Register
from tcp_server.protocol.passwords import Password
from web_gateway.translate import Refusal, decode_message, fold_newlines, to_frame

# (browser message, own id, the frame it becomes, the frame's wire form)
TO_FRAME = [
    ({"type": "join", "id": "alice"}, None, Join("alice"), b"001#alice\n"),
    ({"type": "join", "id": "한글이름"}, None, Join("한글이름"), "001#한글이름\n".encode()),
    ({"type": "say", "text": "hi #1"}, "alice", Broadcast("alice", "hi #1"), b"002#alice#hi #1\n"),
    ({"type": "whisper", "to": "bob", "text": "psst"}, "alice", Whisper("alice", "bob", "psst"),
     b"003#alice#bob#psst\n"),
    ({"type": "who"}, "alice", ListUsers("alice"), b"005#alice\n"),
    ({"type": "leave"}, "alice", Leave("alice"), b"004#alice\n"),
    ({"type": "ping", "token": "t1"}, None, Ping("t1"), b"006#t1\n"),
    ({"type": "resume", "token": "Q2x-_9"}, None, ResumeSession("Q2x-_9"), b"008#Q2x-_9\n"),  # an older page
    ({"type": "resume", "token": "Q2x-_9", "position": 0}, None, ResumeSession("Q2x-_9", 0), b"008#Q2x-_9#0\n"),
    ({"type": "resume", "token": "Q2x-_9", "position": 57}, None, ResumeSession("Q2x-_9", 57), b"008#Q2x-_9#57\n"),
    ({"type": "ping", "token": "t#2"}, "alice", Ping("t#2"), b"006#t#2\n"),
    # the sender field is the gateway's, whatever the browser puts in its message
    ({"type": "say", "text": "x", "id": "mallory", "from": "mallory"}, "alice", Broadcast("alice", "x"),
     b"002#alice#x\n"),
    # CR/LF folded to spaces: one frame, never two
    ({"type": "say", "text": "a\n002#bob#forged"}, "alice", Broadcast("alice", "a 002#bob#forged"),
     b"002#alice#a 002#bob#forged\n"),
    ({"type": "whisper", "to": "bob", "text": "a\r\n004#bob\rb"}, "alice", Whisper("alice", "bob", "a 004#bob b"),
     b"003#alice#bob#a 004#bob b\n"),
    ({"type": "say", "text": "tab\tok"}, "alice", Broadcast("alice", "tab\tok"), b"002#alice#tab\tok\n"),
    ({"type": "older", "room": "lobby", "cursor": "", "limit": 50}, "alice", FetchOlder("lobby", "", 50),
     b"016#lobby##50\n"),
    ({"type": "older", "room": "lobby", "cursor": "AAAA-_", "limit": 0}, "alice", FetchOlder("lobby", "AAAA-_", 0),
     b"016#lobby#AAAA-_#0\n"),  # LIMIT's range is the server's to judge (109#malformed)
    ({"type": "search", "room": "lobby", "text": "%_ # 안녕\nx"}, "alice", Search("lobby", "%_ # 안녕 x"),
     "017#lobby#%_ # 안녕 x\n".encode()),
    ({"type": "login", "id": "Alice", "password": "pa#ss word"}, None, Login("Alice", Password("pa#ss word")),
     b"018#Alice#pa#ss word\n"),
    ({"type": "login", "id": "alice", "password": ""}, None, Login("alice", Password("")), b"018#alice#\n"),
    ({"type": "register", "password": "keep # this"}, "alice", Register(Password("keep # this")),
     b"019#keep # this\n"),
    ({"type": "passwd", "password": "new one #2"}, "alice", ChangePassword(Password("new one #2")),
     b"020#new one #2\n"),
]


@pytest.mark.parametrize(("msg", "own", "frame", "wire"), TO_FRAME)
def test_browser_message_to_frame(msg: dict[str, object], own: str | None, frame: object, wire: bytes) -> None:
    got = to_frame(msg, own)
    assert got == frame
    assert serialize(got) == wire  # type: ignore[arg-type]
    assert parse_client(wire[:-1].decode()) == frame  # the server reads back exactly this frame


REFUSED = [
    ({"type": "say", "text": "hi"}, None, "not-joined"),
    ({"type": "whisper", "to": "bob", "text": "hi"}, None, "not-joined"),
    ({"type": "who"}, None, "not-joined"),
    ({"type": "leave"}, None, "not-joined"),
    ({"type": "join", "id": "bob"}, "alice", "already-joined"),
    ({"type": "resume", "token": "t", "position": -1}, None, "malformed"),
    ({"type": "resume", "token": "t", "position": 1.5}, None, "malformed"),
    ({"type": "resume", "token": "t", "position": "3"}, None, "malformed"),
    ({"type": "resume", "token": "t", "position": True}, None, "malformed"),
    ({"type": "resume", "token": "t", "position": 10 ** 18}, None, "malformed"),
    ({"type": "resume", "token": "t", "position": 3}, "alice", "already-joined"),
    ({"type": "join", "id": "a b"}, None, "bad-id"),
    ({"type": "join", "id": "a#b"}, None, "bad-id"),
    ({"type": "join", "id": "a\nb"}, None, "bad-id"),
    ({"type": "join", "id": ""}, None, "bad-id"),
    ({"type": "join", "id": "x" * 33}, None, "bad-id"),
    ({"type": "join"}, None, "malformed"),
    ({"type": "join", "id": 7}, None, "malformed"),
    ({"type": "whisper", "to": "bo#b", "text": "hi"}, "alice", "bad-id"),
    ({"type": "whisper", "to": "bob\n003", "text": "hi"}, "alice", "bad-id"),
    ({"type": "whisper", "text": "hi"}, "alice", "malformed"),
    ({"type": "say"}, "alice", "malformed"),
    ({"type": "say", "text": ["x"]}, "alice", "malformed"),
    ({"type": "say", "text": ""}, "alice", "malformed"),
    ({"type": "say", "text": "esc \x1b[2J"}, "alice", "malformed"),
    ({"type": "say", "text": "del \x7f"}, "alice", "malformed"),
    ({"type": "say", "text": "nul \x00"}, "alice", "malformed"),
    ({"type": "ping", "token": "a\nb"}, None, "malformed"),
    ({"type": "ping"}, None, "malformed"),
    # lone surrogates (JSON's "\ud800"): no frame can carry them
    ({"type": "say", "text": "a\ud800b"}, "alice", "malformed"),
    ({"type": "whisper", "to": "bob", "text": "\udfff"}, "alice", "malformed"),
    ({"type": "ping", "token": "\ud800"}, None, "malformed"),
    ({"type": "join", "id": "a\ud800"}, None, "malformed"),
    ({"type": "shout", "text": "x"}, "alice", "unknown-type"),
    ({"type": "older", "room": "lobby", "cursor": "", "limit": 5}, None, "not-joined"),
    ({"type": "search", "room": "lobby", "text": "hi"}, None, "not-joined"),
    ({"type": "older", "room": "lobby", "cursor": "a#b", "limit": 5}, "alice", "malformed"),
    ({"type": "older", "room": "lob#by", "cursor": "", "limit": 5}, "alice", "malformed"),
    ({"type": "older", "room": "", "cursor": "", "limit": 5}, "alice", "malformed"),
    ({"type": "older", "room": "lobby", "cursor": "x\n", "limit": 5}, "alice", "malformed"),
    ({"type": "older", "room": "lobby", "limit": 5}, "alice", "malformed"),
    ({"type": "older", "room": "lobby", "cursor": "", "limit": "5"}, "alice", "malformed"),
    ({"type": "older", "room": "lobby", "cursor": "", "limit": True}, "alice", "malformed"),
    ({"type": "older", "room": "lobby", "cursor": "", "limit": 2.5}, "alice", "malformed"),
    ({"type": "older", "room": "lobby", "cursor": "", "limit": -1}, "alice", "malformed"),
    ({"type": "search", "room": "lobby", "text": ""}, "alice", "malformed"),
    ({"type": "search", "room": "lobby", "text": "esc\x1b"}, "alice", "malformed"),
    ({"type": "search", "text": "hi"}, "alice", "malformed"),
    ({"type": "say", "text": "x" * 4096}, "alice", "too-long"),
    ({"type": "say", "text": "가" * 1400}, "alice", "too-long"),  # 4,200 bytes in UTF-8
    ({"type": "login", "id": "bob", "password": "x"}, "alice", "already-joined"),
    ({"type": "login", "id": "bad id", "password": "x"}, None, "bad-id"),
    ({"type": "login", "id": "bob"}, None, "malformed"),
    ({"type": "login", "id": "bob", "password": 12345678}, None, "malformed"),
    ({"type": "login", "id": "bob", "password": "\ud800 lone"}, None, "malformed"),
    ({"type": "login", "id": "bob", "password": "x" * 5000}, None, "too-long"),
    ({"type": "register", "password": "long enough"}, None, "not-joined"),
    ({"type": "passwd", "password": "long enough"}, None, "not-joined"),
    ({"type": "register"}, "alice", "malformed"),
]


def test_refusals_never_quote_a_password() -> None:
    for msg in ({"type": "login", "id": "bob", "password": "x" * 5000 + "SECRET"},
                {"type": "login", "id": "bad id", "password": "SECRET-pw"}):
        got = to_frame(msg, None)
        assert isinstance(got, Refusal) and "SECRET" not in got.text


@pytest.mark.parametrize(("msg", "own", "reason"), REFUSED)
def test_refused_browser_messages(msg: dict[str, object], own: str | None, reason: str) -> None:
    got = to_frame(msg, own)
    assert isinstance(got, Refusal), got
    assert got.reason == reason
    event = got.event()
    assert event["type"] == "error" and event["reason"] == reason and isinstance(event["text"], str)


def test_longest_message_that_fits_is_sent() -> None:
    room = 4096 - len(b"002#alice#\n")
    assert isinstance(to_frame({"type": "say", "text": "x" * room}, "alice"), Broadcast)
    assert isinstance(to_frame({"type": "say", "text": "x" * (room + 1)}, "alice"), Refusal)
    assert isinstance(to_frame({"type": "say", "text": "x" * 100}, "alice", max_frame=64), Refusal)


@pytest.mark.parametrize(("raw", "ok"), [
    ('{"type":"say","text":"x"}', True),
    ("not json", False),
    ("[1,2]", False),
    ('"join"', False),
    ("{}", False),
    ('{"type": 5}', False),
    ("[" * 100000, False),  # deeply nested: refused, not a crash
])
def test_decode_message(raw: str, ok: bool) -> None:
    got = decode_message(raw)
    if ok:
        assert isinstance(got, dict)
    else:
        assert isinstance(got, Refusal) and got.reason == "bad-json"


# (server line, the event it becomes)
@pytest.mark.parametrize(("text", "folded"), [
    ("a\nb", "a b"), ("a\r\nb", "a b"), ("a\rb", "a b"), ("\n", " "), ("a\n\nb", "a  b"), ("plain", "plain"),
])
def test_fold_newlines(text: str, folded: str) -> None:
    assert fold_newlines(text) == folded


def test_pure_gateway_modules_load_no_io() -> None:
    """translate, wsframe, forwarded, origin, i18n and config are pure: no asyncio, sockets or aiohttp behind them."""
    import subprocess
    import sys

    forbidden = ["aiohttp", "asyncio", "socket", "ssl", "selectors", "uvloop"]
    code = (
        "import sys, web_gateway.translate, web_gateway.wsframe, web_gateway.forwarded, web_gateway.origin, "
        f"web_gateway.i18n, web_gateway.config; bad = [m for m in {forbidden!r} if m in sys.modules]; print(bad); "
        "sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("raw", "rule", "char"), [
    ("a b", "space", "U+0020"),
    ("a#b", "hash", None),
    ("x" * 33, "too-long", None),
    ("alice\U0001f600", "symbol", "U+1F600"),
    ("\u0430lice", "scripts", None),
    ("alice\u200d", "invisible", "U+200D"),
])
def test_a_bad_id_says_which_rule_it_broke(raw: str, rule: str, char: str | None) -> None:
    """The page says the rule in the user's language: the event names it (and the character at fault)."""
    got = to_frame({"type": "join", "id": raw}, None)
    assert isinstance(got, Refusal)
    event = got.event()
    assert event["reason"] == "bad-id" and event["rule"] == rule and event.get("char") == char
    whisper = to_frame({"type": "whisper", "to": raw, "text": "hi"}, "alice")
    assert isinstance(whisper, Refusal) and whisper.event()["rule"] == rule


def test_every_password_rule_and_account_reason_has_a_page_sentence() -> None:
    from tcp_server.protocol.codes import ErrorReason
    from tcp_server.protocol.passwords import PasswordRule
    from web_gateway.i18n import page_strings

    for lang in ("ko", "en"):
        strings = page_strings(lang)
        assert all(f"password_rule:{rule}" in strings for rule in PasswordRule)
        assert all(f"reason:{reason}" in strings for reason in ErrorReason)
        assert strings["reason:needs-tls"]
