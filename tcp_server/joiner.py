"""How a connection gets into the room: a claim of an ID (001, a login's 018) or a take of a session
(008, a login's takeover), one sequence for both.

Either may need a round trip to a shared store, and the store's answer and the bus's events travel
apart: ask, then wait for the request's own echo on the bus (an :class:`~.local_room.Arrival`), and
the joiner enters with what followed it. A failure in between undoes what was granted and refuses
with ``109#unavailable``. The session decides what to say; this carries out the room's part. One
:class:`Joiner` serves a node; the room seam (directory, session store, room) is injected, so the
in-memory room is enough to test it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from .local_room import ARRIVAL_TIMEOUT, Arrival, LocalRoom, Member
from .protocol.codes import ErrorReason
from .protocol.frames import Message, ServerFrame
from .protocol.session import Effect, Session
from .protocol.states import ConnState
from .room import Directory, History, IdRegistered, Later, Resumable, RoomUnavailable, SessionStore
from .room.recall import InMemorySessionStore
from .stats import ServerStats

log = logging.getLogger("tcp_server")

T = TypeVar("T")

TAKE_TIMEOUT = 10.0
"""Seconds a login's takeover may wait for the session store to name the account's token."""
_CHANGING = "the account's session is changing hands; try again"


def _replays(found: Resumable | None) -> bool:
    """A take waits for its echo unless it hit a gap (nothing to replay, nothing to enter)."""
    return found is not None and not found.gap


class Entrant(Member, Protocol):
    """A connection on its way into the room (the :class:`~tcp_server.connection.ChatConnection`)."""

    session: Session
    closing: bool

    def apply(self, effects: list[Effect]) -> None:
        """Carry out what the session decided."""

    def go_on(self) -> None:
        """The frames read while the join waited, then reading again."""

    def entered(self) -> None:
        """In the room: no join deadline any more."""

    def refuse(self, reason: ErrorReason, detail: str) -> None: ...

    def internal_error(self) -> None: ...


class Joiner:
    """Claims and takes for the connections of one node."""

    def __init__(self, room: LocalRoom, directory: Directory, sessions: SessionStore | None,
                 history: History | None, stats: ServerStats, *, oldest_seq: Callable[[], int | None],
                 joined: Callable[[str, str], None], learn: Callable[[str, str], None] | None = None,
                 resume_max_frames: int = 0) -> None:
        self.room = room
        self.directory = directory
        self.sessions = sessions
        self.history = history
        self.stats = stats
        self.oldest_seq = oldest_seq  # with a store: the number of the oldest line a newcomer's 111 holds
        self.joined = joined  # a fresh join's log line and count (name, address)
        self.learn = learn  # a registered ID the directory told of (key, name)
        self.resume_max_frames = resume_max_frames

    # ------------------------------------------------------------ the shared sequence

    async def _ask(self, conn: Entrant, ref: str, arrival: Arrival | None, ask: Awaitable[T | None],
                   echoed: Callable[[T], bool], undo: Callable[[T], None], what: str) -> tuple[bool, T | None]:
        """Ask the store, then (``echoed``) wait for the request's echo; the answer, or (False, None)
        when the connection was refused for it. Whatever went wrong undoes what was granted."""
        got: T | None = None
        try:
            got = await ask
            if got is not None and arrival is not None and echoed(got):
                await asyncio.wait_for(arrival.echoed.wait(), ARRIVAL_TIMEOUT)
        except (RoomUnavailable, TimeoutError) as exc:
            self.room.arrived(ref)
            if got is not None:
                undo(got)
            log.warning("%s refused: %s", what, exc or "no echo from the room")
            if not conn.closing:
                conn.refuse(ErrorReason.UNAVAILABLE, "the room is unavailable; try again later")
            return False, None
        except IdRegistered:
            self.room.arrived(ref)
            raise
        except Exception:
            log.exception("%s failed", what)
            if got is not None:
                undo(got)
            got = None
            if not conn.closing:
                conn.internal_error()
        self.room.arrived(ref)
        return True, got

    def _enter(self, conn: Entrant, key: str) -> None:
        conn.entered()
        self.room.enter(key, conn)

    def _recent(self, arrival: Arrival | None) -> tuple[list[Message], int | None]:
        """The history a newcomer gets and its oldest line's number, as of its entry (or its echo):
        each message is history or live, never both."""
        if arrival is not None:
            return arrival.history, arrival.oldest
        return (self.history.recent() if self.history is not None else []), self.oldest_seq()

    # ------------------------------------------------------------ claims (001, a login's 018)

    def claim(self, conn: Entrant, name: str, key: str, login: bool = False) -> None:
        answer = self.directory.try_claim(name, key, login or conn.session.account)
        if isinstance(answer, Later):  # a shared directory: a round trip
            self.room.loop.create_task(self._claim(conn, name, key, login), name=f"claim {name}")
        else:
            self._claimed(conn, name, key, answer, None, login)

    async def _claim(self, conn: Entrant, name: str, key: str, login: bool) -> None:
        arrival = self.room.expect(key)
        if arrival is None:  # another connection of this node is taking this ID right now
            self._claimed(conn, name, key, None, None, login)
            return
        directory = self.directory
        try:
            go_on, users = await self._ask(conn, key, arrival, directory.claim(name, key, conn.session.account),
                                           lambda _: True, lambda _: directory.release(key), f"join of {name!r}")
        except IdRegistered:  # registered on another node: refused as a local 001 of a registered ID is
            if self.learn is not None:
                self.learn(key, name)
            if conn.session.state is ConnState.JOINING:
                conn.apply(conn.session.registered_elsewhere())
                conn.go_on()
            return
        if go_on:
            self._claimed(conn, name, key, users, arrival, login)

    def _claimed(self, conn: Entrant, name: str, key: str, users: tuple[str, ...] | None,
                 arrival: Arrival | None, login: bool) -> None:
        """The directory's answer: in the room, or 101 (a login: the account's session taken over)."""
        session = conn.session
        if session.state is not ConnState.JOINING:  # gone meanwhile
            if users is not None:
                self.directory.release(key)
            return
        try:
            if users is None and login:  # the account's session is held (elsewhere, or parked): take it over
                self.room.loop.create_task(self._take_by_key(conn, name, key), name="login takeover")
                return
            if users is None:
                conn.apply(session.taken())
            else:
                self._enter(conn, key)
                history, oldest = self._recent(arrival)
                conn.apply(session.claimed(users, history, oldest))
                if arrival is not None:
                    for frame in arrival.frames:  # the room since the join's echo, before the log from here on
                        conn.send(frame)
                self.joined(name, session.address)
            conn.go_on()
        except Exception:
            conn.internal_error()

    # ------------------------------------------------------------ logins (a verified 018)

    def login(self, conn: Entrant, name: str, key: str) -> None:
        """Take over the account's session where this node holds it (a live connection, or one parked for
        a resume): no leave, no join; else a claim, and if the ID is held elsewhere a take by its token."""
        old = self.room.members.get(key)
        sessions = self.sessions
        if old is not None and old is not conn:
            old.replaced("this account logged in on another connection")
        elif isinstance(sessions, InMemorySessionStore) and sessions.is_parked(key):
            sessions.end(key)  # its token dies; the room still lists it: the login continues it
        else:
            self.claim(conn, name, key, login=True)
            return
        self._enter(conn, key)
        history, oldest = self._recent(None)
        conn.apply(conn.session.took_over(self.room.roster.user_list().ids, history, oldest))
        log.info("%s logged in [%s], taking over its session", name, conn.session.address)

    async def _take_by_key(self, conn: Entrant, name: str, key: str) -> None:
        """The account is held where this node cannot reach it directly: its session's token, then a take
        (which tells the holder ``109#replaced``)."""
        sessions = self.sessions
        token: str | None = None
        try:
            if sessions is not None:
                token = await asyncio.wait_for(sessions.token_of(key), TAKE_TIMEOUT)
        except (RoomUnavailable, TimeoutError, OSError) as exc:
            log.warning("login takeover of %s: the session store did not answer (%s)", name, type(exc).__name__)
        if conn.session.state is not ConnState.JOINING or conn.closing:
            return
        if token is None:
            conn.apply(conn.session.login_refused(ErrorReason.UNAVAILABLE, _CHANGING))
            conn.go_on()
            return
        await self._take(conn, token, None, login=True)

    # ------------------------------------------------------------ takes (008, a login's takeover)

    def take(self, conn: Entrant, token: str, position: int | None) -> None:
        """``008#TOKEN``: the session back (from its grace, or from a connection still open)."""
        self.room.loop.create_task(self._take(conn, token, position), name="resume")

    async def _take(self, conn: Entrant, token: str, position: int | None, login: bool = False) -> None:
        sessions = self.sessions
        assert sessions is not None
        room = self.room
        ref = f"take:{secrets.token_hex(8)}" if sessions.announces_takes else ""
        arrival = room.expect(ref) if ref else None
        go_on, found = await self._ask(conn, ref, arrival, sessions.take(token, ref, position),
                                       _replays, self._put_back, "resume")
        if not go_on:
            return
        if found is not None and found.gap:
            self._replace(conn, found.key)  # the peer's fresh 001 must find the ID free
            log.info("%s could not resume: its position is past the kept window", found.name)
        since = arrival.frames if arrival is not None else []  # (empty unless it was echoed)
        session = conn.session
        if session.state is not ConnState.JOINING:
            if found is not None and not found.gap:
                self._give_back(found, since)
            return
        try:
            if found is not None and found.gap:
                conn.apply(session.gap(self.resume_max_frames))  # the most a resume replays
            elif found is None:
                conn.apply(session.login_refused(ErrorReason.UNAVAILABLE, _CHANGING) if login else session.refused())
            else:
                self._took(conn, found, arrival, since, login)
            conn.go_on()
        except Exception:
            conn.internal_error()

    def _took(self, conn: Entrant, found: Resumable, arrival: Arrival | None, since: list[ServerFrame],
              login: bool) -> None:
        session = conn.session
        self._replace(conn, found.key)  # the tab that reconnects wins
        banned = session.resume_banned(found.name)
        if banned is not None:  # checked like 001: the session ends here, its leave announced
            log.info("resume of %s refused [%s]: banned", found.name, session.address)
            conn.apply(banned)
            return
        self._enter(conn, found.key)
        # The room as it was where the missed frames end (at the announcement, with a shared store).
        users = arrival.users if arrival is not None else self.room.roster.user_list().ids
        if login:  # a fresh client: the usual join's replies, not the missed frames
            history, oldest = self._recent(None)
            conn.apply(session.took_over(users, history, oldest))
            log.info("%s logged in [%s], taking over its session", found.name, session.address)
        else:
            missed = [*found.missed, *since]
            conn.apply(session.resumed(found.name, users, missed))
            self.stats.resumes += 1
            log.info("%s resumed [%s] (%d missed frames)", found.name, session.address, len(missed))

    def _replace(self, conn: Entrant, key: str) -> None:
        old = self.room.members.get(key)
        if old is not None and old is not conn:
            old.replaced()

    def _put_back(self, found: Resumable | None) -> None:
        if found is not None:
            self._give_back(found, [])

    def _give_back(self, found: Resumable, since: list[ServerFrame]) -> None:
        """The connection went (or the room did) while taking: the session goes back to its grace
        (its token is spent; it ends with a 104), with what it missed meanwhile."""
        sessions = self.sessions
        assert sessions is not None
        sessions.issue(found.name, found.key)
        if not sessions.park(found.key, [*found.missed, *since]):
            self.directory.release(found.key)

    # ------------------------------------------------------------ leaving

    def release(self, key: str) -> None:
        """The ID is free again and its session over (after its ``104``)."""
        self.directory.release(key)
        if self.sessions is not None:
            self.sessions.end(key)
