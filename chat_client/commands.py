"""What the user typed, as a command: the seed's ``/m``, ``/b``, ``/q``, ``/who``, plus ``/more``, ``/search``
and ``/help``.

Pure: parsing knows nothing of sockets. Messages are kept as typed (inner and
trailing spaces, ``#``); the seed's trailing space is not added.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Union

from tcp_server.protocol.decoder import DEFAULT_MAX_LINE
from tcp_server.protocol.frames import Broadcast, ClientFrame, ListUsers, Search, Whisper, has_control_chars
from tcp_server.protocol.ids import is_valid_id
from tcp_server.protocol.scrollback import LOBBY, MIN_QUERY
from tcp_server.protocol.table import fits

COMMANDS: tuple[str, ...] = ("/m", "/b", "/who", "/more", "/search", "/register", "/passwd", "/q", "/help")
"""In the order /help lists them; /m, /b and /search take arguments."""

MORE_LIMIT = 20
"""Messages one ``/more`` asks for (016's LIMIT)."""


@dataclass(frozen=True, slots=True)
class Say:
    """``/b MESSAGE`` or plain text: to everyone."""

    message: str


@dataclass(frozen=True, slots=True)
class WhisperTo:
    """``/m ID MESSAGE``: to one user."""

    to: str
    message: str


@dataclass(frozen=True, slots=True)
class Quit:
    """``/q``: leave (004, then wait for 102)."""


@dataclass(frozen=True, slots=True)
class Who:
    """``/who``: ask for the user list (005)."""


@dataclass(frozen=True, slots=True)
class More:
    """``/more``: the page of messages before the oldest shown (016 with the last 141's cursor)."""


@dataclass(frozen=True, slots=True)
class Find:
    """``/search TEXT``: the room's stored messages holding TEXT (017)."""

    query: str


@dataclass(frozen=True, slots=True)
class KeepId:
    """``/register``: keep this ID (019); the password is asked without echo, twice."""


@dataclass(frozen=True, slots=True)
class NewPassword:
    """``/passwd``: change the password (020); asked without echo, twice."""


@dataclass(frozen=True, slots=True)
class Help:
    """``/help``: show the commands; nothing is sent."""


class Problem(StrEnum):
    """Why a typed line cannot be sent; each has a hint in :mod:`.messages`."""

    UNKNOWN = "hint"
    USAGE_M = "usage_m"
    USAGE_B = "usage_b"
    USAGE_SEARCH = "usage_search"
    BAD_TARGET = "bad_target"
    CONTROL = "control_chars"
    TOO_LONG = "too_long"


@dataclass(frozen=True, slots=True)
class Invalid:
    """A line the client refuses, with the hint to show under the seed's error text."""

    problem: Problem
    detail: str = ""


Command = Union[Say, WhisperTo, Quit, Who, More, Find, Help, KeepId, NewPassword]


def _message(text: str) -> str | None:
    """``text`` as a message to send, or None when it is empty or blank."""
    return text if text.strip() else None


def parse_command(line: str) -> Command | Invalid | None:
    """Parse one typed line; None for a blank line (nothing to do)."""
    if not line.strip():
        return None
    if not line.startswith("/"):
        return _checked(Say(line))
    word, _, rest = line.partition(" ")
    if word == "/m":
        to, _, message = rest.lstrip(" ").partition(" ")
        body = _message(message)
        if not to or body is None:
            return Invalid(Problem.USAGE_M)
        if not is_valid_id(to):
            return Invalid(Problem.BAD_TARGET, to)
        return _checked(WhisperTo(to, body))
    if word == "/b":
        body = _message(rest)
        if body is None:
            return Invalid(Problem.USAGE_B)
        return _checked(Say(body))
    if word == "/q":
        return Quit()
    if word == "/who":
        return Who()
    if word == "/more":
        return More()
    if word == "/search":
        query = rest.strip(" ")
        if len(unicodedata.normalize("NFC", query)) < MIN_QUERY:
            return Invalid(Problem.USAGE_SEARCH)
        if has_control_chars(query):
            return Invalid(Problem.CONTROL)
        return Find(query)
    if word == "/help":
        return Help()
    if word == "/register":
        return KeepId()
    if word == "/passwd":
        return NewPassword()
    return Invalid(Problem.UNKNOWN, word)


def _checked(cmd: Say | WhisperTo) -> Say | WhisperTo | Invalid:
    # The server would answer 109#malformed; say why before anything is sent.
    if has_control_chars(cmd.message):
        return Invalid(Problem.CONTROL)
    return cmd


def to_frame(
    cmd: Say | WhisperTo | Who | Find, my_id: str, max_line: int = DEFAULT_MAX_LINE,
) -> ClientFrame | Invalid:
    """The frame that carries ``cmd`` for ``my_id``, or why it cannot go (too long for the server)."""
    frame: ClientFrame
    if isinstance(cmd, Say):
        frame = Broadcast(my_id, cmd.message)
    elif isinstance(cmd, WhisperTo):
        frame = Whisper(my_id, cmd.to, cmd.message)
    elif isinstance(cmd, Find):
        frame = Search(LOBBY, cmd.query)
    else:
        return ListUsers(my_id)
    if not fits(frame, max_line):
        return Invalid(Problem.TOO_LONG, str(max_line))
    return frame
