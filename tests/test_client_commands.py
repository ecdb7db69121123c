"""chat-client's pure parts: typed lines to commands and frames, completion, roster, backoff, config."""

from __future__ import annotations

import itertools

import pytest

from chat_client.backoff import backoff_delays
from chat_client.commands import (
    Find,
    Help,
    Invalid,
    More,
    Problem,
    Quit,
    Say,
    WhisperTo,
    Who,
    parse_command,
    to_frame,
)
from chat_client.completion import complete
from chat_client.config import ClientConfig, build_parser, parse_config
from tcp_server.protocol import (
    Broadcast,
    Joined,
    ListUsers,
    Message,
    UserJoined,
    UserLeft,
    UserList,
    Whisper,
    serialize,
)
from tcp_server.protocol.roster import Roster


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        # the seed's commands, same meaning; messages as typed, no trailing space added, '#' kept
        ("/m bob hi there", WhisperTo("bob", "hi there")),
        ("/m bob a # b #", WhisperTo("bob", "a # b #")),
        ("/m  bob  two  spaces ", WhisperTo("bob", " two  spaces ")),
        ("/m 철수 안녕", WhisperTo("철수", "안녕")),
        ("/b hello all", Say("hello all")),
        ("/b #hash# ", Say("#hash# ")),
        ("/b /not-a-command", Say("/not-a-command")),
        ("/q", Quit()),
        ("/q bye", Quit()),
        ("/who", Who()),
        ("/help", Help()),
        ("/more", More()),
        ("/search 안녕", Find("안녕")),
        ("/search   %_ # x ", Find("%_ # x")),
        ("/search", Invalid(Problem.USAGE_SEARCH)),
        ("/search x", Invalid(Problem.USAGE_SEARCH)),
        ("/search ab\x1b[2J", Invalid(Problem.CONTROL)),
        # plain text goes to everyone
        ("hello # world", Say("hello # world")),
        ("  indented", Say("  indented")),
        ("안녕하세요", Say("안녕하세요")),
        # nothing to do
        ("", None),
        ("   ", None),
        # usage errors
        ("/m", Invalid(Problem.USAGE_M)),
        ("/m bob", Invalid(Problem.USAGE_M)),
        ("/m bob   ", Invalid(Problem.USAGE_M)),
        ("/b", Invalid(Problem.USAGE_B)),
        ("/b    ", Invalid(Problem.USAGE_B)),
        ("/m a#b hi", Invalid(Problem.BAD_TARGET, "a#b")),
        ("/b bell\x07", Invalid(Problem.CONTROL)),
        ("esc \x1b[2J", Invalid(Problem.CONTROL)),
        ("/m bob \x9b", Invalid(Problem.CONTROL)),
        # anything else starting with '/'
        ("/x", Invalid(Problem.UNKNOWN, "/x")),
        ("/quit", Invalid(Problem.UNKNOWN, "/quit")),
        ("/mbob hi", Invalid(Problem.UNKNOWN, "/mbob")),
        ("/", Invalid(Problem.UNKNOWN, "/")),
        ("/WHO", Invalid(Problem.UNKNOWN, "/WHO")),
    ],
)
def test_parse_command(typed: str, expected: object) -> None:
    assert parse_command(typed) == expected


def test_tab_is_allowed_in_messages() -> None:
    assert parse_command("/b a\tb") == Say("a\tb")


@pytest.mark.parametrize(
    ("cmd", "frame", "wire"),
    [
        (Say("hi # there"), Broadcast("alice", "hi # there"), b"002#alice#hi # there\n"),
        (WhisperTo("bob", "psst #"), Whisper("alice", "bob", "psst #"), b"003#alice#bob#psst #\n"),
        (Who(), ListUsers("alice"), b"005#alice\n"),
    ],
)
def test_to_frame_uses_the_core(cmd: Say | WhisperTo | Who, frame: object, wire: bytes) -> None:
    built = to_frame(cmd, "alice")
    assert built == frame
    assert not isinstance(built, Invalid)
    assert serialize(built) == wire


def test_to_frame_refuses_what_the_server_would_call_too_long() -> None:
    fits = "x" * (4096 - len("002#alice#\n"))
    assert to_frame(Say(fits), "alice") == Broadcast("alice", fits)
    assert to_frame(Say(fits + "x"), "alice") == Invalid(Problem.TOO_LONG, "4096")
    # bytes, not characters: a Hangul syllable is three bytes
    assert to_frame(WhisperTo("bob", "가" * 1400), "alice") == Invalid(Problem.TOO_LONG, "4096")


@pytest.mark.parametrize(
    ("before", "online", "expected"),
    [
        ("/", [], [("/m ", -1), ("/b ", -1), ("/who", -1), ("/more", -1), ("/search ", -1), ("/register", -1),
                  ("/passwd", -1), ("/q", -1), ("/help", -1)]),
        ("/w", [], [("/who", -2)]),
        ("/h", [], [("/help", -2)]),
        ("/re", [], [("/register", -3)]),
        ("/z", [], []),
        ("/m ", ["bob", "Bora", "carol"], [("bob ", 0), ("Bora ", 0), ("carol ", 0)]),
        ("/m b", ["bob", "Bora", "carol"], [("bob ", -1), ("Bora ", -1)]),
        ("/m BO", ["bob", "Bora"], [("bob ", -2), ("Bora ", -2)]),
        ("/m 철", ["철수", "영희"], [("철수 ", -1)]),
        ("/m bob hi", ["bob"], []),
        ("/b b", ["bob"], []),
        ("hello", ["bob"], []),
    ],
)
def test_completion(before: str, online: list[str], expected: list[tuple[str, int]]) -> None:
    assert complete(before, online) == expected


def test_roster_follows_100_103_104_107() -> None:
    roster = Roster()
    roster.apply(Joined("alice"))
    assert roster.names() == ["alice"]
    roster.apply(UserList(("bob", "alice")))
    assert roster.names() == ["bob", "alice"]
    roster.apply(UserJoined("Carol"))
    roster.apply(Message("bob", "not a roster change"))
    assert roster.names() == ["bob", "alice", "Carol"]
    assert "carol" in roster and "CAROL" in roster
    roster.apply(UserLeft("carol"))  # the server compares IDs case-insensitively
    assert roster.names() == ["bob", "alice"]
    assert roster.others("ALICE") == ["bob"]
    assert roster.others(None) == ["bob", "alice"]
    roster.apply(UserLeft("nobody"))
    assert roster.names() == ["bob", "alice"]
    roster.clear()
    assert roster.names() == []


def test_backoff_is_capped_and_jittered() -> None:
    low = list(itertools.islice(backoff_delays(0.5, 4.0, rand=lambda: 0.0), 7))
    high = list(itertools.islice(backoff_delays(0.5, 4.0, rand=lambda: 0.999999), 7))
    assert low == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0]  # half of the ceiling at least
    assert high == pytest.approx([0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0])  # never above the cap
    spread = list(itertools.islice(backoff_delays(1.0, 8.0, rand=iter([0.1, 0.9, 0.5]).__next__), 3))
    assert spread == pytest.approx([0.55, 1.9, 3.0])
    with pytest.raises(ValueError):
        next(backoff_delays(0, 1))


def test_config_positionals_flags_and_env() -> None:
    cfg = parse_config([], environ={})
    assert (cfg.host, cfg.port, cfg.id, cfg.lang, cfg.color, cfg.timestamps, cfg.reconnect) == (
        None, None, None, "en", True, False, False)
    cfg = parse_config(["127.0.0.1", "9000", "--id", "bot", "--lang", "ko", "--no-color", "--timestamps",
                        "--reconnect", "--ping-interval", "5"], environ={})
    assert (cfg.host, cfg.port, cfg.id, cfg.lang, cfg.color, cfg.timestamps, cfg.reconnect, cfg.ping_interval) == (
        "127.0.0.1", 9000, "bot", "ko", False, True, True, 5.0)
    env = {"CHAT_CLIENT_HOST": "10.0.0.1", "CHAT_CLIENT_PORT": "9100", "CHAT_ID": "envbot", "CHAT_LANG": "ko",
           "CHAT_TIMESTAMPS": "yes", "CHAT_RECONNECT": "1", "CHAT_HOST": "ignored", "CHAT_PORT": "1"}
    cfg = parse_config([], environ=env)
    assert (cfg.host, cfg.port, cfg.id, cfg.lang, cfg.timestamps, cfg.reconnect) == (
        "10.0.0.1", 9100, "envbot", "ko", True, True)
    cfg = parse_config(["127.0.0.1", "9200", "--id", "flag", "--lang", "en", "--no-reconnect"], environ=env)
    assert (cfg.host, cfg.port, cfg.id, cfg.lang, cfg.reconnect) == ("127.0.0.1", 9200, "flag", "en", False)


@pytest.mark.parametrize(
    ("environ", "argv", "color"),
    [
        ({}, [], True),
        ({"NO_COLOR": "1"}, [], False),
        ({"NO_COLOR": ""}, [], True),  # no-color.org: only a non-empty value counts
        ({"CHAT_COLOR": "off"}, [], False),
        ({}, ["--no-color"], False),
        ({"NO_COLOR": "1"}, ["--color"], True),
    ],
)
def test_config_colour(environ: dict[str, str], argv: list[str], color: bool) -> None:
    assert parse_config(argv, environ=environ).color is color


def test_config_lang_defaults_to_the_locale() -> None:
    assert parse_config([], environ={"LANG": "ko_KR.UTF-8"}).lang == "ko"
    assert parse_config([], environ={"LANG": "en_US.UTF-8"}).lang == "en"
    assert parse_config([], environ={"LANG": "ko_KR.UTF-8", "CHAT_LANG": "en"}).lang == "en"


@pytest.mark.parametrize(
    ("argv", "environ", "word"),
    [
        (["127.0.0.1", "http"], {}, "port"),
        (["127.0.0.1", "70000"], {}, "port"),
        ([], {"CHAT_CLIENT_PORT": "x"}, "CHAT_CLIENT_PORT"),
        ([], {"CHAT_RECONNECT": "maybe"}, "CHAT_RECONNECT"),
        (["--lang", "fr"], {}, "lang"),
    ],
)
def test_config_errors_are_clear(argv: list[str], environ: dict[str, str], word: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_config(argv, environ=environ)
    assert exc.value.code == 2
    assert word in capsys.readouterr().err


def test_config_is_frozen_with_seed_like_defaults() -> None:
    cfg = ClientConfig()
    assert cfg.host is None and cfg.port is None and cfg.id is None  # asked for, as the seed does


def test_help_names_every_flag_and_variable() -> None:
    text = build_parser({}).format_help()
    for word in ("--id", "--lang", "--no-color", "--timestamps", "--reconnect", "--ping-interval", "--history",
                 "CHAT_CLIENT_HOST", "CHAT_CLIENT_PORT", "CHAT_ID", "CHAT_LANG", "NO_COLOR", "/m ID MESSAGE"):
        assert word in text
