"""``python -m tcp_server`` / ``chat-server``: run the TCP server until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from . import logformat
from .config import ServerConfig, parse_config
from .server import ChatServer


def install_uvloop(wanted: bool) -> bool:
    """Use uvloop when asked for and installed; say which loop runs."""
    if not wanted:
        return False
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def setup_logging(level: str, log_format: str = "text") -> None:
    """Text lines, or JSON lines with ``--log-format json`` (tcp_server/logformat.py)."""
    logformat.setup_logging(level, log_format)


def reload_tls_on_sighup(server: ChatServer) -> None:
    """SIGHUP: the TLS port presents the certificate now in its files; nobody is dropped."""
    if server.tls is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, server.tls.reload)


async def serve(config: ServerConfig) -> None:
    server = ChatServer(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reload_tls_on_sighup(server)
    logging.getLogger("tcp_server").info(
        "Chat server ready: connect a client to %s:%d%s%s%s", config.host, server.port,
        f" (seed client: {config.host}:{server.legacy_port})" if server.legacy_port else "",
        f" (TLS: chat-client --tls {config.host} {server.tls_port})" if server.tls_port else "",
        f" (metrics: {server.metrics.url(config.metrics_host)})" if server.metrics else "",
    )
    await stop.wait()
    logging.getLogger("tcp_server").info("signal received, shutting down")
    await server.close()


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    setup_logging(config.log_level, config.log_format)
    uv = install_uvloop(config.uvloop)
    logging.getLogger("tcp_server").debug("event loop: %s", "uvloop" if uv else "asyncio")
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
