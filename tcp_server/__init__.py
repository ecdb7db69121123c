"""The chat's native TCP server and the protocol core everyone shares."""

from .config import ServerConfig
from .server import ChatServer

__all__ = ["ChatServer", "ServerConfig"]
__version__ = "1.0.0"
