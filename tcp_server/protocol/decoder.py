"""Incremental line decoder: bytes in, lines and errors out, memory bounded.

Like websockets' ``read_line(limit)`` and h11's ``max_incomplete_event_size``:
whatever a peer sends, the buffer never holds more than ``max_line`` bytes.
An over-long line is reported once and then skipped up to its LF.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar, Union

from .codes import ErrorReason
from .frames import ClientFrame, FrameError, ServerFrame
from .table import parse_client, parse_server

DEFAULT_MAX_LINE = 4096
"""Client-to-server frames: bytes per line, LF included."""

CLIENT_SIDE_MAX_LINE = 4 * 1024 * 1024
"""What clients accept from the server: a 107 for thousands of users is long."""


class LineDecoder:
    """Split a byte stream into decoded text lines.

    ``feed`` returns, in order, each complete line as ``str`` (CR before LF
    dropped, empty lines skipped) or a :class:`FrameError` for a line that was
    too long or not UTF-8.
    """

    __slots__ = ("max_line", "_buf", "_discarding")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 2:
            raise ValueError("max_line must allow at least one byte and the LF")
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete line (never more than ``max_line``)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Union[str, FrameError]]:
        out: list[Union[str, FrameError]] = []
        buf = self._buf
        start = 0
        end = len(data)
        limit = self.max_line
        while start < end:
            nl = data.find(b"\n", start)
            if self._discarding:
                if nl < 0:
                    return out
                self._discarding = False
                start = nl + 1
                continue
            if nl < 0:
                if len(buf) + end - start >= limit:
                    # No LF within the limit: report now, drop until the LF.
                    buf.clear()
                    self._discarding = True
                    out.append(FrameError(ErrorReason.TOO_LONG, f"frame longer than {limit} bytes"))
                else:
                    buf += data[start:]
                return out
            if len(buf) + nl + 1 - start > limit:
                buf.clear()
                out.append(FrameError(ErrorReason.TOO_LONG, f"frame longer than {limit} bytes"))
                start = nl + 1
                continue
            if buf:
                buf += data[start:nl]
                raw = bytes(buf)
                buf.clear()
            else:
                raw = data[start:nl]
            start = nl + 1
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw:
                continue
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                out.append(FrameError(ErrorReason.MALFORMED, f"invalid UTF-8 at byte {exc.start}"))
        return out


F = TypeVar("F")


class FrameReader(Generic[F]):
    """A :class:`LineDecoder` followed by a frame parser.

    ``reads_are_frames``: the seed's client sends each frame in one write with
    no LF, and its server took each read as one frame; such a reader ends every
    read with an LF (a read holding LFs is still split on them, so ``nc`` works).
    """

    __slots__ = ("_lines", "_parse", "_reads_are_frames")

    def __init__(self, parse: Callable[[str], F], max_line: int, reads_are_frames: bool = False) -> None:
        self._lines = LineDecoder(max_line)
        self._parse = parse
        self._reads_are_frames = reads_are_frames

    @property
    def buffered(self) -> int:
        return self._lines.buffered

    def feed(self, data: bytes) -> list[Union[F, FrameError]]:
        out: list[Union[F, FrameError]] = []
        parse = self._parse
        if self._reads_are_frames and not data.endswith(b"\n"):
            data += b"\n"
        for item in self._lines.feed(data):
            if isinstance(item, FrameError):
                out.append(item)
                continue
            try:
                out.append(parse(item))
            except FrameError as exc:
                out.append(exc)
        return out


def client_frame_reader(max_line: int = DEFAULT_MAX_LINE, reads_are_frames: bool = False) -> FrameReader[ClientFrame]:
    """What the server uses to read clients (``reads_are_frames``: the seed's, on the legacy port)."""
    return FrameReader(parse_client, max_line, reads_are_frames)


def server_frame_reader(max_line: int = CLIENT_SIDE_MAX_LINE) -> FrameReader[ServerFrame]:
    """What the gateway and the terminal client use to read the server."""
    return FrameReader(parse_server, max_line)
