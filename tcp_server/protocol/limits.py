"""Rate and count limits, pure: the caller passes the clock.

Used by the server (per connection and per address) and by the gateway (per
WebSocket), so both apply the same rules.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        tokens = self.tokens + (now - self.stamp) * self.rate
        self.stamp = now
        if tokens > self.burst:
            tokens = self.burst
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False

    def wait_time(self) -> float:
        """Seconds until one token is there (0 if one is)."""
        missing = 1.0 - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate


@dataclass
class _AddressState:
    open: int = 0
    recent: deque[float] = field(default_factory=deque)


class AddressLimits:
    """Concurrent connections and new connections a minute, per address.

    ``max_open`` or ``max_per_minute`` of 0 turns that limit off.
    """

    WINDOW = 60.0

    def __init__(self, max_open: int, max_per_minute: int) -> None:
        self.max_open = max_open
        self.max_per_minute = max_per_minute
        self._by_address: dict[str, _AddressState] = {}

    def open_count(self, address: str) -> int:
        state = self._by_address.get(address)
        return state.open if state else 0

    def __len__(self) -> int:
        """Addresses with state kept (for leak checks)."""
        return len(self._by_address)

    def admit(self, address: str, now: float) -> bool:
        """Count a new connection from ``address``; False (nothing counted) if over a limit."""
        state = self._by_address.get(address)
        if state is None:
            state = self._by_address[address] = _AddressState()
        recent = state.recent
        while recent and now - recent[0] >= self.WINDOW:
            recent.popleft()
        if (self.max_open and state.open >= self.max_open) or (
            self.max_per_minute and len(recent) >= self.max_per_minute
        ):
            self._forget_if_idle(address, state)
            return False
        state.open += 1
        if self.max_per_minute:
            recent.append(now)
        return True

    def release(self, address: str, now: float) -> None:
        """A connection counted by :meth:`admit` has closed."""
        state = self._by_address.get(address)
        if state is None:
            return
        state.open = max(0, state.open - 1)
        recent = state.recent
        while recent and now - recent[0] >= self.WINDOW:
            recent.popleft()
        self._forget_if_idle(address, state)

    def sweep(self, now: float) -> None:
        """Drop the history of addresses with nothing open and nothing recent."""
        for address, state in list(self._by_address.items()):
            recent = state.recent
            while recent and now - recent[0] >= self.WINDOW:
                recent.popleft()
            self._forget_if_idle(address, state)

    def _forget_if_idle(self, address: str, state: _AddressState) -> None:
        if state.open == 0 and not state.recent:
            del self._by_address[address]
