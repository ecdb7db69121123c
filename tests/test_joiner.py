"""Claims and takes (tcp_server/joiner.py) over the in-memory room, no Redis: a directory that
answers through a round trip and an echo stands in for a shared one (the room seam's other shape)."""

from __future__ import annotations

import asyncio

import pytest

from tcp_server import joiner as joiner_module
from tcp_server.fanout import Cursor
from tcp_server.joiner import Joiner
from tcp_server.local_room import LocalRoom
from tcp_server.protocol.codes import ErrorReason
from tcp_server.protocol.encoders import FRAMES, Encoder
from tcp_server.protocol.frames import (
    Error,
    IdTaken,
    Join,
    Joined,
    Message,
    Resumed,
    ResumeSession,
    ServerFrame,
    UserJoined,
    UserList,
)
from tcp_server.protocol.session import Effect, IssueToken, Reply, Session
from tcp_server.room import LATER, IdRegistered, Later, RoomUnavailable
from tcp_server.room.memory import InMemoryDirectory
from tcp_server.room.recall import InMemorySessionStore
from tcp_server.stats import ServerStats

from .helpers import wait_until


class Entrant:
    """A connection as the joiner sees it, recording what it was told to do (the session is real)."""

    def __init__(self, room: LocalRoom) -> None:
        self.session = Session(room.roster, "192.0.2.1")
        self.encoder: Encoder = FRAMES
        self.cursor: Cursor | None = None
        self.closing = False
        self.sent: list[ServerFrame] = []
        self.effects: list[Effect] = []
        self.refusals: list[ErrorReason] = []
        self.went_on = 0
        self.internal = 0
        self.replaced_by: str | None = None

    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            self.effects.append(effect)
            if isinstance(effect, Reply):
                self.sent.append(effect.frame)

    def go_on(self) -> None:
        self.went_on += 1

    def entered(self) -> None:
        pass

    def refuse(self, reason: ErrorReason, detail: str) -> None:
        self.refusals.append(reason)
        self.closing = True

    def internal_error(self) -> None:
        self.internal += 1

    def send(self, frame: ServerFrame) -> None:
        self.sent.append(frame)

    def catch_up(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def take_log(self, chunks: list[bytes], pos: int, shared: bytes) -> None:
        pass

    def replaced(self, detail: str = "") -> None:
        self.replaced_by = detail
        self.closing = True


class RoundTripDirectory(InMemoryDirectory):
    """A shared directory's shape: every claim is a round trip, and the join comes back on the bus
    (``echo``), with whatever the room said meanwhile (``between``)."""

    def __init__(self, room: LocalRoom, echo: bool = True, fail: Exception | None = None,
                 between: list[Message] | None = None) -> None:
        super().__init__()
        self.room = room
        self.echo = echo
        self.fail = fail
        self.between = between or []

    def try_claim(self, name: str, key: str, account: bool = False) -> Later:  # type: ignore[override]
        return LATER

    async def claim(self, name: str, key: str, account: bool = False) -> tuple[str, ...] | None:
        if self.fail is not None:
            raise self.fail
        users = super().try_claim(name, key)
        if users is not None and self.echo:
            self.room.entered(key, key)
            for message in self.between:
                self.room.room_event(message, "someone")
        return users


def make(directory: InMemoryDirectory | None = None, sessions: InMemorySessionStore | None = None,
         ) -> tuple[Joiner, LocalRoom, list[str]]:
    room = LocalRoom(asyncio.get_running_loop())
    joined: list[str] = []
    joiner = Joiner(room, directory if directory is not None else InMemoryDirectory(), sessions, None, ServerStats(),
                    oldest_seq=lambda: None, joined=lambda name, address: joined.append(name))
    return joiner, room, joined


def joining(entrant: Entrant, name: str) -> tuple[str, str]:
    [claim] = entrant.session.handle(Join(name))
    return claim.name, claim.key  # type: ignore[union-attr]


async def test_a_local_claim_enters_at_once() -> None:
    joiner, room, joined = make()
    entrant = Entrant(room)
    joiner.claim(entrant, *joining(entrant, "alice"))
    assert entrant.session.joined and room.members["alice"] is entrant and joined == ["alice"]
    assert entrant.sent[:2] == [Joined("alice"), UserList(("alice",))]
    assert IssueToken("alice", "alice") in entrant.effects and entrant.went_on == 1
    other = Entrant(room)
    joiner.claim(other, *joining(other, "ALICE"))
    assert other.sent == [IdTaken()] and not other.session.joined


async def test_a_round_trip_claim_enters_with_what_followed_its_echo() -> None:
    joiner, room, joined = make()
    joiner.directory = RoundTripDirectory(room, between=[Message("bob", "meanwhile")])
    entrant = Entrant(room)
    joiner.claim(entrant, *joining(entrant, "alice"))
    assert not entrant.session.joined  # waiting for the directory
    await wait_until(lambda: entrant.session.joined, 5.0, "the claim")
    assert entrant.sent[-1] == Message("bob", "meanwhile")  # after the replies, before the log
    assert room.arriving == {} and joined == ["alice"]


async def test_an_unavailable_room_refuses_and_keeps_nothing() -> None:
    joiner, room, _ = make()
    directory = joiner.directory = RoundTripDirectory(room, fail=RoomUnavailable("down"))
    entrant = Entrant(room)
    joiner.claim(entrant, *joining(entrant, "alice"))
    await wait_until(lambda: bool(entrant.refusals), 5.0, "the refusal")
    assert entrant.refusals == [ErrorReason.UNAVAILABLE] and room.arriving == {} and len(directory) == 0


async def test_a_claim_without_its_echo_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(joiner_module, "ARRIVAL_TIMEOUT", 0.05)
    joiner, room, _ = make()
    directory = joiner.directory = RoundTripDirectory(room, echo=False)
    entrant = Entrant(room)
    joiner.claim(entrant, *joining(entrant, "alice"))
    await wait_until(lambda: bool(entrant.refusals), 5.0, "the refusal")
    assert entrant.refusals == [ErrorReason.UNAVAILABLE]
    assert len(directory) == 0  # claimed, but released: nobody saw it join


async def test_an_id_registered_elsewhere_is_refused_as_a_local_one() -> None:
    learned: list[tuple[str, str]] = []
    joiner, room, _ = make()
    joiner.directory = RoundTripDirectory(room, fail=IdRegistered())
    joiner.learn = lambda key, name: learned.append((key, name))
    entrant = Entrant(room)
    joiner.claim(entrant, *joining(entrant, "alice"))
    await wait_until(lambda: bool(entrant.sent), 5.0, "the refusal")
    [refusal] = entrant.sent
    assert isinstance(refusal, Error) and refusal.reason is ErrorReason.REGISTERED
    assert learned == [("alice", "alice")] and entrant.went_on == 1 and not entrant.session.joined


async def test_a_claim_answered_after_the_connection_went_frees_the_id() -> None:
    joiner, room, _ = make()
    directory = joiner.directory = RoundTripDirectory(room)
    entrant = Entrant(room)
    joiner.claim(entrant, *joining(entrant, "alice"))
    entrant.session.drop()  # gone while the directory answers
    await wait_until(lambda: not room.arriving, 5.0, "the answer")
    assert len(directory) == 0 and "alice" not in room.members


async def test_a_take_resumes_with_the_missed_frames_and_replaces_the_holder() -> None:
    sessions = InMemorySessionStore(30.0, 100, 100_000)
    joiner, room, _ = make(sessions=sessions)
    holder = Entrant(room)
    joiner.claim(holder, *joining(holder, "alice"))
    token = sessions.issue("alice", "alice")
    taker = Entrant(room)
    [reattach] = taker.session.handle(ResumeSession(token))
    joiner.take(taker, token, None)
    await wait_until(lambda: taker.session.joined, 5.0, "the take")
    assert holder.replaced_by is not None and room.members["alice"] is taker
    assert taker.sent[0] == Joined("alice") and taker.sent[-1] == Resumed(0)
    assert IssueToken("alice", "alice") in taker.effects and joiner.stats.resumes == 1
    again = Entrant(room)
    again.session.handle(ResumeSession(token))
    joiner.take(again, token, None)  # a token is good once
    await wait_until(lambda: bool(again.sent), 5.0, "the refusal")
    assert [f.reason for f in again.sent if isinstance(f, Error)] == [ErrorReason.BAD_TOKEN]
    assert not any(isinstance(f, UserJoined) for f in taker.sent)


async def test_release_frees_the_id_and_ends_the_session() -> None:
    sessions = InMemorySessionStore(30.0, 100, 100_000)
    directory = InMemoryDirectory()
    joiner, room, _ = make(directory, sessions)
    entrant = Entrant(room)
    joiner.claim(entrant, *joining(entrant, "alice"))
    token = sessions.issue("alice", "alice")
    joiner.release("alice")
    assert len(directory) == 0
    assert await sessions.take(token) is None
