"""``chat-client``'s settings, from arguments and ``CHAT_*`` variables (the argument wins).

The client's host and port use CHAT_CLIENT_HOST/CHAT_CLIENT_PORT: CHAT_HOST and
CHAT_PORT configure the server, and one shell often runs both.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tcp_server.env_flags import EnvArgumentParser, parse_bool
from tcp_server.protocol.texts import LANGS, Lang, default_lang


@dataclass(frozen=True)
class ClientConfig:
    """Everything the client can be told. None for host, port or id: ask, as the seed does."""

    host: str | None = None
    port: int | None = None
    id: str | None = None
    lang: Lang = "ko"
    color: bool = True
    timestamps: bool = False
    reconnect: bool = False
    reconnect_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    ping_interval: float = 30.0
    ping_timeout: float = 10.0
    connect_timeout: float = 10.0
    leave_timeout: float = 5.0
    history: str | None = None
    log_level: str = "WARNING"
    tls: bool = False
    tls_ca: str | None = None
    login: str | None = None
    """``--login ID``: log in (018) as this registered ID instead of joining as a guest."""
    password: str | None = field(default=None, repr=False)
    """From CHAT_PASSWORD or --password-file (scripts); None: asked without echo."""


def parse_port(raw: str) -> int:
    """A TCP port 1–65535, or ValueError."""
    port = int(raw.strip())
    if not 1 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return port


def seconds(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError(f"must not be negative: {raw}")
    return value


def _env_bool(environ: Mapping[str, str], name: str, default: bool, parser: argparse.ArgumentParser) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        return parse_bool(raw)
    except ValueError as exc:
        parser.error(f"environment variable {name}: {exc}")


def build_parser(environ: Mapping[str, str]) -> EnvArgumentParser:
    env = dict(environ)
    d = ClientConfig()
    p = EnvArgumentParser(
        prog="chat-client",
        description="Chat in a terminal. Commands: /m ID MESSAGE (whisper), /b MESSAGE or plain text "
        "(to everyone), /who (list), /q (leave), /help. When stdin is not a terminal, reads commands "
        "from it and prints one line per server frame.",
        environ=env,
    )
    p.add_env_argument("host", env="CHAT_CLIENT_HOST", nargs="?", help="server address; asked for when missing")
    p.add_env_argument("port", env="CHAT_CLIENT_PORT", type=parse_port, nargs="?",
                       help="server port; asked for when missing")
    p.add_env_argument("--id", env="CHAT_ID", help="your ID; asked for when missing")
    p.add_env_argument("--lang", env="CHAT_LANG", choices=LANGS, default=default_lang(env),
                       help="language of the texts, ko or en (default from the locale)")
    color_default = _env_bool(env, "CHAT_COLOR", d.color, p) and not env.get("NO_COLOR")
    p.add_argument("--color", action=argparse.BooleanOptionalAction, default=color_default,
                   help="colour notices, whispers and errors when the terminal has colour "
                        "(env CHAT_COLOR; a non-empty NO_COLOR turns it off)")
    p.add_argument("--timestamps", action=argparse.BooleanOptionalAction,
                   default=_env_bool(env, "CHAT_TIMESTAMPS", d.timestamps, p),
                   help="put [HH:MM:SS] before each line (env CHAT_TIMESTAMPS)")
    p.add_argument("--reconnect", action=argparse.BooleanOptionalAction,
                   default=_env_bool(env, "CHAT_RECONNECT", d.reconnect, p),
                   help="when the server goes away, retry with backoff and rejoin with the same ID "
                        "(env CHAT_RECONNECT)")
    p.add_env_argument("--reconnect-delay", env="CHAT_RECONNECT_DELAY", type=seconds, default=d.reconnect_delay,
                       help="longest wait before the first reconnect attempt, seconds; doubles up to the maximum")
    p.add_env_argument("--reconnect-max-delay", env="CHAT_RECONNECT_MAX_DELAY", type=seconds,
                       default=d.reconnect_max_delay, help="longest wait between reconnect attempts, seconds")
    p.add_env_argument("--ping-interval", env="CHAT_PING_INTERVAL", type=seconds, default=d.ping_interval,
                       help="seconds of silence from the server before a ping (006) checks it is alive; 0: never")
    p.add_env_argument("--ping-timeout", env="CHAT_PING_TIMEOUT", type=seconds, default=d.ping_timeout,
                       help="seconds to wait for the pong before the server is given up as dead")
    p.add_env_argument("--connect-timeout", env="CHAT_CONNECT_TIMEOUT", type=seconds, default=d.connect_timeout,
                       help="seconds to wait for the TCP connection and for the answer to a join")
    p.add_env_argument("--history", env="CHAT_HISTORY", default=None,
                       help="file that keeps the typed lines across sessions; without it, history lasts one session")
    p.add_env_argument("--log-level", env="CHAT_CLIENT_LOG_LEVEL", type=str.upper, default=d.log_level,
                       choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                       help="logging level of diagnostics on stderr")
    p.add_argument("--tls", action=argparse.BooleanOptionalAction,
                   default=_env_bool(env, "CHAT_TLS", d.tls, p),
                   help="connect with TLS (the server's --tls-port), verifying its certificate and host name "
                        "against the system's CAs (env CHAT_TLS)")
    p.add_env_argument("--tls-ca", env="CHAT_TLS_CA", default=None,
                       help="PEM file of the private CA that signed the server's certificate (implies --tls)")
    p.add_env_argument("--login", env="CHAT_LOGIN", default=None,
                       help="log in as this registered ID (018); the password is asked without echo, or comes "
                            "from CHAT_PASSWORD or --password-file")
    p.add_argument("--password-file", default=None,
                   help="file whose first line (without its line ending) is the --login password, for scripts")
    return p


def parse_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> ClientConfig:
    """Parse ``argv`` (default: sys.argv) with ``environ`` (default: os.environ)."""
    import os

    env = os.environ if environ is None else environ
    parser = build_parser(env)
    ns = parser.parse_args(argv)
    if ns.tls_ca:
        from tcp_server.tls import client_context

        try:
            client_context(ns.tls_ca)  # a missing or unreadable CA file is a usage error, said now
        except (OSError, ValueError) as exc:
            parser.error(f"--tls-ca {ns.tls_ca}: {exc}")
    return ClientConfig(
        host=ns.host or None,
        port=ns.port,
        id=ns.id or None,
        lang=ns.lang,
        color=ns.color,
        timestamps=ns.timestamps,
        reconnect=ns.reconnect,
        reconnect_delay=max(ns.reconnect_delay, 0.01),
        reconnect_max_delay=max(ns.reconnect_max_delay, 0.01),
        ping_interval=ns.ping_interval,
        ping_timeout=max(ns.ping_timeout, 0.01),
        connect_timeout=max(ns.connect_timeout, 0.01),
        history=ns.history,
        log_level=ns.log_level,
        tls=ns.tls or bool(ns.tls_ca),
        tls_ca=ns.tls_ca or None,
        login=ns.login or None,
        password=_password(ns.password_file, env, parser),
    )


def _password(path: str | None, env: Mapping[str, str], parser: argparse.ArgumentParser) -> str | None:
    """The password a script gives: --password-file's first line, else CHAT_PASSWORD (never echoed, never logged)."""
    if path:
        try:
            with open(path, encoding="utf-8") as stream:
                return stream.readline().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            parser.error(f"--password-file {path}: {type(exc).__name__}")
    return env.get("CHAT_PASSWORD") or None
