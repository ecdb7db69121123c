"""A connection's way out: its queue of frames and log parts, the flush that writes them, and closing.

Hot path notes: ``send`` only appends a frame to a list; the node flushes every
connection that got output once per event-loop turn, with one
``transport.write`` of everything queued, encoded by the connection's own
encoder. A broadcast to N users costs one log append, and each user gets one
syscall per flush however many messages arrived in it.

A base class of :class:`tcp_server.connection.ChatConnection` rather than an object of its own: the
room calls these methods on every member at every flush, and a delegation would cost a call each.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .fanout import Cursor, LogPart
from .protocol.codes import ErrorReason
from .protocol.encoders import Encoder
from .protocol.frames import Error, ServerFrame
from .protocol.session import Session
from .tls_accept import Handshake

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger("tcp_server")


class Outbound(asyncio.Protocol):
    """The output half of a connection."""

    __slots__ = ("node", "session", "transport", "out", "encoder", "cursor", "closing", "leave_cause", "tls")

    node: Node
    session: Session
    transport: asyncio.Transport | None
    out: list[ServerFrame | LogPart]  # own frames, and parts of the room's log in their place
    encoder: Encoder
    cursor: Cursor | None  # in the room: how much of the fan-out log this connection has
    closing: bool
    leave_cause: str
    tls: Handshake | None

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

    def unsent(self) -> list[ServerFrame]:
        """What was queued (and logged for it) but not written yet, in order: a parked session's start."""
        log = self.node.room.log
        frames = [frame for item in self.out
                  for frame in (log.frames(item) if isinstance(item, LogPart) else (item,))]
        if self.cursor is not None:
            frames += log.take(self.cursor)  # newer than anything queued
        return frames

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
        elif self.tls is not None:  # the TLS port, still in its handshake: nothing can be said yet
            self.tls.cancel()

    def replaced(self, detail: str = "this session was resumed by another connection") -> None:
        """Another connection resumed this session (or logged in to its account): leave the room quietly,
        say why, close."""
        self.session.detach()
        self.node.room.exit(self.session.key, self)
        self.refuse(ErrorReason.REPLACED, detail)

    def refuse(self, reason: ErrorReason, detail: str) -> None:
        """Say why, then close."""
        self.send(Error(reason, detail))
        self.close_after_flush()
