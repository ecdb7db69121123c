"""Scrollback and search of the stored history, pure: room keys, signed cursors, the bounds of ``016``/``017``.

A cursor names a place in one room's order (the sequence number of the oldest message a client
has): opaque to clients, URL-safe, and signed with the store's key (HMAC-SHA256), so that it can
be neither forged nor used for another room. The key lives in the database: cursors outlive a
restart and work on every node sharing it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import unicodedata

LOBBY = "lobby"
"""The lobby's room name and key (until rooms exist, the only room)."""
MIN_LIMIT = 1
MAX_LIMIT = 200
MIN_QUERY = 2
"""Characters (after NFC) a search must have: a one-letter search would read the whole room."""
SEARCH_LIMIT = 50
_MAC_BYTES = 16
_SEQ = struct.Struct(">Q")

Row = tuple[int, int, str, str]
"""A stored message as the core sees it: (seq, ts in ms, author, text)."""


def room_key(name: str) -> str:
    """Rooms match by key, as IDs do: NFC, case folded."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _mac(key: bytes, room: str, seq: int) -> bytes:
    return hmac.new(key, room.encode() + b"\0" + _SEQ.pack(seq), hashlib.sha256).digest()[:_MAC_BYTES]


def sign_cursor(key: bytes, room: str, seq: int) -> str:
    """A cursor for messages of ``room`` older than ``seq``."""
    raw = _SEQ.pack(seq) + _mac(key, room, seq)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def open_cursor(key: bytes, room: str, cursor: str) -> int | None:
    """The ``seq`` a cursor of ``room`` names; None if this key did not sign it for that room."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != _SEQ.size + _MAC_BYTES or not cursor.isascii():
        return None
    seq = int(_SEQ.unpack(raw[:_SEQ.size])[0])
    if not hmac.compare_digest(raw[_SEQ.size:], _mac(key, room, seq)):
        return None
    return seq


def page_cursor(key: bytes, room: str, oldest_seq: int | None) -> str:
    """The cursor that pages back from ``oldest_seq`` (the oldest message sent); empty when nothing is older."""
    if oldest_seq is None or oldest_seq <= 1:
        return ""
    return sign_cursor(key, room, oldest_seq)
