"""The Redis client's retry policy is the asyncio one, and it really applies: the node does its own
retrying (the follower's loop, the writer's refusal), so a failed command fails at once, after one
connection attempt, instead of redis-py's default retries hiding an outage for seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.retry import Retry as AsyncRetry
from redis.exceptions import ConnectionError as RedisConnectionError

from tcp_server.room.redis import RedisLink, RedisSettings


@pytest.fixture
async def slamming_port() -> AsyncIterator[tuple[int, list[int]]]:
    """A real loopback listener that accepts each connection and closes it at once, counting them."""
    accepted: list[int] = []

    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(slam, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], accepted
    server.close()
    await asyncio.wait_for(server.wait_closed(), 5)


async def test_the_client_gets_the_asyncio_retry_with_no_retries() -> None:
    link = RedisLink(RedisSettings(url="redis://127.0.0.1:1/0"))
    try:
        retry = link.client.connection_pool.connection_kwargs["retry"]
        assert isinstance(retry, AsyncRetry)
        assert retry.get_retries() == 0
    finally:
        await asyncio.wait_for(link.client.aclose(), 5)


async def test_a_failed_command_is_not_retried(slamming_port: tuple[int, list[int]]) -> None:
    port, accepted = slamming_port
    link = RedisLink(RedisSettings(url=f"redis://127.0.0.1:{port}/0"))
    try:
        with pytest.raises((RedisConnectionError, OSError)):
            await asyncio.wait_for(link.client.ping(), 10)
        # redis-py's default policy would have connected four times (three retries).
        assert accepted == [1]
    finally:
        await asyncio.wait_for(link.client.aclose(), 5)
