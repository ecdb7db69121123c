"""The Host check against DNS rebinding, pure.

Under DNS rebinding an attacker's name (``rebind.evil.example``) resolves to
the gateway's address, so the attacker's page is same-origin with itself and
its ``Origin`` equals its ``Host``: the Origin check alone lets it in. What it
cannot change is the name in ``Host``. So a request is served only when its
host is one the gateway is known by:

- an IP literal (no rebinding attack can put one in ``Host``: the browser
  writes the name it resolved);
- ``localhost`` and names under ``.localhost``;
- the address it listens on, and every ``--allowed-host`` (nginx's ``server_name``).

Behind a trusted proxy the host the browser used is the proxy's
``Forwarded: host=`` or ``X-Forwarded-Host`` (a proxy that sets ``Host $host``
drops the port), so that one is checked, and the Origin compared with it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from tcp_server.env_flags import split_values

from .forwarded import split_outside_quotes


def host_name(host: str) -> str | None:
    """The name of a ``Host`` value, lower case, without port or brackets; None if unparsable."""
    try:
        parts = urlsplit(f"http://{host.strip()}")
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return None
    name = (parts.hostname or "").rstrip(".")
    return name or None


def parse_hosts(raw: str | Iterable[str]) -> tuple[str, ...]:
    """``--allowed-host`` values (comma or space separated, ports ignored); ValueError on a bad one."""
    out: list[str] = []
    for item in split_values(raw):
        name = host_name(item)
        if name is None or "/" in item:
            raise ValueError(f"not a host name: {item!r}")
        out.append(name)
    return tuple(out)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


def host_allowed(host: str | None, allowed: Iterable[str], listen_host: str) -> bool:
    """Whether a request for ``host`` (a ``Host`` header value) is for this gateway."""
    if not host:
        return False
    name = host_name(host)
    if name is None:
        return False
    if _is_ip(name) or name == "localhost" or name.endswith(".localhost"):
        return True
    listen = host_name(listen_host) if listen_host else None
    return name == listen or name in allowed


def forwarded_host(forwarded: str | None, x_forwarded_host: str | None) -> str | None:
    """The host the nearest trusted proxy says the browser asked for.

    The last element of ``Forwarded`` is the nearest proxy's; if it has no
    ``host=``, ``X-Forwarded-Host`` (its last entry) is taken.
    """
    if forwarded:
        elements = split_outside_quotes(forwarded, ",")
        if elements:
            for pair in split_outside_quotes(elements[-1], ";"):
                name, sep, value = pair.partition("=")
                if sep and name.strip().lower() == "host":
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] == '"':
                        value = re.sub(r"\\(.)", r"\1", value[1:-1])
                    return value or None
    if x_forwarded_host:
        last = x_forwarded_host.split(",")[-1].strip()
        return last or None
    return None
