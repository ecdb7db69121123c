"""chat-client's renderer: every server frame in the seed's Korean and in English, echoes, colour, stamps."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

import chat_client
from chat_client.commands import Invalid, Problem
from chat_client.messages import keys, msg
from chat_client.render import (
    Kind,
    Line,
    clean,
    echo_say,
    echo_whisper,
    format_line,
    hh_mm,
    invalid_lines,
    render_frame,
)
from tcp_server.protocol import (
    Error,
    ErrorReason,
    Message,
    ServerFrame,
    UserJoined,
    UserList,
    WhisperMessage,
    parse_server,
)

# (wire line, kind, Korean, English): PROTOCOL.md's table
FRAMES: list[tuple[str, Kind, str, str]] = [
    ("100#alice", Kind.INFO, "채팅방에 입장하였습니다.", "You joined the chat room."),
    ("101", Kind.ERROR, "중복된 ID입니다. ID를 다시 입력해주세요.", "That ID is taken. Please enter another ID."),
    ("102", Kind.INFO, "채팅방 접속이 해제되었습니다.", "You have left the chat room."),
    ("103#bob", Kind.NOTICE, "[공지]bob 사용자가 접속하였습니다.", "[Notice] bob joined."),
    ("104#bob", Kind.NOTICE, "[공지]bob 사용자가 퇴장하였습니다.", "[Notice] bob left."),
    ("105#bob#hi # all", Kind.MESSAGE, "bob : hi # all", "bob : hi # all"),
    ("106#bob#psst #", Kind.WHISPER, "bob님의 귓속말 : psst #", "bob whispers : psst #"),
    ("107#alice#bob", Kind.INFO, "=== 접속자 리스트 ===\nalice\nbob\n=====================",
     "=== Users online ===\nalice\nbob\n====================="),
    ("108#carol", Kind.ERROR, "해당 사용자가 존재하지 않습니다.", "No such user is online."),
    ("109#bad-id#ID contains a forbidden character U+0020", Kind.ERROR,
     "[오류] 사용할 수 없는 ID입니다. (ID contains a forbidden character U+0020)",
     "[Error] That ID is not allowed. (ID contains a forbidden character U+0020)"),
    ("109#flood", Kind.ERROR, "[오류] 메시지를 너무 빨리 보내고 있습니다.", "[Error] You are sending too fast."),
    ("109#shutdown#server shutting down", Kind.ERROR, "[오류] 서버가 종료됩니다. (server shutting down)",
     "[Error] The server is shutting down. (server shutting down)"),
    ("110#t1", Kind.INFO, "응답 t1", "pong t1"),
    # history carries its time, as this terminal's local HH:MM
    ("111#1767225600000#bob#hi # all", Kind.MESSAGE, f"[{hh_mm(1767225600000)}] bob : hi # all",
     f"[{hh_mm(1767225600000)}] bob : hi # all"),
    ("112#tok", Kind.INFO, "연결이 끊겨도 이 대화를 이어갈 수 있습니다.",
     "This conversation can be resumed if the connection drops."),
    ("113#2", Kind.INFO, "다시 연결되었습니다. 놓친 메시지 2개를 위에 표시했습니다.",
     "Reconnected: 2 missed message(s) shown above."),
]


@pytest.mark.parametrize(("wire", "kind", "ko", "en"), FRAMES, ids=[f[0][:3] + f[0][3:12] for f in FRAMES])
def test_every_frame_in_korean_and_english(wire: str, kind: Kind, ko: str, en: str) -> None:
    frame = parse_server(wire)
    assert render_frame(frame, "ko") == Line(kind, ko)
    assert render_frame(frame, "en") == Line(kind, en)
    assert not render_frame(frame, "ko").local


def test_the_table_covers_every_server_code() -> None:
    assert {wire[:3] for wire, *_ in FRAMES} == {str(c) for c in range(100, 114)}


def test_hh_mm_is_local_time_of_a_server_timestamp() -> None:
    import time

    assert hh_mm(1767225600000) == time.strftime("%H:%M", time.localtime(1767225600))


@pytest.mark.parametrize("reason", list(ErrorReason))
def test_every_error_reason_has_a_text(reason: ErrorReason) -> None:
    for lang, prefix in (("ko", "[오류] "), ("en", "[Error] ")):
        line = render_frame(Error(reason, ""), lang)  # type: ignore[arg-type]
        assert line.kind is Kind.ERROR
        assert line.text.startswith(prefix) and len(line.text) > len(prefix) and "()" not in line.text


def test_user_list_on_one_line_for_scripts() -> None:
    assert render_frame(UserList(("alice", "bob")), "ko", one_line=True) == Line(
        Kind.INFO, "=== 접속자 리스트 === alice bob")
    assert render_frame(UserList(("alice",)), "en", one_line=True).text == "=== Users online === alice"
    # every other frame is one line already
    for wire, *_ in FRAMES:
        assert "\n" not in render_frame(parse_server(wire), "ko", one_line=True).text


@pytest.mark.parametrize(
    "frame",
    [
        Message("evil\x1b[2J", "a\x1b]0;title\x07b\rforged"),
        WhisperMessage("x", "\x9b31m"),
        UserList(("ok", "bad\x1b")),
        Error(ErrorReason.MALFORMED, "detail\x1b[1A"),
        UserJoined("\x08\x08"),
    ],
)
def test_a_rogue_server_cannot_send_terminal_escapes(frame: ServerFrame) -> None:
    for lang in ("ko", "en"):
        text = render_frame(frame, lang).text
        assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) <= 0x9F for c in text), repr(text)
        assert "\ufffd" in text


def test_clean_keeps_tabs_and_text() -> None:
    assert clean("a\tb 한글 #") == "a\tb 한글 #"
    assert clean("a\x00b\x7fc") == "a\ufffdb\ufffdc"


def test_local_echoes() -> None:
    assert echo_say("hi # x", "ko") == Line(Kind.SELF, "나 : hi # x", local=True)
    assert echo_say("hi", "en") == Line(Kind.SELF, "me : hi", local=True)
    assert echo_whisper("bob", "psst", "ko") == Line(Kind.SELF, "나 → bob : psst", local=True)
    assert echo_whisper("bob", "psst", "en") == Line(Kind.SELF, "me → bob : psst", local=True)


@pytest.mark.parametrize(
    ("invalid", "ko_hint", "en_hint"),
    [
        (Invalid(Problem.UNKNOWN, "/x"), "명령어 목록은 /help 를 입력하세요.", "Type /help for the list of commands."),
        (Invalid(Problem.USAGE_M), "사용법: /m ID 메시지", "Usage: /m ID MESSAGE"),
        (Invalid(Problem.USAGE_B), "사용법: /b 메시지", "Usage: /b MESSAGE"),
        (Invalid(Problem.BAD_TARGET, "a#b"), "사용할 수 없는 ID입니다: a#b", "Not a valid ID: a#b"),
        (Invalid(Problem.CONTROL), "메시지에 제어 문자를 넣을 수 없습니다.",
         "Messages cannot contain control characters."),
        (Invalid(Problem.TOO_LONG, "4096"), "메시지가 너무 깁니다 (최대 4096바이트).",
         "The message is too long (at most 4096 bytes)."),
    ],
)
def test_bad_input_gets_the_seed_text_and_a_hint(invalid: Invalid, ko_hint: str, en_hint: str) -> None:
    assert invalid_lines(invalid, "ko") == [
        Line(Kind.ERROR, "메시지를 정상적으로 입력해주세요.", local=True), Line(Kind.INFO, ko_hint, local=True)]
    assert invalid_lines(invalid, "en") == [
        Line(Kind.ERROR, "Please enter a valid message.", local=True), Line(Kind.INFO, en_hint, local=True)]


def test_every_client_text_exists_in_both_languages() -> None:
    samples = {"to": "x", "limit": 1, "where": "h:1", "why": "w", "seconds": 1, "id": "x", "message": "m"}
    for key in keys():
        for lang in ("ko", "en"):
            assert msg(key, lang, **samples)
    assert "/m ID" in msg("help", "en") and "/who" in msg("help", "ko") and "/q" in msg("help", "ko")


def test_format_plain_colour_and_timestamps() -> None:
    notice = Line(Kind.NOTICE, "[공지]bob 사용자가 접속하였습니다.")
    assert format_line(notice, color=False) == "[공지]bob 사용자가 접속하였습니다."
    assert format_line(notice, color=True) == "\x1b[33m[공지]bob 사용자가 접속하였습니다.\x1b[0m"
    assert format_line(Line(Kind.MESSAGE, "bob : hi"), color=True) == "bob : hi"  # the terminal's own colour
    assert format_line(Line(Kind.WHISPER, "w"), color=True) == "\x1b[1;35mw\x1b[0m"
    assert format_line(Line(Kind.ERROR, "e"), color=True) == "\x1b[1;31me\x1b[0m"
    assert format_line(Line(Kind.SELF, "나 : hi"), color=False, stamp="12:34:56") == "[12:34:56] 나 : hi"
    block = Line(Kind.INFO, "=== 접속자 리스트 ===\nalice\n=====================")
    assert format_line(block, color=False, stamp="01:02:03").split("\n") == [
        "[01:02:03] === 접속자 리스트 ===", "           alice", "           ====================="]
    coloured = format_line(block, color=True, stamp="01:02:03").split("\n")
    assert all(row.endswith("\x1b[0m") for row in coloured)  # each row closes its colour
    kinds = {format_line(Line(kind, "x"), color=True) for kind in Kind}
    assert len(kinds) == len(Kind)  # every kind looks different


PURE = ["backoff", "commands", "completion", "config", "messages", "render"]
FORBIDDEN = {"asyncio", "socket", "aiohttp", "selectors", "threading", "prompt_toolkit"}


def test_pure_modules_import_nothing_forbidden() -> None:
    root = pathlib.Path(chat_client.__file__).parent
    for name in PURE:
        path = root / f"{name}.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            assert not any(n.split(".")[0] in FORBIDDEN for n in names), f"{name}.py imports {names}"
    code = (
        "import sys; " + "; ".join(f"import chat_client.{m}" for m in PURE)
        + f"; bad = sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules); print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr

