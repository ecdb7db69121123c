"""Peer values in log lines (issue 25, items 2, 6, 7): escaped at one place, the formatter.

The gateway runs in this process; a handler with the programs' own text formatter (and one with the
JSON formatter) captures what they would write to stderr.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest

from tcp_server.logformat import TRACEBACK_INDENT, JsonFormatter, TextFormatter
from tests.gateway_fixtures import GatewayStack
from tests.helpers import TIMEOUT
from tests.nginx_fixtures import StackMaker, deployed

LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")
UNSAFE = "\r\n\x1b\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e"  # every one of them breaks a line somewhere


class Captured:
    """What the text and JSON formatters made of every record of the test."""

    def __init__(self) -> None:
        self.text, self.json = io.StringIO(), io.StringIO()

    def text_lines(self) -> list[str]:
        return self.text.getvalue().splitlines()  # splits at U+2028, U+0085, VT, FF, FS... too

    def json_lines(self) -> list[str]:
        return self.json.getvalue().splitlines()


@pytest.fixture
def captured() -> Iterator[Captured]:
    logs = Captured()
    handlers = [logging.StreamHandler(logs.text), logging.StreamHandler(logs.json)]
    handlers[0].setFormatter(TextFormatter())
    handlers[1].setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield logs
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(old_level)


def assert_safe(logs: Captured) -> None:
    """Every text line is a record's start or a traceback's indented line; every JSON line is one object."""
    lines = logs.text_lines()
    assert lines
    for line in lines:
        assert LINE_START.match(line) or line.startswith(TRACEBACK_INDENT), line
        assert not any(char in line for char in UNSAFE)
    for line in logs.json_lines():
        json.loads(line)


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("web_gateway", logging.WARNING, __file__, 1, msg, args, None)


def test_the_text_formatter_escapes_every_line_breaking_or_terminal_character() -> None:
    line = TextFormatter().format(record("refused %s for host %s", "/\n2026-01-01 00:00:00,000 INFO x", UNSAFE))
    assert line.splitlines() == [line]
    assert "/\\n2026-01-01 00:00:00,000 INFO x" in line
    assert "\\r\\n\\x1b\\u2028\\u2029\\x85\\x0b\\x0c\\x1c\\x1d\\x1e" in line


def test_a_traceback_keeps_its_lines_under_its_record_even_when_the_exception_text_forges_one() -> None:
    try:
        raise ValueError("bad\n2026-01-01 00:00:00,000 INFO forged\x1b[2J")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    lines = TextFormatter().format(rec).splitlines()
    assert LINE_START.match(lines[0])
    assert all(line.startswith(TRACEBACK_INDENT) for line in lines[1:])
    assert not any("\x1b" in line for line in lines)


def test_a_json_line_stays_one_line_for_every_line_splitter() -> None:
    line = JsonFormatter().format(record("agent %s", UNSAFE))
    assert line.splitlines() == [line]
    assert json.loads(line)["message"] == f"agent {UNSAFE}"


async def raw_request(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), TIMEOUT)
    finally:
        writer.close()


FORGED_PATH = b"/%0a2026-01-01%2000:00:00,000%20INFO%20web_gateway:%20forged%0d%1b[2J%E2%80%A8"


async def test_a_refused_host_cannot_forge_a_gateway_log_line(gateway_stack: GatewayStack,
                                                              captured: Captured) -> None:
    answer = await raw_request(gateway_stack.gateway_port,
                               b"GET " + FORGED_PATH + b" HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 421")
    assert_safe(logs := captured)
    assert any("forged" in line and "refused" in line for line in logs.text_lines())


async def test_a_user_agent_with_separators_reaches_the_access_log_escaped(gateway_stack: GatewayStack,
                                                                         captured: Captured) -> None:
    answer = await raw_request(gateway_stack.gateway_port,
                               b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: a\xe2\x80\xa8b\xc2\x85c\r\n"
                               b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert_safe(captured)
    assert any('"a\\u2028b\\x85c"' in line for line in captured.text_lines())


async def test_a_malformed_request_is_one_short_line_without_a_traceback(gateway_stack: GatewayStack,
                                                                       captured: Captured) -> None:
    for _ in range(3):
        answer = await raw_request(gateway_stack.gateway_port,
                                   b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: \x1b[2J\r\n\r\n")
        assert answer.startswith(b"HTTP/1.0 400")
    assert_safe(captured)
    lines = captured.text_lines()
    assert len(lines) == 3, lines
    assert all(" WARNING web_gateway.http: malformed HTTP request from 127.0.0.1: " in line for line in lines)


async def test_malformed_requests_are_rate_limited(gateway_stack: GatewayStack, captured: Captured) -> None:
    for _ in range(30):
        await raw_request(gateway_stack.gateway_port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: \x01\r\n\r\n")
    lines = captured.text_lines()
    assert 1 <= len(lines) <= 12, lines  # a burst of 10, then 1/s


async def test_through_nginx_a_refused_host_cannot_forge_a_line(make_gateway_stack: StackMaker, nginx_for: object,
                                                                captured: Captured) -> None:
    stack = await deployed(make_gateway_stack)
    nginx = nginx_for(stack)  # type: ignore[operator]
    answer = await raw_request(nginx.port, b"GET /chat" + FORGED_PATH + b" HTTP/1.1\r\n"
                               b"Host: 127.0.0.1:99999\r\nConnection: close\r\n\r\n")  # the test's server_name
    assert answer.startswith(b"HTTP/1.1 421"), answer[:100]
    assert_safe(captured)
    assert any("forged" in line for line in captured.text_lines())
