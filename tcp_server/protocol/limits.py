"""Rate and count limits, pure: the caller passes the clock.

Used by the server (per connection and per address) and by the gateway (per
WebSocket), so both apply the same rules.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field

CONTROL_RATE = 20.0
CONTROL_BURST = 40
"""The control budget (pings, acks, set-up frames: ``Budget.CONTROL``): generous for any real client,
but not free. The server charges it per connection and the gateway per WebSocket, apart from the
message budget, so a page's confirming ping never costs a message."""


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

    def release(self, address: str, now: float, refund: bool = False) -> None:
        """A connection counted by :meth:`admit` has closed.

        ``refund``: it was never this address's to count (a gateway's backend that
        named its real user with 000), so it leaves the per-minute count too.
        """
        state = self._by_address.get(address)
        if state is None:
            return
        state.open = max(0, state.open - 1)
        recent = state.recent
        if refund and recent:
            recent.pop()
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


DEFAULT_IPV6_PREFIX = 64


def canonical_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """One spelling per host: an IPv4-mapped IPv6 address as its IPv4 address, an IPv6 zone dropped."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.scope_id is not None:
            return ipaddress.IPv6Address(ip.packed)
    return ip


def canonical_address(value: str) -> str:
    """A gateway's ``000`` address, normalised once before bans, limits and logs; ValueError unless it
    is an IP address without a zone (a zone is a local interface name, meaningless from another host)."""
    ip = ipaddress.ip_address(value)
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        raise ValueError("an address with a zone")
    return str(canonical_ip(ip))


def peer_address(value: str) -> str:
    """A socket peer's address, normalised like :func:`canonical_address` (its zone, set by the kernel,
    dropped); anything that is not an IP address (a Unix socket's empty peer) as it is."""
    try:
        return str(canonical_ip(ipaddress.ip_address(value)))
    except ValueError:
        return value


def address_key(address: str, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> str:
    """The key an address is limited under: IPv4 as it is, IPv6 by its ``/ipv6_prefix`` network.

    One IPv6 user usually holds a whole /64, so counting its addresses one by
    one would multiply every per-address limit by 2**64. An IPv4-mapped IPv6
    address counts as its IPv4 address; anything that is not an IP address
    (a Unix socket's empty peer, ``unknown``) is its own key.
    """
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if ipv6_prefix < 128:
            return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))
    return str(ip)


def check_ipv6_prefix(prefix: int) -> int:
    """A usable ``--ipv6-prefix`` (32 to 128), or ValueError."""
    if not 32 <= prefix <= 128:
        raise ValueError("--ipv6-prefix must be between 32 and 128")
    return prefix


class AddressBuckets:
    """One :class:`TokenBucket` per address key, for a budget shared by all of an address's connections.

    Buckets that have filled up again are forgotten by :meth:`sweep`, so the
    table holds only addresses that spent something recently.
    """

    def __init__(self, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> bool:
        """Spend one token of ``key``'s bucket if there is one."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now)

    def wait_time(self, key: str) -> float:
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait_time()

    def sweep(self, now: float) -> None:
        """Forget the buckets that are full again (they would behave exactly like new ones)."""
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * b.rate >= b.burst]
        for key in full:
            del self._buckets[key]
