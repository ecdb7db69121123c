"""The Origin check for ``/ws``, pure: a page from elsewhere must not open a chat as our user.

Browsers always send ``Origin`` on a WebSocket handshake; a request without one
comes from a non-browser client (a bot, the benchmark), which could forge any
header anyway, so it is allowed. ``null`` (sandboxed frames, ``file:``) is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from tcp_server.env_flags import split_values

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalize_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port; None if not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_origins(raw: str | Iterable[str]) -> tuple[str, ...]:
    """An allowlist from a comma/space separated string; ValueError on an entry that is no origin."""
    out: list[str] = []
    for item in split_values(raw):
        norm = normalize_origin(item)
        if norm is None:
            raise ValueError(f"not an origin (scheme://host[:port]): {item!r}")
        out.append(norm)
    return tuple(out)


def _host_port(netloc: str, scheme: str) -> str:
    """``host:port`` with the scheme's default port filled in, lower case."""
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port
    except ValueError:
        return netloc.lower()
    host = (parts.hostname or "").lower()
    return f"{host}:{port or _DEFAULT_PORTS.get(scheme, 80)}"


def origin_allowed(origin: str | None, allowed: Iterable[str], host: str) -> bool:
    """Whether a handshake with this ``Origin`` may proceed.

    With an empty ``allowed`` list the page's own host is the only origin
    allowed: the Origin's host and port must equal the request's ``Host``. The
    Host header names no scheme (a TLS proxy may talk plain HTTP to us), so a
    missing port in it means the Origin scheme's default port.
    """
    if origin is None:
        return True
    norm = normalize_origin(origin)
    if norm is None:
        return False
    allowed = tuple(allowed)
    if allowed:
        return norm in allowed
    o = urlsplit(norm)
    return bool(host) and _host_port(o.netloc, o.scheme) == _host_port(host, o.scheme)
