"""What a backend's bytes mean to its bridge, pure: whole event lines for the page, and the two events it acts on.

A backend asked the server for JSON events (``007#json``), so the way back is a
relay: each read's whole lines go to the page as they are, with no Python work
per line. Three things need looking at, and all of them live here:

- a read may end inside a line: the rest waits for the next read (bounded);
- what the server says before it has read anything (a ``109#busy`` refusal) is
  still a frame: those first lines are translated through the core, until the
  first event line;
- the bridge must learn its user's confirmed ID (the ``joined`` event) and
  whether the session can resume (the ``session`` event): both are found with
  one C-level scan of a read for the event's start, which JSON makes unique;
- until the user has joined, the reason of the server's last ``error`` (``refusal``): a server that
  closes after refusing one user (``address-limit``) is not down for everyone (backends.py).
"""

from __future__ import annotations

import json
import logging

from tcp_server.protocol.encoders import JSON
from tcp_server.protocol.events import ERROR_MARK, JOINED_MARK, SESSION_MARK, encode_event, error_event
from tcp_server.protocol.frames import FrameError
from tcp_server.protocol.table import parse_server

log = logging.getLogger("web_gateway")


class LineTooLong(ValueError):
    """The server sent more than the relay's bound without an LF: a server gone wrong."""


class EventRelay:
    """One backend connection's reads, as the page's messages."""

    __slots__ = ("max_line", "partial", "events_seen", "joined", "resumable", "read", "read_end", "session_reads",
                 "refusal")

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.partial = b""  # the start of a line whose LF has not come yet
        self.events_seen = False  # the server has switched to events: every line from here on is one
        self.joined: str | None = None  # the ID the server confirmed with its joined event
        self.resumable = False  # the server sent a session token
        self.refusal: str | None = None  # before the join: the reason of the server's last error event
        # Reads still to scan for the session token: it comes with the joined event (100, 107, 112 are
        # one write), so a few reads after it; not every read for ever when the server has resume off.
        self.session_reads = 3
        # The last read (with the line it finished) and where its whole lines end: for other scans of it.
        self.read = b""
        self.read_end = 0

    def feed(self, data: bytes) -> bytes | memoryview | None:
        """The whole event lines of this read (no trailing LF), or None when it ended none."""
        if self.partial:
            data = self.partial + data
        cut = data.rfind(b"\n")
        rest = data[cut + 1:] if cut >= 0 else data
        if len(rest) > self.max_line:
            self.partial = b""
            raise LineTooLong(f"a line of over {self.max_line} bytes from the chat server")
        self.partial = rest
        if cut < 0:
            return None
        self.read, self.read_end = data, cut
        whole: bytes | memoryview = memoryview(data)[:cut]
        if not self.events_seen:
            whole = self._first_lines(bytes(whole))
        if self.joined is None:
            if ERROR_MARK in data or b"109#" in data:  # (a refusal before 007#json is still a frame)
                self._find_refusal(bytes(whole))
            if JOINED_MARK in data:
                self._find_joined(bytes(whole))
        if not self.resumable and self.session_reads and self.joined is not None:
            self.session_reads -= 1
            self.resumable = SESSION_MARK in data
        return whole

    def _first_lines(self, lines: bytes) -> bytes:
        """Until the server has switched to events, a line may still be a frame: translate those."""
        out: list[bytes] = []
        for line in lines.split(b"\n"):
            if line.startswith(b"{"):
                self.events_seen = True
                out.append(line)
                continue
            try:
                out.append(JSON.encode(parse_server(line.decode()))[:-1])
            except (FrameError, UnicodeDecodeError) as exc:
                log.warning("unreadable line from the chat server: %s", exc)
                out.append(encode_event(error_event("internal", "the gateway could not read a server frame")).encode())
        return b"\n".join(out)

    def _find_refusal(self, events: bytes) -> None:
        for line in events.split(b"\n"):
            if line.startswith(ERROR_MARK):
                try:
                    self.refusal = str(json.loads(line)["reason"])
                except (ValueError, KeyError, TypeError):
                    log.warning("unreadable error event from the chat server: %r", line[:80])

    def _find_joined(self, events: bytes) -> None:
        for line in events.split(b"\n"):
            if line.startswith(JOINED_MARK):
                try:
                    self.joined = str(json.loads(line)["id"])
                except (ValueError, KeyError, TypeError):
                    log.warning("unreadable joined event from the chat server: %r", line[:80])
