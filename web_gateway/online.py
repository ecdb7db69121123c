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

from tcp_server.protocol.client_side import ClientSide, frame_of_event
from tcp_server.protocol.events import RESUMED_MARK, USER_JOINED_MARK, USER_LEFT_MARK, USERS_MARK

log = logging.getLogger("web_gateway")

_MARKS = (USERS_MARK, USER_JOINED_MARK, USER_LEFT_MARK, RESUMED_MARK)


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
    """One bridge's part in the gateway's count: its backend's client side knows the room's size
    (:mod:`tcp_server.protocol.client_side`); this tells it the few events that move it and
    publishes the result."""

    def __init__(self, online: Online) -> None:
        self.online = online
        self.count: int | None = None  # what this bridge last told the gateway (None: not counting)

    def feed(self, side: ClientSide, data: bytes, end: int) -> None:
        """The event lines in ``data[:end]`` (a read of the backend, cut at its last LF), for ``side``."""
        if side.replaying or (side.room is None and USERS_MARK in data):
            # Line by line: the first users event, and a resume's replay (its joins and leaves are
            # in the users event already: the client side counts them once, until resumed).
            for line in data[:end].split(b"\n"):
                if line.startswith(_MARKS):
                    self._line(side, line)
            self._publish(side.room)
            return
        if side.room is None:
            return
        online = self.online
        if online.scanner is not self:
            if online.scanner is not None:
                return  # another bridge counts for the gateway
            online.scanner = self
            side.room = online.value  # take over from the gateway's count: all bridges hear the same
        delta = data.count(USER_JOINED_MARK, 0, end) - data.count(USER_LEFT_MARK, 0, end)
        if delta:
            side.room_moved(delta)
            self._publish(side.room)

    @staticmethod
    def _line(side: ClientSide, line: bytes) -> None:
        try:
            frame = frame_of_event(json.loads(line))
        except (ValueError, KeyError, TypeError):  # (FrameError is a ValueError)
            log.warning("unreadable event from the chat server: %r", line[:80])
            return
        side.receive(frame)

    def _publish(self, count: int | None) -> None:
        if count is None:
            return
        if self.count is None:
            self.online.counting += 1
        self.count = count
        self.online.value = count

    def stop(self) -> None:
        """Out of the room (left, dropped, closed): this bridge no longer knows."""
        if self.count is not None:
            self.count = None
            self.online.counting -= 1
        if self.online.scanner is self:
            self.online.scanner = None
