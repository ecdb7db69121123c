"""The chat session, whatever the front end: ask, connect, join, relay, leave, reconnect.

The interactive (prompt_toolkit) and scriptable (stdin) front ends differ only
in how they read and show lines; both drive this class.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from tcp_server.protocol.client_side import (
    Alive,
    Answer,
    ClientSide,
    Confirmed,
    Connect,
    Effect,
    Ended,
    Refused,
    Replayed,
    Retry,
    RoomCount,
    Show,
    TokenIssued,
    Transmit,
    Unexpected,
)
from tcp_server.protocol.frames import (
    ChangePassword,
    ClientFrame,
    FetchOlder,
    IdTaken,
    Join,
    Joined,
    Leave,
    Login,
    Page,
    Register,
    ResumeSession,
    ServerFrame,
)
from tcp_server.protocol.passwords import Password
from tcp_server.protocol.roster import Roster
from tcp_server.protocol.scrollback import LOBBY
from tcp_server.protocol.texts import text
from tcp_server.tls import client_context

from .aio import cancel_and_wait, wait_event
from .backoff import backoff_delays
from .commands import (
    MORE_LIMIT,
    Help,
    Invalid,
    KeepId,
    More,
    NewPassword,
    Quit,
    Say,
    WhisperTo,
    parse_command,
    to_frame,
)
from .config import ClientConfig, parse_port
from .connection import CLOSE_TIMEOUT, ConnectFailed, Connection
from .messages import msg
from .render import Kind, Line, echo_say, echo_whisper, invalid_lines, local, render_frame

log = logging.getLogger("chat_client")


class Frontend(Protocol):
    """What the session needs from a user interface."""

    one_line: bool
    """Render a 107 on one line (scripts) rather than the seed's block."""
    echo: bool
    """Echo your own messages and whispers locally."""

    def show(self, line: Line) -> None: ...

    async def ask(self, prompt: str) -> str | None:
        """One answer, or None when the user gave up (end of input, Ctrl-C, Ctrl-D)."""
        ...

    async def ask_secret(self, prompt: str) -> str | None:
        """A password: read without echo (a terminal), never shown nor kept in the line history."""
        ...


class _Join(Enum):
    JOINED = "joined"
    RETRY = "retry"  # 101 or 109#bad-id: another ID may work
    FATAL = "fatal"  # any other 109 (busy, shutdown, ...)
    CLOSED = "closed"  # the connection ended before an answer


class ChatClient:
    """One user's session with the server, across reconnects."""

    def __init__(
        self,
        config: ClientConfig,
        ui: Frontend,
        *,
        reask_id: bool = True,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.ui = ui
        self.lang = config.lang
        self.reask_id = reask_id
        self._rand = rand
        self.roster = Roster()
        self.side = ClientSide(connected=False)
        """The protocol's client side: our confirmed ID, resume token, position, replay (the core's)."""
        self.conn: Connection | None = None
        self.cursor: str | None = None
        """The last ``141``'s cursor: what ``/more`` pages back from (None: the server keeps no scrollback;
        empty: nothing older)."""
        self._asked_more = False
        self._ended = False  # the server ended the session (kicked, replaced): a rejoin may miss lines
        self.exit_code = 0
        self._host = ""
        self._port = 0
        self._tls = client_context(config.tls_ca) if config.tls else None  # verifies the server (--tls)
        self._password: Password | None = None  # --login's, kept in memory for a re-login after a failed resume
        self._leaving = False
        self._stop = asyncio.Event()  # set by leave(): no more reconnecting
        self.finished = asyncio.Event()
        """Set when :meth:`run` is over (left, or lost for good)."""

    @property
    def name(self) -> str | None:
        """Our ID as the server confirmed it (after NFC)."""
        return self.side.id

    @property
    def token(self) -> str | None:
        """The server's resume token for this session (``112``): a reconnect resumes with it. Never shown."""
        return self.side.token

    @property
    def online(self) -> bool:
        """Joined and connected: commands can be sent."""
        return self.side.joined and self.conn is not None

    # ------------------------------------------------------------- helpers

    def _say(self, kind: Kind, key: str, **fields: object) -> None:
        self.ui.show(local(kind, msg(key, self.lang, **fields)))

    async def _ask(self, key: str) -> str | None:
        """Ask until a non-blank answer; None when the user gave up."""
        while True:
            answer = await self.ui.ask(text(key, self.lang))
            if answer is None:
                return None
            if answer.strip():
                return answer.strip()

    async def _open(self) -> Connection | None:
        try:
            conn = await Connection.open(self._host, self._port, self.config.connect_timeout, self._tls)
        except ConnectFailed as exc:
            self._say(Kind.ERROR, "network_error_detail", where=f"{self._host}:{self._port}", why=exc)
            return None
        self.side.opened()
        return conn

    async def _send(self, conn: Connection, frame: ClientFrame) -> bool:
        """Send ``frame`` as the protocol's client side says; False when it did not go (nothing to send on)."""
        sent = False
        for effect in self.side.send(frame):
            match effect:
                case Transmit():
                    sent = await conn.send(effect.frame)
                case Answer() | Connect():
                    pass  # not on a usable connection: the caller says so
                case _:  # pragma: no cover - send() says only these
                    raise AssertionError(effect)
        return sent

    @staticmethod
    def _outcome(effects: list[Effect]) -> _Join | None:
        """What a frame said about the join, login or resume we asked for (None: nothing yet)."""
        for effect in effects:
            if isinstance(effect, Confirmed):
                return _Join.JOINED
            if isinstance(effect, Refused):
                return {Retry.ANOTHER_ID: _Join.RETRY, Retry.AFRESH: _Join.RETRY, Retry.RECONNECT: _Join.CLOSED,
                        Retry.NO: _Join.FATAL}[effect.retry]
        return None

    def _show(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Show):
                self.ui.show(render_frame(effect.frame, self.lang, self.ui.one_line))
            elif isinstance(effect, Unexpected):
                log.warning("ignored a frame out of order from the server (%s): %s", effect.why, effect.frame.CODE)

    # ------------------------------------------------------------- start

    async def start(self) -> bool:
        """Ask for what is missing, connect and join. False (with ``exit_code`` set) when that failed."""
        self.exit_code = 1
        host = self.config.host or await self._ask("ask_host")
        if host is None:
            return False
        port = self.config.port
        while port is None:
            raw = await self._ask("ask_port")
            if raw is None:
                return False
            try:
                port = parse_port(raw)
            except ValueError:
                self._say(Kind.ERROR, "bad_port")
        self._host, self._port = host, port
        self.conn = await self._open()
        if self.conn is None:
            return False
        if not await self._join():
            if self.conn is not None:
                await self.conn.close()
                self.conn = None
            return False
        self.exit_code = 0
        return True

    async def _join(self) -> bool:
        """Send 001 until the server takes an ID: ask again after 101 or 109#bad-id (``--login``: 018 once)."""
        if self.config.login is not None:
            return await self._login()
        name = self.config.id
        while True:
            if name is None:
                name = await self._ask("ask_id")
                if name is None:
                    return False
            result = await self._handshake(name, quiet=False)
            if result is _Join.CLOSED:
                # Typically the join deadline passed while the user was typing: connect again.
                if self.conn is not None:
                    await self.conn.close()
                self.conn = await self._open()
                if self.conn is None:
                    return False
                result = await self._handshake(name, quiet=False)
                if result is _Join.CLOSED:
                    self._say(Kind.ERROR, "lost")
                    return False
            if result is _Join.JOINED:
                return True
            if result is _Join.FATAL:
                return False
            if not self.reask_id:
                self._say(Kind.ERROR, "id_refused", id=name)
                return False
            name = None

    async def _handshake(self, name: str, *, quiet: bool) -> _Join:
        """``001#name`` and its answer. ``quiet`` (a rejoin) hides a 101: we retry, not ask."""
        conn = self.conn
        assert conn is not None
        if not await self._send(conn, Join(name)):
            return _Join.CLOSED
        while True:
            frame = await self._answer()
            if frame is None:
                return _Join.CLOSED
            effects = self.side.receive(frame)
            if not (quiet and isinstance(frame, IdTaken)):
                self._show(effects)
            if (outcome := self._outcome(effects)) is not None:
                return self._now_joined() if outcome is _Join.JOINED else outcome

    async def _login(self) -> bool:
        """``018#ID#PASSWORD``: the password from the config (scripts) or asked without echo."""
        login = self.config.login
        assert login is not None
        raw = self.config.password
        if raw is None:
            raw = await self.ui.ask_secret(msg("ask_password", self.lang))
            if raw is None:
                return False
        self._password = Password(raw)
        return await self._login_handshake(login, quiet=False) is _Join.JOINED

    async def _login_handshake(self, login: str, *, quiet: bool) -> _Join:
        conn = self.conn
        assert conn is not None and self._password is not None
        if not await self._send(conn, Login(login, self._password)):
            return _Join.CLOSED
        while True:
            frame = await self._answer()
            if frame is None:
                return _Join.CLOSED
            effects = self.side.receive(frame)
            outcome = self._outcome(effects)
            if outcome is _Join.CLOSED:
                self.ui.show(render_frame(frame, self.lang, self.ui.one_line))  # (a login refused is said)
            self._show(effects)
            if outcome is _Join.JOINED:
                return self._now_joined()
            if outcome is not None:
                return _Join.FATAL  # an account does not pick another ID

    async def _answer(self) -> ServerFrame | None:
        """The server's next frame within the connect timeout; None when it is gone (or silent: aborted)."""
        conn = self.conn
        assert conn is not None
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                return await conn.recv()
        except TimeoutError:
            conn.abort()
            return None

    def _now_joined(self) -> _Join:
        assert self.side.id is not None
        self.roster.apply(Joined(self.side.id))  # (a 107 follows with everyone)
        return _Join.JOINED

    async def _resume(self, token: str) -> _Join:
        """``008#token#position``: JOINED (what followed our position and ``113`` come next, shown by
        :meth:`run`), RETRY after ``109#bad-token`` or ``109#gap`` (the connection may still ``001``;
        a gap is said), else FATAL or CLOSED."""
        conn = self.conn
        assert conn is not None
        if not await self._send(conn, ResumeSession(token, self.side.position)):
            return _Join.CLOSED
        frame = await self._answer()
        if frame is None:
            return _Join.CLOSED
        effects = self.side.receive(frame)
        outcome = self._outcome(effects)
        if outcome is _Join.JOINED:
            return self._now_joined()
        if outcome is _Join.RETRY:
            log.info("the server could not resume the session (%s); joining again",
                     next(effect.reason for effect in effects if isinstance(effect, Refused)))
            self._say(Kind.ERROR, "gap")  # never silently short: that lines may be missing is said
            return _Join.RETRY
        self.ui.show(render_frame(frame, self.lang, self.ui.one_line))
        return _Join.FATAL

    # ------------------------------------------------------------- run

    async def run(self) -> int:
        """Show server frames until we left or the server is gone for good; the exit code."""
        try:
            while True:
                if await self._pump() or self._leaving:
                    break
                if not self.config.reconnect:
                    self.exit_code = 1
                    break
                if not await self._reconnect():
                    break
                if self._leaving and self.conn is not None and self.name is not None:
                    await self._send(self.conn, Leave(self.name))  # /q came during the rejoin
        finally:
            self.side.closed()
            self.finished.set()
        return self.exit_code

    async def _pump(self) -> bool:
        """Relay one connection's frames; True when it ended with our 102."""
        conn = self.conn
        assert conn is not None
        keepalive: asyncio.Task[None] | None = None
        if self.config.ping_interval > 0:
            keepalive = asyncio.create_task(conn.keepalive(self.config.ping_interval, self.config.ping_timeout))
        left = False
        try:
            while not left:
                frame = await conn.recv()
                if frame is None:
                    break
                for effect in self.side.receive(frame):
                    match effect:
                        case Show():
                            self._show_frame(effect.frame)
                        case Alive():
                            conn.pongs += 1
                        case Ended():
                            left = effect.reason is None  # our 102; any other end: the server closes, we rejoin
                            self._ended = not left
                        case Unexpected():
                            log.warning("ignored a frame out of order from the server (%s): %s", effect.why,
                                        frame.CODE)
                        case TokenIssued() | Replayed() | RoomCount() | Confirmed() | Refused():
                            pass  # kept by the client side (the token never shown); the roster counts the room
                        case Transmit() | Connect() | Answer():  # pragma: no cover - receive() never says these
                            raise AssertionError(effect)
        finally:
            self.conn = None
            self.side.closed()
            try:
                if keepalive is not None:
                    await cancel_and_wait(keepalive)  # re-raises when we are being cancelled ourselves
            finally:
                await conn.close()
        if left:
            return True
        if not self._leaving:
            if conn.dead:
                self._say(Kind.ERROR, "dead", seconds=f"{self.config.ping_interval + self.config.ping_timeout:g}")
            self._say(Kind.ERROR, "lost")
        return False

    def _show_frame(self, frame: ServerFrame) -> None:
        """A frame for the user, after the client's own bookkeeping (scrollback's cursor, the roster)."""
        if isinstance(frame, Page):
            self.cursor = frame.cursor  # /more pages back from here
            if frame.count == 0 and not self._asked_more:
                return  # a join's "nothing sent": nothing to say
            self._asked_more = False
        self.roster.apply(frame)
        self.ui.show(render_frame(frame, self.lang, self.ui.one_line))

    async def _reconnect(self) -> bool:
        """Retry with capped, jittered backoff until rejoined (True) or the user left (False)."""
        assert self.name is not None
        self.roster.clear()
        delays = backoff_delays(self.config.reconnect_delay, self.config.reconnect_max_delay, self._rand)
        for delay in delays:
            self._say(Kind.INFO, "reconnecting", seconds=f"{delay:.1f}")
            if await wait_event(self._stop, delay):
                return False
            try:
                self.conn = await Connection.open(self._host, self._port, self.config.connect_timeout, self._tls)
            except ConnectFailed as exc:
                log.info("reconnect to %s:%d failed: %s", self._host, self._port, exc)
                continue
            self.side.opened()
            token = self.side.token  # single use, whatever the answer (sending it spends it)
            if token is None and self._ended:
                self._say(Kind.ERROR, "gap")  # no session to resume: that lines may be missing is said
            self._ended = False
            result = await self._resume(token) if token is not None else _Join.RETRY
            if result is _Join.RETRY and self._password is not None and self.config.login is not None:
                result = await self._login_handshake(self.config.login, quiet=True)  # an account logs in again
            elif result is _Join.RETRY:  # no token, or the server could not resume it: join as before
                result = await self._handshake(self.name, quiet=True)
            if result is _Join.JOINED:
                self._say(Kind.INFO, "reconnected")
                return True
            await self.conn.close()
            self.conn = None
            self.side.closed()
        return False  # pragma: no cover - the delays never end

    # ------------------------------------------------------------- input

    async def submit(self, line: str) -> bool:
        """Act on one typed line; False when it asks to leave (then call :meth:`leave`)."""
        parsed = parse_command(line)
        if parsed is None:
            return True
        if isinstance(parsed, Invalid):
            for shown in invalid_lines(parsed, self.lang):
                self.ui.show(shown)
            return True
        if isinstance(parsed, Quit):
            return False
        if isinstance(parsed, Help):
            self._say(Kind.INFO, "help")
            return True
        conn, name = self.conn, self.name
        if not self.online or conn is None or name is None:
            self._say(Kind.ERROR, "not_connected")
            return True
        if isinstance(parsed, (KeepId, NewPassword)):
            await self._send_password(conn, parsed)
            return True
        if isinstance(parsed, More):
            if self.cursor is None:
                self._say(Kind.INFO, "no_scrollback")
            elif not self.cursor:
                self._say(Kind.INFO, "no_more")
            elif await self._send(conn, FetchOlder(LOBBY, self.cursor, MORE_LIMIT)):
                self._asked_more = True
            else:
                self._say(Kind.ERROR, "not_connected")
            return True
        frame = to_frame(parsed, name)
        if isinstance(frame, Invalid):
            for shown in invalid_lines(frame, self.lang):
                self.ui.show(shown)
            return True
        if not await self._send(conn, frame):
            self._say(Kind.ERROR, "not_connected")
            return True
        if self.ui.echo:
            if isinstance(parsed, Say):
                self.ui.show(echo_say(parsed.message, self.lang))
            elif isinstance(parsed, WhisperTo):
                self.ui.show(echo_whisper(parsed.to, parsed.message, self.lang))
        return True

    async def _send_password(self, conn: Connection, cmd: KeepId | NewPassword) -> None:
        """``/register`` (019) or ``/passwd`` (020): asked twice without echo; the server's answer is shown
        when it comes (130, 131 or its 109)."""
        first = await self.ui.ask_secret(msg("ask_password" if isinstance(cmd, KeepId) else "ask_new_password",
                                             self.lang))
        if first is None:
            return
        second = await self.ui.ask_secret(msg("ask_password_again", self.lang))
        if second is None:
            return
        if first != second:
            self._say(Kind.ERROR, "password_mismatch")
            return
        password = Password(first)
        frame = Register(password) if isinstance(cmd, KeepId) else ChangePassword(password)
        if not await self._send(conn, frame):
            self._say(Kind.ERROR, "not_connected")

    async def leave(self) -> None:
        """Leave cleanly: 004, then wait (bounded) for the server's 102 and the end of :meth:`run`."""
        self._leaving = True
        self._stop.set()
        conn, name = self.conn, self.name
        if conn is not None and self.online and name is not None:
            await self._send(conn, Leave(name))
        if not await wait_event(self.finished, self.config.leave_timeout):
            log.info("no 102 within %g s; closing", self.config.leave_timeout)
            if self.conn is not None:
                self.conn.abort()
            await wait_event(self.finished, CLOSE_TIMEOUT)
