"""Both programs refuse the shipped placeholder and short gateway secrets at start-up (issue 15, item 11)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from tcp_server.config import parse_config as parse_server_config
from web_gateway.config import parse_config as parse_gateway_config
from web_gateway.launcher import parse_launcher_config

REPO = pathlib.Path(__file__).resolve().parent.parent
GOOD = "k7Qm2pXv9LrT4wZa"  # 16 characters


@pytest.mark.parametrize(("secret", "needle"), [
    ("change-me", "placeholder"),
    ("CHANGE-ME", "placeholder"),
    ("short", "shorter than 16"),
    (GOOD[:-1], "shorter than 16"),
])
@pytest.mark.parametrize("parse", [parse_server_config, parse_gateway_config, parse_launcher_config])
def test_bad_secret_is_refused_with_a_clear_error(parse: object, secret: str, needle: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse([], environ={"CHAT_GATEWAY_SECRET": secret})  # type: ignore[operator]
    err = capsys.readouterr().err
    assert needle in err and "secrets.token_urlsafe" in err


@pytest.mark.parametrize("parse", [parse_server_config, parse_gateway_config])
def test_good_or_no_secret_is_accepted(parse: object) -> None:
    assert parse([], environ={"CHAT_GATEWAY_SECRET": GOOD}).gateway_secret == GOOD  # type: ignore[operator]
    assert parse([], environ={}).gateway_secret is None  # type: ignore[operator]


def shipped_env() -> dict[str, str]:
    lines = (REPO / "deploy" / "systemd" / "chat.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.parametrize("parse", [parse_server_config, parse_gateway_config])
def test_shipped_env_file_does_not_start_until_its_secret_is_replaced(
        parse: object, capsys: pytest.CaptureFixture[str]) -> None:
    """deploy/systemd/chat.env as shipped must not run with a guessable secret; a fresh one is accepted."""
    env = shipped_env()
    with pytest.raises(SystemExit):
        parse([], environ=env)  # type: ignore[operator]
    assert "placeholder" in capsys.readouterr().err
    assert parse([], environ={**env, "CHAT_GATEWAY_SECRET": GOOD}).gateway_secret == GOOD  # type: ignore[operator]


def test_server_program_exits_on_the_placeholder() -> None:
    result = subprocess.run([sys.executable, "-m", "tcp_server", "--port", "0"], capture_output=True, text=True,
                            timeout=60, env={"CHAT_GATEWAY_SECRET": "change-me", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "placeholder" in result.stderr
