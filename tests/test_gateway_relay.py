"""The gateway's relay of server output: events split across reads, frames before 007, flow control.

The server writes JSON events to the gateway's backends (``007#json``); the
gateway writes each read's whole lines to the page as one WebSocket message.
These tests drive the edges of that: lines cut by reads, a refusal the server
sends before it has read 007, and pages that read slower than the room talks.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from typing import Any

from tcp_server.protocol import UserLeft
from tests.clients import Receiver
from tests.gateway_fixtures import GatewayStack, JsonClient
from tests.helpers import TIMEOUT, LineClient, close_writer, wait_until
from web_gateway.app import BRIDGES


class RawPage(Receiver[dict[str, Any]]):
    """A WebSocket page on a bare socket: it reads only when told to, like a stalled browser tab."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> RawPage:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # a stall shows at the gateway sooner
        sock.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)), TIMEOUT)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(sock=sock), TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, msg: dict[str, Any]) -> None:
        payload = json.dumps(msg).encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        self.writer.write(bytes((0x81, 0x80 | len(payload))) + mask
                          + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def read_items(self, timeout: float) -> list[dict[str, Any]]:
        """One WebSocket frame: a text frame's events (unmasked, NDJSON); nothing for a ping or close."""
        head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        payload = await asyncio.wait_for(self.reader.readexactly(length), TIMEOUT)
        if head[0] & 0x0F != 0x1:
            return []
        return [json.loads(line) for line in payload.split(b"\n")]

    async def close(self) -> None:
        await close_writer(self.writer)


async def flood(sender: LineClient, count: int, size: int) -> None:
    """``count`` messages of ``size`` bytes from a terminal user, written in big slices."""
    body = "y" * (size - 12)
    for start in range(0, count, 100):
        sender.writer.write(b"".join(f"002#{sender.name}#{i:06d} {body}\n".encode()
                                     for i in range(start, min(count, start + 100))))
        await asyncio.wait_for(sender.writer.drain(), 30)


async def terminal(stack: GatewayStack, name: str) -> LineClient:
    client = await LineClient.connect("127.0.0.1", stack.server_port)
    client.name = name  # type: ignore[attr-defined]
    await client.join(name)
    return client


async def test_events_cut_by_reads_reach_the_page_whole_and_in_order(make_gateway_stack: Any,
                                                                      ws_clients: Any) -> None:
    stack: GatewayStack = await make_gateway_stack()
    page: JsonClient = await ws_clients(stack.ws_url)
    await page.join("alice")
    carol = await terminal(stack, "carol")
    await page.recv_until("user_joined")
    texts = [f"{i:04d} 한글 \"quoted\" \\ {'z' * (i % 3000)}" for i in range(400)]
    carol.writer.write(b"".join(f"002#carol#{t}\n".encode() for t in texts))  # ~600 KB: many reads
    events = await page.recv_until(lambda e: e.get("text", "").startswith("0399"), timeout=20)
    assert [e["text"] for e in events if e["type"] == "message"] == texts
    assert page.messages < 400  # whole reads went as one WebSocket message each
    await carol.close()


async def test_a_refusal_the_server_sends_before_reading_reaches_the_page_as_an_event(
        make_gateway_stack: Any, ws_clients: Any) -> None:
    stack: GatewayStack = await make_gateway_stack(server={"max_clients": 1})
    carol = await terminal(stack, "carol")  # the only place
    page: JsonClient = await ws_clients(stack.ws_url)
    await page.recv()
    await page.send({"type": "join", "id": "alice"})
    assert await page.recv() == {"type": "error", "reason": "busy", "text": "too many connections"}
    await carol.close()
    await wait_until(lambda: not stack.server.connections, what="carol to go")
    assert (await page.join("alice"))[0] == {"type": "joined", "id": "alice"}  # the page goes on


async def test_a_slow_page_pauses_its_backend_and_then_gets_everything(make_gateway_stack: Any,
                                                                      ws_clients: Any) -> None:
    stack: GatewayStack = await make_gateway_stack(server={"max_queue": 256 * 1024 * 1024})
    slow = await RawPage.connect(stack.gateway_port)
    try:
        assert (await slow.recv())["state"] == "connected"
        slow.send({"type": "join", "id": "slow"})
        await slow.recv_until("users")
        carol = await terminal(stack, "carol")
        count = 8000
        await flood(carol, count, 4000)  # 32 MB: more than the page's socket and PAGE_BUFFER_HIGH hold

        def paused() -> bool:
            return any(b.backend is not None and b.backend.paused for b in stack.runner.app[BRIDGES])

        await wait_until(paused, timeout=20, what="the slow page's backend to pause")
        got = [e["text"][:6] for e in await slow.recv_until("message") if e["type"] == "message"]
        while got[-1] != f"{count - 1:06d}":
            event = await slow.recv()
            if event["type"] == "message":
                got.append(event["text"][:6])
        assert got[-count:] == [f"{i:06d}" for i in range(count)]
        # Reading resumes once the page's buffer has drained: just after its last message, not with it.
        await wait_until(lambda: not paused(), timeout=10, what="the backend to be read again")
        await carol.close()
    finally:
        await slow.close()


async def test_a_page_that_never_reads_is_dropped_and_the_others_get_everything(make_gateway_stack: Any,
                                                                               ws_clients: Any) -> None:
    # The queue bound is above what one flush writes to a reader that keeps up (a 400 KB slice).
    stack: GatewayStack = await make_gateway_stack(server={"max_queue": 4 * 1024 * 1024})
    good: JsonClient = await ws_clients(stack.ws_url)
    await good.join("good")
    slow = await RawPage.connect(stack.gateway_port)
    try:
        await slow.recv()
        slow.send({"type": "join", "id": "slow"})
        await slow.recv_until("users")
        carol = await terminal(stack, "carol")
        await good.recv_until("user_joined")
        body = "y" * 3990
        sent = 0
        seen: list[dict[str, Any]] = []

        def online() -> set[str | None]:
            return {c.session.name for c in stack.server.connections}

        # 400 KB at a time, each read by the good page before the next: only the stalled page falls behind.
        while "slow" in online() or sent % 2000:
            assert sent < 40_000, "the stalled page was never dropped (160 MB sent)"
            carol.writer.write(b"".join(f"002#carol#{i:06d} {body}\n".encode() for i in range(sent, sent + 100)))
            sent += 100
            last = f"{sent - 1:06d}"
            seen += await good.recv_until(lambda e, last=last: e.get("text", "").startswith(last), timeout=20)
        assert [e["text"][:6] for e in seen if e["type"] == "message"] == [f"{i:06d}" for i in range(sent)]
        if {"type": "user_left", "id": "slow"} not in seen:
            assert await good.recv_until("user_left") == [{"type": "user_left", "id": "slow"}]
        assert {"good", "carol"} <= online()
        assert UserLeft("slow") in await carol.recv_until(UserLeft("slow"), timeout=20)
        assert await good.sync() == []
        await carol.close()
    finally:
        await slow.close()
