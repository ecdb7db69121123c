"""Per-address keys and budgets, pure (tcp_server/protocol/limits.py)."""

from __future__ import annotations

import pytest

from tcp_server.protocol.limits import AddressBuckets, AddressLimits, address_key, check_ipv6_prefix


@pytest.mark.parametrize(("address", "prefix", "key"), [
    ("203.0.113.7", 64, "203.0.113.7"),
    ("2001:db8:1:2:aaaa::1", 64, "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", 64, "2001:db8:1:2::/64"),  # same /64: same key
    ("2001:db8:1:3::1", 64, "2001:db8:1:3::/64"),
    ("2001:db8:1:2:aaaa::1", 48, "2001:db8:1::/48"),
    ("2001:db8:1:2:aaaa::1", 128, "2001:db8:1:2:aaaa::1"),
    ("[2001:db8::1]", 64, "2001:db8::/64"),
    ("fe80::1%eth0", 64, "fe80::/64"),
    ("::ffff:198.51.100.4", 64, "198.51.100.4"),  # IPv4-mapped: its IPv4 address
    ("::1", 64, "::/64"),
    ("unknown", 64, "unknown"),
    ("", 64, ""),
])
def test_address_key(address: str, prefix: int, key: str) -> None:
    assert address_key(address, prefix) == key


def test_three_addresses_of_one_ipv6_64_share_one_budget() -> None:
    limits = AddressLimits(max_open=2, max_per_minute=0)
    addresses = ["2001:db8:0:1::a", "2001:db8:0:1::b", "2001:db8:0:1::c"]
    admitted = [limits.admit(address_key(a), 0.0) for a in addresses]
    assert admitted == [True, True, False]
    assert limits.admit(address_key("2001:db8:0:2::a"), 0.0)  # the next /64 is someone else


@pytest.mark.parametrize("prefix", [31, 129, -1])
def test_ipv6_prefix_range(prefix: int) -> None:
    with pytest.raises(ValueError):
        check_ipv6_prefix(prefix)


def test_address_buckets_share_a_budget_per_key() -> None:
    buckets = AddressBuckets(rate=10.0, burst=3)
    assert [buckets.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert buckets.take("b", 0.0)  # another address has its own
    assert buckets.wait_time("a") == pytest.approx(0.1)
    assert buckets.take("a", 0.1)  # refilled at the rate
    buckets.sweep(10.0)  # both full again: forgotten
    assert len(buckets) == 0
