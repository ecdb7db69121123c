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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tcp_server.protocol import DEFAULT_MAX_LINE, ClientFrame, InvalidId, fits, has_control_chars, normalize_id, table
from tcp_server.protocol.events import Event, encode_event, encode_events, error_event
from tcp_server.protocol.frames import FrameError
from tcp_server.protocol.passwords import Password
from tcp_server.protocol.states import ConnState

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


def _message_text(msg: Event, name: str = "text") -> str | Refusal:
    text = _field(msg, name)
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


def _ping_token(msg: Event, name: str) -> str | Refusal:
    value = _field(msg, name)
    if isinstance(value, Refusal):
        return value
    if has_control_chars(value):
        return Refusal("malformed", "control characters in the token")
    return value


def _resume_token(msg: Event, name: str) -> str | Refusal:
    value = _field(msg, name)
    if isinstance(value, Refusal):
        return value
    try:
        return table.resume_token("008", value)
    except FrameError as exc:
        return Refusal("malformed", exc.detail)  # the detail never quotes the token


def _number(msg: Event, name: str) -> int | Refusal:
    """A count (016's LIMIT, 008's POSITION): a whole number; its range is the server's."""
    value = msg.get(name)
    if type(value) is not int or not 0 <= value < 10 ** 18:
        return Refusal("malformed", f'"{name}" must be a whole number, at least 0')
    return value


def _password(msg: Event, name: str) -> Password | Refusal:
    value = _field(msg, name)
    return value if isinstance(value, Refusal) else Password(value)  # the server judges it (never echoed)


BrowserField = Callable[[Event, str], Any]
"""``read(msg, key)``: the value for one frame field from the browser's message, or a :class:`Refusal`."""

BROWSER_FIELDS: dict[table.FieldCheck, BrowserField] = {
    table.raw: _user_id,  # 001's and 018's ID: the ID rules here already, to say which one in the page's language
    table.non_empty: _user_id,  # a whisper's target (the sender is the gateway's: SELF)
    table.text: _message_text,
    table.token: _ping_token,
    table.resume_token: _resume_token,
    table.count: _number,
    table.room: _plain,
    table.cursor: lambda msg, name: _plain(msg, name, may_be_empty=True),
    table.password: _password,
}
"""How each kind of field (the table's checks) is read from the browser's JSON; a client frame whose field
kind is missing here fails ``tests/test_table_edges.py``, naming the frame."""


def to_frame(msg: Event, own_id: str | None, max_frame: int = DEFAULT_MAX_LINE) -> ClientFrame | Refusal:
    """The frame for a decoded browser message, or why not: the table says which frame (its ``browser``
    type), which JSON key fills each field and in which states the frame may be sent.

    ``own_id`` is the ID the server confirmed with 100 (None before): the
    sender field of every frame is the gateway's, never the browser's.
    """
    kind = msg["type"]
    spec = table.BROWSER.get(kind)
    if spec is None:
        return Refusal("unknown-type", f"unknown type {kind[:32]!r}")
    if own_id is not None and ConnState.JOINED not in spec.states:
        return Refusal("already-joined", f"you are {own_id}")
    if own_id is None and (table.SELF in spec.browser_keys or not any(s in spec.states for s in _PRE_JOIN)):
        return Refusal("not-joined", "join first")  # (it names our own ID, or is for the room's members only)
    values: list[Any] = []
    last = len(spec.fields) - 1
    for at, (check, key) in enumerate(zip(spec.fields, spec.browser_keys, strict=True)):
        if at == last and spec.optional_last and msg.get(key) is None:
            values.append(None)  # the table's optional last field (008's POSITION: an older page sends none)
            continue
        value = own_id if key == table.SELF else BROWSER_FIELDS[check](msg, key)
        if isinstance(value, Refusal):
            return value
        values.append(value)
    frame: ClientFrame = spec.cls(*values)
    if not fits(frame, max_frame):
        return Refusal("too-long", f"longer than {max_frame} bytes as a frame")
    return frame


_PRE_JOIN = (ConnState.NEW, ConnState.GATEWAY)
