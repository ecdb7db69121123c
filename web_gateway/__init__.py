"""The web gateway: a browser page and a WebSocket per user, bridged to the TCP server.

Each WebSocket gets its own backend TCP connection speaking wire protocol v1
(PROTOCOL.md), so the server treats browser users exactly like terminal users;
the backend asks for JSON events (``007#json``), which the gateway relays.
Pure modules (config parsing aside): ``translate``, ``wsframe``, ``forwarded``,
``origin``, ``i18n``; the aiohttp parts are ``bridge``, ``app``, ``__main__`` and ``launcher``.
"""

__version__ = "1.0.0"
