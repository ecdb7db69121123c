"""Tab completion candidates: commands at the start of the line, online IDs after ``/m``.

Pure, so that the prompt_toolkit completer in :mod:`.interactive` is a thin shell.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .commands import COMMANDS

_WHISPER_TARGET = re.compile(r"^/m +(\S*)$")
_TAKES_ARGS = frozenset({"/m", "/b", "/search"})


def complete(before_cursor: str, online: Sequence[str]) -> list[tuple[str, int]]:
    """Candidates as ``(replacement, start_position)``; start is negative, relative to the cursor.

    A replacement ends with a space when more is to be typed after it.
    """
    if before_cursor.startswith("/") and " " not in before_cursor:
        return [
            (cmd + (" " if cmd in _TAKES_ARGS else ""), -len(before_cursor))
            for cmd in COMMANDS
            if cmd.startswith(before_cursor)
        ]
    match = _WHISPER_TARGET.match(before_cursor)
    if match:
        prefix = match.group(1)
        folded = prefix.casefold()
        return [(name + " ", -len(prefix)) for name in online if name.casefold().startswith(folded)]
    return []
