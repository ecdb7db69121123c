"""One TCP connection to the chat server: frames in and out, bounded, with an idle ping.

Parsing and serialising are the shared protocol core's, and so is what a frame
means (:mod:`tcp_server.protocol.client_side`, which also says which pongs answer
the idle ping); this module only moves bytes and notices a server that went away
(EOF, a reset, or no answer to 006).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import ssl
from collections import deque

from tcp_server.protocol.client_side import keepalive_ping
from tcp_server.protocol.decoder import server_frame_reader
from tcp_server.protocol.frames import ClientFrame, FrameError, ServerFrame
from tcp_server.protocol.table import serialize
from tcp_server.tls import describe_tls_error

from .aio import wait_event

log = logging.getLogger("chat_client")

SEND_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
READ_SIZE = 65536


class ConnectFailed(Exception):
    """The server could not be reached; ``str()`` is a short reason for the user."""


class Connection:
    """A connected client socket speaking wire protocol v1."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = server_frame_reader()
        self._frames: deque[ServerFrame] = deque()
        self._received = asyncio.Event()  # set whenever bytes arrive; the idle ping waits on it
        self._tokens = itertools.count(1)
        self.dead = False
        """True when the idle ping went unanswered and the connection was dropped."""
        self.pongs = 0
        """Answers to the idle ping so far (counted by the session, which the core tells which they are)."""

    @classmethod
    async def open(cls, host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None) -> Connection:
        """Connect (and, with ``tls``, verify the server) within ``timeout`` seconds, or raise
        :class:`ConnectFailed`."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=tls, ssl_handshake_timeout=timeout if tls else None),
                timeout)
        except TimeoutError:
            raise ConnectFailed(f"no answer within {timeout:g} s") from None
        except ssl.SSLError as exc:  # a certificate refused, or not TLS at the other end
            raise ConnectFailed(describe_tls_error(exc, host)) from None
        except OSError as exc:
            # asyncio words a refusal as "Connect call failed (addr)"; the errno says it better.
            if isinstance(exc, socket.gaierror):
                why = exc.strerror or str(exc)
            else:
                why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ConnectFailed(why or type(exc).__name__) from None
        except UnicodeError as exc:  # an unencodable host name
            raise ConnectFailed(str(exc)) from None
        return cls(reader, writer)

    async def recv(self) -> ServerFrame | None:
        """The next frame from the server, or None once the connection is gone.

        A line the core cannot parse is logged and skipped: one bad frame loses
        nothing else.
        """
        while not self._frames:
            try:
                data = await self._reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                return None
            if not data:
                return None
            self._received.set()
            for item in self._decoder.feed(data):
                if isinstance(item, FrameError):
                    log.warning("ignored a bad frame from the server: %s", item)
                else:
                    self._frames.append(item)
        return self._frames.popleft()

    async def send(self, frame: ClientFrame) -> bool:
        """Send one frame; False (and the connection dropped) when it cannot go."""
        if self._writer.is_closing():
            return False
        try:
            self._writer.write(serialize(frame))
            await asyncio.wait_for(self._writer.drain(), SEND_TIMEOUT)
        except (ConnectionError, OSError, TimeoutError) as exc:
            log.info("send failed: %r", exc)
            self.abort()
            return False
        return True

    async def keepalive(self, interval: float, timeout: float) -> None:
        """Ping (006) after ``interval`` seconds without a byte from the server; drop the
        connection when ``timeout`` more pass without one. Runs until cancelled."""
        while not self._writer.is_closing():
            self._received.clear()
            if await wait_event(self._received, interval):
                continue  # the server spoke: it is alive
            if not await self.send(keepalive_ping(next(self._tokens))):
                return
            if not await wait_event(self._received, timeout):
                log.info("no answer to the idle ping within %g s: dropping the connection", timeout)
                self.dead = True
                self.abort()
                return

    def abort(self) -> None:
        """Drop the connection now; a pending :meth:`recv` returns None."""
        self._writer.transport.abort()

    async def close(self) -> None:
        """Close politely, waiting a bounded time."""
        self._writer.close()
        with contextlib.suppress(TimeoutError, ConnectionError, OSError):
            await asyncio.wait_for(self._writer.wait_closed(), CLOSE_TIMEOUT)
