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
  the server, so the others see the leave, then the TCP connection closes;
- the server drops or restarts → ``status: disconnected`` to the page and the
  WebSocket closes with 1013 (try again later): the page reconnects and rejoins;
- the gateway stops → ``status: shutdown``, ``004``, close 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from aiohttp import WSCloseCode, WSMsgType, web

from tcp_server.protocol import (
    FrameError,
    GatewayHello,
    Join,
    Leave,
    OutputFormat,
    Ping,
    SetFormat,
    parse_server,
    serialize,
)
from tcp_server.protocol.decoder import CLIENT_SIDE_MAX_LINE
from tcp_server.protocol.encoders import JSON
from tcp_server.protocol.events import JOINED_MARK
from tcp_server.protocol.limits import TokenBucket

from .backends import Address, BackendPool
from .config import GatewayConfig
from .translate import (
    Event,
    Refusal,
    decode_message,
    encode_event,
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


class Backend(asyncio.Protocol):
    """The TCP connection of one bridge: server bytes go to the page from ``data_received``.

    No task, stream or lock per user: a read is written to the page's socket in
    the same callback, and what the page sends is coalesced into one write per
    event-loop turn (BENCHMARKS.md, "Gateway").
    """

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.transport: asyncio.Transport | None = None
        self.partial = b""  # the start of an event line whose LF has not come yet
        self.events_seen = False  # the server has answered 007#json: every line from here on is an event
        self.out: list[bytes] = []
        self.left = False  # the server said 102: its EOF is expected
        self.paused = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None  # telling the page after the server closed
        self.server: Address | None = None  # which server this is (for the pool's counts)
        self.server_closed = False  # the server closed first

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

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
        if pool is not None and self.server is not None:
            pool.closed(self.server)
            if (self.server_closed or exc is not None) and not self.left and self.bridge.name is None:
                pool.failed(self.server)  # refused before the join (busy, unavailable) or gone: skip it a while
            self.server = None
        if not self.closed.done():
            self.closed.set_result(None)
        self.task = asyncio.get_running_loop().create_task(
            self.bridge.backend_closed(self), name=f"backend-closed {self.bridge.address}")

    def hold(self, data: bytes) -> None:
        """Keep an unfinished event line for the next read, or give up on a server gone wrong."""
        if len(data) > MAX_EVENT_LINE:
            log.warning("event line of over %d bytes from the chat server for %s; closing",
                        MAX_EVENT_LINE, self.bridge.address)
            self.partial = b""
            if self.transport is not None:
                self.transport.abort()
            return
        self.partial = data

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
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(PAGE_DRAIN_POLL, self._maybe_resume)

    def _maybe_resume(self) -> None:
        if self.transport is None or not self.paused:
            return
        if self.bridge.page_buffered() > PAGE_BUFFER_LOW:
            asyncio.get_running_loop().call_later(PAGE_DRAIN_POLL, self._maybe_resume)
            return
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
        pool: BackendPool | None = None,
    ) -> None:
        self.ws = ws
        self.pool = pool  # several servers: which to try first
        # The page's socket, for writing server output straight from a backend read (see send_frame).
        self.page = page
        self.config = config
        self.address = address
        self.clock = clock
        self.bucket = TokenBucket(config.rate, config.burst, clock()) if config.rate > 0 else None
        self.name: str | None = None  # as the server confirmed it with 100
        self.backend: Backend | None = None
        self.finished = False

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
        if page.get_write_buffer_size() > PAGE_BUFFER_HIGH and self.backend is not None:
            self.backend.pause()
        return True

    def page_buffered(self) -> int:
        page = self.page
        return 0 if page.is_closing() else page.get_write_buffer_size()

    # ------------------------------------------------------------ the session

    async def run(self) -> None:
        """Relay until the WebSocket closes, then leave and close the backend."""
        cfg = self.config
        await self.send([status_event("connected", rate=cfg.rate, burst=cfg.burst, max_message=cfg.max_message)])
        try:
            async for msg in self.ws:
                if msg.type is WSMsgType.TEXT:
                    await self.on_text(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await self.send([error_event("bad-json", "binary messages are not accepted; send JSON text")])
        finally:
            await self.finish()
            if self.ws.close_code not in (None, WSCloseCode.OK, WSCloseCode.GOING_AWAY):
                log.info("page %s gone (%s)", self.address, self.ws.close_code)

    async def on_text(self, data: str) -> None:
        bucket = self.bucket
        if bucket is not None and not bucket.take(self.clock()):
            wait = bucket.wait_time()
            await self.send([error_event("flood", "too many messages; this one was not delivered",
                                         retry_after=round(wait, 3))])
            # Pace this page's reads a little, as the server does: the rest waits in its socket.
            await asyncio.sleep(min(wait, 1.0))
            return
        msg = decode_message(data)
        if isinstance(msg, Refusal):
            await self.send([msg.event()])
            return
        frame = to_frame(msg, self.name, self.config.max_message)
        if isinstance(frame, Refusal):
            await self.send([frame.event()])
            return
        backend = self.backend
        if backend is not None and backend.left:
            backend = None  # after 102 the server is closing that one; a new join needs a new one
        if isinstance(frame, Ping) and backend is None:
            await self.send([{"type": "pong", "token": frame.token}])  # nothing to ask the server yet
            return
        if isinstance(frame, Join) and backend is None:
            backend = await self.open_backend()
            if backend is None:
                return
        if backend is None:  # 002-005 need a name, and a name comes with a backend; never reached
            await self.send([error_event("not-joined", "join first")])
            return
        backend.write(serialize(frame))
        if isinstance(frame, Leave):
            # Out of the room from now on: the 102 and the close follow on that connection,
            # and a join sent meanwhile goes on a new one.
            backend.left = True
            self.name = None

    # ------------------------------------------------------------ the backend

    async def open_backend(self) -> Backend | None:
        loop = asyncio.get_running_loop()
        pool = self.pool
        backend: Backend | None = None
        for host, port in pool.order() if pool is not None else [self.config.server]:
            try:
                _, made = await asyncio.wait_for(
                    loop.create_connection(lambda: Backend(self), host, port), self.config.connect_timeout)
            except (OSError, TimeoutError) as exc:
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
            await self.send([
                error_event("backend-unavailable", "the chat server cannot be reached"),
                status_event("disconnected", reason="backend-unavailable"),
            ])
            await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"chat server unavailable")
            return None
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
        partial = backend.partial
        if partial:
            data = partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            backend.hold(data)
            return
        backend.hold(data[cut + 1:])
        whole: bytes | memoryview = memoryview(data)[:cut]
        if not backend.events_seen:
            whole = self._first_lines(backend, bytes(whole))
        if self.name is None and JOINED_MARK in data:
            self._track(backend, bytes(whole))
        if not self.finished:
            self.send_frame(whole)

    @staticmethod
    def _first_lines(backend: Backend, lines: bytes) -> bytes:
        """Until the server has switched to events, a line may still be a frame: translate those.

        The server reads ``007#json`` before anything else we send, so only what
        it says before reading at all (a busy or shutdown refusal) comes as a frame.
        """
        out: list[bytes] = []
        for line in lines.split(b"\n"):
            if line.startswith(b"{"):
                backend.events_seen = True
                out.append(line)
                continue
            try:
                out.append(JSON.encode(parse_server(line.decode()))[:-1])
            except (FrameError, UnicodeDecodeError) as exc:
                log.warning("unreadable line from the chat server: %s", exc)
                out.append(encode_event(error_event("internal", "the gateway could not read a server frame")).encode())
        return b"\n".join(out)

    def _track(self, backend: Backend, events: bytes) -> None:
        """This user's name, from its ``joined`` event."""
        if backend is not self.backend:
            return  # a connection being closed after 004 says nothing about the current one
        for line in events.split(b"\n"):
            if line.startswith(JOINED_MARK):
                try:
                    self.name = str(json.loads(line)["id"])
                except (ValueError, KeyError, TypeError):
                    log.warning("unreadable joined event from the chat server: %r", line[:80])

    async def backend_closed(self, backend: Backend) -> None:
        """The server closed: expected after 102 or before a join, otherwise tell the page."""
        was_in_room = self.backend is backend and self.name is not None
        if self.backend is backend:
            self.backend = None
            self.name = None
        if self.finished or backend.left or not was_in_room:
            return  # the page already has the reason (102, or a 109 refusing the join)
        log.info("chat server closed the connection of %s; telling the page", self.address)
        await self.send([status_event("disconnected", reason="backend-closed")])
        with contextlib.suppress(Exception):
            await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"chat server connection lost")

    # ------------------------------------------------------------ the end

    async def finish(self) -> None:
        """Leave politely (004) and close the backend; idempotent."""
        if self.finished:
            return
        self.finished = True
        backend = self.backend
        self.backend = None
        if backend is None:
            return
        if self.name is not None and not backend.left:
            backend.write(serialize(Leave(self.name)))
            backend.flush()
            self.name = None
            # The server answers 102 and closes; waiting for that keeps the 004 from being cut off.
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(backend.closed), LEAVE_GRACE)
        await backend.close()

    async def shutdown(self) -> None:
        """The gateway is stopping: tell the page, leave, close."""
        await self.send([status_event("shutdown")])
        await self.finish()
        with contextlib.suppress(Exception):
            await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"gateway shutting down")
