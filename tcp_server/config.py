"""The TCP server's settings, from flags and ``CHAT_*`` variables."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from .env_flags import EnvArgumentParser, parse_bool
from .logformat import LOG_FORMATS
from .protocol.decoder import DEFAULT_MAX_LINE
from .protocol.limits import DEFAULT_IPV6_PREFIX
from .protocol.texts import LANGS, Lang, default_lang
from .store.urls import MEMORY, DatabaseUrlError, default_data_dir, default_database, parse_database

DEFAULT_PORT = 9000
DEFAULT_LEGACY_PORT = 9001
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
"""Seconds a TLS client may take to finish its handshake before it is dropped."""
DEFAULT_METRICS_PORT = 9002
"""chat-run's metrics port (chat-server's is off unless given)."""


MIN_SECRET_LENGTH = 16
PLACEHOLDER_SECRETS = frozenset({"change-me", "changeme", "secret"})


def check_gateway_secret(secret: str | None) -> None:
    """Refuse the shipped placeholder and guessable secrets: whoever knows it can claim any address."""
    if not secret:
        return  # no secret: 000 is refused, nothing to guess
    if secret.strip().lower() in PLACEHOLDER_SECRETS:
        raise ValueError(f"the gateway secret is the placeholder {secret!r}; set CHAT_GATEWAY_SECRET to "
                         "the output of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the gateway secret is shorter than {MIN_SECRET_LENGTH} characters; set "
                         "CHAT_GATEWAY_SECRET to the output of: "
                         "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")


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
    address_flood_rate: float = 20.0
    address_flood_burst: int = 40
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX
    admin_socket: str | None = None
    admin_socket_mode: int = 0o600
    bans_file: str | None = None
    join_timeout: float = 30.0
    keepalive: bool = True
    uvloop: bool = True
    tls_port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    log_format: str = "text"
    history: int = 50
    history_max_bytes: int = 256 * 1024
    # The durable history. A ServerConfig made in code keeps it in memory (tests, benchmarks); chat-server's
    # flags default to an SQLite file in the data directory (config_from_args).
    database: str = MEMORY
    data_dir: str | None = None
    history_days: float = 0.0  # retention by age (0: keep every message)
    history_max: int = 0  # retention by count, per room (0: no bound)
    group_commit_ms: float | None = None  # the store's batch interval; None: per database (gate.group_commit_for)
    search_rate: float = 1.0  # 017 searches per second per connection (its own bucket)
    search_burst: int = 10
    resume_grace: float = 60.0
    resume_max_frames: int = 1000
    resume_max_bytes: int = 256 * 1024
    redis: str | None = None
    node_id: str | None = None
    redis_prefix: str = "hanchat:"
    node_timeout: float = 15.0
    # accounts (a durable --database): 018 log in, 019 register, 020 change password
    registration: str = "open"  # open: guests may register (019); admin: only chat-admin account add
    guests: bool = True  # no: 001 is refused, everyone logs in
    allow_plaintext_login: bool = False  # passwords on plaintext TCP from another host (not the TLS port)
    login_per_account_address: int = 10  # failed logins in --login-window before a lockout (0: off)
    login_per_address: int = 30
    login_per_account: int = 100
    login_window: float = 15 * 60.0
    login_lockout: float = 60.0  # the first lockout; each further one doubles, up to --login-max-lockout
    login_max_lockout: float = 3600.0
    login_workers: int = 2  # argon2 hashes at once (threads)
    login_queue: int = 32  # hashes waiting beyond those; past it: 109#login-busy
    login_nice: int = 10  # the hashing threads' nice value above the event loop's (Linux: per thread)


def parse_mode(raw: str) -> int:
    """A file mode in octal (``600``, ``0600``, ``0o660``)."""
    value = int(raw.lower().removeprefix("0o"), 8)
    if not 0 <= value <= 0o777:
        raise ValueError(f"not a file mode: {raw!r}")
    return value


def config_problems(cfg: ServerConfig) -> list[str]:
    """What is wrong with ``cfg``, each as a sentence naming the flag; empty when it can run.

    Checked at start-up, so that a bad value stops the program with a clear
    message instead of failing on every connection later.
    """
    problems: list[str] = []
    for flag, port in (("--port", cfg.port), ("--legacy-port", cfg.legacy_port)):
        if port is not None and not 0 <= port <= 65535:
            problems.append(f"{flag} must be a port number (0-65535), not {port}")
    if cfg.max_frame < 64:
        problems.append(f"--max-frame must be at least 64 bytes, not {cfg.max_frame}")
    if cfg.max_queue < 1024:
        problems.append(f"--max-queue must be at least 1024 bytes, not {cfg.max_queue}")
    if cfg.max_clients < 1:
        problems.append(f"--max-clients must be at least 1, not {cfg.max_clients}")
    if cfg.flood_rate < 0:
        problems.append(f"--flood-rate must be 0 (off) or more, not {cfg.flood_rate}")
    if cfg.flood_rate > 0 and cfg.flood_burst < 1:
        problems.append(f"--flood-burst must be at least 1 when --flood-rate is on, not {cfg.flood_burst}")
    for flag, value in (("--flood-kick", cfg.flood_kick), ("--max-per-address", cfg.max_per_address),
                        ("--max-new-per-minute", cfg.max_new_per_minute)):
        if value < 0:
            problems.append(f"{flag} must be 0 or more, not {value}")
    if cfg.address_flood_rate < 0 or (cfg.address_flood_rate > 0 and cfg.address_flood_burst < 1):
        problems.append("--address-flood-rate must be 0 (off) or more, with --address-flood-burst at least 1")
    if not 32 <= cfg.ipv6_prefix <= 128:
        problems.append(f"--ipv6-prefix must be between 32 and 128, not {cfg.ipv6_prefix}")
    if cfg.admin_socket_mode & 0o007:
        problems.append(f"--admin-socket-mode {cfg.admin_socket_mode:o} lets every local user kick and ban; "
                        "use 0600 or 0660")
    if not cfg.join_timeout > 0:
        problems.append(f"--join-timeout must be more than 0 seconds, not {cfg.join_timeout}")
    if cfg.tls_port is not None and not (cfg.tls_cert and cfg.tls_key):
        problems.append("--tls-port needs --tls-cert and --tls-key")
    problems += database_problems(cfg)
    problems += account_problems(cfg)
    if cfg.tls_handshake_timeout <= 0:
        problems.append(f"--tls-handshake-timeout must be more than 0 seconds, not {cfg.tls_handshake_timeout}")
    return problems


def database_problems(cfg: ServerConfig) -> list[str]:
    """``--database`` and the retention flags, and what they cannot be combined with."""
    problems: list[str] = []
    try:
        url = parse_database(cfg.database)
    except DatabaseUrlError as exc:
        return [str(exc)]
    if cfg.redis and url.kind == "sqlite":
        problems.append("--redis shares the room between several nodes, but an SQLite file (--database "
                        f"{cfg.database}) belongs to one node: use --database postgresql://... or leave --database "
                        "out (history then stays in Redis, not durable)")
    if cfg.history_days < 0:
        problems.append(f"--history-days must be 0 (keep all) or more, not {cfg.history_days}")
    if cfg.search_rate < 0 or (cfg.search_rate > 0 and cfg.search_burst < 1):
        problems.append("--search-rate must be 0 (off) or more, with --search-burst at least 1")
    if cfg.history_max < 0:
        problems.append(f"--history-max must be 0 (no bound) or more, not {cfg.history_max}")
    if cfg.group_commit_ms is not None and not 0 <= cfg.group_commit_ms <= 1000:
        problems.append(f"--group-commit-ms must be 0-1000, not {cfg.group_commit_ms}")
    return problems


def account_problems(cfg: ServerConfig) -> list[str]:
    """The account flags."""
    problems: list[str] = []
    if cfg.registration not in ("open", "admin"):
        problems.append(f"--registration is open or admin, not {cfg.registration!r}")
    if min(cfg.login_per_account_address, cfg.login_per_address, cfg.login_per_account) < 0:
        problems.append("--login-per-account-address, --login-per-address and --login-per-account must be >= 0")
    if cfg.login_window <= 0 or cfg.login_lockout <= 0 or cfg.login_max_lockout < cfg.login_lockout:
        problems.append("--login-window and --login-lockout must be > 0, --login-max-lockout >= --login-lockout")
    if cfg.login_workers < 1 or cfg.login_queue < 0:
        problems.append("--login-workers must be at least 1 and --login-queue 0 or more")
    if not 0 <= cfg.login_nice <= 19:
        problems.append(f"--login-nice is 0 (the event loop's priority) to 19, not {cfg.login_nice}")
    try:
        durable = parse_database(cfg.database).durable
    except DatabaseUrlError:
        durable = True  # (said by database_problems)
    if not cfg.guests and not durable:
        problems.append("--guests no needs accounts, and accounts need a durable --database (not memory)")
    return problems


def add_account_arguments(parser: EnvArgumentParser) -> None:
    """Accounts (018-020): who may register, whether guests may join, the password path, guessing limits."""
    d = ServerConfig()
    parser.add_env_argument("--registration", env="CHAT_REGISTRATION", choices=("open", "admin"),
                            default=d.registration,
                            help="open: a guest may keep its ID with 019; admin: only chat-admin account add")
    parser.add_env_argument("--guests", env="CHAT_GUESTS", type=parse_bool, default=d.guests,
                            help="yes: anyone may join with 001 (an ID nobody registered); no: log in only (018)")
    parser.add_env_argument("--allow-plaintext-login", env="CHAT_ALLOW_PLAINTEXT_LOGIN", type=parse_bool,
                            default=d.allow_plaintext_login,
                            help="accept 018-020 on plaintext TCP from another host (default: TLS port or "
                                 "loopback only; 109#needs-tls otherwise)")
    parser.add_env_argument("--login-per-account-address", env="CHAT_LOGIN_PER_ACCOUNT_ADDRESS", type=int,
                            default=d.login_per_account_address,
                            help="failed logins to one account from one address in --login-window before a "
                                 "lockout (0: no limit)")
    parser.add_env_argument("--login-per-address", env="CHAT_LOGIN_PER_ADDRESS", type=int,
                            default=d.login_per_address, help="failed logins from one address (0: no limit)")
    parser.add_env_argument("--login-per-account", env="CHAT_LOGIN_PER_ACCOUNT", type=int,
                            default=d.login_per_account,
                            help="failed logins to one account from anywhere (0: no limit)")
    parser.add_env_argument("--login-window", env="CHAT_LOGIN_WINDOW", type=float, default=d.login_window,
                            help="seconds failed logins are counted over")
    parser.add_env_argument("--login-lockout", env="CHAT_LOGIN_LOCKOUT", type=float, default=d.login_lockout,
                            help="seconds of the first lockout; each further one of the same count doubles")
    parser.add_env_argument("--login-max-lockout", env="CHAT_LOGIN_MAX_LOCKOUT", type=float,
                            default=d.login_max_lockout, help="the longest lockout, in seconds")
    parser.add_env_argument("--login-workers", env="CHAT_LOGIN_WORKERS", type=int, default=d.login_workers,
                            help="password hashes computed at once (threads; each takes 19 MiB while it runs)")
    parser.add_env_argument("--login-queue", env="CHAT_LOGIN_QUEUE", type=int, default=d.login_queue,
                            help="password hashes that may wait beyond those; past it: 109#login-busy")
    parser.add_env_argument("--login-nice", env="CHAT_LOGIN_NICE", type=int, default=d.login_nice,
                            help="how many nice steps below the event loop the hashing threads run (0-19; "
                                 "0: the same priority): a login storm takes the CPU the room leaves")


def add_server_arguments(
    parser: EnvArgumentParser, *, legacy_default: int | None = None, metrics_default: int | None = None,
) -> None:
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
    parser.add_env_argument("--address-flood-rate", env="CHAT_ADDRESS_FLOOD_RATE", type=float,
                            default=d.address_flood_rate,
                            help="messages a second allowed from all the connections of one address together "
                                 "(after a gateway's 000: of one real user); 0: no limit")
    parser.add_env_argument("--address-flood-burst", env="CHAT_ADDRESS_FLOOD_BURST", type=int,
                            default=d.address_flood_burst,
                            help="messages one address may send at once before --address-flood-rate applies")
    parser.add_env_argument("--ipv6-prefix", env="CHAT_IPV6_PREFIX", type=int, default=d.ipv6_prefix,
                            help="IPv6 addresses are limited together by this prefix length (64: a /64 is one user)")
    parser.add_env_argument("--admin-socket", env="CHAT_ADMIN_SOCKET", default=None,
                            help="Unix socket for chat-admin (who, kick, ban, mute, notice); off unless given")
    parser.add_env_argument("--admin-socket-mode", env="CHAT_ADMIN_SOCKET_MODE", type=parse_mode,
                            default=d.admin_socket_mode,
                            help="file mode of the admin socket, in octal: who may use chat-admin (0600: the "
                                 "server's own user, and root)")
    parser.add_env_argument("--bans-file", env="CHAT_BANS_FILE", default=None,
                            help="JSON file the bans are kept in across restarts (written atomically); "
                                 "without it bans last until the server stops")
    parser.add_env_argument("--join-timeout", env="CHAT_JOIN_TIMEOUT", type=float, default=d.join_timeout,
                            help="seconds a connection may stay without joining")
    parser.add_env_argument("--keepalive", env="CHAT_KEEPALIVE", type=parse_bool, default=d.keepalive,
                            help="TCP keepalive on every connection")
    parser.add_env_argument("--history", env="CHAT_HISTORY", type=int, default=d.history,
                            help="recent messages to all kept and sent (111) to a newcomer (0: none)")
    parser.add_env_argument("--database", env="CHAT_DATABASE", default=None,
                            help="where the history is kept: sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DB, or "
                                 "memory (lost at exit; today's behaviour); default: sqlite:///DATA_DIR/chat.db "
                                 "(with --redis: in Redis, not durable)")
    parser.add_env_argument("--data-dir", env="CHAT_DATA_DIR", default=None,
                            help="directory of the default database: $STATE_DIRECTORY (systemd) or "
                                 "$XDG_STATE_HOME/hanchat, else ~/.local/state/hanchat")
    parser.add_env_argument("--history-days", env="CHAT_HISTORY_DAYS", type=float, default=d.history_days,
                            help="stored messages older than this many days are deleted (0: keep all)")
    parser.add_env_argument("--history-max", env="CHAT_HISTORY_MAX", type=int, default=d.history_max,
                            help="stored messages kept per room, the oldest deleted past it (0: no bound)")
    parser.add_env_argument("--group-commit-ms", env="CHAT_GROUP_COMMIT_MS", type=float,
                            default=d.group_commit_ms,
                            help="milliseconds at least between two of the store's batches under a steady flow "
                                 "(what arrives meanwhile joins the next; every message is committed before it is "
                                 "delivered): default 0 for SQLite (its commit is cheap: latency first), 3 for "
                                 "PostgreSQL (a round trip each: fewer, larger batches)")
    parser.add_env_argument("--search-rate", env="CHAT_SEARCH_RATE", type=float, default=d.search_rate,
                            help="history searches (017) per second per connection, a bucket of their own (0: off)")
    parser.add_env_argument("--search-burst", env="CHAT_SEARCH_BURST", type=int, default=d.search_burst,
                            help="searches a connection may make at once before --search-rate applies")
    parser.add_env_argument("--resume-grace", env="CHAT_RESUME_GRACE", type=float, default=d.resume_grace,
                            help="seconds a dropped session keeps its ID and place for a resume (008) (0: off)")
    parser.add_env_argument("--resume-max-bytes", env="CHAT_RESUME_MAX_BYTES", type=int,
                            default=d.resume_max_bytes,
                            help="bytes of missed frames kept for one dropped session; past it the session ends")
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
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false", default=argparse.SUPPRESS,
                        help="the standard asyncio loop even when uvloop is installed (same as --uvloop off)")
    parser.add_env_argument("--tls-port", env="CHAT_TLS_PORT", type=int, default=None,
                            help="also serve the line protocol over TLS on this port; off unless given "
                                 "(needs --tls-cert and --tls-key; SIGHUP reloads them)")
    parser.add_env_argument("--tls-cert", env="CHAT_TLS_CERT", default=None,
                            help="PEM certificate chain for the TLS port")
    parser.add_env_argument("--tls-key", env="CHAT_TLS_KEY", default=None, help="PEM private key for the TLS port")
    parser.add_env_argument("--tls-handshake-timeout", env="CHAT_TLS_HANDSHAKE_TIMEOUT", type=float,
                            default=d.tls_handshake_timeout,
                            help="seconds a TLS client may take to finish its handshake")
    parser.add_env_argument("--metrics-port", env="CHAT_METRICS_PORT", type=int, default=metrics_default,
                            help="serve Prometheus metrics on http://METRICS_HOST:PORT/metrics"
                                 + ("" if metrics_default is not None else "; off unless given"))
    parser.add_env_argument("--metrics-host", env="CHAT_METRICS_HOST", default=d.metrics_host,
                            help="address the metrics port listens on")
    parser.add_env_argument("--log-format", env="CHAT_LOG_FORMAT", choices=LOG_FORMATS, default=d.log_format,
                            help="text, or json: one JSON object a line for log shippers")
    add_account_arguments(parser)


def check_server_config(cfg: ServerConfig) -> None:
    """ValueError naming every problem of :func:`config_problems` (for callers that build a config)."""
    problems = config_problems(cfg)
    if problems:
        raise ValueError("; ".join(problems))


def config_from_args(ns: object) -> ServerConfig:
    """ValueError for settings that must not be run with (a placeholder secret)."""
    fields = ServerConfig.__dataclass_fields__
    values = {name: getattr(ns, name) for name in fields if hasattr(ns, name)}
    if values.get("data_dir") is None:
        values["data_dir"] = default_data_dir()
    if values.get("database") is None:  # a bare chat-server keeps its history in the data directory
        values["database"] = MEMORY if values.get("redis") else default_database(values["data_dir"])
    cfg = ServerConfig(**values)
    check_gateway_secret(cfg.gateway_secret)
    return cfg


def parse_config(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> ServerConfig:
    parser = EnvArgumentParser(
        prog="chat-server",
        description="The chat's native TCP server (wire protocol v1, see PROTOCOL.md).",
        environ=environ,
    )
    add_server_arguments(parser)
    try:
        config = config_from_args(parser.parse_args(argv))
    except ValueError as exc:
        parser.error(str(exc))
    problems = config_problems(config)
    if problems:
        parser.error("; ".join(problems))
    return config
