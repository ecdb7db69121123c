"""The TCP server's settings, from flags and ``CHAT_*`` variables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .env_flags import EnvArgumentParser, parse_bool
from .protocol.decoder import DEFAULT_MAX_LINE
from .protocol.texts import LANGS, Lang, default_lang

DEFAULT_PORT = 9000
DEFAULT_LEGACY_PORT = 9001


@dataclass
class ServerConfig:
    """Everything the server can be told. Defaults are the embedded ones."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    legacy_port: int | None = None
    max_frame: int = DEFAULT_MAX_LINE
    max_queue: int = 1024 * 1024
    max_clients: int = 20000
    gateway_secret: str | None = None
    lang: Lang = "en"
    log_level: str = "INFO"
    flood_rate: float = 10.0
    flood_burst: int = 20
    flood_kick: int = 100
    max_per_address: int = 20
    max_new_per_minute: int = 120
    join_timeout: float = 30.0
    keepalive: bool = True
    uvloop: bool = True
    redis: str | None = None
    node_id: str | None = None
    redis_prefix: str = "hanchat:"
    node_timeout: float = 15.0


def add_server_arguments(parser: EnvArgumentParser, *, legacy_default: int | None = None) -> None:
    """The server's flags; the all-in-one launcher reuses them."""
    d = ServerConfig()
    parser.add_env_argument("--host", env="CHAT_HOST", default=d.host, help="address to listen on")
    parser.add_env_argument("--port", env="CHAT_PORT", type=int, default=d.port,
                            help="line-protocol port (0: any free port)")
    parser.add_env_argument(
        "--legacy-port", env="CHAT_LEGACY_PORT", type=int, default=legacy_default,
        help="port for the seed's original client (unframed, Korean text); off unless given",
    )
    parser.add_env_argument("--max-frame", env="CHAT_MAX_FRAME", type=int, default=d.max_frame,
                            help="longest client frame in bytes, LF included; longer gets 109#too-long")
    parser.add_env_argument("--max-queue", env="CHAT_MAX_QUEUE", type=int, default=d.max_queue,
                            help="bytes queued for one slow reader before it is dropped")
    parser.add_env_argument("--max-clients", env="CHAT_MAX_CLIENTS", type=int, default=d.max_clients,
                            help="connections held at once; past it: 109#busy")
    parser.add_env_argument("--gateway-secret", env="CHAT_GATEWAY_SECRET", default=None,
                            help="shared secret that lets a gateway send 000#SECRET#ADDRESS; 000 is refused without it")
    parser.add_env_argument("--lang", env="CHAT_LANG", choices=LANGS, default=default_lang(),
                            help="language of the console log (ko or en; default from the locale)")
    parser.add_env_argument("--log-level", env="CHAT_LOG_LEVEL", default=d.log_level,
                            help="logging level (DEBUG, INFO, WARNING, ERROR)")
    parser.add_env_argument("--flood-rate", env="CHAT_FLOOD_RATE", type=float, default=d.flood_rate,
                            help="frames a second allowed per connection (0: no limit)")
    parser.add_env_argument("--flood-burst", env="CHAT_FLOOD_BURST", type=int, default=d.flood_burst,
                            help="frames a connection may send at once before the rate applies")
    parser.add_env_argument("--flood-kick", env="CHAT_FLOOD_KICK", type=int, default=d.flood_kick,
                            help="refused frames in a row after which a flooding connection is dropped")
    parser.add_env_argument("--max-per-address", env="CHAT_MAX_PER_ADDRESS", type=int, default=d.max_per_address,
                            help="connections open at once per address (0: no limit)")
    parser.add_env_argument("--max-new-per-minute", env="CHAT_MAX_NEW_PER_MINUTE", type=int,
                            default=d.max_new_per_minute, help="new connections per address per minute (0: no limit)")
    parser.add_env_argument("--join-timeout", env="CHAT_JOIN_TIMEOUT", type=float, default=d.join_timeout,
                            help="seconds a connection may stay without joining")
    parser.add_env_argument("--keepalive", env="CHAT_KEEPALIVE", type=parse_bool, default=d.keepalive,
                            help="TCP keepalive on every connection")
    parser.add_env_argument("--redis", env="CHAT_REDIS", default=None,
                            help="redis://HOST:PORT/DB: share one room between several nodes through Redis "
                                 "(default: the embedded in-memory room)")
    parser.add_env_argument("--node-id", env="CHAT_NODE_ID", default=None,
                            help="this node's name in logs and in Redis (default: hostname:port)")
    parser.add_env_argument("--redis-prefix", env="CHAT_REDIS_PREFIX", default=d.redis_prefix,
                            help="prefix of every Redis key, so that two chats can share one Redis")
    parser.add_env_argument("--node-timeout", env="CHAT_NODE_TIMEOUT", type=float, default=d.node_timeout,
                            help="seconds after which a silent node counts as dead and its users leave the room")
    parser.add_env_argument("--uvloop", env="CHAT_UVLOOP", type=parse_bool, default=d.uvloop,
                            help="use uvloop when it is installed")


def config_from_args(ns: object) -> ServerConfig:
    fields = ServerConfig.__dataclass_fields__
    return ServerConfig(**{name: getattr(ns, name) for name in fields if hasattr(ns, name)})


def parse_config(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> ServerConfig:
    parser = EnvArgumentParser(
        prog="chat-server",
        description="The chat's native TCP server (wire protocol v1, see PROTOCOL.md).",
        environ=environ,
    )
    add_server_arguments(parser)
    return config_from_args(parser.parse_args(argv))
