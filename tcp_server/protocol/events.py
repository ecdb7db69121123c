"""Server frames as the browser's JSON events (PROTOCOL.md, "Gateway to browser"), pure.

Every server frame has exactly one event, whose ``type`` and keys are the
table's (:mod:`.table`), so a new frame needs nothing here. The server's JSON
encoder (``007#json``, the gateway's backends) and the gateway (for what it says
itself) both use it.
"""

from __future__ import annotations

import json
from dataclasses import fields as dataclass_fields
from typing import Any

from .frames import Error, Joined, Resumed, ServerFrame, SessionToken, UserJoined, UserLeft, UserList
from .table import BY_CLASS, spec_of

Event = dict[str, Any]


def error_event(reason: str, text: str, **extra: Any) -> Event:
    return {"type": "error", "reason": reason, "text": text, **extra}


def to_event(frame: ServerFrame) -> Event:
    """Exactly one JSON event for every server frame: its type and keys come from the table.

    The values are the frame's own (a timestamp or a count stays a number); a field
    that is not on the wire (a message's server timestamp, an account's flag) is added
    under its own name when it is set.
    """
    spec = spec_of(frame)
    values = [getattr(frame, f.name) for f in dataclass_fields(frame)]
    if spec.variadic:
        return {"type": spec.event, spec.keys[0]: list(values[0])}
    event: Event = {"type": spec.event}
    event.update(zip(spec.keys, values, strict=False))
    for f, value in zip(dataclass_fields(frame)[len(spec.keys):], values[len(spec.keys):], strict=True):
        if value is not None and value is not False:  # (an account flag only when it is one)
            event[f.name] = value
    return event


def encode_event(event: Event) -> str:
    """One event as one NDJSON line (no LF; JSON escapes any LF inside a string)."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def encode_events(events: list[Event]) -> str:
    """One WebSocket message: NDJSON, one event a line."""
    return "\n".join(map(encode_event, events))


def event_mark(cls: type[ServerFrame]) -> bytes:
    """The first bytes of every JSON event line of ``cls`` (the table's event type). JSON escapes every
    '"' inside a string, so this byte sequence occurs only as that event's own start: a gateway finds
    the events it must know about with one C-level scan of a read, without parsing the others."""
    return b'{"type":"' + BY_CLASS[cls].event.encode() + b'"'


JOINED_MARK = event_mark(Joined)
"""A ``joined`` event (a ``100``): the gateway learns its user's confirmed ID."""

ERROR_MARK = event_mark(Error)
"""An ``error`` event (a ``109``): before its user has joined, a gateway notes the reason a server
refused it with (a refusal of that user, or of everyone)."""

SESSION_MARK = event_mark(SessionToken)
"""A ``session`` event (a ``112``): a gateway that has seen it knows its user's session can resume,
so it closes without ``004`` when the page goes away."""

USERS_MARK = event_mark(UserList)
USER_JOINED_MARK = event_mark(UserJoined)
USER_LEFT_MARK = event_mark(UserLeft)
RESUMED_MARK = event_mark(Resumed)
"""The room's size as a gateway counts it (``web_gateway.online``): the list, its changes, the end of a replay."""
