"""Resume through the real gateway: a page reload, a vanished WebSocket and a gateway restart keep the session."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tcp_server.protocol import Message, UserJoined, UserLeft
from tcp_server.room import InMemorySessionStore
from tests.gateway_fixtures import GatewayStack, JsonClient, gateway_config
from tests.helpers import LineClient, stamped, wait_until
from web_gateway.__main__ import start_gateway

Make = Callable[..., Awaitable[GatewayStack]]


async def page(url: str) -> JsonClient:
    client = await JsonClient.connect(url)
    hello = await client.recv()
    assert hello["type"] == "status" and hello["state"] == "connected"
    return client


async def join(client: JsonClient, name: str) -> str:
    await client.send({"type": "join", "id": name})
    events = await client.recv_until("session")
    assert [e["type"] for e in events] == ["joined", "users", "session"]
    token = events[-1]["token"]
    assert isinstance(token, str)
    return token


def parked(stack: GatewayStack, name: str) -> Callable[[], bool]:
    sessions = stack.server.sessions
    assert isinstance(sessions, InMemorySessionStore)
    return lambda: sessions.is_parked(name)


async def test_reload_resumes_without_leave_or_join_noise(make_gateway_stack: Make,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stack = await make_gateway_stack(server={"resume_grace": 30.0, "history": 10})
    carol = await LineClient.connect("127.0.0.1", stack.server_port)
    tabs: list[JsonClient] = []
    try:
        await carol.join("carol")
        tabs.append(first := await page(stack.ws_url))
        token = await join(first, "alice")
        await carol.recv_until(UserJoined("alice"))
        await carol.send("002#carol#before the reload")
        assert stamped(await first.recv()) == {"type": "message", "from": "carol", "text": "before the reload"}

        await first.close()  # the reload: the WebSocket goes away without a leave
        await wait_until(parked(stack, "alice"), what="alice parked")
        await carol.send("002#carol#during # the reload")
        await carol.send("003#carol#alice#psst")

        tabs.append(second := await page(stack.ws_url))
        await second.send({"type": "resume", "token": token})
        events = await second.recv_until("resumed")
        assert [e["type"] for e in events] == ["joined", "users", "session", "message", "whisper", "resumed"]
        assert events[0] == {"type": "joined", "id": "alice"} and events[-1] == {"type": "resumed", "missed": 2}
        assert stamped(events[3]) == {"type": "message", "from": "carol", "text": "during # the reload"}
        assert stamped(events[4]) == {"type": "whisper", "from": "carol", "text": "psst"}
        assert events[2]["token"] != token

        await second.send({"type": "say", "text": "back"})  # the gateway tracks the resumed ID
        assert await carol.recv() == Message("alice", "back")
        assert await carol.sync() == []  # no 104, no 103 for alice
        for t in (token, events[2]["token"]):
            assert t not in caplog.text  # neither the gateway nor the server logs tokens
    finally:
        for tab in tabs:
            await tab.close()
        await carol.close()


async def test_gateway_restart_resumes_and_a_leave_still_leaves(make_gateway_stack: Make) -> None:
    stack = await make_gateway_stack(server={"resume_grace": 30.0})
    carol = await LineClient.connect("127.0.0.1", stack.server_port)
    runner: Any = None
    tabs: list[JsonClient] = []
    try:
        await carol.join("carol")
        tabs.append(first := await page(stack.ws_url))
        token = await join(first, "alice")
        await carol.recv_until(UserJoined("alice"))
        await stack.runner.cleanup()  # the gateway stops: no 004 for a resumable session
        await wait_until(parked(stack, "alice"), what="alice parked")
        await carol.send("002#carol#while the gateway was down")

        runner, port = await start_gateway(gateway_config(stack.server_port))
        tabs.append(second := await page(f"ws://127.0.0.1:{port}/ws"))
        await second.send({"type": "resume", "token": token})
        events = await second.recv_until("resumed")
        assert [e["type"] for e in events] == ["joined", "users", "session", "message", "resumed"]
        assert await carol.sync() == []

        await second.send({"type": "leave"})  # an explicit leave ends the session at once
        assert await second.recv_until("left")
        assert await carol.recv() == UserLeft("alice")
        await second.send({"type": "resume", "token": events[2]["token"]})
        refused = await second.recv_until("error")
        assert refused[-1]["reason"] == "bad-token"
    finally:
        for tab in tabs:
            await tab.close()
        await carol.close()
        if runner is not None:
            await runner.cleanup()


async def test_resume_messages_are_checked_before_they_reach_the_server(make_gateway_stack: Make) -> None:
    stack = await make_gateway_stack(server={"resume_grace": 30.0})
    tab = await page(stack.ws_url)
    try:
        for bad in ({"type": "resume"}, {"type": "resume", "token": 5}, {"type": "resume", "token": ""},
                    {"type": "resume", "token": "a b"}, {"type": "resume", "token": "x\n001#evil"}):
            await tab.send(bad)
            event = await tab.recv()
            assert event["type"] == "error" and event["reason"] == "malformed", bad
        assert len(stack.server.connections) == 0  # nothing was opened for them
        await tab.send({"type": "resume", "token": "unknown"})
        assert (await tab.recv_until("error"))[-1]["reason"] == "bad-token"
        await join(tab, "alice")  # the same WebSocket may then join
        await tab.send({"type": "resume", "token": "again"})
        assert (await tab.recv())["reason"] == "already-joined"
    finally:
        await tab.close()


async def test_a_vanished_resumable_page_is_parked_then_leaves_once_after_the_grace(make_gateway_stack: Make) -> None:
    stack = await make_gateway_stack(server={"resume_grace": 0.5}, gateway={"heartbeat": 0.4})
    carol = await LineClient.connect("127.0.0.1", stack.server_port)
    ghost: JsonClient | None = None
    try:
        await carol.join("carol")
        # autoping off and never reading again: to the gateway, a tab that vanished
        ghost = await JsonClient.connect(stack.ws_url, autoping=False)
        await ghost.send({"type": "join", "id": "ghost"})
        await carol.recv_until(UserJoined("ghost"))
        await wait_until(parked(stack, "ghost"), timeout=10, what="the heartbeat to drop ghost without 004")
        assert await carol.recv(10) == UserLeft("ghost")  # the grace ran out: one leave
        assert await carol.sync() == []
    finally:
        if ghost is not None:
            await ghost.close()
        await carol.close()
