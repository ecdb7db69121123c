"""Bans and mutes, pure: targets, durations, expiry on an injected clock, persistence both ways."""

from __future__ import annotations

import pytest

from tcp_server.protocol.ids import id_key
from tcp_server.protocol.moderation import Moderation, ban_target, parse_duration


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("30s", 30), ("10m", 600), ("2h", 7200),
                                               ("1d", 86400), ("1w", 604800), ("1.5h", 5400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "0", "10y", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(("text", "target"), [
    ("203.0.113.7", ("network", "203.0.113.7/32")),
    ("203.0.113.0/24", ("network", "203.0.113.0/24")),
    ("203.0.113.9/24", ("network", "203.0.113.0/24")),
    ("2001:db8::/64", ("network", "2001:db8::/64")),
    ("Alice", ("id", "Alice")),
    ("민수", ("id", "민수")),
])
def test_ban_targets(text: str, target: tuple[str, str]) -> None:
    assert ban_target(text) == target


def test_a_ban_by_id_matches_every_spelling_of_it_and_expires() -> None:
    clock = Clock()
    mod = Moderation(clock)
    mod.ban("Alice", "spam", duration=60, by="uid 0")
    assert mod.banned(id_key("ALICE"), "192.0.2.1") is not None
    assert mod.banned(id_key("bob"), "192.0.2.1") is None
    clock.now += 61
    assert mod.banned(id_key("alice"), None) is None and mod.bans() == []


def test_a_ban_by_network_matches_addresses_in_it_until_lifted() -> None:
    mod = Moderation(Clock())
    mod.ban("2001:db8:1::/48", "network")
    assert mod.banned(None, "2001:db8:1:2::3") is not None
    assert mod.banned(None, "2001:db8:2::1") is None
    assert mod.banned(None, "not an address") is None
    assert mod.unban("2001:db8:1::/48") is not None and mod.banned(None, "2001:db8:1:2::3") is None


def test_mutes_end_on_time_or_when_lifted() -> None:
    clock = Clock()
    mod = Moderation(clock)
    mod.mute("Loud", 30)
    assert mod.muted(id_key("loud"))
    clock.now += 31
    assert not mod.muted(id_key("loud"))
    mod.mute("loud")
    assert mod.unmute("LOUD") and not mod.muted(id_key("loud"))
    assert not mod.unmute("loud")


def test_bans_persist_both_ways() -> None:
    clock = Clock()
    mod = Moderation(clock)
    mod.ban("troll", "for good", by="uid 1000")
    mod.ban("198.51.100.0/24", "net", duration=3600)
    again = Moderation(clock)
    again.load_json(mod.to_json())
    assert again.bans() == mod.bans()
    assert again.banned(id_key("TROLL"), None) is not None
