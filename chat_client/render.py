"""Server frames and local events as display lines: the seed's texts, kinds for colour, timestamps.

Pure. The text of a frame is the shared :func:`tcp_server.protocol.texts.render`
(PROTOCOL.md's table); this module adds what a terminal needs: a kind per line
(notices, whispers and errors look different), ANSI colour, a timestamp, and
defence against a server that sends terminal escapes.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from enum import StrEnum

from tcp_server.protocol import texts
from tcp_server.protocol.frames import (
    Found,
    History,
    Older,
    ServerFrame,
    UserList,
    replace_control_chars,
)
from tcp_server.protocol.table import BY_CLASS
from tcp_server.protocol.texts import Lang

from .commands import Invalid, Problem
from .messages import msg


class Kind(StrEnum):
    """What a line is about; decides its colour."""

    INFO = "info"  # joined, left, the user list, help
    NOTICE = "notice"  # someone joined or left
    MESSAGE = "message"  # a message to everyone
    WHISPER = "whisper"  # a whisper to you
    SELF = "self"  # the local echo of what you sent
    ERROR = "error"  # 101, 108, 109 and local errors


@dataclass(frozen=True, slots=True)
class Line:
    """One thing to show. ``text`` may span lines (the user list). ``local`` lines are
    the client's own (echoes, hints, connection news), not a server frame."""

    kind: Kind
    text: str
    local: bool = False


def kind_of(frame: ServerFrame) -> Kind:
    """What a server frame is about, for its colour: the table's tone (every frame has one)."""
    return Kind(BY_CLASS[type(frame)].tone.value)


REPLACEMENT = "\ufffd"


def clean(text: str) -> str:
    """``text`` with every control character but TAB replaced, so a rogue server cannot
    move the cursor, clear the screen or forge a line on this terminal."""
    return replace_control_chars(text, REPLACEMENT)


def _cleaned(frame: ServerFrame) -> ServerFrame:
    changes: dict[str, object] = {}
    for field in dataclasses.fields(frame):
        value = getattr(frame, field.name)
        if type(value) is str:
            if clean(value) != value:
                changes[field.name] = clean(value)
        elif isinstance(value, tuple):
            changes[field.name] = tuple(clean(v) for v in value)
    return dataclasses.replace(frame, **changes) if changes else frame  # type: ignore[arg-type]


def render_frame(frame: ServerFrame, lang: Lang, one_line: bool = False) -> Line:
    """The seed's text for ``frame``. ``one_line`` puts a 107 on a single line
    (header, then the IDs separated by spaces; IDs cannot contain spaces) for scripts."""
    frame = _cleaned(frame)
    if one_line and isinstance(frame, UserList):
        return Line(Kind.INFO, " ".join((texts.USER_LIST_HEADER[lang], *frame.ids)))
    if isinstance(frame, (History, Older, Found)):  # from before you joined: when it was said
        return Line(Kind.MESSAGE, f"[{hh_mm(frame.ts)}] {texts.render(frame, lang)}")
    return Line(kind_of(frame), texts.render(frame, lang))


def hh_mm(ts: int) -> str:
    """A server timestamp (ms since the epoch) as this terminal's local ``HH:MM``."""
    return time.strftime("%H:%M", time.localtime(ts / 1000))


def echo_say(message: str, lang: Lang) -> Line:
    """``나 : MESSAGE``: the server does not send your own 002 back."""
    return Line(Kind.SELF, msg("echo_say", lang, message=message), local=True)


def echo_whisper(to: str, message: str, lang: Lang) -> Line:
    """``나 → bob : MESSAGE``."""
    return Line(Kind.SELF, msg("echo_whisper", lang, to=to, message=message), local=True)


def invalid_lines(invalid: Invalid, lang: Lang) -> list[Line]:
    """The seed's ``메시지를 정상적으로 입력해주세요.`` and a hint saying what would work."""
    hint = invalid.problem.value
    if invalid.problem is Problem.BAD_TARGET:
        extra = msg(hint, lang, to=invalid.detail)
    elif invalid.problem is Problem.TOO_LONG:
        extra = msg(hint, lang, limit=invalid.detail)
    else:
        extra = msg(hint, lang)
    return [Line(Kind.ERROR, texts.text("bad_input", lang), local=True), Line(Kind.INFO, extra, local=True)]


def local(kind: Kind, text: str) -> Line:
    return Line(kind, text, local=True)


# ANSI SGR parameters per kind; MESSAGE keeps the terminal's own colour.
_SGR: dict[Kind, str] = {
    Kind.INFO: "36",  # cyan
    Kind.NOTICE: "33",  # yellow
    Kind.MESSAGE: "",
    Kind.WHISPER: "1;35",  # bold magenta
    Kind.SELF: "32",  # green
    Kind.ERROR: "1;31",  # bold red
}
_STAMP_SGR = "2"


def format_line(line: Line, *, color: bool, stamp: str | None = None) -> str:
    """``line`` ready for a terminal: an optional ``[HH:MM:SS]`` stamp, ANSI colour when asked.

    Each physical line is coloured on its own, so that a terminal that wraps
    or scrolls never carries a colour over.
    """
    rows = line.text.split("\n")
    out: list[str] = []
    for i, row in enumerate(rows):
        prefix = ""
        if stamp is not None:
            prefix = f"[{stamp}] " if i == 0 else " " * (len(stamp) + 3)
            if color:
                prefix = f"\x1b[{_STAMP_SGR}m{prefix}\x1b[0m"
        sgr = _SGR[line.kind]
        body = f"\x1b[{sgr}m{row}\x1b[0m" if color and sgr else row
        out.append(prefix + body)
    return "\n".join(out)
