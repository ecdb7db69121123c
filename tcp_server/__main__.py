"""``python -m tcp_server`` / ``chat-server``: run the TCP server until a signal."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import logformat
from .config import ServerConfig, parse_config
from .node_watcher import NodeWatcher
from .server import ChatServer
from .store.errors import StoreError
from .store.urls import parse_database

if TYPE_CHECKING:
    from .room.redis import RedisRoom


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


def reload_on_sighup(server: ChatServer) -> None:
    """SIGHUP (``systemctl reload``): the TLS port, if any, presents the certificate now in its files;
    nobody is dropped. Handled with or without a TLS port: SIGHUP's default action would end the process."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, server.reload)


async def start_node(config: ServerConfig) -> tuple[ChatServer, RedisRoom | None]:
    """A started server node: on the embedded room, or on the shared one in Redis with ``--redis``."""
    if not config.redis:
        server = ChatServer(config)
        await server.start()
        return server, None
    from .room.redis import RedisRoom, RedisSettings
    from .room.redis_recall import RedisHistory, RedisSessionStore

    durable = parse_database(config.database).durable  # PostgreSQL, shared by the nodes
    room = RedisRoom.create(RedisSettings(
        config.redis, config.node_id, config.redis_prefix, config.node_timeout,
        history=0 if durable else config.history, resume_grace=config.resume_grace,
        resume_max_frames=config.resume_max_frames, resume_max_bytes=config.resume_max_bytes, ids=durable))
    # Sessions live in Redis: a resume may land on any node. History too, unless the nodes share a database
    # (each node then stores what it delivers, numbered by the room's log: the same message once).
    history = None
    if not durable:
        logging.getLogger("tcp_server").warning(
            "--redis without --database: the history is kept in Redis, which is not durable storage")
        history = RedisHistory(config.history, config.history_max_bytes) if config.history > 0 else None
    sessions = RedisSessionStore(room.link) if config.resume_grace > 0 else None
    if history is not None:
        room.link.on_history = history.load
    server = ChatServer(config, directory=room.directory, bus=room.bus, history=history, sessions=sessions)
    await server.start()
    room.link.stats = server.stats  # round trips, bus lag, live nodes
    # Members to let go, the room's health, and chat-admin acting on the whole room: bans and mutes live
    # in Redis (every node enforces them, they outlive every node), who lists every node, kick reaches any node.
    room.link.watcher = NodeWatcher(server, sessions)
    server.shared = room.link
    if server.accounts is not None:  # registrations shared: every node's 001 refuses them at once
        server.accounts.registry.shared = room.link.save_account
        server.accounts.registry.synced = room.link.sync_accounts
    await room.link.start(server.port)
    if server.accounts is not None:
        room.link.sync_accounts(server.accounts.registry.snapshot())
    return server, room


async def stop_node(server: ChatServer, room: RedisRoom | None) -> None:
    """Close the node; its users' releases reach Redis before it disconnects."""
    await server.close()
    if room is not None:
        await room.link.close()


async def serve(config: ServerConfig) -> None:
    try:
        server, room = await start_node(config)
    except StoreError as exc:  # the store's refusals: said plainly, no traceback
        logging.getLogger("tcp_server").error("not starting: %s", exc)
        raise SystemExit(2) from None
    except OSError as exc:  # a port in use, an --admin-socket path that is not ours: one clear line
        logging.getLogger("tcp_server").error("cannot start: %s", exc)
        raise SystemExit(1) from None
    # What start-up made (modules, the Unicode tables of the ID rules) lives as long as the process: out of
    # the collector's generations, a join storm's collections no longer walk it.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reload_on_sighup(server)
    logging.getLogger("tcp_server").info(
        "Chat server ready: connect a client to %s:%d%s%s%s", config.host, server.port,
        f" (seed client: {config.host}:{server.legacy_port})" if server.legacy_port else "",
        f" (TLS: chat-client --tls {config.host} {server.tls_port})" if server.tls_port else "",
        f" (metrics: {server.metrics.url(config.metrics_host)})" if server.metrics else "",
    )
    await stop.wait()
    logging.getLogger("tcp_server").info("signal received, shutting down")
    await stop_node(server, room)


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    setup_logging(config.log_level, config.log_format)
    uv = install_uvloop(config.uvloop)
    logging.getLogger("tcp_server").debug("event loop: %s", "uvloop" if uv else "asyncio")
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
