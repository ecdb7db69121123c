"""What a backend's bytes mean to its bridge, pure: whole event lines for the page, and the few events it acts on.

A backend asked the server for JSON events (``007#json``), so the way back is a
relay: each read's whole lines go to the page as they are, with no Python work
per line. Three things need looking at, and all of them live here:

- a read may end inside a line: the rest waits for the next read (bounded);
- what the server says before it has read anything (a ``109#busy`` refusal) is
  still a frame: those first lines are translated through the core, until the
  first event line;
- the few events the protocol's client side (:mod:`tcp_server.protocol.client_side`)
  must know about: the user's confirmed ID (``joined``), whether the session can
  resume (``session``), and, until the user has joined, the server's refusals
  (``error``: a server that closes after refusing one user, ``address-limit``, is
  not down for everyone, backends.py). Each is found with one C-level scan of a
  read for the event's start, which JSON makes unique, and only a read that holds
  one is looked at line by line and given to the client side as its frame.
"""

from __future__ import annotations

import json
import logging

from tcp_server.protocol.client_side import ClientSide, Unexpected, frame_of_event
from tcp_server.protocol.codes import ErrorReason
from tcp_server.protocol.encoders import JSON
from tcp_server.protocol.events import ERROR_MARK, JOINED_MARK, SESSION_MARK, encode_event, error_event
from tcp_server.protocol.frames import FrameError
from tcp_server.protocol.table import parse_server

log = logging.getLogger("web_gateway")


class LineTooLong(ValueError):
    """The server sent more than the relay's bound without an LF: a server gone wrong."""


class EventRelay:
    """One backend connection's reads, as the page's messages; what the client side must hear, told to it."""

    __slots__ = ("max_line", "partial", "events_seen", "side", "read", "read_end", "session_reads")

    def __init__(self, max_line: int, side: ClientSide | None = None) -> None:
        self.max_line = max_line
        self.partial = b""  # the start of a line whose LF has not come yet
        self.events_seen = False  # the server has switched to events: every line from here on is one
        self.side = side if side is not None else ClientSide()
        # Reads still to scan for the session token: it comes with the joined event (100, 107, 112 are
        # one write), so a few reads after it; not every read for ever when the server has resume off.
        self.session_reads = 3
        # The last read (with the line it finished) and where its whole lines end: for other scans of it.
        self.read = b""
        self.read_end = 0

    @property
    def confirmed_id(self) -> str | None:
        """The ID the server confirmed with its joined event on this connection."""
        return self.side.id

    @property
    def resumable(self) -> bool:
        """The server sent a session token."""
        return self.side.token is not None

    @property
    def refusal(self) -> ErrorReason | None:
        """Before the join: the reason of the server's last error event."""
        return self.side.refusal

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
        side = self.side
        if side.id is None:
            if ERROR_MARK in data or b"109#" in data:  # (a refusal before 007#json is still a frame)
                self._tell(bytes(whole), ERROR_MARK)
            if JOINED_MARK in data:
                self._tell(bytes(whole), JOINED_MARK)
        if side.token is None and self.session_reads and side.id is not None:
            self.session_reads -= 1
            if SESSION_MARK in data:
                self._tell(bytes(whole), SESSION_MARK)
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

    def _tell(self, events: bytes, mark: bytes) -> None:
        """Give the client side each event line of ``events`` that starts with ``mark``, as its frame."""
        for line in events.split(b"\n"):
            if line.startswith(mark):
                try:
                    frame = frame_of_event(json.loads(line))
                except (ValueError, KeyError, TypeError):  # (FrameError is a ValueError)
                    shown = b"(a session event: not logged)" if mark is SESSION_MARK else line[:80]
                    log.warning("unreadable event from the chat server: %r", shown)  # never a token
                    continue
                for effect in self.side.receive(frame):
                    if isinstance(effect, Unexpected):
                        log.warning("ignored an event out of order from the chat server: %s", effect.why)
