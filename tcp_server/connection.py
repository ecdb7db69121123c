"""One client connection: the asyncio Protocol that carries out what the pure Session decides.

The shell keeps the transport, the queue (:mod:`.outbound`) and the timers. What it decides nothing
of lives beside it: the budgets (:mod:`.protocol.admission`), getting into the room (:mod:`.joiner`),
the store's and the accounts' answers (:mod:`.queries`), the TLS port's handshake (:mod:`.tls_accept`).
What differs by the connection's kind (the legacy port) is the Session's (its :class:`Capabilities`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Coroutine
from typing import Any, Union, assert_never

from . import queries
from .door import Door
from .node import Node
from .protocol.admission import Admission, Verdict
from .protocol.codes import ErrorReason
from .protocol.decoder import FrameReader, client_frame_reader
from .protocol.encoders import BY_FORMAT, FRAMES, LEGACY
from .protocol.frames import ClientFrame, Error, FrameError, SessionToken
from .protocol.limits import peer_address
from .protocol.session import (
    LEGACY_PORT,
    LINE_PORT,
    Authenticate,
    Capabilities,
    Claim,
    Close,
    Deliver,
    Effect,
    Enroll,
    Enter,
    FetchPage,
    FindText,
    IssueToken,
    LockedOut,
    Publish,
    Reattach,
    Rehome,
    Rekey,
    Release,
    Reply,
    Session,
    UseFormat,
)
from .protocol.states import ConnState
from .protocol.table import spec_of
from .tls_accept import Handshake

log = logging.getLogger("tcp_server")

_NO_RESUME = Capabilities(resumable=False)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


_KEEPALIVE = [(socket.IPPROTO_TCP, opt, value) for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10),
                                                                   ("TCP_KEEPCNT", 5))
              if (opt := getattr(socket, name, None)) is not None]


def set_keepalive(sock: socket.socket) -> None:
    """TCP keepalive (a probe after 60 s idle, every 10 s, 5 tries): a peer that vanished is noticed.

    Set on the listening sockets: accepted ones inherit the options (Linux), no syscalls per connection.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for level, opt, value in _KEEPALIVE:
            sock.setsockopt(level, opt, value)
    except OSError:  # pragma: no cover - platform without these options
        pass


_INTERNAL = Error(ErrorReason.INTERNAL, "internal server error")
_JOINING = ConnState.JOINING  # (per frame: a module constant costs less than an enum member's lookup)


def now_ms() -> int:
    """The server's timestamp for a message: milliseconds since the Unix epoch (UTC)."""
    return time.time_ns() // 1_000_000


class ChatConnection(Door):
    """A client on the main or TLS port, or (``legacy``) the seed's own client on the legacy port."""

    __slots__ = ("reader", "paused", "pending", "connected_at", "ended", "querying", "legacy")

    def __init__(self, node: Node, legacy: bool = False, tls: ssl.SSLContext | None = None) -> None:
        self.node = node
        cfg = node.config
        self.legacy = legacy  # its kind, for the Session's capabilities (and the reader: a frame a write, no LF)
        self.tls = Handshake(tls, cfg.tls_handshake_timeout) if tls is not None else None
        self.ended = False  # connection_lost has run
        self.transport = None
        self.reader: FrameReader[ClientFrame] = client_frame_reader(cfg.max_frame, legacy)
        self.out = []
        self.encoder = LEGACY if legacy else FRAMES
        self.cursor = None
        self.counted_address = None
        self.timer = None
        self.closing = False
        self.admission = Admission(cfg.flood_rate, cfg.flood_burst, node.loop.time(), kick_after=cfg.flood_kick,
                                   search_rate=cfg.search_rate, search_burst=cfg.search_burst,
                                   shared=node.address_buckets)
        self.querying = False  # a 016-020 waits for the store: what is read meanwhile waits, in order
        self.paused = False
        self.in_grace = False
        self.pending: list[Union[ClientFrame, FrameError]] = []  # read while a join or a query waits
        self.leave_cause = "drop"  # why a joined user left, for the metrics (stats.LEAVE_CAUSES)
        self.connected_at = time.time()

    # ------------------------------------------------------------ lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        if self.tls is not None:  # the TLS port: counted when accepted; the handshake is done now
            if self.closing and self.transport is not None:
                self.transport.abort()
            return
        peer = transport.get_extra_info("peername")
        self._admit(peer_address(str(peer[0])) if peer else "unknown")  # normalised once: bans, limits, logs

    def accept_tls(self, sock: socket.socket) -> None:
        """A socket the TLS port accepted: counted and limited now (refused: closed, no handshake), then
        the handshake (:mod:`.tls_accept`), after which connection_made follows."""
        try:
            address = peer_address(str(sock.getpeername()[0]))
        except OSError:  # gone already
            sock.close()
            return
        self._admit(address)
        if self.closing or self.tls is None:  # refused: there is no TLS to say why in
            sock.close()
            self.connection_lost(None)
            return
        self.tls.start(self, sock, self.node.loop)

    def _admit(self, address: str) -> None:
        """Count this connection and its address (at accept time, on every listener); refuse it when over."""
        node = self.node
        cfg = node.config
        # Passwords only over a protected path: the TLS port, loopback (a gateway beside the server), or
        # --allow-plaintext-login. A gateway's later 000 does not change it: its own connection is the path.
        protected = self.tls is not None or is_loopback(address) or cfg.allow_plaintext_login
        caps = LEGACY_PORT if self.legacy else LINE_PORT if node.sessions is not None else _NO_RESUME
        self.session = Session(node.room.roster, address, cfg.gateway_secret, node.moderation, now_ms,
                               node.accounts.rules if node.accounts is not None else None, protected, caps,
                               node.cursor_key)
        if node.opened(self) > cfg.max_clients or node.closing:
            self.refuse(ErrorReason.BUSY, "too many connections")
            return
        self.count_address(address)

    def connection_lost(self, exc: Exception | None) -> None:
        node = self.node
        if self.ended:
            return  # (a failed TLS handshake ends the connection itself; never twice)
        self.ended = True
        node.closed(self)
        self.uncount()
        self.pending.clear()
        self.closing = True
        session = self.session
        if session.joined and self._park():
            node.room.exit(session.key, self)  # not gone yet: it may resume within the grace
        else:
            self.apply(session.drop())
            self._leave(self.leave_cause)
        self.out.clear()
        self.transport = None

    def _park(self) -> bool:
        """Dropped without 004: keep the session for a resume (with what it had not been written yet)."""
        sessions = self.node.sessions
        key = self.session.key
        if sessions is None or key is None or not self.session.caps.resumable or self.node.closing:
            return False  # a server going down says goodbye to everyone (its sessions die with it)
        if not sessions.park(key, self.unsent()):
            return False
        self.session.detach()
        return True

    def _leave(self, cause: str) -> None:
        """Out of the room's fan-out; a member that was in it is counted and logged as gone (``cause``)."""
        session = self.session
        was_in = self.cursor is not None
        self.node.room.exit(session.key, self)
        if was_in and session.name is not None:
            self.node.stats.left(cause)
            self.node.log_disconnected(session.name, session.address)

    def remove(self, reason: ErrorReason, detail: str) -> None:
        """An operator's kick or ban: say why, leave the room (the others see the 104), close."""
        if self.closing:
            return
        self.send(Error(reason, detail))
        self.apply(self.session.drop())
        self._leave("kick")
        self.close_after_flush()

    # ------------------------------------------------------------ input

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.node.stats.bytes_in += len(data)
        try:
            self.handle_items(self.reader.feed(data))
        except Exception:
            self.internal_error()

    def internal_error(self) -> None:
        # Our bug, not the peer's: log it, tell the peer only that it happened.
        log.exception("internal error while handling %s", self.session.address)
        self.send(_INTERNAL)

    def handle_items(self, items: list[Union[ClientFrame, FrameError]]) -> None:
        session = self.session
        admission = self.admission
        frames_in = self.node.stats.frames_in
        for i, item in enumerate(items):
            if self.closing:
                return
            if session.state is _JOINING or self.querying:
                # The directory (or the store) has not answered yet: the rest waits, in order.
                self.pending.extend(items[i:])
                self._pause()
                return
            if not isinstance(item, FrameError):
                frames_in[item.CODE] += 1
                # (flood control off and no over-limit grace: nothing to charge, no call per frame)
                if admission.on:
                    verdict = admission.charge(spec_of(item).budget, self.node.loop.time())
                    if verdict is not None:
                        self._refused(verdict)
                        continue
            self.apply(session.handle(item))
        if admission.message is not None:
            self._pace()

    def _refused(self, verdict: Verdict) -> None:
        """Carry out the admission's refusal of one frame."""
        if verdict is Verdict.BUSY:
            self.refuse_busy()
            return
        self.node.stats.flood_refused()
        if verdict is Verdict.KICK:
            self.leave_cause = "flood"
            log.warning("dropping %s (%s): flooding", self.session.name or "-", self.session.address)
            self.apply(self.session.drop())  # a leave now: a session the server ended is not kept for a resume
            self.refuse(ErrorReason.FLOOD, "disconnected for flooding")
        else:
            self.send(Error(ErrorReason.FLOOD, "too many messages; this one was not delivered"))

    def _pace(self) -> None:
        """Over a budget: the rest waits in the peer's own socket buffer until a token is there."""
        if self.paused or self.transport is None or self.closing:
            return
        wait = self.admission.pace()
        if wait > 0:
            self._pause()
            self.node.loop.call_later(wait, self._resume)

    def _pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        self.paused = False
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    def go_on(self) -> None:
        """The directory or the store answered: the frames read meanwhile, in order, then reading again."""
        pending, self.pending = self.pending, []
        if pending:
            self.handle_items(pending)
        if not self.pending and self.paused and self.session.state is not ConnState.JOINING and not self.querying:
            self._resume()
            self._pace()

    # ------------------------------------------------------------ effects

    def apply(self, effects: list[Effect]) -> None:
        """Carry out what the session decided, in order."""
        node = self.node
        for effect in effects:
            if type(effect) is Publish:  # the commonest effect (a message to all), without the match below
                node.bus.publish(effect.frame, effect.exclude)
                continue
            match effect:
                case Reply(frame):
                    self.send(frame)
                case Deliver(key, frame):
                    node.bus.deliver(key, frame)
                case Claim(name, key):
                    node.joiner.claim(self, name, key)
                case IssueToken(name, key):
                    assert node.sessions is not None
                    self.send(SessionToken(node.sessions.issue(name, key, self.session.address)))
                case Release(_, key):
                    node.joiner.release(key)
                case Close():  # after 004: it left with its 102
                    self._leave("quit")
                    self.close_after_flush()
                case UseFormat(fmt):  # (always before the join, so before any fan-out)
                    self.encoder = BY_FORMAT[fmt]
                case Rehome(address):
                    self.rehome(address)
                case Reattach(token, position):
                    node.joiner.take(self, token, position)
                case FetchPage() | FindText() | Authenticate() | Enroll() | Rekey():
                    self._query(*queries.start(node, self.session, effect))
                case Enter(name, key):
                    node.joiner.login(self, name, key)
                case LockedOut(account, address, lockout):
                    node.stats.lockouts[lockout.scope] += 1
                    log.warning("login lockout of %s [%s] (count: %s): logins refused for %d s",
                                account, address, lockout.scope, lockout.seconds)
                case Publish():  # (handled above)
                    pass
                case _:
                    assert_never(effect)

    def _query(self, work: Coroutine[Any, Any, list[Effect]], timeout: float) -> None:
        """A 016/017 reads the store (an 018-020 the accounts): frames read meanwhile wait in order, reading
        paused, as for a claim."""
        self.querying = True
        self._pause()
        self.node.loop.create_task(self._answer(work, timeout), name="store query")

    async def _answer(self, work: Coroutine[Any, Any, list[Effect]], timeout: float) -> None:
        try:
            effects = await asyncio.wait_for(work, timeout)
        except Exception as exc:
            effects = queries.failed(self.session, exc)
        self.querying = False
        if self.closing or self.transport is None:
            return
        try:
            self.apply(effects)
            self.go_on()
        except Exception:
            self.internal_error()
