"""Browser JSON to client frames and server frames to browser JSON, pure.

The JSON protocol is in PROTOCOL.md (section "Browser JSON"). Frames are built
and written only through the shared core (``tcp_server.protocol``); this module
adds the browser's rules on top:

- CR and LF in a message are folded to spaces (a pasted multi-line text arrives
  as one line, and no frame can be injected); any other control character is
  refused with ``malformed``, as the server would.
- A frame longer than the server's limit is refused with ``too-long`` before it
  is sent, so the server never has to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tcp_server.protocol import (
    DEFAULT_MAX_LINE,
    Broadcast,
    ClientFrame,
    Error,
    IdTaken,
    InvalidId,
    Join,
    Joined,
    Leave,
    Left,
    ListUsers,
    Message,
    NoSuchUser,
    Ping,
    Pong,
    ServerFrame,
    UserJoined,
    UserLeft,
    UserList,
    Whisper,
    WhisperMessage,
    has_control_chars,
    normalize_id,
    parse_server,
    serialize,
)

Event = dict[str, Any]

# The gateway's own error reasons (the server's 109 reasons pass through as they are).
GATEWAY_REASONS = (
    "bad-json", "unknown-type", "too-long", "flood", "not-joined", "already-joined",
    "bad-id", "malformed", "backend-unavailable",
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A browser message the gateway will not send on; becomes an error event."""

    reason: str
    text: str

    def event(self) -> Event:
        return error_event(self.reason, self.text)


def error_event(reason: str, text: str, **extra: Any) -> Event:
    return {"type": "error", "reason": reason, "text": text, **extra}


def status_event(state: str, **extra: Any) -> Event:
    return {"type": "status", "state": state, **extra}


def fold_newlines(text: str) -> str:
    """CR LF, CR and LF each become one space: a message stays one frame."""
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def decode_message(raw: str) -> Event | Refusal:
    """One WebSocket text message: a JSON object with a string ``type``."""
    try:
        msg = json.loads(raw)
    except (ValueError, RecursionError):
        return Refusal("bad-json", "not valid JSON")
    if not isinstance(msg, dict):
        return Refusal("bad-json", "expected a JSON object")
    if not isinstance(msg.get("type"), str):
        return Refusal("bad-json", 'expected a string "type"')
    return msg


def _field(msg: Event, name: str) -> str | Refusal:
    value = msg.get(name)
    if not isinstance(value, str):
        return Refusal("malformed", f'"{name}" must be a string')
    return value


def _message_text(msg: Event) -> str | Refusal:
    text = _field(msg, "text")
    if isinstance(text, Refusal):
        return text
    text = fold_newlines(text)
    if not text:
        return Refusal("malformed", "empty message")
    if has_control_chars(text):
        return Refusal("malformed", "control characters in the message")
    return text


def _user_id(msg: Event, name: str) -> str | Refusal:
    raw = _field(msg, name)
    if isinstance(raw, Refusal):
        return raw
    try:
        return normalize_id(raw)
    except InvalidId as exc:
        return Refusal("bad-id", str(exc))


def to_frame(msg: Event, own_id: str | None, max_frame: int = DEFAULT_MAX_LINE) -> ClientFrame | Refusal:
    """The frame for a decoded browser message, or why not.

    ``own_id`` is the ID the server confirmed with 100 (None before): the
    sender field of every frame is the gateway's, never the browser's.
    """
    kind = msg["type"]
    frame: ClientFrame
    if kind == "join":
        if own_id is not None:
            return Refusal("already-joined", f"you are {own_id}")
        name = _user_id(msg, "id")
        if isinstance(name, Refusal):
            return name
        frame = Join(name)
    elif kind == "ping":
        token = _field(msg, "token")
        if isinstance(token, Refusal):
            return token
        if has_control_chars(token):
            return Refusal("malformed", "control characters in the token")
        frame = Ping(token)
    elif kind in ("say", "whisper", "who", "leave"):
        if own_id is None:
            return Refusal("not-joined", "join first")
        if kind == "say":
            text = _message_text(msg)
            if isinstance(text, Refusal):
                return text
            frame = Broadcast(own_id, text)
        elif kind == "whisper":
            to = _user_id(msg, "to")
            if isinstance(to, Refusal):
                return to
            text = _message_text(msg)
            if isinstance(text, Refusal):
                return text
            frame = Whisper(own_id, to, text)
        elif kind == "who":
            frame = ListUsers(own_id)
        else:
            frame = Leave(own_id)
    else:
        return Refusal("unknown-type", f"unknown type {kind[:32]!r}")
    if len(serialize(frame)) > max_frame:
        return Refusal("too-long", f"longer than {max_frame} bytes as a frame")
    return frame


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


def encode_events(events: list[Event]) -> str:
    """One WebSocket message: NDJSON, one event a line (JSON escapes any LF inside a string)."""
    return "\n".join(map(encode_event, events))


def encode_event(event: Event) -> str:
    """One event as one NDJSON line."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


class LineTranslator:
    """Server lines to encoded JSON events, memoised for every bridge of a gateway.

    A broadcast reaches each bridge as the same line, so without this the gateway
    parses and encodes one message once per recipient; with it, once in all
    (BENCHMARKS.md, "Gateway"). ``translate`` returns the event's NDJSON line and,
    for the frames a bridge must act on (100, 102), the parsed frame. The memo is
    bounded: when full it starts again, which costs one parse per line.
    """

    __slots__ = ("_memo", "max_entries", "_chunks", "max_chunks")

    TRACKED = (Joined, Left)

    def __init__(self, max_entries: int = 4096, max_chunks: int = 64) -> None:
        self.max_entries = max_entries
        self._memo: dict[str, tuple[str, ServerFrame | None]] = {}
        # Whole reads: the server writes each flush of its fan-out log to every
        # member in one write, so bridges often read byte-identical chunks.
        self.max_chunks = max_chunks
        self._chunks: dict[bytes, str] = {}

    def chunk(self, data: bytes) -> str | None:
        """The NDJSON message for a read already translated by another bridge, if any."""
        return self._chunks.get(data)

    def remember_chunk(self, data: bytes, message: str) -> None:
        """Keep a read's message for the other bridges; only reads of whole lines with no tracked frame."""
        chunks = self._chunks
        if len(chunks) >= self.max_chunks:
            del chunks[next(iter(chunks))]  # the oldest: every bridge has read it by now, or reads it afresh
        chunks[data] = message

    def translate(self, line: str) -> tuple[str, ServerFrame | None]:
        hit = self._memo.get(line)
        if hit is not None:
            return hit
        frame = parse_server(line)  # a FrameError goes to the caller, and is never memoised
        result = (encode_event(to_event(frame)), frame if isinstance(frame, self.TRACKED) else None)
        memo = self._memo
        if len(memo) >= self.max_entries:
            memo.clear()
        memo[line] = result
        return result
