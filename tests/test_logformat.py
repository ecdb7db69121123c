"""--log-format json: one JSON object a line from chat-server, chat-gateway and chat-run."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from typing import Any

import pytest

from tcp_server.logformat import JsonFormatter, setup_logging
from tests.helpers import TIMEOUT, LineClient
from tests.metrics_helpers import read_line_matching
from tests.test_server_cli import free_port


def record(msg: str, *args: object, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("tcp_server", logging.INFO, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_a_record_is_one_json_line_with_its_extra_fields() -> None:
    line = JsonFormatter().format(record("%s 사용자가 연결되었습니다. [%s]", "민수", "192.0.2.7",
                                         event="join", user="민수", address="192.0.2.7"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "tcp_server"
    assert entry["message"] == "민수 사용자가 연결되었습니다. [192.0.2.7]"
    assert (entry["event"], entry["user"], entry["address"]) == ("join", "민수", "192.0.2.7")
    assert entry["time"].endswith("+00:00")
    assert "args" not in entry and "msg" not in entry  # only what the call added


def test_an_exception_stays_on_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        setup_logging("INFO", "xml")


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}, **extra}


async def stop(proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> bytes:
    assert proc.stderr is not None
    proc.send_signal(sig)
    await asyncio.wait_for(proc.wait(), TIMEOUT * 2)
    return await asyncio.wait_for(proc.stderr.read(), TIMEOUT)


def json_lines(raw: bytes) -> list[dict[str, Any]]:
    lines = [line for line in raw.decode().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line parses, or the test fails here


async def test_chat_server_json_log_names_the_user_and_address_on_join_and_leave() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tcp_server", "--port", str(port), "--log-format", "json", "--lang", "ko",
        stderr=asyncio.subprocess.PIPE, env=clean_env(CHAT_LOG_LEVEL="INFO"),
    )
    assert proc.stderr is not None
    try:
        first = await read_line_matching(proc.stderr, r"Chat server ready")
        assert json.loads(first.string)["level"] == "INFO"
        client = await LineClient.connect("127.0.0.1", port)
        await client.join("지수")
        await client.send("004#지수")
        await client.closed()
        await client.close()
    finally:
        rest = await stop(proc)
    entries = json_lines(rest)
    assert entries
    joins = [e for e in entries if e.get("event") == "join"]
    leaves = [e for e in entries if e.get("event") == "leave"]
    assert [(e["user"], e["address"]) for e in joins] == [("지수", "127.0.0.1")]
    assert [(e["user"], e["address"]) for e in leaves] == [("지수", "127.0.0.1")]
    assert "지수 사용자가 연결되었습니다." in joins[0]["message"]


async def test_text_stays_the_default() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tcp_server", "--port", str(port),
        stderr=asyncio.subprocess.PIPE, env=clean_env(CHAT_LOG_LEVEL="INFO"),
    )
    assert proc.stderr is not None
    try:
        line = await read_line_matching(proc.stderr, r"Chat server ready")
        assert not line.string.startswith("{") and " INFO tcp_server: " in line.string
    finally:
        await stop(proc)


async def test_chat_gateway_and_chat_run_log_json() -> None:
    gateway = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web_gateway", "--port", "0", "--server", f"127.0.0.1:{free_port()}",
        "--log-format", "json", stderr=asyncio.subprocess.PIPE, env=clean_env(CHAT_LOG_LEVEL="INFO"),
    )
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web_gateway.launcher", "--port", "0", "--legacy-port", "0", "--gateway-port", "0",
        "--metrics-port", "0", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env=clean_env(CHAT_LOG_LEVEL="INFO", CHAT_LOG_FORMAT="json"),
    )
    try:
        assert gateway.stderr is not None and run.stderr is not None
        ready = await read_line_matching(gateway.stderr, r"web gateway ready")
        assert json.loads(ready.string)["logger"] == "web_gateway"
        where = await read_line_matching(run.stderr, r"chat server on")
        assert json.loads(where.string)["logger"] == "web_gateway.launcher"
    finally:
        gateway_rest = await stop(gateway)
        run_rest = await stop(run, signal.SIGINT)
    # Whatever else they logged (the shutdown lines, unless the signal came before the handlers) is JSON too.
    json_lines(gateway_rest)
    json_lines(run_rest)
