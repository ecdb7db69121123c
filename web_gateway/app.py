"""The aiohttp application: the page, its static files, ``/ws``, ``/healthz``.

Every route lives under ``--base-path`` and the page refers to everything by
relative URL, so it works the same at ``/`` and behind a proxy at ``/chat/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import pathlib
import time
from collections.abc import AsyncIterator

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from tcp_server.protocol.limits import AddressBuckets, AddressLimits, address_key
from tcp_server.protocol.limits import peer_address as normalized_peer
from tcp_server.tls import backend_context

from .backends import BackendPool
from .bridge import Bridge
from .config import GatewayConfig
from .forwarded import client_address, is_trusted, parse_ip
from .health import HealthCheck
from .hosts import forwarded_host, host_allowed
from .i18n import all_strings, page_rules, pick_lang
from .metrics import GatewayCollector, GatewayStats, metrics_handler
from .online import Online
from .origin import origin_allowed
from .presence import PROBE_TIMEOUT, Presence

log = logging.getLogger("web_gateway")

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
# In the repository these are symlinks to the top-level templates/ and static/;
# in an installed wheel they are copies (pyproject.toml's package-data).
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

CONFIG = web.AppKey("config", GatewayConfig)
BRIDGES: web.AppKey[set[Bridge]] = web.AppKey("bridges")
HEALTH = web.AppKey("health", HealthCheck)
STATS = web.AppKey("stats", GatewayStats)
ONLINE = web.AppKey("online", Online)
PRESENCE = web.AppKey("presence", Presence)
STATIC_VERSIONS: web.AppKey[dict[str, str]] = web.AppKey("static_versions")
MODULES_VERSION = web.AppKey("modules_version", str)
WS_PER_ADDRESS = web.AppKey("ws_per_address", AddressLimits)
MESSAGES_PER_ADDRESS: web.AppKey[AddressBuckets | None] = web.AppKey("messages_per_address")
SWEEP_INTERVAL = 60.0
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
SHUTDOWN_TIMEOUT = 5.0
"""Seconds for every page to hear ``shutdown`` and every user's 004 (a bridge takes at most ~5 s: the
102's grace, the backend's close, the page's close), and again for aiohttp's handlers to end: together
well under systemd's TimeoutStopSec=15."""
# A static URL carries its file's hash (``static/style.css?v=…``): that version never changes, so it
# may be kept for a year; an upgrade changes the URL, so a browser never uses a stale file.
VERSIONED_CACHE = "public, max-age=31536000, immutable"
UNVERSIONED_CACHE = "no-cache"
# The page's script is ES modules (static/*.js) that import each other by relative URL (``./protocol.js``),
# which cannot carry a ``?v=``. So they are served from a versioned directory, ``static/m/<VERSION>/NAME.js``,
# VERSION one hash over every module: the entry (``static/m/<VERSION>/app.js``) and all it imports share it,
# are kept for a year, and any change to any module moves them all to a new directory. An old VERSION
# (a tab loaded before an upgrade) gets today's file with ``no-cache``, as an old ``?v=`` does.
MODULES = "static/m/"


def modules_version(versions: dict[str, str]) -> str:
    """12 hex digits of one hash over every module's name and version (a change to any one changes it)."""
    modules = "".join(f"{name}={version}\n" for name, version in sorted(versions.items()) if name.endswith(".js"))
    return hashlib.sha256(modules.encode()).hexdigest()[:12]


def static_versions(directory: pathlib.Path) -> dict[str, str]:
    """``{"app.js": "<12 hex digits of its SHA-256>", …}`` for the files the page links to."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in sorted(directory.iterdir()) if path.is_file()
    }


def peer_address(request: web.BaseRequest) -> str:
    """The socket peer's address, normalised once (IPv4-mapped IPv6 as IPv4, no zone) as the server does."""
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, (tuple, list)) and peer:
        return normalized_peer(str(peer[0]))
    return "unknown"


def real_address(request: web.BaseRequest, config: GatewayConfig) -> str:
    """The user's address: through trusted proxies' headers, else the socket peer."""
    headers = request.headers
    forwarded = ",".join(headers.getall("Forwarded", [])) or None
    xff = ",".join(headers.getall("X-Forwarded-For", [])) or None
    return client_address(peer_address(request), config.trusted_proxy, forwarded, xff)


def protected(request: web.BaseRequest, config: GatewayConfig) -> bool:
    """Whether passwords may come over this request's WebSocket: TLS to us, a trusted proxy that says the
    browser used https (``Forwarded: proto=https``, else ``X-Forwarded-Proto: https``; the first hop's), or
    a loopback peer that is not a trusted proxy (a browser on this machine)."""
    if request.transport is not None and request.transport.get_extra_info("sslcontext") is not None:
        return True
    peer = parse_ip(peer_address(request))
    if config.trusted_proxy and is_trusted(peer, config.trusted_proxy):  # (a proxy on loopback too: it says)
        headers = request.headers
        forwarded = ",".join(headers.getall("Forwarded", [])).lower()
        protos = [part.strip().split("=", 1)[1].strip('"') for element in forwarded.split(",")
                  for part in element.split(";") if part.strip().startswith("proto=")]
        x_proto = headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return (protos[0] == "https") if protos else x_proto == "https"
    return peer is not None and peer.is_loopback


def browser_host(request: web.BaseRequest, config: GatewayConfig) -> str:
    """The host the browser asked for: a trusted proxy's ``Forwarded: host=`` / ``X-Forwarded-Host``, else ``Host``."""
    if config.trusted_proxy and is_trusted(parse_ip(peer_address(request)), config.trusted_proxy):
        headers = request.headers
        forwarded = ",".join(headers.getall("Forwarded", [])) or None
        x_host = ",".join(headers.getall("X-Forwarded-Host", [])) or None
        host = forwarded_host(forwarded, x_host)
        if host:
            return host
    return request.host


@web.middleware
async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    """DNS rebinding: serve only requests for a host the gateway is known by (hosts.py)."""
    config = request.app[CONFIG]
    host = browser_host(request, config)
    if not host_allowed(host, config.allowed_hosts, config.host):
        log.warning("refused %s %s for host %r from %s: not an allowed host (DNS rebinding?); if this is the "
                    "name users type, add it with --allowed-host / CHAT_ALLOWED_HOSTS",
                    request.method, request.path, host, peer_address(request))
        request.app[STATS].refused("host")
        raise web.HTTPMisdirectedRequest(text=f"This gateway does not serve the host {host[:100]!r}.\n")
    return await handler(request)


async def index(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    lang = pick_lang(request.headers.get("Accept-Language"), config.lang, request.query.get("lang"))
    versions = request.app[STATIC_VERSIONS]
    context = {
        "lang": lang,
        "page_data": {"strings": all_strings(), "rules": page_rules(config.max_message, config.rate, config.burst)},
        "s": all_strings()[lang],
        "config": config,
        "static": {name: f"static/{name}?v={version}" for name, version in versions.items()},
        "modules": f"{MODULES}{request.app[MODULES_VERSION]}/",
    }
    response = aiohttp_jinja2.render_template("index.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Accept-Language"
    return response


async def module_file(request: web.Request) -> web.FileResponse:
    """One of the page's modules from its versioned directory (MODULES); security_headers sets its caching."""
    name = request.match_info["name"]
    if not name.endswith(".js") or name not in request.app[STATIC_VERSIONS]:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC_DIR / name)


async def websocket(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    origin = request.headers.get("Origin")
    host = browser_host(request, config)
    if not origin_allowed(origin, config.allowed_origins, host):
        log.warning("refused /ws from origin %r: not the page's host %r (peer %s); a proxy must pass the "
                    "browser's host and port (Host $http_host, or X-Forwarded-Host with --trusted-proxy), "
                    "or list the origin with --allowed-origin", origin, host, peer_address(request))
        request.app[STATS].refused("origin")
        raise web.HTTPForbidden(text="This page's origin may not open the chat WebSocket.\n")
    address = real_address(request, config)
    key = address_key(address, config.ipv6_prefix)
    per_address = request.app[WS_PER_ADDRESS]
    loop = asyncio.get_running_loop()
    if not per_address.admit(key, loop.time()):
        log.warning("refused /ws from %s: %d WebSockets already open from %s (--max-ws-per-address)",
                    address, per_address.open_count(key), key)
        request.app[STATS].refused("rate")
        raise web.HTTPTooManyRequests(text="Too many chat connections from your address.\n")
    try:
        ws = web.WebSocketResponse(
            heartbeat=config.heartbeat, max_msg_size=config.ws_max_size, timeout=5.0, compress=False,
        )
        await ws.prepare(request)
        page = request.transport
        if page is None:  # the page went away during the handshake
            return ws
        buckets = request.app[MESSAGES_PER_ADDRESS]
        bridge = Bridge(ws, config, address, loop.time, page, request.app[STATS],
                        shared=(buckets, key) if buckets is not None else None, pool=request.app[POOL],
                        online=request.app[ONLINE], presence=request.app[PRESENCE],
                        secure=protected(request, config))
        bridges = request.app[BRIDGES]
        bridges.add(bridge)
        try:
            await bridge.run()
        finally:
            bridges.discard(bridge)
        return ws
    finally:
        per_address.release(key, loop.time())


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
    static = request.app[CONFIG].base_path + "static/"
    if request.path.startswith(static) and response.status in (200, 304):
        rest = request.path[len(static):]
        if request.path.startswith(request.app[CONFIG].base_path + MODULES):  # m/<VERSION>/NAME.js
            current = rest.split("/")[1] == request.app[MODULES_VERSION]
        else:
            version = request.app[STATIC_VERSIONS].get(rest)
            current = version is not None and request.query.get("v") == version
        response.headers["Cache-Control"] = VERSIONED_CACHE if current else UNVERSIONED_CACHE


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
        log.warning("some WebSockets did not close within %.0f s; aborting them", SHUTDOWN_TIMEOUT)
    for bridge in bridges:  # whatever is left (a page that reads nothing) must not hold the exit
        bridge.drop_page("the gateway is stopping")


async def presence_ctx(app: web.Application) -> AsyncIterator[None]:
    """The server is asked who is here while no page of this gateway is in the room (presence.py)."""
    config = app[CONFIG]
    app[PRESENCE] = Presence(app[ONLINE], app[POOL], backend_context(config.server_tls, config.server_ca),
                             config.gateway_secret, min(config.connect_timeout, PROBE_TIMEOUT))
    yield
    await app[PRESENCE].close()


async def sweep_buckets(app: web.Application) -> AsyncIterator[None]:
    """Forget, now and then, the message budgets of addresses that have not spent any lately."""
    buckets = app[MESSAGES_PER_ADDRESS]

    async def sweep() -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            if buckets is not None:
                buckets.sweep(loop.time())

    task = asyncio.get_running_loop().create_task(sweep(), name="sweep message budgets")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def make_app(config: GatewayConfig) -> web.Application:
    app = web.Application(middlewares=[check_host])
    app[CONFIG] = config
    app[WS_PER_ADDRESS] = AddressLimits(config.max_ws_per_address, 0)
    app[MESSAGES_PER_ADDRESS] = (AddressBuckets(config.address_rate, config.address_burst)
                                 if config.address_rate > 0 else None)
    app.cleanup_ctx.append(sweep_buckets)
    app.cleanup_ctx.append(presence_ctx)
    app[BRIDGES] = set()
    app[HEALTH] = HealthCheck(config)
    app[STATS] = GatewayStats()
    app[ONLINE] = Online()
    app[STATIC_VERSIONS] = static_versions(STATIC_DIR)
    app[MODULES_VERSION] = modules_version(app[STATIC_VERSIONS])
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
    bridges: set[Bridge] = app[BRIDGES]
    collector = GatewayCollector(app[STATS], lambda: bridges)
    app.router.add_get(base + "metrics", metrics_handler(collector, config.metrics_allow,
                                                         lambda request: real_address(request, config)))
    app.router.add_get(base + MODULES + "{version}/{name}", module_file)  # before static/: the longer prefix
    app.router.add_static(base + "static", STATIC_DIR, follow_symlinks=False)
    app.on_response_prepare.append(security_headers)
    app.on_shutdown.append(close_bridges)
    return app
