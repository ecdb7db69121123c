"""The embedded session store on its own: what a parked session gets back, its bounds, and that the room's
frames are kept once however many sessions are parked."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from tcp_server.protocol import Message, UserJoined, UserLeft, WhisperMessage
from tcp_server.room import InMemorySessionStore
from tcp_server.room.recall import frame_size
from tests.helpers import TIMEOUT


class Ended(list[str]):
    """The keys of the sessions the store ended, and a way to wait for the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def add(self, name: str, key: str) -> None:
        self.append(key)
        self.changed.set()

    async def wait(self) -> None:
        """The store ends a session past its bound in the next loop turn: wait for that call."""
        await asyncio.wait_for(self.changed.wait(), TIMEOUT)


def store(max_frames: int = 100, max_bytes: int = 1 << 20) -> tuple[InMemorySessionStore, Ended]:
    ended = Ended()
    return InMemorySessionStore(60.0, max_frames, max_bytes, on_expire=ended.add), ended


async def test_a_parked_session_gets_its_own_frames_and_the_rooms_in_order() -> None:
    sessions, ended = store()
    token = sessions.issue("alice", "alice")
    sessions.room_event(Message("bob", "before"), None)  # nobody parked: nothing kept
    assert sessions.park("alice", [Message("bob", "unsent")])
    sessions.room_event(Message("bob", "one"), None)
    sessions.whisper("alice", WhisperMessage("bob", "psst"))
    sessions.room_event(UserJoined("carol"), "carol")
    sessions.room_event(Message("alice", "not for alice"), "alice")  # excluded: hers
    sessions.whisper("bob", WhisperMessage("carol", "not parked: not kept"))
    sessions.room_event(Message("carol", "two"), "carol")
    found = await sessions.take(token)
    assert found is not None and found.parked and found.name == "alice"
    assert found.missed == [Message("bob", "unsent"), Message("bob", "one"), WhisperMessage("bob", "psst"),
                            UserJoined("carol"), Message("carol", "two")]
    assert sessions.kept() == 0 and ended == []  # nobody parked: nothing kept any more


async def test_frames_are_kept_once_for_every_parked_session() -> None:
    sessions, _ = store()
    tokens = {f"u{i}": sessions.issue(f"u{i}", f"u{i}") for i in range(1000)}
    for key in tokens:
        assert sessions.park(key, [])
    for i in range(10):
        sessions.room_event(Message("bob", f"m{i}"), "bob")
    assert sessions.kept() == 10  # not 10,000
    late = sessions.issue("late", "late")
    assert sessions.park("late", [])
    sessions.room_event(Message("bob", "m10"), "bob")
    for key, token in tokens.items():
        found = await sessions.take(token)
        assert found is not None and len(found.missed) == 11, key
    assert sessions.kept() == 1  # only what the last one parked still misses
    found = await sessions.take(late)
    assert found is not None and found.missed == [Message("bob", "m10")]
    assert sessions.kept() == 0


async def test_a_session_past_its_frame_bound_ends_once_and_the_others_stay() -> None:
    sessions, ended = store(max_frames=5)
    early, late = sessions.issue("early", "early"), sessions.issue("late", "late")
    sessions.park("early", [])
    sessions.room_event(Message("bob", "0"), None)
    sessions.room_event(Message("bob", "1"), None)
    sessions.park("late", [])
    for i in range(2, 6):
        sessions.room_event(Message("bob", str(i)), None)
    # early missed six frames: past the bound of five; late missed four
    assert not sessions.is_parked("early") and sessions.is_parked("late")
    await ended.wait()
    assert ended == ["early"]
    assert await sessions.take(early) is None  # its token died with it
    found = await sessions.take(late)
    assert found is not None and [m.message for m in found.missed if isinstance(m, Message)] == ["2", "3", "4", "5"]


async def test_whispers_count_against_the_bound_of_their_session_alone() -> None:
    sessions, ended = store(max_frames=3)
    sessions.issue("a", "a")
    b = sessions.issue("b", "b")
    sessions.park("a", [])
    sessions.park("b", [])
    sessions.room_event(UserLeft("c"), None)
    sessions.whisper("a", WhisperMessage("x", "1"))
    sessions.whisper("a", WhisperMessage("x", "2"))
    assert sessions.is_parked("a")  # three frames: at the bound
    sessions.whisper("a", WhisperMessage("x", "3"))
    assert not sessions.is_parked("a") and sessions.is_parked("b")
    await ended.wait()
    assert ended == ["a"]
    found = await sessions.take(b)
    assert found is not None and found.missed == [UserLeft("c")]


async def test_the_byte_bound_counts_the_unsent_frames_too() -> None:
    big = Message("bob", "x" * 100)
    bound = 3 * frame_size(big)
    sessions, ended = store(max_bytes=bound)
    token = sessions.issue("alice", "alice")
    sessions.park("alice", [big, big])
    assert sessions.parked_bytes("alice") == 2 * frame_size(big)
    sessions.room_event(big, None)
    assert sessions.parked_bytes("alice") == bound  # at the bound, still kept
    sessions.room_event(Message("bob", "!"), None)
    assert not sessions.is_parked("alice") and sessions.parked_bytes("alice") == 0
    await ended.wait()
    assert await sessions.take(token) is None



# ----------------------------------------------------------------------------- positions (issue 26)


async def test_a_live_session_resumes_from_the_position_its_client_names() -> None:
    """What was written into a dying connection is not lost: the client names what it has."""
    sessions, ended = store()
    token = sessions.issue("alice", "alice")
    sessions.room_event(UserJoined("alice"), "alice")  # her own join: not sent to her
    frames = [Message("bob", f"m{i}") for i in range(5)]
    for frame in frames[:3]:
        sessions.room_event(frame, "bob")
    sessions.room_event(Message("alice", "mine"), "alice")  # not sent to her
    sessions.whisper("alice", WhisperMessage("bob", "psst"))
    sessions.whisper("bob", WhisperMessage("carol", "not hers"))
    for frame in frames[3:]:
        sessions.room_event(frame, "bob")
    assert sessions.position("alice") == 6
    found = await sessions.take(token, position=2)  # live (never parked): she has m0 and m1
    assert found is not None and not found.parked and not found.gap
    assert found.missed == [frames[2], WhisperMessage("bob", "psst"), frames[3], frames[4]]
    token = sessions.issue("alice", "alice")  # the position goes on across resumes
    sessions.room_event(Message("bob", "after"), "bob")
    assert sessions.park("alice", [])
    sessions.room_event(Message("bob", "parked"), "bob")
    found = await sessions.take(token, position=6)
    assert found is not None and found.parked
    assert found.missed == [Message("bob", "after"), Message("bob", "parked")]
    assert sessions.position("alice") == 8 and ended == []


async def test_a_position_past_the_window_is_refused_and_the_session_ends() -> None:
    sessions, ended = store(max_frames=10)
    token = sessions.issue("alice", "alice")
    for i in range(11):
        sessions.room_event(Message("bob", f"m{i}"), "bob")
    found = await sessions.take(token, position=0)  # 11 to replay: more than the bound of 10
    assert found is not None and found.gap and found.missed == []
    await ended.wait()
    assert ended == ["alice"] and sessions.position("alice") is None and len(sessions) == 0


async def test_a_position_never_sent_is_refused() -> None:
    sessions, ended = store()
    token = sessions.issue("alice", "alice")
    sessions.room_event(Message("bob", "m0"), "bob")
    found = await sessions.take(token, position=2)
    assert found is not None and found.gap
    await ended.wait()


async def test_a_position_older_than_the_window_is_refused_even_within_the_bound() -> None:
    """Others' whispers and one's own messages fill the window too: never a short replay."""
    sessions, ended = store(max_frames=10)
    token = sessions.issue("alice", "alice")
    sessions.room_event(Message("bob", "m0"), "bob")
    for i in range(25):  # the window holds 20 entries (twice the bound)
        sessions.room_event(Message("alice", f"own{i}"), "alice")
    assert sessions.position("alice") == 1
    found = await sessions.take(token, position=0)
    assert found is not None and found.gap
    await ended.wait()


async def test_the_window_is_kept_once_for_every_live_session() -> None:
    sessions, _ = store(max_frames=100)
    tokens = {f"u{i}": sessions.issue(f"u{i}", f"u{i}") for i in range(500)}
    for i in range(1000):
        sessions.room_event(Message("bob", f"m{i}"), "bob")
    assert len(sessions._window) == 200 and sessions.kept() == 0  # not 500 copies, nothing parked
    found = await sessions.take(tokens["u7"], position=950)
    assert found is not None and [f.fields()[1] for f in found.missed] == [f"m{i}" for i in range(950, 1000)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(("room", "own", "whisper", "other-whisper", "join")),
                          st.integers(0, 2)), max_size=60),
       st.integers(0, 70))
def test_since_any_position_is_exactly_what_followed_it_or_refused(events: list[tuple[str, int]], back: int) -> None:
    """Whatever the mix of room frames, a session's own messages and whispers (to it or to others),
    the frames after any position are exactly the session's own stream after it, or a refusal when
    the window or the bound does not hold them: never short, never doubled."""
    sessions = InMemorySessionStore(60.0, 12, 1 << 20)  # bound 12, window 24 entries
    for i in range(3):
        sessions.issue(f"u{i}", f"u{i}")
    streams: dict[str, list[object]] = {f"u{i}": [] for i in range(3)}
    for n, (kind, who) in enumerate(events):
        key = f"u{who}"
        if kind == "room":
            frame = Message("bob", f"m{n}")
            sessions.room_event(frame, None)
            for stream in streams.values():
                stream.append(frame)
        elif kind in ("own", "join"):
            frame = Message(key, f"m{n}") if kind == "own" else UserJoined(f"j{n}")
            sessions.room_event(frame, key)
            for other, stream in streams.items():
                if other != key:
                    stream.append(frame)
        else:
            to = key if kind == "whisper" else "nobody"  # a whisper to a user without a session
            frame = WhisperMessage("bob", f"w{n}")
            sessions.whisper(to, frame)
            if to in streams:
                streams[to].append(frame)
    for key, stream in streams.items():
        assert sessions.position(key) == len(stream)
        position = max(0, len(stream) - back)
        got = sessions.since(key, position)
        if got is not None:
            assert got == stream[position:]
        else:  # refused: only past the bound or the window
            assert len(stream) - position > 12 or len(sessions._window) == sessions.window_frames
    assert sessions.since("u0", len(streams["u0"]) + 1) is None  # never sent: refused
