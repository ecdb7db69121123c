"""Failed-login counting and lockouts (tcp_server/protocol/guessing.py), on a fake clock."""

from __future__ import annotations

import tracemalloc

import pytest

from tcp_server.protocol.guessing import GuessCounter, GuessLimits, Lockout, Scope


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def login(guessing: GuessCounter, account: str, address: str) -> Lockout | None:
    """What the server will do with a wrong password: refuse at once if locked, else hash and count it.
    Returns the lockout that refused it (None: it was hashed and counted)."""
    refused = guessing.locked(account, address)
    if refused is None:
        guessing.failure(account, address)
    return refused


def test_ten_failures_lock_an_account_from_one_address(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    for _ in range(9):
        assert guessing.failure("alice", "203.0.113.7") is None
    assert guessing.locked("alice", "203.0.113.7") is None
    started = guessing.failure("alice", "203.0.113.7")
    assert started == Lockout(Scope.ACCOUNT_ADDRESS, clock.now + 60, 60)
    assert guessing.locked("alice", "203.0.113.7") == started
    assert guessing.locked("alice", "198.51.100.1") is None  # the account from elsewhere
    assert guessing.locked("bob", "203.0.113.7") is None  # another account from there (10 of the address's 30)


def test_thirty_failures_lock_an_address_whatever_the_accounts(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    for i in range(29):
        assert guessing.failure(f"user{i}", "203.0.113.7") is None
    started = guessing.failure("user29", "203.0.113.7")
    assert started is not None and started.scope is Scope.ADDRESS and started.seconds == 60
    locked = guessing.locked("someone-new", "203.0.113.7")
    assert locked is not None and locked.scope is Scope.ADDRESS
    assert guessing.locked("someone-new", "203.0.113.8") is None


def test_a_hundred_failures_lock_an_account_from_anywhere(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    for i in range(99):
        assert guessing.failure("alice", f"10.0.{i // 256}.{i % 256}") is None
    started = guessing.failure("alice", "10.0.9.9")
    assert started is not None and started.scope is Scope.ACCOUNT
    locked = guessing.locked("alice", "192.0.2.200")  # the owner, from a fresh address, right password or not
    assert locked is not None and locked.scope is Scope.ACCOUNT and locked.seconds == 60
    assert guessing.locked("bob", "10.0.0.1") is None


def test_seconds_left_are_rounded_up(clock: Clock) -> None:
    guessing = GuessCounter(clock, GuessLimits(per_account_address=1))
    guessing.failure("alice", "203.0.113.7")
    clock.now += 0.5
    assert (locked := guessing.locked("alice", "203.0.113.7")) is not None and locked.seconds == 60
    clock.now += 59.0
    assert (locked := guessing.locked("alice", "203.0.113.7")) is not None and locked.seconds == 1
    clock.now += 0.5
    assert guessing.locked("alice", "203.0.113.7") is None  # over at the second it said


def test_lockouts_double_and_are_capped(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    durations = []
    for _ in range(9):
        started = None
        for _ in range(10):
            assert guessing.locked("alice", "203.0.113.7") is None
            started = guessing.failure("alice", "203.0.113.7")
        assert started is not None
        durations.append(started.seconds)
        clock.now = started.until  # the first moment it is over
    assert durations == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


def test_a_thousand_wrong_passwords_from_one_address(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    hashed, lockouts = 0, []
    for _ in range(1000):  # one a second, for 1000 s
        refused = guessing.locked("alice", "203.0.113.7")
        if refused is None:
            hashed += 1
            if (started := guessing.failure("alice", "203.0.113.7")) is not None:
                lockouts.append((started.scope, started.seconds))
        clock.now += 1
    assert hashed == 50  # 10 before each of the 5 lockouts the 1000 s hold; the other 950 cost no hash
    assert lockouts == [(Scope.ACCOUNT_ADDRESS, s) for s in (60, 120, 240, 480, 960)]


def test_a_thousand_addresses_at_one_account(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    hashed, lockouts = 0, []
    for i in range(1000):  # two a second from a thousand addresses, for 500 s
        address = f"198.51.{i // 256}.{i % 256}"
        if guessing.locked("alice", address) is None:
            hashed += 1
            if (started := guessing.failure("alice", address)) is not None:
                lockouts.append((started.scope, started.seconds))
        clock.now += 0.5
    assert hashed == 300  # 100 before each of the 3 lockouts
    assert lockouts == [(Scope.ACCOUNT, 60), (Scope.ACCOUNT, 120), (Scope.ACCOUNT, 240)]
    assert guessing.locked("alice", "192.0.2.1") is not None  # still locked for everyone: the owner too


def test_a_success_clears_the_account_but_not_the_address(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    for _ in range(9):
        guessing.failure("alice", "203.0.113.7")
    guessing.success("alice", "203.0.113.7")
    for _ in range(9):
        assert guessing.failure("alice", "203.0.113.7") is None  # counting again from 0
    # The address's count (18 now) stays: a host's own good account does not let it spray on.
    for i in range(11):
        assert guessing.failure(f"other{i}", "203.0.113.7") is None
    started = guessing.failure("other11", "203.0.113.7")  # the address's 30th
    assert started is not None and started.scope is Scope.ADDRESS


def test_a_success_forgets_the_doubling(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    for _ in range(10):
        started = guessing.failure("alice", "203.0.113.7")
    assert started is not None and started.seconds == 60
    clock.now = started.until
    guessing.success("alice", "203.0.113.7")
    for _ in range(10):
        started = guessing.failure("alice", "203.0.113.7")
    assert started is not None and started.scope is Scope.ACCOUNT_ADDRESS and started.seconds == 60


def test_failures_count_within_fifteen_minutes(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    for _ in range(9):
        guessing.failure("alice", "203.0.113.7")
    clock.now += 15 * 60 - 1
    assert guessing.failure("alice", "203.0.113.7") is not None  # 10 within the window

    other = GuessCounter(clock)
    for _ in range(9):
        other.failure("alice", "203.0.113.7")
    clock.now += 15 * 60
    assert other.failure("alice", "203.0.113.7") is None  # the window is over: this is 1 of a new one
    for _ in range(8):
        assert other.failure("alice", "203.0.113.7") is None
    assert other.failure("alice", "203.0.113.7") is not None


def test_counts_expire_and_the_doubling_is_forgotten(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    for _ in range(10):
        started = guessing.failure("alice", "203.0.113.7")
    assert started is not None and len(guessing) == 3
    clock.now = started.until + 15 * 60 - 1
    assert guessing.sweep() == 2  # the address's and the account's counts (not locked; a window since)
    assert len(guessing) == 1  # the locked one is kept a window after its lockout, for the doubling
    clock.now += 1
    assert guessing.sweep() == 1 and len(guessing) == 0
    for _ in range(10):
        started = guessing.failure("alice", "203.0.113.7")
    assert started is not None and started.seconds == 60  # a fresh start, not 120


def test_failures_clean_up_old_counts_without_a_sweep(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    for i in range(100):
        guessing.failure(f"user{i}", f"10.0.0.{i}")
    assert len(guessing) == 300
    clock.now += 15 * 60
    for i in range(100):
        guessing.failure(f"later{i}", f"10.1.0.{i}")
    assert len(guessing) == 300  # each failure dropped old counts as it added its own


def test_memory_is_capped_against_a_flood_of_addresses(clock: Clock) -> None:
    limits = GuessLimits(max_keys=1000)
    guessing = GuessCounter(clock, limits)
    for i in range(20_000):  # 20 times the cap, all within the window: nothing expires by itself
        guessing.failure(f"user{i % 5000}", f"2001:db8:{i:x}::1")  # a /64 each
        assert len(guessing) <= 1000
    assert guessing.evicted >= 20_000 * 3 - 1000 - 5000


def test_the_attacked_account_keeps_its_count_through_a_flood(clock: Clock) -> None:
    guessing = GuessCounter(clock, GuessLimits(max_keys=300))
    hashed = 0
    for i in range(20_000):
        address = f"2001:db8:{i:x}::1"
        if guessing.locked("alice", address) is None:
            hashed += 1
            guessing.failure("alice", address)
        assert len(guessing) <= 300
    assert hashed == 100  # the account's own count, touched by every failure, is never the oldest


def test_bytes_per_count_are_small(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(3000):
            guessing.failure(f"user{i}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        per_count = (tracemalloc.get_traced_memory()[0] - before) / len(guessing)
    finally:
        tracemalloc.stop()
    assert len(guessing) == 9000
    assert per_count < 400  # so the default 100,000 counts stay under 40 MB


def test_ipv6_addresses_count_by_their_64(clock: Clock) -> None:
    guessing = GuessCounter(clock)
    for i in range(9):
        guessing.failure("alice", f"2001:db8:1:2::{i + 1:x}")
    started = guessing.failure("alice", "2001:db8:1:2:ffff::1")
    assert started is not None and started.scope is Scope.ACCOUNT_ADDRESS
    assert guessing.locked("alice", "2001:db8:1:2:abcd::9") is not None  # any address of that /64
    assert guessing.locked("alice", "2001:db8:1:3::1") is None
    assert guessing.locked("alice", "::ffff:203.0.113.7") is None
    for _ in range(10):
        guessing.failure("bob", "::ffff:203.0.113.7")
    assert guessing.locked("bob", "203.0.113.7") is not None  # an IPv4-mapped address is its IPv4 address


def test_a_limit_of_zero_turns_that_count_off(clock: Clock) -> None:
    guessing = GuessCounter(clock, GuessLimits(per_account_address=0, per_address=0))
    for _ in range(99):
        assert guessing.failure("alice", "203.0.113.7") is None
    assert len(guessing) == 1
    started = guessing.failure("alice", "203.0.113.7")
    assert started is not None and started.scope is Scope.ACCOUNT


@pytest.mark.parametrize("bad", [
    dict(per_address=-1), dict(window=0), dict(lockout=0), dict(lockout=60, max_lockout=30), dict(max_keys=2),
])
def test_bad_limits_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GuessLimits(**bad)  # type: ignore[arg-type]
