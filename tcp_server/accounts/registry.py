"""The registered IDs' keys, held in memory: ``001`` refuses them even while the database is down.

Loaded from the store at start; every change this node makes (register, delete) updates it at once,
and :meth:`AccountRegistry.refresh` reloads it (an operator's change through another process).
With several nodes (``--redis``) every change is also shared: written to the room's ``P accounts``
hash and announced, so every node's registry follows at once (and the claim script refuses a guest an
account's key atomically); a node's load of the room brings the hash, so a node started while the
database is down still knows them.
"""

from __future__ import annotations

from collections.abc import Callable

from ..store.accounts import AccountStore


class AccountRegistry:
    """key -> the ID as registered. ``registered(key)`` is what the pure session asks."""

    def __init__(self, store: AccountStore | None = None) -> None:
        self.store = store
        self._keys: dict[str, str] = {}
        self.shared: Callable[[str, str | None, bool], None] | None = None
        """Tells the other nodes of a change made here (the shared room's ``save_account``)."""
        self.synced: Callable[[dict[str, str]], None] | None = None
        """Given the database's accounts at each reload (the shared room's ``sync_accounts``)."""
        self.registered_online: Callable[[str, str], None] | None = None
        """An online guest's ID became its account, here or on another node: the room tells its members
        (``LocalRoom.account_registered``: ``132#ID``, live, not counted)."""
        self._reads: list[dict[str, str | None]] = []
        """One per reload in flight: the changes made meanwhile (key -> ID, None: deleted), which its
        read of the table may predate and must not undo."""

    def registered(self, key: str) -> bool:
        return key in self._keys

    def add(self, key: str, display: str, holder: bool = False) -> None:
        """``holder``: the ID's online holder registered it (``019``), so it is an account from now on."""
        self._set(key, display)
        if self.shared is not None:
            self.shared(key, display, holder)
        if holder and self.registered_online is not None:
            self.registered_online(key, display)

    def remove(self, key: str) -> None:
        self._set(key, None)
        if self.shared is not None:
            self.shared(key, None, False)

    def learn(self, key: str, display: str | None, holder: bool = False) -> None:
        """Another node's change (not shared again)."""
        self._set(key, display)
        if holder and display is not None and self.registered_online is not None:
            self.registered_online(key, display)

    def learn_all(self, accounts: dict[str, str]) -> None:
        """The room's accounts at its load, added to what the database gave (its reload corrects the rest)."""
        for key, display in accounts.items():
            self._set(key, display)

    def _set(self, key: str, display: str | None) -> None:
        if display is None:
            self._keys.pop(key, None)
        else:
            self._keys[key] = display
        for changes in self._reads:
            changes[key] = display

    def snapshot(self) -> dict[str, str]:
        return dict(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    async def refresh(self) -> None:
        """Reload from the store (a failure leaves the keys held as they were).

        A change made here while the table is read (a ``chat-admin account delete``, another node's
        registration heard from Redis) may be missing from, or still in, what the read returns: it is
        applied again on top, so a reload never brings back a key deleted meanwhile (nor shares it)."""
        if self.store is None:
            return
        changes: dict[str, str | None] = {}
        self._reads.append(changes)
        try:
            keys = await self.store.keys()
        finally:
            self._reads = [read for read in self._reads if read is not changes]  # (by identity: {} == {})
        for key, display in changes.items():
            if display is None:
                keys.pop(key, None)
            else:
                keys[key] = display
        self._keys = keys
        if self.synced is not None:
            self.synced(dict(keys))
