"""What a connection needs of its server node: the :class:`Node` protocol (the server is one)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from .config import ServerConfig
from .local_room import LocalRoom
from .protocol.limits import AddressBuckets, AddressLimits
from .protocol.moderation import Moderation
from .room import Bus, Directory, History, SessionStore
from .stats import ServerStats

if TYPE_CHECKING:
    from .accounts.service import Accounts
    from .joiner import Joiner
    from .store.db import MessageStore


class Node(Protocol):
    """What a connection needs of its server node (the server is one; tests may build another)."""

    config: ServerConfig
    directory: Directory
    bus: Bus
    history: History | None
    sessions: SessionStore | None
    store: MessageStore | None
    accounts: Accounts | None
    cursor_key: bytes | None
    address_limits: AddressLimits
    address_buckets: AddressBuckets | None
    moderation: Moderation
    stats: ServerStats
    closing: bool
    in_grace: int

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def room(self) -> LocalRoom: ...

    @property
    def joiner(self) -> Joiner: ...

    def opened(self, conn: Any) -> int:
        """Count ``conn``; the number of connections now open."""

    def closed(self, conn: Any) -> None: ...

    def log_disconnected(self, name: str, address: str) -> None: ...
