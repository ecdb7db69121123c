"""Real address behind proxies and the Origin check, pure: trusted, spoofed and broken headers."""

from __future__ import annotations

import pytest

from web_gateway.forwarded import client_address, forwarded_for, parse_ip, parse_networks
from web_gateway.origin import normalize_origin, origin_allowed, parse_origins

LOCAL = parse_networks("127.0.0.1/32")
CHAIN = parse_networks("127.0.0.1/32, 10.0.0.0/8 ::1/128")

# (peer, trusted, Forwarded, X-Forwarded-For, the user's address)
CASES = [
    # no trusted proxy: the headers mean nothing
    ("127.0.0.1", (), None, "203.0.113.9", "127.0.0.1"),
    ("198.51.100.7", (), 'for="203.0.113.9"', None, "198.51.100.7"),
    # a peer that is not a trusted proxy: its headers are ignored
    ("198.51.100.7", LOCAL, None, "203.0.113.9", "198.51.100.7"),
    # trusted proxy, one hop
    ("127.0.0.1", LOCAL, None, "203.0.113.9", "203.0.113.9"),
    ("127.0.0.1", LOCAL, "for=203.0.113.9;proto=https", None, "203.0.113.9"),
    ("127.0.0.1", LOCAL, 'for="203.0.113.9";proto=http', None, "203.0.113.9"),
    # spoofed: the client wrote its own entry first; only the proxy's (rightmost) counts
    ("127.0.0.1", LOCAL, None, "1.2.3.4, 203.0.113.9", "203.0.113.9"),
    ("127.0.0.1", LOCAL, 'for=1.2.3.4, for="203.0.113.9"', None, "203.0.113.9"),
    ("127.0.0.1", LOCAL, None, "127.0.0.1, 203.0.113.9", "203.0.113.9"),  # a spoofed trusted address
    # a chain of trusted proxies is walked past, and stops at the first untrusted hop
    ("127.0.0.1", CHAIN, None, "1.2.3.4, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
    ("127.0.0.1", LOCAL, None, "1.2.3.4, 203.0.113.9, 10.1.2.3", "10.1.2.3"),  # 10/8 not trusted here
    # everything trusted: the leftmost is the best there is
    ("127.0.0.1", LOCAL, None, "127.0.0.1", "127.0.0.1"),
    # Forwarded wins over X-Forwarded-For
    ("127.0.0.1", LOCAL, "for=203.0.113.1", "203.0.113.2", "203.0.113.1"),
    # IPv6 forms
    ("127.0.0.1", LOCAL, 'for="[2001:db8::1]:4711"', None, "2001:db8::1"),
    ("127.0.0.1", LOCAL, 'for="2001:db8::1"', None, "2001:db8::1"),  # nginx's unbracketed $remote_addr
    ("127.0.0.1", LOCAL, None, "2001:db8::2", "2001:db8::2"),
    ("::1", CHAIN, None, "203.0.113.9", "203.0.113.9"),
    ("::ffff:127.0.0.1", LOCAL, None, "203.0.113.9", "203.0.113.9"),  # v4-mapped peer
    # ports on v4 entries
    ("127.0.0.1", LOCAL, 'for="203.0.113.9:5555"', None, "203.0.113.9"),
    # garbage or obfuscated entries stop the walk at the last trusted hop
    ("127.0.0.1", LOCAL, "for=unknown", None, "127.0.0.1"),
    ("127.0.0.1", LOCAL, "for=_hidden", None, "127.0.0.1"),
    ("127.0.0.1", LOCAL, None, "203.0.113.9, <script>", "127.0.0.1"),
    ("127.0.0.1", LOCAL, None, "203.0.113.9\r\n000#x#y", "127.0.0.1"),
    ("127.0.0.1", LOCAL, "proto=https", None, "127.0.0.1"),  # no for=
    ("127.0.0.1", LOCAL, None, "", "127.0.0.1"),
    # quoted commas and semicolons do not split elements
    ("127.0.0.1", LOCAL, 'for="[2001:db8::3]";by="a,b;c", for=203.0.113.4', None, "203.0.113.4"),
]


@pytest.mark.parametrize(("peer", "trusted", "fwd", "xff", "expected"), CASES)
def test_client_address(peer: str, trusted: tuple[object, ...], fwd: str | None, xff: str | None,
                        expected: str) -> None:
    assert client_address(peer, trusted, fwd, xff) == expected  # type: ignore[arg-type]


def test_forwarded_for_elements() -> None:
    assert forwarded_for('for=1.2.3.4;proto=http, for="[::1]:80";by=x, proto=https') == ["1.2.3.4", "[::1]:80", ""]
    assert forwarded_for('for="a\\"b"') == ['a"b']


@pytest.mark.parametrize(("raw", "ip"), [
    ("1.2.3.4", "1.2.3.4"), ("1.2.3.4:80", "1.2.3.4"), ("[::1]", "::1"), ("[::1]:80", "::1"), ('"::1"', "::1"),
    ("unknown", None), ("", None), ("[::1", None), ("1.2.3.4.5", None),
    # one spelling, what the server's 000 accepts: IPv4-mapped as IPv4, no zone
    ("[::ffff:198.51.100.7]:443", "198.51.100.7"), ("[fe80::1%eth0]", "fe80::1"), ("fe80::1%\x1b[31m", "fe80::1"),
])
def test_parse_ip(raw: str, ip: str | None) -> None:
    got = parse_ip(raw)
    assert (str(got) if got else None) == ip


def test_parse_networks() -> None:
    assert [str(n) for n in parse_networks("127.0.0.1/32, 10.0.0.0/8  ::1")] == ["127.0.0.1/32", "10.0.0.0/8",
                                                                                  "::1/128"]
    assert parse_networks("") == ()
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/33")
    with pytest.raises(ValueError):
        parse_networks("nginx")


# (Origin, allowlist, Host, allowed?)
ORIGINS = [
    (None, (), "127.0.0.1:8080", True),  # not a browser
    ("http://127.0.0.1:8080", (), "127.0.0.1:8080", True),
    ("HTTP://127.0.0.1:8080", (), "127.0.0.1:8080", True),
    ("http://localhost:8080", (), "127.0.0.1:8080", False),
    ("http://127.0.0.1:8081", (), "127.0.0.1:8080", False),
    ("http://evil.example", (), "127.0.0.1:8080", False),
    ("https://chat.example.org", (), "chat.example.org", True),  # TLS at the proxy, Host without port
    ("http://chat.example.org", (), "chat.example.org", True),
    ("https://chat.example.org:8443", (), "chat.example.org:8443", True),
    ("https://chat.example.org", (), "chat.example.org:8080", False),
    ("https://chat.example.org.evil.example", (), "chat.example.org", False),
    ("null", (), "127.0.0.1:8080", False),
    ("", (), "127.0.0.1:8080", False),
    ("javascript:alert(1)", (), "127.0.0.1:8080", False),
    ("http://127.0.0.1:8080", (), "", False),
    # an explicit allowlist replaces the same-host rule
    ("https://chat.example.org", ("https://chat.example.org",), "127.0.0.1:8080", True),
    ("https://chat.example.org:443", ("https://chat.example.org",), "127.0.0.1:8080", True),
    ("http://chat.example.org", ("https://chat.example.org",), "chat.example.org", False),
    ("http://127.0.0.1:8080", ("https://chat.example.org",), "127.0.0.1:8080", False),
    ("http://[::1]:8080", (), "[::1]:8080", True),
]


@pytest.mark.parametrize(("origin", "allowed", "host", "ok"), ORIGINS)
def test_origin_allowed(origin: str | None, allowed: tuple[str, ...], host: str, ok: bool) -> None:
    assert origin_allowed(origin, allowed, host) is ok


def test_parse_origins() -> None:
    assert parse_origins("https://Chat.Example.org:443, http://127.0.0.1:8080") == (
        "https://chat.example.org", "http://127.0.0.1:8080")
    assert normalize_origin("https://x.org/path?q") == "https://x.org"
    with pytest.raises(ValueError):
        parse_origins("chat.example.org")
