"""The registered IDs' keys, held in memory: ``001`` refuses them even while the database is down.

Loaded from the store at start; every change this node makes (register, delete) updates it at once,
and :meth:`AccountRegistry.refresh` reloads it (an operator's change through another process).
"""

from __future__ import annotations

from ..store.accounts import AccountStore


class AccountRegistry:
    """key -> the ID as registered. ``registered(key)`` is what the pure session asks."""

    def __init__(self, store: AccountStore | None = None) -> None:
        self.store = store
        self._keys: dict[str, str] = {}

    def registered(self, key: str) -> bool:
        return key in self._keys

    def add(self, key: str, display: str) -> None:
        self._keys[key] = display

    def remove(self, key: str) -> None:
        self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)

    async def refresh(self) -> None:
        """Reload from the store (a failure leaves the keys held as they were)."""
        if self.store is not None:
            self._keys = await self.store.keys()
