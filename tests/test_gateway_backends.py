"""Several servers behind one gateway: what marks a server down (issue 25, item 10)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tcp_server import ChatServer
from tests.gateway_fixtures import JsonClient, gateway_config
from tests.helpers import TIMEOUT, wait_until
from web_gateway.__main__ import start_gateway
from web_gateway.app import POOL
from web_gateway.backends import marks_down

SECRET = "a-gateway-secret-of-32-characters"


@pytest.mark.parametrize(("closed", "error", "refusal", "down"), [
    (False, True, None, True),  # the connection failed
    (True, False, None, True),  # closed without a word: gone
    (True, False, "busy", True), (True, False, "shutdown", True), (True, False, "unavailable", True),
    (True, False, "address-limit", False), (True, False, "flood", False), (True, False, "not-joined", False),
    (False, False, None, False),  # our own close
])
def test_only_failures_and_server_wide_refusals_mark_a_server_down(
        closed: bool, error: bool, refusal: str | None, down: bool) -> None:
    assert marks_down(closed, error, refusal) is down


async def test_one_clients_own_address_limit_does_not_send_everyone_to_another_server(
        make_server: Callable[..., Awaitable[ChatServer]]) -> None:
    """Join/leave cycles from one address trip that address's limit on server A: A must stay up for others."""
    # Three new connections a minute: the welcome screen's presence probe and the two cycles' backends.
    limits = dict(gateway_secret=SECRET, max_per_address=20, max_new_per_minute=3)
    a, b = await make_server(**limits), await make_server(**limits)
    cfg = gateway_config(a.port, servers=(("127.0.0.1", a.port), ("127.0.0.1", b.port)), gateway_secret=SECRET,
                         trusted_proxy="127.0.0.1/32")
    runner, port = await start_gateway(cfg)
    url = f"ws://127.0.0.1:{port}/ws"
    pool = runner.app[POOL]
    try:
        for i in range(2):  # the cycles: each lands on A (least connected, first), then leaves
            page = await JsonClient.connect(url, {"X-Forwarded-For": "198.51.100.7"})
            assert {"type": "joined", "id": f"cycle{i}"} in await page.join(f"cycle{i}")
            await page.close()
            await wait_until(lambda: not a.room.members, what="the cycle's leave")
            await wait_until(lambda: pool.open[("127.0.0.1", a.port)] == 0, what="the cycle's backend closed")
            assert ("127.0.0.1", a.port) not in pool.failed_at  # a leave (004, 102, close) is no failure
        page = await JsonClient.connect(url, {"X-Forwarded-For": "198.51.100.7"})
        await page.send({"type": "join", "id": "cycle2"})
        refused = await page.recv_until(lambda e: e.get("type") == "error", timeout=TIMEOUT)
        assert refused[-1]["reason"] == "address-limit"
        await wait_until(lambda: pool.open[("127.0.0.1", a.port)] == 0, what="the refused backend closed")
        await page.close()  # (the page itself stays open after a refusal: it may try again)
        assert ("127.0.0.1", a.port) not in pool.failed_at  # a refusal of one user: A is not down
        other = await JsonClient.connect(url, {"X-Forwarded-For": "203.0.113.9"})
        assert {"type": "joined", "id": "other"} in await other.join("other")
        assert list(a.room.roster.names()) == ["other"]  # still sent to A, not steered to B
        await other.close()
    finally:
        await runner.cleanup()
