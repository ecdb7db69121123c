"""Terminal-client test fixtures: a real pipe for stdin, and the client's settings for a test server
(registered in conftest.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from chat_client.config import ClientConfig
from chat_client.script import LineSource
from tests.helpers import wait_until


class Stdin:
    """A real pipe standing in for stdin, with a LineSource reading it."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        self.lines = LineSource(self.r)

    def write(self, text: str) -> None:
        os.write(self.w, text.encode())

    def close(self) -> None:
        if self.w >= 0:
            os.close(self.w)
            self.w = -1


@pytest.fixture
async def stdin() -> AsyncIterator[Stdin]:
    pipe = Stdin()
    yield pipe
    pipe.close()
    await wait_until(lambda: not pipe.lines.reading, what="the reader thread to see EOF")
    os.close(pipe.r)


def config(port: int, **overrides: object) -> ClientConfig:
    base: dict[str, object] = dict(host="127.0.0.1", port=port, lang="ko", color=False)
    base.update(overrides)
    return ClientConfig(**base)  # type: ignore[arg-type]
