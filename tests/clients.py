"""What every hand-made test peer shares: items parsed from its connection, received with timeouts.

A test client (the wire protocol's, a JSON events' one, a browser stand-in, a
raw WebSocket page, the seed's own client) only says how one read of its
connection becomes items; waiting, matching and timing out are written once here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

TIMEOUT = 5.0

T = TypeVar("T")


def matches(item: object, predicate: object) -> bool:
    """A type (isinstance), an event ``type`` name (for dict events), a function, or an equal item."""
    if isinstance(predicate, type):
        return isinstance(item, predicate)
    if isinstance(predicate, str) and isinstance(item, dict):
        return bool(item.get("type") == predicate)
    if callable(predicate) and not isinstance(predicate, (str, bytes)):
        check: Callable[[Any], object] = predicate
        return bool(check(item))
    return item == predicate


class Receiver(Generic[T]):
    """Receiving with timeouts everywhere; subclasses say what one read of their connection yields."""

    def __init__(self) -> None:
        self._pending: list[T] = []

    async def read_items(self, timeout: float) -> list[T]:
        """One read of the connection, parsed (maybe no item yet); ConnectionError at its end."""
        raise NotImplementedError

    async def recv(self, timeout: float = TIMEOUT) -> T:
        """The next item; fails the test after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._pending:
            self._pending += await self.read_items(max(0.01, deadline - loop.time()))
        return self._pending.pop(0)

    async def recv_until(self, predicate: object, timeout: float = TIMEOUT) -> list[T]:
        """Items up to and including the first that matches (see :func:`matches`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen: list[T] = []
        while True:
            item = await self.recv(max(0.01, deadline - loop.time()))
            seen.append(item)
            if matches(item, predicate):
                return seen

    def pending(self) -> T | None:
        """The next item if one was already read (no waiting)."""
        return self._pending[0] if self._pending else None
