"""One client connection: the asyncio Protocol that carries out what the pure Session decides.

Hot path notes: ``send`` only appends a frame to a list; the node flushes every
connection that got output once per event-loop turn, with one
``transport.write`` of everything queued, encoded by the connection's own
encoder. A broadcast to N users costs one log append, and each user gets one
syscall per flush however many messages arrived in it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import ssl
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol, Union, assert_never

from .config import ServerConfig
from .fanout import Cursor, LogPart
from .local_room import ARRIVAL_TIMEOUT, Arrival, LocalRoom
from .protocol.codes import ErrorReason, OutputFormat
from .protocol.decoder import FrameReader, client_frame_reader
from .protocol.encoders import BY_FORMAT, FRAMES, LEGACY, Encoder
from .protocol.frames import ClientFrame, Error, FrameError, ServerFrame
from .protocol.limits import (
    CONTROL_BURST,
    CONTROL_RATE,
    AddressBuckets,
    AddressLimits,
    TokenBucket,
    address_key,
    peer_address,
)
from .protocol.moderation import Moderation
from .protocol.passwords import Password
from .protocol.scrollback import SEARCH_LIMIT
from .protocol.session import (
    Authenticate,
    Claim,
    Close,
    Deliver,
    Effect,
    Enroll,
    Enter,
    FetchPage,
    FindText,
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
from .protocol.table import Budget, spec_of
from .room import Bus, Directory, History, IdRegistered, Later, Resumable, RoomUnavailable, SessionStore
from .room.recall import InMemorySessionStore
from .stats import ServerStats

if TYPE_CHECKING:
    from .accounts.service import Accounts
    from .store.db import MessageStore

log = logging.getLogger("tcp_server")

GATEWAY_GRACE = 2.0
"""A connection over its per-address limit may still be a trusted gateway about to name the real
user with ``000``; where a gateway secret is configured it gets this long to do so."""
GRACE_MAX = 64
"""Connections held in that grace at once; past it, over-limit connections are refused at once."""
QUERY_TIMEOUT = 10.0
"""Seconds a 016/017 may wait for the store before it is answered 109#unavailable."""
ACCOUNT_TIMEOUT = 90.0
"""Seconds an 018-020 may take in all (the hashing queue, the hash, the database), each step bounded too."""


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class Node(Protocol):
    """What a connection needs of its server node (the server is one; tests may build another)."""

    config: ServerConfig
    directory: Directory
    bus: Bus
    history: History | None
    sessions: SessionStore | None
    store: MessageStore | None
    accounts: Accounts | None
    cursor_key: bytes | None
    address_limits: AddressLimits
    address_buckets: AddressBuckets | None
    moderation: Moderation
    stats: ServerStats
    closing: bool
    in_grace: int

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def room(self) -> LocalRoom: ...

    def opened(self, conn: ChatConnection) -> int:
        """Count ``conn``; the number of connections now open."""

    def closed(self, conn: ChatConnection) -> None: ...

    def log_connected(self, name: str, address: str) -> None: ...

    def log_disconnected(self, name: str, address: str) -> None: ...

    def oldest_seq(self) -> int | None:
        """With a store: the room's number of the oldest message a newcomer's ``111`` holds (of the next one
        when it holds none), taken in the same turn; None without a store."""


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


def now_ms() -> int:
    """The server's timestamp for a message: milliseconds since the Unix epoch (UTC)."""
    return time.time_ns() // 1_000_000


class ChatConnection(asyncio.Protocol):
    """A client on the main port, or (with the legacy encoder) the seed's own client on the legacy port."""

    __slots__ = (
        "node", "transport", "session", "reader", "out", "encoder", "cursor", "counted_address",
        "timer", "closing", "bucket", "control", "strikes", "paused", "over_limit", "pending", "in_grace",
        "leave_cause", "connected_at", "limit_key", "tls", "tls_sock", "handshake", "ended", "search", "querying",
    )

    def __init__(self, node: Node, encoder: Encoder = FRAMES, tls: ssl.SSLContext | None = None) -> None:
        self.node = node
        # The TLS port: the node accepts the socket itself, counts and limits it at once like any connection
        # (accept_tls), and only then the loop runs the handshake: a peer that never sends a ClientHello
        # holds a counted place, not a free one.
        self.tls = tls
        self.tls_sock: socket.socket | None = None  # accepted, not yet handed to the loop's TLS
        self.handshake: asyncio.Task[None] | None = None  # set while the TLS handshake runs
        self.ended = False  # connection_lost has run
        self.transport: asyncio.Transport | None = None
        # The seed's client (the legacy encoder) sends a frame a write, with no LF.
        self.reader: FrameReader[ClientFrame] = client_frame_reader(node.config.max_frame, encoder is LEGACY)
        self.out: list[ServerFrame | LogPart] = []  # own frames, and parts of the room's log in their place
        self.encoder = encoder
        self.cursor: Cursor | None = None  # in the room: how much of the fan-out log this connection has
        self.counted_address: str | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closing = False
        cfg = node.config
        now = node.loop.time()
        self.bucket = TokenBucket(cfg.flood_rate, cfg.flood_burst, now) if cfg.flood_rate > 0 else None
        self.control = TokenBucket(CONTROL_RATE, CONTROL_BURST, now) if cfg.flood_rate > 0 else None
        self.search = (TokenBucket(cfg.search_rate, cfg.search_burst, now)
                       if cfg.flood_rate > 0 and cfg.search_rate > 0 else None)
        self.querying = False  # a 016/017 waits for the store: what is read meanwhile waits, in order
        self.strikes = 0
        self.paused = False
        self.over_limit = False
        self.in_grace = False
        self.pending: list[Union[ClientFrame, FrameError]] = []  # read while a join waits for the directory
        self.leave_cause = "drop"  # why a joined user left, for the metrics (stats.LEAVE_CAUSES)
        self.connected_at = time.time()
        self.limit_key = ""  # the address's key for every per-address limit (IPv6: its /64)

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
        the loop's TLS handshake within ``--tls-handshake-timeout``, after which connection_made follows."""
        try:
            address = peer_address(str(sock.getpeername()[0]))
        except OSError:  # gone already
            sock.close()
            return
        self._admit(address)
        if self.closing:  # refused: there is no TLS to say why in
            sock.close()
            self.connection_lost(None)
            return
        self.tls_sock = sock
        self.handshake = task = self.node.loop.create_task(self._handshake(), name="TLS handshake")
        task.add_done_callback(self._handshake_done)

    async def _handshake(self) -> None:
        """The loop's TLS server side on the accepted socket; its end is :meth:`_handshake_done`."""
        assert self.tls is not None and self.tls_sock is not None
        sock, self.tls_sock = self.tls_sock, None  # the loop's from here: its transport closes it
        try:
            await self.node.loop.connect_accepted_socket(
                lambda: self, sock, ssl=self.tls, ssl_handshake_timeout=self.node.config.tls_handshake_timeout)
        except (OSError, TimeoutError) as exc:  # (ssl.SSLError is an OSError) the peer's failure, not ours
            log.debug("TLS handshake with %s failed: %s", self.session.address, exc)

    def _handshake_done(self, task: asyncio.Task[None]) -> None:
        """Secured (connection_made ran), or failed, timed out or called off (a refusal, the server
        stopping): then the connection ends here, since the TLS layer tells its protocol nothing."""
        self.handshake = None
        if self.tls_sock is not None:  # called off before the loop had it
            self.tls_sock.close()
            self.tls_sock = None
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("TLS handshake with %s failed", self.session.address, exc_info=exc)
        if self.transport is None:
            self.connection_lost(None)

    def _admit(self, address: str) -> None:
        """Count this connection and its address (at accept time, on every listener); refuse it when over."""
        node = self.node
        cfg = node.config
        # Passwords only over a protected path: the TLS port, loopback (a gateway beside the server), or
        # --allow-plaintext-login. A gateway's later 000 does not change it: its own connection is the path.
        protected = self.tls is not None or is_loopback(address) or cfg.allow_plaintext_login
        self.session = Session(node.room.roster, address, cfg.gateway_secret, node.moderation, now_ms,
                               node.accounts.rules if node.accounts is not None else None, protected,
                               self.encoder is LEGACY)
        if self.encoder is not LEGACY:  # the seed's client has no scrollback: never a 141 there
            self.session.cursor_key = node.cursor_key
        count = node.opened(self)
        if count > node.config.max_clients or node.closing:
            self.refuse(ErrorReason.BUSY, "too many connections")
            return
        now = node.loop.time()
        self.limit_key = key = address_key(address, node.config.ipv6_prefix)
        if node.address_limits.admit(key, now):
            self.counted_address = key
            self.timer = node.loop.call_later(node.config.join_timeout, self._join_timeout)
        elif node.config.gateway_secret and node.in_grace < GRACE_MAX:
            self.over_limit = self.in_grace = True
            node.in_grace += 1
            self.timer = node.loop.call_later(GATEWAY_GRACE, self._refuse_busy)
        else:
            self._refuse_busy()

    def connection_lost(self, exc: Exception | None) -> None:
        node = self.node
        if self.ended:
            return  # (a failed TLS handshake ends the connection itself; never twice)
        self.ended = True
        node.closed(self)
        self._end_grace()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.pending.clear()
        self.closing = True
        session = self.session
        was_in = session.joined
        if was_in and self._park():
            was_in = False  # not gone yet: it may resume within the grace
        else:
            self.apply(session.drop())
        self.out.clear()
        node.room.exit(session.key, self)
        if was_in and session.name is not None:
            node.stats.left(self.leave_cause)
            node.log_disconnected(session.name, session.address)
        if self.counted_address is not None:
            node.address_limits.release(self.counted_address, node.loop.time())
            self.counted_address = None
        self.transport = None

    def _park(self) -> bool:
        """Dropped without 004: keep the session for a resume (with what it had not been written yet)."""
        sessions = self.node.sessions
        key = self.session.key
        if sessions is None or key is None or self.encoder is LEGACY or self.node.closing:
            return False  # a server going down says goodbye to everyone (its sessions die with it)
        log = self.node.room.log
        unsent = [frame for item in self.out
                  for frame in (log.frames(item) if isinstance(item, LogPart) else (item,))]
        if self.cursor is not None:
            unsent += log.take(self.cursor)  # newer than anything queued
        if not sessions.park(key, unsent):
            return False
        self.session.detach()
        return True

    def replaced(self, detail: str = "this session was resumed by another connection") -> None:
        """Another connection resumed this session (or logged in to its account): leave the room quietly,
        say why, close."""
        self.session.detach()
        self.node.room.exit(self.session.key, self)
        self.refuse(ErrorReason.REPLACED, detail)

    def _end_grace(self) -> None:
        if self.in_grace:
            self.in_grace = False
            self.node.in_grace -= 1

    # ------------------------------------------------------------ output

    def send(self, frame: ServerFrame) -> None:
        """Queue one frame; written at the end of this loop turn."""
        if type(frame) is Error:
            self.node.stats.error_sent(frame.reason)
        cursor = self.cursor
        if cursor is not None and self.node.room.log.behind(cursor):
            self.catch_up()  # room frames logged before this one come first
        out = self.out
        if not out:
            if self.closing:
                return
            self.node.room.mark_dirty(self)
        out.append(frame)

    def catch_up(self) -> None:
        cursor = self.cursor
        if cursor is None:
            return
        log = self.node.room.log
        if log.behind(cursor):
            part = log.part(cursor)
            if self.closing:
                return
            out = self.out
            if not out:
                self.node.room.mark_dirty(self)
            out.append(part)

    def take_log(self, chunks: list[bytes], pos: int, shared: bytes) -> None:
        transport = self.transport
        if transport is None or self.closing:
            return
        if shared:
            transport.write(b"".join(chunks[pos:]) if pos else shared)
        else:
            for data in self.encoder.batch(chunks[pos:]):
                transport.write(data)
        if transport.get_write_buffer_size() > self.node.config.max_queue:
            self.overflow()

    def flush(self) -> None:
        if self.cursor is not None:
            self.catch_up()
        out = self.out
        transport = self.transport
        if not out or transport is None:
            out.clear()
            return
        encoder = self.encoder
        encode = encoder.encode
        log = self.node.room.log
        chunks: list[bytes] = []
        frames = 0
        for item in out:
            if isinstance(item, LogPart):  # the room's frames: slices of the log's shared encoding
                part = log.bytes_of(encoder, item)
                if encoder.shareable:
                    chunks.append(b"".join(part))
                else:
                    chunks += part
                frames += len(item)
            else:
                chunks.append(encode(item))
                frames += 1
        nbytes = 0
        for data in encoder.batch(chunks):
            transport.write(data)
            nbytes += len(data)
        stats = self.node.stats
        stats.deliveries += frames
        stats.bytes_out += nbytes
        out.clear()
        if transport.get_write_buffer_size() > self.node.config.max_queue and not self.closing:
            self.overflow()

    def overflow(self) -> None:
        """A reader too slow for its queue: drop it so it cannot hold anyone up."""
        log.warning("dropping %s (%s): output queue over %d bytes", self.session.name or "-",
                    self.session.address, self.node.config.max_queue)
        self.node.stats.slow_reader_dropped()
        self.leave_cause = "slow_reader"
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def close_after_flush(self) -> None:
        self.closing = True
        self.flush()
        if self.transport is not None:
            self.transport.close()
        elif self.handshake is not None:  # the TLS port, still in its handshake: nothing can be said yet
            self.handshake.cancel()

    def remove(self, reason: ErrorReason, detail: str) -> None:
        """An operator's kick or ban: say why, leave the room (the others see the 104), close."""
        if self.closing:
            return
        self.send(Error(reason, detail))
        session = self.session
        was_in = self.cursor is not None
        self.apply(session.drop())
        if was_in:
            self.node.room.exit(session.key, self)
            self.node.stats.left("kick")
            if session.name is not None:
                self.node.log_disconnected(session.name, session.address)
        self.close_after_flush()

    def refuse(self, reason: ErrorReason, detail: str) -> None:
        self.send(Error(reason, detail))
        self.close_after_flush()

    def _join_timeout(self) -> None:
        self.timer = None
        if not self.session.joined and not self.closing:
            self.refuse(ErrorReason.NOT_JOINED, "join deadline passed")

    def _refuse_busy(self) -> None:
        self.timer = None
        self._end_grace()
        if not self.closing:
            self.refuse(ErrorReason.ADDRESS_LIMIT, "too many connections from your address")

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
        frames_in = self.node.stats.frames_in
        for i, item in enumerate(items):
            if self.closing:
                return
            if session.state is ConnState.JOINING or self.querying:
                # The directory (or the store) has not answered yet: the rest waits, in order.
                self.pending.extend(items[i:])
                self._pause()
                return
            if not isinstance(item, FrameError):
                frames_in[item.CODE] += 1
                # (flood control off and no over-limit grace: nothing to charge, no call per frame)
                if (self.bucket is not None or self.over_limit) and not self._charge(item):
                    continue
            self.apply(session.handle(item))
        if self.bucket is not None:
            self._pace()

    def _charge(self, item: ClientFrame) -> bool:
        """Every frame costs a token from its budget (the table says which); False: refused."""
        budget = spec_of(item).budget
        if self.over_limit:
            if budget is not Budget.CONTROL:  # a gateway's 000/007 come first
                self._refuse_busy()
                return False
            return True
        if budget is Budget.SEARCH:
            bucket = self.search
        else:
            bucket = self.bucket if budget is Budget.MESSAGE else self.control
        if bucket is None:
            return True
        now = self.node.loop.time()
        shared = self.node.address_buckets if budget is Budget.MESSAGE else None
        # Both budgets must allow it: this connection's, and (for messages) its address's, shared by all
        # of that address's connections, so that opening more sockets does not multiply the rate.
        if not bucket.take(now) or (shared is not None and not shared.take(self.limit_key, now)):
            self._flooding()
            return False
        self.strikes = 0
        return True

    def _pace(self) -> None:
        """Over a budget: the rest waits in the peer's own socket buffer until a token is there."""
        if self.paused or self.transport is None or self.closing:
            return
        wait = 0.0
        for bucket in (self.bucket, self.control):
            if bucket is not None and bucket.tokens < 1.0:
                wait = max(wait, bucket.wait_time())
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

    def _flooding(self) -> None:
        self.strikes += 1
        self.node.stats.flood_refused()
        if self.strikes > self.node.config.flood_kick:
            self.leave_cause = "flood"
            log.warning("dropping %s (%s): flooding", self.session.name or "-", self.session.address)
            self.apply(self.session.drop())  # a leave now: a session the server ended is not kept for a resume
            self.refuse(ErrorReason.FLOOD, "disconnected for flooding")
        else:
            self.send(Error(ErrorReason.FLOOD, "too many messages; this one was not delivered"))

    # ------------------------------------------------------------ effects

    def apply(self, effects: list[Effect]) -> None:
        """Carry out what the session decided, in order."""
        node = self.node
        for effect in effects:
            if type(effect) is Publish:  # the commonest effect (a message to all), without the match below
                node.bus.publish(effect.frame, effect.exclude)
                continue
            match effect:
                case Publish(frame, exclude):  # first: a message to all is the commonest effect
                    node.bus.publish(frame, exclude)
                case Reply(frame):
                    self.send(frame)
                case Deliver(key, frame):
                    node.bus.deliver(key, frame)
                case Claim(name, key):
                    answer = node.directory.try_claim(name, key, self.session.account)
                    if isinstance(answer, Later):  # a shared directory: a round trip
                        node.loop.create_task(self._claim(name, key), name=f"claim {name}")
                    else:
                        self._claimed(name, key, answer)
                case Release(_, key):
                    node.directory.release(key)
                    if node.sessions is not None:
                        node.sessions.end(key)
                case Close():
                    self._close_gracefully()
                case UseFormat(fmt):
                    self._use_format(fmt)
                case Rehome(address):
                    self._rehome(address)
                case Reattach(token, position):
                    self._reattach(token, position)
                case FetchPage(room, before, limit):
                    self._query(self._fetch(room, before, limit))
                case FindText(room, query):
                    self._query(self._find(room, query))
                case Authenticate(_, key, password):
                    self._query(self._authenticate(key, password), ACCOUNT_TIMEOUT)
                case Enter(name, key):
                    self._enter(name, key)
                case Enroll(name, key, password):
                    self._query(self._enroll(name, key, password), ACCOUNT_TIMEOUT)
                case Rekey(key, password):
                    self._query(self._rekey(key, password), ACCOUNT_TIMEOUT)
                case LockedOut(account, address, lockout):
                    node.stats.lockouts[lockout.scope] += 1
                    log.warning("login lockout of %s [%s] (count: %s): logins refused for %d s",
                                account, address, lockout.scope, lockout.seconds)
                case _:
                    assert_never(effect)

    async def _claim(self, name: str, key: str, login: bool = False) -> None:
        """A shared directory's claim: its answer, and the join's own echo on the bus (see
        :class:`tcp_server.local_room.Arrival`); the joiner enters when it has both."""
        node = self.node
        room = node.room
        arrival = room.expect(key)
        if arrival is None:  # another connection of this node is taking this ID right now
            self._claimed(name, key, None, login=login)
            return
        users: tuple[str, ...] | None = None
        try:
            users = await node.directory.claim(name, key, self.session.account)
            if users is not None:
                await asyncio.wait_for(arrival.echoed.wait(), ARRIVAL_TIMEOUT)
        except (RoomUnavailable, TimeoutError) as exc:
            room.arrived(key)
            if users is not None:
                node.directory.release(key)  # claimed, but the room's channel did not bring it back
            log.warning("join of %r refused: %s", name, exc or "no echo from the room")
            if not self.closing:
                self.refuse(ErrorReason.UNAVAILABLE, "the room is unavailable; try again later")
            return
        except IdRegistered:  # registered on another node: refused as a local 001 of a registered ID is
            room.arrived(key)
            if node.accounts is not None:
                node.accounts.registry.learn(key, name)
            if self.session.state is ConnState.JOINING:
                self.apply(self.session.registered_elsewhere())
                self._go_on()
            return
        except Exception:
            log.exception("the directory failed to claim %r", name)
            if users is not None:
                node.directory.release(key)
            users = None
            if not self.closing:
                self.internal_error()
        room.arrived(key)
        self._claimed(name, key, users, arrival, login)

    def _claimed(self, name: str, key: str, users: tuple[str, ...] | None, arrival: Arrival | None = None,
                 login: bool = False) -> None:
        """The directory's answer to a join: in the room, or 101; then the frames that waited.

        ``arrival``: a shared directory's join, with what the room said since its echo.
        """
        node = self.node
        session = self.session
        if session.state is not ConnState.JOINING:  # gone meanwhile
            if users is not None:
                node.directory.release(key)
            return
        try:
            if users is None and login:  # the account's session is held (elsewhere, or parked): take it over
                node.loop.create_task(self._take_by_key(name, key), name="login takeover")
                return
            if users is None:
                self.apply(session.taken())
            else:
                if self.timer is not None:
                    self.timer.cancel()
                    self.timer = None
                node.room.enter(key, self)
                sessions = node.sessions
                token = (sessions.issue(name, key, session.address)
                         if sessions is not None and self.encoder is not LEGACY else None)
                # Taken in the same turn as enter() (or the join's echo): each message is history or live, never both.
                if arrival is not None:
                    history = arrival.history
                else:
                    history = node.history.recent() if node.history is not None else []
                oldest = node.oldest_seq() if arrival is None else arrival.oldest
                self.apply(session.claimed(users, token, history, oldest))
                if arrival is not None:
                    for frame in arrival.frames:  # the room since the join's echo, before the log from here on
                        self.send(frame)
                node.log_connected(name, session.address)
            self._go_on()
        except Exception:
            self.internal_error()

    def _query(self, work: Coroutine[Any, Any, list[Effect]], timeout: float = QUERY_TIMEOUT) -> None:
        """A 016/017 reads the store (an 018-020 the accounts): frames read meanwhile wait in order, reading
        paused, as for a claim."""
        self.querying = True
        self._pause()
        self.node.loop.create_task(self._answer(work, timeout), name="store query")

    async def _answer(self, work: Coroutine[Any, Any, list[Effect]], timeout: float = QUERY_TIMEOUT) -> None:
        try:
            effects = await asyncio.wait_for(work, timeout)
        except Exception as exc:
            # Its kind only: a driver's message may quote a stored row.
            log.warning("a store query failed: %s (%s)", type(exc).__name__,
                        type(getattr(exc, "orig", None)).__name__ if getattr(exc, "orig", None) else "-")
            effects = [Reply(Error(ErrorReason.UNAVAILABLE, "the database cannot be used right now"))]
            if self.session.state is ConnState.JOINING:  # a login that did not finish: the connection stays
                effects = self.session.login_refused(ErrorReason.UNAVAILABLE, "the database cannot be used right now")
        self.querying = False
        if self.closing or self.transport is None:
            return
        try:
            self.apply(effects)
            self._go_on()
        except Exception:
            self.internal_error()

    async def _fetch(self, room: str, before: int | None, limit: int) -> list[Effect]:
        store = self.node.store
        assert store is not None
        rows = await store.before(room, before, limit)
        return self.session.paged(room, [(m.seq, m.ts, m.author, m.text) for m in rows], limit,
                                  [m.account for m in rows])

    async def _find(self, room: str, query: str) -> list[Effect]:
        store = self.node.store
        assert store is not None
        rows = await store.search(room, query, SEARCH_LIMIT)
        return self.session.found([(m.seq, m.ts, m.author, m.text) for m in rows], [m.account for m in rows])

    # ------------------------------------------------------------ accounts (018-020)

    async def _authenticate(self, key: str, password: Password) -> list[Effect]:
        from .accounts.service import Outcome

        accounts = self.node.accounts
        assert accounts is not None
        answer = await accounts.login(key, password)
        session = self.session
        if session.state is not ConnState.JOINING:  # gone meanwhile
            return []
        stats = self.node.stats
        match answer.outcome:
            case Outcome.OK:
                stats.logins += 1
                return session.verified(answer.display)
            case Outcome.BAD:
                stats.login_failures += 1
                log.info("failed login to %s [%s]", key, session.address)
                return session.bad_login()
            case Outcome.LOCKED:
                return session.login_refused(ErrorReason.ACCOUNT_LOCKED, "an operator locked this account")
            case Outcome.BUSY:
                return session.login_refused(ErrorReason.LOGIN_BUSY, "too many logins at once; try again")
            case _:
                return session.login_refused(ErrorReason.UNAVAILABLE, "accounts cannot be used right now")

    def _enter(self, name: str, key: str) -> None:
        """A verified login: take over the account's session where this node holds it (a live connection,
        or one parked for a resume): no leave, no join; else a fresh join through the directory."""
        node = self.node
        old = node.room.members.get(key)
        sessions = node.sessions
        if old is not None and old is not self:
            old.replaced("this account logged in on another connection")
            self._took_over(name, key)
            return
        if isinstance(sessions, InMemorySessionStore) and sessions.is_parked(key):
            sessions.end(key)  # its token dies; the room still lists it: the login continues it
            self._took_over(name, key)
            return
        answer = node.directory.try_claim(name, key, True)
        if isinstance(answer, Later):  # a shared directory: a round trip (then, if held, a takeover)
            node.loop.create_task(self._claim(name, key, login=True), name=f"claim {name}")
        else:
            self._claimed(name, key, answer, login=True)

    async def _take_by_key(self, name: str, key: str) -> None:
        """A login whose account is held where this node cannot reach it directly (another node, live or
        parked): its session's token, then the resume's take, which tells the holder ``109#replaced``."""
        sessions = self.node.sessions
        token: str | None = None
        try:
            if sessions is not None:
                token = await asyncio.wait_for(sessions.token_of(key), QUERY_TIMEOUT)
        except (RoomUnavailable, TimeoutError, OSError) as exc:
            log.warning("login takeover of %s: the session store did not answer (%s)", name, type(exc).__name__)
        if self.session.state is not ConnState.JOINING or self.closing:
            return
        if token is None:
            self.apply(self.session.login_refused(ErrorReason.UNAVAILABLE,
                                                  "the account's session is changing hands; try again"))
            self._go_on()
            return
        await self._take(token, None, login=True)

    def _took_over(self, name: str, key: str) -> None:
        node = self.node
        session = self.session
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        room = node.room
        room.enter(key, self)
        sessions = node.sessions
        token = (sessions.issue(name, key, session.address)
                 if sessions is not None and self.encoder is not LEGACY else None)
        history = node.history.recent() if node.history is not None else []
        self.apply(session.took_over(room.roster.user_list().ids, token, history, node.oldest_seq()))
        log.info("%s logged in [%s], taking over its session", name, session.address)

    async def _enroll(self, name: str, key: str, password: Password) -> list[Effect]:
        from .accounts.service import Outcome

        accounts = self.node.accounts
        assert accounts is not None
        answer = await accounts.register(key, name, password)
        session = self.session
        match answer.outcome:
            case Outcome.OK:
                self.node.stats.registrations += 1
                log.info("%s registered [%s]", name, session.address)
                return session.enrolled()
            case Outcome.EXISTS:
                return session.account_refused(ErrorReason.ALREADY_REGISTERED, f"{name} is registered already")
            case Outcome.BUSY:
                return session.account_refused(ErrorReason.LOGIN_BUSY, "too many password requests; try again")
            case Outcome.WEAK:
                return session.account_refused(ErrorReason.WEAK_PASSWORD, "the password cannot be used")
            case _:
                return session.account_refused(ErrorReason.UNAVAILABLE, "accounts cannot be used right now")

    async def _rekey(self, key: str, password: Password) -> list[Effect]:
        from .accounts.service import Outcome

        accounts = self.node.accounts
        assert accounts is not None
        session = self.session
        answer = await accounts.change(key, session.name or key, password)
        match answer.outcome:
            case Outcome.OK:
                log.info("%s changed its password [%s]", session.name, session.address)
                return session.rekeyed()
            case Outcome.BUSY:
                return session.account_refused(ErrorReason.LOGIN_BUSY, "too many password requests; try again")
            case Outcome.WEAK:
                return session.account_refused(ErrorReason.WEAK_PASSWORD, "the password cannot be used")
            case Outcome.BAD:
                return session.account_refused(ErrorReason.NEEDS_LOGIN, "this account no longer exists")
            case _:
                return session.account_refused(ErrorReason.UNAVAILABLE, "accounts cannot be used right now")

    def _go_on(self) -> None:
        """The directory or the store answered: the frames read meanwhile, in order, then reading again."""
        pending, self.pending = self.pending, []
        if pending:
            self.handle_items(pending)
        if (not self.pending and self.paused and self.session.state is not ConnState.JOINING
                and not self.querying):
            self._resume()
            self._pace()

    def _reattach(self, token: str, position: int | None) -> None:
        """``008#TOKEN``: take the session back (from its grace, or from a connection still open).

        Taking a token may need a round trip (a shared store), so it runs as a task, like a claim:
        frames read meanwhile wait in order with reading paused (the session is ``JOINING``).
        """
        if self.node.sessions is None or self.encoder is LEGACY:
            self.apply(self.session.refused())
            return
        self.node.loop.create_task(self._take(token, position), name="resume")

    async def _take(self, token: str, position: int | None, login: bool = False) -> None:
        """Take the session: the store's answer, and with a shared store its announcement on the bus
        (an :class:`Arrival`, as for a claim): the member enters where its missed frames end."""
        node = self.node
        sessions = node.sessions
        assert sessions is not None
        room = node.room
        ref = f"take:{secrets.token_hex(8)}" if sessions.announces_takes else ""
        arrival = room.expect(ref) if ref else None
        found: Resumable | None = None
        try:
            found = await sessions.take(token, ref, position)
            if found is not None and found.gap:
                found = self._gap(found)
            elif found is not None and arrival is not None:
                await asyncio.wait_for(arrival.echoed.wait(), ARRIVAL_TIMEOUT)
        except (RoomUnavailable, TimeoutError) as exc:
            room.arrived(ref)
            log.warning("resume refused: %s", exc or "no announcement from the room")
            if found is not None:
                self._give_back(found, [])
            if not self.closing:
                self.refuse(ErrorReason.UNAVAILABLE, "the room is unavailable; try again later")
            return
        except Exception:
            log.exception("the session store failed to take a token")
            found = None
            if not self.closing:
                self.internal_error()
        room.arrived(ref)
        since = arrival.frames if arrival is not None else []  # (empty unless it was echoed)
        session = self.session
        if session.state is not ConnState.JOINING:
            if found is not None and not found.gap:
                self._give_back(found, since)
            return
        try:
            if found is not None and found.gap:
                self.apply(session.gap(node.config.resume_max_frames))  # the most a resume replays
            elif found is None and login:
                self.apply(session.login_refused(ErrorReason.UNAVAILABLE,
                                                 "the account's session is changing hands; try again"))
            elif found is None:
                self.apply(session.refused())
            else:
                old = room.members.get(found.key)
                if old is not None and old is not self:
                    old.replaced()  # the tab that reconnects wins
                banned = session.resume_banned(found.name)
                if banned is not None:  # checked like 001: the session ends here, its leave announced
                    log.info("resume of %s refused [%s]: banned", found.name, session.address)
                    self.apply(banned)
                    self._go_on()
                    return
                if self.timer is not None:
                    self.timer.cancel()
                    self.timer = None
                room.enter(found.key, self)
                fresh = sessions.issue(found.name, found.key, session.address)
                # The room as it was where the missed frames end (at the announcement, with a shared store).
                users = arrival.users if arrival is not None else room.roster.user_list().ids
                missed = [*found.missed, *since]
                if login:  # a fresh client: the usual join's replies, not the missed frames
                    history = node.history.recent() if node.history is not None else []
                    self.apply(session.took_over(users, fresh, history, node.oldest_seq()))
                    log.info("%s logged in [%s], taking over its session", found.name, session.address)
                else:
                    self.apply(session.resumed(found.name, users, fresh, missed))
                    node.stats.resumes += 1
                    log.info("%s resumed [%s] (%d missed frames)", found.name, session.address, len(missed))
            self._go_on()
        except Exception:
            self.internal_error()

    def _gap(self, found: Resumable) -> Resumable:
        """The store refused the position and ended the session (its 104 is coming): a connection of
        this node that still holds it goes quietly, so that the peer's fresh 001 finds the ID free."""
        old = self.node.room.members.get(found.key)
        if old is not None and old is not self:
            old.replaced()
        log.info("%s could not resume: its position is past the kept window", found.name)
        return found

    def _give_back(self, found: Resumable, since: list[ServerFrame]) -> None:
        """The connection went (or the room did) while taking: the session goes back to its grace
        (its token is spent; it ends with a 104), with what it missed meanwhile."""
        sessions = self.node.sessions
        assert sessions is not None
        sessions.issue(found.name, found.key)
        if not sessions.park(found.key, [*found.missed, *since]):
            self.node.directory.release(found.key)

    def _close_gracefully(self) -> None:
        session = self.session
        if self.cursor is not None:  # it was in the room: it left with 004
            self.node.room.exit(session.key, self)
            self.node.stats.left("quit")
            if session.name is not None:
                self.node.log_disconnected(session.name, session.address)
        self.close_after_flush()

    def _use_format(self, fmt: OutputFormat) -> None:
        """``007``: frames or JSON events from now on (always before the join, so before any fan-out)."""
        if self.encoder is LEGACY:
            self.send(Error(ErrorReason.UNKNOWN_CODE, "007 is not available on the legacy port"))
            return
        self.encoder = BY_FORMAT[fmt]

    def _rehome(self, real_address: str) -> None:
        """A trusted gateway named the real user: count limits on that address."""
        node = self.node
        now = node.loop.time()
        if self.counted_address is not None:
            # The gateway's host is not this user: its count, this minute's included, goes back.
            node.address_limits.release(self.counted_address, now, refund=True)
            self.counted_address = None
        self.over_limit = False
        self._end_grace()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.limit_key = key = address_key(real_address, node.config.ipv6_prefix)
        if not node.address_limits.admit(key, now):
            self.refuse(ErrorReason.ADDRESS_LIMIT, "too many connections from your address")
            return
        self.counted_address = key
        self.timer = node.loop.call_later(node.config.join_timeout, self._join_timeout)
