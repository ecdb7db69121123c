"""User IDs: validation, normalisation and the uniqueness key.

An ID is shown as typed (after NFC) but compared case-insensitively, so that
``Alice`` and ``alice`` cannot both be online and confuse their readers.
"""

from __future__ import annotations

import unicodedata

MAX_ID_LENGTH = 32


class InvalidId(ValueError):
    """The ID breaks a rule; ``str(exc)`` says which, in English."""


def _is_forbidden_char(ch: str) -> bool:
    # Separators (Z*), controls and other invisible characters (C*) let two IDs
    # look alike or break a terminal; '#' would split the frame.
    return ch == "#" or ch.isspace() or unicodedata.category(ch)[0] in "CZ"


def normalize_id(raw: str) -> str:
    """Return the NFC form of ``raw`` or raise :class:`InvalidId`."""
    name = unicodedata.normalize("NFC", raw)
    if not name:
        raise InvalidId("empty ID")
    if len(name) > MAX_ID_LENGTH:
        raise InvalidId(f"ID longer than {MAX_ID_LENGTH} characters")
    for ch in name:
        if _is_forbidden_char(ch):
            raise InvalidId(f"ID contains a forbidden character U+{ord(ch):04X}")
    return name


def id_key(name: str) -> str:
    """The key under which an (already normalised) ID is unique."""
    return name.casefold()


def is_valid_id(raw: str) -> bool:
    try:
        normalize_id(raw)
    except InvalidId:
        return False
    return True
