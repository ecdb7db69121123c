"""Password guessing: failed logins counted, and lockouts, pure: the caller passes the clock.

Failures are counted under three keys, each in a window of 15 minutes from its first failure:

- an account from one address (default limit 10): one person guessing one account;
- an address, whatever the accounts (30): one host trying many accounts (password spraying);
- an account from anywhere (100): many hosts guessing one account.

Reaching a limit locks that key: 60 s, doubled for each further lockout of the same key, capped
at an hour. While a key is locked every login it covers is answered at once
(``109#too-many-attempts#SECONDS``), the right password included, with no hash spent; the
count starts again after each lockout. A success clears the account's counts (its own and from
that address; not the address's, or one good account would let a host spray on).

Addresses are counted by :func:`~.limits.address_key` (IPv6 by its /64, as the connection limits
do). Unknown accounts are counted like known ones, so lockouts do not tell which exist.

Memory is bounded: a key is forgotten a window after its last failure or lockout, and at most
``max_keys`` are kept; past that the least recently failed key is evicted, so a million distinct
addresses cost ``max_keys`` entries, not a million (an evicted key forgets its count: the other two
keys of each failure still hold theirs).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .limits import DEFAULT_IPV6_PREFIX, address_key


class Scope(StrEnum):
    """Which count a lockout is of (for the log and the metrics)."""

    ACCOUNT_ADDRESS = "account-address"
    ADDRESS = "address"
    ACCOUNT = "account"


@dataclass(frozen=True, slots=True)
class GuessLimits:
    """The limits; a limit of 0 turns that count off."""

    per_account_address: int = 10
    per_address: int = 30
    per_account: int = 100
    window: float = 15 * 60.0
    lockout: float = 60.0
    """The first lockout; each further one of the same key lasts twice the one before."""
    max_lockout: float = 3600.0
    max_keys: int = 100_000
    """Counts kept at most (~300 bytes each; tests/protocol/test_guessing.py measures it)."""
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX

    def __post_init__(self) -> None:
        if min(self.per_account_address, self.per_address, self.per_account) < 0:
            raise ValueError("a guessing limit must be >= 0 (0 turns it off)")
        if self.window <= 0 or self.lockout <= 0 or self.max_lockout < self.lockout or self.max_keys < 3:
            raise ValueError("window and lockout must be > 0, max_lockout >= lockout, max_keys >= 3")


@dataclass(frozen=True, slots=True)
class Lockout:
    """A key locked: until when, and the whole seconds left as ``109#too-many-attempts#SECONDS`` says them."""

    scope: Scope
    until: float
    seconds: int


class _Count:
    """One key's failures in its window, its lockout and how many it had (for the doubling)."""

    __slots__ = ("failures", "window_start", "last", "locked_until", "level")

    def __init__(self, now: float) -> None:
        self.failures = 0
        self.window_start = now
        self.last = now
        self.locked_until = 0.0
        self.level = 0

    def forgettable(self, now: float, window: float) -> bool:
        """Nothing for a window since its last failure and since its lockout ended: it would act as new."""
        return now >= max(self.last, self.locked_until) + window


_Key = tuple[str, ...]
_MAX_LEVEL = 32  # 60 s * 2**32 is past any cap; the level stops growing there


class GuessCounter:
    """Failed logins per (account, address), per address and per account; who is locked out."""

    def __init__(self, clock: Callable[[], float], limits: GuessLimits | None = None) -> None:
        self.clock = clock
        self.limits = limits if limits is not None else GuessLimits()
        self._counts: OrderedDict[_Key, _Count] = OrderedDict()  # least recently failed first
        self.evicted = 0
        """Counts dropped because ``max_keys`` were kept (for the metrics: a flood of addresses)."""

    def __len__(self) -> int:
        """Counts kept now (for leak checks)."""
        return len(self._counts)

    def locked(self, account: str, address: str) -> Lockout | None:
        """Whether a login to ``account`` (its ID key) from ``address`` is refused now, and for how long
        (the longest of the locks that cover it). Ask before hashing: a locked login costs nothing."""
        now = self.clock()
        found: Lockout | None = None
        for scope, key, _limit in self._keys(account, address):
            count = self._counts.get(key)
            if count is not None and count.locked_until > now and (found is None or count.locked_until > found.until):
                found = Lockout(scope, count.locked_until, math.ceil(count.locked_until - now))
        return found

    def failure(self, account: str, address: str) -> Lockout | None:
        """Count a wrong password (or an unknown account); the lockout it started, if any (the longest)."""
        now = self.clock()
        self._expire_oldest(now)
        started: Lockout | None = None
        for scope, key, limit in self._keys(account, address):
            count = self._touch(key, now)
            if count.failures == 0 or now - count.window_start >= self.limits.window:
                count.failures, count.window_start = 0, now
            count.failures += 1
            count.last = now
            if count.failures >= limit:
                duration = min(self.limits.lockout * 2.0 ** count.level, self.limits.max_lockout)
                count.level = min(count.level + 1, _MAX_LEVEL)
                count.locked_until = max(count.locked_until, now + duration)
                count.failures = 0
                if started is None or count.locked_until > started.until:
                    started = Lockout(scope, count.locked_until, math.ceil(count.locked_until - now))
        return started

    def success(self, account: str, address: str) -> None:
        """A right password: the account's counts (from anywhere and from this address) start again."""
        for scope, key, _limit in self._keys(account, address):
            if scope is not Scope.ADDRESS:
                self._counts.pop(key, None)

    def sweep(self) -> int:
        """Forget every count that would act as new; how many were forgotten (a periodic task's job)."""
        now = self.clock()
        window = self.limits.window
        stale = [key for key, count in self._counts.items() if count.forgettable(now, window)]
        for key in stale:
            del self._counts[key]
        return len(stale)

    # ------------------------------------------------------------ internals

    def _keys(self, account: str, address: str) -> list[tuple[Scope, _Key, int]]:
        limits = self.limits
        where = address_key(address, limits.ipv6_prefix)
        keys = [
            (Scope.ACCOUNT_ADDRESS, ("p", account, where), limits.per_account_address),
            (Scope.ADDRESS, ("a", where), limits.per_address),
            (Scope.ACCOUNT, ("u", account), limits.per_account),
        ]
        return [entry for entry in keys if entry[2] > 0]

    def _touch(self, key: _Key, now: float) -> _Count:
        count = self._counts.get(key)
        if count is not None:
            self._counts.move_to_end(key)
            return count
        while len(self._counts) >= self.limits.max_keys:
            self._counts.popitem(last=False)
            self.evicted += 1
        count = self._counts[key] = _Count(now)
        return count

    def _expire_oldest(self, now: float) -> None:
        """Forget the least recently failed counts while they are forgettable: each failure pays a
        little of the cleaning, so no sweep is needed for the memory to stay small."""
        window = self.limits.window
        for _ in range(4):
            if not self._counts:
                return
            key, count = next(iter(self._counts.items()))
            if not count.forgettable(now, window):
                return
            del self._counts[key]
