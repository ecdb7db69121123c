"""The room's frames since the last flush, shared by every local member, with opaque cursors.

A broadcast is one append, however many members there are; a flush encodes the
log once per encoder and gives each member its part in one write (BENCHMARKS.md).
Each member holds a :class:`Cursor` that only this module reads or moves: a
cursor from an earlier flush means "from the start", so a flush never has to
reset anyone's position.
"""

from __future__ import annotations

from tcp_server.protocol.encoders import Encoder
from tcp_server.protocol.frames import ServerFrame


class Cursor:
    """How much of the log a member already has (or need not have)."""

    __slots__ = ("gen", "pos")

    def __init__(self, gen: int, pos: int) -> None:
        self.gen = gen
        self.pos = pos


class LogPart:
    """Entries ``start`` to ``end`` of this flush's log, queued in a member's output in their place.

    A member that catches up (a sender, whose own frames must keep their order
    among the room's) queues this instead of the frames themselves, so its
    flush writes slices of the log's shared encoding: no Python work per frame.
    """

    __slots__ = ("start", "end")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end

    def __len__(self) -> int:
        return self.end - self.start


class FanoutLog:
    """Frames for every member since the last flush, in order."""

    __slots__ = ("entries", "gen", "_chunks")

    def __init__(self) -> None:
        self.entries: list[ServerFrame] = []
        self.gen = 0
        self._chunks: dict[Encoder, list[bytes]] = {}  # the log through each encoder, this flush

    def cursor(self) -> Cursor:
        """A new member's cursor: it takes what is appended from now on."""
        return Cursor(self.gen, len(self.entries))

    def behind(self, cursor: Cursor) -> bool:
        return (cursor.pos if cursor.gen == self.gen else 0) < len(self.entries)

    def take(self, cursor: Cursor) -> list[ServerFrame]:
        """The frames ``cursor`` has not had; it has them now."""
        pos = cursor.pos if cursor.gen == self.gen else 0
        cursor.gen = self.gen
        cursor.pos = len(self.entries)
        return self.entries[pos:]

    def skip(self, cursor: Cursor) -> None:
        """``cursor`` does not take what is in the log now (it is the sender of the last entry)."""
        cursor.gen = self.gen
        cursor.pos = len(self.entries)

    def append(self, frame: ServerFrame) -> None:
        self.entries.append(frame)

    def encoded(self, encoder: Encoder) -> list[bytes]:
        """The log through ``encoder``: each entry encoded once per flush, however many members take it."""
        entries = self.entries
        cached = self._chunks.get(encoder)
        done = 0 if cached is None else len(cached)
        if cached is None or done < len(entries):
            fresh = entries[done:]
            encode = encoder.encode
            chunks = [encode(frame) for frame in fresh]
            cached = chunks if cached is None else cached + chunks
            self._chunks[encoder] = cached
        return cached

    def part(self, cursor: Cursor) -> LogPart:
        """What ``cursor`` has not had, as a part of this flush's log; it has it now."""
        start = cursor.pos if cursor.gen == self.gen else 0
        end = len(self.entries)
        cursor.gen = self.gen
        cursor.pos = end
        return LogPart(start, end)

    def frames(self, part: LogPart) -> list[ServerFrame]:
        return self.entries[part.start:part.end]

    def bytes_of(self, encoder: Encoder, part: LogPart) -> list[bytes]:
        """A part through ``encoder``: slices of the shared encoding, nothing encoded twice."""
        return self.encoded(encoder)[part.start:part.end]

    def reset(self) -> None:
        """The flush is done: every cursor now points at the start of an empty log."""
        self.entries = []
        self.gen += 1
        self._chunks.clear()
