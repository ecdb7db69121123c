"""``chat-run`` (what ``./run.sh`` starts): the TCP server and the web gateway in one process.

One event loop runs both. They share a random gateway secret made at start
(unless ``CHAT_GATEWAY_SECRET`` is set), so the server trusts this gateway's
``000`` and limits browser users by their own address.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from collections.abc import Sequence
from dataclasses import replace

from tcp_server.__main__ import install_uvloop, reload_on_sighup, setup_logging, start_node, stop_node
from tcp_server.config import (
    DEFAULT_LEGACY_PORT,
    DEFAULT_METRICS_PORT,
    ServerConfig,
    add_server_arguments,
    check_server_config,
    config_from_args,
)
from tcp_server.env_flags import EnvArgumentParser
from tcp_server.store.errors import StoreError

from .__main__ import page_url, start_gateway, wait_for_signal
from .config import GatewayConfig, add_gateway_arguments, gateway_config_from_args

log = logging.getLogger("web_gateway.launcher")


def parse_launcher_config(
    argv: Sequence[str] | None = None, environ: dict[str, str] | None = None,
) -> tuple[ServerConfig, GatewayConfig]:
    parser = EnvArgumentParser(
        prog="chat-run",
        description="The whole chat on embedded defaults: the TCP server (with the seed client's legacy port) "
                    "and the web gateway, in one process.",
        environ=environ,
    )
    add_server_arguments(parser, legacy_default=DEFAULT_LEGACY_PORT, metrics_default=DEFAULT_METRICS_PORT)
    add_gateway_arguments(parser, launcher=True)
    ns = parser.parse_args(argv)
    try:
        server_cfg = config_from_args(ns)
    except ValueError as exc:
        parser.error(str(exc))
    if not server_cfg.gateway_secret:
        server_cfg = replace(server_cfg, gateway_secret=secrets.token_urlsafe(32))
    try:
        check_server_config(server_cfg)
        gateway_cfg = gateway_config_from_args(
            ns,
            gateway_secret=server_cfg.gateway_secret,
            lang=server_cfg.lang,
            log_level=server_cfg.log_level,
            log_format=server_cfg.log_format,
            uvloop=server_cfg.uvloop,
            # The server's own flood rule applies to each WebSocket too.
            rate=server_cfg.flood_rate,
            burst=server_cfg.flood_burst,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return server_cfg, gateway_cfg


def connect_host(listen_host: str) -> str:
    """Where to reach a server listening on ``listen_host`` from this machine."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(listen_host, listen_host)


async def run(server_cfg: ServerConfig, gateway_cfg: GatewayConfig) -> None:
    server, room = await start_node(server_cfg)  # with --redis: a node of a shared room
    try:
        gateway_cfg = replace(gateway_cfg, server=(connect_host(server_cfg.host), server.port), servers=())
        runner, port = await start_gateway(gateway_cfg)
        try:
            url = page_url(gateway_cfg, port)
            tcp_host = connect_host(server_cfg.host)
            legacy = (f"; the seed's original client: {tcp_host} {server.legacy_port}"
                      if server.legacy_port is not None else "")
            log.info("chat server on %s:%d, web gateway on %s", tcp_host, server.port, url)
            # The user-facing line: where to point a browser and a terminal client.
            print(f"Open {url} in a browser; terminal clients: chat-client {tcp_host} {server.port}{legacy}",
                  flush=True)
            if server.tls_port is not None:
                print(f"Terminal clients over TLS: chat-client --tls {tcp_host} {server.tls_port}", flush=True)
            if server.metrics is not None:
                print(f"Prometheus metrics: {server.metrics.url(server_cfg.metrics_host)} (server), "
                      f"{url}metrics (gateway)", flush=True)
            print("Stop with Ctrl-C.", flush=True)
            reload_on_sighup(server)
            await wait_for_signal()
            log.info("signal received, shutting down")
        finally:
            await runner.cleanup()  # pages told, 004 for every browser user, while the server still runs
    finally:
        await stop_node(server, room)


def main(argv: Sequence[str] | None = None) -> None:
    server_cfg, gateway_cfg = parse_launcher_config(argv)
    setup_logging(server_cfg.log_level, server_cfg.log_format)
    install_uvloop(server_cfg.uvloop)
    try:
        asyncio.run(run(server_cfg, gateway_cfg))
    except (OSError, StoreError) as exc:  # a port taken; a history database it cannot use
        log.error("cannot start: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
