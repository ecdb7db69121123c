"""What this node does when the shared room (``--redis``) tells it something beyond the room's frames.

The room's side is :class:`tcp_server.room.base.RoomWatcher`; this is the server's: close a member whose
place is gone or whose session moved, remove one an operator kicked elsewhere, tell everyone the room is
degraded, and take the room's bans and mutes as this node's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .admin import enforce_bans
from .connection import ChatConnection
from .protocol.codes import ErrorReason
from .protocol.frames import Error

if TYPE_CHECKING:
    from .room.redis_recall import RedisSessionStore
    from .server import ChatServer

admin_log = logging.getLogger("tcp_server.admin")


class NodeWatcher:
    """A :class:`~tcp_server.room.base.RoomWatcher` acting on one :class:`ChatServer` (and its session store)."""

    def __init__(self, server: ChatServer, sessions: RedisSessionStore | None) -> None:
        self.server = server
        self.sessions = sessions

    def _connection(self, key: str) -> ChatConnection | None:
        """The line connection holding ``key`` on this node (other members, such as a resume on its way
        in, are not closed from here)."""
        member = self.server.room.members.get(key)
        return member if isinstance(member, ChatConnection) else None

    def lost(self, key: str) -> None:
        """Closed with a clear 109 rather than left a ghost."""
        member = self._connection(key)
        if member is not None:
            member.refuse(ErrorReason.UNAVAILABLE, "this server lost your place in the room; please reconnect")

    def replaced(self, key: str) -> None:
        """The tab that reconnects wins: 109#replaced here."""
        if self.sessions is not None:
            self.sessions.forget(key)
        member = self._connection(key)
        if member is not None:
            member.replaced()

    def kicked(self, key: str, reason: str) -> None:
        member = self._connection(key)
        if member is not None:
            admin_log.warning("kicked %s [%s] through another node: %s",
                              member.session.name, member.session.address, reason or "-")
            member.remove(ErrorReason.KICKED, reason)

    def degraded(self) -> None:
        """Every member hears it once, since messages now reach no one until Redis is back."""
        notice = Error(ErrorReason.UNAVAILABLE, "the room is degraded: messages are not delivered until it recovers")
        for member in list(self.server.room.members.values()):
            member.send(notice)

    def bans_changed(self, bans: list[dict[str, Any]]) -> None:
        """The room's bans replace this node's; whoever they keep out is removed (told why)."""
        self.server.moderation.load_json({"bans": bans})
        removed = enforce_bans(self.server)
        if removed:
            admin_log.warning("a ban from the shared room removed %s", ", ".join(removed))

    def mutes_changed(self, mutes: dict[str, float | None]) -> None:
        self.server.moderation.load_mutes(mutes)

    def accounts_loaded(self, accounts: dict[str, str]) -> None:
        """The room's accounts join this node's (a node started while the database was down has them now)."""
        if self.server.accounts is not None:
            self.server.accounts.registry.learn_all(accounts)

    def account_changed(self, key: str, name: str | None, holder: bool) -> None:
        if self.server.accounts is not None:
            self.server.accounts.registry.learn(key, name, holder)

    def author_forgotten(self, key: str) -> None:
        if self.server.gate is not None:
            self.server.gate.forget_author(key)
