"""How many users are in the room, for the welcome screen (``"online"`` in the first ``status`` event).

Why counted here, from what the joined backends already hear: asking the server for every page
load would cost a connection each. Every joined backend gets the whole list on its join (``users``)
and every change after it (``user_joined``/``user_left``), so each bridge keeps its own count with a
byte scan of the reads it relays anyway (JSON escapes every ``"`` in a string, so an event's start
cannot occur inside a message), and the latest count any of them has is the room's. While no page
of this gateway is in the room the gateway hears nothing: then :mod:`.presence` asks the server.
"""

from __future__ import annotations

import json
import logging

from tcp_server.protocol.events import RESUMED_MARK, USER_JOINED_MARK, USER_LEFT_MARK, USERS_MARK

log = logging.getLogger("web_gateway")


class Online:
    """The room's size as the gateway's joined bridges last heard it; None while none is in the room."""

    def __init__(self) -> None:
        self.counting = 0  # bridges with a count of their own
        self.value = 0
        # The one bridge that scans its reads for joins and leaves: every joined bridge hears the same
        # events, so one scan serves the gateway (a scan per bridge per read was a third of its time).
        self.scanner: RoomCounter | None = None

    def current(self) -> int | None:
        return self.value if self.counting > 0 else None


class RoomCounter:
    """One bridge's count of the room, from the events of its backend."""

    def __init__(self, online: Online) -> None:
        self.online = online
        self.count: int | None = None  # known from this backend's first ``users`` event on
        self.replaying = False  # a resume replays joins and leaves the ``users`` list already shows

    def resuming(self) -> None:
        self.replaying = True

    def feed(self, data: bytes, end: int) -> None:
        """The event lines in ``data[:end]`` (a read of the backend, cut at its last LF)."""
        if self.replaying or (self.count is None and USERS_MARK in data):
            for line in data[:end].split(b"\n"):
                self._line(line)
            return
        if self.count is None:
            return
        online = self.online
        if online.scanner is not self:
            if online.scanner is not None:
                return  # another bridge counts for the gateway
            online.scanner = self
            self.count = online.value  # take over from the gateway's count: all bridges hear the same
        delta = data.count(USER_JOINED_MARK, 0, end) - data.count(USER_LEFT_MARK, 0, end)
        if delta:
            self._set(self.count + delta)

    def _line(self, line: bytes) -> None:
        if line.startswith(USERS_MARK):
            try:
                ids = json.loads(line)["ids"]
            except (ValueError, KeyError, TypeError):
                log.warning("unreadable users event from the chat server: %r", line[:80])
                return
            if isinstance(ids, list):
                self._set(len(ids))
        elif line.startswith(RESUMED_MARK):
            self.replaying = False
        elif self.count is not None and not self.replaying:
            if line.startswith(USER_JOINED_MARK):
                self._set(self.count + 1)
            elif line.startswith(USER_LEFT_MARK):
                self._set(self.count - 1)

    def _set(self, count: int) -> None:
        if self.count is None:
            self.online.counting += 1
        self.count = max(0, count)
        self.online.value = self.count

    def stop(self) -> None:
        """Out of the room (left, dropped, closed): this bridge no longer knows."""
        if self.count is not None:
            self.count = None
            self.online.counting -= 1
        if self.online.scanner is self:
            self.online.scanner = None
        self.replaying = False
