"""Server frames as the browser's JSON events (PROTOCOL.md, "Gateway to browser"), pure.

Every server frame has exactly one event. The mapping lives in the core because
two sides use it: the server writes events instead of frames to a connection
that asked with ``007#json`` (the web gateway's backends), encoding a broadcast
once for all of them; and tests and tools read events back into frames' terms.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring  # what json.dumps(str, ensure_ascii=False) uses, in C
from typing import Any

from .frames import (
    Error,
    IdTaken,
    Joined,
    Left,
    Message,
    NoSuchUser,
    Pong,
    ServerFrame,
    UserJoined,
    UserLeft,
    UserList,
    WhisperMessage,
    parse_server,
)

Event = dict[str, Any]


def error_event(reason: str, text: str, **extra: Any) -> Event:
    return {"type": "error", "reason": reason, "text": text, **extra}


def to_event(frame: ServerFrame) -> Event:
    """Exactly one JSON event for every server frame."""
    if isinstance(frame, Message):
        return {"type": "message", "from": frame.sender, "text": frame.message}
    if isinstance(frame, WhisperMessage):
        return {"type": "whisper", "from": frame.sender, "text": frame.message}
    if isinstance(frame, UserJoined):
        return {"type": "user_joined", "id": frame.id}
    if isinstance(frame, UserLeft):
        return {"type": "user_left", "id": frame.id}
    if isinstance(frame, UserList):
        return {"type": "users", "ids": list(frame.ids)}
    if isinstance(frame, Joined):
        return {"type": "joined", "id": frame.id}
    if isinstance(frame, IdTaken):
        return {"type": "id_taken"}
    if isinstance(frame, Left):
        return {"type": "left"}
    if isinstance(frame, NoSuchUser):
        return {"type": "no_such_user", "to": frame.to}
    if isinstance(frame, Error):
        return error_event(str(frame.reason), frame.text)
    if isinstance(frame, Pong):
        return {"type": "pong", "token": frame.token}
    raise TypeError(f"not a server frame: {frame!r}")


def encode_event(event: Event) -> str:
    """One event as one NDJSON line (no LF; JSON escapes any LF inside a string)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def encode_events(events: list[Event]) -> str:
    """One WebSocket message: NDJSON, one event a line."""
    return "\n".join(map(encode_event, events))


# Markers of the two events a gateway acts on. JSON escapes every '"' inside a
# string, so these byte sequences occur only as an event's own start.
JOINED_MARK = b'{"type":"joined"'
LEFT_MARK = b'{"type":"left"}'


def event_lines(data: bytes) -> bytes:
    """Server frames (whole lines, each ending in LF) as their events, each ending in LF.

    A broadcast (105) takes a short path that gives the same bytes as
    ``encode_event(to_event(parse_server(line)))``: the server translates every
    broadcast once per flush for all JSON connections. Raises ``FrameError``
    (or ``UnicodeDecodeError``) for a line that is not a server frame: our own
    bug, for the caller to log.
    """
    out: list[str] = []
    for line in data.decode().split("\n")[:-1]:
        if line.startswith("105#"):
            sender, sep, text = line[4:].partition("#")
            if sep:
                out.append(f'{{"type":"message","from":{encode_basestring(sender)},"text":{encode_basestring(text)}}}')
                continue
        out.append(encode_event(to_event(parse_server(line))))
    out.append("")
    return "\n".join(out).encode()
