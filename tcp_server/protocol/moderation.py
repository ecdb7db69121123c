"""Bans and mutes, pure: who may not join, who may not speak, and until when.

The clock is passed in (epoch seconds), so expiry is tested without waiting and
the same rules serve the session (refusing a join or a message) and the admin
socket (listing, adding, removing). Persisting is the shell's job: the state
goes to and from plain JSON-able dicts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .ids import InvalidId, id_key, normalize_id

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``90``, ``30s``, ``10m``, ``2h``, ``1d``, ``1w`` as seconds; ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"not a duration: {text!r} (e.g. 30s, 10m, 2h, 1d)")
    return float(match.group(1)) * _UNIT[match.group(2)]


@dataclass(frozen=True, slots=True)
class Ban:
    """One ban: of an ID (by its key) or of an address or network."""

    kind: Literal["id", "network"]
    target: str
    """The ID as given (normalised), or the network in CIDR form (a single address is a /32 or /128)."""
    reason: str
    until: float | None
    """Epoch seconds when it ends; None: until lifted."""
    by: str
    """Who banned (the admin socket peer, e.g. ``uid 1000``)."""
    at: float

    @property
    def key(self) -> str:
        return id_key(self.target) if self.kind == "id" else self.target


def ban_target(text: str) -> tuple[Literal["id", "network"], str]:
    """What ``text`` names: an address or CIDR (``network``), else an ID; ValueError if neither."""
    try:
        return "network", str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        pass
    try:
        return "id", normalize_id(text)
    except InvalidId as exc:
        raise ValueError(f"{text!r} is neither an address, a network nor a valid ID ({exc})") from None


class Moderation:
    """The bans and mutes in force."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._bans: dict[str, Ban] = {}  # Ban.key -> ban
        self.mutes: dict[str, float | None] = {}  # id key -> until (None: until lifted); read by the session

    # ------------------------------------------------------------ bans

    def ban(self, target: str, reason: str = "", duration: float | None = None, by: str = "") -> Ban:
        kind, name = ban_target(target)
        now = self.clock()
        entry = Ban(kind, name, reason, None if duration is None else now + duration, by, now)
        self._bans[entry.key] = entry
        return entry

    def unban(self, target: str) -> Ban | None:
        kind, name = ban_target(target)
        return self._bans.pop(id_key(name) if kind == "id" else name, None)

    def bans(self) -> list[Ban]:
        """The bans in force, oldest first (expired ones are forgotten here)."""
        self._expire()
        return sorted(self._bans.values(), key=lambda b: b.at)

    def banned(self, key: str | None, address: str | None) -> Ban | None:
        """The ban that keeps this ID key or address out, if any."""
        self._expire()
        if key is not None and (found := self._bans.get(key)) is not None and found.kind == "id":
            return found
        networks = [entry for entry in self._bans.values() if entry.kind == "network"]
        if not address or not networks:  # (no address parsing per join while no network is banned)
            return None
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        return next((entry for entry in networks if ip in ipaddress.ip_network(entry.target)), None)

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, b in self._bans.items() if b.until is not None and b.until <= now]:
            del self._bans[key]

    # ------------------------------------------------------------ mutes

    def mute(self, name: str, duration: float | None = None) -> float | None:
        """Mute an ID; when it ends (None: until unmuted)."""
        until = None if duration is None else self.clock() + duration
        self.mutes[id_key(normalize_id(name))] = until
        return until

    def unmute(self, name: str) -> bool:
        return self.mutes.pop(id_key(normalize_id(name)), False) is not False

    def load_mutes(self, mutes: dict[str, float | None]) -> None:
        """The mutes a shared store keeps (ID key -> until) replace these."""
        self.mutes = dict(mutes)

    def muted(self, key: str | None) -> bool:
        if key is None or key not in self.mutes:
            return False
        until = self.mutes[key]
        if until is not None and until <= self.clock():
            del self.mutes[key]
            return False
        return True

    # ------------------------------------------------------------ persistence

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "bans": [asdict(b) for b in self.bans()]}

    def load_json(self, data: dict[str, Any]) -> None:
        """Replace the bans with those in ``data`` (as :meth:`to_json` wrote them)."""
        bans: dict[str, Ban] = {}
        for item in data.get("bans", []):
            entry = Ban(kind=item["kind"], target=str(item["target"]), reason=str(item.get("reason", "")),
                        until=item.get("until"), by=str(item.get("by", "")), at=float(item.get("at", 0.0)))
            bans[entry.key] = entry
        self._bans = bans
