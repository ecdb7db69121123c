"""What a session needs to decide the account frames (``018``-``020``, and ``001`` for a registered ID). Pure.

The node makes one :class:`AccountRules` (accounts on: a durable database) and gives it to every
session; the registry of keys is the in-memory one, so the answers hold during a database outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from typing import Protocol

from .guessing import GuessCounter


class Registry(Protocol):
    """The registered IDs' keys."""

    def registered(self, key: str) -> bool: ...


class JoinedBy(Enum):
    """How a connection came into the room: what ``019`` and ``020`` are allowed on."""

    GUEST = auto()
    """``001``: may register its ID (``019``)."""
    LOGIN = auto()
    """``018`` (or a ``019`` that registered): may change the password (``020``)."""
    RESUME = auto()
    """``008``: a token proves neither, so neither is allowed (a stolen token cannot lock the owner out)."""


@dataclass(slots=True)
class AccountRules:
    """The node's account settings and state shared by its sessions."""

    registry: Registry
    guessing: GuessCounter
    registration_open: bool = True
    """``--registration open``: guests may register with ``019``; ``admin``: only ``chat-admin account add``."""
    guests: bool = True
    """``--guests no``: ``001`` is refused (``109#needs-login``); everyone logs in."""
