"""The chat's native TCP server and the protocol core everyone shares.

Imports are lazy so that ``import tcp_server.protocol`` (the pure core) does
not pull in asyncio through this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ServerConfig
    from .server import ChatServer

__all__ = ["ChatServer", "ServerConfig"]
__version__ = "1.0.0"


def __getattr__(name: str) -> Any:
    if name == "ChatServer":
        from .server import ChatServer

        return ChatServer
    if name == "ServerConfig":
        from .config import ServerConfig

        return ServerConfig
    raise AttributeError(name)
