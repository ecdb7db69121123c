"""chat-gateway's flags and CHAT_* variables, the base path, and the page's languages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tcp_server.protocol import MAX_ID_LENGTH, ErrorReason
from tcp_server.protocol.ids import ID_RULES
from web_gateway.config import normalize_base_path, parse_config
from web_gateway.i18n import all_strings, pick_lang
from web_gateway.launcher import parse_launcher_config
from web_gateway.translate import GATEWAY_REASONS


def test_defaults_env_and_flags() -> None:
    cfg = parse_config([], environ={})
    assert (cfg.host, cfg.port, cfg.server, cfg.base_path) == ("127.0.0.1", 8080, ("127.0.0.1", 9000), "/")
    assert (cfg.trusted_proxy, cfg.gateway_secret, cfg.allowed_origins) == ((), None, ())
    assert (cfg.rate, cfg.burst, cfg.max_message) == (10.0, 20, 4096)
    assert 0 < cfg.heartbeat < 75 / 2  # well inside nginx's proxy_read_timeout
    env = {  # the names deploy/systemd/chat.env uses
        "CHAT_GATEWAY_HOST": "127.0.0.2", "CHAT_GATEWAY_PORT": "8181", "CHAT_SERVER": "127.0.0.3:9100",
        "CHAT_BASE_PATH": "/chat/", "CHAT_TRUSTED_PROXY": "127.0.0.1/32", "CHAT_GATEWAY_SECRET": "k7Qm2pXv9LrT4wZa",
        "CHAT_HEARTBEAT": "15", "CHAT_ALLOWED_ORIGINS": "https://chat.example.org", "CHAT_LANG": "ko",
        "CHAT_GATEWAY_RATE": "5", "CHAT_GATEWAY_BURST": "7", "CHAT_GATEWAY_MAX_MESSAGE": "2048",
        # the server's own settings in the same file must not leak into the gateway
        "CHAT_HOST": "0.0.0.0", "CHAT_PORT": "9999",
    }
    cfg = parse_config([], environ=env)
    assert (cfg.host, cfg.port, cfg.server, cfg.base_path) == ("127.0.0.2", 8181, ("127.0.0.3", 9100), "/chat/")
    assert [str(n) for n in cfg.trusted_proxy] == ["127.0.0.1/32"]
    assert (cfg.gateway_secret, cfg.heartbeat, cfg.allowed_origins, cfg.lang) == (
        "k7Qm2pXv9LrT4wZa", 15.0, ("https://chat.example.org",), "ko")
    assert (cfg.rate, cfg.burst, cfg.max_message) == (5.0, 7, 2048)
    cfg = parse_config(["--port", "8282", "--server", "[::1]:9001", "--base-path", "x", "--rate", "0"], environ=env)
    assert (cfg.port, cfg.server, cfg.base_path, cfg.rate) == (8282, ("::1", 9001), "/x/", 0.0)


@pytest.mark.parametrize(("argv", "env", "needle"), [
    (["--trusted-proxy", "nginx"], {}, "trusted-proxy"),
    ([], {"CHAT_TRUSTED_PROXY": "10.0.0.0/99"}, "CHAT_TRUSTED_PROXY"),
    (["--allowed-origin", "example.org"], {}, "allowed-origin"),
    (["--server", "nohost"], {}, "server"),
    (["--heartbeat", "0"], {}, "heartbeat"),
    (["--base-path", "/a/../b"], {}, "base-path"),
    (["--allowed-host", "http://x/"], {}, "allowed-host"),
    (["--ipv6-prefix", "8"], {}, "ipv6-prefix"),
    (["--max-ws-per-address", "-1"], {}, "max-ws-per-address"),
    (["--stall-timeout", "0"], {}, "stall-timeout"),
])
def test_bad_settings_are_clear_errors(argv: list[str], env: dict[str, str], needle: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(argv, environ=env)
    assert needle in capsys.readouterr().err


def test_security_settings_defaults_and_env() -> None:
    cfg = parse_config([], environ={})
    assert (cfg.allowed_hosts, cfg.max_ws_per_address, cfg.ipv6_prefix) == ((), 20, 64)
    assert (cfg.address_rate, cfg.address_burst, cfg.keepalive_timeout, cfg.stall_timeout) == (20.0, 40, 15.0, 30.0)
    cfg = parse_config([], environ={"CHAT_ALLOWED_HOSTS": "chat.example.org, Other.example:8443",
                                    "CHAT_GATEWAY_MAX_PER_ADDRESS": "5", "CHAT_IPV6_PREFIX": "56",
                                    "CHAT_GATEWAY_STALL_TIMEOUT": "10"})
    assert (cfg.allowed_hosts, cfg.max_ws_per_address, cfg.ipv6_prefix, cfg.stall_timeout) == (
        ("chat.example.org", "other.example"), 5, 56, 10.0)


@pytest.mark.parametrize(("raw", "path"), [("/", "/"), ("", "/"), ("chat", "/chat/"), ("/chat", "/chat/"),
                                           ("/chat/", "/chat/"), ("//a//b/", "/a/b/")])
def test_base_path(raw: str, path: str) -> None:
    assert normalize_base_path(raw) == path


def test_help_lists_every_flag_with_its_variable() -> None:
    out = subprocess.run([sys.executable, "-m", "web_gateway", "--help"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    for flag, env in [("--host", "CHAT_GATEWAY_HOST"), ("--port", "CHAT_GATEWAY_PORT"), ("--server", "CHAT_SERVER"),
                      ("--base-path", "CHAT_BASE_PATH"), ("--trusted-proxy", "CHAT_TRUSTED_PROXY"),
                      ("--gateway-secret", "CHAT_GATEWAY_SECRET"), ("--allowed-origin", "CHAT_ALLOWED_ORIGINS"),
                      ("--heartbeat", "CHAT_HEARTBEAT"), ("--rate", "CHAT_GATEWAY_RATE"),
                      ("--burst", "CHAT_GATEWAY_BURST"), ("--max-message", "CHAT_GATEWAY_MAX_MESSAGE"),
                      ("--lang", "CHAT_LANG"), ("--log-level", "CHAT_LOG_LEVEL"),
                      ("--allowed-host", "CHAT_ALLOWED_HOSTS"),
                      ("--max-ws-per-address", "CHAT_GATEWAY_MAX_PER_ADDRESS"),
                      ("--address-rate", "CHAT_GATEWAY_ADDRESS_RATE"), ("--ipv6-prefix", "CHAT_IPV6_PREFIX"),
                      ("--keepalive-timeout", "CHAT_GATEWAY_KEEPALIVE_TIMEOUT"),
                      ("--stall-timeout", "CHAT_GATEWAY_STALL_TIMEOUT")]:
        assert flag in out and env in out, flag


def test_launcher_shares_a_secret_and_the_flood_rule() -> None:
    server, gateway = parse_launcher_config([], environ={})
    assert (server.port, server.legacy_port, gateway.port) == (9000, 9001, 8080)
    assert server.gateway_secret and gateway.gateway_secret == server.gateway_secret  # random, in memory
    assert (gateway.rate, gateway.burst) == (server.flood_rate, server.flood_burst)
    server2, _ = parse_launcher_config([], environ={})
    assert server2.gateway_secret != server.gateway_secret
    server, gateway = parse_launcher_config(
        ["--port", "9100", "--gateway-port", "8181", "--flood-rate", "3"],
        environ={"CHAT_GATEWAY_SECRET": "fixed-secret-of-16+", "CHAT_BASE_PATH": "/chat/"})
    assert (server.port, gateway.port, gateway.rate, gateway.base_path) == (9100, 8181, 3.0, "/chat/")
    assert server.gateway_secret == gateway.gateway_secret == "fixed-secret-of-16+"


@pytest.mark.parametrize(("header", "query", "default", "lang"), [
    (None, None, "ko", "ko"),
    ("en-US,en;q=0.9", None, "ko", "en"),
    ("ko-KR,ko;q=0.9,en-US;q=0.8", None, "en", "ko"),
    ("fr-FR,fr;q=0.9,ko;q=0.5,en;q=0.4", None, "en", "ko"),
    ("fr-FR", None, "ko", "ko"),
    ("en;q=0, ko;q=0.1", None, "en", "ko"),
    ("en;q=0.5, ko;q=0.5", None, "ko", "en"),  # equal: the first listed
    ("ko;q=bogus, en", None, "ko", "en"),
    ("ko", "en", "ko", "en"),  # ?lang= wins
    ("ko", "xx", "en", "ko"),
])
def test_pick_lang(header: str | None, query: str | None, default: str, lang: str) -> None:
    assert pick_lang(header, default, query) == lang  # type: ignore[arg-type]


def test_page_strings_are_complete_in_both_languages() -> None:
    strings = all_strings()
    assert set(strings) == {"ko", "en"}
    assert set(strings["ko"]) == set(strings["en"])
    for reason in [*ErrorReason, *GATEWAY_REASONS]:
        assert f"reason:{reason}" in strings["ko"], reason
    # every rule an ID can break, said in both languages (a bad-id event names its rule)
    assert {k.removeprefix("id_rule:") for k in strings["ko"] if k.startswith("id_rule:")} == set(ID_RULES)
    assert strings["ko"]["id_rule:too-long"] == f"ID가 너무 깁니다({MAX_ID_LENGTH}자까지)."
    # the seed's own sentences, as the terminal shows them
    assert strings["ko"]["user_joined"] == "[공지]{id} 사용자가 접속하였습니다."
    assert strings["ko"]["whisper"] == "{sender}님의 귓속말 : {message}"
    assert strings["ko"]["bad_input"] == "메시지를 정상적으로 입력해주세요."
