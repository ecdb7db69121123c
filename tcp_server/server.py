"""The asyncio TCP server: listeners, the room, flushing, shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .config import ServerConfig
from .connection import NOT_IN_ROOM, ChatConnection, LegacyConnection
from .protocol.codes import ErrorReason
from .protocol.events import encode_event, error_event, event_lines
from .protocol.frames import encode_error
from .protocol.limits import AddressLimits
from .protocol.room import InMemoryRoom, Member, Room
from .protocol.texts import text
from .stats import ServerStats
from .tls import ServerTLS

if TYPE_CHECKING:
    from .metrics_http import ServerMetrics

log = logging.getLogger("tcp_server")

# Flush pacing. A flush costs one write per member with output, so a join into
# a room of thousands (a 103 to every member) or a message to it costs that many
# syscalls. When a flush took FLUSH_PAUSE_FROM or more, the next one waits half
# as long as it took (at most FLUSH_PAUSE_MAX): the input arriving meanwhile
# (more joins, more messages) then shares one write per member instead of each
# event paying for a round of writes of its own. A 5,000-user join storm went
# from 92 s to 2 s with this and the shared fan-out log (BENCHMARKS.md). Cheap
# flushes, i.e. rooms of a few hundred, still run at the end of the same turn.
FLUSH_PAUSE_FROM = 0.002
FLUSH_PAUSE_SCALE = 0.5
FLUSH_PAUSE_MAX = 0.050


class ChatServer:
    """One chat room served on the line port and, optionally, the legacy port."""

    def __init__(self, config: ServerConfig | None = None, room: Room | None = None) -> None:
        self.config = config or ServerConfig()
        self.room: Room = room if room is not None else InMemoryRoom(fanout=self.publish)
        # Frames for every member of the room since the last flush, in order; each
        # member's next flush writes them, joined once for all, in one write.
        self.fanout_log: list[bytes] = []
        self._members: dict[ChatConnection, None] = {}  # connections that take the log
        # Members that asked for JSON events (007#json, the web gateway's backends): they take
        # the same log translated once per flush, however many they are.
        self._event_members: dict[ChatConnection, None] = {}
        self._event_memo: dict[bytes, bytes] = {}  # frame -> its event line, for one flush
        self.connections: set[ChatConnection] = set()
        self.address_limits = AddressLimits(self.config.max_per_address, self.config.max_new_per_minute)
        self.closing = False
        self._dirty: list[ChatConnection] = []
        self._flush_handle: asyncio.Handle | None = None
        self._flushed_at = 0.0  # loop time when the last flush ended
        self._flush_pause = 0.0  # how long the next flush waits after that
        self._servers: list[asyncio.base_events.Server] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port: int = 0
        self.legacy_port: int | None = None
        self._drained = asyncio.Event()  # set when closing and the last connection is gone
        self._sweeper: asyncio.TimerHandle | None = None
        self.stats = ServerStats()  # plain counters; read at scrape time (tcp_server/stats.py)
        self.tls: ServerTLS | None = None  # the TLS port's context; reload() on SIGHUP
        self.tls_port: int | None = None
        self.metrics: ServerMetrics | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "server not started"
        return self._loop

    # ------------------------------------------------------------ start/stop

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        cfg = self.config
        main = await self._loop.create_server(lambda: ChatConnection(self), cfg.host, cfg.port, backlog=1024)
        self._servers.append(main)
        self.port = main.sockets[0].getsockname()[1]
        if cfg.legacy_port is not None:
            legacy = await self._loop.create_server(lambda: LegacyConnection(self), cfg.host, cfg.legacy_port)
            self._servers.append(legacy)
            self.legacy_port = legacy.sockets[0].getsockname()[1]
        if cfg.tls_port is not None and cfg.tls_cert and cfg.tls_key:
            self.tls = ServerTLS(cfg.tls_cert, cfg.tls_key)
            secure = await self._loop.create_server(
                lambda: ChatConnection(self), cfg.host, cfg.tls_port, backlog=1024,
                ssl=self.tls.context, ssl_handshake_timeout=cfg.tls_handshake_timeout)
            self._servers.append(secure)
            self.tls_port = secure.sockets[0].getsockname()[1]
        if cfg.metrics_port is not None:
            from .metrics_http import ServerMetrics  # local: aiohttp and prometheus-client only when asked for

            self.metrics = ServerMetrics(self)
            await self.metrics.start(cfg.metrics_host, cfg.metrics_port)
        self._sweeper = self._loop.call_later(AddressLimits.WINDOW, self._sweep)
        log.info("chat server listening on %s:%d%s%s", cfg.host, self.port,
                 f" (legacy port {self.legacy_port})" if self.legacy_port is not None else "",
                 f" (TLS port {self.tls_port})" if self.tls_port is not None else "")

    async def close(self, timeout: float = 5.0) -> None:
        """Tell every client ``109#shutdown``, close them, stop listening."""
        if self.closing:
            return
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for srv in self._servers:
            srv.close()
        notice = encode_error(ErrorReason.SHUTDOWN, "server shutting down")
        for conn in list(self.connections):
            conn.send(notice)
            conn.close_after_flush()
        self._flush()
        if self.connections:
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except TimeoutError:
                log.warning("%d connections did not close in time; aborting them", len(self.connections))
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        for srv in self._servers:
            await srv.wait_closed()
        if self.metrics is not None:
            await self.metrics.close()
        log.info("chat server stopped")

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ flushing

    def mark_dirty(self, conn: ChatConnection) -> None:
        """``conn`` has output: flush it (with all others) at the end of this turn, or paced (see above)."""
        self._dirty.append(conn)
        if self._flush_handle is None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_pause:
            self._flush_handle = self.loop.call_at(self._flushed_at + self._flush_pause, self._flush)
        else:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        dirty = self._dirty
        self._dirty = []
        loop = self.loop
        start = loop.time()
        for conn in dirty:
            conn.flush()  # takes its part of the log first, so its own frames keep their place
        log = self.fanout_log
        if log:
            self.fanout_log = []
            if self._members:
                self._fan_out(self._members, log, b"".join(log))
            if self._event_members:
                events = [self.event_line(frame) for frame in log]
                self._fan_out(self._event_members, events, b"".join(events))
        self._event_memo.clear()
        end = self._flushed_at = loop.time()
        cost = end - start
        self._flush_pause = min(cost * FLUSH_PAUSE_SCALE, FLUSH_PAUSE_MAX) if cost >= FLUSH_PAUSE_FROM else 0.0

    @staticmethod
    def _fan_out(members: dict[ChatConnection, None], log: list[bytes], shared: bytes) -> None:
        """Each member's part of this flush's log: all of it (``shared``), or what follows its own frame."""
        n = len(log)
        for conn in list(members):
            pos = conn.log_pos
            if pos:
                conn.log_pos = 0
                if pos < n:
                    conn.take_log(log, pos, shared)
            else:
                conn.take_log(log, 0, shared)

    def event_line(self, frame: bytes) -> bytes:
        """A frame as its JSON event line, translated once per flush for every JSON connection."""
        line = self._event_memo.get(frame)
        if line is None:
            try:
                line = event_lines(frame)
            except Exception:
                # Our bug, not the peer's: log it, tell the peer only that it happened.
                log.exception("could not write %r as a JSON event", frame[:80])
                line = (encode_event(error_event(str(ErrorReason.INTERNAL), "internal server error")) + "\n").encode()
            self._event_memo[frame] = line
        return line

    def events_of(self, frames: list[bytes]) -> bytes:
        """A JSON connection's own queued frames (replies, whispers, its part of the log), as events."""
        event_line = self.event_line
        return b"".join([event_line(frame) for frame in frames])

    # ------------------------------------------------------------ fan-out

    def publish(self, data: bytes, exclude: Member | None) -> None:
        """The room's fan-out: ``data`` for every joined connection but ``exclude``.

        One append, whatever the size of the room: the next flush writes the log
        to each member. ``exclude`` (the sender, or a leaver) first takes what the
        log already holds for it, then skips this entry.
        """
        log = self.fanout_log
        if exclude is not None and (exclude in self._members or exclude in self._event_members):
            conn = exclude  # narrowed to ChatConnection by the membership test
            conn.catch_up()
            log.append(data)
            conn.log_pos = len(log)
        else:
            log.append(data)
        if self._flush_handle is None:
            self._schedule_flush()

    def enter(self, conn: ChatConnection) -> None:
        """``conn`` joined the room: it takes the log from here on."""
        conn.log_pos = len(self.fanout_log)
        (self._event_members if conn.events else self._members)[conn] = None

    def exit(self, conn: ChatConnection) -> None:
        """``conn`` left the room or is gone: no more of the log for it."""
        self._members.pop(conn, None)
        self._event_members.pop(conn, None)
        conn.log_pos = NOT_IN_ROOM

    def _sweep(self) -> None:
        """Forget per-address history older than the rate window, once a window."""
        self.address_limits.sweep(self.loop.time())
        self._sweeper = self.loop.call_later(AddressLimits.WINDOW, self._sweep)

    def forget(self, conn: ChatConnection) -> None:
        """``conn`` is closed."""
        self.connections.discard(conn)
        if self.closing and not self.connections:
            self._drained.set()

    # ------------------------------------------------------------ logging

    def log_connected(self, name: str, address: str) -> None:
        self.stats.joins += 1
        log.info("%s [%s]", text("log_connected", self.config.lang, id=name), address,
                 extra={"event": "join", "user": name, "address": address})

    def log_disconnected(self, name: str, address: str) -> None:
        log.info("%s [%s]", text("log_disconnected", self.config.lang, id=name), address,
                 extra={"event": "leave", "user": name, "address": address})
