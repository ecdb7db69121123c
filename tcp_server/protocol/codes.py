"""Frame codes and error reasons of wire protocol v1 (see PROTOCOL.md).

Codes are string enums because they travel as text: ``ClientCode.JOIN == "001"``.
"""

from __future__ import annotations

from enum import StrEnum


class ClientCode(StrEnum):
    """Codes a client sends to the server."""

    GATEWAY = "000"
    JOIN = "001"
    BROADCAST = "002"
    WHISPER = "003"
    LEAVE = "004"
    LIST = "005"
    PING = "006"
    FORMAT = "007"
    RESUME = "008"
    ROOMS = "013"
    OLDER = "016"
    SEARCH = "017"
    LOGIN = "018"
    REGISTER = "019"
    PASSWORD = "020"


class ServerCode(StrEnum):
    """Codes the server sends to a client."""

    JOINED = "100"
    ID_TAKEN = "101"
    LEFT = "102"
    USER_JOINED = "103"
    USER_LEFT = "104"
    MESSAGE = "105"
    WHISPER = "106"
    USER_LIST = "107"
    NO_SUCH_USER = "108"
    ERROR = "109"
    PONG = "110"
    HISTORY = "111"
    SESSION = "112"
    RESUMED = "113"
    NOTICE = "114"
    ROOM = "126"
    ROOMS = "127"
    REGISTERED = "130"
    PASSWORD_CHANGED = "131"
    ACCOUNTS = "132"
    OLDER = "140"
    PAGE = "141"
    FOUND = "142"
    SEARCHED = "143"


class ErrorReason(StrEnum):
    """The REASON field of a ``109`` frame."""

    BAD_ID = "bad-id"
    NOT_JOINED = "not-joined"
    ALREADY_JOINED = "already-joined"
    ID_MISMATCH = "id-mismatch"
    UNKNOWN_CODE = "unknown-code"
    MALFORMED = "malformed"
    TOO_LONG = "too-long"
    FLOOD = "flood"
    FORBIDDEN = "forbidden"
    BUSY = "busy"
    """The server is full (``--max-clients``) or stopping: a refusal of anyone, not of this user."""
    ADDRESS_LIMIT = "address-limit"
    """Too many connections from this user's address (``--max-per-address``, ``--max-new-per-minute``):
    a refusal of this user only; a gateway does not take it for the server being down."""
    SHUTDOWN = "shutdown"
    INTERNAL = "internal"
    BAD_TOKEN = "bad-token"
    REPLACED = "replaced"
    KICKED = "kicked"
    BANNED = "banned"
    MUTED = "muted"
    GAP = "gap"
    """A resume named a position older than the server keeps (or one it never sent): nothing is replayed,
    the session has ended, and the client joins afresh with ``001``."""
    UNAVAILABLE = "unavailable"
    """The shared room (several nodes, Redis) cannot be reached right now: try again later."""
    BAD_CURSOR = "bad-cursor"
    """A ``016`` CURSOR this server did not sign for that room (forged, foreign or garbled)."""
    NOT_IN_ROOM = "not-in-room"
    """A ``016``/``017`` for a room the connection is not in."""
    BAD_LOGIN = "bad-login"
    """``018``: wrong password or no such account (the same answer, in the same time)."""
    TOO_MANY_ATTEMPTS = "too-many-attempts"
    """``018`` refused at once: too many failed logins; TEXT is the seconds the lockout still lasts."""
    NEEDS_TLS = "needs-tls"
    """A password frame on a plaintext connection from another host (``--allow-plaintext-login`` allows it)."""
    ACCOUNT_LOCKED = "account-locked"
    LOGIN_BUSY = "login-busy"
    """The hashing queue is full: try again; the connection stays."""
    ALREADY_REGISTERED = "already-registered"
    WEAK_PASSWORD = "weak-password"
    """TEXT is ``RULE: sentence`` (RULE as :class:`tcp_server.protocol.passwords.PasswordRule`)."""
    REGISTRATION_CLOSED = "registration-closed"
    NEEDS_LOGIN = "needs-login"
    """``019`` on a resumed session, ``020`` by a guest or after a resume, ``001`` with ``--guests no``."""
    REGISTERED = "registered"
    """``001`` for a registered ID: log in with ``018`` instead."""


class OutputFormat(StrEnum):
    """What a connection asks the server to write, with ``007#FORMAT`` (PROTOCOL.md)."""

    FRAMES = "frames"
    """The frames of this protocol (the default)."""
    JSON = "json"
    """The browser's NDJSON events, one per frame: for the web gateway, which then relays bytes."""
