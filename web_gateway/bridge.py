"""One WebSocket bridged to one backend TCP connection.

The backend connection is opened on join and closed with the WebSocket (or
after the user leaves). Browser messages become frames through
:mod:`.translate`. The backend asks the server for JSON events with
``007#json`` (the server encodes a broadcast once for every gateway user), so
the way back is a relay: the whole lines of each read go to the page as one
WebSocket message, written from the read's own callback. A page that reads
slower than the room talks pauses its backend, and the server's own slow-reader
rule (its output queue bound) decides the rest.

Lifecycle (PROTOCOL.md, "Browser JSON"):

- the page closes or vanishes (no pong within half a heartbeat) → ``004`` to
  the server, so the others see the leave, then the TCP connection closes; but
  when the server gave this session a resume token (a ``session`` event), the
  TCP connection just closes: the server keeps the session for its grace, and
  the page resumes it after a reload, a dropped WebSocket or a gateway restart
  (the gateway relays the token and never logs it);
- the server drops or restarts → ``status: disconnected`` to the page and the
  WebSocket closes with 1013 (try again later): the page reconnects and rejoins;
- the gateway stops → ``status: shutdown``, ``004`` (none for a resumable session), close 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from aiohttp import WSCloseCode, WSMsgType, web

from tcp_server.protocol import (
    GatewayHello,
    Leave,
    OutputFormat,
    SetFormat,
    serialize,
)
from tcp_server.protocol.client_side import Answer, ClientSide, Connect, Transmit
from tcp_server.protocol.decoder import CLIENT_SIDE_MAX_LINE
from tcp_server.protocol.events import to_event
from tcp_server.protocol.frames import ChangePassword, ClientFrame, Login, Register
from tcp_server.protocol.limits import CONTROL_BURST, CONTROL_RATE, AddressBuckets, TokenBucket
from tcp_server.protocol.table import Budget, spec_of
from tcp_server.tls import backend_context

from .backends import Address, BackendPool, marks_down
from .config import GatewayConfig
from .metrics import GatewayStats, close_cause
from .online import Online, RoomCounter
from .presence import Presence
from .relay import EventRelay, LineTooLong
from .translate import (
    Event,
    Refusal,
    decode_message,
    encode_events,
    error_event,
    status_event,
    to_frame,
)
from .wsframe import text_frame_header

log = logging.getLogger("web_gateway")

LEAVE_GRACE = 2.0
"""Seconds to wait for the server's 102 after a 004 before closing anyway."""
MAX_EVENT_LINE = 2 * CLIENT_SIDE_MAX_LINE + 256
"""Longest event line the gateway waits for (escaping at most doubles a frame; control characters are refused)."""
PAGE_BUFFER_HIGH = 1 << 20
"""Bytes queued for a page beyond which its backend stops being read (resumed below PAGE_BUFFER_LOW)."""
PAGE_BUFFER_LOW = 1 << 18
PAGE_DRAIN_POLL = 0.05
PAGE_CLOSE_GRACE = 1.0
"""Seconds a closing WebSocket may take to flush its close frame before its socket is aborted."""
_TCP_ESTABLISHED = 1  # tcp_info.tcpi_state (Linux)


def peer_has_closed(transport: asyncio.BaseTransport) -> bool:
    """Whether the other end of a TCP socket we are not reading has sent its FIN or RST.

    A paused transport reports nothing, so the kernel is asked: ``TCP_INFO``'s
    state leaves ESTABLISHED on either (Linux); elsewhere a peek can still see a
    reset or an EOF that no data precedes.
    """
    sock = transport.get_extra_info("socket")
    if sock is None:
        return True
    tcp_info = getattr(socket, "TCP_INFO", None)
    try:
        if tcp_info is not None:
            return bool(sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 1)[0] != _TCP_ESTABLISHED)
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"")
    except BlockingIOError:
        return False
    except OSError:
        return True


class Backend(asyncio.Protocol):
    """The TCP connection of one bridge: server bytes go to the page from ``data_received``.

    No task, stream or lock per user: a read is written to the page's socket in
    the same callback, and what the page sends is coalesced into one write per
    event-loop turn (BENCHMARKS.md, "Gateway").
    """

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.transport: asyncio.Transport | None = None
        # The protocol's client side of this connection: joined as whom, resumable, left (its EOF expected).
        self.side = ClientSide(connected=False)
        self.relay = EventRelay(MAX_EVENT_LINE, self.side)  # partial lines, the first frames, the events it must hear
        self.out: list[bytes] = []
        self.paused = False
        self.paused_at = 0.0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None  # telling the page after the server closed
        self.server: Address | None = None  # which server this is (for the pool's counts)
        self.server_closed = False  # the server closed first

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.side.opened()

    def data_received(self, data: bytes) -> None:
        self.bridge.from_server(self, data)

    def eof_received(self) -> bool | None:
        self.server_closed = True
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("chat server connection of %s lost: %s", self.bridge.address, exc)
        self.transport = None
        self.out.clear()
        pool = self.bridge.pool
        side = self.side
        if pool is not None and self.server is not None:
            pool.closed(self.server)
            if (not side.left and side.id is None
                    and marks_down(self.server_closed, exc is not None, side.refusal)):
                pool.failed(self.server)  # gone, or refused everyone before the join (busy): skip it a while
            self.server = None
        side.closed()
        if not self.closed.done():
            self.closed.set_result(None)
        self.task = asyncio.get_running_loop().create_task(
            self.bridge.backend_closed(self), name=f"backend-closed {self.bridge.address}")

    @property
    def resumable(self) -> bool:
        """The server sent a session token: closing without 004 keeps the session for a resume."""
        return self.side.token is not None

    def write(self, data: bytes) -> None:
        """Queue a frame for the server; everything queued in one loop turn goes in one write."""
        if self.transport is None or self.transport.is_closing():
            return
        out = self.out
        out.append(data)
        if len(out) == 1:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        out = self.out
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def pause(self) -> None:
        """The page reads slower than the server writes: let the server's queue take the strain."""
        if not self.paused and self.transport is not None:
            self.paused = True
            loop = asyncio.get_running_loop()
            self.paused_at = loop.time()
            self.transport.pause_reading()
            loop.call_later(PAGE_DRAIN_POLL, self._maybe_resume)

    def _maybe_resume(self) -> None:
        """While paused: resume once the page has read, or give up on a page or server that is gone.

        Paused, this connection is not read, so the server dropping it (the
        slow-reader rule) would go unseen and its buffers held for as long as
        the page stays; the kernel is asked instead. A page that reads nothing
        for ``--stall-timeout`` is closed.
        """
        transport = self.transport
        if transport is None or not self.paused:
            return
        if self.bridge.page_buffered() <= PAGE_BUFFER_LOW:
            self.resume()
            return
        bridge = self.bridge
        if peer_has_closed(transport):
            bridge.drop_page("the chat server closed its connection while the page was not reading")
            self.resume()  # read the rest and the EOF: the connection is released at once
            return
        loop = asyncio.get_running_loop()
        if loop.time() - self.paused_at > bridge.config.stall_timeout:
            bridge.drop_page(f"the page read nothing for {bridge.config.stall_timeout:.0f} s")
            return
        loop.call_later(PAGE_DRAIN_POLL, self._maybe_resume)

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    async def close(self, timeout: float = 2.0) -> None:
        """Send what is queued and close the socket."""
        self.flush()
        if self.transport is not None:
            self.transport.close()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self.closed), timeout)
        if self.transport is not None:
            self.transport.abort()


class Bridge:
    """A browser's WebSocket and, while it takes part in the chat, its backend connection."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        config: GatewayConfig,
        address: str,
        clock: Callable[[], float],
        page: asyncio.Transport,
        stats: GatewayStats | None = None,
        shared: tuple[AddressBuckets, str] | None = None,
        pool: BackendPool | None = None,
        online: Online | None = None,
        presence: Presence | None = None,
        secure: bool = True,
    ) -> None:
        self.stats = stats if stats is not None else GatewayStats()
        self.secure = secure  # passwords may come here: TLS, loopback, or a trusted proxy's https
        self.ws = ws
        self.pool = pool  # several servers: which to try first
        # The page's socket, for writing server output straight from a backend read (see send_frame).
        self.page = page
        self.config = config
        self.address = address
        self.clock = clock
        self.bucket = TokenBucket(config.rate, config.burst, clock()) if config.rate > 0 else None
        # Pings apart (the page acks each message with one): the server's control budget, not a message.
        self.control = TokenBucket(CONTROL_RATE, CONTROL_BURST, clock()) if config.rate > 0 else None
        # The budget every WebSocket of this address (its limiting key) draws on too.
        self.shared = shared
        self.backend: Backend | None = None
        self.finished = False
        self.online = online if online is not None else Online()
        self.room = RoomCounter(self.online)  # the room's size as this backend hears it (online.py)
        self.presence = presence  # asks the server when no joined bridge counts (presence.py)

    @property
    def name(self) -> str | None:
        """The user's ID as the server confirmed it (100), while in the room on the current backend."""
        backend = self.backend
        return backend.side.id if backend is not None and backend.side.joined else None

    # ------------------------------------------------------------ to the page

    async def send(self, events: list[Event]) -> bool:
        """Send events as one NDJSON message; False if the page is gone."""
        return bool(events) and self.send_frame(encode_events(events).encode())

    def send_frame(self, payload: bytes | memoryview) -> bool:
        """One WebSocket text message (UTF-8 NDJSON) to the page now; False if the page is gone.

        Written as one unmasked frame straight to the page's transport:
        synchronous, so a backend read becomes a page write within one
        callback and every message keeps its order. A page that falls behind
        by PAGE_BUFFER_HIGH pauses its backend (flow control).
        """
        page = self.page
        if self.ws.closed or page.is_closing():
            return False
        page.writelines((text_frame_header(len(payload)), payload))  # no copy of the payload
        self.stats.to_page += 1
        if page.get_write_buffer_size() > PAGE_BUFFER_HIGH and self.backend is not None:
            self.backend.pause()
        return True

    def page_buffered(self) -> int:
        page = self.page
        return 0 if page.is_closing() else page.get_write_buffer_size()

    async def _page_drained(self) -> bool:
        """Stop reading a page that does not read what it is sent (its pongs, its errors) until it does.

        Every reply the gateway writes counts against the same buffer as the
        room's output, so a page that pings without reading holds at most
        PAGE_BUFFER_HIGH; TCP then holds up its sending. False (and the page
        closed) after ``--stall-timeout``.
        """
        deadline = self.clock() + self.config.stall_timeout
        while self.page_buffered() > PAGE_BUFFER_LOW:
            if self.clock() > deadline:
                self.drop_page(f"the page read nothing for {self.config.stall_timeout:.0f} s")
                return False
            await asyncio.sleep(PAGE_DRAIN_POLL)  # no event for "the peer read": the kernel's buffer is polled
        return not self.page.is_closing()

    def drop_page(self, why: str) -> None:
        """Close a page that will not read: its socket is aborted (its buffers freed), and then, as
        for any page gone, ``run`` sends the user's 004 and closes the backend."""
        page = self.page
        unread = page.get_write_buffer_size()
        if page.is_closing() and not unread:
            return
        log.warning("closing the page of %s (%s): %s; %d bytes unread", self.address, self.name or "not joined",
                    why, unread)
        page.abort()  # a closing transport would wait for the page to read what it holds

    # ------------------------------------------------------------ the session

    async def run(self) -> None:
        """Relay until the WebSocket closes, then leave and close the backend."""
        cfg = self.config
        hello = status_event("connected", rate=cfg.rate, burst=cfg.burst, max_message=cfg.max_message)
        # The bridges' own count, or (no page of ours in the room) the server's answer: presence.py.
        online = await self.presence.count(self.address) if self.presence is not None else self.online.current()
        if online is not None:
            hello["online"] = online
        await self.send([hello])
        try:
            async for msg in self.ws:
                if msg.type is WSMsgType.TEXT:
                    self.stats.from_page += 1
                    await self.on_text(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await self.send([error_event("bad-json", "binary messages are not accepted; send JSON text")])
        finally:
            await self.finish()
            if (cause := close_cause(self.ws)) is not None:
                self.stats.page_dropped(cause)
            if self.ws.close_code not in (None, WSCloseCode.OK, WSCloseCode.GOING_AWAY):
                log.info("page %s gone (%s)", self.address, self.ws.close_code)

    async def on_text(self, data: str) -> None:
        if self.page_buffered() > PAGE_BUFFER_HIGH and not await self._page_drained():
            return
        msg = decode_message(data)
        frame = to_frame(msg, self.name, self.config.max_message) if not isinstance(msg, Refusal) else msg
        # Each message costs a token from its frame's budget, as on the server: a ping (the page's
        # ack of its own message) the control bucket, everything else (refusals too) the message one.
        control = not isinstance(frame, Refusal) and spec_of(frame).budget is Budget.CONTROL
        if not await self._charge(control):
            return
        if isinstance(frame, Refusal):
            await self.send([frame.event()])
            return
        if not self.secure and isinstance(frame, (Login, Register, ChangePassword)):
            await self.send([error_event("needs-tls", "passwords are only accepted over https")])
            return
        # The client side says where it goes: on this backend; on a new one (no backend, or one that
        # is closing after 004: a join sent meanwhile); or nowhere (a ping answered here, a not-joined).
        backend = self.backend
        side = backend.side if backend is not None else ClientSide(connected=False)
        for effect in side.send(frame):
            match effect:
                case Transmit():
                    assert backend is not None
                    self._transmit(backend, effect.frame)
                case Answer():
                    await self.send([to_event(effect.frame)])
                case Connect():
                    backend = await self.open_backend()
                    if backend is None:
                        return
                    for again in backend.side.send(effect.frame):
                        if isinstance(again, Transmit):
                            self._transmit(backend, again.frame)

    def _transmit(self, backend: Backend, frame: ClientFrame) -> None:
        backend.write(serialize(frame))
        if isinstance(frame, Leave):
            # Out of the room from now on: the 102 and the close follow on that connection.
            self.room.stop()

    async def _charge(self, control: bool) -> bool:
        """A token from this page's bucket (and, for messages, its address's); False: refused, said."""
        now = self.clock()
        refused = ""
        if control:
            bucket = self.control
            if bucket is not None and not bucket.take(now):
                wait, refused = bucket.wait_time(), "too many pings; this one was not answered"
        else:
            bucket, shared = self.bucket, self.shared
            if bucket is not None and not bucket.take(now):
                wait, refused = bucket.wait_time(), "too many messages; this one was not delivered"
            elif shared is not None and not shared[0].take(shared[1], now):
                wait = shared[0].wait_time(shared[1])
                refused = "too many messages from your address; this one was not delivered"
        if not refused:
            return True
        await self.send([error_event("flood", refused, retry_after=round(wait, 3))])
        # Pace this page's reads a little, as the server does: the rest waits in its socket.
        await asyncio.sleep(min(wait, 1.0))
        return False

    # ------------------------------------------------------------ the backend

    async def open_backend(self) -> Backend | None:
        loop = asyncio.get_running_loop()
        tls = backend_context(self.config.server_tls, self.config.server_ca)
        pool = self.pool
        backend: Backend | None = None
        for host, port in pool.order() if pool is not None else [self.config.server]:
            try:
                _, made = await asyncio.wait_for(
                    loop.create_connection(lambda: Backend(self), host, port, ssl=tls), self.config.connect_timeout)
            except (OSError, TimeoutError) as exc:
                self.stats.backend_failures += 1
                log.warning("chat server %s:%d unavailable for %s: %s", host, port, self.address, exc)
                if pool is not None:
                    pool.failed((host, port))  # skipped for a while: the next user tries another first
                continue
            if pool is not None:
                pool.opened((host, port))
                made.server = (host, port)
            backend = made
            break
        if backend is None:
            self.stats.page_dropped("backend_unavailable")
            await self.send([
                error_event("backend-unavailable", "the chat server cannot be reached"),
                status_event("disconnected", reason="backend-unavailable"),
            ])
            await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"chat server unavailable")
            return None
        self.stats.backend_connects += 1
        # JSON events from the first byte on, so that even a refused 000 reads as an event.
        backend.write(serialize(SetFormat(OutputFormat.JSON)))
        if self.config.gateway_secret:
            backend.write(serialize(GatewayHello(self.config.gateway_secret, self.address)))
        self.backend = backend
        return backend

    def from_server(self, backend: Backend, data: bytes) -> None:
        """A backend read of JSON event lines: its whole lines go to the page as one message.

        The server already wrote every frame as its event (``007#json``), a
        broadcast encoded once for all the gateway's users, so a read costs no
        Python work per line here: find the last LF, write one WebSocket frame.
        Until the join is confirmed a read is scanned (in C) for ``joined``,
        and one that holds it is looked at line by line. No other event changes
        this bridge's state: the only ``left`` answers a ``004`` the bridge sent
        itself, having already marked that backend as left and forgotten the name.
        """
        if self.finished:
            return  # leaving: only the 102 and the EOF matter now, and they need no parsing
        relay = backend.relay
        try:
            whole = relay.feed(data)
        except LineTooLong as exc:
            log.warning("%s for %s; closing", exc, self.address)
            if backend.transport is not None:
                backend.transport.abort()
            return
        if whole is None:
            return
        if backend is self.backend and backend.side.joined:
            self.room.feed(backend.side, relay.read, relay.read_end)
        self.send_frame(whole)

    async def backend_closed(self, backend: Backend) -> None:
        """The server closed: expected after 102 or before a join, otherwise tell the page."""
        was_in_room = self.backend is backend and backend.side.id is not None
        if self.backend is backend:
            self.backend = None
            self.room.stop()
        if self.finished or backend.side.left or not was_in_room:
            return  # the page already has the reason (102, or a 109 refusing the join)
        log.info("chat server closed the connection of %s; telling the page", self.address)
        self.stats.page_dropped("backend_closed")
        await self.send([status_event("disconnected", reason="backend-closed")])
        await self.close_page(WSCloseCode.TRY_AGAIN_LATER, b"chat server connection lost")

    # ------------------------------------------------------------ the end

    async def finish(self) -> None:
        """Leave politely (004) and close the backend; idempotent. A resumable session is
        not left: closing its connection parks it on the server for the page to resume."""
        if self.finished:
            return
        self.finished = True
        self.room.stop()
        backend = self.backend
        self.backend = None
        if backend is None:
            return
        backend.resume()  # a paused backend must be read again to see the 102 and the EOF
        side = backend.side
        if side.joined and side.id is not None and not backend.resumable:
            for effect in side.send(Leave(side.id)):
                if isinstance(effect, Transmit):
                    backend.write(serialize(effect.frame))
            backend.flush()
            # The server answers 102 and closes; waiting for that keeps the 004 from being cut off.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(backend.closed), LEAVE_GRACE)
        await backend.close()

    async def shutdown(self) -> None:
        """The gateway is stopping: tell the page, leave, close; a page that does not read is aborted."""
        await self.send([status_event("shutdown")])
        await self.finish()
        await self.close_page(WSCloseCode.GOING_AWAY, b"gateway shutting down")

    async def close_page(self, code: int, message: bytes) -> None:
        """Close the WebSocket, within PAGE_CLOSE_GRACE: a page that reads nothing cannot take the
        close frame (the write waits for it), so its socket is aborted instead."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code, message=message), PAGE_CLOSE_GRACE)
        if self.page.get_write_buffer_size():  # closing or not, it would wait for the page to read
            self.page.abort()
