"""The aiohttp application: the page, its static files, ``/ws``, ``/healthz``.

Every route lives under ``--base-path`` and the page refers to everything by
relative URL, so it works the same at ``/`` and behind a proxy at ``/chat/``.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import time

import aiohttp_jinja2
import jinja2
from aiohttp import web

from .backends import BackendPool
from .bridge import Bridge
from .config import GatewayConfig
from .forwarded import client_address
from .health import HealthCheck
from .i18n import all_strings, pick_lang
from .origin import origin_allowed

log = logging.getLogger("web_gateway")

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
# In the repository these are symlinks to the top-level templates/ and static/;
# in an installed wheel they are copies (pyproject.toml's package-data).
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

CONFIG = web.AppKey("config", GatewayConfig)
BRIDGES: web.AppKey[set[Bridge]] = web.AppKey("bridges")
HEALTH = web.AppKey("health", HealthCheck)
POOL = web.AppKey("pool", BackendPool)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
SHUTDOWN_TIMEOUT = 10.0


def peer_address(request: web.BaseRequest) -> str:
    """The socket peer's address."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, (tuple, list)) and peer:
        return str(peer[0])
    return "unknown"


def real_address(request: web.BaseRequest, config: GatewayConfig) -> str:
    """The user's address: through trusted proxies' headers, else the socket peer."""
    headers = request.headers
    forwarded = ",".join(headers.getall("Forwarded", [])) or None
    xff = ",".join(headers.getall("X-Forwarded-For", [])) or None
    return client_address(peer_address(request), config.trusted_proxy, forwarded, xff)


async def index(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    lang = pick_lang(request.headers.get("Accept-Language"), config.lang, request.query.get("lang"))
    context = {
        "lang": lang,
        "strings": all_strings(),
        "s": all_strings()[lang],
        "config": config,
    }
    response = aiohttp_jinja2.render_template("index.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Accept-Language"
    return response


async def websocket(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    origin = request.headers.get("Origin")
    if not origin_allowed(origin, config.allowed_origins, request.host):
        log.warning("refused /ws from origin %r (host %r, peer %s)", origin, request.host, peer_address(request))
        raise web.HTTPForbidden(text="This page's origin may not open the chat WebSocket.\n")
    ws = web.WebSocketResponse(
        heartbeat=config.heartbeat, max_msg_size=config.ws_max_size, timeout=5.0, compress=False,
    )
    await ws.prepare(request)
    page = request.transport
    if page is None:  # the page went away during the handshake
        return ws
    bridge = Bridge(ws, config, real_address(request, config), asyncio.get_running_loop().time, page,
                    request.app[POOL])
    bridges = request.app[BRIDGES]
    bridges.add(bridge)
    try:
        await bridge.run()
    finally:
        bridges.discard(bridge)
    return ws


async def healthz(request: web.Request) -> web.Response:
    ok, why = await request.app[HEALTH].check(real_address(request, request.app[CONFIG]))
    return web.Response(status=200 if ok else 503, text=why + "\n", headers={"Cache-Control": "no-store"})


async def add_to_base(request: web.Request) -> web.Response:
    """``/chat`` → ``/chat/``: the page's relative URLs need the slash."""
    location = request.app[CONFIG].base_path
    if request.query_string:
        location += "?" + request.query_string
    raise web.HTTPMovedPermanently(location)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


async def close_bridges(app: web.Application) -> None:
    """SIGTERM: every page hears ``shutdown`` and every backend gets its 004, before exit."""
    live: set[Bridge] = app[BRIDGES]
    bridges = list(live)
    if not bridges:
        return
    log.info("closing %d WebSocket(s): telling each page, sending 004 for each user", len(bridges))
    try:
        await asyncio.wait_for(asyncio.gather(*(b.shutdown() for b in bridges), return_exceptions=True),
                               SHUTDOWN_TIMEOUT)
    except TimeoutError:
        log.warning("some WebSockets did not close within %.0f s", SHUTDOWN_TIMEOUT)


def make_app(config: GatewayConfig) -> web.Application:
    app = web.Application()
    app[CONFIG] = config
    app[BRIDGES] = set()
    app[HEALTH] = HealthCheck(config)
    app[POOL] = BackendPool(config.backends, time.monotonic)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    base = config.base_path
    app.router.add_get(base, index)
    if base != "/":
        app.router.add_get(base.rstrip("/"), add_to_base)
    app.router.add_get(base + "ws", websocket)
    app.router.add_get(base + "healthz", healthz)
    app.router.add_static(base + "static", STATIC_DIR, follow_symlinks=False)
    app.on_response_prepare.append(security_headers)
    app.on_shutdown.append(close_bridges)
    return app
