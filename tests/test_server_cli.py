"""chat-server as operators run it: flags, CHAT_* variables, help, signals."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import socket
import subprocess
import sys

import pytest

from tcp_server import ChatServer
from tcp_server.config import parse_config
from tcp_server.protocol import Error, ErrorReason, Pong, SessionToken
from tests.conftest import server_config
from tests.helpers import TIMEOUT, LineClient


def test_flags_env_and_defaults() -> None:
    cfg = parse_config([], environ={})
    assert (cfg.host, cfg.port, cfg.legacy_port, cfg.max_frame) == ("127.0.0.1", 9000, None, 4096)
    env = {"CHAT_PORT": "9100", "CHAT_LEGACY_PORT": "9101", "CHAT_GATEWAY_SECRET": "k7Qm2pXv9LrT4wZa",
           "CHAT_LANG": "ko", "CHAT_MAX_QUEUE": "2048", "CHAT_FLOOD_RATE": "0", "CHAT_KEEPALIVE": "off"}
    cfg = parse_config([], environ=env)
    assert (cfg.port, cfg.legacy_port, cfg.gateway_secret, cfg.lang, cfg.max_queue, cfg.flood_rate, cfg.keepalive) == (
        9100, 9101, "k7Qm2pXv9LrT4wZa", "ko", 2048, 0.0, False)
    cfg = parse_config(["--port", "9200", "--lang", "en"], environ=env)  # the flag wins
    assert (cfg.port, cfg.lang) == (9200, "en")


def test_bad_environment_value_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config([], environ={"CHAT_PORT": "ninety"})
    assert "CHAT_PORT" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "flag"), [
    (["--flood-burst", "0"], "--flood-burst"),
    (["--flood-rate", "-1"], "--flood-rate"),
    (["--port", "70000"], "--port"),
    (["--max-frame", "10"], "--max-frame"),
    (["--max-queue", "100"], "--max-queue"),
    (["--max-clients", "0"], "--max-clients"),
    (["--join-timeout", "0"], "--join-timeout"),
    (["--max-per-address", "-2"], "--max-per-address"),
    (["--group-commit-ms", "-1"], "--group-commit-ms"),
    (["--group-commit-ms", "5000"], "--group-commit-ms"),
])
def test_bad_options_stop_the_program_at_start_up(argv: list[str], flag: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A value that would fail on every connection later is refused now, naming the flag."""
    with pytest.raises(SystemExit):
        parse_config(argv, environ={})
    assert flag in capsys.readouterr().err


def test_group_commit_per_database_unless_given() -> None:
    from tcp_server.store.gate import group_commit_for

    assert parse_config([], environ={}).group_commit_ms is None
    assert parse_config([], environ={"CHAT_GROUP_COMMIT_MS": "2.5"}).group_commit_ms == 2.5
    assert (group_commit_for("sqlite", None), group_commit_for("postgresql", None)) == (0.0, 0.003)
    assert group_commit_for("sqlite", 4) == group_commit_for("postgresql", 4) == 0.004


async def test_an_sqlite_server_commits_each_loop_turns_messages(tmp_path: pathlib.Path) -> None:
    """The default for SQLite: no wait between batches (its inline commit is cheap); the flag overrides it."""
    for given, expected in ((None, 0.0), (7.0, 0.007)):
        server = ChatServer(server_config(database=f"sqlite:///{tmp_path / 'chat.db'}", group_commit_ms=given))
        await server.start()
        try:
            assert server.gate is not None and server.gate.group_commit == expected
        finally:
            await server.close(timeout=2.0)


def test_flood_burst_may_be_anything_when_flood_control_is_off() -> None:
    assert parse_config(["--flood-rate", "0", "--flood-burst", "0"], environ={}).flood_rate == 0


def test_help_explains_every_flag() -> None:
    out = subprocess.run([sys.executable, "-m", "tcp_server", "--help"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    for flag in ("--host", "--port", "--legacy-port", "--max-frame", "--max-queue", "--max-clients",
                 "--gateway-secret", "--lang", "--log-level", "CHAT_PORT"):
        assert flag in out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_shuts_down_cleanly_telling_every_client(sig: signal.Signals) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tcp_server", "--port", str(port), "--lang", "ko",
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "CHAT_LOG_LEVEL": "INFO"},
    )
    assert proc.stderr is not None
    try:
        log = b""
        while b"Chat server ready" not in log:
            log += await asyncio.wait_for(proc.stderr.readline(), TIMEOUT * 4)
        client = await LineClient.connect("127.0.0.1", port)
        await client.join("alice")
        proc.send_signal(sig)
        frames = await client.recv_until(Error)  # after the join's 112 (resume is on by default)
        assert frames[-1] == Error(ErrorReason.SHUTDOWN, "server shutting down")
        assert all(isinstance(frame, SessionToken) for frame in frames[:-1])
        await client.closed()
        await client.close()
        assert await asyncio.wait_for(proc.wait(), TIMEOUT * 2) == 0
        rest = await asyncio.wait_for(proc.stderr.read(), TIMEOUT)
        assert "alice 사용자가 연결되었습니다.".encode() in log + rest
        assert "alice 사용자가 접속을 해제하였습니다.".encode() in rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sighup_without_a_tls_port_keeps_the_server_and_everyone() -> None:
    """The shipped unit's ExecReload sends SIGHUP; without --tls-port it used to end the process."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tcp_server", "--port", str(port), "--lang", "en",
        stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}, "CHAT_LOG_LEVEL": "INFO"},
    )
    assert proc.stderr is not None
    try:
        log = b""
        while b"Chat server ready" not in log:
            log += await asyncio.wait_for(proc.stderr.readline(), TIMEOUT * 4)
        client = await LineClient.connect("127.0.0.1", port)
        await client.join("alice")
        proc.send_signal(signal.SIGHUP)
        while b"SIGHUP" not in log:
            line = await asyncio.wait_for(proc.stderr.readline(), TIMEOUT * 4)
            assert line, f"the server exited on SIGHUP: {log.decode(errors='replace')}"
            log += line
        assert proc.returncode is None
        await client.send("006#still-here")
        frames = await client.recv_until(Pong)
        assert frames[-1] == Pong("still-here")
        other = await LineClient.connect("127.0.0.1", port)  # and it still takes new connections
        await other.join("bob")
        await other.close()
        await client.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), TIMEOUT * 2)
