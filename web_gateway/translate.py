"""Browser JSON to client frames, pure.

The JSON protocol is in PROTOCOL.md (section "Browser JSON"). Frames are built
and written only through the shared core (``tcp_server.protocol``). The other
direction, server frames as JSON events, is the core's too
(``tcp_server.protocol.events``): the server writes events to the gateway's
backends (``007#json``) and the gateway relays them. This module adds the
browser's rules on top:

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
    FetchOlder,
    InvalidId,
    Join,
    Leave,
    ListUsers,
    Ping,
    ResumeSession,
    Search,
    Whisper,
    fits,
    has_control_chars,
    normalize_id,
)
from tcp_server.protocol.events import Event, encode_event, encode_events, error_event
from tcp_server.protocol.frames import ChangePassword, FrameError, Login, Register
from tcp_server.protocol.passwords import Password
from tcp_server.protocol.table import resume_token

__all__ = [
    "GATEWAY_REASONS", "Event", "Refusal", "decode_message", "encode_event", "encode_events",
    "error_event", "fold_newlines", "status_event", "to_frame",
]


# The gateway's own error reasons (the server's 109 reasons pass through as they are).
GATEWAY_REASONS = (
    "bad-json", "unknown-type", "too-long", "flood", "not-joined", "already-joined",
    "bad-id", "malformed", "backend-unavailable", "needs-tls",
)

PASSWORD_TYPES = frozenset({"login", "register", "passwd"})
"""Browser messages that carry a password: only on a protected WebSocket (TLS, loopback, or a trusted
proxy that says https), and never in a log line."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A browser message the gateway will not send on; becomes an error event.

    ``extra``: keys the page acts on (a ``bad-id``'s ``rule`` and ``char``, to say it in the user's language).
    """

    reason: str
    text: str
    extra: tuple[tuple[str, str], ...] = ()

    def event(self) -> Event:
        return error_event(self.reason, self.text, **dict(self.extra))


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
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON lets "\ud800" through; no frame can carry it
        return Refusal("malformed", f'"{name}" is not valid Unicode (a lone surrogate)')
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
        extra = (("rule", exc.rule),) + ((("char", exc.char),) if exc.char else ())
        return Refusal("bad-id", str(exc), extra)


def _plain(msg: Event, name: str, may_be_empty: bool = False) -> str | Refusal:
    """A room or a cursor: one field of a frame, so no ``#`` and no control character."""
    value = _field(msg, name)
    if isinstance(value, Refusal):
        return value
    if (not value and not may_be_empty) or "#" in value or has_control_chars(value):
        return Refusal("malformed", f'"{name}" must be {"" if may_be_empty else "non-empty "}text without "#" '
                       "or control characters")
    return value


def _older(msg: Event) -> ClientFrame | Refusal:
    """``{"type":"older","room":"lobby","cursor":"…","limit":50}`` → ``016`` (the server judges the cursor)."""
    room = _plain(msg, "room")
    if isinstance(room, Refusal):
        return room
    cursor = _plain(msg, "cursor", may_be_empty=True)
    if isinstance(cursor, Refusal):
        return cursor
    limit = msg.get("limit")
    if type(limit) is not int or limit < 0:
        return Refusal("malformed", '"limit" must be a whole number (1-200)')
    return FetchOlder(room, cursor, limit)


def _search(msg: Event) -> ClientFrame | Refusal:
    """``{"type":"search","room":"lobby","text":"…"}`` → ``017``."""
    room = _plain(msg, "room")
    if isinstance(room, Refusal):
        return room
    text = _message_text(msg)
    if isinstance(text, Refusal):
        return text
    return Search(room, text)


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
    elif kind == "resume":
        if own_id is not None:
            return Refusal("already-joined", f"you are {own_id}")
        token = _field(msg, "token")
        if isinstance(token, Refusal):
            return token
        position = msg.get("position")  # what the page has of the session; absent: an older page
        if position is not None and (type(position) is not int or position < 0 or position >= 10 ** 18):
            return Refusal("malformed", "position must be a non-negative integer")
        try:
            frame = ResumeSession(resume_token("008", token), position)
        except FrameError as exc:
            return Refusal("malformed", exc.detail)  # the detail never quotes the token
    elif kind == "login":
        if own_id is not None:
            return Refusal("already-joined", f"you are {own_id}")
        name = _user_id(msg, "id")
        if isinstance(name, Refusal):
            return name
        password = _field(msg, "password")
        if isinstance(password, Refusal):
            return password
        frame = Login(name, Password(password))  # the server judges the password (never echoed)
    elif kind in ("register", "passwd"):
        if own_id is None:
            return Refusal("not-joined", "join first")
        password = _field(msg, "password")
        if isinstance(password, Refusal):
            return password
        frame = Register(Password(password)) if kind == "register" else ChangePassword(Password(password))
    elif kind == "ping":
        token = _field(msg, "token")
        if isinstance(token, Refusal):
            return token
        if has_control_chars(token):
            return Refusal("malformed", "control characters in the token")
        frame = Ping(token)
    elif kind in ("say", "whisper", "who", "leave", "older", "search"):
        if own_id is None:
            return Refusal("not-joined", "join first")
        if kind in ("older", "search"):
            found = _older(msg) if kind == "older" else _search(msg)
            if isinstance(found, Refusal):
                return found
            frame = found
        elif kind == "say":
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
    if not fits(frame, max_frame):
        return Refusal("too-long", f"longer than {max_frame} bytes as a frame")
    return frame
