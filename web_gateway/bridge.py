"""One WebSocket bridged to one backend TCP connection.

The backend connection is opened on join and closed with the WebSocket (or
after the user leaves). Browser messages become frames through
:mod:`.translate`; everything the server sends in one read goes back as one
WebSocket message of NDJSON events, so a burst of chat costs one send.

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
import logging
from collections.abc import Callable

from aiohttp import WSCloseCode, WSMsgType, web

from tcp_server.protocol import (
    FrameError,
    GatewayHello,
    Join,
    Joined,
    Leave,
    Left,
    Ping,
    ServerFrame,
    serialize,
)
from tcp_server.protocol.decoder import CLIENT_SIDE_MAX_LINE, LineDecoder
from tcp_server.protocol.limits import TokenBucket

from .config import GatewayConfig
from .translate import (
    Event,
    LineTranslator,
    Refusal,
    decode_message,
    encode_event,
    encode_events,
    error_event,
    status_event,
    to_frame,
)

log = logging.getLogger("web_gateway")

READ_CHUNK = 65536
LEAVE_GRACE = 2.0
"""Seconds to wait for the server's 102 after a 004 before closing anyway."""


class Backend:
    """The TCP connection of one bridge, and the task relaying what it reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.task: asyncio.Task[None] | None = None
        self.left = False  # the server said 102: its EOF is expected

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    async def close(self, timeout: float = 2.0) -> None:
        """Stop relaying and close the socket."""
        task = self.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout)
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), timeout)


class Bridge:
    """A browser's WebSocket and, while it takes part in the chat, its backend connection."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        config: GatewayConfig,
        address: str,
        clock: Callable[[], float],
        translator: LineTranslator | None = None,
    ) -> None:
        self.ws = ws
        self.translator = translator or LineTranslator()  # the app shares one among all bridges
        self.config = config
        self.address = address
        self.clock = clock
        self.bucket = TokenBucket(config.rate, config.burst, clock()) if config.rate > 0 else None
        self.name: str | None = None  # as the server confirmed it with 100
        self.backend: Backend | None = None
        self.finished = False
        self._send_lock = asyncio.Lock()

    # ------------------------------------------------------------ to the page

    async def send(self, events: list[Event]) -> bool:
        """Send events as one NDJSON message; False if the page is gone."""
        return bool(events) and await self.send_text(encode_events(events))

    async def send_text(self, text: str) -> bool:
        """Send one already encoded NDJSON message; False if the page is gone."""
        if self.ws.closed:
            return False
        async with self._send_lock:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return False
        return True

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
        host, port = self.config.server
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=READ_CHUNK), self.config.connect_timeout)
        except (OSError, TimeoutError) as exc:
            log.warning("chat server %s:%d unavailable for %s: %s", host, port, self.address, exc)
            await self.send([
                error_event("backend-unavailable", "the chat server cannot be reached"),
                status_event("disconnected", reason="backend-unavailable"),
            ])
            await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"chat server unavailable")
            return None
        backend = Backend(reader, writer)
        if self.config.gateway_secret:
            backend.write(serialize(GatewayHello(self.config.gateway_secret, self.address)))
        self.backend = backend
        backend.task = asyncio.create_task(self._pump(backend), name=f"backend-pump {self.address}")
        return backend

    async def _pump(self, backend: Backend) -> None:
        """Server frames to the page until the server closes: one NDJSON message per read."""
        lines = LineDecoder(CLIENT_SIDE_MAX_LINE)
        try:
            while True:
                data = await backend.reader.read(READ_CHUNK)
                if not data:
                    break
                message = self._to_message(backend, lines, data)
                if message and not self.finished:
                    await self.send_text(message)
        except (ConnectionError, OSError) as exc:
            log.info("chat server connection of %s lost: %s", self.address, exc)
        await self._backend_closed(backend)

    def _to_message(self, backend: Backend, lines: LineDecoder, data: bytes) -> str:
        """One read as one NDJSON message (empty if it held no whole line).

        A read of whole lines that another bridge has already translated (the
        server writes the same fan-out chunk to every member) costs one lookup.
        """
        translator = self.translator
        whole = lines.at_line_start and data.endswith(b"\n")
        if whole:
            message = translator.chunk(data)
            if message is not None:
                return message
        out: list[str] = []
        shareable = whole
        for line in lines.feed(data):
            try:
                if isinstance(line, FrameError):
                    raise line
                encoded, frame = translator.translate(line)
            except FrameError as exc:
                log.warning("unreadable frame from the chat server: %s", exc)
                out.append(encode_event(error_event("internal", "the gateway could not read a server frame")))
                shareable = False
                continue
            if frame is not None:
                self._track(backend, frame)
                shareable = False  # 100 and 102 change this bridge's state: never skipped
            out.append(encoded)
        message = "\n".join(out)
        if shareable and message:
            translator.remember_chunk(data, message)
        return message

    def _track(self, backend: Backend, frame: ServerFrame) -> None:
        if backend is not self.backend:
            return  # a connection being closed after 004: its 102 says nothing about the current one
        if isinstance(frame, Joined):
            self.name = frame.id
        elif isinstance(frame, Left):
            backend.left = True
            self.name = None

    async def _backend_closed(self, backend: Backend) -> None:
        """The server closed: expected after 102 or before a join, otherwise tell the page."""
        was_in_room = self.backend is backend and self.name is not None
        if self.backend is backend:
            self.backend = None
            self.name = None
        backend.writer.close()
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
            self.name = None
            task = backend.task
            if task is not None:
                # The server answers 102 and closes; waiting for that keeps the 004 from being cut off.
                with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), LEAVE_GRACE)
        await backend.close()

    async def shutdown(self) -> None:
        """The gateway is stopping: tell the page, leave, close."""
        await self.send([status_event("shutdown")])
        await self.finish()
        with contextlib.suppress(Exception):
            await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"gateway shutting down")
