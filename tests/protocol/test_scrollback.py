"""Scrollback and search in the pure core: signed cursors, and what a session answers to 016/017."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tcp_server.protocol import ErrorReason, client_frame_reader
from tcp_server.protocol.frames import Error, Found, History, Message, Older, Page, Searched
from tcp_server.protocol.roster import Roster
from tcp_server.protocol.scrollback import LOBBY, open_cursor, page_cursor, room_key, sign_cursor
from tcp_server.protocol.session import Claim, Effect, FetchPage, FindText, Reply, Session

KEY = b"k" * 32


def joined(cursor_key: bytes | None = KEY) -> Session:
    session = Session(Roster(), "192.0.2.1")
    session.cursor_key = cursor_key
    (claim,) = session.handle(client_frame_reader().feed(b"001#alice\n")[0])
    assert isinstance(claim, Claim)
    session.claimed(("alice",))
    return session


def handle(session: Session, line: str) -> list[Effect]:
    (item,) = client_frame_reader().feed(line.encode() + b"\n")
    return session.handle(item)


def refusal(effects: list[Effect]) -> ErrorReason:
    (effect,) = effects
    assert isinstance(effect, Reply) and isinstance(effect.frame, Error)
    return effect.frame.reason


@given(st.integers(min_value=0, max_value=2**63))
def test_a_cursor_opens_to_its_place_for_its_room_only(seq: int) -> None:
    cursor = sign_cursor(KEY, LOBBY, seq)
    assert cursor.isascii() and all(c.isalnum() or c in "-_" for c in cursor)  # URL-safe, no '#'
    assert open_cursor(KEY, LOBBY, cursor) == seq
    assert open_cursor(KEY, "another room", cursor) is None
    assert open_cursor(b"x" * 32, LOBBY, cursor) is None


@pytest.mark.parametrize("forged", ["", "x", "AAAA", "A" * 32, "====", "한글", "AAAAAAAAAAE" + "A" * 21, "%00"])
def test_a_forged_cursor_opens_to_nothing(forged: str) -> None:
    assert open_cursor(KEY, LOBBY, forged) is None


def test_a_tampered_cursor_opens_to_nothing() -> None:
    cursor = sign_cursor(KEY, LOBBY, 41)
    for i in range(len(cursor)):
        flipped = cursor[:i] + ("B" if cursor[i] != "B" else "C") + cursor[i + 1:]
        assert open_cursor(KEY, LOBBY, flipped) is None


def test_nothing_older_than_the_first_message_has_no_cursor() -> None:
    assert page_cursor(KEY, LOBBY, 1) == page_cursor(KEY, LOBBY, None) == ""
    assert open_cursor(KEY, LOBBY, page_cursor(KEY, LOBBY, 2)) == 2


def test_rooms_match_by_key() -> None:
    assert room_key("LOBBY") == room_key("lobby") == LOBBY


def test_a_fresh_join_with_a_store_ends_its_history_with_141() -> None:
    session = Session(Roster(), "192.0.2.1")
    session.cursor_key = KEY
    session.handle(client_frame_reader().feed(b"001#alice\n")[0])
    effects = session.claimed(("alice",), [Message("bob", "hi", 5)], oldest_seq=7)
    frames = [e.frame for e in effects if isinstance(e, Reply)]
    assert frames[-2:] == [History(5, "bob", "hi"), Page(LOBBY, 1, sign_cursor(KEY, LOBBY, 7))]
    plain = Session(Roster(), "192.0.2.1")  # no store (--database memory), or the legacy port: no 141
    plain.handle(client_frame_reader().feed(b"001#bob\n")[0])
    assert not any(isinstance(e, Reply) and isinstance(e.frame, Page) for e in plain.claimed(("bob",), []))


def test_016_asks_the_store_and_pages_back() -> None:
    session = joined()
    assert handle(session, "016#lobby##10") == [FetchPage(LOBBY, None, 10)]
    assert handle(session, f"016#LOBBY#{sign_cursor(KEY, LOBBY, 30)}#200") == [FetchPage(LOBBY, 30, 200)]
    rows = [(20 + i, 1000 + i, "bob", f"m{i}") for i in range(10)]
    frames = [e.frame for e in session.paged(LOBBY, rows, 10) if isinstance(e, Reply)]
    assert frames[:10] == [Older(LOBBY, 1000 + i, "bob", f"m{i}") for i in range(10)]
    assert frames[10] == Page(LOBBY, 10, sign_cursor(KEY, LOBBY, 20))
    last = [e.frame for e in session.paged(LOBBY, rows[:3], 10) if isinstance(e, Reply)]
    assert last[-1] == Page(LOBBY, 3, "")  # fewer than asked: nothing older


@pytest.mark.parametrize(("line", "reason"), [
    ("016#lobby##0", ErrorReason.MALFORMED),
    ("016#lobby##201", ErrorReason.MALFORMED),
    ("016#lobby##10000", ErrorReason.MALFORMED),
    ("016#lobby#forged#10", ErrorReason.BAD_CURSOR),
    (f"016#lobby#{sign_cursor(b'z' * 32, LOBBY, 5)}#10", ErrorReason.BAD_CURSOR),  # another server's key
    (f"016#lobby#{sign_cursor(KEY, 'elsewhere', 5)}#10", ErrorReason.BAD_CURSOR),  # another room's cursor
    ("016#elsewhere##10", ErrorReason.NOT_IN_ROOM),
    ("017#elsewhere#hello", ErrorReason.NOT_IN_ROOM),
    ("017#lobby#x", ErrorReason.MALFORMED),
    ("017#lobby#e\u0301", ErrorReason.MALFORMED),  # one character after NFC
])
def test_bad_016_and_017_get_a_clear_109(line: str, reason: ErrorReason) -> None:
    assert refusal(handle(joined(), line)) is reason


def test_without_a_store_016_and_017_are_unavailable() -> None:
    session = joined(cursor_key=None)
    assert refusal(handle(session, "016#lobby##10")) is ErrorReason.UNAVAILABLE
    assert refusal(handle(session, "017#lobby#hello")) is ErrorReason.UNAVAILABLE


def test_017_asks_the_store_and_counts_what_it_found() -> None:
    session = joined()
    assert handle(session, "017#lobby#%_ 안녕") == [FindText(LOBBY, "%_ 안녕")]
    frames = [e.frame for e in session.found([(9, 900, "bob", "안녕 %_ 안녕"), (3, 300, "eve", "%_ 안녕")])
              if isinstance(e, Reply)]
    assert frames == [Found(LOBBY, 900, "bob", "안녕 %_ 안녕"), Found(LOBBY, 300, "eve", "%_ 안녕"), Searched(LOBBY, 2)]


def test_016_and_017_need_a_join() -> None:
    session = Session(Roster(), "192.0.2.1")
    session.cursor_key = KEY
    assert refusal(handle(session, "016#lobby##10")) is ErrorReason.NOT_JOINED
    assert refusal(handle(session, "017#lobby#hello")) is ErrorReason.NOT_JOINED
