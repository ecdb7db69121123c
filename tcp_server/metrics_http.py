"""``--metrics-port``: the server's Prometheus endpoint, a small aiohttp app on the server's loop.

The endpoint runs on the chat's own event loop (no thread), so a scrape reads
the server's state between two callbacks, never halfway through one.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler

from .stats import LoopLagMonitor, Scraped, ServerCollector

log = logging.getLogger("tcp_server.metrics")


def base_registry() -> CollectorRegistry:
    """A registry of its own (two servers in one process do not mix) with the process's usual series."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class ServerMetrics:
    """``GET /metrics`` on ``host:port`` and the loop-lag timer, for one server."""

    def __init__(self, server: Scraped) -> None:
        self.registry = base_registry()
        self.registry.register(ServerCollector(server))
        self.lag = LoopLagMonitor(server.stats.loop_lag_seconds)
        app = web.Application()
        app.router.add_get("/metrics", make_aiohttp_handler(self.registry))
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        for address in self._runner.addresses:
            if isinstance(address, tuple):
                self.port = int(address[1])
                break
        self.lag.start()
        log.info("Prometheus metrics on %s", self.url(host))

    def url(self, host: str) -> str:
        shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/metrics"

    async def close(self) -> None:
        self.lag.stop()
        await self._runner.cleanup()
