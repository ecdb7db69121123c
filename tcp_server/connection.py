"""One client connection: asyncio Protocol around the pure Session.

Hot path notes: ``send`` only appends to a list; the server flushes every
connection that got data once per event-loop turn, with one ``transport.write``
of everything queued. So a broadcast to N users costs N list appends, and each
user gets one syscall per turn however many messages arrived in it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Union

from .protocol.codes import ErrorReason, OutputFormat
from .protocol.decoder import FrameReader, client_frame_reader
from .protocol.frames import ClientFrame, FrameError, GatewayHello, Ping, SetFormat, encode_error
from .protocol.limits import TokenBucket
from .protocol.session import Outcome, Session

if TYPE_CHECKING:
    from .server import ChatServer

log = logging.getLogger("tcp_server")

# A connection over its per-address limit may still be a trusted gateway that is
# about to name the real user with 000; it gets this long to do so.
GATEWAY_GRACE = 2.0

NOT_IN_ROOM = 1 << 62
"""``log_pos`` of a connection outside the room: past any log, so it never takes from it."""


def _set_keepalive(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 5)):
            opt = getattr(socket, name, None)
            if opt is not None:
                sock.setsockopt(socket.IPPROTO_TCP, opt, value)
    except OSError:  # pragma: no cover - platform without these options
        pass


class ChatConnection(asyncio.Protocol):
    """A line-framed client on the main port."""

    __slots__ = (
        "server", "transport", "session", "reader", "out", "counted_address",
        "timer", "closing", "bucket", "strikes", "paused", "over_limit", "log_pos", "events",
    )

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.reader: FrameReader[ClientFrame] = self._make_reader()
        self.out: list[bytes] = []
        self.counted_address: str | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closing = False
        cfg = server.config
        self.bucket: TokenBucket | None = (
            TokenBucket(cfg.flood_rate, cfg.flood_burst, server.loop.time()) if cfg.flood_rate > 0 else None
        )
        self.strikes = 0
        self.paused = False
        self.over_limit = False
        # How much of the server's fan-out log is already in ``out`` (or not for us).
        self.log_pos = NOT_IN_ROOM
        self.events = False  # 007#json: written as JSON events, not frames (see ChatServer.events_of)

    def _make_reader(self) -> FrameReader[ClientFrame]:
        return client_frame_reader(self.server.config.max_frame)

    # ------------------------------------------------------------ lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        server = self.server
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else "unknown"
        self.session = Session(server.room, self, address, server.config.gateway_secret)
        server.connections.add(self)
        if server.config.keepalive:
            _set_keepalive(transport)
        if len(server.connections) > server.config.max_clients or server.closing:
            self.refuse(ErrorReason.BUSY, "too many connections")
            return
        now = server.loop.time()
        if server.address_limits.admit(address, now):
            self.counted_address = address
            self.timer = server.loop.call_later(server.config.join_timeout, self._join_timeout)
        else:
            self.over_limit = True
            self.timer = server.loop.call_later(GATEWAY_GRACE, self._refuse_busy)

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        server.forget(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.out.clear()
        self.closing = True
        name = self.session.drop()
        server.exit(self)
        if name is not None:
            server.log_disconnected(name, self.session.address)
        if self.counted_address is not None:
            server.address_limits.release(self.counted_address, server.loop.time())
            self.counted_address = None
        self.transport = None

    # ------------------------------------------------------------ output

    def send(self, data: bytes) -> None:
        """Queue one frame; written at the end of this loop turn."""
        if self.log_pos < len(self.server.fanout_log):
            self.catch_up()  # room frames logged before this one come first
        out = self.out
        if not out:
            if self.closing:
                return
            self.server.mark_dirty(self)
        out.append(data)

    def catch_up(self) -> None:
        """Move the room's frames logged since our last write into ``out``, ahead of what comes next."""
        log = self.server.fanout_log
        pos = self.log_pos
        if pos < len(log):
            self.log_pos = len(log)
            if self.closing:
                return
            out = self.out
            if not out:
                self.server.mark_dirty(self)
            out += log[pos:]

    def take_log(self, log: list[bytes], pos: int, shared: bytes) -> None:
        """A flush's room frames from ``pos`` on, for a member with nothing else queued.

        ``shared`` is the whole log joined once for every member: the common case
        costs this call and one ``transport.write``.
        """
        transport = self.transport
        if transport is None or self.closing:
            return
        transport.write(b"".join(log[pos:]) if pos else shared)
        if transport.get_write_buffer_size() > self.server.config.max_queue:
            self.overflow()

    def flush(self) -> None:
        log = self.server.fanout_log
        if self.log_pos < len(log):
            if not self.closing:
                self.out += log[self.log_pos:]
            self.log_pos = len(log)
        out = self.out
        transport = self.transport
        if not out or transport is None:
            out.clear()
            return
        if self.events:
            transport.write(self.server.events_of(out))
        else:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()
        if transport.get_write_buffer_size() > self.server.config.max_queue and not self.closing:
            self.overflow()

    def overflow(self) -> None:
        """A reader too slow for its queue: drop it so it cannot hold anyone up."""
        name = self.session.name or "-"
        log.warning("dropping %s (%s): output queue over %d bytes", name, self.session.address,
                    self.server.config.max_queue)
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def close_after_flush(self) -> None:
        self.closing = True
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def refuse(self, reason: ErrorReason, detail: str) -> None:
        self.send(encode_error(reason, detail))
        self.close_after_flush()

    def _join_timeout(self) -> None:
        self.timer = None
        if not self.session.joined and not self.closing:
            self.refuse(ErrorReason.NOT_JOINED, "join deadline passed")

    def _refuse_busy(self) -> None:
        self.timer = None
        if not self.closing:
            self.refuse(ErrorReason.BUSY, "too many connections from your address")

    # ------------------------------------------------------------ input

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.handle_items(self.reader.feed(data))
        except Exception:
            # Our bug, not the peer's: log it, tell the peer only that it happened.
            log.exception("internal error while handling %s", self.session.address)
            self.send(encode_error(ErrorReason.INTERNAL, "internal server error"))

    def handle_items(self, items: list[Union[ClientFrame, FrameError]]) -> None:
        bucket = self.bucket
        session = self.session
        for item in items:
            if self.closing:
                return
            if self.over_limit:
                if not isinstance(item, (GatewayHello, SetFormat)):  # a gateway's first frames
                    self._refuse_busy()
                    return
            elif bucket is not None and not isinstance(item, (Ping, GatewayHello, SetFormat)):  # control: free
                if not bucket.take(self.server.loop.time()):
                    self._flooding()
                    continue
                self.strikes = 0
            name_before = session.name
            outcome = session.handle(item)
            if outcome is Outcome.CONTINUE:
                continue
            if outcome is Outcome.JOINED:
                self._joined()
            elif outcome is Outcome.CLOSE:
                self.server.exit(self)
                if name_before is not None:  # left with 004
                    self.server.log_disconnected(name_before, session.address)
                self.close_after_flush()
                return
            elif outcome is Outcome.GATEWAY:
                self._rehome(session.address)
            elif outcome is Outcome.FORMAT:
                self.set_output(session.output)
        if bucket is not None and not self.paused and bucket.tokens < 1.0 and self.transport is not None:
            # Pace a flooder's reads: the rest waits in its own socket buffer.
            self.paused = True
            self.transport.pause_reading()
            self.server.loop.call_later(bucket.wait_time(), self._resume)

    def _resume(self) -> None:
        self.paused = False
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    def _flooding(self) -> None:
        self.strikes += 1
        if self.strikes > self.server.config.flood_kick:
            log.warning("dropping %s (%s): flooding", self.session.name or "-", self.session.address)
            self.refuse(ErrorReason.FLOOD, "disconnected for flooding")
        else:
            self.send(encode_error(ErrorReason.FLOOD, "too many messages; this one was not delivered"))

    def _joined(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        assert self.session.name is not None
        self.server.enter(self)
        self.server.log_connected(self.session.name, self.session.address)

    def set_output(self, output: OutputFormat) -> None:
        """``007``: frames or JSON events from now on (always before the join, so before any fan-out)."""
        self.events = output is OutputFormat.JSON

    def _rehome(self, real_address: str) -> None:
        """A trusted gateway named the real user: count limits on that address."""
        server = self.server
        now = server.loop.time()
        if self.counted_address is not None:
            server.address_limits.release(self.counted_address, now)
            self.counted_address = None
        self.over_limit = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not server.address_limits.admit(real_address, now):
            self.refuse(ErrorReason.BUSY, "too many connections from your address")
            return
        self.counted_address = real_address
        self.timer = server.loop.call_later(server.config.join_timeout, self._join_timeout)


class LegacyConnection(ChatConnection):
    """The seed's original client: no framing, Korean text out.

    Each read is one frame, as the seed's server assumed (a read holding LFs is
    split on them, so ``nc`` works too). Output is the seed's exact text: 101
    and 102 bare, an invalid ID answered with 101 so that client asks again.
    """

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        # A read is a frame: end it with LF and let the line decoder do the rest.
        if not data.endswith(b"\n"):
            data += b"\n"
        super().data_received(data)

    def flush(self) -> None:
        from .legacy import render_legacy_batch  # local: keeps the hot module lean

        log = self.server.fanout_log
        if self.log_pos < len(log):
            if not self.closing:
                self.out += log[self.log_pos:]
            self.log_pos = len(log)
        out = self.out
        transport = self.transport
        if not out or transport is None:
            out.clear()
            return
        pieces = render_legacy_batch(out)
        out.clear()
        for piece in pieces:
            transport.write(piece)
        if transport.get_write_buffer_size() > self.server.config.max_queue and not self.closing:
            self.overflow()

    def set_output(self, output: OutputFormat) -> None:
        """The seed's client reads Korean text: the legacy port has no other output."""
        self.session.output = OutputFormat.FRAMES
        if output is not OutputFormat.FRAMES:
            self.send(encode_error(ErrorReason.UNKNOWN_CODE, "007 is not available on the legacy port"))

    def take_log(self, log: list[bytes], pos: int, shared: bytes) -> None:
        """The seed's client gets each frame rendered as its own text: no shared bytes."""
        if self.closing:
            return
        self.out += log[pos:]
        self.flush()
