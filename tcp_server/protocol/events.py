"""Server frames as the browser's JSON events (PROTOCOL.md, "Gateway to browser"), pure.

Every server frame has exactly one event, whose ``type`` and keys are the
table's (:mod:`.table`), so a new frame needs nothing here. The server's JSON
encoder (``007#json``, the gateway's backends) and the gateway (for what it says
itself) both use it.
"""

from __future__ import annotations

import json
from typing import Any

from .frames import ServerFrame
from .table import spec_of

Event = dict[str, Any]


def error_event(reason: str, text: str, **extra: Any) -> Event:
    return {"type": "error", "reason": reason, "text": text, **extra}


def to_event(frame: ServerFrame) -> Event:
    """Exactly one JSON event for every server frame: its type and keys come from the table."""
    spec = spec_of(frame)
    fields = frame.fields()
    if spec.variadic:
        return {"type": spec.event, spec.keys[0]: list(fields)}
    return {"type": spec.event, **dict(zip(spec.keys, fields, strict=True))}


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
