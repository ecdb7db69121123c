"""Server frames as the browser's JSON events (PROTOCOL.md, "Gateway to browser"), pure.

Every server frame has exactly one event, whose ``type`` is the table's; the
``match`` below ends in ``assert_never`` so mypy names a frame it forgets. The
server's JSON encoder (``007#json``, the gateway's backends) and the gateway
(for what it says itself) both use it.
"""

from __future__ import annotations

import json
from typing import Any, assert_never

from .frames import (
    Error,
    History,
    IdTaken,
    Joined,
    Left,
    Message,
    NoSuchUser,
    Pong,
    Resumed,
    ServerFrame,
    SessionToken,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
)
from .table import spec_of

Event = dict[str, Any]


def error_event(reason: str, text: str, **extra: Any) -> Event:
    return {"type": "error", "reason": reason, "text": text, **extra}


def to_event(frame: ServerFrame) -> Event:
    """Exactly one JSON event for every server frame."""
    kind = spec_of(frame).event
    match frame:
        case Message(sender, message, ts) | WhisperMessage(sender, message, ts):
            if ts is None:
                return {"type": kind, "from": sender, "text": message}
            return {"type": kind, "from": sender, "text": message, "ts": ts}
        case History(ts, sender, message):
            return {"type": kind, "ts": ts, "from": sender, "text": message}
        case SessionToken(token) | Pong(token):
            return {"type": kind, "token": token}
        case Resumed(missed):
            return {"type": kind, "missed": missed}
        case UserJoined(name) | UserLeft(name) | Joined(name):
            return {"type": kind, "id": name}
        case UserList(ids):
            return {"type": kind, "ids": list(ids)}
        case IdTaken() | Left():
            return {"type": kind}
        case NoSuchUser(to):
            return {"type": kind, "to": to}
        case Error(reason, text):
            return error_event(str(reason), text)
        case _:
            assert_never(frame)


def encode_event(event: Event) -> str:
    """One event as one NDJSON line (no LF; JSON escapes any LF inside a string)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def encode_events(events: list[Event]) -> str:
    """One WebSocket message: NDJSON, one event a line."""
    return "\n".join(map(encode_event, events))


JOINED_MARK = b'{"type":"joined"'
"""The start of a ``joined`` event line. JSON escapes every '"' inside a string,
so this byte sequence occurs only as that event's own start: the gateway finds
its user's confirmed ID with one C-level scan of a read."""

SESSION_MARK = b'{"type":"session"'
"""The start of a ``session`` event line (a ``112``), found the same way: a gateway that has seen it
knows its user's session can resume, so it closes without ``004`` when the page goes away."""
