"""One gateway in front of two nodes of a shared room (``chat-gateway --server A:9000,B:9000``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tcp_server.__main__ import start_node, stop_node
from tcp_server.config import parse_config as parse_server_config
from tcp_server.protocol import Message
from tests.conftest import server_config
from tests.gateway_fixtures import JsonClient, gateway_config
from tests.helpers import TIMEOUT, LineClient, wait_until
from tests.redis_fixtures import Connect, MakeNode, free_port
from web_gateway.__main__ import start_gateway
from web_gateway.app import POOL
from web_gateway.config import parse_config
from web_gateway.launcher import parse_launcher_config


@pytest.fixture
async def clients() -> AsyncIterator[list[JsonClient]]:
    opened: list[JsonClient] = []
    yield opened
    for c in opened:
        await c.close()


async def test_users_are_spread_over_nodes_and_skip_one_that_is_down(
    make_node: MakeNode, node_clients: Connect, clients: list[JsonClient],
) -> None:
    a, b = await make_node(), await make_node()
    dead_port = free_port()  # nothing listens there: a node that is down
    cfg = gateway_config(a.port, servers=(("127.0.0.1", dead_port), ("127.0.0.1", a.port), ("127.0.0.1", b.port)))
    runner, port = await start_gateway(cfg)
    try:
        url = f"ws://127.0.0.1:{port}/ws"
        for i in range(4):
            c = await JsonClient.connect(url)
            clients.append(c)
            events = await c.join(f"web{i}")
            assert {"type": "joined", "id": f"web{i}"} in events
        # Least-connected: two on each live node, none lost to the dead one.
        assert len(a.server.room.members) == 2 and len(b.server.room.members) == 2
        # One room: a terminal user on a node hears the browser users on both.
        term: LineClient = await node_clients(a)
        await term.join("term")
        await clients[0].send({"type": "say", "text": "from the web"})
        assert (await term.recv_until(Message("web0", "from the web")))[-1] == Message("web0", "from the web")
        await clients[3].send({"type": "say", "text": "and again"})
        await term.recv_until(Message("web3", "and again"))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz",
                                timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as resp:
                body = await resp.text()
                assert resp.status == 200  # one node down, the gateway still serves
        lines = body.strip().split("\n")
        assert lines[0].startswith(f"127.0.0.1:{dead_port} the chat server cannot be reached")
        assert lines[1:] == [f"127.0.0.1:{a.port} ok", f"127.0.0.1:{b.port} ok"]
    finally:
        await runner.cleanup()


async def test_healthz_is_503_when_every_node_is_down(clients: list[JsonClient]) -> None:
    ports = (free_port(), free_port())
    cfg = gateway_config(ports[0], servers=tuple(("127.0.0.1", p) for p in ports))
    runner, port = await start_gateway(cfg)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz",
                                timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as resp:
                assert resp.status == 503
                assert (await resp.text()).count("cannot be reached") == 2
    finally:
        await runner.cleanup()


def test_several_servers_from_the_flag_and_the_environment() -> None:
    cfg = parse_config(["--server", "10.0.0.1:9000, 10.0.0.2:9000"], environ={})
    assert cfg.server == ("10.0.0.1", 9000)
    assert cfg.backends == (("10.0.0.1", 9000), ("10.0.0.2", 9000))
    one = parse_config([], environ={"CHAT_SERVER": "127.0.0.1:9100"})
    assert one.server == ("127.0.0.1", 9100) and one.backends == (("127.0.0.1", 9100),)


def test_chat_run_and_chat_server_take_the_redis_flags() -> None:
    server_cfg, _ = parse_launcher_config(["--redis", "redis://127.0.0.1:6390/2", "--node-id", "web-1"], environ={})
    assert (server_cfg.redis, server_cfg.node_id, server_cfg.redis_prefix) == ("redis://127.0.0.1:6390/2", "web-1",
                                                                              "hanchat:")
    env = {"CHAT_REDIS": "redis://127.0.0.1:6391/0", "CHAT_REDIS_PREFIX": "chat2:", "CHAT_NODE_TIMEOUT": "5"}
    cfg = parse_server_config([], environ=env)
    assert (cfg.redis, cfg.redis_prefix, cfg.node_timeout, cfg.node_id) == ("redis://127.0.0.1:6391/0", "chat2:",
                                                                            5.0, None)
    assert parse_server_config([], environ={}).redis is None  # the in-memory room stays the default


async def test_a_node_that_refuses_joins_is_skipped_for_the_next_users(
    make_node: MakeNode, clients: list[JsonClient],
) -> None:
    good = await make_node()
    cfg = server_config(redis=f"redis://127.0.0.1:{free_port()}/0", node_id="cut-off", node_timeout=2.0)
    bad_server, bad_room = await asyncio.wait_for(start_node(cfg), TIMEOUT * 2)  # no Redis: refuses joins
    assert bad_room is not None
    try:
        gw = gateway_config(bad_server.port, servers=(("127.0.0.1", bad_server.port), ("127.0.0.1", good.port)))
        runner, port = await start_gateway(gw)
        try:
            url = f"ws://127.0.0.1:{port}/ws"
            first = await JsonClient.connect(url)
            clients.append(first)
            await first.send({"type": "join", "id": "unlucky"})
            refused = await first.recv_until(lambda e: e.get("type") == "error", timeout=TIMEOUT * 2)
            assert refused[-1]["reason"] == "unavailable"
            # The node closed the backend after its 109: the gateway skips that node for a while.
            pool = runner.app[POOL]
            await wait_until(lambda: ("127.0.0.1", bad_server.port) in pool.failed_at, what="the refusal noted")
            second = await JsonClient.connect(url)
            clients.append(second)
            assert {"type": "joined", "id": "lucky"} in await second.join("lucky")
            assert list(good.server.room.roster.names()) == ["lucky"]
        finally:
            await runner.cleanup()
    finally:
        await asyncio.wait_for(stop_node(bad_server, bad_room), TIMEOUT * 2)
