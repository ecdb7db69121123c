"""The gateway's settings, from flags and ``CHAT_*`` variables (deploy/systemd/chat.env)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from tcp_server.config import check_gateway_secret
from tcp_server.env_flags import EnvArgumentParser, parse_bool, parse_hostport
from tcp_server.logformat import LOG_FORMATS
from tcp_server.protocol import DEFAULT_MAX_LINE
from tcp_server.protocol.limits import DEFAULT_IPV6_PREFIX, check_ipv6_prefix
from tcp_server.protocol.texts import LANGS, Lang, default_lang

from .forwarded import IPNetwork, parse_networks
from .hosts import parse_hosts
from .origin import parse_origins

DEFAULT_PORT = 8080
LOOPBACK = parse_networks("127.0.0.0/8 ::1/128")


def normalize_base_path(raw: str) -> str:
    """``chat`` / ``/chat`` / ``/chat/`` all become ``/chat/``; empty is ``/``."""
    parts = [p for p in raw.strip().split("/") if p]
    for p in parts:
        if p in (".", "..") or any(c in p for c in "?#%\\") or not p.isprintable():
            raise ValueError(f"not a usable base path: {raw!r}")
    return "/" + "".join(p + "/" for p in parts)


@dataclass
class GatewayConfig:
    """Everything the gateway can be told. Defaults are the embedded ones."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    server: tuple[str, int] = ("127.0.0.1", 9000)
    servers: tuple[tuple[str, int], ...] = ()  # --server A:9000,B:9000: several nodes of one shared room
    base_path: str = "/"
    trusted_proxy: tuple[IPNetwork, ...] = ()
    gateway_secret: str | None = None
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    max_ws_per_address: int = 20
    address_rate: float = 20.0
    address_burst: int = 40
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX
    keepalive_timeout: float = 15.0
    stall_timeout: float = 30.0
    heartbeat: float = 20.0
    max_message: int = DEFAULT_MAX_LINE
    rate: float = 10.0
    burst: int = 20
    lang: Lang = "en"
    log_level: str = "INFO"
    connect_timeout: float = 5.0
    uvloop: bool = True
    server_tls: bool = False
    server_ca: str | None = None
    metrics_allow: tuple[IPNetwork, ...] = LOOPBACK
    log_format: str = "text"

    @property
    def backends(self) -> tuple[tuple[str, int], ...]:
        """Every server a user may be sent to (``server`` alone unless several were given)."""
        return self.servers or (self.server,)

    @property
    def ws_max_size(self) -> int:
        """Largest WebSocket message read at all: room for a full frame as escaped JSON.

        Past it aiohttp closes the socket (1009); under it but over
        ``max_message`` as a frame, the browser gets a ``too-long`` error and stays.
        """
        return 8 * self.max_message + 1024


def add_gateway_arguments(parser: EnvArgumentParser, *, launcher: bool = False) -> None:
    """The gateway's flags. The all-in-one launcher names host/port ``--gateway-*`` and takes
    the secret, language, log level and flood rate from the server's flags (the server address
    is its own)."""
    d = GatewayConfig()
    prefix = "--gateway-" if launcher else "--"
    parser.add_env_argument(f"{prefix}host", dest="gateway_host", env="CHAT_GATEWAY_HOST", default=d.host,
                            help="address the web gateway listens on")
    parser.add_env_argument(f"{prefix}port", dest="gateway_port", env="CHAT_GATEWAY_PORT", type=int,
                            default=d.port, help="web gateway HTTP port (0: any free port)")
    if not launcher:
        parser.add_env_argument("--server", dest="servers", env="CHAT_SERVER", type=parse_hostports,
                                default=(d.server,),
                                help="the TCP chat server, HOST:PORT; several nodes of one room (chat-server "
                                     "--redis): HOST:PORT,HOST:PORT, each user to the least busy one that is up")
        parser.add_env_argument("--gateway-secret", env="CHAT_GATEWAY_SECRET", default=None,
                                help="shared with the server: send 000#SECRET#ADDRESS before 001 so the "
                                     "server logs and limits the real user")
        parser.add_env_argument("--lang", env="CHAT_LANG", choices=LANGS, default=default_lang(),
                                help="the page's language when the browser's Accept-Language does not pick one")
        parser.add_env_argument("--log-level", env="CHAT_LOG_LEVEL", default=d.log_level,
                                help="logging level (DEBUG, INFO, WARNING, ERROR)")
        parser.add_env_argument("--uvloop", env="CHAT_UVLOOP", type=parse_bool, default=d.uvloop,
                                help="use uvloop when it is installed")
        parser.add_argument("--no-uvloop", dest="uvloop", action="store_false", default=argparse.SUPPRESS,
                            help="the standard asyncio loop even when uvloop is installed (same as --uvloop off)")
        parser.add_env_argument("--log-format", env="CHAT_LOG_FORMAT", choices=LOG_FORMATS, default=d.log_format,
                                help="text, or json: one JSON object a line for log shippers")
        parser.add_env_argument("--server-tls", env="CHAT_SERVER_TLS", type=parse_bool, default=d.server_tls,
                                help="connect to the chat server's TLS port, verifying its certificate and name")
        parser.add_env_argument("--server-ca", env="CHAT_SERVER_CA", default=None,
                                help="PEM file of the private CA of the server's certificate (implies --server-tls)")
    parser.add_env_argument("--base-path", env="CHAT_BASE_PATH", type=normalize_base_path, default=d.base_path,
                            help="URL path the page is served under (e.g. /chat/ behind a proxy)")
    parser.add_env_argument("--trusted-proxy", env="CHAT_TRUSTED_PROXY", type=parse_networks, default=(),
                            help="CIDRs of reverse proxies whose Forwarded / X-Forwarded-For is believed "
                                 "(comma or space separated); none: the socket peer is the user")
    parser.add_env_argument("--allowed-origin", dest="allowed_origins", env="CHAT_ALLOWED_ORIGINS",
                            type=parse_origins, default=(),
                            help="origins allowed to open /ws (scheme://host[:port], comma or space "
                                 "separated); none: only the page's own host")
    parser.add_env_argument("--metrics-allow", env="CHAT_METRICS_ALLOW", type=parse_networks, default=d.metrics_allow,
                            help="CIDRs that may read /metrics (comma or space separated; the address is the "
                                 "real one, through --trusted-proxy)")
    parser.add_env_argument("--allowed-host", dest="allowed_hosts", env="CHAT_ALLOWED_HOSTS",
                            type=parse_hosts, default=(),
                            help="host names the gateway answers to (comma or space separated; nginx's "
                                 "server_name); IP addresses, localhost and the listen address always are. "
                                 "Any other Host (DNS rebinding) gets 421")
    parser.add_env_argument("--max-ws-per-address", dest="max_ws_per_address", env="CHAT_GATEWAY_MAX_PER_ADDRESS",
                            type=int, default=d.max_ws_per_address,
                            help="WebSockets open at once per user address (IPv6: per --ipv6-prefix network); "
                                 "past it: 429 (0: no limit)")
    parser.add_env_argument("--address-rate", env="CHAT_GATEWAY_ADDRESS_RATE", type=float, default=d.address_rate,
                            help="messages a second allowed from all the WebSockets of one user address together "
                                 "(0: no limit)")
    parser.add_env_argument("--address-burst", env="CHAT_GATEWAY_ADDRESS_BURST", type=int, default=d.address_burst,
                            help="messages one address may send at once before --address-rate applies")
    if not launcher:  # the launcher takes the server's
        parser.add_env_argument("--ipv6-prefix", env="CHAT_IPV6_PREFIX", type=int, default=d.ipv6_prefix,
                                help="IPv6 addresses are limited together by this prefix length (64: a /64 "
                                     "is one user)")
    parser.add_env_argument("--keepalive-timeout", env="CHAT_GATEWAY_KEEPALIVE_TIMEOUT", type=float,
                            default=d.keepalive_timeout,
                            help="seconds an HTTP connection may take to send its request headers, and stay "
                                 "idle between requests (slowloris)")
    parser.add_env_argument("--stall-timeout", env="CHAT_GATEWAY_STALL_TIMEOUT", type=float,
                            default=d.stall_timeout,
                            help="seconds a page may leave 1 MiB unread (its backend paused) before it is "
                                 "closed and its memory freed")
    parser.add_env_argument("--heartbeat", env="CHAT_HEARTBEAT", type=float, default=d.heartbeat,
                            help="seconds between WebSocket pings; a page silent for half as long again is "
                                 "dropped (and leaves with 004)")
    parser.add_env_argument("--max-message", env="CHAT_GATEWAY_MAX_MESSAGE", type=int, default=d.max_message,
                            help="longest frame sent on to the server, bytes with the LF (the server's --max-frame)")
    if not launcher:  # the launcher applies the server's --flood-rate/--flood-burst to both
        parser.add_env_argument("--rate", env="CHAT_GATEWAY_RATE", type=float, default=d.rate,
                                help="messages a second allowed per WebSocket (0: no limit), "
                                     "like the server's --flood-rate")
        parser.add_env_argument("--burst", env="CHAT_GATEWAY_BURST", type=int, default=d.burst,
                                help="messages a WebSocket may send at once before the rate applies")


def gateway_config_from_args(ns: object, **overrides: object) -> GatewayConfig:
    """Build the config from parsed flags (``gateway_host``/``gateway_port`` become host/port)."""
    values: dict[str, object] = {}
    for name in GatewayConfig.__dataclass_fields__:
        if name in ("host", "port"):
            values[name] = getattr(ns, f"gateway_{name}")
        elif hasattr(ns, name):
            values[name] = getattr(ns, name)
    servers = values.get("servers")
    if servers:
        values["server"] = servers[0]  # type: ignore[index]
    values.update(overrides)
    if values.get("server_ca"):
        values["server_tls"] = True
    cfg = GatewayConfig(**values)  # type: ignore[arg-type]
    check_config(cfg)
    return cfg


def parse_hostports(raw: str) -> tuple[tuple[str, int], ...]:
    """``HOST:PORT[,HOST:PORT...]``."""
    return tuple(parse_hostport(part.strip()) for part in raw.split(",") if part.strip())


def check_config(cfg: GatewayConfig) -> None:
    if cfg.rate < 0 or (cfg.rate > 0 and cfg.burst < 1):
        raise ValueError("--rate must be >= 0 and --burst >= 1")
    if cfg.heartbeat <= 0:
        raise ValueError("--heartbeat must be > 0")
    if cfg.max_message < 16:
        raise ValueError("--max-message must be at least 16")
    if cfg.server_ca:
        from tcp_server.tls import client_context  # local: this module stays free of ssl and sockets

        try:
            client_context(cfg.server_ca)
        except (OSError, ValueError) as exc:
            raise ValueError(f"--server-ca {cfg.server_ca}: {exc}") from None
    if cfg.address_rate < 0 or (cfg.address_rate > 0 and cfg.address_burst < 1):
        raise ValueError("--address-rate must be >= 0 and --address-burst >= 1")
    if cfg.max_ws_per_address < 0:
        raise ValueError("--max-ws-per-address must be >= 0")
    if cfg.keepalive_timeout <= 0 or cfg.stall_timeout <= 0:
        raise ValueError("--keepalive-timeout and --stall-timeout must be > 0")
    check_ipv6_prefix(cfg.ipv6_prefix)
    check_gateway_secret(cfg.gateway_secret)


def make_parser(environ: dict[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="chat-gateway",
        description="The chat in a browser: a page and a WebSocket per user, each bridged to the TCP server.",
        environ=environ,
    )
    add_gateway_arguments(parser)
    return parser


def parse_config(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> GatewayConfig:
    parser = make_parser(environ)
    ns = parser.parse_args(argv)
    try:
        return gateway_config_from_args(ns)
    except ValueError as exc:
        parser.error(str(exc))
