"""Prometheus metrics: the server's --metrics-port and the gateway's /metrics, scraped while traffic flows."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import trustme

from tcp_server import ChatServer
from tcp_server.protocol import Resumed, SessionToken, UserJoined
from tcp_server.stats import Buckets
from tests.gateway_fixtures import GatewayStack, JsonClient
from tests.helpers import TIMEOUT, LineClient
from tests.metrics_helpers import read_line_matching, samples, scrape, value, wait_for_value
from tests.test_server_cli import free_port


def test_buckets_count_like_prometheus_le() -> None:
    b = Buckets((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 1.0, 3.0):
        b.observe(v)
    family = b.family("x_seconds", "doc")
    got = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert got[("x_seconds_bucket", "0.1")] == 2  # 0.05 and 0.1: le is "less or equal"
    assert got[("x_seconds_bucket", "1.0")] == 4
    assert got[("x_seconds_bucket", "+Inf")] == 5
    assert got[("x_seconds_count", None)] == 5
    assert abs(got[("x_seconds_sum", None)] - 4.65) < 1e-9


async def test_server_metrics_move_with_traffic(make_server: Callable[..., Awaitable[ChatServer]],
                                                tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert_file, key_file = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    server = await make_server(metrics_port=0, tls_port=0, tls_cert=cert_file, tls_key=key_file)
    assert server.metrics is not None and server.tls_port
    url = f"http://127.0.0.1:{server.metrics.port}/metrics"
    before = await samples(url)
    assert value(before, "hanchat_users_online") == 0
    assert value(before, "hanchat_joins_total") == 0
    assert value(before, "hanchat_connections_open", kind="line") == 0
    assert value(before, "hanchat_leaves_total", cause="slow_reader") == 0  # every cause is there from the start
    assert value(before, "hanchat_nodes") == 1
    assert ("process_cpu_seconds_total", frozenset()) in before

    alice = await LineClient.connect("127.0.0.1", server.port)
    bob = await LineClient.connect("127.0.0.1", server.legacy_port or 0)
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    reader, writer = await asyncio.wait_for(asyncio.open_connection("localhost", server.tls_port, ssl=ctx), TIMEOUT)
    carol = LineClient(reader, writer)
    try:
        await alice.join("alice")
        await carol.join("carol")
        assert await alice.recv() == UserJoined("carol")
        after = await samples(url)
        assert value(after, "hanchat_users_online") == 2
        assert value(after, "hanchat_joins_total") == 2
        assert value(after, "hanchat_connections_open", kind="line") == 1
        assert value(after, "hanchat_connections_open", kind="tls") == 1
        assert value(after, "hanchat_connections_open", kind="legacy") == 1
        # The loop-lag timer ticks four times a second while metrics are on.
        await wait_for_value(url, "hanchat_loop_lag_seconds_count", lambda v: v >= 1)
        await carol.send("004#carol")
        await carol.closed()
        await wait_for_value(url, "hanchat_users_online", lambda v: v == 1)
    finally:
        await carol.close()
        await bob.close()
        await alice.close()


async def test_parked_sessions_and_resumes_are_counted(make_server: Callable[..., Awaitable[ChatServer]]) -> None:
    """What an operator watches after a gateway restart: sessions waiting for their pages, and resumes."""
    server = await make_server(metrics_port=0, resume_grace=30.0)
    assert server.metrics is not None
    url = f"http://127.0.0.1:{server.metrics.port}/metrics"
    before = await samples(url)
    assert value(before, "hanchat_sessions_parked") == 0 and value(before, "hanchat_resumes_total") == 0
    alice = await LineClient.connect("127.0.0.1", server.port)
    await alice.join("alice")
    token = await alice.recv()
    assert isinstance(token, SessionToken)
    alice.writer.transport.abort()  # a dropped link: parked
    await wait_for_value(url, "hanchat_sessions_parked", lambda v: v == 1)
    again = await LineClient.connect("127.0.0.1", server.port)
    try:
        await again.send(f"008#{token.token}")
        await again.recv_until(Resumed)
        after = await samples(url)
        assert value(after, "hanchat_sessions_parked") == 0 and value(after, "hanchat_resumes_total") == 1
    finally:
        await again.close()


async def test_metrics_port_is_off_by_default(make_server: Callable[..., Awaitable[ChatServer]]) -> None:
    server = await make_server()
    assert server.metrics is None


async def test_chat_server_serves_metrics_where_it_says() -> None:
    port, metrics_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tcp_server", "--port", str(port), "--metrics-port", str(metrics_port),
        stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}, "CHAT_LOG_LEVEL": "INFO"},
    )
    assert proc.stderr is not None
    try:
        match = await read_line_matching(proc.stderr, r"metrics: (http://127\.0\.0\.1:(\d+)/metrics)")
        assert int(match.group(2)) == metrics_port
        url = match.group(1)
        client = await LineClient.connect("127.0.0.1", port)
        await client.join("dora")
        await wait_for_value(url, "hanchat_joins_total", lambda v: v == 1)
        await client.close()
        await wait_for_value(url, "hanchat_users_online", lambda v: v == 0)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), TIMEOUT * 2)


async def test_chat_run_turns_metrics_on_and_prints_where() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web_gateway.launcher", "--port", "0", "--legacy-port", "0", "--gateway-port", "0",
        "--metrics-port", "0", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}, "CHAT_UVLOOP": "off"},
    )
    assert proc.stdout is not None
    try:
        match = await read_line_matching(
            proc.stdout, r"Prometheus metrics: (http://127\.0\.0\.1:\d+/metrics) \(server\), (\S+) \(gateway\)")
        server_metrics, gateway_metrics = match.group(1), match.group(2)
        assert value(await samples(server_metrics), "hanchat_users_online") == 0
        assert value(await samples(gateway_metrics), "hanchat_gateway_websockets_open") == 0
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), TIMEOUT * 2)


async def test_gateway_metrics_move_with_traffic(
    make_gateway_stack: Callable[..., Awaitable[GatewayStack]],
) -> None:
    stack = await make_gateway_stack()
    url = stack.base_url + "metrics"
    before = await samples(url)
    assert value(before, "hanchat_gateway_websockets_open") == 0
    assert value(before, "hanchat_gateway_backend_connects_total") == 0
    assert value(before, "hanchat_gateway_handshake_refusals_total", reason="origin") == 0
    page = await JsonClient.connect(stack.ws_url)
    try:
        await page.join("emma")
        await page.send({"type": "say", "text": "hi"})
        await page.sync()
        after = await samples(url)
        assert value(after, "hanchat_gateway_websockets_open") == 1
        assert value(after, "hanchat_gateway_backend_connects_total") == 1
        assert value(after, "hanchat_gateway_messages_total", direction="from_page") >= 3
        assert value(after, "hanchat_gateway_messages_total", direction="to_page") >= 2
        assert value(after, "hanchat_gateway_pages_paused") == 0
        # A page from a foreign origin is refused, and counted.
        async with aiohttp.ClientSession() as session:
            async with session.get(stack.ws_url.replace("ws://", "http://"),
                                   headers={"Origin": "https://evil.example", "Connection": "Upgrade",
                                            "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as resp:
                assert resp.status == 403
        refused = await samples(url)
        assert value(refused, "hanchat_gateway_handshake_refusals_total", reason="origin") == 1
        # The server going away drops the page: counted by cause.
        await stack.stop_server()
        await page.closed()
        await wait_for_value(url, "hanchat_gateway_page_drops_total", lambda v: v == 1, cause="backend_closed")
    finally:
        await page.close()


async def test_gateway_counts_backend_failures(
    make_gateway_stack: Callable[..., Awaitable[GatewayStack]],
) -> None:
    stack = await make_gateway_stack()
    await stack.stop_server()
    page = await JsonClient.connect(stack.ws_url)
    try:
        await page.send({"type": "join", "id": "finn"})
        await page.closed()
        s = await samples(stack.base_url + "metrics")
        assert value(s, "hanchat_gateway_backend_failures_total") == 1
        assert value(s, "hanchat_gateway_page_drops_total", cause="backend_unavailable") == 1
    finally:
        await page.close()


async def test_gateway_metrics_refused_outside_the_allowed_networks(
    make_gateway_stack: Callable[..., Awaitable[GatewayStack]],
) -> None:
    from web_gateway.forwarded import parse_networks

    stack = await make_gateway_stack(gateway={"metrics_allow": parse_networks("127.0.0.1/32"),
                                              "trusted_proxy": "127.0.0.1/32"})
    url = stack.base_url + "metrics"
    status, body = await scrape(url)
    assert status == 200 and "hanchat_gateway_websockets_open" in body
    # Through a trusted proxy, the real address is the one that counts: a visitor behind the proxy is refused.
    status, body = await scrape(url, headers={"X-Forwarded-For": "203.0.113.9"})
    assert status == 403 and "hanchat" not in body
    # A peer on another loopback address, outside 127.0.0.1/32.
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    status, body = await scrape(url, connector=connector)
    assert status == 403 and "hanchat" not in body


async def test_gateway_metrics_default_to_loopback_only() -> None:
    from web_gateway.config import GatewayConfig
    from web_gateway.metrics import allowed

    nets = GatewayConfig().metrics_allow
    assert allowed("127.0.0.1", nets) and allowed("::1", nets) and allowed("::ffff:127.0.0.1", nets)
    assert not allowed("203.0.113.9", nets) and not allowed("10.0.0.1", nets) and not allowed("unknown", nets)


async def test_gateway_counts_a_page_dropped_by_the_heartbeat(
    make_gateway_stack: Callable[..., Awaitable[GatewayStack]],
) -> None:
    stack = await make_gateway_stack(gateway={"heartbeat": 0.5})
    url = stack.base_url + "metrics"
    # autoping off and never reading: to the gateway, a browser tab that vanished
    page = await JsonClient.connect(stack.ws_url, autoping=False)
    try:
        await page.send({"type": "join", "id": "ghost"})
        await wait_for_value(url, "hanchat_gateway_page_drops_total", lambda v: v == 1, timeout=10,
                             cause="heartbeat")
        assert value(await samples(url), "hanchat_gateway_websockets_open") == 0
    finally:
        await page.close()


def test_chat_run_has_metrics_on_by_default_and_chat_server_off() -> None:
    from tcp_server.config import DEFAULT_METRICS_PORT, parse_config
    from web_gateway.launcher import parse_launcher_config

    server, _ = parse_launcher_config([], environ={})
    assert (server.metrics_port, server.metrics_host) == (DEFAULT_METRICS_PORT, "127.0.0.1")
    assert parse_config([], environ={}).metrics_port is None
    assert parse_config([], environ={"CHAT_METRICS_PORT": "9102"}).metrics_port == 9102
