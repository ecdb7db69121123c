"""Log output for chat-server, chat-gateway and chat-run: text (default) or JSON lines.

``--log-format json`` writes one JSON object a line (``time``, ``level``,
``logger``, ``message``, and whatever the call passed with ``extra=``, e.g. the
``user`` and ``address`` of a join or leave), so a log shipper needs no parsing
rules. Exceptions come as one ``exception`` string field, never as extra lines.

Values from peers (paths, headers, hosts, IDs, addresses, reasons) reach log lines in many places,
so they are made safe here, once, for every line: in text, control characters (C0, DEL, C1 such as
U+0085), line and paragraph separators and bidi controls are written as ``\\n``, ``\\x1b``,
``\\u2028``: nothing a peer sent can start a line or move a terminal's cursor. A traceback keeps
its lines, each indented under its record. JSON lines escape the same characters, so a line
splitter that also breaks at U+2028 or U+0085 still sees one object a line.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Control characters (C0, DEL, C1), line/paragraph separators, bidi embeddings/overrides/isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
TRACEBACK_INDENT = "  | "
"""What each line of a traceback starts with: never a timestamp, whatever an exception's text says."""


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every character that could break a log line or steer a terminal escaped."""
    return _UNSAFE.sub(_escaped, text) if _UNSAFE.search(text) else text


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` lines whose message is escaped (:func:`escape`); tracebacks indented under it."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        blocks = []
        if record.exc_info:
            blocks.append(self.formatException(record.exc_info))
        if record.stack_info:
            blocks.append(self.formatStack(record.stack_info))
        for block in blocks:
            line += "".join(f"\n{TRACEBACK_INDENT}{escape(part)}" for part in block.split("\n"))
        return line


# What every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: the record's fixed fields plus its ``extra`` ones."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # json escapes C0 itself; DEL, C1 and the separators it leaves raw are valid JSON but not one line
        # to every reader. (They can only occur inside strings, where \\uXXXX means the same.)
        return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(entry, ensure_ascii=False))


def setup_logging(level: str, log_format: str = "text") -> None:
    """The root logger writes to stderr in ``log_format``, at ``level`` (like ``basicConfig``: a
    root logger that already has handlers, e.g. under pytest, is left alone)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
