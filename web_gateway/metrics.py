"""The gateway's numbers for Prometheus: ``GET /metrics``, for the ``--metrics-allow`` CIDRs only.

As on the server (tcp_server/stats.py), the bridges bump plain ints and dicts
on :class:`GatewayStats`; :class:`GatewayCollector` makes metric families at
scrape time and reads the live bridges for what they already know (WebSockets
open, pages paused), so nothing is counted twice and nothing calls
prometheus-client while relaying.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Collection, Iterator
from typing import Protocol

from aiohttp import WSCloseCode, web
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tcp_server.metrics_http import base_registry
from tcp_server.stats import build_info

from .forwarded import IPNetwork


class _Backend(Protocol):
    paused: bool


class _Bridge(Protocol):
    """What the collector reads of a live bridge (a Protocol: bridge.py imports this module)."""

    @property
    def backend(self) -> _Backend | None: ...

PAGE_DROP_CAUSES = ("heartbeat", "too_big", "slow", "backend_closed", "backend_unavailable")
"""Why the gateway closed a page: no pong, a message over the size limit, a page reading too slowly,
its backend closed by the server, no backend to be had."""
REFUSAL_REASONS = ("origin", "host", "rate")
"""Why a WebSocket handshake was refused: a foreign Origin, a foreign Host, too many from one address."""


class GatewayStats:
    """Counters the gateway bumps, one attribute increment each."""

    __slots__ = ("backend_connects", "backend_failures", "from_page", "to_page", "page_drops", "refusals")

    def __init__(self) -> None:
        self.backend_connects = 0
        self.backend_failures = 0
        self.from_page = 0  # WebSocket messages read from pages
        self.to_page = 0  # WebSocket messages written to pages
        self.page_drops: dict[str, int] = dict.fromkeys(PAGE_DROP_CAUSES, 0)
        self.refusals: dict[str, int] = dict.fromkeys(REFUSAL_REASONS, 0)

    def page_dropped(self, cause: str) -> None:
        self.page_drops[cause] = self.page_drops.get(cause, 0) + 1

    def refused(self, reason: str) -> None:
        """A /ws handshake refused; ``reason`` is one of REFUSAL_REASONS."""
        self.refusals[reason] = self.refusals.get(reason, 0) + 1


def close_cause(ws: web.WebSocketResponse) -> str | None:
    """The page-drop cause a closed WebSocket shows, if the gateway dropped it (else None)."""
    if ws.close_code == WSCloseCode.MESSAGE_TOO_BIG:
        return "too_big"
    if ws.close_code == WSCloseCode.ABNORMAL_CLOSURE and isinstance(ws.exception(), asyncio.TimeoutError):
        return "heartbeat"  # aiohttp's heartbeat: no pong in time
    return None


class GatewayCollector:
    """Metric families from the stats and the live bridges, at scrape time."""

    def __init__(self, stats: GatewayStats, bridges: Callable[[], Collection[_Bridge]]) -> None:
        self.stats = stats
        self.bridges = bridges

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        bridges = list(self.bridges())
        yield build_info("gateway")
        paused = sum(1 for b in bridges if b.backend is not None and b.backend.paused)
        yield GaugeMetricFamily("hanchat_gateway_websockets_open", "Browser WebSockets open", value=len(bridges))
        yield GaugeMetricFamily("hanchat_gateway_pages_paused",
                                "Pages reading so slowly that their backend is paused", value=paused)
        yield CounterMetricFamily("hanchat_gateway_backend_connects", "Backend connections opened to the server",
                                  value=s.backend_connects)
        yield CounterMetricFamily("hanchat_gateway_backend_failures", "Backend connections that could not be opened",
                                  value=s.backend_failures)
        messages = CounterMetricFamily("hanchat_gateway_messages", "WebSocket messages, by direction",
                                       labels=["direction"])
        messages.add_metric(["from_page"], s.from_page)
        messages.add_metric(["to_page"], s.to_page)
        yield messages
        drops = CounterMetricFamily("hanchat_gateway_page_drops", "Pages the gateway closed, by cause",
                                    labels=["cause"])
        for cause, n in s.page_drops.items():
            drops.add_metric([cause], n)
        yield drops
        refusals = CounterMetricFamily("hanchat_gateway_handshake_refusals", "WebSocket handshakes refused, by reason",
                                       labels=["reason"])
        for reason, n in s.refusals.items():
            refusals.add_metric([reason], n)
        yield refusals


def allowed(address: str, networks: Collection[IPNetwork]) -> bool:
    """Is ``address`` (the real one) inside one of ``networks``?"""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def metrics_handler(
    collector: GatewayCollector, networks: Collection[IPNetwork], address_of: Callable[[web.Request], str],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``GET /metrics``: the exposition for allowed addresses, 403 for any other."""
    registry = base_registry()
    registry.register(collector)
    expose = make_aiohttp_handler(registry)

    async def handler(request: web.Request) -> web.StreamResponse:
        if not allowed(address_of(request), networks):
            raise web.HTTPForbidden(text="metrics are not served to this address (--metrics-allow)\n")
        return await expose(request)

    return handler
