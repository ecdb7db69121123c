"""The TLS port's handshake, after the connection was counted and limited like any other.

The node accepts the TLS port's sockets itself: a peer that never sends a ClientHello holds a counted
place, not a free one. Only then does the loop run the TLS server side on the socket, bounded by
``--tls-handshake-timeout``; when it ends the connection's ``connection_made`` has run, or the
connection ends here (the TLS layer tells its protocol nothing of a failed handshake).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Protocol, cast

from .protocol.session import Session

log = logging.getLogger("tcp_server")


class Secured(Protocol):
    """What the handshake needs of its connection."""

    transport: asyncio.Transport | None
    session: Session

    def connection_lost(self, exc: Exception | None) -> None: ...


class Handshake:
    """One connection's TLS context and, while it runs, its handshake."""

    __slots__ = ("context", "timeout", "sock", "task")

    def __init__(self, context: ssl.SSLContext, timeout: float) -> None:
        self.context = context
        self.timeout = timeout
        self.sock: socket.socket | None = None  # accepted, not yet handed to the loop's TLS
        self.task: asyncio.Task[None] | None = None  # set while the handshake runs

    def start(self, conn: Secured, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self.task = task = loop.create_task(self._run(conn, loop), name="TLS handshake")
        task.add_done_callback(lambda task: self._done(conn, task))

    def cancel(self) -> bool:
        """Call the handshake off (a refusal, the server stopping); False if none runs."""
        if self.task is None:
            return False
        self.task.cancel()
        return True

    async def _run(self, conn: Secured, loop: asyncio.AbstractEventLoop) -> None:
        assert self.sock is not None
        sock, self.sock = self.sock, None  # the loop's from here: its transport closes it
        try:
            await loop.connect_accepted_socket(lambda: cast(asyncio.Protocol, conn), sock, ssl=self.context,
                                               ssl_handshake_timeout=self.timeout)
        except (OSError, TimeoutError) as exc:  # (ssl.SSLError is an OSError) the peer's failure, not ours
            log.debug("TLS handshake with %s failed: %s", conn.session.address, exc)

    def _done(self, conn: Secured, task: asyncio.Task[None]) -> None:
        """Secured (connection_made ran), or failed, timed out or called off: then the connection ends."""
        self.task = None
        if self.sock is not None:  # called off before the loop had it
            self.sock.close()
            self.sock = None
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("TLS handshake with %s failed", conn.session.address, exc_info=exc)
        if conn.transport is None:
            conn.connection_lost(None)
