"""``python -m web_gateway`` / ``chat-gateway``: serve the page and bridge WebSockets until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from aiohttp import web

from tcp_server.__main__ import install_uvloop, setup_logging

from .app import SHUTDOWN_TIMEOUT, make_app
from .config import GatewayConfig, parse_config
from .httplog import access_logger, server_logger

log = logging.getLogger("web_gateway")


async def start_gateway(config: GatewayConfig) -> tuple[web.AppRunner, int]:
    """Start the gateway on ``config.host``/``config.port``; the runner and the port it got.

    Stop it with ``await runner.cleanup()``: pages are told, backends get 004.
    """
    # keepalive_timeout also bounds how long a connection may take to send its request (slowloris):
    # aiohttp arms it when the connection opens and only a complete request resets it.
    runner = web.AppRunner(make_app(config), handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT,
                           access_log=access_logger(), logger=server_logger(),
                           keepalive_timeout=config.keepalive_timeout)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=1024)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = bound_port(runner)
    return runner, port


def bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the gateway is not listening on TCP")


def page_url(config: GatewayConfig, port: int) -> str:
    host = "127.0.0.1" if config.host in ("0.0.0.0", "") else config.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{config.base_path}"


async def wait_for_signal() -> None:
    """Until SIGTERM or SIGINT. The handlers stay until the loop closes, so a second
    Ctrl-C (or ``timeout``'s signal to the whole process group) cannot cut the
    graceful shutdown that follows short with a KeyboardInterrupt."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve(config: GatewayConfig) -> None:
    runner, port = await start_gateway(config)
    host, server_port = config.server
    log.info("web gateway ready: %s (chat server %s:%d%s)", page_url(config, port), host, server_port,
             ", sending 000 with the real address" if config.gateway_secret else "")
    try:
        await wait_for_signal()
        log.info("signal received, shutting down")
    finally:
        await runner.cleanup()
    log.info("web gateway stopped")


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    setup_logging(config.log_level, config.log_format)
    install_uvloop(config.uvloop)
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
