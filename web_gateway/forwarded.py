"""The client's real address behind trusted reverse proxies, pure.

The ``Forwarded`` (RFC 7239) and ``X-Forwarded-For`` lists grow to the right:
each proxy appends the address it saw. Only entries added by proxies we trust
mean anything, so the list is walked from the right, starting at the socket
peer, for as long as the current hop is a trusted proxy. The leftmost entry is
whatever the client chose to send and is never taken on trust.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from tcp_server.protocol.limits import canonical_ip

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(raw: str | Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """CIDRs (or bare addresses) separated by commas or spaces; ValueError on a bad one."""
    if isinstance(raw, str):
        raw = [raw]
    out: list[IPNetwork] = []
    for item in raw:
        if isinstance(item, str):
            out.extend(ipaddress.ip_network(p, strict=False) for p in re.split(r"[,\s]+", item) if p)
        else:
            out.append(item)
    return tuple(out)


def parse_ip(raw: str) -> IPAddress | None:
    """An address as proxies write it: bare, ``[v6]``, ``[v6]:port`` or ``v4:port``; None if not one."""
    value = raw.strip().strip('"').strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        value = value[1:end]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    return canonical_ip(addr)  # IPv4-mapped as IPv4, no zone: what the server's 000 accepts


def forwarded_for(header: str) -> list[str]:
    """The ``for=`` value of every element of a ``Forwarded`` header, left to right.

    An element without ``for=`` yields an empty string, which stops the walk.
    """
    out: list[str] = []
    for element in split_outside_quotes(header, ","):
        value = ""
        for pair in split_outside_quotes(element, ";"):
            name, sep, raw = pair.partition("=")
            if sep and name.strip().lower() == "for":
                raw = raw.strip()
                if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                value = raw
        out.append(value)
    return out


def x_forwarded_for(header: str) -> list[str]:
    """The entries of an ``X-Forwarded-For`` header, left to right."""
    return [part.strip() for part in header.split(",")]


def split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def is_trusted(addr: IPAddress | None, trusted: Sequence[IPNetwork]) -> bool:
    return addr is not None and any(addr.version == net.version and addr in net for net in trusted)


def client_address(
    peer: str,
    trusted: Sequence[IPNetwork],
    forwarded: str | None = None,
    x_forwarded: str | None = None,
) -> str:
    """The end user's address.

    ``peer`` is the socket peer. Unless it is a trusted proxy the headers are
    ignored. ``Forwarded`` is preferred to ``X-Forwarded-For`` when both are
    present. An entry that is not an IP address (``unknown``, an obfuscated
    name, garbage) stops the walk at the last trusted hop.
    """
    current = parse_ip(peer)
    if current is None:
        return peer
    if not is_trusted(current, trusted):
        return str(current)
    if forwarded:
        hops = forwarded_for(forwarded)
    elif x_forwarded:
        hops = x_forwarded_for(x_forwarded)
    else:
        return str(current)
    for raw in reversed(hops):
        hop = parse_ip(raw)
        if hop is None:
            break
        current = hop
        if not is_trusted(current, trusted):
            break
    return str(current)
