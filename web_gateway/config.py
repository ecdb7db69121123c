"""The gateway's settings, from flags and ``CHAT_*`` variables (deploy/systemd/chat.env)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tcp_server.env_flags import EnvArgumentParser, parse_bool, parse_hostport
from tcp_server.protocol import DEFAULT_MAX_LINE
from tcp_server.protocol.texts import LANGS, Lang, default_lang

from .forwarded import IPNetwork, parse_networks
from .origin import parse_origins

DEFAULT_PORT = 8080


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
    heartbeat: float = 20.0
    max_message: int = DEFAULT_MAX_LINE
    rate: float = 10.0
    burst: int = 20
    lang: Lang = "en"
    log_level: str = "INFO"
    connect_timeout: float = 5.0
    uvloop: bool = True

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
    parser.add_env_argument("--base-path", env="CHAT_BASE_PATH", type=normalize_base_path, default=d.base_path,
                            help="URL path the page is served under (e.g. /chat/ behind a proxy)")
    parser.add_env_argument("--trusted-proxy", env="CHAT_TRUSTED_PROXY", type=parse_networks, default=(),
                            help="CIDRs of reverse proxies whose Forwarded / X-Forwarded-For is believed "
                                 "(comma or space separated); none: the socket peer is the user")
    parser.add_env_argument("--allowed-origin", dest="allowed_origins", env="CHAT_ALLOWED_ORIGINS",
                            type=parse_origins, default=(),
                            help="origins allowed to open /ws (scheme://host[:port], comma or space "
                                 "separated); none: only the page's own host")
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
